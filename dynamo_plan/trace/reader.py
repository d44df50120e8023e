"""Streaming trace readers: format detection and :func:`load_trace`."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import closing
from pathlib import Path

import numpy as np

from dynamo_plan.errors import InputError
from dynamo_plan.trace.model import TRACE_FORMATS, Trace, TraceFormat
from dynamo_plan.trace.parsers import (
    AZURE_COLUMNS,
    RATE_COLUMNS,
    RowParser,
    csv_format_of_header,
    csv_row_parser,
    parse_mooncake,
)
from dynamo_plan.trace.source import BadLine, decode_line, expand_paths, iter_raw_lines, snippet

__all__ = ["detect_format", "load_trace"]


def _first_line(path: Path) -> tuple[int, str] | None:
    """Line number and text of the first non-blank line, or None for an empty file."""
    with closing(iter_raw_lines(path)) as lines:
        for lineno, raw in lines:
            try:
                text = decode_line(raw, lineno)
            except BadLine as e:
                raise InputError(f"{path}:{lineno}: {e}") from None
            if text.strip():
                return lineno, text
    return None


def detect_format(path: Path) -> TraceFormat:
    """The format of one trace file (or of the first trace file of a directory / glob),
    from its first non-blank line: a JSON object is ``mooncake``; a CSV header with
    ``TIMESTAMP, ContextTokens, GeneratedTokens`` is ``azure``; with ``timestamp, requests``
    it is ``rate``. InputError for an empty file or an unrecognisable first line."""
    path = expand_paths([path])[0]
    first = _first_line(path)
    if first is None:
        raise InputError(f"{path}: empty file (no records)")
    lineno, text = first
    if text.lstrip().startswith("{"):
        return "mooncake"
    fmt = csv_format_of_header(text)
    if fmt is None:
        raise InputError(
            f"{path}:{lineno}: cannot tell the trace format: expected a JSON object (mooncake) "
            f"or a CSV header {', '.join(AZURE_COLUMNS)} (azure) or {', '.join(RATE_COLUMNS)} "
            f"[, isl, osl] (rate); found {snippet(text)}"
        )
    return fmt


class _Columns:
    """Growing columns of parsed rows (plain lists; converted to numpy once at the end)."""

    def __init__(self) -> None:
        self.ts: list[float] = []
        self.isl: list[float] = []
        self.osl: list[float] = []
        self.weight: list[float] = []


def _read_file(path: Path, fmt: TraceFormat, skip_bad_lines: bool, out: _Columns) -> int:
    """Append the records of ``path`` to ``out``; return the number of bad lines skipped."""
    parse: RowParser | None = parse_mooncake if fmt == "mooncake" else None
    skipped = records = 0
    seen_text = False
    ts, isl, osl, weight = out.ts, out.isl, out.osl, out.weight
    with closing(iter_raw_lines(path)) as lines:
        for lineno, raw in lines:
            try:
                text = decode_line(raw, lineno)
                if not text.strip():
                    continue
                seen_text = True
                if parse is None:  # CSV header: cannot be skipped
                    try:
                        parse = csv_row_parser(fmt, text)
                    except BadLine as e:
                        raise InputError(f"{path}:{lineno}: {e}") from None
                    continue
                row = parse(text)
            except BadLine as e:
                if parse is None or not skip_bad_lines:
                    raise InputError(f"{path}:{lineno}: {e}") from None
                skipped += 1
                continue
            ts.append(row[0])
            isl.append(row[1])
            osl.append(row[2])
            weight.append(row[3])
            records += 1
    if not seen_text:
        raise InputError(f"{path}: empty file (no records)")
    if records == 0:
        detail = f" ({skipped} bad lines skipped)" if skipped else " (only a header)"
        raise InputError(f"{path}: no records{detail}")
    return skipped


def load_trace(
    paths: Sequence[str | Path],
    fmt: TraceFormat | None = None,
    *,
    skip_bad_lines: bool = False,
) -> Trace:
    """Read and concatenate trace files (all of one format), streaming line by line.

    ``paths``: files (``.jsonl``, ``.jsonl.gz``, ``.csv``, gzip detected by content), directories
    (their ``*.jsonl``, ``*.jsonl.gz``, ``*.csv`` files, sorted) or glob patterns. ``fmt``: the
    format, or None to detect it per file (all must agree). A malformed line raises InputError
    ``file:line: what is wrong``; with ``skip_bad_lines`` it is skipped and counted instead
    (``Trace.skipped_lines``). Records are sorted by timestamp (stable) when they were not in
    order (``Trace.was_unsorted``). Timestamps: Mooncake as read (ms); Azure wall-clock as ms
    since the epoch (UTC); rate series seconds × 1000, with ``step_s`` the median difference of
    its distinct timestamps.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    if fmt is not None and fmt not in TRACE_FORMATS:
        raise InputError(
            f"unknown trace format {fmt!r}; expected one of {', '.join(TRACE_FORMATS)}"
        )
    files = expand_paths(paths)
    if fmt is None:
        formats = [(path, detect_format(path)) for path in files]
        first_path, chosen = formats[0]
        for path, other in formats[1:]:
            if other != chosen:
                raise InputError(
                    f"all trace files must have one format: {first_path} is {chosen}, "
                    f"{path} is {other}"
                )
    else:
        chosen = fmt
    columns = _Columns()
    skipped = sum(_read_file(path, chosen, skip_bad_lines, columns) for path in files)
    ts = np.asarray(columns.ts, dtype=np.float64)
    arrays = [ts] + [
        np.asarray(c, dtype=np.float64) for c in (columns.isl, columns.osl, columns.weight)
    ]
    was_unsorted = bool(ts.size > 1 and np.any(np.diff(ts) < 0))
    if was_unsorted:
        order = np.argsort(ts, kind="stable")
        arrays = [a[order] for a in arrays]
    step_s: float | None = None
    if chosen == "rate":
        steps = np.diff(np.unique(arrays[0]))
        if steps.size == 0:
            raise InputError(
                f"{files[0]}: a rate series needs at least 2 distinct timestamps to know its step"
            )
        step_s = float(np.median(steps)) / 1000.0
    return Trace(
        timestamp_ms=arrays[0],
        input_length=arrays[1],
        output_length=arrays[2],
        weight=arrays[3],
        sources=tuple(str(p) for p in files),
        fmt=chosen,
        skipped_lines=skipped,
        step_s=step_s,
        was_unsorted=was_unsorted,
    )
