"""``profile --offline``: estimator → TP sweep → profile directory (+ plots), all-or-nothing.

The estimator is the roofline, AI Configurator or ``auto`` (AIC where it covers the model,
system, backend and version); the roofline can first be calibrated on a measured profile
(``calibrate``). ``profile.json``'s ``obtained_by`` records which estimator, why, and the fit.
The estimator package is imported when a run starts (not at import time), so the CLI stays quick
to load.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from dynamo_plan.core.backends import BACKENDS, BackendName
from dynamo_plan.errors import InputError, UsageError
from dynamo_plan.profiler.sweep import (
    SweepGrid,
    SweepResult,
    SweepSLA,
    chosen_points,
    run_sweep,
    sweep_meta,
    write_sweep_profile,
)

if TYPE_CHECKING:
    from dynamo_plan.estimator import GpuSpec, ModelArch, Selection
    from dynamo_plan.estimator.calibration import Fit

__all__ = [
    "ESTIMATORS",
    "OfflineOutcome",
    "OfflineRequest",
    "build_estimator",
    "load_calibration",
    "obtained_by",
    "run_extend",
    "run_offline",
    "summary",
]

ESTIMATORS = ("roofline", "aiconfigurator", "auto")
Dtype = Literal["bf16", "fp8"]
EstimatorKind = Literal["roofline", "aiconfigurator", "auto"]
_TP_IN_NAME = {"prefill": re.compile(r"tp(\d+)p"), "decode": re.compile(r"tp(\d+)d")}


@dataclass(frozen=True)
class OfflineRequest:
    """Everything one offline profiling run needs (flags or a DGDR, already merged).

    ``estimator``: ``roofline``, ``aiconfigurator`` or ``auto`` (see
    :func:`dynamo_plan.estimator.select_estimator`); ``aic_backend_version`` / ``aic_hf_id``:
    a DGDR's ``aicBackendVersion`` / ``aicHfId`` (AI Configurator's database version and model);
    ``calibrate``: a measured profile directory to fit the roofline's constants to.
    """

    model: str | None
    system: str | None
    backend: BackendName
    sla: SweepSLA
    out: Path
    model_config: Path | None = None
    gpu_spec: Path | None = None
    dtype: Dtype = "fp8"
    max_gpus_per_engine: int = 8
    estimator: EstimatorKind = "roofline"
    plots: bool = True
    grid: SweepGrid = field(default_factory=SweepGrid)
    aic_backend_version: str | None = None
    aic_hf_id: str | None = None
    calibrate: Path | None = None
    requested_by: str | None = None
    """Who asked for ``estimator`` when no flag did (e.g. ``DGDR useAiConfigurator``): recorded
    as ``obtained_by.selected``."""


@dataclass(frozen=True)
class OfflineOutcome:
    """The sweep, where it was written and the plots written (empty with ``plots=False``);
    ``obtained_by`` as written to ``profile.json``."""

    result: SweepResult
    out: Path
    plots: tuple[Path, ...]
    model: str
    system: str
    estimator: str
    estimator_version: str
    obtained_by: dict[str, Any] = field(default_factory=dict)


def _profile_tp(recorded: int | None, directory: Path, role: str, notes: list[str]) -> int:
    """The TP of the measured ``role`` engine: ``profile.json``'s, else the ``tpNp_tpMd`` of
    Dynamo's profiler directory names, else 1 (said in ``notes``)."""
    if recorded is not None:
        return recorded
    found = _TP_IN_NAME[role].search(directory.name)
    if found:
        return int(found.group(1))
    notes.append(f"{directory.name}: no recorded {role} TP (profile.json, tpN in the name): TP1")
    return 1


def load_calibration(
    directory: Path,
    model: ModelArch,
    gpu: GpuSpec,
    backend: BackendName,
    dtype: Dtype,
    kv_dtype: Dtype | None = None,
) -> Fit:
    """Fit the roofline's constants to the measured profile in ``directory`` (Dynamo's layout:
    from ``profile --online``, Dynamo's profiler, or ``profile --offline --estimator
    aiconfigurator``). The measured model, GPU, backend, dtype and TPs come from its
    ``profile.json`` where recorded, else from the request (TP: the directory name); the
    returned fit's ``notes`` say what was assumed and ``measured`` what was fitted on."""
    from dynamo_plan.adapters.profile_files import load_profile, loaded_profile_meta
    from dynamo_plan.estimator import load_gpu, load_model
    from dynamo_plan.estimator.calibration import fit, measurement_from_profile

    profile = load_profile(directory)
    meta = loaded_profile_meta(profile, directory)
    notes: list[str] = []
    m_model, m_gpu = model, gpu
    if meta.model:
        try:
            m_model = load_model(meta.model)
        except InputError:
            notes.append(f"measured model {meta.model} is not catalogued: fitted as {model.name}")
    else:
        notes.append(f"{directory.name} records no model: taken to be {model.name}")
    if meta.system:
        try:
            m_gpu = load_gpu(meta.system)
        except InputError:
            notes.append(f"measured system {meta.system} is not catalogued: fitted as {gpu.name}")
    m_backend: BackendName = backend
    if meta.backend in BACKENDS:
        m_backend = meta.backend  # type: ignore[assignment]
    if m_backend != backend:
        notes.append(f"constants fitted on {m_backend} are applied to {backend}")
    recorded = profile.meta.get("dtype")
    m_dtype: Dtype = recorded if recorded in ("bf16", "fp8") else dtype
    tp_p = _profile_tp(meta.tp.get("prefill"), directory, "prefill", notes)
    tp_d = _profile_tp(meta.tp.get("decode"), directory, "decode", notes)
    measured = measurement_from_profile(profile, tp_p, tp_d, str(directory))
    result = fit(
        measured, m_model, m_gpu, m_backend, m_dtype, kv_dtype if m_backend == backend else None
    )
    described = {
        "model": m_model.name, "system": m_gpu.name, "backend": m_backend, "dtype": m_dtype,
        "tp": {"prefill": tp_p, "decode": tp_d},
    }  # fmt: skip
    return dataclasses.replace(result, notes=(*result.notes, *notes), measured=described)


def build_estimator(req: OfflineRequest) -> tuple[Selection, ModelArch, GpuSpec, Fit | None]:
    """(selection, model, GPU, calibration fit or None) for ``req``: the estimator per
    ``req.estimator`` (``auto`` resolved), calibrated when ``req.calibrate`` is given."""
    from dynamo_plan.estimator import load_gpu, load_model, select_estimator

    if req.calibrate is not None and req.estimator == "aiconfigurator":
        raise UsageError(
            "--calibrate fits the roofline's constants; it cannot be combined with "
            "--estimator aiconfigurator (use --estimator roofline or auto)"
        )
    model = load_model(req.model, req.model_config)
    gpu = load_gpu(req.system, req.gpu_spec)
    cal = None
    if req.calibrate is not None:
        cal = load_calibration(req.calibrate, model, gpu, req.backend, req.dtype)
    selection = select_estimator(
        req.estimator,
        model,
        gpu,
        backend=req.backend,
        dtype=req.dtype,
        backend_version=req.aic_backend_version,
        hf_id=req.aic_hf_id,
        calibration=cal,
    )
    return selection, model, gpu, cal


def obtained_by(selection: Selection, cal: Fit | None) -> dict[str, Any]:
    """``profile.json``'s ``obtained_by`` for an estimated profile: the estimator, its version,
    what was asked for and why this one (``auto``), AIC's database, the calibration."""
    est = selection.estimator
    out: dict[str, Any] = {
        "method": "estimated",
        "estimator": est.name,
        "estimator_version": est.version,
        "requested": selection.requested,
        "selected": selection.reason,
    }
    aic = getattr(est, "aic_record", None)
    if callable(aic):
        out["aiconfigurator"] = aic()
    if cal is not None:
        out["calibration"] = cal.record()
    return out


def run_offline(req: OfflineRequest) -> OfflineOutcome:
    """Sweep with the estimator and write the profile (npz, JSON, profile.json, plots) to ``req.out``.

    Raises InputError (unknown model/GPU, weights do not fit, AI Configurator absent or not
    covering the request, bad output or calibration directory) and InfeasibleSLAError (no
    candidate meets the SLA; names the closest configuration). Nothing is written unless the
    whole profile is ready.
    """
    selection, arch, gpu, cal = build_estimator(req)
    engine = selection.estimator
    model, system = str(arch.name), str(gpu.name)
    result = run_sweep(
        engine,
        req.sla,
        max_position_embeddings=int(arch.max_position_embeddings),
        max_gpus_per_engine=req.max_gpus_per_engine,
        grid=req.grid,
    )
    how = obtained_by(selection, cal)
    if req.requested_by and selection.reason == "requested":
        how["selected"] = req.requested_by
    meta = sweep_meta(
        result,
        model=model,
        system=system,
        backend=req.backend,
        extra={"dtype": req.dtype},
        obtained_by=how,
    )
    profile = dataclasses.replace(result.profile, meta=meta)
    plots = write_sweep_profile(req.out, dataclasses.replace(result, profile=profile), req.plots)
    return OfflineOutcome(
        result=result,
        out=req.out,
        plots=plots,
        model=model,
        system=system,
        estimator=engine.name,
        estimator_version=engine.version,
        obtained_by=how,
    )


def run_extend(directory: Path, out: Path, max_context: int, plots: bool = True) -> dict[str, Any]:
    """``profile --offline --extend DIR --max-context N``: the measured profile in ``directory``
    extended to prefill ISL and decode context ``max_context`` (tokens) with the roofline
    calibrated on it (:func:`~dynamo_plan.profiler.extend.extend_profile`), written to ``out``
    all-or-nothing with ``profile.json``'s ``extended`` entry and plots that mark the estimated
    part. InputError (one line) when ``profile.json`` lacks what the estimator needs. Returns
    the command's result: ``extended``, the reach per role, the record, where it went."""
    from dynamo_plan.adapters.profile_files import load_profile, save_profile, write_profile_dir
    from dynamo_plan.profiler.extend import extend_profile

    profile = load_profile(directory)
    ext = extend_profile(profile, directory, isl_to=max_context, context_to=max_context)
    if not ext.extended and ext.message:
        raise InputError(ext.message)
    names: list[str] = []

    def fill(tmp: Path) -> None:
        save_profile(ext.profile, tmp)
        if plots:
            from dynamo_plan.profiler.plots import write_profile_plots

            names.extend(p.name for p in write_profile_plots(ext.profile, tmp))

    write_profile_dir(out, fill)
    return {
        "source": str(directory),
        "extended": ext.extended,
        "message": ext.message or f"{directory} already covers {max_context} tokens",
        "prefill_max_isl": int(ext.profile.prefill.isl[-1]),
        "decode_max_context": int(ext.profile.decode.contexts[-1]),
        "record": ext.record,
        "out": str(out),
        "plots": [str(out / n) for n in names],
    }


def summary(outcome: OfflineOutcome) -> dict[str, Any]:
    """The command's result (without timing): chosen prefill/decode points and where it went."""
    pre, dec = outcome.result.prefill, outcome.result.decode
    out = {
        "model": outcome.model,
        "system": outcome.system,
        **chosen_points(outcome.result),
        "meets_sla": pre.meets and dec.meets,
        "prefill_max_isl": int(outcome.result.profile.prefill.isl[-1]),
        "decode_max_context": int(outcome.result.profile.decode.contexts[-1]),
        "estimator": outcome.estimator,
        "estimator_version": outcome.estimator_version,
        "estimator_selected": outcome.obtained_by.get("selected", ""),
        "out": str(outcome.out),
        "plots": [str(p) for p in outcome.plots],
    }
    if "calibration" in outcome.obtained_by:
        out["calibration"] = outcome.obtained_by["calibration"]
    return out
