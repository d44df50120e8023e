"""A Prometheus histogram of token counts (the frontend's ``input_sequence_tokens`` /
``output_sequence_tokens`` over a window) and samples drawn from it.

``bounds`` are the finite ``le`` upper bounds, ascending; ``counts`` the requests per bucket
(not cumulative), one more than ``bounds`` (the last is the ``+Inf`` bucket); ``total`` the
window's ``_sum`` (tokens), which places the ``+Inf`` bucket.

Sampling (:meth:`TokenHistogram.sample`) inverts the bucket CDF with values spread uniformly
within a bucket — what ``histogram_quantile`` assumes — from the bucket below's bound (1 token
for the first bucket) to its own. The ``+Inf`` bucket has no upper bound: its requests get the
mean the ``_sum`` leaves for them, ``(total - Σ finite-bucket midpoints·counts) / count_inf``,
at least the last finite bound (``histogram_quantile`` would clamp them to that bound, hiding a
tail beyond the buckets).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dynamo_plan.errors import InputError

__all__ = ["TokenHistogram"]


@dataclass(frozen=True, eq=False)
class TokenHistogram:
    """Per-bucket request counts of token lengths (module docstring)."""

    bounds: np.ndarray
    counts: np.ndarray
    total: float

    def __post_init__(self) -> None:
        b = np.asarray(self.bounds, dtype=float)
        c = np.asarray(self.counts, dtype=float)
        if b.ndim != 1 or c.shape != (b.size + 1,):
            raise InputError("a token histogram needs one more count than finite bounds")
        if not (np.all(np.isfinite(b)) and np.all(np.diff(b) > 0) and (b.size == 0 or b[0] > 0)):
            raise InputError("token histogram bounds must be finite, positive and increasing")
        if not (np.all(np.isfinite(c)) and np.all(c >= 0)):
            raise InputError("token histogram counts must be finite and >= 0")
        if not math.isfinite(self.total) or self.total < 0:
            raise InputError(f"token histogram sum must be finite and >= 0, got {self.total!r}")
        object.__setattr__(self, "bounds", b)
        object.__setattr__(self, "counts", c)

    @classmethod
    def from_cumulative(
        cls, le: list[float], cumulative: list[float], total: float
    ) -> TokenHistogram:
        """From Prometheus ``_bucket`` series: ``le`` bounds (``inf`` included) and their
        cumulative counts, in any order. Counts that fall with ``le`` (counter resets mid-window)
        are clipped to zero."""
        order = np.argsort(np.asarray(le, dtype=float))
        bounds = np.asarray(le, dtype=float)[order]
        cum = np.maximum.accumulate(np.asarray(cumulative, dtype=float)[order])
        if bounds.size == 0 or not math.isinf(bounds[-1]):
            bounds = np.append(bounds, math.inf)
            cum = np.append(cum, cum[-1] if cum.size else 0.0)
        counts = np.diff(np.concatenate([[0.0], cum]))
        return cls(bounds[:-1], counts, max(0.0, total))

    @property
    def requests(self) -> float:
        """Requests the window counted."""
        return float(self.counts.sum())

    def _overflow_mean(self) -> float:
        last = float(self.bounds[-1]) if self.bounds.size else 1.0
        inf_count = float(self.counts[-1])
        if inf_count <= 0:
            return last
        lows = np.concatenate([[1.0], self.bounds[:-1]])
        within = float(np.sum((lows + self.bounds) / 2.0 * self.counts[:-1]))
        return max(last, (self.total - within) / inf_count)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` token counts (int64, >= 1) drawn from the histogram (module docstring); an
        empty histogram gives an empty array."""
        if self.requests <= 0 or n <= 0:
            return np.zeros(0, dtype=np.int64)
        p = self.counts / self.counts.sum()
        bucket = rng.choice(p.size, size=n, p=p)
        lows = np.concatenate([[1.0], self.bounds])
        highs = np.concatenate([self.bounds, [self._overflow_mean()]])
        hi = highs[bucket]
        lo = np.minimum(lows[bucket], hi)
        values = np.where(bucket == p.size - 1, hi, lo + rng.uniform(0.0, 1.0, n) * (hi - lo))
        out: np.ndarray = np.maximum(1, np.rint(values)).astype(np.int64)
        return out
