"""Request traces: streaming readers (Mooncake JSONL, Azure LLM inference CSV, rate series CSV),
interval bucketing, summary statistics and Mooncake JSONL output.

Public API::

    load_trace(paths, fmt=None, *, skip_bad_lines=False) -> Trace
    detect_format(path) -> TraceFormat
    bucket(trace, interval_s) -> IntervalSeries
    trace_stats(trace, interval_s=60.0) -> dict
    write_mooncake(trace, path) -> int
"""

from dynamo_plan.trace.bucket import IntervalSeries, bucket
from dynamo_plan.trace.model import TRACE_FORMATS, Trace, TraceFormat
from dynamo_plan.trace.reader import detect_format, load_trace
from dynamo_plan.trace.stats import trace_stats
from dynamo_plan.trace.writer import write_mooncake

__all__ = [
    "TRACE_FORMATS",
    "IntervalSeries",
    "Trace",
    "TraceFormat",
    "bucket",
    "detect_format",
    "load_trace",
    "trace_stats",
    "write_mooncake",
]
