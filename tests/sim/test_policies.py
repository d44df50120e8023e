"""Static (peak-sized) and oracle (hindsight, ordered ahead) policies."""

from __future__ import annotations

import numpy as np
import pytest

from dynamo_plan.core.planner import DEFAULT_TTFT_QUANTILE, Observation
from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.sla import SLA, EngineGpus, Limits, Load, size_replicas
from dynamo_plan.sim import (
    OraclePolicy,
    Policy,
    RequestArrays,
    SimConfig,
    StaticPolicy,
    interval_needs,
    simulate,
    static_peak_policy,
)


def _two_level() -> RequestArrays:
    """60 s at 5 req/s, 60 s at 40 req/s, 60 s at 5 req/s (ISL 1500, OSL 150)."""
    parts = []
    for k, rate in enumerate((5.0, 40.0, 5.0)):
        a = RequestArrays.poisson(rate, 60.0, 1500, 150, seed=k)
        parts.append(a.arrival_s + 60.0 * k)
    t = np.concatenate(parts)
    return RequestArrays(t, np.full(t.size, 1500), np.full(t.size, 150))


def test_interval_needs_size_each_interval(profile: PerformanceProfile, sla: SLA) -> None:
    req = _two_level()
    cfg = SimConfig(interval_s=60.0)
    needs = interval_needs(req, profile, sla, cfg)
    assert needs.shape == (3, 2)
    k = (req.arrival_s >= 60) & (req.arrival_s < 120)
    plan = size_replicas(
        Load(requests=float(k.sum()), isl=1500.0, osl=150.0, interval_s=60.0),
        profile,
        sla,
        EngineGpus(),
        Limits(),
        best_effort=True,
        ttft_quantile=DEFAULT_TTFT_QUANTILE,  # the planner's own sizing rule
    )
    assert tuple(needs[1]) == (plan.prefill, plan.decode)
    assert needs[1, 0] > needs[0, 0]


def test_empty_interval_needs_min_endpoint(profile: PerformanceProfile, sla: SLA) -> None:
    req = RequestArrays(np.array([0.0, 130.0]), np.array([500, 500]), np.array([50, 50]))
    needs = interval_needs(req, profile, sla, SimConfig(interval_s=60.0), Limits(min_endpoint=2))
    assert needs[1].tolist() == [2, 2]


def test_static_peak_takes_the_busiest_interval(profile: PerformanceProfile, sla: SLA) -> None:
    req = _two_level()
    cfg = SimConfig(interval_s=60.0)
    needs = interval_needs(req, profile, sla, cfg)
    policy = static_peak_policy(req, profile, sla, cfg)
    assert isinstance(policy, Policy)
    assert policy.initial() == (needs[:, 0].max(), needs[:, 1].max())
    obs = Observation(t_s=60.0, requests=0.0, isl=None, osl=None)
    assert policy.decide(obs) == (*policy.initial(), "static")


@pytest.mark.parametrize("startup_s", [0.0, 60.0, 90.0])
def test_oracle_orders_startup_ahead(
    profile: PerformanceProfile, sla: SLA, startup_s: float
) -> None:
    req = _two_level()
    cfg = SimConfig(interval_s=60.0, startup_s=startup_s)
    needs = interval_needs(req, profile, sla, cfg)
    oracle = OraclePolicy(req, profile, sla, cfg)
    ahead = int(np.ceil(startup_s / 60.0))
    assert oracle.initial() == tuple(needs[: ahead + 1].max(axis=0))
    for k in range(1, 5):
        p, d, reason = oracle.decide(Observation(t_s=60.0 * k, requests=1.0, isl=1.0, osl=1.0))
        window = needs[k : k + ahead + 1]
        expect = tuple(window.max(axis=0)) if len(window) else (1, 1)
        assert (p, d) == expect
        assert reason == "oracle-forecast"


def test_oracle_uses_fewer_gpu_hours_than_static_peak(
    profile: PerformanceProfile, sla: SLA
) -> None:
    req = _two_level()
    cfg = SimConfig(interval_s=60.0, startup_s=60.0)
    static = simulate(req, profile, sla, cfg, static_peak_policy(req, profile, sla, cfg))
    oracle = simulate(req, profile, sla, cfg, OraclePolicy(req, profile, sla, cfg))
    assert oracle.gpu_hours < static.gpu_hours
    assert oracle.completed == static.completed == len(req)
    # the oracle had the peak's replicas serving when the peak arrived
    peak = next(e for e in oracle.replica_timeline if e["t_s"] == 60.0)
    first = static.replica_timeline[0]
    assert (peak["ready_prefill"], peak["ready_decode"]) == (first["prefill"], first["decode"])


def test_static_policy_is_constant() -> None:
    policy = StaticPolicy(3, 2)
    assert policy.initial() == (3, 2)
    assert policy.decide(Observation(t_s=1.0, requests=None, isl=None, osl=None)) == (
        3,
        2,
        "static",
    )
