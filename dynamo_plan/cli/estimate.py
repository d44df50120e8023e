"""``dynamo-plan estimate``: offline prefill/decode latency and throughput of one engine per TP."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from dynamo_plan.cli.options import (
    DtypeChoice,
    DtypeOption,
    EstimatorChoice,
    EstimatorOption,
    GpuSpecOption,
    ModelConfigOption,
)
from dynamo_plan.cli.output import OutputFormat, OutputOption, emit, simple_table, warn
from dynamo_plan.core.backends import Backend
from dynamo_plan.errors import InputError, UsageError


def parse_int_list(flag: str, text: str | None) -> list[int]:
    """``"1,2,4"`` -> ``[1, 2, 4]``; every item a positive integer, else InputError naming ``flag``."""
    if text is None:
        return []
    out: list[int] = []
    for item in text.split(","):
        item = item.strip()
        try:
            value = int(item)
        except ValueError:
            raise InputError(
                f"{flag}: '{item}' is not an integer (expected e.g. {flag} 1,2,4)"
            ) from None
        if value <= 0:
            raise InputError(f"{flag}: values must be > 0, got {value}")
        out.append(value)
    return out


def estimate(
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            metavar="MODEL",
            help="Model name, alias or HF id (e.g. meta-llama/Llama-3.1-8B).",
        ),
    ] = None,
    model_config: ModelConfigOption = None,
    system: Annotated[
        str | None,
        typer.Option(
            "--system", "-s", metavar="SYSTEM", help="GPU (e.g. h200_sxm, h100_sxm, b200_sxm)."
        ),
    ] = None,
    gpu_spec: GpuSpecOption = None,
    backend: Annotated[
        Backend,
        typer.Option(
            "--backend", metavar="BACKEND", help="Serving engine: vllm, sglang or trtllm."
        ),
    ] = Backend.trtllm,
    dtype: DtypeOption = DtypeChoice.fp8,
    kv_dtype: Annotated[
        DtypeChoice | None,
        typer.Option(
            "--kv-dtype",
            metavar="DTYPE",
            help="KV-cache precision (default: bf16 on vllm/sglang, --dtype on trtllm).",
        ),
    ] = None,
    tp: Annotated[
        str,
        typer.Option("--tp", metavar="N[,N…]", help="Tensor-parallel degrees, comma-separated."),
    ] = "1",
    isl: Annotated[
        str | None,
        typer.Option(
            "--isl", metavar="TOKENS[,…]", help="Prefill: input lengths (tokens), comma-separated."
        ),
    ] = None,
    batch: Annotated[
        str | None,
        typer.Option("--batch", metavar="N[,N…]", help="Decode: batch sizes, comma-separated."),
    ] = None,
    context: Annotated[
        str | None,
        typer.Option(
            "--context",
            metavar="TOKENS[,…]",
            help="Decode: context lengths (tokens), comma-separated.",
        ),
    ] = None,
    mem_util: Annotated[
        float,
        typer.Option(
            "--mem-util", metavar="FRACTION", help="Fraction of GPU memory the engine may use."
        ),
    ] = 0.9,
    estimator: EstimatorOption = EstimatorChoice.roofline,
    backend_version: Annotated[
        str | None,
        typer.Option(
            "--backend-version",
            metavar="VERSION",
            help="AI Configurator database version (default: its current one).",
        ),
    ] = None,
    calibrate: Annotated[
        Path | None,
        typer.Option(
            "--calibrate",
            metavar="DIR",
            help="Fit the roofline's constants to the measured profile in DIR (Dynamo's "
            "layout) first, then estimate with them.",
        ),
    ] = None,
    compare: Annotated[
        bool,
        typer.Option(
            "--compare",
            help="Both estimators side by side (roofline, calibrated with --calibrate, and "
            "aiconfigurator) with their ratio.",
        ),
    ] = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Estimate TTFT (prefill) or ITL (decode step) and tokens/s/GPU, one row per point and TP."""
    from dynamo_plan.estimator import Dtype, load_gpu, load_model, select_estimator
    from dynamo_plan.estimator.arch import MAX_GPUS_PER_NODE

    if isl is not None and (batch is not None or context is not None):
        raise UsageError("give either --isl (prefill) or --batch and --context (decode), not both")
    if isl is None and batch is None and context is None:
        raise UsageError(
            "nothing to estimate: give --isl LIST (prefill) or --batch LIST --context LIST (decode)"
        )
    if isl is None and (batch is None or context is None):
        missing = "--context" if context is None else "--batch"
        raise UsageError(f"decode needs both --batch and --context; {missing} is missing")
    if model is None and model_config is None:
        raise UsageError("give a model name (--model) or an HF config.json (--model-config)")
    if system is None and gpu_spec is None:
        raise UsageError("give a GPU name (--system) or a spec file (--gpu-spec)")
    if not 0.0 < mem_util <= 1.0:
        raise InputError(f"--mem-util must be in (0, 1], got {mem_util}")
    tps = parse_int_list("--tp", tp)
    too_wide = [t for t in tps if t > MAX_GPUS_PER_NODE]
    if too_wide:
        raise InputError(
            f"--tp: values must be <= {MAX_GPUS_PER_NODE} (the most GPUs one NVLink domain "
            f"holds: GB200 NVL72), got {too_wide[0]}"
        )
    isls = parse_int_list("--isl", isl)
    batches = parse_int_list("--batch", batch)
    contexts = parse_int_list("--context", context)

    if calibrate is not None and estimator is EstimatorChoice.aiconfigurator and not compare:
        raise UsageError(
            "--calibrate fits the roofline's constants; it cannot be combined with "
            "--estimator aiconfigurator (use --estimator roofline or auto, or --compare)"
        )
    arch = load_model(model, model_config)
    gpu = load_gpu(system, gpu_spec)
    kv: Dtype | None = kv_dtype.value if kv_dtype else None  # type: ignore[assignment]
    fit = None
    if calibrate is not None:
        from dynamo_plan.profiler.offline import load_calibration

        fit = load_calibration(calibrate, arch, gpu, backend.value, dtype.value, kv)
        _report_fit(fit)
    common: dict[str, Any] = {
        "backend": backend.value, "dtype": dtype.value, "kv_dtype": kv, "mem_util": mem_util,
        "backend_version": backend_version,
    }  # fmt: skip
    if compare:
        first = select_estimator("roofline", arch, gpu, calibration=fit, **common)
        second = select_estimator("aiconfigurator", arch, gpu, **common)
    else:
        first = select_estimator(estimator.value, arch, gpu, calibration=fit, **common)
        second = None
    est = first.estimator
    if estimator is EstimatorChoice.auto and not compare:
        warn(f"estimator: {est.name} ({first.reason})")
    fitting = [t for t in tps if est.fits(t)]
    for t in tps:
        if t not in fitting:
            warn(
                f"{arch.name} does not fit on {t}× {gpu.name} ({dtype.value}, mem_util {mem_util}); skipped tp={t}"
            )
    if not fitting:
        raise InputError(
            f"{arch.name} does not fit on {gpu.name} at any of tp={tp} ({dtype.value}, mem_util {mem_util})"
        )

    points: list[dict[str, Any]] = []
    for t in fitting:
        if isls:
            points += [{"phase": "prefill", "tp": t, "isl": n} for n in isls]
            continue
        cap = est.max_kv_tokens(t)
        for ctx in contexts:
            for b in batches:
                if b * ctx > cap:
                    warn(
                        f"tp={t}: batch {b} × context {ctx} = {b * ctx} tokens exceeds the KV capacity {cap}"
                    )
                points.append({"phase": "decode", "tp": t, "batch": b, "context": ctx})
    label = est.name + (" (calibrated)" if fit is not None else "")
    if second is None:
        rows = [{**pt, **_point(_run(est, pt)), "estimator": label} for pt in points]
    else:
        other = second.estimator
        rows = []
        for pt in points:
            a, b_ = _run(est, pt), _run(other, pt)
            rows.append({
                **pt, f"{est.name}_ms": round(a.latency_ms, 3),
                f"{other.name}_ms": round(b_.latency_ms, 3),
                "ratio": round(a.latency_ms / b_.latency_ms, 4),
                "estimator": f"{label} vs {other.name} {other.version}",
            })  # fmt: skip

    def table() -> Any:
        title = f"{arch.name} on {gpu.name} · {backend.value} · {dtype.value} ({label} estimator)"
        keys = ["tp", "isl"] if isls else ["tp", "batch", "context"]
        cols = ["TP", "ISL (tokens)"] if isls else ["TP", "batch", "context (tokens)"]
        if second is None:
            keys += ["latency_ms", "thpt_per_gpu"]
            cols += ["TTFT (ms)" if isls else "ITL (ms)", "tokens/s/GPU"]
        else:
            other = second.estimator.name
            title = f"{title[:-1]} vs {other} {second.estimator.version})"
            keys += [f"{est.name}_ms", f"{other}_ms", "ratio"]
            cols += [f"{label} (ms)", f"{other} (ms)", "ratio"]
        return simple_table(title, cols, [[r[k] for k in keys] for r in rows])

    emit(rows, output, table=table)


def _run(est: Any, pt: dict[str, Any]) -> Any:
    if pt["phase"] == "prefill":
        return est.prefill(pt["tp"], pt["isl"])
    return est.decode(pt["tp"], pt["batch"], pt["context"])


def _point(p: Any) -> dict[str, float]:
    return {"latency_ms": round(p.latency_ms, 3), "thpt_per_gpu": round(p.thpt_per_gpu, 1)}


def _report_fit(fit: Any) -> None:
    """The calibration's source, residuals and notes, on stderr (the rows stay the data)."""
    res = ", ".join(
        f"{phase} median {r['median_abs_error']:.1%} max {r['max_abs_error']:.1%} "
        f"({r['points']} points)"
        for phase, r in fit.residuals.items()
    )
    warn(f"calibrated on {fit.source}: {res}")
    for note in fit.notes:
        warn(note)
