"""Percentiles of a stream of latencies in bounded memory (:class:`StreamQuantiles`).

The simulator reports TTFT/ITL p50/p90/p99 over every completed request. A day at 100 req/s is
8.6 M values per metric; keeping them all is what made memory grow with the trace. So:

* up to ``exact_limit`` values (default 2**20) the values themselves are kept and the
  percentiles are numpy's (linear interpolation between order statistics) — exact;
* beyond, the values are binned in a fixed **log-spaced histogram**: bucket ``i`` holds the
  values in ``(γ^(i-1), γ^i]`` with ``γ = (1 + α) / (1 - α)`` and stands for
  ``2 γ^i / (γ + 1)``, which is within a relative ``α`` of every value in the bucket (the
  DDSketch construction). A percentile is numpy's linear interpolation between the two order
  statistics around its rank, each replaced by its bucket's representative (clamped to the exact
  minimum and maximum seen; the first and last order statistics are those, exactly).

**Error bound.** Every order statistic is replaced by a value within ``α·x`` of it, and a linear
interpolation ``(1 - f)·a + f·b`` of positive values with such errors is off by at most
``(1 - f)·α·a + f·α·b = α·(exact result)``; so each reported percentile ``p̂`` satisfies
``|p̂ - p| ≤ α·p`` against ``numpy.percentile`` of all the values (α = 0.5 % by default), for
values inside ``[lo, hi]`` (default 1e-6 .. 1e12 ms; values outside are clamped to it). Memory:
``ln(hi/lo) / ln γ`` buckets (4,145 int64 at the defaults) plus the exact values while kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["DEFAULT_EXACT_LIMIT", "DEFAULT_RELATIVE_ERROR", "StreamQuantiles"]

#: Relative error bound α of a percentile once the histogram is in use.
DEFAULT_RELATIVE_ERROR = 0.005
#: Values kept exactly before switching to the histogram.
DEFAULT_EXACT_LIMIT = 1 << 20


class StreamQuantiles:
    """Percentiles of positive values added in batches (module docstring: method and bound)."""

    def __init__(
        self,
        relative_error: float = DEFAULT_RELATIVE_ERROR,
        exact_limit: int = DEFAULT_EXACT_LIMIT,
        lo: float = 1e-6,
        hi: float = 1e12,
    ) -> None:
        if not 0.0 < relative_error < 1.0:
            raise ValueError(f"relative_error must be in (0, 1), got {relative_error}")
        if not 0.0 < lo < hi:
            raise ValueError(f"need 0 < lo < hi, got {lo}, {hi}")
        self.alpha = relative_error
        self.exact_limit = int(exact_limit)
        self._log_gamma = math.log((1.0 + relative_error) / (1.0 - relative_error))
        self._lo, self._hi = lo, hi
        self._i0 = math.ceil(math.log(lo) / self._log_gamma)
        self._counts = np.zeros(
            math.ceil(math.log(hi) / self._log_gamma) - self._i0 + 1, dtype=np.int64
        )
        self._exact: list[np.ndarray] | None = []
        self._n_exact = 0
        self.count = 0
        self.min = math.inf
        self.max = -math.inf

    @property
    def exact(self) -> bool:
        """True while every value is still kept (percentiles are numpy's, exactly)."""
        return self._exact is not None

    def add(self, values: Sequence[float] | np.ndarray) -> None:
        """Add a batch of values (non-finite ones are ignored)."""
        v = np.asarray(values, dtype=np.float64)
        v = v[np.isfinite(v)]
        if v.size == 0:
            return
        self.count += int(v.size)
        self.min = min(self.min, float(v.min()))
        self.max = max(self.max, float(v.max()))
        if self._exact is not None:
            self._exact.append(v)
            self._n_exact += int(v.size)
            if self._n_exact <= self.exact_limit:
                return
            v = np.concatenate(self._exact)
            self._exact = None
        self._bin(v)

    def _bin(self, v: np.ndarray) -> None:
        clipped = np.clip(v, self._lo, self._hi)
        idx = np.ceil(np.log(clipped) / self._log_gamma).astype(np.int64) - self._i0
        np.clip(idx, 0, self._counts.size - 1, out=idx)
        self._counts += np.bincount(idx, minlength=self._counts.size)

    def _order_stat(self, ranks: np.ndarray) -> np.ndarray:
        """Representatives of the 0-based order statistics ``ranks`` (histogram mode)."""
        cum = np.cumsum(self._counts)
        bucket = np.searchsorted(cum, ranks, side="right")
        gamma = math.exp(self._log_gamma)
        rep = 2.0 * np.exp((bucket + self._i0) * self._log_gamma) / (gamma + 1.0)
        out: np.ndarray = np.clip(rep, self.min, self.max)
        out = np.where(ranks <= 0, self.min, out)  # the extremes are known exactly
        out = np.where(ranks >= self.count - 1, self.max, out)
        return out

    def percentiles(self, qs: Sequence[float]) -> list[float]:
        """The ``qs`` percentiles (0..100), numpy's linear method; NaN for each when empty."""
        if self.count == 0:
            return [math.nan] * len(qs)
        if self._exact is not None:
            return [float(x) for x in np.percentile(np.concatenate(self._exact), list(qs))]
        pos = (self.count - 1) * np.asarray(qs, dtype=np.float64) / 100.0
        j = np.floor(pos)
        f = pos - j
        a = self._order_stat(j.astype(np.int64))
        b = self._order_stat(np.minimum(j + 1, self.count - 1).astype(np.int64))
        return [float(x) for x in a + f * (b - a)]
