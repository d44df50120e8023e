"""``constant``: repeat the last observed value (the naive forecast).

Band: empirical conformal quantiles of its own recent one-step errors (:class:`ResidualWindow`),
i.e. of the last ``window`` interval-to-interval changes of the series.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from dynamo_plan.errors import InputError
from dynamo_plan.predict.base import Forecast, Predictor, ResidualWindow


class ConstantPredictor(Predictor):
    """Forecast ``y_{t+k} = y_t`` for every step ``k``; exact same state from updates or refit."""

    name: ClassVar[str] = "constant"
    param_names: ClassVar[tuple[str, ...]] = ("window",)

    def __init__(self, window: int = 50) -> None:
        super().__init__()
        if window < 1:
            raise InputError(f"predictor 'constant': window must be >= 1, got {window}")
        self._window = window
        self._residuals = ResidualWindow(window)
        self._last = 0.0

    def _observe(self, y: float) -> None:
        if self._n > 1:
            self._residuals.add(y, self._last)
        self._last = y

    def _forecast(self, h: int) -> Forecast:
        return self._residuals.forecast(np.full(h, self._last))
