"""Offline performance estimator: model/GPU catalogs and a roofline model of one engine.

Public API (used by the profiler's offline sweep and ``dynamo-plan estimate``)::

    model = load_model("meta-llama/Llama-3.1-8B-Instruct")      # or config_path=Path(...)
    gpu = load_gpu("h200")                                        # or spec_path=Path(...)
    est = make_estimator("roofline", model, gpu, backend="vllm", dtype="fp8")
    est.max_kv_tokens(tp=1); est.prefill(1, isl=4096); est.decode(1, batch=64, context=4096)
"""

from __future__ import annotations

from typing import Literal

from dynamo_plan.core.backends import BackendName
from dynamo_plan.errors import InputError
from dynamo_plan.estimator.arch import GpuSpec, ModelArch
from dynamo_plan.estimator.base import DTYPES, Dtype, EstimatePoint, Estimator
from dynamo_plan.estimator.catalog import known_gpus, known_models, load_gpu, load_model
from dynamo_plan.estimator.roofline import RooflineEstimator

__all__ = [
    "DTYPES",
    "ESTIMATOR_KINDS",
    "Dtype",
    "EstimatePoint",
    "Estimator",
    "GpuSpec",
    "ModelArch",
    "RooflineEstimator",
    "known_gpus",
    "known_models",
    "load_gpu",
    "load_model",
    "make_estimator",
]

ESTIMATOR_KINDS: tuple[str, ...] = ("roofline", "aiconfigurator")


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
    with the install command when it is absent)."""
    if kind == "roofline":
        return RooflineEstimator(model, gpu, backend, dtype, kv_dtype, mem_util)
    if kind == "aiconfigurator":
        from dynamo_plan.estimator.aic import AiConfiguratorEstimator

        return AiConfiguratorEstimator(model, gpu, backend, dtype, kv_dtype, mem_util)
    raise InputError(f"unknown estimator '{kind}'; expected one of {', '.join(ESTIMATOR_KINDS)}")
