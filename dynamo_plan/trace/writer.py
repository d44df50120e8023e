"""Writing a trace as Mooncake JSONL, all-or-nothing (``formats.files.atomic_output``)."""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import IO

import numpy as np

from dynamo_plan.errors import InputError
from dynamo_plan.formats.files import atomic_output
from dynamo_plan.trace.model import Trace

__all__ = ["write_mooncake"]

_CHUNK_ROWS = 10_000


def _number(value: float) -> str:
    """JSON text of a finite number: an integer when the value is whole, else a float."""
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


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
    lines = _lines(trace)
    with atomic_output(path, "wb") as raw:
        sink: io.BufferedIOBase | IO[bytes] = (
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)
            if path.name.endswith(".gz")
            else raw
        )
        for start in range(0, len(lines), _CHUNK_ROWS):
            sink.write("".join(lines[start : start + _CHUNK_ROWS]).encode("utf-8"))
        if sink is not raw:
            sink.close()
    return len(lines)
