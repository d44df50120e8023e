"""``dynamo-plan plan decide``: one planner decision for a given load (what-if questions, scripts);
``dynamo-plan plan run``: the live planner loop (:mod:`dynamo_plan.live`)."""

from __future__ import annotations

import inspect
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from dynamo_plan.cli.options import (
    MaxGpuBudgetOption,
    MinEndpointOption,
    ProfileDirOption,
    SizingChoice,
    SizingOption,
    TtftQuantileOption,
    gpu_budget,
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
from dynamo_plan.live.dynamo_compat import DYNAMO_OPTIONS
from dynamo_plan.live.settings_spec import SETTINGS, SIZINGS, SettingInfo

assert tuple(SizingChoice) == SIZINGS

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
    sizing: SizingOption = SizingChoice.project,
    sla_attainment: Annotated[
        float | None,
        typer.Option(
            "--sla-attainment",
            metavar="A",
            help="Size so that this fraction of requests meets TTFT and ITL, by replaying a "
            "sample (Poisson arrivals; shapes from --shapes, else all at --isl/--osl) on the "
            "simulator.",
        ),
    ] = None,
    shapes: Annotated[
        Path | None,
        typer.Option(
            "--shapes",
            metavar="TRACE",
            help="A trace whose requests' (ISL, OSL) pairs are the sample's shapes "
            "(with --sla-attainment).",
        ),
    ] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """One decision: prefill and decode replicas, throughput per GPU, expected latencies, why.

    The SLA (--ttft, --itl), the load's shape (--isl, --osl) and the GPUs per engine default to
    what the profile's profile.json records; a flag that differs from it wins, with a note.
    With --sla-attainment the replicas are the cheapest whose simulated replay of a sample of
    requests meets the target (the same sizing as plan run and simulate)."""
    from dynamo_plan.adapters.profile_files import load_profile, loaded_profile_meta
    from dynamo_plan.core.correction import CorrectionConfig
    from dynamo_plan.core.planner import PlannerConfig, decide_once
    from dynamo_plan.core.sla import SLA, EngineGpus, Limits, Load

    if requests is not None and rps is not None:
        raise UsageError("give either --requests or --rps, not both")
    if requests is None and rps is None:
        raise UsageError("give the load: --requests N (per interval) or --rps R")
    budget = gpu_budget(max_gpu_budget)
    if sizing == SizingChoice.dynamo:  # Dynamo's throughput formula on the mean TTFT
        prefill_queueing, ttft_quantile = False, None
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
    from dynamo_plan.profiler.extend import extend_profile

    covered = extend_profile(prof, profile, isl_to=isl, context_to=isl + osl / 2)
    if covered.message:  # beyond the measured range: estimated, or why lookups stay clamped
        warn(covered.message)
    prof = covered.profile
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
    sizer, shapes_from = _decide_sizer(sla_attainment, shapes, isl, osl, config)
    d = decide_once(
        config,
        prof,
        load,
        current_prefill=current_prefill,
        current_decode=current_decode,
        observed_ttft_ms=observed_ttft,
        observed_itl_ms=observed_itl,
        observed_request_duration_s=observed_request_duration,
        sizer=sizer,
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
        "sla_attainment": sla_attainment,
        "shapes": shapes_from,
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
#
# The options of `plan run` are built from the settings table (dynamo_plan.live.settings_spec):
# one option per setting (its flag and own spellings), one per Dynamo 0.6–0.9 spelling of a
# setting (--adjustment-interval …) and one per Dynamo-only option (--environment, --backend …),
# the latter two in their own help panel. The command's signature is assembled below.

_DYNAMO_PANEL = "Dynamo planner arguments (drop-in for Dynamo's planner)"


def _choice_type(name: str, choices: tuple[str, ...]) -> type[StrEnum]:
    return StrEnum(name, {c: c for c in choices})  # type: ignore[return-value]


def _setting_parameter(info: SettingInfo) -> inspect.Parameter:
    kind: Any = info.kind
    default: Any = info.default
    if info.spec.choices is not None:
        kind = _choice_type(f"{info.name.title()}Choice", info.spec.choices)
        default = kind(default)
    hint: Any = kind | None if info.optional else kind
    option = typer.Option(
        *(info.flag, *info.spec.flags),
        metavar=None if info.switch else (info.spec.metavar or "VALUE"),
        help=info.help_text(),
        show_default=info.default is not None and not info.switch,
    )
    return inspect.Parameter(
        info.name,
        inspect.Parameter.KEYWORD_ONLY,
        default=default,
        annotation=Annotated[hint, option],
    )


#: typer parameter name → (Dynamo snake_case name, is a switch)
_DYNAMO_PARAMS: dict[str, tuple[str, bool]] = {}


def _dynamo_parameters() -> list[inspect.Parameter]:
    out = []
    spellings: list[tuple[str, str, Any, str, str]] = []  # (flag, snake, kind, metavar, help)
    for info in SETTINGS.values():
        for spelling in info.spec.dynamo_flags:
            spellings.append(
                (
                    spelling,
                    spelling[2:].replace("-", "_"),
                    info.kind,
                    info.spec.metavar or "VALUE",
                    f"Dynamo's {spelling}: sets {info.flag}.",
                )
            )
    for option in DYNAMO_OPTIONS.values():
        if option.cli:
            what = (
                "chooses --connector"
                if option.name in ("environment", "no_operation")
                else "accepted; named in one warning when plan run cannot honour its value"
            )
            kind = bool if option.switch else str
            help_text = f"Dynamo's {option.flag}: {what}."
            spellings.append((option.flag, option.name, kind, "VALUE", help_text))
    for spelling, snake, kind, metavar, help_text in spellings:
        switch = kind is bool
        name = f"dynamo__{snake}"
        _DYNAMO_PARAMS[name] = (snake, switch)
        hint: Any = bool if switch else (str | None if kind is Path else kind | None)
        opt = typer.Option(
            spelling,
            metavar=None if switch else metavar,
            help=help_text,
            rich_help_panel=_DYNAMO_PANEL,
            show_default=False,
        )
        out.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=False if switch else None,
                annotation=Annotated[hint, opt],
            )
        )
    module = typer.Option(
        "-m",
        metavar="MODULE",
        rich_help_panel=_DYNAMO_PANEL,
        help="Dynamo's `python3 -m planner_sla` / `-m dynamo.planner` left in the arguments: "
        "ignored (plan run is the planner).",
    )
    out.append(
        inspect.Parameter(
            "dynamo__module",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[str | None, module],
        )
    )
    return out


_EXTRA_PARAMETERS = [
    inspect.Parameter(
        "config",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            str | None,
            typer.Option(
                "--config",
                metavar="CONFIG",
                help="This project's YAML settings file (snake_case flag names), or Dynamo 1.x's "
                "PlannerConfig: inline JSON or a JSON/YAML file (told apart by its keys). "
                "Flags override it.",
            ),
        ],
    ),
    inspect.Parameter(
        "print_config",
        inspect.Parameter.KEYWORD_ONLY,
        default=False,
        annotation=Annotated[
            bool,
            typer.Option(
                "--print-config", help="Print the merged settings and exit (connects nothing)."
            ),
        ],
    ),
    inspect.Parameter(
        "output",
        inspect.Parameter.KEYWORD_ONLY,
        default=OutputFormat.table,
        annotation=OutputOption,
    ),
]


def run(ctx: typer.Context, **params: Any) -> None:
    """Run the planner: every --interval seconds read the frontend's metrics from Prometheus,
    forecast, decide and scale through the connector; one JSON log line per tick on stderr;
    /metrics on --metrics-port. SIGTERM/SIGINT stop it after the current tick and print a
    summary (ticks, decisions by reason, GPU hours). --model, the SLA (--ttft, --itl, --isl,
    --osl) and the GPUs per engine default to the profile's profile.json, when it has them.

    Takes Dynamo's planner arguments too (0.6–0.9 flags, 1.x --config JSON): each maps to its
    setting; one warning names those it cannot honour."""
    import signal
    import threading

    from dynamo_plan.cli.profile_settings import note
    from dynamo_plan.live.config import (
        check_settings,
        predictor_notes,
        predictor_params,
        resolve_run_settings,
    )
    from dynamo_plan.live.dynamo_compat import DynamoArgs, translate, unhonoured_line
    from dynamo_plan.live.dynamo_compat import read_config_arg as read_config
    from dynamo_plan.live.service import planner_config, run_planner

    given = {k: getattr(params[k], "value", params[k]) for k in SETTINGS}
    explicit = {k for k in SETTINGS if _from_command_line(ctx, k)}
    config_file, dynamo_json = read_config(params["config"]) if params["config"] else (None, None)
    dynamo = DynamoArgs()
    if dynamo_json is not None:
        dynamo = translate(dynamo_json, "--config", base=None)
        config_file = None
    dynamo_flags = {
        snake: params[name]
        for name, (snake, _) in _DYNAMO_PARAMS.items()
        if _from_command_line(ctx, name)
    }
    if dynamo_flags:
        from_flags = translate(dynamo_flags, "Dynamo flags", flags=True)
        dynamo.settings.update(from_flags.settings)
        dynamo.given.update(from_flags.given)
        dynamo.unhonoured += from_flags.unhonoured
    dynamo_mode = dynamo_json is not None or bool(dynamo_flags) or params["dynamo__module"]
    settings, sources, notes = resolve_run_settings(
        given, explicit, config_file, dynamo=dynamo, dynamo_defaults=bool(dynamo_mode)
    )
    line = unhonoured_line(dynamo.unhonoured)
    if line is not None:
        warn(line)
    for text in [*notes, *predictor_notes(settings, sources)]:
        note(text)
    check_settings(settings)
    planner_config(settings)  # InfeasibleSLAError (exit 4) for a budget below the floors
    if params["print_config"]:
        emit(
            settings.as_dict(),
            params["output"],
            table=lambda: _settings_table(settings.as_dict(), sources),
        )
        return

    note(namespace_line(settings.namespace, sources["namespace"]))
    if settings.sla_attainment is not None:
        note(
            f"sizing for SLA attainment {settings.sla_attainment:g}: each decision replays a "
            f"sample of the recent request shapes (the frontend's ISL/OSL histograms) on the "
            f"simulator"
        )
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
            predictor_params=predictor_params(settings),
            warn=warn,
            profile=_covering_profile(settings),
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

    emit(summary, params["output"], table=table)


def _decide_sizer(
    attainment: float | None, shapes: Path | None, isl: float, osl: float, config: Any
) -> tuple[Any, str | None]:
    """``plan decide``'s sizer: the formula, or with ``attainment`` the attainment sizer drawing
    its shapes from the ``shapes`` trace (else every request at ``isl``/``osl``); and what the
    shapes are (``None`` with the formula)."""
    from dynamo_plan.core.planner import formula_plan

    if attainment is None:
        if shapes is not None:
            raise UsageError("--shapes goes with --sla-attainment")
        return formula_plan, None
    import numpy as np

    from dynamo_plan.sim import RequestArrays
    from dynamo_plan.sim.attainment import AttainmentSizer
    from dynamo_plan.trace import load_trace

    sizer = AttainmentSizer.for_planner(attainment, config)
    if shapes is None:
        origin = f"every request at ISL {isl:g} / OSL {osl:g}"
        sizer.observe(np.array([round(isl)]), np.array([round(osl)]), origin)
    else:
        req = RequestArrays.from_trace(load_trace([shapes]))
        origin = f"{len(req)} requests of {shapes}"
        sizer.observe(req.isl, req.osl, origin)
    return sizer, origin


def _covering_profile(settings: Any) -> Any:
    """``plan run``'s profile, extended with the calibrated roofline when the SLA's load shape
    (``isl`` + ``osl``/2) or the warm-up trace's requests reach beyond its measured range (one
    warning saying what was estimated, or why lookups stay clamped)."""
    import numpy as np

    from dynamo_plan.adapters.profile_files import load_profile
    from dynamo_plan.profiler.extend import extend_profile, traffic_range

    prof = load_profile(settings.profile)
    top_isl, top_ctx = traffic_range([settings.isl], [settings.osl])
    if settings.warmup_trace is not None:
        from dynamo_plan.trace import load_trace

        tr = load_trace([settings.warmup_trace])
        known = np.isfinite(tr.input_length) & np.isfinite(tr.output_length)
        t_isl, t_ctx = traffic_range(tr.input_length[known], tr.output_length[known])
        top_isl, top_ctx = max(top_isl, t_isl), max(top_ctx, t_ctx)
    covered = extend_profile(prof, settings.profile, isl_to=top_isl, context_to=top_ctx)
    if covered.message:
        warn(covered.message)
    return covered.profile


def namespace_line(namespace: str | None, source: str) -> str:
    """The start-up line naming the Dynamo namespace watched and where it came from: the flag,
    ``$DYN_NAMESPACE`` (what Dynamo's operator gives its pods), Dynamo's ``--config``, Dynamo's
    default, or none (every namespace)."""
    if namespace is None:
        return "watching every Dynamo namespace (no --namespace, $DYN_NAMESPACE unset)"
    where = {"flag": "--namespace", "Dynamo default": "Dynamo's default"}.get(source, source)
    return f"watching Dynamo namespace {namespace!r} (from {where})"


run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [
        inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
        *(_setting_parameter(info) for info in SETTINGS.values()),
        *_dynamo_parameters(),
        *_EXTRA_PARAMETERS,
    ]
)
app.command("run")(run)


def _from_command_line(ctx: typer.Context, name: str) -> bool:
    """Whether parameter ``name`` was given on the command line (not its default)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name != "DEFAULT"


def _settings_table(values: dict[str, Any], sources: dict[str, str]) -> Any:
    rows = [[k, v, sources.get(k, "")] for k, v in values.items()]
    return simple_table("plan run settings", ["setting", "value", "from"], rows)
