"""``dynamo-plan simulate``: replay a trace through a simulated disaggregated deployment with a
scaling policy in the loop (or all of them with ``--compare``)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from enum import StrEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer

from dynamo_plan.cli.options import (
    MaxGpuBudgetOption,
    MinEndpointOption,
    ProfileDirOption,
    ScaleDownPatienceOption,
    SizingChoice,
    SizingOption,
    SkipBadLinesOption,
    StartupOption,
    TraceFormatOption,
    gpu_budget,
    predictor_params,
)
from dynamo_plan.cli.output import (
    OutputFormat,
    OutputOption,
    check_outputs,
    emit,
    simple_table,
    warn,
)
from dynamo_plan.cli.profile_settings import (
    ProfileDecodeGpusOption,
    ProfileItlOption,
    ProfilePrefillGpusOption,
    ProfileTtftOption,
    from_profile,
    require,
)
from dynamo_plan.cli.progress_views import task_progress
from dynamo_plan.core.defaults import (
    DEFAULT_LOAD_QUANTILE,
    DEFAULT_TTFT_QUANTILE,
)
from dynamo_plan.errors import InputError, UsageError

if TYPE_CHECKING:  # the simulator is imported when a run starts
    from dynamo_plan.core.profile import PerformanceProfile
    from dynamo_plan.core.sla import SLA
    from dynamo_plan.sim import RequestArrays, SimConfig, SimResult
    from dynamo_plan.sim.compare import PolicyOptions


class PolicyChoice(StrEnum):
    """Policies accepted by --policy."""

    optimal = "optimal"
    oracle_forecast = "oracle-forecast"
    oracle = "oracle"  # the former name of oracle-forecast
    planner = "planner"
    dynamo = "dynamo"
    reactive = "reactive"
    static = "static"


def run_and_report(
    requests: RequestArrays,
    profile: PerformanceProfile,
    sla: SLA,
    config: SimConfig,
    names: Sequence[str],
    options: PolicyOptions,
    *,
    compare: bool,
    output: OutputFormat,
    plot: Path | None = None,
    requests_csv: Path | None = None,
    title: str = "",
    show: bool = True,
) -> list[SimResult]:
    """Check feasibility, run ``names`` with a progress bar, write the plot/CSV and (``show``)
    print the results."""
    from dynamo_plan.sim.compare import check_feasible, compare_json, run_policies

    check_feasible(requests, profile, sla, config)
    steps = 100
    done: dict[str, int] = {}
    with ExitStack() as stack:
        rows = None
        if requests_csv is not None:  # rows written as requests finish; all or nothing
            from dynamo_plan.formats.files import atomic_output

            rows = _CsvRows(stack.enter_context(atomic_output(requests_csv)))
        advance = stack.enter_context(task_progress("simulate", steps * len(names), enabled=True))

        def progress(name: str, fraction: float) -> None:
            target = int(fraction * steps)
            while done.get(name, 0) < target:
                done[name] = done.get(name, 0) + 1
                advance()

        results = run_policies(names, requests, profile, sla, config, options, progress, rows)
    if plot is not None:
        from dynamo_plan.sim.plot import plot_simulation

        plot_simulation(results, sla, config.interval_s, plot, title=title)
    oop = results[0].out_of_profile_requests
    if oop:
        warn(
            f"{oop} of {results[0].requests} requests are beyond the profile's range "
            "(served with clamped lookups)"
        )
    if not show:
        return results
    if compare:
        docs = compare_json(results)
        target = options.attainment_target
        emit(docs, output, table=lambda: compare_table(docs, sla, title, target))
    else:
        doc = results[0].to_json()
        emit(doc, output, table=lambda: _single_table(doc, sla, title))
    return results


class _CsvRows:
    """``--requests-csv``: per-request rows appended as each run hands them over (``request``,
    ``policy``, then :data:`~dynamo_plan.sim.result.PER_REQUEST_COLUMNS`; in the order requests
    finish, those that never finished last), the header once."""

    def __init__(self, handle: IO[str]) -> None:
        self.handle = handle
        self.header = True

    def __call__(self, policy: str, frame: Any) -> None:
        frame.insert(1, "policy", policy)
        frame.to_csv(self.handle, index=False, header=self.header)
        self.header = False


def _pct(x: float | None) -> float | None:
    return None if x is None else 100.0 * x


def compare_table(docs: list[dict[str, Any]], sla: SLA, title: str, attainment: float) -> Any:
    """The ``--compare`` table, best first (``rank``, see
    :data:`~dynamo_plan.sim.compare.RANKING_RULE`): SLA attainment, GPU-hours (and × the
    oracle's), p99 latencies, most replicas per role (wall time: in -o json); the caption adds
    the ``unforeseeable`` requests, weighed against the misses ``attainment`` allows."""
    from dynamo_plan.sim.compare import RANKING_RULE

    ranked = sorted(docs, key=lambda d: d.get("rank", 0))
    rows = [
        [
            d.get("rank"),
            d["policy"],
            _pct(d["sla_attainment"]),
            d["gpu_hours"],
            d.get("gpu_hours_vs_optimal", d.get("gpu_hours_vs_oracle")),
            d["ttft_ms"]["p99"],
            d["itl_ms"]["p99"],
            d.get("unservable", 0),
            _most(d, "prefill"),
            _most(d, "decode"),
        ]
        for d in ranked
    ]
    return simple_table(
        _heading(sla, title),
        [
            "rank",
            "policy",
            "SLA met %",
            "GPU-hours",
            "× optimal GPU-h"
            if any("gpu_hours_vs_optimal" in d for d in docs)
            else "× oracle GPU-h",
            "TTFT p99 (ms)",
            "ITL p99 (ms)",
            "unservable",
            "max prefill replicas",
            "max decode replicas",
        ],
        rows,
        caption=RANKING_RULE[0].upper() + RANKING_RULE[1:] + "." + _blind_caption(docs, attainment),
    )


def _blind_caption(docs: list[dict[str, Any]], attainment: float) -> str:
    """A sentence on the ``unforeseeable`` requests (the same for every run), when there are
    any; when they are more than the misses the target allows (``(1 - attainment)`` of the
    servable requests), it says that only capacity held through idle intervals meets it."""
    from dynamo_plan.sim.optimal import allowed_misses

    doc = docs[0]
    blind, total = doc.get("unforeseeable", 0), doc["requests"]
    if not blind:
        return ""
    allowed = allowed_misses(attainment, total - doc.get("unservable", 0))
    text = (
        f" {blind} of {total} requests ({100.0 * blind / total:.1f} %) arrive in intervals whose "
        "engines are ordered while the interval seen last had none: a planner that follows "
        "the load orders no engines for them."
    )
    if blind > allowed:
        text += (
            f" That is more than the {allowed} misses an attainment of {attainment:g} allows: "
            "only capacity held through idle intervals (static replicas, or a --min-endpoint "
            "floor) can meet it."
        )
    return text


def _single_table(doc: dict[str, Any], sla: SLA, title: str) -> Any:
    rows: list[list[Any]] = [
        ["policy", doc["policy"]],
        ["requests", doc["requests"]],
        ["completed", doc["completed"]],
        ["SLA met %", _pct(doc["sla_attainment"])],
        ["GPU-hours", doc["gpu_hours"]],
        *[[f"TTFT {k} (ms)", v] for k, v in doc["ttft_ms"].items()],
        *[[f"ITL {k} (ms)", v] for k, v in doc["itl_ms"].items()],
        ["max prefill", _most(doc, "prefill")],
        ["max decode", _most(doc, "decode")],
        ["decisions", len(doc["replica_timeline"])],
        ["out-of-profile requests", doc["out_of_profile_requests"]],
        ["unservable requests", doc.get("unservable", 0)],
        ["unforeseeable requests", doc.get("unforeseeable", 0)],
        ["wall s", doc["wall_s"]],
    ]
    return simple_table(_heading(sla, title), ["field", "value"], rows)


def _most(doc: dict[str, Any], role: str) -> int:
    """Most replicas of ``role`` (prefill/decode) in a result document's replica timeline."""
    return max((e[role] for e in doc["replica_timeline"]), default=0)


def _heading(sla: SLA, title: str) -> str:
    head = f"SLA TTFT {sla.ttft_ms:g} ms, ITL {sla.itl_ms:g} ms"
    return f"{title} — {head}" if title else head


def simulate(
    trace: Annotated[
        list[str],
        typer.Argument(
            metavar="TRACE", help="Trace files (.jsonl, .jsonl.gz, .csv), directories or globs."
        ),
    ],
    profile: ProfileDirOption,
    ttft: ProfileTtftOption = None,
    itl: ProfileItlOption = None,
    interval: Annotated[
        float, typer.Option("--interval", metavar="S", help="Planner adjustment interval (s).")
    ] = 60.0,
    policy: Annotated[
        PolicyChoice,
        typer.Option(
            "--policy",
            metavar="POLICY",
            help="Scaling policy: optimal, oracle-forecast (formerly oracle), planner, dynamo, "
            "reactive or static.",
        ),
    ] = PolicyChoice.planner,
    predictor: Annotated[
        str,
        typer.Option("--predictor", metavar="NAME", help="Load predictor of the planner policy."),
    ] = "default",
    load_quantile: Annotated[
        float | None,
        typer.Option(
            "--load-quantile",
            metavar="Q",
            help="Size for this quantile of the request-count forecast (e.g. 0.9); "
            f"default: {DEFAULT_LOAD_QUANTILE if DEFAULT_LOAD_QUANTILE is not None else 'the mean'}.",
            show_default=False,
        ),
    ] = DEFAULT_LOAD_QUANTILE,
    scale_down_patience: ScaleDownPatienceOption = None,
    ttft_quantile: Annotated[
        float | None,
        typer.Option(
            "--ttft-quantile",
            metavar="Q",
            help="planner: size prefill so this TTFT quantile meets the target (M/D/c "
            "queueing); 0: the mean TTFT.",
        ),
    ] = DEFAULT_TTFT_QUANTILE,
    sizing: SizingOption = SizingChoice.project,
    sla_attainment: Annotated[
        float | None,
        typer.Option(
            "--sla-attainment",
            metavar="A",
            help="Fraction of (servable) requests that must meet TTFT and ITL: the target of "
            "the optimal policy (default 0.99) and, when given, of the planner, which then sizes "
            "by replaying a sample of recent requests.",
            show_default=False,
        ),
    ] = None,
    startup_s: StartupOption = 60.0,
    rate_scale: Annotated[
        float,
        typer.Option(
            "--rate-scale",
            metavar="FACTOR",
            help="Compress the trace's time by this factor (k× rate).",
        ),
    ] = 1.0,
    max_gpu_budget: MaxGpuBudgetOption = -1,
    min_endpoint: MinEndpointOption = 1,
    prefill_gpus: ProfilePrefillGpusOption = None,
    decode_gpus: ProfileDecodeGpusOption = None,
    prefill_replicas: Annotated[
        int | None,
        typer.Option(
            "--prefill-replicas",
            metavar="N",
            help="static: prefill replicas (default: sized for the busiest interval).",
        ),
    ] = None,
    decode_replicas: Annotated[
        int | None,
        typer.Option(
            "--decode-replicas",
            metavar="N",
            help="static: decode replicas (default: sized for the busiest interval).",
        ),
    ] = None,
    compare: Annotated[
        bool,
        typer.Option("--compare", help="Run every policy and print one comparison table."),
    ] = False,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            metavar="FILE",
            help="Write a PNG: load, replicas, TTFT/ITL over time.",
        ),
    ] = None,
    requests_csv: Annotated[
        Path | None,
        typer.Option(
            "--requests-csv",
            metavar="FILE",
            help="Write per-request results to this CSV (rows as requests finish; "
            "without it no per-request state is kept).",
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", metavar="N", help="Seed of the engines' tie-breaks.")
    ] = 0,
    fmt: TraceFormatOption = None,
    skip_bad_lines: SkipBadLinesOption = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Replay TRACE against a simulated prefill/decode deployment scaled by a policy: SLA
    attainment, GPU-hours, latency percentiles and the replica timeline.

    The SLA (--ttft, --itl) and the GPUs per engine default to what the profile's profile.json
    records; a flag that differs from it wins, with a note."""
    from dynamo_plan.adapters.profile_files import load_profile, loaded_profile_meta
    from dynamo_plan.core.sla import SLA, Limits
    from dynamo_plan.sim import SimConfig
    from dynamo_plan.sim.compare import POLICY_NAMES, PolicyOptions, requests_from_trace
    from dynamo_plan.trace import load_trace

    if (prefill_replicas is None) != (decode_replicas is None):
        raise UsageError("give both --prefill-replicas and --decode-replicas, or neither")
    if prefill_replicas is not None and policy is not PolicyChoice.static and not compare:
        raise UsageError("--prefill-replicas/--decode-replicas apply to --policy static")
    budget = gpu_budget(max_gpu_budget)
    if min_endpoint < 1:
        raise InputError(f"--min-endpoint must be >= 1, got {min_endpoint}")
    if load_quantile is not None and not 0.0 < load_quantile < 1.0:
        raise InputError(f"--load-quantile must be in (0, 1), got {load_quantile:g}")
    if sla_attainment is not None and not 0.0 < sla_attainment < 1.0:
        raise InputError(f"--sla-attainment must be in (0, 1), got {sla_attainment}")
    if ttft_quantile is not None and not 0.0 <= ttft_quantile < 1.0:
        raise InputError(f"--ttft-quantile must be in [0, 1), got {ttft_quantile:g}")
    if scale_down_patience is not None and scale_down_patience < 0:
        raise InputError(f"--scale-down-patience must be >= 0, got {scale_down_patience}")
    check_outputs(plot, requests_csv)  # before the work, not after it
    prof = load_profile(profile)
    flags = {"ttft": ttft, "itl": itl}
    flags |= {"prefill_engine_num_gpu": prefill_gpus, "decode_engine_num_gpu": decode_gpus}
    meta = loaded_profile_meta(prof, profile)
    inputs = from_profile(meta, flags)
    require(inputs, ("ttft", "itl"), meta, profile)
    resolved = inputs.values
    sla = SLA(float(resolved["ttft"]), float(resolved["itl"]))
    gpus = [resolved[f"{r}_engine_num_gpu"] for r in ("prefill", "decode")]
    config = SimConfig(
        interval_s=interval,
        startup_s=startup_s,
        prefill_gpus=1 if gpus[0] is None else int(gpus[0]),
        decode_gpus=1 if gpus[1] is None else int(gpus[1]),
        seed=seed,
    )
    options = PolicyOptions(
        predictor=predictor,
        load_quantile=load_quantile,
        scale_down_patience=scale_down_patience,
        # --sizing dynamo: Dynamo's throughput-only formula on the mean TTFT
        ttft_quantile=None if sizing == SizingChoice.dynamo else (ttft_quantile or None),
        prefill_queueing=sizing != SizingChoice.dynamo,
        sla_attainment=sla_attainment,
        limits=Limits(min_endpoint, budget),
        predictor_params=predictor_params(predictor, interval),
        static_replicas=(
            None
            if prefill_replicas is None or decode_replicas is None
            else (prefill_replicas, decode_replicas)
        ),
    )
    if policy is PolicyChoice.planner or compare:
        from dynamo_plan.predict.registry import make_predictor

        make_predictor(predictor, **(options.predictor_params or {}))  # fail fast
    tr = load_trace(trace, fmt.value if fmt else None, skip_bad_lines=skip_bad_lines)
    if tr.skipped_lines:
        warn(f"skipped {tr.skipped_lines} bad line(s)")
    requests = requests_from_trace(tr, rate_scale=rate_scale)
    from dynamo_plan.profiler.extend import extend_for_traffic

    covered = extend_for_traffic(prof, profile, requests.isl, requests.osl)
    if covered.message:  # traffic beyond the measured range: estimated, or why it stays clamped
        warn(covered.message)
    prof = covered.profile
    names = list(POLICY_NAMES) if compare else [policy.value]
    title = ", ".join(Path(t).name for t in trace) + (
        f" ×{rate_scale:g}" if rate_scale != 1 else ""
    )
    run_and_report(
        requests,
        prof,
        sla,
        config,
        names,
        options,
        compare=compare,
        output=output,
        plot=plot,
        requests_csv=requests_csv,
        title=title,
    )
