"""Correction factors: how much slower (> 1) or faster (< 1) the deployment runs than its profile.

``p_cf`` scales the profiled prefill time, ``d_cf`` the profiled decode ITL (DESIGN.md §4). One
interval gives one sample (``observed / expected``, or for prefill the queueing-aware factor of
:func:`dynamo_plan.core.sla.prefill_slowdown`); the factor is the sample clipped to
``[lo, hi]`` and blended into the previous factor with weight ``smoothing`` (an EWMA)::

    cf_new = clip((1 - w) · cf_prev + w · clip(sample, lo, hi), lo, hi)

so one outlier moves a factor by at most ``w · (hi - lo)`` (Dynamo takes the raw ratio: one noisy
interval can turn 1 into 7 and multiply the decode fleet). ``max_step`` optionally caps the move
per interval further. An unknown sample (no observation) keeps the previous factor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dynamo_plan.errors import InputError

__all__ = [
    "CorrectionConfig",
    "Corrections",
    "smooth",
    "update_corrections",
    "update_corrections_from_samples",
]


@dataclass(frozen=True)
class CorrectionConfig:
    """Bounds ``[lo, hi]`` of a factor, EWMA weight ``smoothing`` of a new sample (in (0, 1]),
    optional cap ``max_step`` on the change per interval; ``enabled=False`` pins both to 1."""

    enabled: bool = True
    lo: float = 0.5
    hi: float = 3.0
    smoothing: float = 0.3
    max_step: float | None = None

    def __post_init__(self) -> None:
        if not (
            math.isfinite(self.lo) and math.isfinite(self.hi) and 0.0 < self.lo <= 1.0 <= self.hi
        ):
            raise InputError(
                f"correction bounds must satisfy 0 < lo <= 1 <= hi, got lo={self.lo!r}, hi={self.hi!r}"
            )
        if not 0.0 < self.smoothing <= 1.0:
            raise InputError(f"correction smoothing must be in (0, 1], got {self.smoothing!r}")
        if self.max_step is not None and not self.max_step > 0.0:
            raise InputError(f"correction max_step must be > 0, got {self.max_step!r}")


@dataclass(frozen=True)
class Corrections:
    """Current factors: ``prefill`` (on the profiled TTFT), ``decode`` (on the profiled ITL)."""

    prefill: float = 1.0
    decode: float = 1.0


def smooth(prev: float, sample: float | None, cfg: CorrectionConfig) -> float:
    """One factor after one sample (module docstring); ``None`` or non-finite keeps ``prev``."""
    if not cfg.enabled:
        return 1.0
    if sample is None or not math.isfinite(sample) or sample <= 0.0:
        return prev
    s = min(max(sample, cfg.lo), cfg.hi)
    new = (1.0 - cfg.smoothing) * prev + cfg.smoothing * s
    if cfg.max_step is not None:
        new = min(max(new, prev - cfg.max_step), prev + cfg.max_step)
    return min(max(new, cfg.lo), cfg.hi)


def _ratio(observed: float | None, expected: float | None) -> float | None:
    if observed is None or expected is None:
        return None
    if not (math.isfinite(observed) and math.isfinite(expected)) or expected <= 0.0:
        return None
    return observed / expected


def update_corrections(
    prev: Corrections,
    cfg: CorrectionConfig,
    *,
    observed_ttft_ms: float | None,
    expected_ttft_ms: float | None,
    observed_itl_ms: float | None,
    expected_itl_ms: float | None,
) -> Corrections:
    """Both factors after one interval from ``observed / expected`` latencies (ms).

    A ``None`` (or non-finite, or expected <= 0) pair keeps that factor.
    """
    return update_corrections_from_samples(
        prev,
        cfg,
        prefill_sample=_ratio(observed_ttft_ms, expected_ttft_ms),
        decode_sample=_ratio(observed_itl_ms, expected_itl_ms),
    )


def update_corrections_from_samples(
    prev: Corrections,
    cfg: CorrectionConfig,
    *,
    prefill_sample: float | None,
    decode_sample: float | None,
) -> Corrections:
    """Both factors after one interval from ready-made samples (``None`` keeps a factor)."""
    if not cfg.enabled:
        return Corrections()
    return Corrections(
        prefill=smooth(prev.prefill, prefill_sample, cfg),
        decode=smooth(prev.decode, decode_sample, cfg),
    )
