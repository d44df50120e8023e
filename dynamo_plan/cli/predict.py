"""``dynamo-plan predict``: backtest load predictors on traces; list the predictors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Group

from dynamo_plan.cli.options import SkipBadLinesOption, TraceFormatOption, predictor_params
from dynamo_plan.cli.output import (
    OutputFormat,
    OutputOption,
    emit,
    err_console,
    progress_bar,
    simple_table,
    warn,
)
from dynamo_plan.errors import InputError, UsageError
from dynamo_plan.predict import (
    DEFAULT_WARMUP,
    BacktestResult,
    available_predictors,
    backtest,
    best_by_wape,
    describe_predictors,
    factory,
    predictor_names,
    scored_range,
)
from dynamo_plan.predict.backtest import forecasts_frame
from dynamo_plan.predict.plot import plot_backtest
from dynamo_plan.resources import shipped_file
from dynamo_plan.trace import bucket, load_trace

app = typer.Typer(
    help="Load predictors (constant, arima, kalman, prophet, default): rolling-origin backtests "
    "on request traces, and the list of predictors.",
    no_args_is_help=True,
)

SERIES = ("count", "isl", "osl")
SAMPLE_TRACE = "mooncake_conversation_10min.jsonl"
_METRIC_COLUMNS = (  # the table's subset; -o json/yaml carry every metric
    ("wape %", "wape"),
    ("mae", "mae"),
    ("bias", "bias"),
    ("under", "under_rate"),
    ("p90 cov", "p90_coverage"),
    ("ms/step", "ms_per_step"),
)


def _split_series(value: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise InputError(f"--series: give at least one of {', '.join(SERIES)}")
    for name in names:
        if name not in SERIES:
            raise InputError(f"--series: unknown series '{name}'; valid: {', '.join(SERIES)}")
    return list(dict.fromkeys(names))


def _predictor_list(value: str | None) -> list[str]:
    if value is None:
        return [name for name, ok in available_predictors().items() if ok]
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise InputError(f"--predictors: give at least one of {', '.join(predictor_names())}")
    return list(dict.fromkeys(names))


def _ranking_table(data: dict[str, Any], title: str) -> Group:
    tables = []
    for series in dict.fromkeys(r["series"] for r in data["results"]):
        rows = sorted(
            (r for r in data["results"] if r["series"] == series),
            key=lambda r: np.inf if r["wape"] is None else r["wape"],
        )
        tables.append(
            simple_table(
                f"{series}: {title}",
                ["rank", "predictor", *(c for c, _ in _METRIC_COLUMNS)],
                [
                    [i + 1, r["predictor"], *(r[k] for _, k in _METRIC_COLUMNS)]
                    for i, r in enumerate(rows)
                ],
            )
        )
    return Group(*tables)


@app.command("backtest")
def backtest_cmd(
    traces: Annotated[
        list[str] | None,
        typer.Argument(
            help="Trace files (.jsonl, .jsonl.gz, .csv), directories or globs, concatenated. "
            f"Default: the bundled sample trace sample_traces/{SAMPLE_TRACE}.",
            show_default=False,
        ),
    ] = None,
    interval: Annotated[
        float, typer.Option("--interval", help="Interval length in seconds.")
    ] = 60.0,
    predictors: Annotated[
        str | None,
        typer.Option(
            "--predictors",
            help="Comma-separated predictors; default: every installed one "
            f"({', '.join(predictor_names())}).",
            show_default=False,
        ),
    ] = None,
    series: Annotated[
        str, typer.Option("--series", help="Comma-separated series: count, isl, osl.")
    ] = "count,isl,osl",
    horizon: Annotated[
        int, typer.Option("--horizon", min=1, help="Forecast horizon in intervals.")
    ] = 1,
    warmup: Annotated[
        int,
        typer.Option(
            "--warmup",
            min=1,
            help="Intervals fed before the first scored forecast (all predictors).",
        ),
    ] = DEFAULT_WARMUP,
    fmt: TraceFormatOption = None,
    skip_bad_lines: SkipBadLinesOption = False,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot", help="Write a PNG: actual vs forecasts with p90 bands.", dir_okay=False
        ),
    ] = None,
    csv: Annotated[
        Path | None,
        typer.Option("--csv", help="Write every scored forecast to this CSV.", dir_okay=False),
    ] = None,
    score_gpu_hours: Annotated[
        bool,
        typer.Option(
            "--score-gpu-hours",
            help="Also replay the trace with the planner policy using each predictor (simulate) "
            "and add its GPU-hours and SLA attainment to the count results; needs --profile, "
            "--ttft, --itl.",
        ),
    ] = False,
    profile: Annotated[
        Path | None,
        typer.Option("--profile", help="--score-gpu-hours: performance-profile directory."),
    ] = None,
    ttft: Annotated[
        float | None, typer.Option("--ttft", help="--score-gpu-hours: TTFT target (ms).")
    ] = None,
    itl: Annotated[
        float | None, typer.Option("--itl", help="--score-gpu-hours: ITL target (ms).")
    ] = None,
    startup_s: Annotated[
        float,
        typer.Option("--startup-s", help="--score-gpu-hours: replica start-up time (s)."),
    ] = 60.0,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Rolling-origin backtest: at each interval t, every predictor forecasts t from the data up
    to t - horizon; scored intervals are t = warmup + horizon - 1 .. last (the same for all)."""
    if not interval > 0:
        raise InputError(f"--interval must be > 0 seconds, got {interval:g}")
    if score_gpu_hours and (profile is None or ttft is None or itl is None):
        raise UsageError("--score-gpu-hours needs --profile, --ttft and --itl")
    if not score_gpu_hours and (profile is not None or ttft is not None or itl is not None):
        raise UsageError("--profile, --ttft and --itl apply to --score-gpu-hours")
    chosen_series = _split_series(series)
    names = _predictor_list(predictors)
    factories = {name: factory(name, **(predictor_params(name, interval) or {})) for name in names}
    if not traces:
        sample = shipped_file("sample_traces", SAMPLE_TRACE)
        err_console.print(f"no trace given: backtesting the bundled sample trace {sample}")
        traces = [str(sample)]
    trace = load_trace(traces, fmt.value if fmt else None, skip_bad_lines=skip_bad_lines)
    buckets = bucket(trace, interval)
    n = len(buckets)
    try:
        scored = scored_range(n, horizon, warmup)
    except InputError as e:
        raise InputError(f"{', '.join(trace.sources)}: {e} (--interval {interval:g} s)") from e
    data_series: dict[str, np.ndarray] = {}
    notes: list[str] = []  # printed once every check passed (an error stays one line)
    for name in chosen_series:
        values = buckets.series(name)  # type: ignore[arg-type]
        if np.all(np.isfinite(values)):
            data_series[name] = values
        else:
            notes.append(f"series '{name}' is unknown in this trace (no request lengths): skipped")
    if not data_series:
        raise InputError(f"none of the series {', '.join(chosen_series)} is known in this trace")
    if trace.skipped_lines:
        notes.append(f"skipped {trace.skipped_lines} bad line(s)")
    if trace.was_unsorted:
        notes.append("timestamps were not in ascending order; records were sorted (stable)")
    for note in notes:
        warn(note)
    total = len(data_series) * len(factories) * n
    with progress_bar("backtest", total, enabled=total > 2000) as advance:
        results = backtest(data_series, factories, horizon=horizon, warmup=warmup, on_step=advance)
    data = _report(results, interval, traces, n)
    if score_gpu_hours:
        assert profile is not None and ttft is not None and itl is not None
        scores = _gpu_hour_scores(trace, names, profile, ttft, itl, interval, startup_s)
        for row in data["results"]:
            if row["series"] == "count" and row["predictor"] in scores:
                row.update(scores[row["predictor"]])
    if csv is not None:
        _write_csv(results, interval, csv)
    if plot is not None:
        plot_backtest(results, interval, plot, title=", ".join(Path(t).name for t in traces))
    title = (
        f"{interval:g} s intervals, horizon {horizon}, scored t={scored.start}..{n - 1} "
        f"({len(scored)} of {n}), ranked by WAPE"
    )
    emit(data, output, table=lambda: _ranking_table(data, title))


def _report(
    results: list[BacktestResult], interval: float, traces: list[str], n: int
) -> dict[str, Any]:
    return {
        "interval_s": int(interval) if float(interval).is_integer() else interval,
        "traces": list(traces),
        "intervals": n,
        "results": [r.row() for r in results],
        "best": best_by_wape(results),
    }


def _gpu_hour_scores(
    trace: Any,
    names: list[str],
    profile_dir: Path,
    ttft: float,
    itl: float,
    interval: float,
    startup_s: float,
) -> dict[str, dict[str, float]]:
    """Per predictor: GPU-hours and SLA attainment of the ``planner`` policy using it, replaying
    ``trace`` through the simulator (``simulate --policy planner --predictor NAME``)."""
    from dynamo_plan.adapters.profile_files import load_profile
    from dynamo_plan.core.sla import SLA
    from dynamo_plan.sim import SimConfig, simulate
    from dynamo_plan.sim.compare import (
        PolicyOptions,
        check_feasible,
        make_policy,
        requests_from_trace,
    )

    prof = load_profile(profile_dir)
    sla = SLA(ttft, itl)
    config = SimConfig(interval_s=interval, startup_s=startup_s)
    requests = requests_from_trace(trace)
    check_feasible(requests, prof, sla, config)
    scores: dict[str, dict[str, float]] = {}
    with progress_bar("score GPU-hours", len(names), enabled=True) as advance:
        for name in names:
            options = PolicyOptions(
                predictor=name, predictor_params=predictor_params(name, interval)
            )
            policy = make_policy("planner", requests, prof, sla, config, options)
            result = simulate(requests, prof, sla, config, policy)
            scores[name] = {
                "gpu_hours": result.gpu_hours,
                "sla_attainment": result.sla_attainment,
            }
            advance()
    return scores


def _write_csv(results: list[BacktestResult], interval: float, path: Path) -> None:
    try:
        forecasts_frame(results, interval).to_csv(path, index=False)
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror or e}") from e


@app.command("list")
def list_cmd(output: OutputOption = OutputFormat.table) -> None:
    """The predictors, whether each is installed here, and their hyper-parameters."""
    data = {"predictors": describe_predictors()}
    rows = [
        [
            p["name"],
            "yes" if p["installed"] else f"no (needs the '{p['extra']}' extra)",
            ", ".join(f"{k}={v}" for k, v in p["params"].items()),
        ]
        for p in data["predictors"]
    ]
    emit(
        data,
        output,
        table=lambda: simple_table(None, ["predictor", "installed", "parameters"], rows),
    )
