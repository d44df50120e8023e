"""``dynamo-plan load``: Drive an OpenAI-compatible endpoint with a trace's arrivals and lengths."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer

from dynamo_plan.cli.options import (
    ApiChoice,
    ApiOption,
    RequestTimeoutOption,
    SkipBadLinesOption,
    TraceFormatOption,
)
from dynamo_plan.cli.output import (
    OutputFormat,
    OutputOption,
    check_outputs,
    emit,
    simple_table,
    warn,
)
from dynamo_plan.cli.progress_views import task_progress
from dynamo_plan.errors import InputError

app = typer.Typer(
    help="Drive an OpenAI-compatible endpoint with a trace's arrivals and lengths.",
    no_args_is_help=True,
)


def _requests(
    files: list[str], fmt: TraceFormatOption, skip_bad_lines: bool
) -> list[tuple[float, int, int]]:
    from dynamo_plan.cli.trace import load_and_warn  # as `trace stats` does

    trace = load_and_warn(files, fmt, skip_bad_lines)
    if trace.fmt == "rate":
        raise InputError(
            f"{trace.sources[0]}: a rate series has no individual requests to replay; "
            "give a request log (mooncake or azure)"
        )
    ts = trace.timestamp_ms
    arrival = (ts - ts[0]) / 1000.0
    return [
        (float(a), max(1, round(float(i))), max(1, round(float(o))))
        for a, i, o in zip(arrival, trace.input_length, trace.output_length, strict=True)
    ]


def _row(name: str, stats: dict[str, Any]) -> list[Any]:
    return [name, *(stats[k] for k in ("mean", "p50", "p90", "p99"))]


def _table(s: dict[str, Any]) -> Any:
    from rich.console import Group

    errors = ", ".join(f"{k}: {v}" for k, v in s["errors"].items()) or "none"
    overview = simple_table(
        f"{s['model']} at {s['url']}",
        ["", "value"],
        [
            ("requests", s["count"]),
            ("ok", s["ok"]),
            ("errors", errors),
            ("duration (s)", s["duration_s"]),
            ("achieved req/s", s["achieved_rps"]),
            ("output tokens/s", s["output_tok_s"]),
            ("queued for a slot", s["queued"]),
            ("total wait (s)", s["total_wait_s"]),
        ],
    )
    lat = simple_table(
        "latency (ms)",
        ["", "mean", "p50", "p90", "p99"],
        [_row("TTFT", s["ttft_ms"]), _row("ITL", s["itl_ms"]), _row("end-to-end", s["e2e_ms"])],
    )
    return Group(overview, lat)


@app.command("replay")
def replay(
    trace: Annotated[
        list[str],
        typer.Argument(
            metavar="TRACE",
            help="Trace files (.jsonl, .jsonl.gz, .csv), directories or globs; concatenated.",
            show_default=False,
        ),
    ],
    url: Annotated[
        str,
        typer.Option("--url", metavar="URL", help="Endpoint base URL, e.g. http://localhost:8000."),
    ],
    model: Annotated[
        str | None,
        typer.Option(
            "--model", metavar="MODEL", help="Model name (default: the first of GET /v1/models)."
        ),
    ] = None,
    rate_scale: Annotated[
        float,
        typer.Option(
            "--rate-scale",
            metavar="FACTOR",
            help="Speed-up: arrival times are divided by this factor.",
        ),
    ] = 1.0,
    duration: Annotated[
        float | None,
        typer.Option(
            "--duration", metavar="S", help="Send only arrivals in the first S seconds (scaled)."
        ),
    ] = None,
    concurrency_limit: Annotated[
        int | None,
        typer.Option(
            "--concurrency-limit", metavar="N", help="At most N in flight; the rest wait (counted)."
        ),
    ] = None,
    api: ApiOption = ApiChoice.chat,
    timeout: RequestTimeoutOption = 600.0,
    fmt: TraceFormatOption = None,
    skip_bad_lines: SkipBadLinesOption = False,
    csv: Annotated[
        Path | None,
        typer.Option("--csv", metavar="FILE", help="Write one row per request to this CSV file."),
    ] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Replay a trace's arrivals (open loop) and lengths against an OpenAI-compatible endpoint.

    Prints request counts, errors by kind, achieved req/s, output tokens/s and TTFT/ITL/end-to-end
    latency (mean, p50, p90, p99 in ms). Exit 3 when the endpoint cannot be reached.
    """
    from dynamo_plan.profiler.loadgen import EndpointError, check_replay_settings, list_models
    from dynamo_plan.profiler.loadgen import replay as run_replay
    from dynamo_plan.profiler.online import check_endpoint_url

    # bad input (1) before the endpoint is asked anything (an endpoint that fails is 3)
    check_endpoint_url(url, "--url")
    check_replay_settings(timeout, rate_scale, concurrency_limit)
    check_outputs(csv)
    if duration is not None and duration <= 0:
        raise InputError(f"--duration must be > 0 s, got {duration}")
    requests = _requests(trace, fmt, skip_bad_lines)
    if model is None:
        models = list_models(url, timeout_s=min(timeout, 10.0))
        if not models:
            raise EndpointError(f"{url}/v1/models lists no model; give --model")
        model = models[0]
    scale = rate_scale if rate_scale > 0 else 1.0
    total = sum(1 for a, _, _ in requests if duration is None or a / scale < duration)
    with task_progress(f"replaying {total} requests", total) as advance:
        report = run_replay(
            url,
            model,
            requests,
            rate_scale=rate_scale,
            duration_s=duration,
            concurrency_limit=concurrency_limit,
            api=api.value,
            timeout_s=timeout,
            progress=advance,
        )
    if csv is not None:
        _write_csv(csv, report.records)
    if report.errors:
        warn(f"{report.count - report.ok} of {report.count} requests failed: {report.errors}")
    summary = report.summary()
    emit(summary, output, table=lambda: _table(summary))


def _write_csv(path: Path, records: Any) -> None:
    import pandas as pd

    from dynamo_plan.formats.files import atomic_output

    frame = pd.DataFrame([dataclasses.asdict(r) for r in records])
    with atomic_output(path) as handle:  # all or nothing; a symlink's target is replaced
        frame.to_csv(handle, index=False)
