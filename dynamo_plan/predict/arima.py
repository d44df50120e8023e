"""``arima``: pmdarima ``auto_arima`` on the first fit, then cheap incremental updates.

Fit: ``auto_arima`` on the last ``window`` observations (default 100, Dynamo's window) once
``min_points`` (default 10; Dynamo uses 5, but on 5 points auto_arima can only pick (0,0,0) or
(0,1,0), i.e. a mean or the last value, at ~0.1 s a fit) are known; if the chosen order collapses to ``(0, d, 0)`` (no AR or MA
term: a random walk or white noise), the fit is repeated on ``log1p(y)`` and used when that
gives a non-trivial order (Dynamo's rule). Until the first fit, and whenever a fit fails
(e.g. a constant window), the forecast is the last value with empirical error quantiles.

Update: ``arima_res_.extend([y])`` (statsmodels) appends the observation to the state-space
filter with the fitted parameters frozen: ~0.7-1 ms per step against ~4 ms for pmdarima's
``update`` (which re-optimises the parameters) and 0.3-1 s for a new ``auto_arima``.

Refit policy (parameters go stale as the load drifts; refits are what cost):

- growth: refit when the history has grown by half since the last fit (``n >= 1.5 n_fit``) —
  parameters estimated from few points change most, so refits are dense early and sparse later;
- schedule: and at least every ``refit_every`` observations (default 50);
- degradation: and early when the mean squared standardised one-step error over the last 5
  observations exceeds 4 (errors twice the model's own standard deviation: the model is stale),
  at most once per 5 observations.

Band: statsmodels' prediction standard errors (``get_forecast().se_mean``), Gaussian in the fitted
space (``log1p`` space maps back with ``expm1``), widened by ``sqrt(max(1, mean z^2))`` over the
last 30 standardised one-step errors ``z = (y - mean) / se``: the parameters are estimated on
short windows and frozen between refits, so the model's own intervals are too narrow (p90
coverage ~0.8 on the real traces without it); the factor never narrows them. ``update`` then ``forecast`` equals a fresh fit
on the same data only right after a refit; between refits the parameters are those of the last
fit, so this predictor does not promise equality with a fresh fit (it does promise that
``warm_start`` equals the same sequence of ``update`` calls).
"""

from __future__ import annotations

import math
import warnings
from collections import deque
from typing import Any, ClassVar

import numpy as np

from dynamo_plan.errors import InputError
from dynamo_plan.predict.base import Forecast, Predictor, ResidualWindow

_BLAS: Any = None


def _one_blas_thread() -> Any:
    """Context limiting BLAS to one thread (threadpoolctl, a scikit-learn dependency of pmdarima).

    The state-space matrices are tiny: with OpenBLAS' default threads, statsmodels' Lyapunov
    initialisation spins threads on every likelihood evaluation, and on a busy machine a fit
    slowed from ~0.1 s to ~3 s (measured here, 2 cores). The limit costs ~10 us per use.
    """
    global _BLAS
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


_DEGRADE_WINDOW = 5
_DEGRADE_LIMIT = 4.0
_BAND_WINDOW = 30
_BAND_MIN = 5


class ArimaPredictor(Predictor):
    """Auto-ARIMA with incremental state updates and the refit policy above."""

    name: ClassVar[str] = "arima"
    param_names: ClassVar[tuple[str, ...]] = (
        "min_points",
        "window",
        "refit_every",
        "log1p_fallback",
    )

    def __init__(
        self,
        min_points: int = 10,
        window: int = 100,
        refit_every: int = 50,
        log1p_fallback: bool = True,
    ) -> None:
        super().__init__()
        if min_points < 3 or window < min_points or refit_every < 1:
            raise InputError(
                "predictor 'arima': need min_points >= 3, window >= min_points, refit_every >= 1; "
                f"got {min_points}, {window}, {refit_every}"
            )
        self._min_points, self._window = min_points, window
        self._refit_every, self._log1p_fallback = refit_every, log1p_fallback
        self._history: deque[float] = deque(maxlen=window)
        self._res: Any = None  # statsmodels SARIMAXResults of the current fit
        self._log = False
        self._order: tuple[int, int, int] | None = None
        self._n_fit = 0  # history length at the last fit
        self._since_fit = 0
        self._fits = 0
        self._z2: deque[float] = deque(maxlen=_DEGRADE_WINDOW)
        self._z2_band: deque[float] = deque(maxlen=_BAND_WINDOW)
        self._pending: tuple[float, float] | None = None  # one-step (mean, sd) in model space
        self._next: tuple[np.ndarray, np.ndarray] | None = None  # cached 1-step forecast
        self._fallback = ResidualWindow(50)
        self._last = 0.0

    @property
    def order(self) -> tuple[int, int, int] | None:
        """``(p, d, q)`` of the current fit (``None`` before the first fit or after a failure)."""
        return self._order

    @property
    def uses_log1p(self) -> bool:
        """Whether the current fit is on ``log1p(y)``."""
        return self._log

    @property
    def fits(self) -> int:
        """Number of ``auto_arima`` fits so far."""
        return self._fits

    def _observe(self, y: float) -> None:
        with _one_blas_thread():
            self._observe_blas(y)

    def _observe_blas(self, y: float) -> None:
        if self._n > 1:
            self._fallback.add(y, self._last)
        self._last = y
        self._history.append(y)
        z = math.log1p(y) if self._log else y
        if self._pending is not None:
            mean1, sd1 = self._pending
            z2 = ((z - mean1) / sd1) ** 2 if sd1 > 0 else 0.0
            self._z2.append(z2)
            self._z2_band.append(z2)
        self._since_fit += 1
        if self._res is not None and not self._should_refit():
            try:
                self._res = self._res.extend([z])
            except Exception:  # numerical failure inside statsmodels: refit below
                self._res = None
        if (self._res is None and self._n >= self._min_points) or self._should_refit():
            self._fit()
        self._pending, self._next = None, None
        if self._res is not None:
            mean, sd = self._model_forecast(1)
            self._next = (mean, sd)
            self._pending = (float(mean[0]), float(sd[0]))

    def _should_refit(self) -> bool:
        if self._res is None:
            return False
        grown = self._n >= 1.5 * self._n_fit
        stale = self._since_fit >= self._refit_every
        degraded = (
            len(self._z2) == _DEGRADE_WINDOW
            and self._since_fit >= _DEGRADE_WINDOW
            and float(np.mean(self._z2)) > _DEGRADE_LIMIT
        )
        return grown or stale or degraded

    def _fit(self) -> None:
        import pmdarima

        data = np.fromiter(self._history, dtype=float, count=len(self._history))
        self._fits += 1
        self._n_fit, self._since_fit = self._n, 0
        self._z2.clear()
        self._res, self._order, self._log = None, None, False
        if np.ptp(data) == 0.0:
            return  # constant window: the last value is the forecast
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = pmdarima.auto_arima(data, suppress_warnings=True, error_action="ignore")
                log = False
                if self._log_needed(model.order):
                    logged = pmdarima.auto_arima(
                        np.log1p(data), suppress_warnings=True, error_action="ignore"
                    )
                    if not self._log_needed(logged.order):
                        model, log = logged, True
        except Exception:  # any numerical failure of the fit: fall back to the last value
            return
        self._res, self._order, self._log = model.arima_res_, tuple(model.order), log

    def _log_needed(self, order: tuple[int, int, int]) -> bool:
        return self._log1p_fallback and order[0] == 0 and order[2] == 0

    def _band_scale(self) -> float:
        """``sqrt(max(1, mean z^2))`` over the last 30 standardised one-step errors (>= 5 known)."""
        if len(self._z2_band) < _BAND_MIN:
            return 1.0
        return math.sqrt(max(1.0, float(np.mean(self._z2_band))))

    def _model_forecast(self, h: int) -> tuple[np.ndarray, np.ndarray]:
        f = self._res.get_forecast(h)
        return np.asarray(f.predicted_mean, dtype=float), np.asarray(f.se_mean, dtype=float)

    def _forecast(self, h: int) -> Forecast:
        if self._res is None:
            return self._fallback.forecast(np.full(h, self._last))
        if h == 1 and self._next is not None:
            mean, sd = self._next
        else:
            with _one_blas_thread():
                mean, sd = self._model_forecast(h)
        sd = sd * self._band_scale()
        if self._log:
            return Forecast.log_gaussian(mean, sd)
        return Forecast.gaussian(mean, sd)
