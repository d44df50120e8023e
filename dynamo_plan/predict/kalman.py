"""``kalman``: local-linear-trend Kalman filter (filterpy), Dynamo's planner defaults.

State ``x = [level, trend]``, ``F = [[1, 1], [0, 1]]``, ``H = [1, 0]``,
``Q = diag(q_level, q_trend)``, ``R = r``; defaults ``q_level=1.0, q_trend=0.1, r=10.0`` and
``min_points=5`` (below it the forecast is the last value). With ``log1p=True`` the filter runs on
``log1p(y)`` and forecasts are mapped back with ``expm1`` (the mean is then the median).

Band: Dynamo's fixed ``q``/``r`` are not in the data's units (a request count of 200/interval with
r = 10 is as wrong as ISL of 15 000 tokens), so the filter's innovation variance ``S`` is only
right up to a scale factor. If the true noise is ``alpha`` times the model's (``Q`` and ``R``
both scaled), the gain is unchanged and the normalised innovation squared ``NIS = nu^2 / S`` has
mean ``alpha`` (innovation-based adaptive estimation, Mehra 1970). The predictive variance is
therefore ``mean(NIS over the last nis_window innovations) * (H P_k H' + R)``: it adapts to the
data's units and to regime changes within ``nis_window`` intervals.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, ClassVar

import numpy as np

from dynamo_plan.errors import InputError
from dynamo_plan.predict.base import Forecast, Predictor

_F = np.array([[1.0, 1.0], [0.0, 1.0]])
_H = np.array([[1.0, 0.0]])


class KalmanPredictor(Predictor):
    """Local linear trend; same state whether fed by updates or by ``warm_start``."""

    name: ClassVar[str] = "kalman"
    param_names: ClassVar[tuple[str, ...]] = (
        "q_level",
        "q_trend",
        "r",
        "min_points",
        "log1p",
        "nis_window",
    )

    def __init__(
        self,
        q_level: float = 1.0,
        q_trend: float = 0.1,
        r: float = 10.0,
        min_points: int = 5,
        log1p: bool = False,
        nis_window: int = 30,
    ) -> None:
        super().__init__()
        for label, value in (("q_level", q_level), ("q_trend", q_trend), ("r", r)):
            if not (math.isfinite(value) and value > 0):
                raise InputError(f"predictor 'kalman': {label} must be > 0, got {value}")
        if min_points < 1 or nis_window < 1:
            raise InputError(
                f"predictor 'kalman': min_points and nis_window must be >= 1, "
                f"got {min_points} and {nis_window}"
            )
        self._q_level, self._q_trend, self._r = float(q_level), float(q_trend), float(r)
        self._min_points, self._log1p, self._nis_window = min_points, log1p, nis_window
        self._kf: Any = None  # filterpy.kalman.KalmanFilter, built on the first observation
        self._nis: deque[float] = deque(maxlen=nis_window)
        self._last = 0.0

    def _observe(self, y: float) -> None:
        z = math.log1p(y) if self._log1p else y
        self._last = z
        if self._kf is None:
            # imported here: filterpy pulls in scipy (~0.4 s), which no CLI start should pay for
            from filterpy.kalman import KalmanFilter

            kf = KalmanFilter(dim_x=2, dim_z=1)
            kf.x = np.array([[z], [0.0]])
            kf.F = _F.copy()
            kf.H = _H.copy()
            kf.Q = np.diag([self._q_level, self._q_trend])
            kf.R = np.array([[self._r]])
            kf.P = np.diag([self._r, 1.0])  # first level measured with noise r; trend unknown
            self._kf = kf
            return
        self._kf.predict()
        self._kf.update(z)
        s = float(self._kf.S[0, 0])
        self._nis.append(float(self._kf.y[0, 0]) ** 2 / s)

    def _forecast(self, h: int) -> Forecast:
        assert self._kf is not None
        kf = self._kf
        scale = float(np.mean(self._nis)) if self._nis else 1.0
        x, p = kf.x.copy(), kf.P.copy()
        means, variances = np.empty(h), np.empty(h)
        for k in range(h):
            x = _F @ x
            p = _F @ p @ _F.T + kf.Q
            means[k] = x[0, 0]
            variances[k] = scale * (float((_H @ p @ _H.T)[0, 0]) + self._r)
        if self._n < self._min_points:
            means[:] = self._last
        std = np.sqrt(variances)
        if self._log1p:
            return Forecast.log_gaussian(means, std)
        return Forecast.gaussian(means, std)
