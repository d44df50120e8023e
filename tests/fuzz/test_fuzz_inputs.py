"""Fuzzing every command that reads a file: garbage and mutated real traces.

Contract for each command in :data:`FILE_COMMANDS`: whatever the file holds, the command exits 0
(the file happened to be valid) or 1, and on 1 stderr is ONE readable line starting with
``error:`` — never a traceback, never a hang.

To fuzz another command, add an entry to ``FILE_COMMANDS`` below, e.g.::

    ("predict backtest", lambda path: ["predict", "backtest", str(path), "-o", "json"]),

Every test here then runs on it. The callable gets the path of the fuzzed input file (in a fresh temporary directory, which the
command may also write into) and returns the CLI arguments after ``dynamo-plan``.
"""

from __future__ import annotations

import gzip
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import SHARED_DATA, CliResult, run_cli
from tests.trace.cases import REAL_TRACES

FileCommand = tuple[str, Callable[[Path], list[str]]]

FILE_COMMANDS: list[FileCommand] = [
    ("trace stats", lambda path: ["trace", "stats", str(path), "-o", "json"]),
    (
        "trace convert",
        lambda path: ["trace", "convert", str(path), "-o", str(path.parent / "converted.jsonl")],
    ),
    ("predict backtest", lambda path: ["predict", "backtest", str(path), "-o", "json"]),
    (
        # static (cheap ticks) and day-long intervals: a mutated timestamp far in the future
        # must not make the fuzz slow; the SLA is loose so any profile shape is feasible
        "simulate",
        lambda path: [
            "simulate",
            str(path),
            "--profile",
            str(SHARED_DATA / "profiles" / "h200_llama3.1-8b-fp8_tp1p_tp1d"),
            "--ttft",
            "10000",
            "--itl",
            "100",
            "--policy",
            "static",
            "--interval",
            "86400",
            "--requests-csv",
            str(path.parent / "requests.csv"),
            "-o",
            "json",
        ],
    ),
    ("dgdr validate", lambda path: ["dgdr", "validate", str(path), "-o", "json"]),
]

SUFFIXES = [".jsonl", ".csv", ".jsonl.gz"]
SEED_LINES = 50
MAX_BYTES = 8192
FUZZ_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def check_outcome(label: str, result: CliResult) -> None:
    """The fuzz contract: exit 0, or exit 1 with one ``error:`` line and no traceback.

    Warnings the command printed before it met the error (e.g. "records were sorted") may stand
    before that line, one ``warning:`` line each; the error itself is exactly one line, last.
    """
    assert result.exit_code in (0, 1), f"{label}: exit {result.exit_code}\n{result.stderr}"
    assert "Traceback" not in result.stderr + result.stdout, label
    if result.exit_code == 1:
        lines = result.stderr.strip().splitlines()
        assert lines, f"{label}: exit 1 with nothing on stderr"
        *warnings, error = lines
        assert error.startswith("error:"), f"{label}: expected one error line, got {lines!r}"
        assert error.isprintable(), f"{label}: {error!r}"
        for line in warnings:
            assert line.startswith("warning:") and line.isprintable(), f"{label}: {lines!r}"


def run_on_bytes(command: FileCommand, suffix: str, content: bytes) -> None:
    """Write ``content`` to a fresh temporary file and check ``command`` on it."""
    label, build_args = command
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"input{suffix}"
        path.write_bytes(content)
        check_outcome(label, run_cli(*build_args(path)))


def _seed(name: str) -> bytes:
    """The first SEED_LINES lines of a shared real trace (header included)."""
    with (SHARED_DATA / "traces" / name).open("rb") as handle:
        return b"".join(handle.readline() for _ in range(SEED_LINES))


SEEDS: dict[str, bytes] = {}


def seed(name: str) -> bytes:
    if name not in SEEDS:
        SEEDS[name] = _seed(name)
    return SEEDS[name]


INJECTIONS = [
    b"abc", b"-1", b"-", b"NaN", b"Infinity", b"1e999", b"9" * 30, b"\x00", b"\xff\xfe",
    b'"', b"{", b"}", b"[", b"[/x]", b",", b",,", b"\n", b"\r\n", b" ", b"null", b"true",
    b"2023-13-45 99:99:99.9", b"\xe2\x82", b"\\u0000",
]  # fmt: skip

MUTATIONS = st.one_of(
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 20)),
    st.tuples(st.just("inject"), st.integers(0, 10**6), st.sampled_from(INJECTIONS)),
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(0, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.just(0)),
    st.tuples(st.just("swap_lines"), st.integers(0, 10**6), st.integers(0, 10**6)),
    st.tuples(st.just("drop_line"), st.integers(0, 10**6), st.just(0)),
    st.tuples(st.just("dup_line"), st.integers(0, 10**6), st.just(0)),
)


def mutate(data: bytes, ops: list[tuple[str, int, object]]) -> bytes:
    """Apply byte and line mutations (positions wrap around the current length)."""
    for op, pos, arg in ops:
        if op in ("swap_lines", "drop_line", "dup_line"):
            lines = data.splitlines(keepends=True)
            if not lines:
                continue
            i = pos % len(lines)
            if op == "swap_lines":
                assert isinstance(arg, int)
                j = arg % len(lines)
                lines[i], lines[j] = lines[j], lines[i]
            elif op == "drop_line":
                del lines[i]
            else:
                lines.insert(i, lines[i])
            data = b"".join(lines)
            continue
        at = pos % (len(data) + 1)
        if op == "delete":
            assert isinstance(arg, int)
            data = data[:at] + data[at + arg :]
        elif op == "inject":
            assert isinstance(arg, bytes)
            data = data[:at] + arg + data[at:]
        elif op == "flip" and data:
            assert isinstance(arg, int)
            at = pos % len(data)
            data = data[:at] + bytes([arg]) + data[at + 1 :]
        elif op == "truncate":
            data = data[:at]
    return data


TEXTY = st.text(
    alphabet=st.sampled_from(list('0123456789-.,:{}[]"e \nabcTIMESTAMPtimestamp_requests')),
    max_size=400,
)
LINEY = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "TIMESTAMP,ContextTokens,GeneratedTokens",
                "timestamp,requests,isl,osl",
                '{"timestamp": 1, "input_length": 2, "output_length": 3}',
                "2023-11-16 18:17:03.9799600,4808,10",
                "60,4,100,20",
            ]
        ),
        st.text(max_size=60),
    ),
    max_size=12,
).map(lambda lines: "\n".join(lines))

COMMAND_IDS = [c[0] for c in FILE_COMMANDS]


@pytest.mark.parametrize("command", FILE_COMMANDS, ids=COMMAND_IDS)
@FUZZ_SETTINGS
@given(content=st.binary(max_size=MAX_BYTES // 4), suffix=st.sampled_from(SUFFIXES))
def test_garbage_bytes(command: FileCommand, content: bytes, suffix: str) -> None:
    run_on_bytes(command, suffix, content)


@pytest.mark.parametrize("command", FILE_COMMANDS, ids=COMMAND_IDS)
@FUZZ_SETTINGS
@given(text=st.one_of(TEXTY, LINEY), suffix=st.sampled_from(SUFFIXES[:2]))
def test_garbage_text(command: FileCommand, text: str, suffix: str) -> None:
    run_on_bytes(command, suffix, text.encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize("command", FILE_COMMANDS, ids=COMMAND_IDS)
@pytest.mark.parametrize("trace", [t[0] for t in REAL_TRACES])
@FUZZ_SETTINGS
@given(
    ops=st.lists(MUTATIONS, min_size=1, max_size=6),
    gz_cut=st.one_of(st.none(), st.just(-1), st.integers(0, 4096)),
)
def test_mutated_real_files(
    shared_data: Path,
    command: FileCommand,
    trace: str,
    ops: list[tuple[str, int, object]],
    gz_cut: int | None,
) -> None:
    """``gz_cut``: None = plain file; -1 = gzip it whole; n >= 0 = gzip and keep n bytes."""
    content = mutate(seed(trace), ops)[: MAX_BYTES * 4]
    suffix = Path(trace).suffix
    if gz_cut is not None:
        content = gzip.compress(content, mtime=0)
        content = content if gz_cut < 0 else content[:gz_cut]
        suffix += ".gz"
    run_on_bytes(command, suffix, content)


# --- profile directories -------------------------------------------------------------------------

PROFILE_PARTS = {
    "prefill": "selected_prefill_interpolation/raw_data.npz",
    "decode": "selected_decode_interpolation/raw_data.npz",
}
JSON_PARTS = ["prefill_raw_data.json", "decode_raw_data.json", "profile.json"]
DECIDE = ["--rps", "10", "--isl", "1000", "--osl", "100", "--ttft", "300", "--itl", "20"]
ODD_VALUES = [np.nan, np.inf, -np.inf, -1.0, 0.0, 1e30, -1e30, 0.5]


def _decide_on(folder: Path) -> None:
    """``plan decide`` on a profile directory: exit 0, or 1 (bad profile) / 4 (a valid but odd
    profile that cannot meet the SLA) with one ``error:`` line, never a traceback."""
    result = run_cli("plan", "decide", "--profile", str(folder), *DECIDE, "-o", "json")
    assert result.exit_code in (0, 1, 4), f"exit {result.exit_code}\n{result.stderr}"
    assert "Traceback" not in result.stderr + result.stdout
    if result.exit_code:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), lines
        assert lines[0].isprintable(), lines


def _profile_copy(folder: Path, json_form: bool) -> Path:
    """The shared H200 profile in ``folder/profile``: npz form, or JSON form only."""
    from dynamo_plan.adapters.profile_files import load_profile, save_profile

    target = folder / "profile"
    save_profile(load_profile(SHARED_DATA / "profiles" / "h200_llama3.1-8b-fp8_tp1p_tp1d"), target)
    if json_form:
        for part in PROFILE_PARTS.values():
            (target / part).unlink()
        (target / "profile.json").write_text('{"model": "llama-3.1-8b", "sla": {"ttft": 300}}\n')
    return target


@FUZZ_SETTINGS
@given(
    part=st.sampled_from(sorted(PROFILE_PARTS)),
    ops=st.lists(MUTATIONS, min_size=1, max_size=4),
)
def test_profile_npz_bytes(part: str, ops: list[tuple[str, int, object]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = _profile_copy(Path(folder), json_form=False)
        path = root / PROFILE_PARTS[part]
        path.write_bytes(mutate(path.read_bytes(), ops))
        _decide_on(root)


@FUZZ_SETTINGS
@given(
    part=st.sampled_from(sorted(PROFILE_PARTS)),
    key_index=st.integers(0, 10),
    action=st.sampled_from(["value", "truncate", "drop", "reverse", "scalar", "text"]),
    at=st.integers(0, 10**6),
    value=st.sampled_from(ODD_VALUES),
)
def test_profile_npz_values(part: str, key_index: int, action: str, at: int, value: float) -> None:
    """Valid npz files holding odd arrays: NaN/inf/negative values, lengths that disagree, a
    missing key, unsorted axes, a scalar, text."""
    with tempfile.TemporaryDirectory() as folder:
        root = _profile_copy(Path(folder), json_form=False)
        path = root / PROFILE_PARTS[part]
        with np.load(path) as data:
            arrays = {k: np.array(data[k]) for k in data.files}
        key = sorted(arrays)[key_index % len(arrays)]
        arr = arrays[key].astype(np.float64)
        if action == "value" and arr.size:
            arr.reshape(-1)[at % arr.size] = value
        elif action == "truncate":
            arr = arr.reshape(-1)[: at % (arr.size + 1)]
        elif action == "reverse":
            arr = arr.reshape(-1)[::-1].copy()
        elif action == "scalar":
            arr = np.array(value)
        if action == "drop":
            del arrays[key]
        elif action == "text":
            arrays[key] = np.array(["x"] * max(arr.size, 1))
        else:
            arrays[key] = arr
        with path.open("wb") as handle:
            np.savez(handle, **arrays)
        _decide_on(root)


@FUZZ_SETTINGS
@given(
    part=st.sampled_from(JSON_PARTS),
    ops=st.lists(MUTATIONS, min_size=1, max_size=4),
)
def test_profile_json_text(part: str, ops: list[tuple[str, int, object]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = _profile_copy(Path(folder), json_form=True)
        path = root / part
        path.write_bytes(mutate(path.read_bytes(), ops))
        _decide_on(root)
