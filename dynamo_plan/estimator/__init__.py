"""Offline performance estimator: model/GPU catalogs and a roofline model of one engine.

Public API (used by the profiler's offline sweep and ``dynamo-plan estimate``)::

    model = load_model("meta-llama/Llama-3.1-8B-Instruct")      # or config_path=Path(...)
    gpu = load_gpu("h200")                                        # or spec_path=Path(...)
    est = make_estimator("roofline", model, gpu, backend="vllm", dtype="fp8")
    est.max_kv_tokens(tp=1); est.prefill(1, isl=4096); est.decode(1, batch=64, context=4096)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dynamo_plan.core.backends import BackendName
from dynamo_plan.errors import InputError
from dynamo_plan.estimator.arch import GpuSpec, ModelArch
from dynamo_plan.estimator.base import DTYPES, Dtype, EstimatePoint, Estimator
from dynamo_plan.estimator.calibration import DEFAULT, Fit
from dynamo_plan.estimator.catalog import known_gpus, known_models, load_gpu, load_model
from dynamo_plan.estimator.roofline import RooflineEstimator

__all__ = [
    "DTYPES",
    "ESTIMATOR_KINDS",
    "Dtype",
    "EstimatePoint",
    "Estimator",
    "EstimatorKind",
    "Fit",
    "GpuSpec",
    "ModelArch",
    "RooflineEstimator",
    "Selection",
    "known_gpus",
    "known_models",
    "load_gpu",
    "load_model",
    "make_estimator",
    "select_estimator",
]

ESTIMATOR_KINDS: tuple[str, ...] = ("roofline", "aiconfigurator", "auto")
EstimatorKind = Literal["roofline", "aiconfigurator", "auto"]


def make_estimator(
    kind: Literal["roofline", "aiconfigurator"],
    model: ModelArch,
    gpu: GpuSpec,
    backend: BackendName = "trtllm",
    dtype: Dtype = "fp8",
    kv_dtype: Dtype | None = None,
    mem_util: float = 0.9,
) -> Estimator:
    """The estimator of ``kind``. ``"aiconfigurator"`` needs the optional package (InputError
    with the install command when it is absent). ``"auto"``: see :func:`select_estimator`."""
    if kind == "roofline":
        return RooflineEstimator(model, gpu, backend, dtype, kv_dtype, mem_util)
    if kind == "aiconfigurator":
        from dynamo_plan.estimator.aic import AiConfiguratorEstimator

        return AiConfiguratorEstimator(model, gpu, backend, dtype, kv_dtype, mem_util)
    if kind == "auto":
        return select_estimator(kind, model, gpu, backend, dtype, kv_dtype, mem_util).estimator
    raise InputError(f"unknown estimator '{kind}'; expected one of {', '.join(ESTIMATOR_KINDS)}")


@dataclass(frozen=True)
class Selection:
    """The estimator a run uses and why (``reason``: one line, for the output and
    ``profile.json``'s ``obtained_by.selected``)."""

    estimator: Estimator
    requested: str
    reason: str


def select_estimator(
    kind: str,
    model: ModelArch,
    gpu: GpuSpec,
    backend: BackendName = "trtllm",
    dtype: Dtype = "fp8",
    kv_dtype: Dtype | None = None,
    mem_util: float = 0.9,
    *,
    backend_version: str | None = None,
    hf_id: str | None = None,
    aic_system: str | None = None,
    calibration: Fit | None = None,
) -> Selection:
    """Resolve ``--estimator roofline|aiconfigurator|auto``.

    * ``roofline``: the built-in model, with ``calibration``'s constants when given.
    * ``aiconfigurator``: AI Configurator for ``aic_system`` (default: the GPU's name),
      ``backend_version`` (default: AIC's current database) and ``hf_id`` (default: the
      catalog's HF id AIC ships a config for); InputError (one line) when it is not installed
      or does not cover them. Cannot be calibrated (UsageError-worthy: InputError here).
    * ``auto``: AI Configurator when it is installed and covers the model, system, backend and
      version (:func:`~dynamo_plan.estimator.aic.aic_coverage`) and no calibration was asked
      for; the roofline otherwise — ``reason`` says which and why.
    """
    if kind not in ESTIMATOR_KINDS:
        raise InputError(
            f"unknown estimator '{kind}'; expected one of {', '.join(ESTIMATOR_KINDS)}"
        )

    def roofline(reason: str) -> Selection:
        est = RooflineEstimator(
            model, gpu, backend, dtype, kv_dtype, mem_util,
            calibration=calibration.calibration if calibration else DEFAULT,
            overhead=calibration.overhead if calibration else None,
        )  # fmt: skip
        if calibration is not None:
            est.version = f"{est.version}+calibrated"
        return Selection(est, kind, reason)

    if kind == "roofline":
        return roofline(
            "requested" + (f", calibrated on {calibration.source}" if calibration else "")
        )
    from dynamo_plan.estimator.aic import AiConfiguratorEstimator, aic_coverage

    system = aic_system or gpu.name
    if kind == "aiconfigurator":
        if calibration is not None:
            raise InputError(
                "--calibrate fits the roofline's constants; it cannot be combined with "
                "--estimator aiconfigurator (use --estimator roofline or auto)"
            )
        est = AiConfiguratorEstimator(
            model, gpu, backend, dtype, kv_dtype, mem_util,
            backend_version=backend_version, hf_id=hf_id, system=system,
        )  # fmt: skip
        return Selection(est, kind, "requested")
    if calibration is not None:
        return roofline(f"auto: calibrated on {calibration.source}")
    cov = aic_coverage(model, system, backend, backend_version, hf_id)
    if not cov.covered:
        return roofline(f"auto: roofline, because {cov.reason}")
    est = AiConfiguratorEstimator(
        model, gpu, backend, dtype, kv_dtype, mem_util,
        backend_version=cov.version, hf_id=cov.model_path, system=system,
    )  # fmt: skip
    return Selection(
        est,
        kind,
        f"auto: aiconfigurator covers {cov.model_path} on {system} ({backend} {cov.version})",
    )
