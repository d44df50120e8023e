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

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

__all__ = ["FloatArray", "Pchip"]


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
        """Values at ``q`` (clamped to the knot range); same shape as ``q``."""
        qa = np.clip(np.asarray(q, dtype=np.float64), self.x[0], self.x[-1])
        if self.x.size == 1:
            return np.full(qa.shape, self.y[0])
        i = np.clip(np.searchsorted(self.x, qa, side="right") - 1, 0, self.x.size - 2)
        x0 = self.x[i]
        h = self.x[i + 1] - x0
        t = (qa - x0) / h
        y0, y1 = self.y[i], self.y[i + 1]
        d0, d1 = self.d[i], self.d[i + 1]
        t2 = t * t
        t3 = t2 * t
        h00 = 2.0 * t3 - 3.0 * t2 + 1.0
        h10 = t3 - 2.0 * t2 + t
        h01 = -2.0 * t3 + 3.0 * t2
        h11 = t3 - t2
        out: FloatArray = h00 * y0 + h10 * h * d0 + h01 * y1 + h11 * h * d1
        # exact at the knots (no rounding from the cubic form)
        at_knot = qa == x0
        out = np.where(at_knot, y0, out)
        return np.where(qa == self.x[-1], self.y[-1], out)
