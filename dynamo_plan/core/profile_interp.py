"""Monotone piecewise-cubic interpolation (PCHIP, Fritsch–Carlson) in plain numpy.

The core layer is numpy/pandas only, so this is the small, deterministic equivalent of
``scipy.interpolate.PchipInterpolator`` (same derivative rule, same end conditions; the tests
compare the two). PCHIP passes exactly through every sample and never overshoots: where the
samples are monotone, so is the curve.

Reference: F. N. Fritsch and R. E. Carlson, "Monotone Piecewise Cubic Interpolation",
SIAM J. Numer. Anal. 17(2), 1980; the end slopes follow Moler, *Numerical Computing with
MATLAB*, §3.4 (``pchip``).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

__all__ = ["FloatArray", "Pchip", "PchipStack"]


def _edge_slope(h0: float, h1: float, d0: float, d1: float) -> float:
    """Three-point end slope, shape-preserving (Moler's ``pchipend``)."""
    slope = ((2.0 * h0 + h1) * d0 - h0 * d1) / (h0 + h1)
    if np.sign(slope) != np.sign(d0):
        return 0.0
    if np.sign(d0) != np.sign(d1) and abs(slope) > abs(3.0 * d0):
        return 3.0 * d0
    return float(slope)


def _slopes(x: FloatArray, y: FloatArray) -> FloatArray:
    """Fritsch–Carlson derivatives at the knots (weighted harmonic mean of the secants)."""
    n = x.size
    if n == 1:
        return np.zeros(1)
    h = np.diff(x)
    delta = np.diff(y) / h
    if n == 2:
        return np.array([delta[0], delta[0]])
    d = np.zeros(n)
    w1 = 2.0 * h[1:] + h[:-1]
    w2 = h[1:] + 2.0 * h[:-1]
    same_sign = (delta[:-1] * delta[1:]) > 0
    # a zero or tiny secant gives an infinite term: the harmonic mean then tends to 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        harmonic = (w1 + w2) / (w1 / delta[:-1] + w2 / delta[1:])
    d[1:-1] = np.where(same_sign, harmonic, 0.0)
    d[0] = _edge_slope(h[0], h[1], delta[0], delta[1])
    d[-1] = _edge_slope(h[-1], h[-2], delta[-1], delta[-2])
    return d


@dataclass(frozen=True)
class Pchip:
    """A PCHIP interpolant through ``(x, y)``; ``x`` strictly increasing, at least one point.

    Evaluation outside ``[x[0], x[-1]]`` returns the end value (clamps); callers that must report
    clamping compare against :attr:`lo` / :attr:`hi` themselves.
    """

    x: FloatArray
    y: FloatArray
    d: FloatArray
    # per interval i (columns): x_i, h_i = x_{i+1} - x_i, y_i, y_{i+1}, d_i, d_{i+1}
    _table: FloatArray = field(init=False, repr=False, compare=False)
    _inner: FloatArray = field(init=False, repr=False, compare=False)  # x[1:-1]
    _lo: np.float64 = field(init=False, repr=False, compare=False)
    _hi: np.float64 = field(init=False, repr=False, compare=False)
    _y_hi: np.float64 = field(init=False, repr=False, compare=False)
    _inner_list: list[float] = field(init=False, repr=False, compare=False)
    _table_list: list[tuple[float, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        x, y, d = self.x, self.y, self.d
        object.__setattr__(
            self, "_table", np.stack([x[:-1], np.diff(x), y[:-1], y[1:], d[:-1], d[1:]])
        )
        object.__setattr__(self, "_inner", x[1:-1])
        object.__setattr__(self, "_lo", x[0])
        object.__setattr__(self, "_hi", x[-1])
        object.__setattr__(self, "_y_hi", y[-1])
        # the same numbers as Python floats, for a scalar query
        object.__setattr__(self, "_inner_list", [float(v) for v in x[1:-1]])
        object.__setattr__(self, "_table_list", [tuple(map(float, col)) for col in self._table.T])

    @classmethod
    def fit(cls, x: npt.ArrayLike, y: npt.ArrayLike) -> Pchip:
        """Build the interpolant; ``x`` must be strictly increasing (ValueError otherwise)."""
        xs = np.asarray(x, dtype=np.float64)
        ys = np.asarray(y, dtype=np.float64)
        if xs.ndim != 1 or xs.shape != ys.shape or xs.size == 0:
            raise ValueError("x and y must be 1-D arrays of the same, non-zero length")
        if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(ys))):
            raise ValueError("x and y must be finite")
        if np.any(np.diff(xs) <= 0):
            raise ValueError("x must be strictly increasing")
        return cls(xs, ys, _slopes(xs, ys))

    @property
    def lo(self) -> float:
        return float(self.x[0])

    @property
    def hi(self) -> float:
        return float(self.x[-1])

    def __call__(self, q: npt.ArrayLike) -> FloatArray:
        """Values at ``q`` (clamped to the knot range); same shape as ``q``.

        On ``[x_i, x_{i+1}]`` with ``h = x_{i+1} - x_i`` and ``t = (q - x_i)/h``::

            p(q) = h00(t)·y_i + h10(t)·h·d_i + h01(t)·y_{i+1} + h11(t)·h·d_{i+1}

        (cubic Hermite basis), and exactly ``y_i`` at a knot.
        """
        if type(q) is float and self.x.size > 1:
            return np.asarray(self._at(q))
        qa = np.asarray(q, dtype=np.float64)
        if self.x.size == 1:
            return np.full(qa.shape, self.y[0])
        # np.minimum(np.maximum(·)) is np.clip's value without its Python wrapper
        qa = np.minimum(np.maximum(qa, self._lo), self._hi)
        # the interval: interior knots <= q, i.e. clip(searchsorted(x, q, "right") - 1, 0, n - 2)
        i = np.searchsorted(self._inner, qa, side="right")
        x0, h, y0, y1, d0, d1 = self._table.take(i, axis=1)
        return _hermite(qa, x0, h, y0, y1, d0, d1, self._hi, self._y_hi)

    def _at(self, q: float) -> float:
        """:meth:`__call__` at one Python float (at least two knots): the same operations on
        Python floats (IEEE double, as numpy's), without the array overhead."""
        lo, hi = float(self._lo), float(self._hi)
        qa = min(max(q, lo), hi)
        x0, h, y0, y1, d0, d1 = self._table_list[bisect_right(self._inner_list, qa)]
        if qa == hi:
            return float(self._y_hi)
        if qa == x0:
            return y0
        return _combine(_basis(qa, x0, h), y0, y1, d0, d1)


def _hermite(
    qa: FloatArray,
    x0: FloatArray,
    h: FloatArray,
    y0: FloatArray,
    y1: FloatArray,
    d0: FloatArray,
    d1: FloatArray,
    x_hi: FloatArray | np.float64,
    y_hi: FloatArray | np.float64,
) -> FloatArray:
    """The cubic Hermite form at clamped ``qa`` on intervals ``(x0, h, y0, y1, d0, d1)``, exact at
    the knots (``y0`` where ``qa == x0``, ``y_hi`` where ``qa == x_hi``, the last knot)."""
    basis = _basis(qa, x0, h)
    return _exact(_combine(basis, y0, y1, d0, d1), qa == x0, qa == x_hi, y0, y_hi)


#: Arrays, or Python floats (:meth:`Pchip._at`): the same operations either way.
_Num = TypeVar("_Num", FloatArray, float)


def _basis(qa: _Num, x0: _Num, h: _Num) -> tuple[_Num, _Num, _Num, _Num]:
    """``(h00, h10·h, h01, h11·h)`` at ``t = (qa - x0)/h``: the cubic Hermite basis."""
    t = (qa - x0) / h
    t2 = t * t
    t3 = t2 * t
    h00 = 2.0 * t3 - 3.0 * t2 + 1.0
    h10 = t3 - 2.0 * t2 + t
    h01 = -2.0 * t3 + 3.0 * t2
    h11 = t3 - t2
    return h00, h10 * h, h01, h11 * h


def _combine(basis: tuple[_Num, _Num, _Num, _Num], y0: _Num, y1: _Num, d0: _Num, d1: _Num) -> _Num:
    """``h00·y0 + (h10·h)·d0 + h01·y1 + (h11·h)·d1``, summed left to right."""
    h00, h10h, h01, h11h = basis
    out: _Num = h00 * y0 + h10h * d0 + h01 * y1 + h11h * d1
    return out


def _exact(
    out: FloatArray,
    at_knot: npt.NDArray[np.bool_] | np.bool_,
    at_end: npt.NDArray[np.bool_] | np.bool_,
    y0: FloatArray,
    y_hi: FloatArray | np.float64,
) -> FloatArray:
    """Exact at the knots (no rounding from the cubic form): ``y0`` at an interval's first knot,
    ``y_hi`` at the last one."""
    out = np.where(at_knot, y0, out)
    return np.where(at_end, y_hi, out)


class PchipStack:
    """Several :class:`Pchip` curves (each with at least two knots) evaluated together, with
    optional *twins*: curves on the same knots with other values (e.g. a second quantity sampled
    at the same points), evaluated with them at the cost of the combination step only.

    ``stack(q, r0, r1)[r - r0]`` is bit-for-bit ``curves[r](q)`` for a 1-D ``q`` (and
    ``stack.both(q, r0, r1)[1][r - r0]`` is ``twins[r](q)``): the same Hermite form on the same
    numbers (see :meth:`Pchip.__call__`), with one interval search over the union of all knots (a
    curve's interval follows from where ``q`` falls among them) and one gather of all curves'
    interval data, instead of one pass per curve.
    """

    __slots__ = ("_hi", "_index", "_lo", "_table", "_table2", "_twin_y_hi", "_union", "_y_hi")

    def __init__(self, curves: Sequence[Pchip], twins: Sequence[Pchip] | None = None) -> None:
        if not curves or any(c.x.size < 2 for c in curves):
            raise ValueError("PchipStack needs at least one curve, each with at least two knots")
        if twins is not None and (
            len(twins) != len(curves)
            or any(not np.array_equal(c.x, t.x) for c, t in zip(curves, twins, strict=False))
        ):
            raise ValueError("PchipStack twins need the same knots as their curves")
        union = np.unique(np.concatenate([c.x for c in curves]))
        index, offset = [], 0
        for c in curves:
            # union interval u (q in [union[u-1], union[u])) -> this curve's interval
            inner = np.searchsorted(c.x[1:-1], union, side="right")
            index.append(offset + np.concatenate([[0], inner]))
            offset += c.x.size - 1
        self._union = union
        self._index = np.array(index, dtype=np.intp)  # (curves, union.size + 1)
        # columns: intervals; rows: x_i, h_i, y_i, y_{i+1}, d_i, d_{i+1} (then the twins' y, d)
        self._table = np.concatenate([c._table for c in curves], axis=1)
        self._table2 = self._table
        self._twin_y_hi = self._y_hi = np.array([[c.y[-1]] for c in curves])
        if twins is not None:
            twin = np.concatenate([t._table[2:] for t in twins], axis=1)
            self._table2 = np.concatenate([self._table, twin])
            self._twin_y_hi = np.array([[t.y[-1]] for t in twins])
        self._lo = np.array([[c.x[0]] for c in curves])
        self._hi = np.array([[c.x[-1]] for c in curves])

    @property
    def hi(self) -> FloatArray:
        """Each curve's last knot, shape ``(curves, 1)``."""
        return self._hi

    @property
    def y_hi(self) -> FloatArray:
        """Each curve's value at its last knot, shape ``(curves, 1)``."""
        return self._y_hi

    def _clamped(self, q: FloatArray, rows: slice) -> tuple[FloatArray, npt.NDArray[np.intp]]:
        """``q`` clamped to each curve's knot range and each curve's interval index there."""
        i = self._index[rows, np.searchsorted(self._union, q, side="right")]
        qa = np.minimum(np.maximum(q, self._lo[rows]), self._hi[rows])
        return qa, i

    def __call__(self, q: FloatArray, r0: int, r1: int) -> FloatArray:
        """Curves ``r0..r1-1`` at the 1-D ``q``: shape ``(r1 - r0, q.size)``."""
        rows = slice(r0, r1)
        qa, i = self._clamped(q, rows)
        x0, h, y0, y1, d0, d1 = self._table.take(i, axis=1)
        return _hermite(qa, x0, h, y0, y1, d0, d1, self._hi[rows], self._y_hi[rows])

    def both(self, q: FloatArray, r0: int, r1: int) -> tuple[FloatArray, FloatArray]:
        """Curves and twins ``r0..r1-1`` at the 1-D ``q`` (the twins are the curves themselves
        when none were given): two arrays of shape ``(r1 - r0, q.size)``."""
        if self._table2 is self._table:
            out = self(q, r0, r1)
            return out, out
        rows = slice(r0, r1)
        qa, i = self._clamped(q, rows)
        x0, h, y0, y1, d0, d1, e0, e1, f0, f1 = self._table2.take(i, axis=1)
        basis = _basis(qa, x0, h)
        at_knot, at_end = qa == x0, qa == self._hi[rows]
        return (
            _exact(_combine(basis, y0, y1, d0, d1), at_knot, at_end, y0, self._y_hi[rows]),
            _exact(_combine(basis, e0, e1, f0, f1), at_knot, at_end, e0, self._twin_y_hi[rows]),
        )
