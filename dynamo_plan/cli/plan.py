"""``dynamo-plan plan decide``: one planner decision for a given load (what-if questions, scripts);
``dynamo-plan plan run``: the live planner loop (:mod:`dynamo_plan.live`)."""

from __future__ import annotations

from dataclasses import fields
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from dynamo_plan.cli.options import (
    PROFILE_DIR,
    DecodeGpusOption,
    ItlOption,
    MaxGpuBudgetOption,
    MinEndpointOption,
    PrefillGpusOption,
    ProfileDirOption,
    ScaleDownPatienceOption,
    TtftOption,
    TtftQuantileOption,
    gpu_budget,
    predictor_params,
)
from dynamo_plan.cli.output import OutputFormat, OutputOption, emit, simple_table, warn
from dynamo_plan.cli.profile_settings import (
    ProfileDecodeGpusOption,
    ProfileIslOption,
    ProfileItlOption,
    ProfileOslOption,
    ProfilePrefillGpusOption,
    ProfileTtftOption,
    from_profile,
    require,
)
from dynamo_plan.core.defaults import DEFAULT_TTFT_QUANTILE
from dynamo_plan.errors import InputError, UsageError
from dynamo_plan.live.config import RunSettings

app = typer.Typer(
    help="Planner decisions: replicas per role for a load, an SLA and a profile; the live planner.",
    no_args_is_help=True,
)


DECIDE_LABELS = {
    "prefill_replicas": "prefill replicas",
    "decode_replicas": "decode replicas",
    "p_correction": "prefill correction (x)",
    "d_correction": "decode correction (x)",
    "prefill_needed": "prefill engines needed",
    "decode_needed": "decode engines needed",
    "gpus": "GPUs",
    "budget_clamped": "clamped to the GPU budget",
    "requests": "requests per interval",
    "prefill_thpt_per_gpu": "prefill tokens/s/GPU",
    "decode_thpt_per_gpu": "decode tokens/s/GPU",
    "expected_ttft_ms": "expected TTFT, ms (no queue)",
    "expected_itl_ms": "expected ITL, ms",
    "expected_ttft_queued_ms": "expected TTFT, ms (queued)",
    "prefill_utilization": "prefill utilization (0-1)",
    "decode_concurrency": "decode concurrency (requests/engine)",
    "interval_s": "interval, s",
    "isl": "ISL, tokens",
    "osl": "OSL, tokens",
    "ttft": "TTFT target, ms",
    "itl": "ITL target, ms",
    "prefill_engine_num_gpu": "GPUs per prefill engine",
    "decode_engine_num_gpu": "GPUs per decode engine",
}
"""Table labels with units for ``plan decide`` (``-o json`` keeps the field names)."""


@app.command("decide")
def decide(
    profile: ProfileDirOption,
    isl: ProfileIslOption = None,
    osl: ProfileOslOption = None,
    ttft: ProfileTtftOption = None,
    itl: ProfileItlOption = None,
    requests: Annotated[
        float | None,
        typer.Option("--requests", metavar="N", help="Requests in the interval (or give --rps)."),
    ] = None,
    rps: Annotated[
        float | None,
        typer.Option("--rps", metavar="RPS", help="Request rate, requests/s (or give --requests)."),
    ] = None,
    interval: Annotated[
        float, typer.Option("--interval", metavar="S", help="Adjustment interval (s).")
    ] = 60.0,
    prefill_gpus: ProfilePrefillGpusOption = None,
    decode_gpus: ProfileDecodeGpusOption = None,
    min_endpoint: MinEndpointOption = 1,
    max_gpu_budget: MaxGpuBudgetOption = 8,
    current_prefill: Annotated[
        int | None,
        typer.Option(
            "--current-prefill", metavar="N", help="Prefill replicas now (default: --min-endpoint)."
        ),
    ] = None,
    current_decode: Annotated[
        int | None,
        typer.Option(
            "--current-decode", metavar="N", help="Decode replicas now (default: --min-endpoint)."
        ),
    ] = None,
    observed_ttft: Annotated[
        float | None, typer.Option("--observed-ttft", metavar="MS", help="Observed mean TTFT (ms).")
    ] = None,
    observed_itl: Annotated[
        float | None, typer.Option("--observed-itl", metavar="MS", help="Observed mean ITL (ms).")
    ] = None,
    observed_request_duration: Annotated[
        float | None,
        typer.Option(
            "--observed-request-duration", metavar="S", help="Observed mean request duration (s)."
        ),
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
    ttft_quantile: TtftQuantileOption = DEFAULT_TTFT_QUANTILE,
    output: OutputOption = OutputFormat.table,
) -> None:
    """One decision: prefill and decode replicas, throughput per GPU, expected latencies, why.

    The SLA (--ttft, --itl), the load's shape (--isl, --osl) and the GPUs per engine default to
    what the profile's profile.json records; a flag that differs from it wins, with a note."""
    from dynamo_plan.adapters.profile_files import load_profile, loaded_profile_meta
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
    prof = load_profile(profile)
    flags = {"isl": isl, "osl": osl, "ttft": ttft, "itl": itl}
    flags |= {"prefill_engine_num_gpu": prefill_gpus, "decode_engine_num_gpu": decode_gpus}
    meta = loaded_profile_meta(prof, profile)
    inputs = from_profile(meta, flags)
    require(inputs, ("isl", "osl", "ttft", "itl"), meta, profile)
    isl, osl = float(inputs.values["isl"]), float(inputs.values["osl"])
    gpus = [inputs.values[f"{r}_engine_num_gpu"] for r in ("prefill", "decode")]
    prefill_gpus, decode_gpus = (1 if g is None else int(g) for g in gpus)
    config = PlannerConfig(
        interval_s=interval,
        sla=SLA(float(inputs.values["ttft"]), float(inputs.values["itl"])),
        engines=EngineGpus(prefill_gpus, decode_gpus),
        limits=Limits(min_endpoint, budget),
        correction=CorrectionConfig(enabled=not no_correction),
        prefill_queueing=prefill_queueing,
        ttft_quantile=ttft_quantile or None,
    )
    load = Load(n, isl, osl, interval)
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
        "inputs": {
            k: {"value": v, "from": inputs.sources[k]}
            for k, v in (
                ("isl", isl),
                ("osl", osl),
                ("ttft", config.sla.ttft_ms),
                ("itl", config.sla.itl_ms),
                ("prefill_engine_num_gpu", prefill_gpus),
                ("decode_engine_num_gpu", decode_gpus),
            )
        },
    }

    def table() -> Any:
        rows = [
            [DECIDE_LABELS.get(k, k), ", ".join(v) if isinstance(v, list) else v]
            for k, v in result.items()
            if k != "inputs"
        ]
        rows += [
            [DECIDE_LABELS.get(k, k), f"{v['value']:g} ({v['from']})"]
            for k, v in result["inputs"].items()
        ]
        return simple_table("plan decide", ["field", "value"], rows)

    emit(result, output, table=table)


# --- plan run ------------------------------------------------------------------------------------


class ConnectorChoice(StrEnum):
    """How ``plan run`` carries out its decisions."""

    none = "none"
    virtual = "virtual"
    kubernetes = "kubernetes"


_RUN = RunSettings()


@app.command("run")
def run(
    ctx: typer.Context,
    profile: Annotated[Path | None, PROFILE_DIR] = None,
    prometheus_url: Annotated[
        str | None,
        typer.Option(
            "--prometheus-url",
            "--prometheus-endpoint",
            metavar="URL",
            help="Prometheus base URL (default: $PROMETHEUS_ENDPOINT).",
        ),
    ] = None,
    prometheus_token_file: Annotated[
        Path | None,
        typer.Option("--prometheus-token-file", metavar="FILE", help="Bearer token file."),
    ] = None,
    prometheus_ca_bundle: Annotated[
        Path | None,
        typer.Option("--prometheus-ca-bundle", metavar="FILE", help="PEM CA bundle for https."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", metavar="MODEL", help="Served model name (frontend `model` label)."
        ),
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace",
            metavar="NAMESPACE",
            help="Dynamo namespace (`dynamo_namespace` label, etcd keys).",
        ),
    ] = None,
    connector: Annotated[
        ConnectorChoice,
        typer.Option(
            "--connector",
            metavar="CONNECTOR",
            help="none: observe and log only; virtual: state file/etcd; kubernetes: patch the DGD.",
        ),
    ] = ConnectorChoice.none,
    state: Annotated[
        Path | None, typer.Option("--state", metavar="FILE", help="Virtual connector: state file.")
    ] = None,
    etcd: Annotated[
        str | None, typer.Option("--etcd", metavar="URL", help="Virtual connector: etcd URL.")
    ] = None,
    virtual_timeout: Annotated[
        float,
        typer.Option(
            "--virtual-timeout",
            metavar="S",
            help="Seconds an unacknowledged decision blocks newer ones.",
        ),
    ] = _RUN.virtual_timeout,
    virtual_wait: Annotated[
        float,
        typer.Option(
            "--virtual-wait",
            metavar="S",
            help="Virtual connector: after a write, wait up to S seconds for the acknowledgement.",
        ),
    ] = _RUN.virtual_wait,
    dgd: Annotated[
        str | None,
        typer.Option(
            "--dgd",
            metavar="NAME",
            help="Kubernetes connector: the DynamoGraphDeployment to scale.",
        ),
    ] = None,
    kube_namespace: Annotated[
        str | None,
        typer.Option(
            "--kube-namespace",
            metavar="NAMESPACE",
            help="Kubernetes connector: the DGD's namespace (default: the context's / the pod's).",
        ),
    ] = None,
    kubeconfig: Annotated[
        Path | None,
        typer.Option(
            "--kubeconfig",
            metavar="FILE",
            help="Kubernetes connector: kubeconfig (default: in-cluster).",
        ),
    ] = None,
    context: Annotated[
        str | None,
        typer.Option("--context", metavar="NAME", help="Kubernetes connector: kubeconfig context."),
    ] = None,
    ready_timeout: Annotated[
        float,
        typer.Option(
            "--ready-timeout",
            metavar="S",
            help="Kubernetes connector: seconds a scale-up may stay not Ready before it is reported.",
        ),
    ] = _RUN.ready_timeout,
    interval: Annotated[
        float,
        typer.Option(
            "--interval", "--adjustment-interval", metavar="S", help="Adjustment interval (s)."
        ),
    ] = _RUN.interval,
    ttft: TtftOption = _RUN.ttft,
    itl: ItlOption = _RUN.itl,
    isl: Annotated[
        float,
        typer.Option(
            "--isl",
            metavar="TOKENS",
            help="SLA input length (tokens): the shape assumed until measured.",
        ),
    ] = _RUN.isl,
    osl: Annotated[
        float,
        typer.Option(
            "--osl",
            metavar="TOKENS",
            help="SLA output length (tokens): the shape assumed until measured.",
        ),
    ] = _RUN.osl,
    predictor: Annotated[
        str,
        typer.Option(
            "--predictor", "--load-predictor", metavar="NAME", help="Load predictor (predict list)."
        ),
    ] = _RUN.predictor,
    warmup_trace: Annotated[
        Path | None,
        typer.Option(
            "--warmup-trace",
            metavar="FILE",
            help="Trace whose bucketed history warms the predictors.",
        ),
    ] = None,
    max_gpu_budget: MaxGpuBudgetOption = _RUN.max_gpu_budget,
    min_endpoint: MinEndpointOption = _RUN.min_endpoint,
    prefill_engine_num_gpu: PrefillGpusOption = _RUN.prefill_engine_num_gpu,
    decode_engine_num_gpu: DecodeGpusOption = _RUN.decode_engine_num_gpu,
    no_correction: Annotated[
        bool,
        typer.Option("--no-correction", help="Ignore observed latencies (correction factors 1)."),
    ] = _RUN.no_correction,
    startup_s: Annotated[
        float,
        typer.Option(
            "--startup-s", metavar="S", help="Replica start-up time (s): how far ahead to size."
        ),
    ] = _RUN.startup_s,
    load_quantile: Annotated[
        float | None,
        typer.Option(
            "--load-quantile", metavar="Q", help="Size for this quantile of the load forecast."
        ),
    ] = _RUN.load_quantile,
    ttft_quantile: TtftQuantileOption = _RUN.ttft_quantile,
    scale_down_patience: ScaleDownPatienceOption = _RUN.scale_down_patience,
    metrics_port: Annotated[
        int,
        typer.Option(
            "--metrics-port", metavar="PORT", help="Port of the planner's /metrics; 0 disables."
        ),
    ] = _RUN.metrics_port,
    metrics_addr: Annotated[
        str, typer.Option("--metrics-addr", metavar="ADDR", help="Address /metrics listens on.")
    ] = _RUN.metrics_addr,
    max_ticks: Annotated[
        int | None,
        typer.Option("--max-ticks", metavar="N", help="Stop after N ticks (default: never)."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            metavar="FILE",
            help="YAML settings (snake_case flag names); flags override it.",
        ),
    ] = None,
    print_config: Annotated[
        bool,
        typer.Option(
            "--print-config", help="Print the merged settings and exit (connects nothing)."
        ),
    ] = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Run the planner: every --interval seconds read the frontend's metrics from Prometheus,
    forecast, decide and scale through the connector; one JSON log line per tick on stderr;
    /metrics on --metrics-port. SIGTERM/SIGINT stop it after the current tick and print a
    summary (ticks, decisions by reason, GPU hours). --model, the SLA (--ttft, --itl, --isl,
    --osl) and the GPUs per engine default to the profile's profile.json, when it has them."""
    import signal
    import threading

    from dynamo_plan.cli.profile_settings import note
    from dynamo_plan.live.config import check_settings, resolve_run_settings
    from dynamo_plan.live.service import planner_config, run_planner

    given = {k: getattr(v, "value", v) for k, v in locals().items() if k in _RUN_FIELDS}
    explicit = {k for k in given if _from_command_line(ctx, k)}
    settings, sources, notes = resolve_run_settings(given, explicit, config)
    for line in notes:
        note(line)
    check_settings(settings)
    planner_config(settings)  # InfeasibleSLAError (exit 4) for a budget below the floors
    if print_config:
        emit(settings.as_dict(), output, table=lambda: _settings_table(settings.as_dict(), sources))
        return

    stop = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        stop.set()

    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, _stop)
    try:
        summary = run_planner(
            settings,
            stop,
            predictor_params=predictor_params(settings.predictor, settings.interval),
            warn=warn,
        )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def table() -> Any:
        rows = [
            [k, ", ".join(f"{r}: {n}" for r, n in v.items()) if isinstance(v, dict) else v]
            for k, v in summary.items()
        ]
        return simple_table("plan run", ["field", "value"], rows)

    emit(summary, output, table=table)


_RUN_FIELDS = frozenset(f.name for f in fields(RunSettings))


def _from_command_line(ctx: typer.Context, name: str) -> bool:
    """Whether flag ``name`` was given on the command line (not its default)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name != "DEFAULT"


def _settings_table(values: dict[str, Any], sources: dict[str, str]) -> Any:
    rows = [[k, v, sources.get(k, "")] for k, v in values.items()]
    return simple_table("plan run settings", ["setting", "value", "from"], rows)
