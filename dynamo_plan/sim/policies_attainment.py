"""The ``planner`` policy with a per-request SLA-attainment target (``--sla-attainment A``):
model-predictive sizing with the simulator.

Each decision:

1. the forecasting planner (:class:`~dynamo_plan.sim.policies_planner.PlannerPolicy`: its
   predictor, load quantile and look-ahead over the start-up time) forecasts the request count
   of the coming intervals; the largest of them, and at least the count of the interval just
   seen, is the load to plan for;
2. a sample is drawn: that many Poisson arrivals per interval over two intervals, each with an
   (ISL, OSL) pair drawn from the requests that *arrived* in the last ``window`` intervals (the
   distribution, tails included, not only its mean; nothing from the future is read); the first
   interval only loads the engines with carried-over work and is not counted;
3. the cheapest (P, D) whose replay of the sample meets TTFT and ITL for a fraction ``A`` of its
   servable requests is searched exactly as the ``optimal`` policy searches one interval
   (:func:`~dynamo_plan.sim.optimal.cheapest_for_interval`);
4. scale-down waits for ``scale_down_patience`` decisions (the largest of the last targets is
   kept), scale-up is at once.

Requests that no size can serve (:func:`~dynamo_plan.sim.result.unservable`) are left out of
the target, not scaled for; each decision's reason counts them.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from dynamo_plan.core.planner import Observation
from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.sla import SLA
from dynamo_plan.sim.config import SimConfig
from dynamo_plan.sim.optimal import cheapest_for_interval, search_config
from dynamo_plan.sim.policies_planner import PlannerPolicy
from dynamo_plan.sim.requests import RequestArrays
from dynamo_plan.sim.result import unservable

__all__ = ["AttainmentPlannerPolicy"]

#: Past intervals whose requests give the (ISL, OSL) distribution of the sample.
DEFAULT_WINDOW = 5
#: Intervals of the sample that count (after one that warms the engines up): more intervals,
#: less sampling noise in the tail the target is about.
SAMPLE_INTERVALS = 3
#: Share of the allowed misses the plan keeps in reserve for forecast and sampling error: the
#: sample must meet ``1 - (1 - A)·(1 - MARGIN)``.
MARGIN = 0.5


class AttainmentPlannerPolicy:
    """``planner`` sized for a per-request attainment target (module docstring)."""

    def __init__(
        self,
        base: PlannerPolicy,
        requests: RequestArrays,
        profile: PerformanceProfile,
        sla: SLA,
        config: SimConfig,
        attainment: float,
        window: int = DEFAULT_WINDOW,
    ) -> None:
        self.name = base.name
        self.base = base
        self.requests = requests
        self.profile = profile
        self.sla = sla
        self.config = config
        self.search = search_config(config)
        self.attainment = attainment
        self.window = window
        self.rng = np.random.default_rng(config.seed)
        self.cannot = unservable(requests, profile, sla, config)
        patience = base.config.scale_down_patience
        self.targets: deque[tuple[int, int]] = deque([base.initial()], maxlen=patience + 1)
        self.limits = base.config.limits

    def initial(self) -> tuple[int, int]:
        return self.base.initial()

    def _sample(self, t: float, count: int) -> tuple[RequestArrays, np.ndarray] | None:
        """Two intervals of ``count`` Poisson arrivals each, shapes drawn from the recent window;
        the first interval warms the engines up and is marked as not counted."""
        interval = self.config.interval_s
        arrival = self.requests.arrival_s
        a, b = np.searchsorted(arrival, [t - self.window * interval, t])
        if b <= a or count <= 0:
            return None
        spans = 1 + SAMPLE_INTERVALS
        pick = self.rng.integers(a, b, size=spans * count)
        offsets = np.sort(self.rng.uniform(0.0, spans * interval, size=spans * count))
        sample = RequestArrays(offsets, self.requests.isl[pick], self.requests.osl[pick])
        skip = self.cannot[pick] | (offsets < interval)
        return sample, skip

    def decide(self, obs: Observation) -> tuple[int, int, str]:
        p, d, reason = self.base.decide(obs)
        forecast = self.base.planner.last_forecast
        # never below the interval just seen: a young predictor (few points) forecasts low or
        # nothing at all
        predicted = float(np.max(forecast.requests)) if forecast is not None else 0.0
        count = int(np.ceil(max(predicted, obs.requests or 0.0)))
        drawn = self._sample(obs.t_s, count)
        if drawn is None:
            return p, d, reason
        sample, cannot = drawn
        floor = max(1, self.limits.min_endpoint)
        want = cheapest_for_interval(
            sample, self.profile, self.sla, self.search, cannot,
            1.0 - (1.0 - self.attainment) * (1.0 - MARGIN), floor,
            self.limits, self.config,
        )  # fmt: skip
        self.targets.append(want)
        held = (max(t[0] for t in self.targets), max(t[1] for t in self.targets))
        skipped = int(np.count_nonzero(cannot & (sample.arrival_s >= self.config.interval_s)))
        note = f"attainment {self.attainment:g}" + (f", {skipped} unservable" if skipped else "")
        return held[0], held[1], note
