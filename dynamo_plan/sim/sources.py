"""Synthetic request streams generated chunk by chunk (:class:`PoissonStream`), for runs too long
to hold as one :class:`~dynamo_plan.sim.requests.RequestArrays` (a day at 100 req/s is 8.6 M
requests) and for benchmarks of the simulator.

Lengths are log-normal (:class:`LogNormalLengths`), rounded and clipped to a range.
:data:`MOONCAKE_ISL` / :data:`MOONCAKE_OSL` are fitted to the Mooncake conversation trace
(``mooncake_conversation.jsonl``, 12,031 requests): ISL median 6,909 and p90 27,367 tokens (the
fit gives mean ~12,300 and p99 ~84,000; the trace: 12,035 and 85,400), OSL median 350 and p90
597 tokens (clipped to 1..2,000 as the trace is).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from dynamo_plan.errors import InputError
from dynamo_plan.sim.requests import CHUNK_REQUESTS, RequestArrays

__all__ = ["MOONCAKE_ISL", "MOONCAKE_OSL", "LogNormalLengths", "PoissonStream"]

_Z90 = 1.2815515655446004  # standard normal 90th percentile


@dataclass(frozen=True)
class LogNormalLengths:
    """Token lengths ``round(exp(N(ln median, sigma)))`` clipped to ``[lo, hi]``."""

    median: float
    sigma: float
    lo: int = 1
    hi: int = 1 << 20

    @classmethod
    def from_median_p90(
        cls, median: float, p90: float, lo: int = 1, hi: int = 1 << 20
    ) -> LogNormalLengths:
        """The log-normal with this median and 90th percentile (``p90 > median > 0``)."""
        if not 0 < median < p90:
            raise InputError(f"need 0 < median < p90, got {median}, {p90}")
        return cls(float(median), math.log(p90 / median) / _Z90, lo, hi)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        x = rng.lognormal(math.log(self.median), self.sigma, size=n)
        out: np.ndarray = np.clip(np.round(x), self.lo, self.hi).astype(np.int64)
        return out


MOONCAKE_ISL = LogNormalLengths.from_median_p90(6909, 27367, lo=1, hi=131_072)
MOONCAKE_OSL = LogNormalLengths.from_median_p90(350, 597, lo=1, hi=2000)


@dataclass(frozen=True)
class PoissonStream:
    """``rate_per_s`` Poisson arrivals over ``[0, duration_s)`` (the first at 0), ISL/OSL drawn
    from ``isl``/``osl``, generated ``chunk`` requests at a time (a
    :class:`~dynamo_plan.sim.requests.RequestSource`). Deterministic for a given ``seed``."""

    rate_per_s: float
    duration_s: float
    isl: LogNormalLengths = field(default=MOONCAKE_ISL)
    osl: LogNormalLengths = field(default=MOONCAKE_OSL)
    seed: int = 0
    chunk: int = CHUNK_REQUESTS

    def __post_init__(self) -> None:
        if not (self.rate_per_s > 0 and self.duration_s > 0 and self.chunk >= 1):
            raise InputError(
                f"PoissonStream needs rate_per_s > 0, duration_s > 0 and chunk >= 1, got "
                f"{self.rate_per_s}, {self.duration_s}, {self.chunk}"
            )

    @property
    def span_s(self) -> float:
        """Upper bound of the last arrival (seconds)."""
        return float(self.duration_s)

    def chunks(self) -> Iterator[RequestArrays]:
        rng = np.random.default_rng(self.seed)
        t0 = 0.0
        first = True
        while True:
            gaps = rng.exponential(1.0 / self.rate_per_s, size=self.chunk)
            if first:
                gaps[0] = 0.0
                first = False
            times = t0 + np.cumsum(gaps)
            keep = times < self.duration_s
            n = int(keep.sum())
            if n:
                yield RequestArrays(times[:n], self.isl.draw(rng, n), self.osl.draw(rng, n))
            if n < self.chunk:
                return
            t0 = float(times[-1])
