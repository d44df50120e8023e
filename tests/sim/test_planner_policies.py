"""The ``planner`` and ``reactive`` policies, policy construction by name and ``compare_json``."""

from __future__ import annotations

import numpy as np
import pytest

from dynamo_plan.core.correction import CorrectionConfig
from dynamo_plan.core.planner import Observation, PlannerConfig
from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.sla import SLA, EngineGpus, Limits, Load, size_replicas
from dynamo_plan.errors import InfeasibleSLAError, InputError
from dynamo_plan.sim import OraclePolicy, Policy, RequestArrays, SimConfig, StaticPolicy, simulate
from dynamo_plan.sim.compare import (
    POLICY_NAMES,
    PolicyOptions,
    check_feasible,
    compare_json,
    make_policy,
    run_policies,
)
from dynamo_plan.sim.optimal import optimal_start
from dynamo_plan.sim.policies_planner import (
    PlannerPolicy,
    reactive_policy,
    simulated_planner_config,
)


def _two_level() -> RequestArrays:
    """60 s at 5 req/s, 120 s at 40 req/s, 120 s at 5 req/s (ISL 1500, OSL 150)."""
    parts, t0 = [], 0.0
    for k, (rate, dur) in enumerate(((5.0, 60.0), (40.0, 120.0), (5.0, 120.0))):
        a = RequestArrays.poisson(rate, dur, 1500, 150, seed=k)
        parts.append(a.arrival_s + t0)
        t0 += dur
    t = np.concatenate(parts)
    return RequestArrays(t, np.full(t.size, 1500), np.full(t.size, 150))


def _plain_planner(profile: PerformanceProfile, sla: SLA, **kw: object) -> PlannerPolicy:
    """Constant predictor, no corrections: decisions follow size_replicas on the last interval."""
    base: dict[str, object] = {
        "lookahead": False,
        "scale_down_patience": 0,
        "load_quantile": None,
        "correction": CorrectionConfig(enabled=False),
    }
    base.update(kw)
    cfg = simulated_planner_config(sla, SimConfig(interval_s=60.0), **base)  # type: ignore[arg-type]
    return PlannerPolicy(cfg, profile, "constant")


def test_policies_satisfy_the_protocol(profile: PerformanceProfile, sla: SLA) -> None:
    req = _two_level()
    cfg = SimConfig(interval_s=30.0, startup_s=30.0)
    for name in POLICY_NAMES:
        policy = make_policy(name, req, profile, sla, cfg)
        assert isinstance(policy, Policy)
        assert policy.name == name


def test_planner_decides_what_size_replicas_gives(profile: PerformanceProfile, sla: SLA) -> None:
    policy = _plain_planner(profile, sla)
    for i, n in enumerate([300.0, 2400.0, 6000.0, 300.0]):
        p, d, _ = policy.decide(Observation(60.0 * (i + 1), n, 1500.0, 150.0))
        plan = size_replicas(
            Load(n, 1500.0, 150.0, 60.0),
            profile,
            sla,
            EngineGpus(),
            Limits(),
            ttft_quantile=policy.planner.config.ttft_quantile,
        )
        assert (p, d) == (plan.prefill, plan.decode)


def test_unknown_load_holds(profile: PerformanceProfile, sla: SLA) -> None:
    policy = _plain_planner(profile, sla)
    first = policy.decide(Observation(60.0, 6000.0, 1500.0, 150.0))
    held = policy.decide(Observation(120.0, None, None, None))
    assert held == (first[0], first[1], "hold_no_data")


def test_hysteresis_holds_scale_down(profile: PerformanceProfile, sla: SLA) -> None:
    eager = _plain_planner(profile, sla)
    patient = _plain_planner(profile, sla, scale_down_patience=2)
    loads = [6000.0, 300.0, 300.0, 300.0]
    a = [eager.decide(Observation(60.0 * (i + 1), n, 1500.0, 150.0)) for i, n in enumerate(loads)]
    b = [patient.decide(Observation(60.0 * (i + 1), n, 1500.0, 150.0)) for i, n in enumerate(loads)]
    assert a[1][:2] < a[0][:2]  # the eager one drops at once
    assert b[1][:2] == b[2][:2] == b[0][:2]  # held for 2 decisions
    assert b[3][:2] == a[3][:2]  # then down to the (constant) target
    assert b[1][2] == "hold_hysteresis"


def test_planner_looks_ahead_by_startup(profile: PerformanceProfile, sla: SLA) -> None:
    cfg = simulated_planner_config(sla, SimConfig(interval_s=60.0, startup_s=150.0))
    assert cfg.startup_s == 150.0 and cfg.lookahead_steps() == 4
    assert (
        simulated_planner_config(sla, SimConfig(startup_s=150.0), lookahead=False).lookahead_steps()
        == 1
    )


def test_reactive_is_dynamos_loop(profile: PerformanceProfile, sla: SLA) -> None:
    policy = reactive_policy(profile, sla, SimConfig(interval_s=60.0, startup_s=120.0))
    cfg: PlannerConfig = policy.config
    assert policy.name == "reactive"
    assert policy.planner.predictor_name == "constant"
    assert cfg.startup_s == 0.0 and cfg.lookahead_steps() == 1
    assert cfg.load_quantile is None and cfg.scale_down_patience == 0
    assert cfg.prefill_queueing is False


def test_adaptive_policies_start_where_optimal_starts(
    profile: PerformanceProfile, sla: SLA
) -> None:
    req = _two_level()
    cfg = SimConfig(interval_s=30.0, startup_s=30.0)
    optimal = make_policy("optimal", req, profile, sla, cfg)
    own = optimal_start(req, profile, sla, cfg)  # optimal's start, from the first intervals only
    start = optimal_start(req, profile, sla, cfg, lead=1)  # and the first decision's interval
    # the whole trace's repair may add engines to the first intervals, never remove any
    assert all(a <= b for a, b in zip(own, optimal.initial(), strict=True))
    assert all(a <= b for a, b in zip(own, start, strict=True))
    for name in ("planner", "reactive", "dynamo", "oracle-forecast"):
        assert make_policy(name, req, profile, sla, cfg).initial() == start
    # the formula-sized start of the oracle is no longer what they get
    assert OraclePolicy(req, profile, sla, cfg).start is None


def test_planner_follows_the_load_and_completes_everything(
    profile: PerformanceProfile, sla: SLA
) -> None:
    req = _two_level()
    cfg = SimConfig(interval_s=30.0, startup_s=30.0)
    policy = make_policy("planner", req, profile, sla, cfg)
    result = simulate(req, profile, sla, cfg, policy)
    assert result.completed == result.requests == len(req)
    stats = result.interval_stats
    busy = stats[(stats["t_s"] >= 90) & (stats["t_s"] < 180)]
    quiet = stats[stats["t_s"] < 30]
    assert busy["prefill"].max() > quiet["prefill"].max()
    assert isinstance(policy, PlannerPolicy)
    assert len(policy.decisions) == len(result.replica_timeline) - 1


def test_options_reach_the_planner(profile: PerformanceProfile, sla: SLA) -> None:
    req = _two_level()
    opts = PolicyOptions(
        predictor="kalman", load_quantile=0.9, scale_down_patience=3, limits=Limits(2, 40)
    )
    policy = make_policy("planner", req, profile, sla, SimConfig(), opts)
    assert isinstance(policy, PlannerPolicy)
    assert policy.planner.predictor_name == "kalman"
    assert policy.config.load_quantile == 0.9
    assert policy.config.scale_down_patience == 3
    assert policy.config.limits == Limits(2, 40)


def test_static_replicas_and_bad_names(profile: PerformanceProfile, sla: SLA) -> None:
    req = _two_level()
    opts = PolicyOptions(static_replicas=(2, 3))
    policy = make_policy("static", req, profile, sla, SimConfig(), opts)
    assert isinstance(policy, StaticPolicy) and policy.initial() == (2, 3)
    with pytest.raises(InputError, match="unknown policy"):
        make_policy("magic", req, profile, sla, SimConfig())
    with pytest.raises(InputError, match="static replicas"):
        make_policy("static", req, profile, sla, SimConfig(), PolicyOptions(static_replicas=(0, 1)))


def test_infeasible_itl_and_absurd_span(profile: PerformanceProfile) -> None:
    req = _two_level()
    with pytest.raises(InfeasibleSLAError):
        check_feasible(req, profile, SLA(300.0, 0.5), SimConfig())
    far = RequestArrays(np.array([0.0, 1e12]), np.array([100, 100]), np.array([10, 10]))
    with pytest.raises(InputError, match="intervals"):
        check_feasible(far, profile, SLA(300.0, 25.0), SimConfig())


def test_compare_json_ratio_to_the_oracle(profile: PerformanceProfile, sla: SLA) -> None:
    req = _two_level()
    cfg = SimConfig(interval_s=30.0, startup_s=30.0)
    results = run_policies(["oracle-forecast", "static", "reactive"], req, profile, sla, cfg)
    docs = compare_json(results)
    assert [d["policy"] for d in docs] == ["oracle-forecast", "static", "reactive"]
    oracle_gh = results[0].gpu_hours
    for doc, res in zip(docs, results, strict=True):
        assert doc["gpu_hours_vs_oracle"] == pytest.approx(res.gpu_hours / oracle_gh)
    no_oracle = compare_json(results[1:])
    assert all("gpu_hours_vs_oracle" not in d for d in no_oracle)
