"""``dynamo-plan trace``: statistics of request traces and conversion to Mooncake JSONL."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dynamo_plan.cli.options import FormatChoice, SkipBadLinesOption, TraceFormatOption
from dynamo_plan.cli.output import (
    OutputFormat,
    OutputOption,
    emit,
    err_console,
    simple_table,
    warn,
)

if TYPE_CHECKING:  # the trace readers (numpy) are imported when a command runs
    from rich.console import Group

    from dynamo_plan.trace import Trace

app = typer.Typer(
    help="Request traces (Mooncake JSONL, Azure LLM inference CSV, rate-series CSV): "
    "statistics and conversion to Mooncake JSONL.",
    no_args_is_help=True,
)


FilesArgument = Annotated[
    list[str],
    typer.Argument(
        metavar="FILE",
        help="Trace files (.jsonl, .jsonl.gz, .csv), directories or glob patterns; "
        "all of one format, concatenated.",
        show_default=False,
    ),
]


def load_and_warn(files: list[str], fmt: FormatChoice | None, skip_bad_lines: bool) -> Trace:
    from dynamo_plan.trace import load_trace

    trace = load_trace(files, fmt.value if fmt else None, skip_bad_lines=skip_bad_lines)
    if trace.skipped_lines:
        warn(f"skipped {trace.skipped_lines} bad line(s) in {len(trace.sources)} file(s)")
    if trace.was_unsorted:
        warn("timestamps were not in ascending order; records were sorted (stable)")
    return trace


def _fmt_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return value


def _stats_table(data: dict[str, Any]) -> Group:
    from rich.console import Group

    rate, disp = data["rate_rps"], data["index_of_dispersion"]
    interval = f"{data['interval_s']:g} s"
    rows: list[tuple[str, Any]] = [
        ("files", _fmt_value(data["files"])),
        ("format", data["format"]),
        ("requests", data["requests"]),
        ("records", data["records"]),
        ("skipped lines", data["skipped_lines"]),
        ("sorted on read", _fmt_value(data["was_unsorted"])),
        ("span (s)", data["span_s"]),
        (f"intervals of {interval}", data["intervals"]),
        ("empty intervals", data["empty_intervals"]),
        (f"mean rate (req/s, per {interval})", rate["mean"]),
        (f"peak rate (req/s, per {interval})", rate["peak"]),
    ]
    if data["step_s"] is not None:
        rows.insert(2, ("series step (s)", data["step_s"]))
    rows += [(f"index of dispersion, {w} windows", v) for w, v in disp.items()]
    overview = simple_table("trace", ["", "value"], rows)
    lengths = simple_table(
        "tokens per request",
        ["", "mean", "p50", "p90", "p99"],
        [
            (name.upper(), *(data[name][k] for k in ("mean", "p50", "p90", "p99")))
            for name in ("isl", "osl")
        ],
    )
    return Group(overview, lengths)


@app.command("stats")
def stats(
    files: FilesArgument,
    fmt: TraceFormatOption = None,
    interval: Annotated[
        float,
        typer.Option("--interval", metavar="S", help="Interval for the rate figures, in seconds."),
    ] = 60.0,
    skip_bad_lines: SkipBadLinesOption = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Statistics of a trace: requests, span, mean/peak rate, ISL/OSL percentiles, burstiness."""
    from dynamo_plan.trace import trace_stats

    trace = load_and_warn(files, fmt, skip_bad_lines)
    data = trace_stats(trace, interval)
    emit(data, output, table=lambda: _stats_table(data))


@app.command("convert")
def convert(
    files: FilesArgument,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            metavar="FILE",
            help="Mooncake JSONL file to write (.jsonl, or .jsonl.gz for gzip).",
            show_default=False,
        ),
    ],
    fmt: TraceFormatOption = None,
    skip_bad_lines: SkipBadLinesOption = False,
    output: Annotated[
        OutputFormat | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FORMAT",
            help="Also print a summary on stdout: table, json or yaml.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Convert request traces to Mooncake JSONL (timestamps in ms from the first request).

    A rate series cannot be converted: it has request counts per step, not requests."""
    from dynamo_plan.trace import write_mooncake

    trace = load_and_warn(files, fmt, skip_bad_lines)
    rows = write_mooncake(trace, out)
    err_console.print(
        f"wrote {rows} requests to {out} (Mooncake JSONL) from {len(trace.sources)} "
        f"{trace.fmt} file(s)",
        markup=False,
        soft_wrap=True,
    )
    if output is not None:
        summary = {
            "output": str(out),
            "rows": rows,
            "format": trace.fmt,
            "files": list(trace.sources),
            "skipped_lines": trace.skipped_lines,
            "was_unsorted": trace.was_unsorted,
        }
        emit(
            summary,
            output,
            table=lambda: simple_table(
                "trace convert", ["", "value"], [(k, _fmt_value(v)) for k, v in summary.items()]
            ),
        )
