"""``profile --offline``: estimator → TP sweep → profile directory (+ plots), all-or-nothing.

The estimator package is imported when a run starts (not at import time), so the CLI stays quick
to load.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dynamo_plan.core.backends import BackendName
from dynamo_plan.profiler.sweep import (
    EngineModel,
    SweepGrid,
    SweepResult,
    SweepSLA,
    chosen_points,
    run_sweep,
    sweep_meta,
    write_sweep_profile,
)

__all__ = ["ESTIMATORS", "OfflineOutcome", "OfflineRequest", "run_offline", "summary"]

ESTIMATORS = ("roofline", "aiconfigurator")
Dtype = Literal["bf16", "fp8"]
EstimatorKind = Literal["roofline", "aiconfigurator"]


@dataclass(frozen=True)
class OfflineRequest:
    """Everything one offline profiling run needs (flags or a DGDR, already merged)."""

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


@dataclass(frozen=True)
class OfflineOutcome:
    """The sweep, where it was written and the plots written (empty with ``plots=False``)."""

    result: SweepResult
    out: Path
    plots: tuple[Path, ...]
    model: str
    system: str
    estimator: str
    estimator_version: str


def _build_engine(req: OfflineRequest) -> tuple[EngineModel, int, str, str]:
    """The estimator for ``req`` plus the model's context window and the resolved names."""
    from dynamo_plan.estimator import load_gpu, load_model, make_estimator

    model = load_model(req.model, req.model_config)
    gpu = load_gpu(req.system, req.gpu_spec)
    engine = make_estimator(
        req.estimator,
        model,
        gpu,
        backend=req.backend,
        dtype=req.dtype,
    )
    return engine, int(model.max_position_embeddings), str(model.name), str(gpu.name)


def run_offline(req: OfflineRequest) -> OfflineOutcome:
    """Sweep with the estimator and write the profile (npz, JSON, profile.json, plots) to ``req.out``.

    Raises InputError (unknown model/GPU, weights do not fit, bad output directory) and
    InfeasibleSLAError (no candidate meets the SLA; names the closest configuration). Nothing is
    written unless the whole profile is ready.
    """
    engine, max_pos, model, system = _build_engine(req)
    result = run_sweep(
        engine,
        req.sla,
        max_position_embeddings=max_pos,
        max_gpus_per_engine=req.max_gpus_per_engine,
        grid=req.grid,
    )
    meta = sweep_meta(
        result,
        model=model,
        system=system,
        backend=req.backend,
        extra={"dtype": req.dtype},
        obtained_by={
            "method": "estimated",
            "estimator": engine.name,
            "estimator_version": engine.version,
        },
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
    )


def summary(outcome: OfflineOutcome) -> dict[str, Any]:
    """The command's result (without timing): chosen prefill/decode points and where it went."""
    pre, dec = outcome.result.prefill, outcome.result.decode
    return {
        "model": outcome.model,
        "system": outcome.system,
        **chosen_points(outcome.result),
        "meets_sla": pre.meets and dec.meets,
        "estimator": outcome.estimator,
        "estimator_version": outcome.estimator_version,
        "out": str(outcome.out),
        "plots": [str(p) for p in outcome.plots],
    }
