"""``dynamo-plan profile --offline``: choose prefill and decode TP for an SLA with the offline
estimator (no GPU) and write the profile. Parse the flags (or a DGDR), run
:func:`dynamo_plan.profiler.offline.run_offline`, render its summary."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from dynamo_plan.cli.options import (
    BACKEND,
    DtypeChoice,
    DtypeOption,
    EstimatorChoice,
    GpuSpecOption,
    ModelConfigOption,
)
from dynamo_plan.cli.output import OutputFormat, OutputOption, emit
from dynamo_plan.cli.profile.common import (
    DgdrOption,
    IslOption,
    ItlOption,
    ModelOption,
    OslOption,
    OutOption,
    PlotsOption,
    TtftOption,
    check_dgdr,
    pick_table,
)
from dynamo_plan.core.backends import Backend
from dynamo_plan.errors import InputError, UsageError


def offline(
    out: OutOption = None,
    dgdr: DgdrOption = None,
    model: ModelOption = None,
    model_config: ModelConfigOption = None,
    system: Annotated[
        str | None, typer.Option("--system", metavar="SYSTEM", help="GPU system, e.g. h200_sxm.")
    ] = None,
    gpu_spec: GpuSpecOption = None,
    backend: Annotated[Backend | None, BACKEND] = None,
    isl: IslOption = None,
    osl: OslOption = None,
    ttft: TtftOption = None,
    itl: ItlOption = None,
    dtype: DtypeOption = DtypeChoice.fp8,
    max_gpus_per_engine: Annotated[
        int,
        typer.Option("--max-gpus-per-engine", metavar="N", help="Largest TP tried (power of two)."),
    ] = 8,
    estimator: Annotated[
        EstimatorChoice | None,
        typer.Option(
            "--estimator",
            metavar="NAME",
            help="roofline (built in), aiconfigurator (optional package) or auto "
            "(aiconfigurator where it covers the model, system, backend and version, else "
            "roofline). Default: aiconfigurator for a DGDR with useAiConfigurator, else roofline.",
        ),
    ] = None,
    backend_version: Annotated[
        str | None,
        typer.Option(
            "--backend-version",
            metavar="VERSION",
            help="AI Configurator database version (default: its current one; a DGDR's "
            "aicBackendVersion).",
        ),
    ] = None,
    calibrate: Annotated[
        Path | None,
        typer.Option(
            "--calibrate",
            metavar="DIR",
            help="Fit the roofline's constants to the measured profile in DIR (Dynamo's layout) "
            "first; profile.json records the fit.",
        ),
    ] = None,
    extend: Annotated[
        Path | None,
        typer.Option(
            "--extend",
            metavar="DIR",
            help="Extend the measured profile in DIR to --max-context tokens with the roofline "
            "calibrated on it (measured points kept; profile.json and the plots mark the "
            "estimated part). Model, system and SLA come from DIR's profile.json.",
        ),
    ] = None,
    max_context: Annotated[
        int | None,
        typer.Option(
            "--max-context",
            metavar="N",
            help="Tokens of context the profile covers: prefill ISLs and decode context rows "
            "up to N (within the model's window and the KV cache; default 32768 or ISL + OSL).",
            show_default=False,
        ),
    ] = None,
    plots: PlotsOption = True,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Choose prefill and decode TP for an SLA with the offline estimator (no GPU) and write a
    Dynamo-compatible performance profile.

    Writes OUT/selected_{prefill,decode}_interpolation/raw_data.npz, their JSON form,
    profile.json and PNG plots. The SLA and model come from --dgdr FILE or from the flags.
    Exit 4 when no TP up to --max-gpus-per-engine meets the SLA.
    """
    started = time.perf_counter()
    from dynamo_plan.profiler.offline import EstimatorKind, OfflineRequest, run_offline, summary
    from dynamo_plan.profiler.sweep import SweepGrid

    if out is None:
        raise UsageError("profile --offline needs --out DIR")
    if max_context is not None and max_context < 1:
        raise InputError(f"--max-context must be a positive number of tokens, got {max_context}")
    if extend is not None:
        given = {
            "--dgdr": dgdr, "--model": model, "--model-config": model_config, "--system": system,
            "--gpu-spec": gpu_spec, "--backend": backend, "--isl": isl, "--osl": osl,
            "--ttft": ttft, "--itl": itl, "--estimator": estimator, "--calibrate": calibrate,
        }  # fmt: skip
        clash = [k for k, v in given.items() if v is not None]
        if clash:
            raise UsageError(
                f"--extend takes the model, system and SLA from DIR's profile.json; drop "
                f"{', '.join(clash)}"
            )
        if max_context is None:
            raise UsageError("--extend DIR needs --max-context N (tokens to reach)")
        from dynamo_plan.profiler.offline import run_extend

        done = run_extend(extend, out, max_context, plots)
        done["elapsed_s"] = round(time.perf_counter() - started, 3)
        emit(done, output, table=lambda: _extend_table(done))
        return
    fields = _intent(dgdr, model, model_config, system, gpu_spec, backend, isl, osl, ttft, itl)
    use_aic = fields.pop("use_ai_configurator", False)
    kind: EstimatorKind = (
        estimator.value  # type: ignore[assignment]
        if estimator is not None
        else "aiconfigurator"
        if use_aic
        else "roofline"
    )
    if backend_version is not None:
        fields["aic_backend_version"] = backend_version
    request = OfflineRequest(
        **fields,
        out=out,
        dtype=dtype.value,
        max_gpus_per_engine=max_gpus_per_engine,
        estimator=kind,
        plots=plots,
        calibrate=calibrate,
        grid=SweepGrid() if max_context is None else SweepGrid(context_cap=max_context),
        requested_by=f"{dgdr} useAiConfigurator" if use_aic and estimator is None else None,
    )
    if kind == "aiconfigurator":
        _require_aic(dgdr if use_aic and estimator is None else None)
    result = summary(run_offline(request))
    result["elapsed_s"] = round(time.perf_counter() - started, 3)
    emit(result, output, table=lambda: _table(result))


def _intent(
    dgdr: Path | None,
    model: str | None,
    model_config: Path | None,
    system: str | None,
    gpu_spec: Path | None,
    backend: Backend | None,
    isl: int | None,
    osl: int | None,
    ttft: float | None,
    itl: float | None,
) -> dict[str, Any]:
    """Merge the DGDR (if any) and the flags into OfflineRequest fields; UsageError on conflicts."""
    from dynamo_plan.profiler.dgdr import read_dgdr
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
        check_dgdr(dgdr)
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
            "aic_hf_id": intent.hf_id,
            "aic_backend_version": intent.backend_version,
            "use_ai_configurator": intent.use_ai_configurator,
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
    return {
        "model": model,
        "model_config": model_config,
        "system": system,
        "gpu_spec": gpu_spec,
        "backend": backend.value,
        "sla": SweepSLA(isl, osl, ttft, itl),
    }


def _require_aic(dgdr: Path | None) -> None:
    """One-line InputError when AI Configurator is asked for (by the flag or by a DGDR's
    ``useAiConfigurator``) and is not installed; ``--estimator auto`` falls back instead."""
    from dynamo_plan.estimator.aic import INSTALL_HINT, aiconfigurator_available

    if aiconfigurator_available():
        return
    why = f"{dgdr} asks for useAiConfigurator: " if dgdr is not None else ""
    raise InputError(f"{why}{INSTALL_HINT}")


def _extend_table(result: dict[str, Any]) -> Any:
    from dynamo_plan.cli.output import simple_table

    rows = [
        [k, result[k]]
        for k in ("source", "extended", "prefill_max_isl", "decode_max_context", "out")
    ]
    return simple_table(result["message"], ["field", "value"], rows)


def _table(result: dict[str, Any]) -> Any:
    how = result["estimator"]
    if result.get("estimator_selected", "requested") != "requested":
        how = f"{how}; {result['estimator_selected']}"
    title = f"{result['model']} on {result['system']} ({how}) → {result['out']} in {result['elapsed_s']} s"
    return pick_table(title, result)
