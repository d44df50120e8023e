"""The ``optimal`` policy's search, the unservable-request mask, and the ``dynamo`` policy."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.sla import SLA, Limits
from dynamo_plan.sim import RequestArrays, SimConfig, simulate
from dynamo_plan.sim.compare import PolicyOptions, make_policy, run_policies
from dynamo_plan.sim.engine import replay
from dynamo_plan.sim.optimal import (
    _fewest,
    cheapest_for_interval,
    search_config,
)
from dynamo_plan.sim.optimal_trace import OptimalPolicy
from dynamo_plan.sim.policies import StaticPolicy
from dynamo_plan.sim.result import sla_met, unservable

SLA_ = SLA(300.0, 20.0)
CONFIG = SimConfig(interval_s=10.0, startup_s=10.0)


def _requests(rate: float = 30.0, seconds: float = 60.0, seed: int = 1) -> RequestArrays:
    return RequestArrays.poisson(rate, seconds, isl=(500, 6000), osl=(50, 400), seed=seed)


@given(st.integers(1, 300), st.integers(1, 40))
def test_fewest_finds_the_smallest_passing_count(threshold: int, start: int) -> None:
    calls: list[int] = []

    def ok(n: int) -> bool:
        calls.append(n)
        return n >= threshold

    got = _fewest(ok, start, 4096)
    assert got == max(threshold, start)
    assert len(calls) <= 2 * 13 + 2  # exponential then binary search, not a scan


def test_interval_search_is_minimal(profile: PerformanceProfile) -> None:
    """The (P, D) found meets the allowance, and one engine fewer of either role does not."""
    req = _requests(seconds=10.0)
    search = search_config(CONFIG)
    cannot = unservable(req, profile, SLA_, CONFIG)
    p, d = cheapest_for_interval(req, profile, SLA_, search, cannot, 0.99, 1, Limits(), CONFIG)
    allowed = int(0.01 * np.count_nonzero(~cannot) + 1e-9)

    def misses(pp: int, dd: int) -> int:
        outcome = replay(req, profile, search, StaticPolicy(pp, dd))
        return int(np.count_nonzero(~sla_met(req, outcome, SLA_) & ~cannot))

    assert misses(p, d) <= allowed
    if p > 1:
        assert misses(p - 1, d) > allowed or misses(p - 1, d + 1) <= allowed
    if d > 1:
        assert misses(p, d - 1) > allowed


def test_optimal_meets_the_target_and_follows_a_load_step(profile: PerformanceProfile) -> None:
    """Quiet, then busy: ``optimal`` meets the target and costs less than the cheapest fixed
    deployment that meets it (which must be sized for the busy half all along)."""
    quiet, busy = _requests(rate=4.0, seconds=40.0), _requests(rate=40.0, seconds=40.0, seed=2)
    req = RequestArrays(
        np.concatenate([quiet.arrival_s, busy.arrival_s + 40.0]),
        np.concatenate([quiet.isl, busy.isl]),
        np.concatenate([quiet.osl, busy.osl]),
    )
    optimal = simulate(req, profile, SLA_, CONFIG, OptimalPolicy(req, profile, SLA_, CONFIG))
    assert optimal.policy == "optimal"
    assert optimal.sla_attainment >= 0.99
    cannot = unservable(req, profile, SLA_, CONFIG)
    fixed = cheapest_for_interval(
        req, profile, SLA_, search_config(CONFIG), cannot, 0.99, 1, Limits(), CONFIG
    )
    static = simulate(req, profile, SLA_, CONFIG, StaticPolicy(*fixed))
    assert static.sla_attainment >= 0.99
    assert optimal.gpu_hours < static.gpu_hours


def test_unservable_requests_are_left_out_of_attainment(profile: PerformanceProfile) -> None:
    """A prompt whose prefill alone takes longer than the TTFT target cannot be served within
    the SLA at any size: it is counted, not scaled for."""
    huge = int(profile.prefill.isl[-1])
    alone_ms = profile.expected_ttft(huge).value
    sla = SLA(alone_ms * 0.9, 30.0)
    req = RequestArrays(
        np.array([0.0, 1.0, 2.0, 3.0]), np.array([200, huge, 300, 250]), np.array([20, 20, 20, 20])
    )
    mask = unservable(req, profile, sla, CONFIG)
    assert mask.tolist() == [False, True, False, False]
    result = simulate(req, profile, sla, CONFIG, StaticPolicy(2, 2))
    assert result.unservable == 1
    assert result.sla_attainment == 1.0  # the three servable ones all met it
    assert result.to_json()["unservable"] == 1


def test_decode_too_slow_alone_is_unservable(profile: PerformanceProfile) -> None:
    floor = float(profile.decode.itl_ms.min())
    sla = SLA(10_000.0, floor * 0.5)
    req = RequestArrays(np.array([0.0]), np.array([100]), np.array([50]))
    assert unservable(req, profile, sla, CONFIG).tolist() == [True]


def test_dynamo_policy_is_dynamos_formula_with_arima(profile: PerformanceProfile) -> None:
    req = _requests()
    policy = make_policy("dynamo", req, profile, SLA_, CONFIG)
    assert policy.name == "dynamo"
    cfg = policy.config  # type: ignore[attr-defined]
    assert policy.planner.predictor_name == "arima"  # type: ignore[attr-defined]
    assert (cfg.prefill_queueing, cfg.scale_down_patience, cfg.startup_s) == (False, 0, 0.0)
    reactive = make_policy("reactive", req, profile, SLA_, CONFIG)
    assert dataclasses.replace(reactive.config, startup_s=0.0) == cfg  # type: ignore[attr-defined]


def test_former_oracle_name_is_accepted(profile: PerformanceProfile) -> None:
    req = _requests(seconds=20.0)
    assert make_policy("oracle", req, profile, SLA_, CONFIG).name == "oracle-forecast"


def test_attainment_planner_reads_only_the_past(profile: PerformanceProfile) -> None:
    """The attainment-sized planner draws its sample from requests that already arrived: the
    same trace with a different future gives the same first decisions."""
    req = _requests(seconds=60.0)
    cut = int(np.searchsorted(req.arrival_s, 30.0))
    later = RequestArrays(
        req.arrival_s, req.isl, np.concatenate([req.osl[:cut], np.full(len(req) - cut, 7)])
    )
    opts = PolicyOptions(sla_attainment=0.99)
    policies = [make_policy("planner", r, profile, SLA_, CONFIG, opts) for r in (req, later)]
    runs = [
        simulate(r, profile, SLA_, CONFIG, p) for r, p in zip((req, later), policies, strict=True)
    ]
    first = [[(e["prefill"], e["decode"]) for e in r.replica_timeline[:3]] for r in runs]
    assert first[0] == first[1]
    sized = [d.plan for d in policies[0].decisions[:2]]  # type: ignore[attr-defined]
    assert all(p is not None and "attainment 0.99: a sample of" in p.notes[-1] for p in sized)


@pytest.mark.parametrize("target", [0.9, 0.99])
def test_optimal_target_follows_sla_attainment(profile: PerformanceProfile, target: float) -> None:
    req = _requests(seconds=30.0)
    result = run_policies(
        ["optimal"], req, profile, SLA_, CONFIG, PolicyOptions(sla_attainment=target)
    )[0]
    assert result.sla_attainment >= target
