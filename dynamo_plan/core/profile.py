"""PerformanceProfile = PrefillCurve + DecodeSurface (+ max_kv_tokens): lookups the SLA math uses.

Data layout and units follow Dynamo's planner profile (DESIGN.md §3):

* prefill: ``prefill_isl`` (tokens), ``prefill_ttft`` (ms), ``prefill_thpt_per_gpu``
  (tokens/s/GPU), one engine at batch 1;
* decode: ``x_kv_usage`` (fraction of the engine's KV cache in use, 0..1), ``y_context_length``
  (tokens per request), ``z_itl`` (ms), ``z_thpt_per_gpu`` (output tokens/s/GPU), and
  ``max_kv_tokens`` (KV-cache capacity of one engine, tokens).

Interpolation is deterministic and exact at the measured points:

* prefill — PCHIP in ISL (monotone where the data is);
* decode — the samples come in rows of equal context length (points with the same
  ``y_context_length`` form a row). Within a row: PCHIP in kv_usage; between the two neighbouring
  rows: linear in context. The measured kv range at an intermediate context is the linear blend
  of the two rows' ranges (a row is held at its end value where the blend reaches past it).

Every lookup clamps to the measured range and says so (:class:`Lookup`); nothing extrapolates
silently.
"""

from __future__ import annotations

import dataclasses
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from dynamo_plan.core.profile_interp import FloatArray, Pchip, PchipStack
from dynamo_plan.errors import InputError

__all__ = [
    "DecodeBest",
    "DecodeRow",
    "DecodeSurface",
    "Lookup",
    "PerformanceProfile",
    "PrefillCurve",
]

#: kv_usage points searched per context by :meth:`PerformanceProfile.best_decode_throughput`.
DECODE_SEARCH_POINTS = 1024


@dataclass(frozen=True)
class Lookup:
    """One profile lookup: the value, whether an input was clamped to the measured range, why."""

    value: float
    clamped: bool = False
    note: str = ""


@dataclass(frozen=True)
class DecodeBest:
    """Highest-throughput decode operating point meeting an ITL target at one context."""

    thpt_per_gpu: float  # output tokens/s/GPU
    itl_ms: float
    kv_usage: float  # 0..1 of max_kv_tokens
    concurrency: float | None = None  # requests per engine (None without max_kv_tokens)
    clamped: bool = False
    note: str = ""


def _as_1d(name: str, values: npt.ArrayLike) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise InputError(f"'{name}' is empty; expected at least one value")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise InputError(f"'{name}'[{bad[0]}] is {arr[bad[0]]}; expected a finite number")
    return arr


def _check_same_length(arrays: dict[str, FloatArray]) -> None:
    lengths = {k: v.size for k, v in arrays.items()}
    if len(set(lengths.values())) != 1:
        shown = ", ".join(f"'{k}' has {n}" for k, n in lengths.items())
        raise InputError(f"array lengths differ ({shown}); expected one value per point")


def _check_min(name: str, arr: FloatArray, low: float, inclusive: bool) -> None:
    bad = np.flatnonzero(arr < low if inclusive else arr <= low)
    if bad.size:
        op = ">=" if inclusive else ">"
        raise InputError(f"'{name}'[{bad[0]}] is {arr[bad[0]]:g}; expected {op} {low:g}")


def _clamp_note(what: str, q: float, lo: float, hi: float) -> tuple[float, bool, str]:
    if q < lo:
        return (
            lo,
            True,
            f"{what} {q:g} below the measured range [{lo:g}, {hi:g}]; clamped to {lo:g}",
        )
    if q > hi:
        return (
            hi,
            True,
            f"{what} {q:g} above the measured range [{lo:g}, {hi:g}]; clamped to {hi:g}",
        )
    return q, False, ""


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


@dataclass(frozen=True, eq=False)  # numpy fields: compare arrays explicitly
class PrefillCurve:
    """Prefill TTFT (ms) and throughput (tokens/s/GPU) against ISL (tokens), PCHIP-interpolated.

    Points are sorted by ISL; a repeated ISL is an InputError (ambiguous measurement).
    """

    isl: FloatArray
    ttft_ms: FloatArray
    thpt_per_gpu: FloatArray
    _ttft: Pchip = field(init=False, repr=False, compare=False)
    _thpt: Pchip = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        isl = _as_1d("prefill_isl", self.isl)
        ttft = _as_1d("prefill_ttft", self.ttft_ms)
        thpt = _as_1d("prefill_thpt_per_gpu", self.thpt_per_gpu)
        _check_same_length({"prefill_isl": isl, "prefill_ttft": ttft, "prefill_thpt_per_gpu": thpt})
        _check_min("prefill_isl", isl, 0.0, inclusive=False)
        _check_min("prefill_ttft", ttft, 0.0, inclusive=False)
        _check_min("prefill_thpt_per_gpu", thpt, 0.0, inclusive=True)
        order = np.argsort(isl, kind="stable")
        isl, ttft, thpt = isl[order], ttft[order], thpt[order]
        dup = np.flatnonzero(np.diff(isl) == 0)
        if dup.size:
            raise InputError(
                f"'prefill_isl' repeats the value {isl[dup[0]]:g}; expected distinct ISLs"
            )
        object.__setattr__(self, "isl", isl)
        object.__setattr__(self, "ttft_ms", ttft)
        object.__setattr__(self, "thpt_per_gpu", thpt)
        object.__setattr__(self, "_ttft", Pchip.fit(isl, ttft))
        object.__setattr__(self, "_thpt", Pchip.fit(isl, thpt))

    def _lookup(self, curve: Pchip, isl: float) -> Lookup:
        q, clamped, note = _clamp_note("ISL", float(isl), curve.lo, curve.hi)
        return Lookup(float(curve(q)), clamped, note)

    def ttft(self, isl: float) -> Lookup:
        """TTFT (ms) at ``isl`` tokens."""
        return self._lookup(self._ttft, isl)

    def thpt(self, isl: float) -> Lookup:
        """Prefill throughput (tokens/s/GPU) at ``isl`` tokens."""
        return self._lookup(self._thpt, isl)


@dataclass(frozen=True, eq=False)
class DecodeRow:
    """One measured context row of the decode surface, over ``m = kv_usage/context``.

    ``m`` is the batch size per token of KV capacity (``concurrency/max_kv_tokens``), so equal
    ``m`` means an equal batch at any context. ``itl`` runs through the row's ITL lifted to its
    running maximum; beyond its last point it continues with ``slope`` (ms per unit of ``m``);
    below its first point it is held. ``capacity`` is ``C = thpt·ITL/m`` (held at both ends).
    """

    context: float
    itl: Pchip
    slope: float
    capacity: Pchip
    kv_lo: float
    kv_hi: float

    def own_itl(self, m: FloatArray) -> FloatArray:
        """This row's ITL curve ``E(m)`` alone (ms), extended linearly past its last point."""
        out = self.itl(m)
        return np.where(m > self.itl.hi, self.itl.y[-1] + self.slope * (m - self.itl.hi), out)


def _row(kv: FloatArray, itl: FloatArray, thpt: FloatArray, context: float) -> DecodeRow:
    """Build one row from its points (``kv`` strictly increasing)."""
    m = kv / context
    lifted_itl = np.maximum.accumulate(itl)
    slope = (
        float(max(0.0, (lifted_itl[-1] - lifted_itl[-2]) / (m[-1] - m[-2]))) if m.size > 1 else 0.0
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        cap = thpt * itl / m
    valid = m > 0
    fill = float(np.median(cap[valid])) if valid.any() else 0.0
    return DecodeRow(
        context=context,
        itl=Pchip.fit(m, lifted_itl),
        slope=slope,
        capacity=Pchip.fit(m, np.where(valid, cap, fill)),
        kv_lo=float(kv[0]),
        kv_hi=float(kv[-1]),
    )


#: Relative margin for "row ``r`` is below row ``j`` on a stretch of ``m``" (:func:`_near_rows`):
#: far above the rounding of a PCHIP evaluation (a few ulp of the row's values).
_BELOW_MARGIN = 1e-9
#: Refinement of that test: rounds, and pieces per split.
_NEAR_ROUNDS, _NEAR_SPLIT, _NEAR_MAX_PIECES = 6, 16, 4096


def _near_rows(lower: DecodeRow, upper: DecodeRow, m_cap: float) -> list[tuple[float, float]]:
    """Closed intervals of ``m`` outside which ``lower.own_itl(m) < upper.own_itl(m)`` (computed
    values) for certain, so ``lower`` cannot be the maximum of an envelope containing ``upper``.

    Each row's curve is non-decreasing in ``m`` (PCHIP through non-decreasing values, held below
    its first point, continued with a slope >= 0), so on a piece ``[a, b]`` the lower row is at
    most its value at ``b`` and the upper row at least its value at ``a``; with ``tol`` =
    ``_BELOW_MARGIN·(scale + |those four end values|)`` covering the rounding of both evaluations,
    ``lower(b) + 2·tol < upper(a)`` proves the piece clear. Pieces are the intervals between both
    rows' knots up to ``m_cap``; an undecided piece with both ends clearly below is split into
    :data:`_NEAR_SPLIT` and tried again (:data:`_NEAR_ROUNDS` times); everything else is returned
    (conservative: returning too much only costs evaluations). Below both rows' first knots both
    are held exactly at their first values; above ``m_cap`` nothing is claimed.
    """
    inf = float("inf")
    out: list[tuple[float, float]] = [(m_cap, inf)]
    first = min(lower.itl.lo, upper.itl.lo)
    if lower.itl.y[0] >= upper.itl.y[0]:
        out.append((-inf, first))
    knots = np.unique(np.concatenate([lower.itl.x, upper.itl.x, [m_cap]]))
    knots = knots[knots <= m_cap]
    a, b = knots[:-1], knots[1:]
    scale = 1.0 + float(max(np.abs(lower.itl.y).max(), np.abs(upper.itl.y).max()))
    split = np.arange(_NEAR_SPLIT + 1) / _NEAR_SPLIT
    for round_ in range(_NEAR_ROUNDS + 1):
        if a.size == 0:
            break
        ends, n = np.concatenate([a, b]), a.size
        lows, ups = lower.own_itl(ends), upper.own_itl(ends)
        lo_a, lo_b, up_a, up_b = lows[:n], lows[n:], ups[:n], ups[n:]
        tol = _BELOW_MARGIN * (scale + np.abs(lo_a) + np.abs(lo_b) + np.abs(up_a) + np.abs(up_b))
        clear = lo_b + 2.0 * tol < up_a
        below_ends = (lo_a + 2.0 * tol < up_a) & (lo_b + 2.0 * tol < up_b)
        split_it = ~clear & below_ends
        last = round_ == _NEAR_ROUNDS or np.count_nonzero(split_it) * _NEAR_SPLIT > _NEAR_MAX_PIECES
        keep = ~clear if last else ~clear & ~below_ends
        out.extend(zip(a[keep].tolist(), b[keep].tolist(), strict=True))
        if last:
            break
        sa, sb = a[split_it], b[split_it]
        pts = sa[:, None] + (sb - sa)[:, None] * split
        pts[:, 0], pts[:, -1] = sa, sb
        pts = np.minimum(np.maximum.accumulate(pts, axis=1), sb[:, None])  # ordered, within
        a, b = pts[:, :-1].reshape(-1), pts[:, 1:].reshape(-1)
    out.sort()
    merged: list[tuple[float, float]] = []
    for lo, hi in out:
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


#: ``DecodeSurface._bracket``: lower row, upper row, weight of the upper one, clamped, note.
_Bracket = tuple[int, int, float, bool, str]

#: Keys :meth:`DecodeSurface.best_under_itl` remembers (oldest out first).
_BEST_MEMO_SIZE = 256


@dataclass(frozen=True, eq=False)  # numpy fields: compare arrays explicitly
class DecodeSurface:
    """Decode ITL (ms) and throughput (tokens/s/GPU) over (kv_usage, context length).

    Flat arrays, one entry per measured point, as in Dynamo's npz. Points are grouped into rows by
    equal context; each row needs distinct kv_usage values (at least one point).

    **Axis between rows: equal batch, not equal kv_usage.** One decode step reads the weights
    once and each request's KV once: ``ITL ≈ a + n·(b + e·context)`` for a batch of ``n``
    requests (on the shared H200 profile the per-request slope grows linearly with context, from
    0.056 ms at 350 tokens to 0.50 ms at 13,585). At equal kv_usage two rows hold batches of very
    different size (``n = kv·max_kv_tokens/context``), so blending them there mixes a large
    short-context batch into a small long-context one: capacity at context 2,000 came out below
    *both* neighbouring rows (4,902 tokens/s/GPU at ITL ≤ 20 ms against ~13,400 at 350 and
    ~6,100 at 2,997). Rows are therefore indexed by ``m = kv_usage/context`` (the batch per token
    of KV capacity) and blended linearly in context at equal ``m``, which is exact for that
    model.

    **Monotone by construction** (ITL non-decreasing in batch and in context):

    1. within a row the ITL is lifted to its running maximum over the batch — a larger batch never
       decodes faster; a dip in the measurements is noise (the shared profile's context-350 row
       reads 46.65 ms at 1,049 requests, then 40.96 ms at 1,311);
    2. a row's curve ``E_j(m)`` is PCHIP through those points, held below its first point and
       continued linearly past its last with the slope of its last segment;
    3. across rows ``R_j(m) = max(E_0(m), …, E_j(m))``: at an equal batch a longer context is
       never faster;
    4. between rows ``c_j < c < c_{j+1}``: ``ITL = (1-w)·R_j(m) + w·R_{j+1}(m)`` with
       ``w = (c - c_j)/(c_{j+1} - c_j)``.

    Throughput is ``thpt = C·m/ITL`` with the capacity term ``C = thpt·ITL/m`` (≈
    ``max_kv_tokens·1000/tp`` times the engine's efficiency) interpolated the same way (PCHIP in
    ``m`` per row, held at its ends, linear in context). Every lookup is exact at the measured
    points whose ITL needed no lifting (:attr:`lifted_points` counts the others, where ITL is the
    lifted value and throughput follows it). The measured kv range at an intermediate context is
    the linear blend of the two rows' ranges.

    **Evaluation.** All rows' ITL and capacity curves are evaluated in one pass
    (:class:`~dynamo_plan.core.profile_interp.PchipStack`; capacity shares the ITL's Hermite basis,
    the two have the same knots), and ``R_j`` evaluates a row ``r < j`` only where it may reach
    ``E_j`` (:func:`_near_rows`, from the monotonicity of each row): the values are bit-for-bit
    those of evaluating every row with :meth:`DecodeRow.own_itl` and taking the maximum.
    """

    kv_usage: FloatArray
    context: FloatArray
    itl_ms: FloatArray
    thpt_per_gpu: FloatArray
    _rows: tuple[DecodeRow, ...] = field(init=False, repr=False, compare=False)
    _lifted: int = field(init=False, repr=False, compare=False)
    _best_memo: dict[tuple[float, float, int], DecodeBest | None] = field(
        init=False, repr=False, compare=False
    )
    _ctx: list[float] = field(init=False, repr=False, compare=False)
    # all rows' ITL and capacity curves evaluated together (None if a row has a single point)
    _stack: tuple[PchipStack, FloatArray] | None = field(init=False, repr=False, compare=False)
    # per row j (filled on first use): intervals (lo, hi, r) of m where a row r < j may reach
    # row j's ITL (:func:`_near_rows`), by lo
    _near: dict[int, tuple[tuple[float, float, int], ...]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        kv = _as_1d("x_kv_usage", self.kv_usage)
        ctx = _as_1d("y_context_length", self.context)
        itl = _as_1d("z_itl", self.itl_ms)
        thpt = _as_1d("z_thpt_per_gpu", self.thpt_per_gpu)
        _check_same_length(
            {"x_kv_usage": kv, "y_context_length": ctx, "z_itl": itl, "z_thpt_per_gpu": thpt}
        )
        _check_min("x_kv_usage", kv, 0.0, inclusive=True)
        _check_min("y_context_length", ctx, 0.0, inclusive=False)
        _check_min("z_itl", itl, 0.0, inclusive=False)
        _check_min("z_thpt_per_gpu", thpt, 0.0, inclusive=True)
        object.__setattr__(self, "kv_usage", kv)
        object.__setattr__(self, "context", ctx)
        object.__setattr__(self, "itl_ms", itl)
        object.__setattr__(self, "thpt_per_gpu", thpt)
        rows, measured = [], []
        for c in np.unique(ctx):
            sel = np.flatnonzero(ctx == c)
            order = sel[np.argsort(kv[sel], kind="stable")]
            if np.any(np.diff(kv[order]) == 0):
                raise InputError(
                    f"'x_kv_usage' repeats a value within context {c:g}; expected distinct "
                    "kv_usage points per context row"
                )
            rows.append(_row(kv[order], itl[order], thpt[order], float(c)))
            measured.append(itl[order])
        object.__setattr__(self, "_rows", tuple(rows))
        object.__setattr__(self, "_ctx", [r.context for r in rows])
        stack = None
        if all(r.itl.x.size >= 2 for r in rows):
            stack = (
                PchipStack([r.itl for r in rows], twins=[r.capacity for r in rows]),
                np.array([[r.slope] for r in rows]),
            )
        object.__setattr__(self, "_stack", stack)
        object.__setattr__(self, "_near", {})
        lifted = sum(
            int(np.count_nonzero(self._envelope(j, row.itl.x, every_row=True) > raw))
            for j, (row, raw) in enumerate(zip(rows, measured, strict=True))
        )
        object.__setattr__(self, "_lifted", lifted)
        object.__setattr__(self, "_best_memo", {})

    @property
    def contexts(self) -> FloatArray:
        """Distinct context lengths (tokens) of the measured rows, ascending."""
        return np.array([r.context for r in self._rows])

    @property
    def rows(self) -> tuple[DecodeRow, ...]:
        """The measured context rows, ascending (for fast scalar evaluators such as the
        simulator's :class:`~dynamo_plan.sim.latency.DecodeLatency`)."""
        return self._rows

    @property
    def lifted_points(self) -> int:
        """Measured points whose ITL was lifted (by a smaller batch of the same row or an equal
        batch of a shorter-context row, see above)."""
        return self._lifted

    def _bracket(self, context: float) -> _Bracket:
        """Indices of the neighbouring rows and the blend weight of the upper one, clamped."""
        ctxs = self._ctx
        c, clamped, note = _clamp_note("context", float(context), ctxs[0], ctxs[-1])
        j = min(max(bisect_right(ctxs, c) - 1, 0), len(ctxs) - 1)
        if j == len(ctxs) - 1 or ctxs[j] == c:
            return j, j, 0.0, clamped, note
        w = (c - ctxs[j]) / (ctxs[j + 1] - ctxs[j])
        return j, j + 1, float(w), clamped, note

    def kv_range(self, context: float) -> tuple[float, float]:
        """Measured kv_usage range at ``context`` (blend of the neighbouring rows' ranges)."""
        i, k, w, _, _ = self._bracket(context)
        a, b = self._rows[i], self._rows[k]
        return (1 - w) * a.kv_lo + w * b.kv_lo, (1 - w) * a.kv_hi + w * b.kv_hi

    def _own_rows(
        self, m: FloatArray, r0: int, r1: int, cap: bool = False
    ) -> tuple[FloatArray, FloatArray | None]:
        """Rows ``r0..r1-1``'s own ITL curves at the 1-D ``m``, shape ``(r1 - r0, m.size)``, each
        bit-for-bit :meth:`DecodeRow.own_itl`, and with ``cap`` their capacity curves there (needs
        :attr:`_stack`)."""
        assert self._stack is not None
        curves, slope = self._stack
        hi = curves.hi[r0:r1]
        caps = None
        if cap:
            out, caps = curves.both(m, r0, r1)
        else:
            out = curves(m, r0, r1)
        own = np.where(m > hi, curves.y_hi[r0:r1] + slope[r0:r1] * (m - hi), out)
        return own, caps

    def _envelope(self, j: int, m: FloatArray, every_row: bool = False) -> FloatArray:
        """``R_j(m)``: the highest of rows ``0..j``'s own ITL curves at batch ``m``; with
        ``every_row`` every row is evaluated everywhere (the same values, see :meth:`_lift`)."""
        if self._stack is None:
            out = self._rows[0].own_itl(m)
            for row in self._rows[1 : j + 1]:
                out = np.maximum(out, row.own_itl(m))
            return out
        flat = m.reshape(-1)
        if every_row:
            every: FloatArray = np.max(self._own_rows(flat, 0, j + 1)[0], axis=0)
            return every.reshape(m.shape)
        return self._lift(j, flat, self._own_rows(flat, j, j + 1)[0][0]).reshape(m.shape)

    def _lift(self, j: int, m: FloatArray, own: FloatArray) -> FloatArray:
        """``R_j(m)`` from row ``j``'s own ``E_j(m)`` (1-D): the maximum with rows ``0..j-1``,
        each evaluated only where it may reach ``E_j`` (:func:`_near_rows`; elsewhere it is below
        ``E_j`` and cannot change the maximum, so the values equal the maximum over all rows)."""
        spans = self._near.get(j)
        if spans is None:
            rows = self._rows
            m_cap = 2.0 * max(1.0, max(r.kv_hi for r in rows)) / rows[0].context
            found = [(a, b, r) for r in range(j) for a, b in _near_rows(rows[r], rows[j], m_cap)]
            spans = self._near[j] = tuple(sorted(found))
        if not spans or m.size == 0:
            return own
        hi = float(m.max())
        if hi < spans[0][0]:  # below every interval (False for NaN)
            return own
        lo = float(m.min())
        if lo != lo or hi != hi:  # NaN among the inputs: every row everywhere
            every: FloatArray = np.max(self._own_rows(m, 0, j + 1)[0], axis=0)
            return every
        hits: dict[int, list[tuple[float, float]]] = {}
        for a, b, r in spans:
            if a > hi:
                break
            if b >= lo:
                hits.setdefault(r, []).append((a, b))
        out = own
        for r, where in hits.items():
            mask = (m >= where[0][0]) & (m <= where[0][1])
            for a, b in where[1:]:
                mask |= (m >= a) & (m <= b)
            idx = np.flatnonzero(mask)
            if out is own:
                out = own.copy()
            out[idx] = np.maximum(out[idx], self._own_rows(m[idx], r, r + 1)[0][0])
        return out

    def _itl_many(
        self, ms: list[FloatArray], brackets: list[_Bracket], cap: bool = False
    ) -> tuple[list[FloatArray], list[FloatArray]]:
        """ITL (ms) ``(1-w)·R_i(m) + w·R_k(m)`` at each 1-D ``m`` of ``ms`` between the rows of
        its bracket (``self._bracket(context)``), and with ``cap`` the capacity term
        ``C = (1-w)·C_i(m) + w·C_k(m)`` there too (else an empty list). ``R_k = max(R_i, E_{i+1},
        …, E_k)``, so the upper row's envelope extends the lower one's (the same values as
        evaluating it whole). All the rows' curves are evaluated in one pass over all of ``ms``
        (elementwise, so each value is the one a separate evaluation would give)."""
        if not ms:
            return [], []
        if self._stack is None:
            itls, caps = [], []
            for m, (i, k, w, _, _) in zip(ms, brackets, strict=True):
                itls.append(self._itl_rows(m, i, k, w))
                if cap:
                    a, b = self._rows[i].capacity, self._rows[k].capacity
                    caps.append(a(m) if w == 0.0 else (1 - w) * a(m) + w * b(m))
            return itls, caps
        r0 = min(b[0] for b in brackets)
        r1 = max(b[1] for b in brackets) + 1
        own, both = self._own_rows(ms[0] if len(ms) == 1 else np.concatenate(ms), r0, r1, cap)
        itls, caps, start = [], [], 0
        for m, (i, k, w, _, _) in zip(ms, brackets, strict=True):
            seg = slice(start, start + m.size)
            start += m.size
            lower = self._lift(i, m, own[i - r0, seg])
            if w != 0.0:
                upper = lower
                for r in range(i + 1, k + 1):
                    upper = np.maximum(upper, own[r - r0, seg])
                lower = (1 - w) * lower + w * upper
            itls.append(lower)
            if both is not None:
                c = both[i - r0, seg]
                caps.append(c if w == 0.0 else (1 - w) * c + w * both[k - r0, seg])
        return itls, caps

    def _itl_rows(self, m: FloatArray, i: int, k: int, w: float) -> FloatArray:
        """The ITL of :meth:`_itl_many` for one ``m``, row by row (a profile with a single-point
        row)."""
        itl = self._envelope(i, m)
        if w != 0.0:
            upper = itl
            for row in self._rows[i + 1 : k + 1]:
                upper = np.maximum(upper, row.own_itl(m))
            itl = (1 - w) * itl + w * upper
        return itl

    def _m(self, kv: FloatArray, bracket: _Bracket) -> FloatArray:
        """``m = kv/context`` at the bracket's (clamped) context."""
        i, k, w, _, _ = bracket
        ctx = (1 - w) * self._rows[i].context + w * self._rows[k].context
        m: FloatArray = kv / ctx
        return m

    def _eval(self, which: str, kv: FloatArray, context: float) -> tuple[FloatArray, bool, str]:
        """ITL or throughput at ``kv`` and ``context`` (and whether/why the context was
        clamped); throughput is ``C·m/ITL``."""
        bracket = self._bracket(context)
        m = self._m(kv, bracket)
        flat = m.reshape(-1)
        itls, caps = self._itl_many([flat], [bracket], cap=which != "itl")
        out = itls[0] if which == "itl" else caps[0] * flat / itls[0]
        return out.reshape(m.shape), bracket[3], bracket[4]

    def values(
        self, which: Literal["itl", "thpt"], kv_usage: npt.ArrayLike, context: float
    ) -> FloatArray:
        """Vectorised ITL (ms) or throughput (tokens/s/GPU) at one context, NaN outside the
        measured kv range there (for plots and grids; use :meth:`itl` / :meth:`thpt` for lookups
        that report clamping)."""
        kv = np.asarray(kv_usage, dtype=np.float64)
        lo, hi = self.kv_range(context)
        out, _, _ = self._eval(which, kv, context)
        return np.where((kv >= lo) & (kv <= hi), out, np.nan)

    def _lookup(self, which: str, kv_usage: float, context: float) -> Lookup:
        lo, hi = self.kv_range(context)
        kv, kv_clamped, kv_note = _clamp_note("kv_usage", float(kv_usage), lo, hi)
        out, c_clamped, c_note = self._eval(which, np.array([kv]), context)
        return Lookup(float(out[0]), kv_clamped or c_clamped, _join(c_note, kv_note))

    def best_under_itl(
        self, itl_target_ms: float, context: float, points: int = DECODE_SEARCH_POINTS
    ) -> DecodeBest | None:
        """Highest throughput/GPU at ``context`` whose ITL ≤ ``itl_target_ms``; None if none does.

        Searches ``points`` evenly spaced kv_usage values over the measured range at that context
        plus the measured batches of the bracketing rows inside it (so a measured optimum is
        found exactly), plus the largest kv_usage whose ITL meets the target (ITL rises with the
        batch, so the feasible kv_usage form an interval; its end is refined to 1/32³ of a grid
        step). Between two rows the result is held within the two rows' own capacities (the
        efficiency term ``C`` differs by a percent or two between rows at an equal batch, which
        alone could put it a hair outside). A context outside the measured rows is clamped and
        reported.

        Results are memoised by ``(itl_target_ms, context, points)`` (the last
        :data:`_BEST_MEMO_SIZE` keys): a planner decision sizes several forecast steps, often of one shape, at one
        target, and a context between two rows asks for both rows' optima.
        """
        key = (float(itl_target_ms), float(context), int(points))
        memo = self._best_memo
        if key in memo:
            return memo[key]
        if len(memo) >= _BEST_MEMO_SIZE:  # the oldest goes: a steady size, not a saw-tooth
            del memo[next(iter(memo))]
        best = memo[key] = self._best_under_itl(itl_target_ms, context, points)
        return best

    def _best_under_itl(
        self, itl_target_ms: float, context: float, points: int
    ) -> DecodeBest | None:
        """:meth:`best_under_itl`, computed; between two rows together with the rows' own optima
        that are not memoised yet (one pass over all their points, see :meth:`_best_many`)."""
        i, k, w, _, _ = self._bracket(context)
        if w == 0.0:
            return self._best_many(itl_target_ms, [context], points)[0]
        keys = [(float(itl_target_ms), self._rows[r].context, int(points)) for r in (i, k)]
        rows = {key: self._best_memo[key] for key in keys if key in self._best_memo}
        missing = [key for key in keys if key not in rows]
        found = self._best_many(itl_target_ms, [context] + [key[1] for key in missing], points)
        for key, got in zip(missing, found[1:], strict=True):
            rows[key] = self._remember(key, got)
        best = found[0]
        if best is None:
            return None
        low, high = rows[keys[0]], rows[keys[1]]
        thpt = best.thpt_per_gpu
        thpt = min(thpt, low.thpt_per_gpu) if low is not None else thpt
        thpt = max(thpt, high.thpt_per_gpu) if high is not None else thpt
        return dataclasses.replace(best, thpt_per_gpu=thpt)

    def _remember(
        self, key: tuple[float, float, int], best: DecodeBest | None
    ) -> DecodeBest | None:
        """Memoise ``best`` under ``key`` as :meth:`best_under_itl` does."""
        memo = self._best_memo
        if key not in memo and len(memo) >= _BEST_MEMO_SIZE:
            del memo[next(iter(memo))]
        memo[key] = best
        return best

    def _best_many(
        self, itl_target_ms: float, contexts: list[float], points: int
    ) -> list[DecodeBest | None]:
        """The search of :meth:`best_under_itl` at each of ``contexts`` (without the hold between
        two rows' optima). Every step evaluates all contexts together (:meth:`_itl_many`); the
        values are those of separate searches."""
        brackets = [self._bracket(c) for c in contexts]
        grids = []
        for context, (i, k, w, _, _) in zip(contexts, brackets, strict=True):
            a, b = self._rows[i], self._rows[k]
            lo, hi = (1 - w) * a.kv_lo + w * b.kv_lo, (1 - w) * a.kv_hi + w * b.kv_hi
            c = min(max(float(context), self._ctx[0]), self._ctx[-1])
            knots = np.concatenate([a.itl.x, b.itl.x]) * c
            grid = np.unique(np.concatenate([np.linspace(lo, hi, max(2, points)), knots]))
            grids.append(grid[(grid >= lo) & (grid <= hi)])
        ms = [self._m(g, br) for g, br in zip(grids, brackets, strict=True)]
        itls, caps = self._itl_many(ms, brackets, cap=True)
        live: list[int] = []  # searches with a feasible point
        refine: dict[int, tuple[float, float]] = {}  # [ok, bad) kv_usage around a feasible end
        for p, itl in enumerate(itls):
            ok = np.flatnonzero(itl <= itl_target_ms)
            if ok.size == 0:
                continue
            live.append(p)
            end = int(ok[-1]) + 1
            if end < grids[p].size:
                refine[p] = (grids[p][end - 1], grids[p][end])
            grids[p], itls[p], caps[p], ms[p] = (
                grids[p][:end],
                itl[:end],
                caps[p][:end],
                ms[p][:end],
            )
        for p, edge in self._feasible_ends(refine, itl_target_ms, brackets).items():
            grids[p], itls[p], caps[p], ms[p] = (
                np.append(a, v)
                for a, v in zip((grids[p], itls[p], caps[p], ms[p]), edge, strict=True)
            )
        found: list[DecodeBest | None] = [None] * len(contexts)
        for p in live:
            itl = itls[p]
            thpt = caps[p] * ms[p] / itl
            ok = np.flatnonzero(itl <= itl_target_ms)
            j = ok[int(np.argmax(thpt[ok]))]
            _, _, _, clamped, note = brackets[p]
            found[p] = DecodeBest(
                float(thpt[j]), float(itl[j]), float(grids[p][j]), clamped=clamped, note=note
            )
        return found

    def _feasible_ends(
        self, refine: dict[int, tuple[float, float]], target: float, brackets: list[_Bracket]
    ) -> dict[int, tuple[float, float, float, float]]:
        """For each search ``p`` of ``refine`` (kv_usage ``[ok, bad)``, the ITL meeting ``target``
        at ``ok`` and not at ``bad``): the largest kv_usage in ``[ok, bad)`` whose ITL ≤ ``target``
        (ITL is monotone in kv_usage) by three rounds of 32 evenly spaced points, with its ITL
        (ms), capacity term and ``m`` at the context of ``brackets[p]``. Each round evaluates all
        searches together."""
        if not refine:
            return {}
        ps = list(refine)
        sub = [brackets[p] for p in ps]
        bounds = [refine[p] for p in ps]
        ends: dict[int, tuple[float, float, float, float]] = {}
        for last in (False, False, True):
            probes = [np.linspace(ok, bad, 33) for ok, bad in bounds]
            ms = [self._m(pr, br) for pr, br in zip(probes, sub, strict=True)]
            itls, caps = self._itl_many(ms, sub, cap=last)
            for n, (probe, itl) in enumerate(zip(probes, itls, strict=True)):
                good = int(np.flatnonzero(itl <= target)[-1])
                bounds[n] = (float(probe[good]), float(probe[min(good + 1, 32)]))
                if last:
                    ends[ps[n]] = (
                        bounds[n][0],
                        float(itl[good]),
                        float(caps[n][good]),
                        float(ms[n][good]),
                    )
        return ends

    def itl(self, kv_usage: float, context: float) -> Lookup:
        """ITL (ms) at ``kv_usage`` (0..1) and ``context`` (tokens)."""
        return self._lookup("itl", kv_usage, context)

    def thpt(self, kv_usage: float, context: float) -> Lookup:
        """Decode throughput (tokens/s/GPU) at ``kv_usage`` and ``context``."""
        return self._lookup("thpt", kv_usage, context)


@dataclass(frozen=True, eq=False)  # numpy fields: compare arrays explicitly
class PerformanceProfile:
    """A prefill curve, a decode surface and the decode engine's KV capacity (tokens).

    ``meta`` is the free-form ``profile.json`` summary (model, system, backend, parallelism, SLA,
    provenance); empty for a profile that came without one.
    """

    prefill: PrefillCurve
    decode: DecodeSurface
    max_kv_tokens: int
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if int(self.max_kv_tokens) <= 0:
            raise InputError(
                f"'max_kv_tokens' is {self.max_kv_tokens}; expected a positive integer"
            )

    def expected_ttft(self, isl: float) -> Lookup:
        """TTFT (ms) of one prefill at ``isl`` tokens."""
        return self.prefill.ttft(isl)

    def prefill_thpt_per_gpu(self, isl: float) -> Lookup:
        """Prefill throughput (tokens/s/GPU) at ``isl`` tokens."""
        return self.prefill.thpt(isl)

    def kv_usage(self, concurrency: float, context: float) -> float:
        """``concurrency · context / max_kv_tokens`` (fraction of the KV cache in use)."""
        return float(concurrency) * float(context) / float(self.max_kv_tokens)

    def expected_itl(self, concurrency: float, context: float) -> Lookup:
        """ITL (ms) with ``concurrency`` requests of ``context`` tokens on one decode engine."""
        return self.decode.itl(self.kv_usage(concurrency, context), context)

    def decode_thpt_per_gpu(self, concurrency: float, context: float) -> Lookup:
        """Decode throughput (tokens/s/GPU) at ``concurrency`` requests of ``context`` tokens."""
        return self.decode.thpt(self.kv_usage(concurrency, context), context)

    def best_decode_throughput(
        self, itl_target_ms: float, context: float, points: int = DECODE_SEARCH_POINTS
    ) -> DecodeBest | None:
        """Highest throughput/GPU at ``context`` whose ITL ≤ ``itl_target_ms``; None if none does.

        See :meth:`DecodeSurface.best_under_itl`; ``concurrency`` is filled in from
        ``kv_usage · max_kv_tokens / context``.
        """
        best = self.decode.best_under_itl(itl_target_ms, context, points)
        if best is None:
            return None
        concurrency = best.kv_usage * self.max_kv_tokens / max(float(context), 1.0)
        return dataclasses.replace(best, concurrency=concurrency)
