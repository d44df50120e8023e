"""``prophet``: Facebook Prophet refitted on the last ``window`` observations (optional extra).

Needs ``pip install 'dynamo-plan[prophet]'``; without it the constructor raises
:class:`~dynamo_plan.errors.MissingExtraError`. Observations are placed on a synthetic time axis,
``interval_s`` seconds apart (Prophet models calendar seasonality, so the spacing matters). Each
forecast refits Prophet (slow: ~0.1-1 s) on the window. Band: empirical conformal quantiles of
its one-step errors (:class:`ResidualWindow`).
"""

from __future__ import annotations

import importlib
from collections import deque
from typing import Any, ClassVar

import numpy as np

from dynamo_plan.errors import InputError, MissingExtraError
from dynamo_plan.predict.base import Forecast, Predictor, ResidualWindow

_EPOCH = "2000-01-01"  # timestamps handed to Prophet start here (pandas.Timestamp)


class ProphetPredictor(Predictor):
    """Prophet on a sliding window of ``window`` intervals (Dynamo's default 50)."""

    name: ClassVar[str] = "prophet"
    param_names: ClassVar[tuple[str, ...]] = ("window", "interval_s", "min_points")

    def __init__(self, window: int = 50, interval_s: float = 60.0, min_points: int = 5) -> None:
        super().__init__()
        try:
            self._prophet: Any = importlib.import_module("prophet")
        except ImportError as e:
            raise MissingExtraError("prophet", "prophet", "the prophet predictor") from e
        if window < 2 or min_points < 2 or interval_s <= 0:
            raise InputError(
                "predictor 'prophet': need window >= 2, min_points >= 2, interval_s > 0; "
                f"got {window}, {min_points}, {interval_s}"
            )
        self._window, self._interval_s, self._min_points = window, float(interval_s), min_points
        self._history: deque[tuple[int, float]] = deque(maxlen=window)
        self._residuals = ResidualWindow(window)
        self._next: float | None = None

    def _observe(self, y: float) -> None:
        if self._next is not None:
            self._residuals.add(y, self._next)
        self._history.append((self._n - 1, y))
        self._next = float(self._mean(1)[0])

    def _mean(self, h: int) -> np.ndarray:
        if len(self._history) < self._min_points:
            return np.full(h, self._history[-1][1])
        import pandas as pd  # with prophet only: no pandas import on every CLI start

        epoch = pd.Timestamp(_EPOCH)
        idx = np.array([i for i, _ in self._history], dtype=float)
        frame = pd.DataFrame(
            {
                "ds": epoch + pd.to_timedelta(idx * self._interval_s, unit="s"),
                "y": [v for _, v in self._history],
            }
        )
        model = self._prophet.Prophet(uncertainty_samples=0)
        model.fit(frame)
        last = idx[-1]
        future = pd.DataFrame(
            {
                "ds": epoch
                + pd.to_timedelta((last + np.arange(1, h + 1)) * self._interval_s, unit="s")
            }
        )
        return np.asarray(model.predict(future)["yhat"], dtype=float)

    def _forecast(self, h: int) -> Forecast:
        mean = np.array([self._next]) if h == 1 and self._next is not None else self._mean(h)
        return self._residuals.forecast(mean)
