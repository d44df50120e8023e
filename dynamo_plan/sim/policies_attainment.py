"""The ``planner`` policy with a per-request SLA-attainment target (``--sla-attainment A``):
the forecasting planner sized by :class:`~dynamo_plan.sim.attainment.AttainmentSizer` (the same
sizing ``plan run`` and ``plan decide`` use), its request shapes the trace's own recent past.

Before each decision the sizer is given the (ISL, OSL) pairs and arrival times of the requests
that *arrived* in the last ``window`` intervals (nothing from the future is read): the sample is
a block bootstrap of them. Hysteresis, the budget and the
decision reasons are the planner core's (:func:`dynamo_plan.core.planner.step`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dynamo_plan.core.planner import Observation, PlannerConfig
from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.sim.attainment import AttainmentSizer
from dynamo_plan.sim.config import SimConfig
from dynamo_plan.sim.policies_planner import PlannerPolicy
from dynamo_plan.sim.requests import RequestArrays

__all__ = ["DEFAULT_WINDOW", "AttainmentPlannerPolicy"]

#: Past intervals whose requests give the (ISL, OSL) distribution of the sample.
DEFAULT_WINDOW = 5


class AttainmentPlannerPolicy(PlannerPolicy):
    """``planner`` sized for a per-request attainment target (module docstring)."""

    def __init__(
        self,
        planner_config: PlannerConfig,
        profile: PerformanceProfile,
        requests: RequestArrays,
        config: SimConfig,
        attainment: float,
        predictor: str = "default",
        *,
        initial: tuple[int, int] | None = None,
        predictor_params: dict[str, Any] | None = None,
        window: int = DEFAULT_WINDOW,
        name: str = "planner",
    ) -> None:
        self.sizer = AttainmentSizer(attainment, config)
        super().__init__(
            planner_config, profile, predictor, initial=initial,
            predictor_params=predictor_params, name=name, sizer=self.sizer,
        )  # fmt: skip
        self.requests = requests
        self.window_s = window * config.interval_s

    def decide(self, obs: Observation) -> tuple[int, int, str]:
        arrival = self.requests.arrival_s
        a, b = np.searchsorted(arrival, [obs.t_s - self.window_s, obs.t_s])
        self.sizer.observe(
            self.requests.isl[a:b], self.requests.osl[a:b], "the trace's last requests",
            self.requests.arrival_s[a:b], min(self.window_s, obs.t_s),
        )  # fmt: skip
        return super().decide(obs)
