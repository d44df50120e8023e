"""Latency models of the simulated engines: fast scalar versions of the profile lookups.

The simulator asks for one latency per prefill batch and per decode-batch change, tens of
thousands of times per run; :class:`~dynamo_plan.core.profile.PerformanceProfile` lookups go
through numpy and cost tens of µs each. These classes evaluate the *same* interpolants (PCHIP
knots and slopes from :class:`~dynamo_plan.core.profile_interp.Pchip`, the same row blending and
clamping as :class:`~dynamo_plan.core.profile.DecodeSurface`) in plain Python floats, a few µs per
call; the tests check them against the profile's own lookups.

Model:

* **prefill** — a batch of ``T`` prompt tokens takes ``ttft(T)`` ms, the profile's
  single-request TTFT at ISL ``T`` (a batch is treated as one long prompt; attention cost is
  slightly overstated). Above the measured ISL range the engine runs at the throughput of the
  longest measured prompt: ``ttft(hi) · T / hi`` (clamped throughput, not clamped latency).
* **decode** — one step of a batch of requests ``i`` with mid-life context
  ``c_i = isl_i + osl_i / 2`` (the profiler's convention) takes ``itl(kv, ctx)`` ms with
  ``kv = Σ c_i / max_kv_tokens`` and ``ctx = mean c_i``, clamped to the measured surface.
"""

from __future__ import annotations

from bisect import bisect_right

from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.profile_interp import Pchip

__all__ = ["DecodeLatency", "PrefillLatency", "ScalarPchip"]


class ScalarPchip:
    """A :class:`Pchip` evaluated on Python floats (same knots, slopes, clamping, exact knots)."""

    __slots__ = ("d", "hi", "lo", "n", "x", "y")

    def __init__(self, p: Pchip) -> None:
        self.x: list[float] = [float(v) for v in p.x]
        self.y: list[float] = [float(v) for v in p.y]
        self.d: list[float] = [float(v) for v in p.d]
        self.n = len(self.x)
        self.lo = self.x[0]
        self.hi = self.x[-1]

    def __call__(self, q: float) -> float:
        x = self.x
        if q <= self.lo:
            return self.y[0]
        if q >= self.hi:
            return self.y[-1]
        i = bisect_right(x, q) - 1
        x0 = x[i]
        if q == x0:
            return self.y[i]
        h = x[i + 1] - x0
        t = (q - x0) / h
        t2 = t * t
        t3 = t2 * t
        return (
            (2.0 * t3 - 3.0 * t2 + 1.0) * self.y[i]
            + (t3 - 2.0 * t2 + t) * h * self.d[i]
            + (-2.0 * t3 + 3.0 * t2) * self.y[i + 1]
            + (t3 - t2) * h * self.d[i + 1]
        )


class PrefillLatency:
    """Seconds one prefill batch of ``T`` prompt tokens takes (see the module docstring)."""

    __slots__ = ("_curve", "hi", "lo")

    def __init__(self, profile: PerformanceProfile) -> None:
        curve = profile.prefill
        self._curve = ScalarPchip(Pchip.fit(curve.isl, curve.ttft_ms))
        self.lo = self._curve.lo
        self.hi = self._curve.hi

    def batch_s(self, tokens: float) -> float:
        """Seconds for a batch of ``tokens`` prompt tokens."""
        if tokens > self.hi:
            return self._curve.y[-1] * (tokens / self.hi) / 1000.0
        return self._curve(tokens) / 1000.0


class DecodeLatency:
    """Seconds one decode step takes at a given KV usage and mean context (module docstring).

    The same ITL surface as :class:`~dynamo_plan.core.profile.DecodeSurface` (rows indexed by
    ``m = kv_usage/context``, each row's curve lifted over the rows of shorter context, linear in
    context between rows), evaluated on Python floats.
    """

    __slots__ = ("_ctx", "_rows", "ctx_hi", "ctx_lo", "max_kv_tokens")

    def __init__(self, profile: PerformanceProfile) -> None:
        self._rows = [
            (ScalarPchip(row.itl), row.slope, row.kv_lo, row.kv_hi) for row in profile.decode.rows
        ]
        self._ctx: list[float] = [row.context for row in profile.decode.rows]
        self.ctx_lo = self._ctx[0]
        self.ctx_hi = self._ctx[-1]
        self.max_kv_tokens = float(profile.max_kv_tokens)

    def _envelope(self, j: int, m: float) -> float:
        """``R_j(m)``: the highest of rows ``0..j``'s own curves (extended past their ends)."""
        best = 0.0
        for curve, slope, _, _ in self._rows[: j + 1]:
            v = curve(m) if m <= curve.hi else curve.y[-1] + slope * (m - curve.hi)
            if v > best:
                best = v
        return best

    def itl_ms(self, kv_usage: float, context: float) -> float:
        """ITL (ms) at ``kv_usage`` and ``context``; equals ``profile.decode.itl(...).value``."""
        ctxs = self._ctx
        c = min(max(context, self.ctx_lo), self.ctx_hi)
        j = bisect_right(ctxs, c) - 1
        if j >= len(ctxs) - 1 or ctxs[j] == c:
            j = min(j, len(ctxs) - 1)
            _, _, lo, hi = self._rows[j]
            kv = min(max(kv_usage, lo), hi)
            return self._envelope(j, kv / ctxs[j])
        _, _, a_lo, a_hi = self._rows[j]
        _, _, b_lo, b_hi = self._rows[j + 1]
        w = (c - ctxs[j]) / (ctxs[j + 1] - ctxs[j])
        kv = min(max(kv_usage, (1.0 - w) * a_lo + w * b_lo), (1.0 - w) * a_hi + w * b_hi)
        ctx = (1.0 - w) * ctxs[j] + w * ctxs[j + 1]
        m = kv / ctx
        return (1.0 - w) * self._envelope(j, m) + w * self._envelope(j + 1, m)

    def step_s(self, sum_context: float, n: int) -> float:
        """Seconds per step for ``n`` requests whose mid-life contexts sum to ``sum_context``."""
        return self.itl_ms(sum_context / self.max_kv_tokens, sum_context / n) / 1000.0
