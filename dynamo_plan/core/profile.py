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
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from dynamo_plan.core.profile_interp import FloatArray, Pchip
from dynamo_plan.errors import InputError

__all__ = [
    "DecodeBest",
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
class _Row:
    context: float
    itl: Pchip
    capacity: Pchip  # thpt · itl · context / kv_usage, see DecodeSurface


def _capacity_curve(
    kv: FloatArray, itl: FloatArray, thpt: FloatArray, context: float, order: npt.NDArray[np.intp]
) -> Pchip:
    """PCHIP over kv_usage of ``C = thpt·ITL·context/kv`` for one context row (see DecodeSurface)."""
    x, k = kv[order], kv[order]
    with np.errstate(divide="ignore", invalid="ignore"):
        cap = thpt[order] * itl[order] * context / k
    valid = k > 0
    fill = float(np.median(cap[valid])) if valid.any() else 0.0
    return Pchip.fit(x, np.where(valid, cap, fill))


@dataclass(frozen=True, eq=False)  # numpy fields: compare arrays explicitly
class DecodeSurface:
    """Decode ITL (ms) and throughput (tokens/s/GPU) over (kv_usage, context length).

    Flat arrays, one entry per measured point, as in Dynamo's npz. Points are grouped into rows by
    equal context; each row needs distinct kv_usage values (at least one point).

    Throughput is not interpolated directly: at a fixed kv_usage the number of requests in flight
    is ``kv·max_kv_tokens/context``, so blending the throughput column of two context rows at
    equal kv_usage mixes batches of very different size (at context 1,260 between the shared H200
    rows 350 and 2,997 it overstates throughput 2×). Instead, since
    ``thpt = concurrency/ITL/tp = kv·max_kv_tokens/(context·ITL·tp)``, the surface interpolates the
    capacity term ``C = thpt·ITL·context/kv`` (≈ ``max_kv_tokens·1000/tp``, nearly constant) and
    returns ``thpt = C·kv/(ITL·context)`` — exact at every measured point, consistent with the
    interpolated ITL between them. Points at kv_usage 0 take the row's median C.
    """

    kv_usage: FloatArray
    context: FloatArray
    itl_ms: FloatArray
    thpt_per_gpu: FloatArray
    _rows: tuple[_Row, ...] = field(init=False, repr=False, compare=False)

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
        rows = []
        for c in np.unique(ctx):
            sel = np.flatnonzero(ctx == c)
            order = sel[np.argsort(kv[sel], kind="stable")]
            if np.any(np.diff(kv[order]) == 0):
                raise InputError(
                    f"'x_kv_usage' repeats a value within context {c:g}; expected distinct "
                    "kv_usage points per context row"
                )
            rows.append(
                _Row(
                    float(c),
                    Pchip.fit(kv[order], itl[order]),
                    _capacity_curve(kv, itl, thpt, c, order),
                )
            )
        object.__setattr__(self, "_rows", tuple(rows))

    @property
    def contexts(self) -> FloatArray:
        """Distinct context lengths (tokens) of the measured rows, ascending."""
        return np.array([r.context for r in self._rows])

    def _bracket(self, context: float) -> tuple[_Row, _Row, float, bool, str]:
        """Neighbouring rows and the blend weight of the upper one, context clamped."""
        lo, hi = self._rows[0].context, self._rows[-1].context
        c, clamped, note = _clamp_note("context", float(context), lo, hi)
        ctxs = self.contexts
        j = int(np.clip(np.searchsorted(ctxs, c, side="right") - 1, 0, len(ctxs) - 1))
        if j == len(ctxs) - 1 or ctxs[j] == c:
            return self._rows[j], self._rows[j], 0.0, clamped, note
        w = (c - ctxs[j]) / (ctxs[j + 1] - ctxs[j])
        return self._rows[j], self._rows[j + 1], float(w), clamped, note

    def kv_range(self, context: float) -> tuple[float, float]:
        """Measured kv_usage range at ``context`` (blend of the neighbouring rows' ranges)."""
        a, b, w, _, _ = self._bracket(context)
        return (1 - w) * a.itl.lo + w * b.itl.lo, (1 - w) * a.itl.hi + w * b.itl.hi

    def _eval(self, which: str, kv: FloatArray, context: float) -> tuple[FloatArray, bool, str]:
        a, b, w, c_clamped, c_note = self._bracket(context)
        itl = a.itl(kv) if w == 0.0 else (1 - w) * a.itl(kv) + w * b.itl(kv)
        if which == "itl":
            return itl, c_clamped, c_note
        cap = a.capacity(kv) if w == 0.0 else (1 - w) * a.capacity(kv) + w * b.capacity(kv)
        ctx = (1 - w) * a.context + w * b.context
        return cap * kv / (itl * ctx), c_clamped, c_note

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
        plus the measured kv points of the bracketing rows inside it (so a measured optimum is
        found exactly). A context outside the measured rows is clamped and reported.
        """
        lo, hi = self.kv_range(context)
        a, b, _, _, _ = self._bracket(context)
        grid = np.unique(np.concatenate([np.linspace(lo, hi, max(2, points)), a.itl.x, b.itl.x]))
        grid = grid[(grid >= lo) & (grid <= hi)]
        itl, clamped, note = self._eval("itl", grid, context)
        thpt, _, _ = self._eval("thpt", grid, context)
        ok = np.flatnonzero(itl <= itl_target_ms)
        if ok.size == 0:
            return None
        i = ok[int(np.argmax(thpt[ok]))]
        return DecodeBest(float(thpt[i]), float(itl[i]), float(grid[i]), clamped=clamped, note=note)

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
