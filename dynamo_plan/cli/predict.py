"""``dynamo-plan predict``: backtest load predictors on traces; list the predictors."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dynamo_plan.cli.options import SkipBadLinesOption, TraceFormatOption, predictor_params
from dynamo_plan.cli.output import (
    OutputFormat,
    OutputOption,
    check_outputs,
    emit,
    err_console,
    simple_table,
    warn,
)
from dynamo_plan.cli.progress_views import task_progress
from dynamo_plan.core.defaults import DEFAULT_WARMUP
from dynamo_plan.errors import InputError, UsageError

if TYPE_CHECKING:  # the predictors (numpy, pmdarima, …) are imported when a command runs
    import numpy as np
    from rich.console import Group

    from dynamo_plan.predict import BacktestResult

app = typer.Typer(
    help="Load predictors (constant, arima, kalman, prophet, default): rolling-origin backtests "
    "on request traces, and the list of predictors.",
    no_args_is_help=True,
)

SERIES = ("count", "isl", "osl")
SAMPLE_TRACE = "mooncake_conversation_10min.jsonl"
#: The table's columns: (header, metric key, scale); -o json/yaml carry every metric unscaled.
#: ``{unit}`` is the series' unit (requests per interval for count, tokens for isl/osl).
_METRIC_COLUMNS: tuple[tuple[str, str, float], ...] = (
    ("WAPE %", "wape", 1.0),
    ("MAE ({unit})", "mae", 1.0),
    ("bias ({unit})", "bias", 1.0),
    ("under %", "under_rate", 100.0),
    ("p90 cover %", "p90_coverage", 100.0),
    ("ms/step median", "ms_per_step", 1.0),
    ("ms/step mean", "ms_per_step_mean", 1.0),
    ("ms/step max", "ms_per_step_max", 1.0),
)
_SERIES_UNITS = {"count": "req", "isl": "tokens", "osl": "tokens"}


def _split_series(value: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise InputError(f"--series: give at least one of {', '.join(SERIES)}")
    for name in names:
        if name not in SERIES:
            raise InputError(f"--series: unknown series '{name}'; valid: {', '.join(SERIES)}")
    return list(dict.fromkeys(names))


def _predictor_list(value: str | None) -> list[str]:
    from dynamo_plan.predict import available_predictors, predictor_names

    if value is None:
        return [name for name, ok in available_predictors().items() if ok]
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise InputError(f"--predictors: give at least one of {', '.join(predictor_names())}")
    return list(dict.fromkeys(names))


def _ranking_table(data: dict[str, Any], title: str) -> Group:
    from rich.console import Group

    tables = []
    for series in dict.fromkeys(r["series"] for r in data["results"]):
        rows = sorted(
            (r for r in data["results"] if r["series"] == series),
            key=lambda r: float("inf") if r["wape"] is None else r["wape"],
        )
        unit = _SERIES_UNITS.get(series, "")
        tables.append(
            simple_table(
                f"{series}: {title}",
                ["rank", "predictor", *(c.format(unit=unit) for c, _, _ in _METRIC_COLUMNS)],
                [
                    [i + 1, r["predictor"], *(_scaled(r.get(k), x) for _, k, x in _METRIC_COLUMNS)]
                    for i, r in enumerate(rows)
                ],
            )
        )
    return Group(*tables)


def _scaled(value: Any, factor: float) -> Any:
    return value * factor if isinstance(value, int | float) else value


@app.command("backtest")
def backtest_cmd(
    traces: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="TRACE",
            help="Trace files (.jsonl, .jsonl.gz, .csv), directories or globs, concatenated. "
            f"Default: the bundled sample trace sample_traces/{SAMPLE_TRACE}.",
            show_default=False,
        ),
    ] = None,
    interval: Annotated[
        float, typer.Option("--interval", metavar="S", help="Interval length in seconds.")
    ] = 60.0,
    predictors: Annotated[
        str | None,
        typer.Option(
            "--predictors",
            metavar="NAME[,…]",
            help="Comma-separated predictors; default: every installed one (predict list).",
            show_default=False,
        ),
    ] = None,
    series: Annotated[
        str,
        typer.Option(
            "--series", metavar="NAME[,…]", help="Comma-separated series: count, isl, osl."
        ),
    ] = "count,isl,osl",
    horizon: Annotated[
        int, typer.Option("--horizon", metavar="N", min=1, help="Forecast horizon in intervals.")
    ] = 1,
    warmup: Annotated[
        int,
        typer.Option(
            "--warmup",
            metavar="N",
            min=1,
            help="Intervals fed before the first scored forecast (all predictors).",
        ),
    ] = DEFAULT_WARMUP,
    fmt: TraceFormatOption = None,
    skip_bad_lines: SkipBadLinesOption = False,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            metavar="FILE",
            help="Write a PNG: actual vs forecasts with p90 bands.",
        ),
    ] = None,
    csv: Annotated[
        Path | None,
        typer.Option("--csv", metavar="FILE", help="Write every scored forecast to this CSV."),
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
        typer.Option(
            "--profile", metavar="DIR", help="--score-gpu-hours: performance-profile directory."
        ),
    ] = None,
    ttft: Annotated[
        float | None,
        typer.Option("--ttft", metavar="MS", help="--score-gpu-hours: TTFT target (ms)."),
    ] = None,
    itl: Annotated[
        float | None,
        typer.Option("--itl", metavar="MS", help="--score-gpu-hours: ITL target (ms)."),
    ] = None,
    startup_s: Annotated[
        float,
        typer.Option(
            "--startup-s", metavar="S", help="--score-gpu-hours: replica start-up time (s)."
        ),
    ] = 60.0,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Rolling-origin backtest: at each interval t, every predictor forecasts t from the data up
    to t - horizon; scored intervals are t = warmup + horizon - 1 .. last (the same for all)."""
    import numpy as np

    from dynamo_plan.predict import backtest, factory, scored_range
    from dynamo_plan.predict.plot import plot_backtest
    from dynamo_plan.resources import shipped_file
    from dynamo_plan.trace import bucket, load_trace

    if not interval > 0:
        raise InputError(f"--interval must be > 0 seconds, got {interval:g}")
    if score_gpu_hours and (profile is None or ttft is None or itl is None):
        raise UsageError("--score-gpu-hours needs --profile, --ttft and --itl")
    if not score_gpu_hours and (profile is not None or ttft is not None or itl is not None):
        raise UsageError("--profile, --ttft and --itl apply to --score-gpu-hours")
    check_outputs(plot, csv)  # before the work, not after it
    chosen_series = _split_series(series)
    names = _predictor_list(predictors)
    factories = {name: factory(name, **(predictor_params(name, interval) or {})) for name in names}
    if not traces:
        sample = shipped_file("sample_traces", SAMPLE_TRACE)
        err_console.print(
            f"no trace given: backtesting the bundled sample trace {sample}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
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
    with task_progress("backtest", total) as advance:
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
    from dynamo_plan.predict import best_by_wape

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
    with task_progress("score GPU-hours", len(names), enabled=True) as advance:
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
    from dynamo_plan.formats.files import atomic_output
    from dynamo_plan.predict.backtest import forecasts_frame

    with atomic_output(path) as handle:  # all or nothing; a symlink's target is replaced
        forecasts_frame(results, interval).to_csv(handle, index=False)


@app.command("list")
def list_cmd(output: OutputOption = OutputFormat.table) -> None:
    """The predictors, whether each is installed here, and their hyper-parameters."""
    from dynamo_plan.predict import describe_predictors

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
