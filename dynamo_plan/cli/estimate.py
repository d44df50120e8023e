"""``dynamo-plan estimate``: offline prefill/decode latency and throughput of one engine per TP."""

from __future__ import annotations

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
    output: OutputOption = OutputFormat.table,
) -> None:
    """Estimate TTFT (prefill) or ITL (decode step) and tokens/s/GPU, one row per point and TP."""
    from dynamo_plan.estimator import load_gpu, load_model, make_estimator
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

    arch = load_model(model, model_config)
    gpu = load_gpu(system, gpu_spec)
    est = make_estimator(
        estimator.value,
        arch,
        gpu,
        backend=backend.value,
        dtype=dtype.value,
        kv_dtype=kv_dtype.value if kv_dtype else None,
        mem_util=mem_util,
    )
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

    rows: list[dict[str, Any]] = []
    for t in fitting:
        if isls:
            for n in isls:
                p = est.prefill(t, n)
                rows.append(
                    {"phase": "prefill", "tp": t, "isl": n, **_point(p.latency_ms, p.thpt_per_gpu)}
                )
            continue
        cap = est.max_kv_tokens(t)
        for ctx in contexts:
            for b in batches:
                if b * ctx > cap:
                    warn(
                        f"tp={t}: batch {b} × context {ctx} = {b * ctx} tokens exceeds the KV capacity {cap}"
                    )
                p = est.decode(t, b, ctx)
                rows.append(
                    {
                        "phase": "decode",
                        "tp": t,
                        "batch": b,
                        "context": ctx,
                        **_point(p.latency_ms, p.thpt_per_gpu),
                    }
                )

    def table() -> Any:
        title = (
            f"{arch.name} on {gpu.name} · {backend.value} · {dtype.value} ({est.name} estimator)"
        )
        if isls:
            cols = ["TP", "ISL (tokens)", "TTFT (ms)", "tokens/s/GPU"]
            data = [[r["tp"], r["isl"], r["latency_ms"], r["thpt_per_gpu"]] for r in rows]
        else:
            cols = ["TP", "batch", "context (tokens)", "ITL (ms)", "tokens/s/GPU"]
            data = [
                [r["tp"], r["batch"], r["context"], r["latency_ms"], r["thpt_per_gpu"]]
                for r in rows
            ]
        return simple_table(title, cols, data)

    emit(rows, output, table=table)


def _point(latency_ms: float, thpt: float) -> dict[str, float]:
    return {"latency_ms": round(latency_ms, 3), "thpt_per_gpu": round(thpt, 1)}
