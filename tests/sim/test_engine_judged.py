"""The simulator tells the policy, each interval, which finished requests met the SLA
(``Observation.sla_judged`` / ``sla_missed``): the counts agree with the run's own summary."""

from __future__ import annotations

import numpy as np

from dynamo_plan.core.planner import Observation
from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.sla import SLA
from dynamo_plan.sim import RequestArrays, SimConfig, StaticPolicy, simulate
from dynamo_plan.sim.engine import replay
from dynamo_plan.sim.result import sla_met, unservable

SLA_ = SLA(300.0, 20.0)
CONFIG = SimConfig(interval_s=5.0, startup_s=5.0)


class Recording(StaticPolicy):
    """Fixed replicas; keeps every observation."""

    def __init__(self, prefill: int, decode: int) -> None:
        super().__init__(prefill, decode)
        self.seen: list[Observation] = []

    def decide(self, obs: Observation) -> tuple[int, int, str]:
        self.seen.append(obs)
        return super().decide(obs)


def test_judged_and_missed_match_the_summary(profile: PerformanceProfile) -> None:
    req = RequestArrays.poisson(30.0, 40.0, isl=(500, 6000), osl=(50, 400), seed=3)
    huge = int(profile.prefill.isl[-1]) * 8  # a few requests no size can serve
    isl = req.isl.copy()
    isl[::97] = huge
    req = RequestArrays(req.arrival_s, isl, req.osl)
    policy = Recording(1, 1)  # too few engines: many misses
    result = simulate(req, profile, SLA_, CONFIG, policy)
    judged = sum(o.sla_judged or 0.0 for o in policy.seen)
    missed = sum(o.sla_missed or 0.0 for o in policy.seen)
    cannot = unservable(req, profile, SLA_, CONFIG)
    outcome = replay(req, profile, CONFIG, StaticPolicy(1, 1))
    done = np.isfinite(outcome.finish_s)
    # requests finishing after the last decision are not reported: the counts are a lower bound
    last = policy.seen[-1].t_s
    before = done & (outcome.finish_s < last) & ~cannot
    met = sla_met(req, outcome, SLA_)
    assert judged == int(before.sum()) > 0
    assert missed == int((before & ~met).sum()) > 0
    assert result.unservable == int(cannot.sum()) > 0
    assert all(o.sla_missed is not None and o.sla_missed <= o.sla_judged for o in policy.seen)  # type: ignore[operator]


def test_without_an_sla_nothing_is_judged(profile: PerformanceProfile) -> None:
    req = RequestArrays.poisson(5.0, 20.0, isl=(500, 2000), osl=(20, 100), seed=4)
    policy = Recording(1, 1)
    replay(req, profile, CONFIG, policy)
    assert policy.seen and all(o.sla_judged is None for o in policy.seen)
