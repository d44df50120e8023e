"""Where trace lines come from: path expansion (file, directory, glob) and streamed, numbered lines.

Files are read line by line in binary (gzip recognised by its magic bytes), so a file of any
size costs memory only for its records; each line is decoded on its own so an undecodable byte is
reported with its line number. Every failure is an :class:`InputError` naming the file.
"""

from __future__ import annotations

import glob
import gzip
import io
import zlib
from collections.abc import Generator, Sequence
from pathlib import Path

from dynamo_plan.errors import InputError

__all__ = [
    "MAX_LINE_BYTES",
    "TRACE_SUFFIXES",
    "BadLine",
    "decode_line",
    "expand_paths",
    "iter_raw_lines",
    "snippet",
]

TRACE_SUFFIXES: tuple[str, ...] = (".jsonl", ".jsonl.gz", ".csv", ".csv.gz")
"""Names picked up when a directory is given (non-recursive, sorted by name)."""

MAX_LINE_BYTES = 16 * 1024 * 1024
"""Longest line accepted (16 MiB); a longer one means the file is not a trace."""

_GZIP_MAGIC = b"\x1f\x8b"
_GLOB_CHARS = frozenset("*?[")


class BadLine(Exception):
    """One malformed line; the reader adds file and line number (or skips it)."""


def snippet(value: object, limit: int = 40) -> str:
    """A short, printable (ASCII, one-line) rendering of ``value`` for error messages."""
    text = ascii(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_trace_name(name: str) -> bool:
    return any(name.endswith(suffix) for suffix in TRACE_SUFFIXES)


def expand_paths(paths: Sequence[str | Path]) -> list[Path]:
    """Files named by ``paths``, in order: a file as is, a directory's trace files sorted by name,
    a glob pattern's matching files sorted. InputError for anything that names no file."""
    if not paths:
        raise InputError("no trace file given")
    files: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and _is_trace_name(p.name))
            if not found:
                raise InputError(
                    f"{path}: directory contains no trace files ({', '.join('*' + s for s in TRACE_SUFFIXES)})"
                )
            files.extend(found)
        elif path.is_file():
            files.append(path)
        elif path.exists():
            raise InputError(f"{path}: not a regular file")
        elif _GLOB_CHARS.intersection(str(item)):
            matches = sorted(Path(m) for m in glob.glob(str(item), recursive=True))
            matched = [m for m in matches if m.is_file()]
            if not matched:
                raise InputError(f"glob pattern '{item}' matches no files")
            files.extend(matched)
        else:
            raise InputError(f"{path}: no such file or directory")
    return files


def iter_raw_lines(path: Path) -> Generator[tuple[int, bytes], None, None]:
    """Yield ``(line_number, raw_bytes)`` (1-based; gzip decompressed on the fly).

    Raises InputError when the file cannot be opened, a ``.gz`` file is not gzip, the gzip data
    is corrupt or truncated (naming the line reached), or a line exceeds :data:`MAX_LINE_BYTES`.
    """
    try:
        handle: io.BufferedIOBase = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except OSError as e:
        raise InputError(f"{path}: cannot open ({e.strerror or e})") from e
    with handle:
        try:
            magic = handle.read(2)
            handle.seek(0)
        except OSError as e:
            raise InputError(f"{path}: cannot read ({e.strerror or e})") from e
        stream: io.BufferedIOBase
        if magic == _GZIP_MAGIC:
            stream = gzip.GzipFile(fileobj=handle, mode="rb")
        elif path.name.endswith(".gz"):
            raise InputError(f"{path}: named .gz but is not gzip data")
        else:
            stream = handle
        lineno = 0
        while True:
            try:
                raw = stream.readline(MAX_LINE_BYTES + 1)
            except (OSError, EOFError, zlib.error) as e:
                kind = "gzip data" if stream is not handle else "file"
                raise InputError(f"{path}:{lineno + 1}: cannot read {kind} ({e})") from e
            if not raw:
                return
            lineno += 1
            if len(raw) > MAX_LINE_BYTES:
                raise InputError(
                    f"{path}:{lineno}: line longer than {MAX_LINE_BYTES // 2**20} MiB "
                    "(not a trace file?)"
                )
            yield lineno, raw


def decode_line(raw: bytes, lineno: int) -> str:
    """UTF-8 text of one line without its line ending (and without a BOM on line 1).

    Raises :class:`BadLine` naming the first undecodable byte and its column."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadLine(
            f"not UTF-8 text (byte 0x{raw[e.start]:02x} at column {e.start + 1})"
        ) from None
    if lineno == 1 and text.startswith("\ufeff"):
        text = text[1:]
    return text.rstrip("\r\n")
