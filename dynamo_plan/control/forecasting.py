"""``ForecastingPlanner``: the decision core with its predictors (request count, ISL, OSL).

Each :meth:`ForecastingPlanner.tick` feeds the last interval's observation to the predictors,
forecasts ``config.lookahead_steps()`` intervals ahead — the request count at
``config.load_quantile`` (or its mean), ISL and OSL at their means — and runs
:func:`dynamo_plan.core.planner.step`. An unknown value is not fed (never as zero); an unknown
request count makes the core hold. ISL/OSL of an idle interval (0 requests) are not fed either:
there were no requests to measure. Construction is pure (no file, no socket).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dynamo_plan.core.planner import (
    Decision,
    LoadForecast,
    Observation,
    PlannerConfig,
    PlannerState,
    Sizer,
    formula_plan,
    step,
)
from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.predict.base import Predictor
from dynamo_plan.predict.registry import make_predictor
from dynamo_plan.trace.bucket import IntervalSeries

__all__ = ["ForecastingPlanner"]


class ForecastingPlanner:
    """Planner core + one predictor per series (``predictor`` name and ``predictor_params``
    from :mod:`dynamo_plan.predict.registry`); ``sizer``: how a forecast becomes replicas
    (:class:`~dynamo_plan.core.planner.Sizer`, default the formulas)."""

    def __init__(
        self,
        config: PlannerConfig,
        profile: PerformanceProfile,
        predictor: str = "default",
        initial_prefill: int = 1,
        initial_decode: int = 1,
        predictor_params: dict[str, Any] | None = None,
        sizer: Sizer = formula_plan,
    ) -> None:
        params = dict(predictor_params or {})
        self.config = config
        self.profile = profile
        self.predictor_name = predictor
        self._count: Predictor = make_predictor(predictor, **params)
        self._isl: Predictor = make_predictor(predictor, **params)
        self._osl: Predictor = make_predictor(predictor, **params)
        self._state = PlannerState.initial(config, initial_prefill, initial_decode)
        self.last_forecast: LoadForecast | None = None
        self.sizer = sizer

    @property
    def state(self) -> PlannerState:
        """The core's state after the last tick."""
        return self._state

    def warm_start(self, series: IntervalSeries) -> None:
        """Feed a bucketed history (count every interval; ISL/OSL only where it had requests)."""
        self._count.warm_start(series.series("count"))
        busy = ~series.frame["filled"].to_numpy(dtype=bool)
        self._isl.warm_start(series.series("isl")[busy])
        self._osl.warm_start(series.series("osl")[busy])

    def _feed(self, obs: Observation) -> None:
        if obs.requests is None:
            return
        self._count.update(obs.requests)
        if obs.requests > 0:
            if obs.isl is not None:
                self._isl.update(obs.isl)
            if obs.osl is not None:
                self._osl.update(obs.osl)

    def forecast(self) -> LoadForecast:
        """Forecast of the next ``lookahead_steps()`` intervals from the predictors now."""
        h = self.config.lookahead_steps()
        fc = self._count.forecast(h)
        q = self.config.load_quantile
        requests = fc.mean if q is None else fc.quantile(q)
        return LoadForecast(
            np.asarray(requests, dtype=float),
            np.asarray(self._isl.forecast(h).mean, dtype=float),
            np.asarray(self._osl.forecast(h).mean, dtype=float),
        )

    def _shape_known(self) -> bool:
        return self._isl.n_observations > 0 and self._osl.n_observations > 0

    def tick(self, obs: Observation) -> Decision:
        """Observe, forecast, decide; the new state is kept."""
        self._feed(obs)
        forecast = self.forecast() if obs.requests is not None else None
        if forecast is not None and np.any(forecast.requests > 0) and not self._shape_known():
            forecast = None  # requests expected but no ISL/OSL ever seen: unknown, not zero
        self.last_forecast = forecast
        self._state, decision = step(
            self._state, self.config, self.profile, obs, forecast, self.sizer
        )
        return decision
