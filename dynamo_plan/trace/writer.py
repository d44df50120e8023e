"""Writing a trace as Mooncake JSONL, atomically (temporary file + ``os.replace``)."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import tempfile
from pathlib import Path

import numpy as np

from dynamo_plan.errors import InputError
from dynamo_plan.trace.model import Trace

__all__ = ["write_mooncake"]

_CHUNK_ROWS = 10_000


def _number(value: float) -> str:
    """JSON text of a finite number: an integer when the value is whole, else a float."""
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def _new_file_mode() -> int:
    """0o666 minus the process umask: what ``open(path, "w")`` would have given."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _lines(trace: Trace) -> list[str]:
    rel = np.round(trace.timestamp_ms - trace.timestamp_ms[0], 3)
    return [
        f'{{"timestamp": {_number(t)}, "input_length": {_number(i)}, "output_length": {_number(o)}}}\n'
        for t, i, o in zip(
            rel.tolist(), trace.input_length.tolist(), trace.output_length.tolist(), strict=True
        )
    ]


def write_mooncake(trace: Trace, path: Path) -> int:
    """Write ``trace`` to ``path`` as Mooncake JSONL (gzip when the name ends in ``.gz``).

    One line per request: ``timestamp`` in ms relative to the first request (rounded to 1 µs),
    ``input_length``, ``output_length``; whole numbers are written as integers. The file appears
    complete or not at all. A rate series holds request counts per step, not requests, so it is
    refused (InputError). Returns the number of rows written.
    """
    if trace.fmt == "rate" or np.any(trace.weight != 1.0):
        raise InputError(
            "cannot convert a rate series to Mooncake JSONL: it holds request counts per time "
            "step, not individual requests with their own timestamp and lengths"
        )
    if len(trace) == 0:
        raise InputError("cannot write an empty trace")
    path = Path(path)
    parent = path.parent
    if not parent.is_dir():
        raise InputError(f"cannot write {path}: directory {parent} does not exist")
    lines = _lines(trace)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror or e}") from e
    try:
        with open(fd, "wb") as raw:
            sink: io.BufferedIOBase = (
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)
                if path.name.endswith(".gz")
                else raw
            )
            for start in range(0, len(lines), _CHUNK_ROWS):
                sink.write("".join(lines[start : start + _CHUNK_ROWS]).encode("utf-8"))
            if sink is not raw:
                sink.close()
            raw.flush()
            os.fchmod(raw.fileno(), _new_file_mode())
            os.fsync(raw.fileno())
        os.replace(tmp_name, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise InputError(f"cannot write {path}: {e.strerror or e}") from e
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    return len(lines)
