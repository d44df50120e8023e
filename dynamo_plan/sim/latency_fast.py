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
row. Where one row survives in a bin, the piece of its curve around the bin (a PCHIP segment, the
straight continuation past its end, or the value held below its start) is stored too, and
:meth:`FastDecodeLatency.step_s` evaluates that piece directly when ``m`` lies strictly inside it
— the same formula on the same numbers as the general path, which handles everything else (knots,
bins with several rows). The tests compare it with ``DecodeLatency`` on random batches.

Prefill batch latencies (:func:`prefill_memo`) are memoised by token count: batches of one
request are most of them and prompt lengths repeat.
"""

from __future__ import annotations

import math
import weakref
from bisect import bisect_right
from itertools import pairwise

from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.sim.latency import PrefillLatency, ScalarPchip

__all__ = ["FastDecodeLatency", "prefill_memo"]

_Row = tuple[ScalarPchip, float, float, float]  # curve, slope past its end, its end, value there


#: One piece of a row's curve valid for ``lo < m < hi``: ``(lo, hi, 0, h, y0, y1, d0, d1)`` a PCHIP
#: segment from ``lo`` to ``lo + h`` (values and slopes at its ends), ``(hi_row, inf, 1, y_hi,
#: slope)`` the straight continuation past the row's last point, ``(-inf, lo_row, 2, y0)`` the
#: value held below its first point.
_Piece = tuple[float, ...]


def _piece(row: _Row, m: float) -> _Piece:
    """The piece of ``row``'s own curve (:func:`_own`) that contains ``m``."""
    curve, slope, hi, y_hi = row
    if m > hi:
        return (hi, math.inf, 1, y_hi, slope)
    if m <= curve.lo:
        return (-math.inf, curve.lo, 2, curve.y[0])
    x, y, d = curve.x, curve.y, curve.d
    k = min(bisect_right(x, m) - 1, len(x) - 2)
    return (x[k], x[k + 1], 0, x[k + 1] - x[k], y[k], y[k + 1], d[k], d[k + 1])


def _own(row: _Row, m: float) -> float:
    curve, slope, hi, y_hi = row
    return curve(m) if m <= hi else y_hi + slope * (m - hi)


class FastDecodeLatency:
    """Seconds per decode step, equal to :meth:`DecodeLatency.step_s
    <dynamo_plan.sim.latency.DecodeLatency.step_s>` (module docstring)."""

    __slots__ = (
        "_bins",
        "_ctx",
        "_fast",
        "_inv",
        "_kv",
        "_last",
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
        self._last = len(self._ctx) - 1
        # per row j and bin: the one curve piece that gives R_j there, where one does
        self._fast: list[list[_Piece | None]] = [
            [_piece(b[0], math.sqrt(edges[i] * edges[i + 1])) if len(b) == 1 else None
             for i, b in enumerate(per_bin)]
            for per_bin in self._survivors
        ]  # fmt: skip

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

    def _value(self, j: int, m: float, i: int) -> float:
        """:meth:`_envelope`, through the bin's single curve piece when ``m`` is inside it (the
        same operations on the same numbers, so the same value)."""
        if 0 <= i < self._bins:
            f = self._fast[j][i]
            if f is not None and f[0] < m < f[1]:
                kind = f[2]
                if kind == 0:  # PCHIP segment [x0, x0 + h]: ScalarPchip.__call__'s formula
                    x0 = f[0]
                    h = f[3]
                    t = (m - x0) / h
                    t2 = t * t
                    t3 = t2 * t
                    v = (
                        (2.0 * t3 - 3.0 * t2 + 1.0) * f[4]
                        + (t3 - 2.0 * t2 + t) * h * f[6]
                        + (-2.0 * t3 + 3.0 * t2) * f[5]
                        + (t3 - t2) * h * f[7]
                    )
                elif kind == 1:  # past the curve's end: y_hi + slope·(m - hi)
                    v = f[3] + f[4] * (m - f[0])
                else:  # below its first point
                    v = f[3]
                return v if v > 0.0 else 0.0
        return self._envelope(j, m, i)

    def itl_ms(self, kv_usage: float, context: float) -> float:
        """ITL (ms) at ``kv_usage`` and ``context`` (as :meth:`DecodeLatency.itl_ms`): each row's
        value through its bin's single curve piece when ``m`` is inside it (inline for the
        simulator's hot path), else :meth:`_value`."""
        ctxs = self._ctx
        c = self.ctx_lo if context < self.ctx_lo else context
        if c > self.ctx_hi:
            c = self.ctx_hi
        j = bisect_right(ctxs, c) - 1
        last = self._last
        if j >= last or ctxs[j] == c:
            if j > last:
                j = last
            lo, hi = self._kv[j]
            kv = lo if kv_usage < lo else kv_usage
            if kv > hi:
                kv = hi
            m = kv / ctxs[j]
            i = int((math.log(m) - self._log_lo) * self._inv) if m > 0 else -1
            return self._value(j, m, i)
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
        if 0 <= i < self._bins:  # both rows' values through one curve piece each, inline
            fast = self._fast
            f = fast[j][i]
            g = fast[j + 1][i]
            if f is not None and g is not None and f[0] < m < f[1] and g[0] < m < g[1]:
                kind = f[2]
                if kind == 0:  # PCHIP segment (as _value)
                    x0 = f[0]
                    h = f[3]
                    t = (m - x0) / h
                    t2 = t * t
                    t3 = t2 * t
                    a = (
                        (2.0 * t3 - 3.0 * t2 + 1.0) * f[4]
                        + (t3 - 2.0 * t2 + t) * h * f[6]
                        + (-2.0 * t3 + 3.0 * t2) * f[5]
                        + (t3 - t2) * h * f[7]
                    )
                elif kind == 1:  # past the curve's end
                    a = f[3] + f[4] * (m - f[0])
                else:
                    a = f[3]
                kind = g[2]
                if kind == 0:
                    x0 = g[0]
                    h = g[3]
                    t = (m - x0) / h
                    t2 = t * t
                    t3 = t2 * t
                    b = (
                        (2.0 * t3 - 3.0 * t2 + 1.0) * g[4]
                        + (t3 - 2.0 * t2 + t) * h * g[6]
                        + (-2.0 * t3 + 3.0 * t2) * g[5]
                        + (t3 - t2) * h * g[7]
                    )
                elif kind == 1:
                    b = g[3] + g[4] * (m - g[0])
                else:
                    b = g[3]
                if not a > 0.0:  # the envelope starts from 0.0
                    a = 0.0
                if not b > 0.0:
                    b = 0.0
                return (1.0 - w) * a + w * b
        return (1.0 - w) * self._value(j, m, i) + w * self._value(j + 1, m, i)

    def step_s(self, sum_context: float, n: int) -> float:
        """Seconds per step for ``n`` requests whose mid-life contexts sum to ``sum_context``:
        ``itl_ms(sum_context / max_kv_tokens, sum_context / n) / 1000``."""
        return self.itl_ms(sum_context / self.max_kv_tokens, sum_context / n) / 1000.0


_CACHE: weakref.WeakKeyDictionary[PerformanceProfile, FastDecodeLatency] = (
    weakref.WeakKeyDictionary()
)


_PREFILL: weakref.WeakKeyDictionary[PerformanceProfile, tuple[dict[int, float], PrefillLatency]] = (
    weakref.WeakKeyDictionary()
)


def prefill_memo(profile: PerformanceProfile) -> tuple[dict[int, float], PrefillLatency]:
    """Seconds of a prefill batch by its prompt tokens, memoised: a dict ``{tokens: s}`` to read
    first and the :class:`~dynamo_plan.sim.latency.PrefillLatency` whose ``batch_s`` fills it
    (the same values; one pair per profile object, so replays of one profile share it). Token
    counts are integers below the longest prompt or the batch budget: the dict stays small."""
    pair = _PREFILL.get(profile)
    if pair is None:
        pair = _PREFILL[profile] = ({}, PrefillLatency(profile))
    return pair
