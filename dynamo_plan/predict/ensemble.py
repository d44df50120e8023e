"""``default``: an online ensemble of cheap forecasters weighted by recent error, gated by a
sequential test against the last value.

Members (one-step forecasts from the raw history; multi-step forecasts hold the level, Holt adds
its damped trend, seasonal-naive repeats its period):

- ``last``: the last value (the ``constant`` predictor);
- ``ma<k>`` / ``med<k>``: moving means / medians of the last ``k`` intervals — per-interval means
  of ISL/OSL and Poisson-like counts are noise around a level, where averages beat the last value
  (medians for bursty series, since WAPE rewards the median);
- ``ses<a>``: simple exponential smoothing; ``holt``: damped linear trend (0.5, 0.1, phi 0.9);
  ``kalman``: the ``kalman`` predictor (local linear trend, Dynamo's q/r) as a member;
- ``segment``: mean since the last level shift (restart when a value is more than ``segment_k``
  robust standard deviations from the segment mean) — an average that resets on regime changes;
- ``snaive``: seasonal naive at the lag ``p`` <= n/3 of the highest local peak of the sample
  autocorrelation (ACF > 0.3), re-detected every ``season_every`` observations; ``smean``:
  the last cycle's level plus the phase's mean deviation over the last three cycles (seasonal
  naive with its noise averaged; the last value while no season is found).

Blend weights: each member's exponentially-weighted absolute one-step error ``E_i`` (decay
``decay``) gives ``w_i ∝ exp(-eta (E_i / min_j E_j - 1))``: a softmax over relative error (hedge)
that follows the leader as ``eta`` grows. Before ``min_scored`` errors the blend is the last value.

Guard (why "never worse than ``constant``" holds as far as statistics allows): the forecast is
``last + s (blend - last)`` with ``s`` from :class:`~dynamo_plan.predict.guard.ProdGuard`, a
test-gated (A,B)-Prod (Sani, Neu & Lazaric 2014). ``s = 0`` exactly — the forecast *is*
``constant``'s — before ``min_compare`` (30) one-step comparisons of blend and last value, and
while the betting e-process of their loss differentials is below ``1 / guard_alpha`` (20): on a
series where the blend has no edge this holds at every step with probability >= 95 % (Ville's
inequality). Past the gate, ``s`` is the Prod weight (>= 1/2, at most ``guard_max_weight``),
whose cumulative absolute error exceeds the last value's by at most ~0.1 blend-vs-last gaps.
The price: a series of at most ``min_compare + 1`` (31) intervals is forecast exactly as
``constant`` by construction (in practice ~40: the gate needs at least 8 winning comparisons
too), and a blend must keep beating the last value to earn weight. Cost: ~0.15 ms/step.

Band: split-conformal quantiles of the combined forecast's own one-step errors
(:class:`ResidualWindow`), i.e. ``constant``'s band while ``s = 0``.
Hyper-parameters were chosen on ``mooncake_synthetic`` and synthetic series (iid levels,
Poisson, random walks, trends, seasonal, bursty, level steps) only; the other traces are held out
(``benchmarks/backtest.py``). The guard's constants are not fitted at all: ``min_compare`` 30,
``alpha`` 0.05 and Prod's largest learning rate 1/2 are the literature's conventional values.
"""

from __future__ import annotations

from collections import deque
from typing import Any, ClassVar

import numpy as np

from dynamo_plan.errors import InputError
from dynamo_plan.predict.base import Forecast, Predictor, ResidualWindow
from dynamo_plan.predict.guard import ProdGuard
from dynamo_plan.predict.kalman import KalmanPredictor

_HOLT_ALPHA, _HOLT_BETA, _HOLT_PHI = 0.5, 0.1, 0.9


class DefaultPredictor(Predictor):
    """Error-weighted ensemble; same state whether fed by updates or by ``warm_start``."""

    name: ClassVar[str] = "default"

    def __init__(
        self,
        ma_windows: tuple[int, ...] = (3, 6, 12, 24),
        ses_alphas: tuple[float, ...] = (0.2, 0.5),
        median_windows: tuple[int, ...] = (5, 11),
        decay: float = 0.9,
        eta: float = 20.0,
        min_scored: int = 2,
        window: int = 50,
        seasonal: bool = True,
        season_every: int = 10,
        guard: bool = True,
        segment_k: float = 3.0,
        min_compare: int = 30,
        guard_alpha: float = 0.05,
        guard_max_weight: float = 0.95,
    ) -> None:
        super().__init__()
        if not ma_windows or min(ma_windows) < 1:
            raise InputError(f"predictor 'default': ma_windows must be >= 1, got {ma_windows}")
        if not all(0.0 < a <= 1.0 for a in ses_alphas):
            raise InputError(f"predictor 'default': ses_alphas must be in (0, 1], got {ses_alphas}")
        if not 0.0 < decay < 1.0 or eta < 0.0 or min_scored < 1 or window < 1:
            raise InputError(
                "predictor 'default': need 0 < decay < 1, eta >= 0, min_scored >= 1, window >= 1"
            )
        self._ma_windows = tuple(int(k) for k in ma_windows)
        self._ses_alphas = tuple(float(a) for a in ses_alphas)
        self._median_windows = tuple(int(k) for k in median_windows)
        self._decay, self._eta, self._min_scored, self._window = decay, eta, min_scored, window
        self._seasonal, self._season_every = seasonal, season_every
        self._use_guard = guard
        self._segment_k = segment_k
        self._guard = ProdGuard(
            min_compare=min_compare, alpha=guard_alpha, max_weight=guard_max_weight
        )
        self._segment: deque[float] = deque(maxlen=max(self._ma_windows))
        self._dev = 0.0  # EW mean absolute deviation from the segment mean
        self._dev_w = 0.0
        self.members: tuple[str, ...] = (
            "last",
            *(f"ma{k}" for k in self._ma_windows),
            *(f"med{k}" for k in self._median_windows),
            *(f"ses{a:g}" for a in self._ses_alphas),
            "holt",
            "kalman",
            "segment",
            *(("snaive", "smean") if seasonal else ()),
        )
        m = len(self.members)
        self._history: deque[float] = deque(
            maxlen=max(*self._ma_windows, *self._median_windows, 512)
        )
        self._ses = np.zeros(len(self._ses_alphas))
        self._holt_level = 0.0
        self._holt_trend = 0.0
        self._period = 0
        self._err = np.zeros(m)  # EW mean absolute error per member
        self._err_w = 0.0  # EW sum of weights (bias correction of the EW mean)
        self._scored = 0
        self._pending: np.ndarray | None = None  # members' one-step forecasts for the next value
        self._residuals = ResidualWindow(window)
        self._kalman = KalmanPredictor(min_points=1)

    @property
    def params(self) -> dict[str, Any]:
        return {
            "ma_windows": list(self._ma_windows),
            "ses_alphas": list(self._ses_alphas),
            "median_windows": list(self._median_windows),
            "decay": self._decay,
            "eta": self._eta,
            "min_scored": self._min_scored,
            "window": self._window,
            "seasonal": self._seasonal,
            "season_every": self._season_every,
            "guard": self._use_guard,
            "segment_k": self._segment_k,
            "min_compare": self._guard.min_compare,
            "guard_alpha": self._guard.alpha,
            "guard_max_weight": self._guard.max_weight,
        }

    # -- members ---------------------------------------------------------------------------
    def _member_forecasts(self, h: int) -> np.ndarray:
        """Array (members, h) of each member's forecast for the next ``h`` steps."""
        hist = np.fromiter(self._history, dtype=float, count=len(self._history))
        out = np.empty((len(self.members), h))
        out[0] = hist[-1]
        i = 1
        for k in self._ma_windows:
            out[i] = hist[-k:].mean()
            i += 1
        for k in self._median_windows:
            out[i] = np.median(hist[-k:])
            i += 1
        for s in self._ses:
            out[i] = s
            i += 1
        damp = np.cumsum(_HOLT_PHI ** np.arange(1, h + 1))
        out[i] = self._holt_level + damp * self._holt_trend
        i += 1
        out[i] = self._kalman.forecast(h).mean
        i += 1
        out[i] = sum(self._segment) / len(self._segment)
        i += 1
        if self._seasonal:
            p = self._period
            if p >= 2 and hist.size >= p:
                idx = hist.size - p + (np.arange(h) % p)
                out[i] = hist[idx]
            else:
                out[i] = hist[-1]
            i += 1
            out[i] = self._seasonal_mean(hist, h)
        return np.maximum(out, 0.0)

    def _seasonal_mean(self, hist: np.ndarray, h: int) -> np.ndarray:
        """Level of the last full cycle plus the phase's mean deviation over the last (up to 3)
        cycles: ``mean(W_1) + mean_j (y[t+k-jp] - mean(W_j))`` with ``W_j`` the ``j``-th most
        recent cycle — seasonal naive with its noise averaged over cycles (classical
        decomposition, Hyndman & Athanasopoulos, FPP3 §3.4). The last value without a season."""
        p = self._period
        cycles = min(3, hist.size // p) if p >= 2 else 0
        if cycles == 0:
            return np.full(h, hist[-1])
        n = hist.size
        steps = np.arange(h) % p  # phase offset of t+1..t+h within the last cycle
        dev = np.zeros(h)
        for j in range(1, cycles + 1):
            window = hist[n - j * p : n - (j - 1) * p]
            dev += window[steps] - window.mean()
        return np.asarray(hist[n - p :].mean() + dev / cycles, dtype=float)

    def _advance_segment(self, y: float) -> None:
        """Mean since the last level shift: restart when ``|y - mean| > segment_k * 1.25 * MAD``."""
        if self._segment:
            dev = abs(y - sum(self._segment) / len(self._segment))
            sigma = 1.25 * self._dev / self._dev_w if self._dev_w > 0 else float("inf")
            if len(self._segment) >= 2 and dev > self._segment_k * sigma:
                self._segment.clear()
            else:
                self._dev = self._decay * self._dev + dev
                self._dev_w = self._decay * self._dev_w + 1.0
        self._segment.append(y)

    def _detect_period(self, hist: np.ndarray) -> int:
        """Seasonal period: the lag ``2 <= p <= n/3`` whose sample ACF is a local peak
        (``acf[p-1] < acf[p] >= acf[p+1]``) above 0.3, the highest such peak; 0 when none.

        A season shows as a peak of the ACF at its period; a smooth or trending series has a
        decaying ACF with high values at small lags but no peak, and gets no season.
        """
        n = hist.size
        max_lag = n // 3
        if max_lag < 2:
            return 0
        x = hist - hist.mean()
        denom = float(x @ x)
        if denom <= 0.0:
            return 0
        acf = np.array([float(x[:-lag] @ x[lag:]) / denom for lag in range(1, max_lag + 2)])
        lags = np.arange(2, max_lag + 1)
        mid = acf[lags - 1]
        peak = (mid > acf[lags - 2]) & (mid >= acf[lags]) & (mid > 0.3)
        if not peak.any():
            return 0
        return int(lags[peak][np.argmax(mid[peak])])

    def _blend_weights(self) -> np.ndarray:
        if self._scored < self._min_scored:
            w = np.zeros(len(self.members))
            w[0] = 1.0
            return w
        err = self._err / self._err_w
        best = float(err.min())
        w = (err <= 0.0).astype(float) if best <= 0.0 else np.exp(-self._eta * (err / best - 1.0))
        return np.asarray(w / w.sum(), dtype=float)

    # -- Predictor -------------------------------------------------------------------------
    def _observe(self, y: float) -> None:
        if self._pending is not None:
            # score the forecasts made before y was known (weights as they were then)
            last = float(self._pending[0])
            blend = float(self._blend_weights() @ self._pending)
            s = self._guard.weight() if self._use_guard else 1.0
            self._residuals.add(y, last + s * (blend - last))
            self._guard.update(y, blend, last)
            self._err = self._decay * self._err + np.abs(y - self._pending)
            self._err_w = self._decay * self._err_w + 1.0
            self._scored += 1
        # advance member states with y
        if not self._history:
            self._ses[:] = y
            self._holt_level, self._holt_trend = y, 0.0
        else:
            self._ses += np.asarray(self._ses_alphas) * (y - self._ses)
            prev_level = self._holt_level
            pred = prev_level + _HOLT_PHI * self._holt_trend
            self._holt_level = pred + _HOLT_ALPHA * (y - pred)
            self._holt_trend = _HOLT_PHI * self._holt_trend + _HOLT_BETA * (
                self._holt_level - prev_level - _HOLT_PHI * self._holt_trend
            )
        self._history.append(y)
        self._advance_segment(y)
        self._kalman.update(y)
        if self._seasonal and self._n % self._season_every == 0 and self._n >= 6:
            self._period = self._detect_period(
                np.fromiter(self._history, dtype=float, count=len(self._history))
            )
        self._pending = self._member_forecasts(1)[:, 0]

    def _forecast(self, h: int) -> Forecast:
        mean = self._weights() @ self._member_forecasts(h)
        return self._residuals.forecast(mean)

    def _weights(self) -> np.ndarray:
        """Weights the forecast uses now: ``s`` times the blend's plus ``1 - s`` on ``last``."""
        s = self._guard.weight() if self._use_guard else 1.0
        w = s * self._blend_weights()
        w[0] += 1.0 - s
        return w

    def member_weights(self) -> dict[str, float]:
        """Current weight of each member (sums to 1)."""
        return dict(zip(self.members, (float(v) for v in self._weights()), strict=True))
