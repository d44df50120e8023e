"""``dynamo-plan plan decide``: one planner decision for a given load (what-if questions, scripts)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from dynamo_plan.cli.options import (
    DecodeGpusOption,
    ItlOption,
    MaxGpuBudgetOption,
    MinEndpointOption,
    PrefillGpusOption,
    ProfileDirOption,
    TtftOption,
    gpu_budget,
)
from dynamo_plan.cli.output import OutputFormat, OutputOption, emit, simple_table
from dynamo_plan.core.planner import DEFAULT_TTFT_QUANTILE
from dynamo_plan.errors import InputError, UsageError

app = typer.Typer(
    help="Planner decisions: replicas per role for a load, an SLA and a profile.",
    no_args_is_help=True,
)


@app.command("decide")
def decide(
    profile: ProfileDirOption,
    isl: Annotated[float, typer.Option("--isl", help="Mean input length (tokens).")],
    osl: Annotated[float, typer.Option("--osl", help="Mean output length (tokens).")],
    ttft: TtftOption,
    itl: ItlOption,
    requests: Annotated[
        float | None,
        typer.Option("--requests", help="Requests in the interval (or give --rps)."),
    ] = None,
    rps: Annotated[
        float | None, typer.Option("--rps", help="Request rate, requests/s (or give --requests).")
    ] = None,
    interval: Annotated[float, typer.Option("--interval", help="Adjustment interval (s).")] = 60.0,
    prefill_gpus: PrefillGpusOption = 1,
    decode_gpus: DecodeGpusOption = 1,
    min_endpoint: MinEndpointOption = 1,
    max_gpu_budget: MaxGpuBudgetOption = 8,
    current_prefill: Annotated[
        int | None,
        typer.Option("--current-prefill", help="Prefill replicas now (default: --min-endpoint)."),
    ] = None,
    current_decode: Annotated[
        int | None,
        typer.Option("--current-decode", help="Decode replicas now (default: --min-endpoint)."),
    ] = None,
    observed_ttft: Annotated[
        float | None, typer.Option("--observed-ttft", help="Observed mean TTFT (ms).")
    ] = None,
    observed_itl: Annotated[
        float | None, typer.Option("--observed-itl", help="Observed mean ITL (ms).")
    ] = None,
    observed_request_duration: Annotated[
        float | None,
        typer.Option("--observed-request-duration", help="Observed mean request duration (s)."),
    ] = None,
    no_correction: Annotated[
        bool,
        typer.Option("--no-correction", help="Ignore observed latencies (correction factors 1)."),
    ] = False,
    prefill_queueing: Annotated[
        bool,
        typer.Option(
            "--prefill-queueing/--no-prefill-queueing",
            help="Size prefill so the mean TTFT including queueing (M/D/c) meets the target; "
            "--no-prefill-queueing is Dynamo's throughput-only formula.",
        ),
    ] = True,
    ttft_quantile: Annotated[
        float | None,
        typer.Option(
            "--ttft-quantile",
            help="Size prefill so this TTFT quantile meets the target (M/D/c queueing); "
            "0: the mean TTFT.",
        ),
    ] = DEFAULT_TTFT_QUANTILE,
    output: OutputOption = OutputFormat.table,
) -> None:
    """One decision: prefill and decode replicas, throughput per GPU, expected latencies, why."""
    from dynamo_plan.adapters.profile_files import load_profile
    from dynamo_plan.core.correction import CorrectionConfig
    from dynamo_plan.core.planner import PlannerConfig, decide_once
    from dynamo_plan.core.sla import SLA, EngineGpus, Limits, Load

    if requests is not None and rps is not None:
        raise UsageError("give either --requests or --rps, not both")
    if requests is None and rps is None:
        raise UsageError("give the load: --requests N (per interval) or --rps R")
    budget = gpu_budget(max_gpu_budget)
    if interval <= 0:
        raise InputError(f"--interval must be > 0 seconds, got {interval:g}")
    n = requests if requests is not None else float(rps or 0.0) * interval
    config = PlannerConfig(
        interval_s=interval,
        sla=SLA(ttft, itl),
        engines=EngineGpus(prefill_gpus, decode_gpus),
        limits=Limits(min_endpoint, budget),
        correction=CorrectionConfig(enabled=not no_correction),
        prefill_queueing=prefill_queueing,
        ttft_quantile=ttft_quantile or None,
    )
    load = Load(n, isl, osl, interval)
    prof = load_profile(profile)
    d = decide_once(
        config,
        prof,
        load,
        current_prefill=current_prefill,
        current_decode=current_decode,
        observed_ttft_ms=observed_ttft,
        observed_itl_ms=observed_itl,
        observed_request_duration_s=observed_request_duration,
    )
    plan = d.plan
    assert plan is not None  # decide_once always has data
    result: dict[str, Any] = {
        "prefill_replicas": d.prefill,
        "decode_replicas": d.decode,
        "prefill_thpt_per_gpu": round(plan.prefill_thpt_per_gpu, 1),
        "decode_thpt_per_gpu": round(plan.decode_thpt_per_gpu, 1),
        "expected_ttft_ms": round(plan.expected_ttft_ms, 2),
        "expected_itl_ms": round(plan.expected_itl_ms, 2),
        "p_correction": round(d.corrections.prefill, 4),
        "d_correction": round(d.corrections.decode, 4),
        "reason": d.reason,
        "detail": d.detail,
        "prefill_needed": plan.prefill_needed,
        "decode_needed": plan.decode_needed,
        "gpus": d.prefill * prefill_gpus + d.decode * decode_gpus,
        "budget_clamped": plan.budget_clamped,
        "expected_ttft_queued_ms": round(plan.expected_ttft_queued_ms, 2),
        "prefill_utilization": round(plan.prefill_utilization, 4),
        "decode_concurrency": (
            None if plan.decode_concurrency is None else round(plan.decode_concurrency, 1)
        ),
        "requests": n,
        "interval_s": interval,
        "notes": list(plan.notes),
    }

    def table() -> Any:
        rows = [[k, ", ".join(v) if isinstance(v, list) else v] for k, v in result.items()]
        return simple_table("plan decide", ["field", "value"], rows)

    emit(result, output, table=table)
