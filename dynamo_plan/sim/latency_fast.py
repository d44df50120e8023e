"""The decode step latency of :class:`~dynamo_plan.sim.latency.DecodeLatency`, the same values
a few times faster (:class:`FastDecodeLatency`): the simulator asks for it at every change of a
decode batch, about twice per request, so on a day of traffic it is most of the run's time.

``DecodeLatency`` evaluates, per lookup, the envelope ``R_j(m) = max over rows r ≤ j of E_r(m)``
of the rows' own ITL curves — every curve of a shorter context. Each ``E_r`` is non-decreasing in
``m`` (a PCHIP through its running maximum, which PCHIP keeps monotone, held below its first
point and continued with a slope ≥ 0 past its last), so on a bin ``[a, b]`` of ``m`` a row with
``E_r(b) < max_s E_s(a)`` can never be the maximum there. The rows that can are listed per bin
(4,096 log-spaced bins over the ``m`` the surface spans) and only those are evaluated: usually
one. The result is the maximum over a superset of the rows that attain it, i.e. the same value.
A profile whose curves are not monotone on a check grid (never for a loaded profile) keeps every
row. The tests compare it with ``DecodeLatency`` on random batches.
"""

from __future__ import annotations

import math
import weakref
from bisect import bisect_right
from itertools import pairwise

from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.sim.latency import ScalarPchip

__all__ = ["FastDecodeLatency"]

_Row = tuple[ScalarPchip, float, float, float]  # curve, slope past its end, its end, value there


def _own(row: _Row, m: float) -> float:
    curve, slope, hi, y_hi = row
    return curve(m) if m <= hi else y_hi + slope * (m - hi)


class FastDecodeLatency:
    """Seconds per decode step, equal to :meth:`DecodeLatency.step_s
    <dynamo_plan.sim.latency.DecodeLatency.step_s>` (module docstring)."""

    __slots__ = (
        "_bins",
        "_ctx",
        "_inv",
        "_kv",
        "_log_lo",
        "_rows",
        "_survivors",
        "ctx_hi",
        "ctx_lo",
        "max_kv_tokens",
    )

    def __init__(self, profile: PerformanceProfile, bins: int = 4096) -> None:
        rows = profile.decode.rows
        self._rows: list[_Row] = []
        for row in rows:
            curve = ScalarPchip(row.itl)
            self._rows.append((curve, float(row.slope), curve.hi, curve.y[-1]))
        self._kv = [(float(r.kv_lo), float(r.kv_hi)) for r in rows]
        self._ctx: list[float] = [float(r.context) for r in rows]
        self.ctx_lo = self._ctx[0]
        self.ctx_hi = self._ctx[-1]
        self.max_kv_tokens = float(profile.max_kv_tokens)
        # m = kv / ctx over the surface: kv within the rows' ranges, ctx within the rows
        m_lo = max(min(lo for lo, _ in self._kv) / self.ctx_hi, 1e-12)
        m_hi = max(hi for _, hi in self._kv) / self.ctx_lo
        self._bins = bins
        self._log_lo = math.log(m_lo)
        self._inv = bins / max(math.log(m_hi) - self._log_lo, 1e-12)
        edges = [math.exp(self._log_lo + i / self._inv) for i in range(bins + 1)]
        edges[0], edges[-1] = m_lo, m_hi
        values = [[_own(r, m) for m in edges] for r in self._rows]  # E_r at every edge
        monotone = all(b >= a - 1e-12 * abs(a) for v in values for a, b in pairwise(v))
        self._survivors: list[list[list[_Row]]] = []
        for j in range(len(self._rows)):
            every = self._rows[: j + 1]
            per_bin: list[list[_Row]] = []
            for i in range(bins):
                if not monotone:
                    per_bin.append(every)
                    continue
                floor = max(values[r][i] for r in range(j + 1))
                cut = floor - 1e-9 * abs(floor)
                per_bin.append([every[r] for r in range(j + 1) if values[r][i + 1] >= cut])
            self._survivors.append(per_bin)

    @classmethod
    def of(cls, profile: PerformanceProfile) -> FastDecodeLatency:
        """The instance for ``profile``, built once per profile object (a few tens of ms)."""
        fast = _CACHE.get(profile)
        if fast is None:
            fast = _CACHE[profile] = cls(profile)
        return fast

    def _envelope(self, j: int, m: float, i: int) -> float:
        """``R_j(m)`` (as ``DecodeLatency._envelope``) from the rows that can attain it in bin
        ``i`` of ``m`` (all rows ``0..j`` outside the bins); the curves evaluated inline."""
        rows = self._survivors[j][i] if 0 <= i < self._bins else self._rows[: j + 1]
        best = 0.0
        for curve, slope, hi, y_hi in rows:
            if m > hi:
                v = y_hi + slope * (m - hi)
            else:  # ScalarPchip.__call__, inline
                y = curve.y
                if m <= curve.lo:
                    v = y[0]
                else:
                    x = curve.x
                    k = bisect_right(x, m) - 1
                    x0 = x[k]
                    if m == x0:
                        v = y[k]
                    else:
                        d = curve.d
                        h = x[k + 1] - x0
                        t = (m - x0) / h
                        t2 = t * t
                        t3 = t2 * t
                        v = (
                            (2.0 * t3 - 3.0 * t2 + 1.0) * y[k]
                            + (t3 - 2.0 * t2 + t) * h * d[k]
                            + (-2.0 * t3 + 3.0 * t2) * y[k + 1]
                            + (t3 - t2) * h * d[k + 1]
                        )
            if v > best:
                best = v
        return best

    def itl_ms(self, kv_usage: float, context: float) -> float:
        """ITL (ms) at ``kv_usage`` and ``context`` (as :meth:`DecodeLatency.itl_ms`)."""
        ctxs = self._ctx
        c = self.ctx_lo if context < self.ctx_lo else context
        if c > self.ctx_hi:
            c = self.ctx_hi
        j = bisect_right(ctxs, c) - 1
        if j >= len(ctxs) - 1 or ctxs[j] == c:
            if j > len(ctxs) - 1:
                j = len(ctxs) - 1
            lo, hi = self._kv[j]
            kv = lo if kv_usage < lo else kv_usage
            if kv > hi:
                kv = hi
            m = kv / ctxs[j]
            i = int((math.log(m) - self._log_lo) * self._inv) if m > 0 else -1
            return self._envelope(j, m, i)
        a_lo, a_hi = self._kv[j]
        b_lo, b_hi = self._kv[j + 1]
        w = (c - ctxs[j]) / (ctxs[j + 1] - ctxs[j])
        lo = (1.0 - w) * a_lo + w * b_lo
        hi = (1.0 - w) * a_hi + w * b_hi
        kv = lo if kv_usage < lo else kv_usage
        if kv > hi:
            kv = hi
        ctx = (1.0 - w) * ctxs[j] + w * ctxs[j + 1]
        m = kv / ctx
        i = int((math.log(m) - self._log_lo) * self._inv) if m > 0 else -1
        return (1.0 - w) * self._envelope(j, m, i) + w * self._envelope(j + 1, m, i)

    def step_s(self, sum_context: float, n: int) -> float:
        """Seconds per step for ``n`` requests whose mid-life contexts sum to ``sum_context``."""
        return self.itl_ms(sum_context / self.max_kv_tokens, sum_context / n) / 1000.0


_CACHE: weakref.WeakKeyDictionary[PerformanceProfile, FastDecodeLatency] = (
    weakref.WeakKeyDictionary()
)
