"""The estimator interface: one prefill or decode step of one engine of ``tp`` GPUs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, TypeAlias, runtime_checkable

Dtype: TypeAlias = Literal["bf16", "fp8"]
DTYPES: tuple[Dtype, ...] = ("bf16", "fp8")


@dataclass(frozen=True)
class EstimatePoint:
    """``latency_ms``: TTFT (prefill) or ITL (decode step), ms; ``thpt_per_gpu``: tokens/s/GPU."""

    latency_ms: float
    thpt_per_gpu: float


@runtime_checkable
class Estimator(Protocol):
    """Performance of one engine (``tp`` GPUs, tensor parallel)."""

    name: str
    version: str

    def fits(self, tp: int) -> bool:
        """Weights/tp + activation reserve fit in HBM·mem_util, with room for KV."""
        ...

    def max_kv_tokens(self, tp: int) -> int:
        """KV-cache capacity of the engine (all ``tp`` GPUs together), tokens; 0 if it does not fit."""
        ...

    def prefill(self, tp: int, isl: int) -> EstimatePoint:
        """One request of ``isl`` tokens alone: TTFT; thpt = isl / TTFT / tp."""
        ...

    def decode(self, tp: int, batch: int, context: int) -> EstimatePoint:
        """One step of ``batch`` sequences at ``context`` tokens: ITL; thpt = batch / ITL / tp."""
        ...
