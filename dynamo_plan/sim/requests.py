"""The simulator's input: one row per request (arrival time, input and output length).

Built from a :class:`~dynamo_plan.trace.Trace` (``rate_scale`` k compresses time by k) or drawn
as a Poisson stream for tests and what-if runs. The simulator pulls requests in chunks through
the :class:`RequestSource` protocol (a :class:`RequestArrays` is one; so is a generator of
chunks such as :class:`~dynamo_plan.sim.sources.PoissonStream`), so a trace need not be held as
one array.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from dynamo_plan.errors import InputError
from dynamo_plan.trace import Trace

__all__ = ["CHUNK_REQUESTS", "RequestArrays", "RequestSource"]

#: Requests per chunk the simulator pulls from a :class:`RequestArrays`.
CHUNK_REQUESTS = 1 << 16


@runtime_checkable
class RequestSource(Protocol):
    """Requests in arrival order, delivered in chunks.

    ``chunks()`` yields :class:`RequestArrays` whose arrivals (seconds from t = 0) ascend within
    and across chunks (the simulator raises InputError otherwise); ``span_s`` is the last
    arrival, or an estimate of it (progress reporting only).
    """

    @property
    def span_s(self) -> float: ...

    def chunks(self) -> Iterator[RequestArrays]: ...


def _frozen(values: object, dtype: type) -> np.ndarray:
    arr: np.ndarray = np.array(values, dtype=dtype, copy=True).reshape(-1)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)  # numpy fields
class RequestArrays:
    """Requests to replay: ``arrival_s`` (float64, seconds from the first request, ascending),
    ``isl`` and ``osl`` (int64 tokens, ≥ 1). Arrays are read-only and equally long.

    ``osl`` counts every output token, the first one (made by the prefill engine) included.
    """

    arrival_s: np.ndarray
    isl: np.ndarray
    osl: np.ndarray

    def __post_init__(self) -> None:
        arrival = _frozen(self.arrival_s, np.float64)
        isl = _frozen(self.isl, np.int64)
        osl = _frozen(self.osl, np.int64)
        if not (arrival.size == isl.size == osl.size):
            raise InputError(
                f"request arrays differ in length: arrival_s {arrival.size}, isl {isl.size}, "
                f"osl {osl.size}; expected one value per request"
            )
        if not np.all(np.isfinite(arrival)):
            i = int(np.flatnonzero(~np.isfinite(arrival))[0])
            raise InputError(f"request {i}: arrival_s is {arrival[i]}; expected a finite number")
        if arrival.size > 1 and np.any(np.diff(arrival) < 0):
            i = int(np.flatnonzero(np.diff(arrival) < 0)[0]) + 1
            raise InputError(
                f"request {i}: arrival_s {arrival[i]:g} is before the previous one "
                f"({arrival[i - 1]:g}); expected ascending arrivals"
            )
        for name, arr in (("isl", isl), ("osl", osl)):
            bad = np.flatnonzero(arr < 1)
            if bad.size:
                i = int(bad[0])
                raise InputError(f"request {i}: {name} is {arr[i]}; expected >= 1 token")
        object.__setattr__(self, "arrival_s", arrival)
        object.__setattr__(self, "isl", isl)
        object.__setattr__(self, "osl", osl)

    def __len__(self) -> int:
        return int(self.arrival_s.size)

    @property
    def span_s(self) -> float:
        """Seconds from the first to the last arrival (0 for fewer than two requests)."""
        return float(self.arrival_s[-1] - self.arrival_s[0]) if self.arrival_s.size > 1 else 0.0

    def chunks(self, size: int = CHUNK_REQUESTS) -> Iterator[RequestArrays]:
        """Consecutive slices of at most ``size`` requests (the :class:`RequestSource` view)."""
        n = len(self)
        if n <= size:
            yield self
            return
        for a in range(0, n, size):
            b = min(n, a + size)
            yield RequestArrays(self.arrival_s[a:b], self.isl[a:b], self.osl[a:b])

    @classmethod
    def from_trace(cls, trace: Trace, rate_scale: float = 1.0) -> RequestArrays:
        """Requests of ``trace`` with arrivals ``(ts - ts0) / 1000 / rate_scale`` seconds.

        ``rate_scale`` k > 1 compresses time by k (k times the request rate, same requests).
        Lengths are rounded to whole tokens; a length below 1 is an InputError naming the
        record. A rate series (``fmt == "rate"``) is expanded: each step's ``round(requests)``
        requests are spread evenly over the step with the step's mean ISL/OSL (InputError where
        a step with requests has no ISL/OSL).
        """
        k = float(rate_scale)
        if not (math.isfinite(k) and k > 0):
            raise InputError(f"rate_scale must be a positive number, got {rate_scale!r}")
        if len(trace) == 0:
            raise InputError("the trace has no requests")
        ts_s = (trace.timestamp_ms - trace.timestamp_ms[0]) / 1000.0
        isl = trace.input_length
        osl = trace.output_length
        if trace.fmt == "rate":
            ts_s, isl, osl = _expand_rate(trace, ts_s)
        for name, arr in (("input_length", isl), ("output_length", osl)):
            bad = np.flatnonzero(~np.isfinite(arr) | (np.round(arr) < 1))
            if bad.size:
                i = int(bad[0])
                raise InputError(
                    f"{trace.sources[0] if trace.sources else 'trace'}: record {i}: {name} is "
                    f"{arr[i]:g}; the simulator needs >= 1 token"
                )
        return cls(ts_s / k, np.round(isl).astype(np.int64), np.round(osl).astype(np.int64))

    @classmethod
    def poisson(
        cls,
        rate_per_s: float,
        duration_s: float,
        isl: int | tuple[int, int],
        osl: int | tuple[int, int],
        seed: int = 0,
    ) -> RequestArrays:
        """A Poisson stream of ``rate_per_s`` requests/s over ``duration_s`` seconds.

        ``isl``/``osl``: a fixed length, or ``(low, high)`` for lengths uniform on that inclusive
        range. Deterministic for a given ``seed`` (numpy PCG64). The first arrival is at 0.
        """
        if not (rate_per_s > 0 and duration_s > 0):
            raise InputError(
                f"poisson needs rate_per_s > 0 and duration_s > 0, got {rate_per_s}, {duration_s}"
            )
        rng = np.random.default_rng(seed)
        n_max = int(rate_per_s * duration_s + 10 * math.sqrt(rate_per_s * duration_s) + 10)
        times = np.cumsum(rng.exponential(1.0 / rate_per_s, size=n_max))
        times = times[times < duration_s]
        times = times - times[0] if times.size else times
        n = times.size

        def lengths(spec: int | tuple[int, int]) -> np.ndarray:
            if isinstance(spec, tuple):
                return rng.integers(spec[0], spec[1] + 1, size=n)
            return np.full(n, spec, dtype=np.int64)

        return cls(times, lengths(isl), lengths(osl))


def _expand_rate(trace: Trace, ts_s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spread each step's requests evenly over the step (see :meth:`RequestArrays.from_trace`)."""
    step = trace.step_s if trace.step_s else 1.0
    counts = np.round(trace.weight).astype(np.int64)
    rows = np.repeat(np.arange(counts.size), counts)
    offsets = np.concatenate([np.arange(c) / c for c in counts if c > 0]) if rows.size else rows
    times = ts_s[rows] + offsets * step
    order = np.argsort(times, kind="stable")
    return times[order], trace.input_length[rows][order], trace.output_length[rows][order]
