"""``dynamo-plan profile --offline``: size prefill/decode engines for an SLA and write a profile."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any, cast

import typer

from dynamo_plan.cli.output import OutputFormat, OutputOption, emit, simple_table
from dynamo_plan.errors import InputError, UsageError


def profile(
    offline: Annotated[
        bool,
        typer.Option(
            "--offline",
            help="Estimate the profile with the offline estimator (required; online profiling "
            "on GPUs is not available yet).",
        ),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Profile directory to write (created or replaced)."),
    ] = None,
    dgdr: Annotated[
        Path | None,
        typer.Option(
            "--dgdr", help="DynamoGraphDeploymentRequest YAML giving model, backend, SLA."
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Model name or Hugging Face id.")
    ] = None,
    model_config: Annotated[
        Path | None,
        typer.Option("--model-config", help="A Hugging Face config.json for the model."),
    ] = None,
    system: Annotated[
        str | None, typer.Option("--system", help="GPU system, e.g. h200_sxm.")
    ] = None,
    gpu_spec: Annotated[
        Path | None, typer.Option("--gpu-spec", help="A GPU spec YAML file instead of --system.")
    ] = None,
    backend: Annotated[
        str | None, typer.Option("--backend", help="vllm, sglang or trtllm.")
    ] = None,
    isl: Annotated[int | None, typer.Option("--isl", help="Mean input length (tokens).")] = None,
    osl: Annotated[int | None, typer.Option("--osl", help="Mean output length (tokens).")] = None,
    ttft: Annotated[float | None, typer.Option("--ttft", help="TTFT target (ms).")] = None,
    itl: Annotated[float | None, typer.Option("--itl", help="ITL target (ms).")] = None,
    dtype: Annotated[str, typer.Option("--dtype", help="Weight dtype: fp8 or bf16.")] = "fp8",
    max_gpus_per_engine: Annotated[
        int, typer.Option("--max-gpus-per-engine", help="Largest TP tried (power of two).")
    ] = 8,
    estimator: Annotated[
        str, typer.Option("--estimator", help="roofline or aiconfigurator.")
    ] = "roofline",
    plots: Annotated[
        bool, typer.Option("--plots/--no-plots", help="Write PNG plots beside the profile.")
    ] = True,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Choose prefill and decode TP for an SLA and write a Dynamo-compatible performance profile.

    Writes OUT/selected_{prefill,decode}_interpolation/raw_data.npz, their JSON form, profile.json
    and PNG plots. Exit 4 when no TP up to --max-gpus-per-engine meets the SLA.
    """
    started = time.perf_counter()
    from dynamo_plan.profiler.offline import (
        Dtype,
        EstimatorKind,
        OfflineRequest,
        run_offline,
        summary,
    )

    if not offline:
        raise UsageError("profile needs --offline (online profiling is not available yet)")
    if out is None:
        raise UsageError("profile --offline needs --out DIR")
    if dtype not in ("fp8", "bf16"):
        raise UsageError(f"--dtype must be fp8 or bf16, got {dtype!r}")
    if estimator not in ("roofline", "aiconfigurator"):
        raise UsageError(f"--estimator must be roofline or aiconfigurator, got {estimator!r}")
    request = OfflineRequest(
        **_intent(dgdr, model, model_config, system, gpu_spec, backend, isl, osl, ttft, itl),
        out=out,
        dtype=cast(Dtype, dtype),
        max_gpus_per_engine=max_gpus_per_engine,
        estimator=cast(EstimatorKind, estimator),
        plots=plots,
    )
    result = summary(run_offline(request))
    result["elapsed_s"] = round(time.perf_counter() - started, 3)
    emit(result, output, table=lambda: _table(result))


def _intent(
    dgdr: Path | None,
    model: str | None,
    model_config: Path | None,
    system: str | None,
    gpu_spec: Path | None,
    backend: str | None,
    isl: int | None,
    osl: int | None,
    ttft: float | None,
    itl: float | None,
) -> dict[str, Any]:
    """Merge the DGDR (if any) and the flags into OfflineRequest fields; UsageError on conflicts."""
    from dynamo_plan.profiler.dgdr import BACKENDS, read_dgdr
    from dynamo_plan.profiler.sweep import SweepSLA

    flags = {
        "--model": model,
        "--model-config": model_config,
        "--backend": backend,
        "--isl": isl,
        "--osl": osl,
        "--ttft": ttft,
        "--itl": itl,
    }
    if dgdr is not None:
        given = [k for k, v in flags.items() if v is not None]
        if given:
            raise UsageError(
                f"--dgdr cannot be combined with {', '.join(given)} (the DGDR gives them)"
            )
        _check_dgdr(dgdr)
        intent = read_dgdr(dgdr)
        sys_name = system or intent.system
        if sys_name is None and gpu_spec is None:
            raise UsageError(
                f"{dgdr}: no 'spec.profilingConfig.config.sweep.aicSystem'; give --system or --gpu-spec"
            )
        return {
            "model": intent.estimator_model,
            "system": sys_name,
            "gpu_spec": gpu_spec,
            "backend": intent.backend,
            "sla": SweepSLA(intent.isl, intent.osl, intent.ttft_ms, intent.itl_ms),
        }
    missing = [k for k in ("--backend", "--isl", "--osl", "--ttft", "--itl") if flags[k] is None]
    if model is None and model_config is None:
        missing.insert(0, "--model (or --model-config)")
    if system is None and gpu_spec is None:
        missing.append("--system (or --gpu-spec)")
    if missing:
        raise UsageError(f"profile --offline needs --dgdr FILE or {', '.join(missing)}")
    assert backend is not None and isl is not None and osl is not None
    assert ttft is not None and itl is not None
    if backend not in BACKENDS:
        raise UsageError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    return {
        "model": model,
        "model_config": model_config,
        "system": system,
        "gpu_spec": gpu_spec,
        "backend": backend,
        "sla": SweepSLA(isl, osl, ttft, itl),
    }


def _table(result: dict[str, Any]) -> Any:
    pre, dec = result["prefill"], result["decode"]
    rows = [
        ["prefill", pre["tp"], "TTFT", pre["ttft_ms"], round(pre["thpt_per_gpu"]), None],
        ["decode", dec["tp"], "ITL", dec["itl_ms"], round(dec["thpt_per_gpu"]), dec["concurrency"]],
    ]
    title = (
        f"{result['model']} on {result['system']} ({result['estimator']}) → {result['out']} "
        f"in {result['elapsed_s']} s"
    )
    return simple_table(title, ["role", "TP", "latency", "ms", "tokens/s/GPU", "concurrency"], rows)


def _check_dgdr(path: Path) -> None:
    """Full schema validation first (as ``dgdr validate``), so a bad DGDR is reported with its
    line and field path; InputError naming the first error and how many more there are."""
    from dynamo_plan.deploy.dgdr import validate_file

    report = validate_file(path)
    if report.valid:
        return
    first = report.errors[0]
    where = f"{path}:{first.line}" if first.line else str(path)
    field = f" {first.path}:" if first.path else ""
    more = len(report.errors) - 1
    tail = f" (and {more} more: dynamo-plan dgdr validate {path})" if more else ""
    raise InputError(f"{where}:{field} {first.message}{tail}")
