"""The engine pools' bookkeeping (:mod:`dynamo_plan.sim.engine_pools`): ordering, readiness,
scale-down (cancel newest starting, drain least loaded), the serving decode engines' reserved
tokens, GPU-hours; and the engine's run with the garbage collector paused and restored."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.sla import SLA
from dynamo_plan.sim import RequestArrays, SimConfig, StaticPolicy, simulate
from dynamo_plan.sim.engine_pools import READY, EnginePools
from dynamo_plan.sim.engine_records import Req
from dynamo_plan.sim.replicas import DRAINING, GONE, SERVING, STARTING, Decode, Prefill


def _pools(profile: PerformanceProfile, config: SimConfig) -> tuple[EnginePools, list[Req]]:
    finished: list[Req] = []
    pools = EnginePools(config, profile, lambda r, t: finished.append(r))
    return pools, finished


def test_engines_ordered_at_start_serve_at_once_later_ones_after_startup(
    profile: PerformanceProfile,
) -> None:
    pools, _ = _pools(profile, SimConfig(startup_s=30.0, prefill_gpus=2))
    pools._order("prefill", 0.0)
    pools._order("decode", 0.0)
    pools._record(0.0, 1, 1, "initial")
    assert [e.state for e in pools.prefills + pools.decodes] == [SERVING, SERVING]
    assert pools.pf_idle == [(pools.prefills[0].rank, 0, pools.prefills[0])]
    assert pools.dec_serving == pools.decodes and pools.dec_res == [0]
    later = pools._order("decode", 10.0)
    assert isinstance(later, Decode)
    assert later.state == STARTING and later.ready_t == 40.0
    t, _, kind, obj, _ = pools.heap[0]
    assert (t, kind, obj) == (40.0, READY, later)
    pools._ready(later, 40.0)
    assert later.state == SERVING and later.slot == 1 and pools.dec_res == [0, 0]
    # GPU-hours: 2 GPUs × 100 s + 1 × 100 s + 1 × 90 s, in hours
    assert pools.gpu_hours(100.0) == pytest.approx((200.0 + 100.0 + 90.0) / 3600.0)
    assert pools.timeline[0]["ready_prefill"] == 1 and pools.timeline[0]["ready_decode"] == 1


def test_scale_down_cancels_the_newest_starting_then_drains_the_least_loaded(
    profile: PerformanceProfile,
) -> None:
    pools, _ = _pools(profile, SimConfig(startup_s=30.0))
    for _ in range(3):
        pools._order("decode", 0.0)
    pools._record(0.0, 0, 3, "initial")
    a, b, c = pools.decodes
    a.reserved, b.reserved, c.reserved = 500, 100, 300
    a.n, b.n, c.n = 1, 1, 1
    pools.dec_res[:] = [500, 100, 300]
    s1 = pools._order("decode", 5.0)
    s2 = pools._order("decode", 6.0)
    pools._scale("decode", 2, 10.0)  # 5 live → 2: cancel s2, s1; drain the least reserved (b)
    assert (s1.state, s2.state) == (GONE, GONE) and s1.end_t == s2.end_t == 10.0
    assert b.state == DRAINING and b.slot == -1
    assert pools.dec_serving == [a, c] and [a.slot, c.slot] == [0, 1]
    assert pools.dec_res == [500, 300]
    # a drained engine that holds nothing is gone at once; an idle prefill engine too
    c.n = 0  # the less reserved of the two, now empty
    pools._scale("decode", 1, 20.0)
    assert c.state == GONE and c.end_t == 20.0 and pools.dec_serving == [a]
    p = pools._order("prefill", 20.0)
    pools._ready(p, 50.0)
    assert isinstance(p, Prefill) and pools.pf_idle
    pools._scale("prefill", 0, 60.0)
    assert p.state == GONE and p.end_t == 60.0 and not pools.pf_idle
    assert all(isinstance(e, Decode) for e in pools.decodes)


def test_run_pauses_the_collector_and_restores_it(
    profile: PerformanceProfile, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The collector is off during the run, back on after (and left off if it was off)."""
    from dynamo_plan.sim import engine as engine_mod

    seen: list[bool] = []
    original = engine_mod._Sim._tick

    def tick(self: engine_mod._Sim, t: float) -> None:
        seen.append(gc.isenabled())
        original(self, t)

    monkeypatch.setattr(engine_mod._Sim, "_tick", tick)
    reqs = RequestArrays(np.array([0.0, 1.0, 2.5]), np.array([100, 200, 300]), np.array([5, 6, 7]))
    sla, cfg = SLA(1000.0, 50.0), SimConfig(interval_s=1.0, startup_s=1.0)
    assert gc.isenabled()
    res = simulate(reqs, profile, sla, cfg, StaticPolicy(1, 1))
    assert res.completed == 3 and seen and not any(seen) and gc.isenabled()
    gc.disable()
    try:
        simulate(reqs, profile, sla, cfg, StaticPolicy(1, 1))
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_cycles_a_policy_leaves_are_collected_during_the_run(profile: PerformanceProfile) -> None:
    """With the collector paused, the young generation is still collected every
    ``_GC_EVERY_TICKS`` boundaries: a policy that leaves a reference cycle at every tick does not
    keep them all until the run ends."""
    import weakref

    from dynamo_plan.sim import engine as engine_mod

    class Node:
        def __init__(self) -> None:
            self.me = self  # a cycle: only the collector frees it

    freed = [0]
    alive_at_tick: list[int] = []
    made = [0]

    class Leaky(StaticPolicy):
        def decide(self, obs):  # type: ignore[no-untyped-def]
            node = Node()
            weakref.finalize(node, lambda: freed.__setitem__(0, freed[0] + 1))
            made[0] += 1
            alive_at_tick.append(made[0] - freed[0])
            return super().decide(obs)

    every = engine_mod._GC_EVERY_TICKS
    ticks = 2 * every + 10
    reqs = RequestArrays(np.array([0.0, float(ticks)]), np.array([100, 100]), np.array([2, 2]))
    cfg = SimConfig(interval_s=1.0, startup_s=1.0)
    res = simulate(reqs, profile, SLA(1000.0, 50.0), cfg, Leaky(1, 1))
    assert res.completed == 2 and len(alive_at_tick) >= ticks
    assert max(alive_at_tick) <= every + 1  # never more than one period's cycles alive
    assert alive_at_tick[every + 5] < alive_at_tick[every - 1]  # a collection happened between
