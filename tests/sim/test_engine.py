"""Simulator invariants: conservation, Little's law, determinism, draining, start-up delay,
KV capacity, out-of-profile accounting, GPU-hours."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.sla import SLA
from dynamo_plan.errors import InputError
from dynamo_plan.sim import RequestArrays, SimConfig, StaticPolicy, simulate
from dynamo_plan.sim import engine as engine_mod
from tests.sim.conftest import ScriptPolicy


def _poisson(rate: float, duration: float, seed: int = 1) -> RequestArrays:
    return RequestArrays.poisson(rate, duration, (100, 3000), (1, 400), seed=seed)


def test_every_request_completes_exactly_once(
    profile: PerformanceProfile, sla: SLA, monkeypatch: pytest.MonkeyPatch
) -> None:
    req = _poisson(30, 60)
    calls: list[int] = []
    original = engine_mod._Sim._finish

    def counting(self: engine_mod._Sim, r: engine_mod.Req, t: float) -> None:
        calls.append(r[engine_mod.RID])
        original(self, r, t)

    monkeypatch.setattr(engine_mod._Sim, "_finish", counting)
    policy = ScriptPolicy((2, 2), {1: (1, 1), 3: (3, 2)})
    res = simulate(
        req, profile, sla, SimConfig(interval_s=10, startup_s=15), policy, per_request=True
    )
    assert sorted(calls) == list(range(len(req)))
    assert res.completed == res.requests == len(req)
    pr = res.per_request
    assert np.all(np.isfinite(pr["finish_s"]))
    assert np.all(pr["finish_s"] >= pr["first_token_s"])
    assert np.all(pr["first_token_s"] > pr["arrival_s"])
    decoded = pr["osl"] > 1
    assert np.all(pr.loc[decoded, "decode_start_s"] > pr.loc[decoded, "first_token_s"])
    assert np.all(pr.loc[~decoded, "decode_engine"] == -1)
    # tokens: one from prefill, osl - 1 decode steps at ITL apart on average
    assert res.output_tokens == int(req.osl.sum())
    span = (pr["finish_s"] - pr["first_token_s"]) * 1000.0
    np.testing.assert_allclose(
        (pr.loc[decoded, "itl_ms"] * (pr.loc[decoded, "osl"] - 1)), span[decoded], rtol=1e-9
    )


def test_littles_law_on_steady_poisson_load(profile: PerformanceProfile, sla: SLA) -> None:
    req = _poisson(15, 400, seed=7)
    res = simulate(req, profile, sla, SimConfig(), StaticPolicy(2, 2), per_request=True)
    pr = res.per_request
    arrival = pr["arrival_s"].to_numpy()
    finish = pr["finish_s"].to_numpy()
    lo, hi = 50.0, 350.0
    grid = np.linspace(lo, hi, 6001)
    in_system = (arrival[None, :] <= grid[:, None]) & (grid[:, None] < finish[None, :])
    mean_n = in_system.sum(axis=1).mean()
    inside = (arrival >= lo) & (arrival < hi)
    lam = inside.sum() / (hi - lo)
    w = (finish - arrival)[inside].mean()
    assert mean_n == pytest.approx(lam * w, rel=0.05)


def test_deterministic_under_a_seed(profile: PerformanceProfile, sla: SLA) -> None:
    req = _poisson(25, 60)
    cfg = SimConfig(interval_s=10, startup_s=10, seed=3)
    runs = [
        simulate(
            req, profile, sla, cfg, ScriptPolicy((1, 1), {1: (3, 3), 4: (2, 1)}), per_request=True
        )
        for _ in range(2)
    ]
    pd.testing.assert_frame_equal(runs[0].per_request, runs[1].per_request)
    pd.testing.assert_frame_equal(runs[0].interval_stats, runs[1].interval_stats)
    a, b = (dict(r.to_json(), wall_s=0) for r in runs)
    assert a == b


def test_scale_down_drains_without_loss(profile: PerformanceProfile, sla: SLA) -> None:
    req = _poisson(20, 60, seed=5)
    t_drain = 20.0
    cfg = SimConfig(interval_s=10, startup_s=10)
    res = simulate(req, profile, sla, cfg, ScriptPolicy((3, 3), {2: (1, 1)}), per_request=True)
    assert res.completed == len(req)
    pr = res.per_request
    # after the drain order nothing new reaches a drained engine
    late = pr[pr["arrival_s"] > t_drain]
    assert late["prefill_engine"].nunique() == 1
    late_decode = pr[pr["decode_start_s"] > t_drain + 1.0]
    assert late_decode["decode_engine"].nunique() == 1
    # drained engines were busy right up to the order, and finished what they held after it
    drained = set(range(3)) - set(late_decode["decode_engine"])
    held = pr[pr["decode_engine"].isin(drained) & (pr["finish_s"] > t_drain)]
    assert len(held) > 0
    assert res.replica_timeline[2]["ready_decode"] == 1
    # paid until drained: more than stopping at the order, less than keeping them to the end
    end = res.sim_end_s
    assert (2 * end + 4 * t_drain) / 3600 < res.gpu_hours  # 1+1 kept, 2+2 drained
    assert res.gpu_hours < 6 * end / 3600


def test_startup_delay_respected_and_paid_from_order(profile: PerformanceProfile, sla: SLA) -> None:
    req = _poisson(30, 90, seed=2)
    cfg = SimConfig(interval_s=10, startup_s=25)
    res = simulate(req, profile, sla, cfg, ScriptPolicy((1, 1), {1: (2, 2)}), per_request=True)
    pr = res.per_request
    ready = 10.0 + 25.0
    new_prefill = pr[pr["prefill_engine"] == 1]
    new_decode = pr[pr["decode_engine"] == 1]
    assert len(new_prefill) > 0 and len(new_decode) > 0
    assert new_prefill["first_token_s"].min() > ready
    assert new_decode["decode_start_s"].min() >= ready
    assert [e["ready_prefill"] for e in res.replica_timeline[:5]] == [1, 1, 1, 1, 2]
    end = res.sim_end_s
    assert res.gpu_hours == pytest.approx((2 * end + 2 * (end - 10.0)) / 3600, rel=1e-12)


def test_cancelled_orders_are_paid_until_cancelled(profile: PerformanceProfile, sla: SLA) -> None:
    req = _poisson(5, 60, seed=4)
    cfg = SimConfig(interval_s=10, startup_s=100)
    res = simulate(
        req, profile, sla, cfg, ScriptPolicy((1, 1), {1: (3, 1), 2: (1, 1)}), per_request=True
    )
    assert set(res.per_request["prefill_engine"]) == {0}
    end = res.sim_end_s
    assert res.gpu_hours == pytest.approx((2 * end + 2 * 10.0) / 3600, rel=1e-12)


def test_kv_capacity_bounds_each_decode_engine(profile: PerformanceProfile, sla: SLA) -> None:
    small = dataclasses.replace(profile, max_kv_tokens=12_000)
    req = RequestArrays.poisson(20, 30, (500, 1500), (50, 200), seed=9)
    res = simulate(req, small, sla, SimConfig(), StaticPolicy(2, 2), per_request=True)
    assert res.completed == len(req)
    pr = res.per_request
    for _, group in pr.groupby("decode_engine"):
        need = (group["isl"] + group["osl"]).to_numpy()
        start = group["decode_start_s"].to_numpy()
        end = group["finish_s"].to_numpy()
        for t in start:
            held = need[(start <= t) & (t < end)].sum()
            assert held <= 12_000
    # the admission queue was used: some requests waited well past their KV transfer
    assert ((pr["decode_start_s"] - pr["first_token_s"]) > 0.5).any()


def test_max_decode_batch_caps_concurrency(profile: PerformanceProfile, sla: SLA) -> None:
    req = RequestArrays.poisson(40, 20, (100, 500), (50, 300), seed=3)
    res = simulate(
        req, profile, sla, SimConfig(max_decode_batch=4), StaticPolicy(2, 1), per_request=True
    )
    pr = res.per_request
    start, end = pr["decode_start_s"].to_numpy(), pr["finish_s"].to_numpy()
    assert max(((start <= t) & (t < end)).sum() for t in start) == 4


def test_out_of_profile_requests_counted_and_served(profile: PerformanceProfile, sla: SLA) -> None:
    hi = int(profile.prefill.isl[-1])
    isl = np.array([500, hi + 5000, 800, 2 * hi])
    req = RequestArrays(np.arange(4) * 0.5, isl, np.array([10, 10, 30_000, 2]))
    res = simulate(req, profile, sla, SimConfig(), StaticPolicy(1, 1), per_request=True)
    assert res.out_of_profile_requests == 3  # long prompts, and a context beyond the surface
    assert res.completed == 4
    long_ttft = res.per_request["ttft_ms"].iloc[3]
    assert long_ttft >= 2 * profile.expected_ttft(hi).value * (1 - 1e-9)


def test_observations_report_the_last_interval(profile: PerformanceProfile, sla: SLA) -> None:
    arrival = np.array([1.0, 2.0, 3.0, 25.0, 35.0])
    req = RequestArrays(arrival, np.full(5, 1000), np.full(5, 50))
    policy = ScriptPolicy((1, 1))
    simulate(req, profile, sla, SimConfig(interval_s=10), policy)
    first, second, third = policy.seen[:3]
    assert (first.t_s, first.requests, first.isl, first.osl) == (10.0, 3.0, 1000.0, 50.0)
    assert first.ttft_ms is not None and first.itl_ms is not None
    assert first.current_prefill == 1 and first.current_decode == 1
    assert second.requests == 0.0 and second.isl is None and second.ttft_ms is None
    assert third.requests == 1.0


def test_no_decode_engine_stops_with_requests_left(profile: PerformanceProfile, sla: SLA) -> None:
    req = _poisson(5, 20)
    res = simulate(req, profile, sla, SimConfig(interval_s=10), StaticPolicy(1, 0))
    assert res.completed == int((req.osl <= 1).sum())
    assert res.sla_attainment < 1.0
    assert math.isfinite(res.gpu_hours)


def test_simulate_rejects_no_requests(profile: PerformanceProfile, sla: SLA) -> None:
    empty = RequestArrays(np.array([]), np.array([], dtype=np.int64), np.array([], dtype=np.int64))
    with pytest.raises(InputError, match="no requests"):
        simulate(empty, profile, sla, SimConfig(), StaticPolicy(1, 1))


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 1000),
    rate=st.floats(2.0, 40.0),
    startup=st.sampled_from([0.0, 5.0, 12.0, 30.0]),
    script=st.lists(st.tuples(st.integers(1, 3), st.integers(1, 3)), min_size=1, max_size=6),
)
def test_random_scaling_keeps_every_request(
    profile: PerformanceProfile,
    sla: SLA,
    seed: int,
    rate: float,
    startup: float,
    script: list[tuple[int, int]],
) -> None:
    req = RequestArrays.poisson(rate, 40.0, (50, 4000), (1, 200), seed=seed)
    policy = ScriptPolicy(script[0], dict(enumerate(script[1:], start=1)))
    cfg = SimConfig(interval_s=5.0, startup_s=startup, seed=seed)
    res = simulate(req, profile, sla, cfg, policy, per_request=True)
    pr = res.per_request
    assert res.completed == len(req)
    assert np.all(pr["first_token_s"] > pr["arrival_s"])
    decoded = pr["osl"] > 1
    assert np.all(pr.loc[decoded, "decode_start_s"] > pr.loc[decoded, "first_token_s"])
    assert np.all(pr["finish_s"] >= pr["first_token_s"])
    assert res.sim_end_s == pr["finish_s"].max()
    # never more GPUs than ever ordered, never less than the replicas serving at the start
    ordered = 3 * 2 * (len(script) + 1)
    assert sum(script[0]) * min(5.0, res.sim_end_s) / 3600 <= res.gpu_hours
    assert res.gpu_hours <= ordered * res.sim_end_s / 3600


def test_progress_reports_fraction_replayed(profile: PerformanceProfile, sla: SLA) -> None:
    seen: list[float] = []
    req = _poisson(10, 60)
    simulate(req, profile, sla, SimConfig(interval_s=10), StaticPolicy(1, 1), progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 1.0 and 0.0 < seen[0] < 1.0


def test_seed_picks_among_idle_engines(profile: PerformanceProfile, sla: SLA) -> None:
    req = RequestArrays.poisson(0.5, 60, 500, 20, seed=0)  # always idle: ties every time
    favourites = set()
    for seed in range(6):
        res = simulate(
            req, profile, sla, SimConfig(seed=seed), StaticPolicy(4, 1), per_request=True
        )
        engines = res.per_request["prefill_engine"]
        top = engines.value_counts()  # the lowest-ranked idle engine takes (nearly) every request
        assert top.iloc[0] >= 0.9 * len(req)
        favourites.add(int(top.index[0]))
    assert len(favourites) > 1
