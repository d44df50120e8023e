"""Shared test data for the trace package: the real traces and crafted bad files."""

from __future__ import annotations

from pathlib import Path

# (excerpt under tests/data/traces, format, its request count: the first minutes of each real
# trace, lines copied verbatim; the counts are those of tests/data/README.md)
REAL_TRACES: list[tuple[str, str, int]] = [
    ("mooncake_conversation_5min.jsonl", "mooncake", 918),
    ("mooncake_synthetic_5min.jsonl", "mooncake", 1091),
    ("azure2023_code_15min.csv", "azure", 2598),
    ("azure2023_conv_5min.csv", "azure", 1445),
]

GOOD_MOONCAKE = '{"timestamp": 0, "input_length": 10, "output_length": 2}\n'
AZURE_HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
GOOD_AZURE = "2023-11-16 18:17:03.9799600,4808,10\n"

# (id, file name, content, 1-based line expected in the message, fragment expected in it)
BAD_FILES: list[tuple[str, str, bytes, int | None, str]] = [
    (
        "truncated-json",
        "t.jsonl",
        (GOOD_MOONCAKE + '{"timestamp": 5, "input_length": 3, "outp').encode(),
        2,
        "invalid JSON",
    ),
    (
        "missing-field",
        "t.jsonl",
        (GOOD_MOONCAKE * 2 + '{"timestamp": 5, "input_length": 3}\n').encode(),
        3,
        "missing field 'output_length'",
    ),
    (
        "negative-length",
        "t.jsonl",
        (GOOD_MOONCAKE + '{"timestamp": 5, "input_length": -3, "output_length": 1}\n').encode(),
        2,
        "'input_length' must be >= 0",
    ),
    (
        "non-numeric-json",
        "t.jsonl",
        (GOOD_MOONCAKE + '{"timestamp": 5, "input_length": "abc", "output_length": 1}\n').encode(),
        2,
        "'input_length' must be a number",
    ),
    (
        "non-finite-json",
        "t.jsonl",
        (GOOD_MOONCAKE + '{"timestamp": NaN, "input_length": 1, "output_length": 1}\n').encode(),
        2,
        "'timestamp' must be finite",
    ),
    (
        "not-an-object",
        "t.jsonl",
        (GOOD_MOONCAKE + "[1, 2, 3]\n").encode(),
        2,
        "expected a JSON object",
    ),
    (
        "non-numeric-csv",
        "t.csv",
        (AZURE_HEADER + GOOD_AZURE + "2023-11-16 18:17:04.0,abc,8\n").encode(),
        3,
        "'ContextTokens' must be a number",
    ),
    (
        "negative-csv",
        "t.csv",
        (AZURE_HEADER + "2023-11-16 18:17:04.0,12,-8\n").encode(),
        2,
        "'GeneratedTokens' must be >= 0",
    ),
    (
        "bad-timestamp",
        "t.csv",
        (AZURE_HEADER + GOOD_AZURE + "2023-11-16 25:17:04.0,12,8\n").encode(),
        3,
        "bad timestamp",
    ),
    (
        "wrong-field-count",
        "t.csv",
        (AZURE_HEADER + GOOD_AZURE + "2023-11-16 18:17:04.0,12\n").encode(),
        3,
        "expected 3 comma-separated fields, found 2",
    ),
    ("wrong-format", "t.csv", b"a,b,c\n1,2,3\n", 1, "cannot tell the trace format"),
    ("empty-file", "t.jsonl", b"", None, "empty file"),
    ("header-only", "t.csv", AZURE_HEADER.encode(), None, "no records"),
    (
        "undecodable-bytes",
        "t.jsonl",
        GOOD_MOONCAKE.encode() + b'{"timestamp": 1, \xff\xfe\x00 }\n',
        2,
        "not UTF-8 text",
    ),
    ("binary-garbage", "t.jsonl", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4, 1, "not UTF-8 text"),
    ("not-gzip", "t.jsonl.gz", GOOD_MOONCAKE.encode(), None, "not gzip"),
]


def write(path: Path, content: str | bytes) -> Path:
    """Write ``content`` (text as UTF-8) to ``path``, creating parents; return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path
