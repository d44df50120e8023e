"""The mock cluster: token counts, replica changes, draining, start-up, speedup, wake-up lag.

Timing is checked exactly, on a virtual clock (:mod:`tests.sim.mocker.virtual_time`): the cluster
reads ``loop.time()`` and sleeps to the deadlines its model sets, so on a virtual clock every
token comes at the time the model intends, whatever the load on the test machine; a fixed
wake-up lag per timer stands in for a busy machine. One real-time run checks only what holds on
any machine: every token comes, in order, and never before its prompt's prefill time.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.sim.config import SimConfig
from dynamo_plan.sim.latency import DecodeLatency, PrefillLatency
from dynamo_plan.sim.mocker.cluster import MockCluster, MockRequest
from tests.sim.mocker.virtual_time import run_virtual


async def _collect(r: MockRequest) -> list[float]:
    return [t async for t in r.tokens()]


def _itl(times: list[float]) -> float:
    return (times[-1] - times[0]) / (len(times) - 1)


def _mean_itl(outs: list[list[float]]) -> float:
    return sum(_itl(o) for o in outs) / len(outs)


async def _load(c: MockCluster, n: int, isl: int, osl: int) -> list[list[float]]:
    reqs = [c.submit(isl, osl) for _ in range(n)]
    return list(await asyncio.gather(*(_collect(r) for r in reqs)))


def run(coro: Any) -> Any:
    """Run on a virtual clock: the times seen are exactly the model's."""
    return run_virtual(coro)


def test_every_request_gets_osl_tokens_in_real_time(profile: PerformanceProfile) -> None:
    speedup = 10.0
    earliest = PrefillLatency(profile).batch_s(200) / speedup  # a batch holds >= one prompt

    async def main() -> None:
        c = MockCluster(profile, prefill=2, decode=2, speedup=speedup)
        c.start()
        osls = [1, 2, 5, 30]
        reqs = [c.submit(200, o) for o in osls]
        outs = await asyncio.gather(*(_collect(r) for r in reqs))
        assert [len(o) for o in outs] == osls
        assert all(o == sorted(o) for o in outs)
        # a timer never fires early (asyncio rounds the wait up); late is the machine's business
        assert all(o[0] - r.arrival >= earliest - 1e-6 for o, r in zip(outs, reqs, strict=True))
        assert c.inflight == 0
        assert c.decode_load() == [(0, 0.0), (0, 0.0)]
        await c.close()

    asyncio.run(main())


def test_single_request_follows_profile(profile: PerformanceProfile) -> None:
    """Concurrency 1: TTFT = prefill(isl), ITL = step(isl + osl/2) + KV transfer / (osl - 1)."""
    isl, osl = 4000, 40
    cfg = SimConfig(startup_s=0.0)

    async def main() -> tuple[float, float]:
        c = MockCluster(profile, cfg)
        c.start()
        r = c.submit(isl, osl)
        times = await _collect(r)
        await c.close()
        return times[0] - r.arrival, _itl(times)

    ttft, itl = run(main())
    want_ttft = PrefillLatency(profile).batch_s(isl)
    want_itl = DecodeLatency(profile).step_s(isl + osl / 2, 1) + cfg.kv_transfer_s(isl) / (osl - 1)
    assert ttft == pytest.approx(want_ttft, rel=1e-9)
    assert itl == pytest.approx(want_itl, rel=1e-9)


def test_speedup_keeps_timing_proportional(profile: PerformanceProfile) -> None:
    async def one(speedup: float) -> tuple[float, float]:
        c = MockCluster(profile, speedup=speedup)
        c.start()
        r = c.submit(8000, 30)
        times = await _collect(r)
        await c.close()
        return times[0] - r.arrival, times[-1] - r.arrival

    slow, fast = run(one(1.0)), run(one(4.0))
    assert slow[0] == pytest.approx(PrefillLatency(profile).batch_s(8000), rel=1e-9)
    for s, f in zip(slow, fast, strict=True):  # TTFT, then the last token's time
        assert f == pytest.approx(s / 4.0, rel=1e-9)


def _lagged_tokens(profile: PerformanceProfile, lag: float, isl: int, osl: int) -> list[float]:
    """Token times (s from arrival) of one request, every timer firing ``lag`` s late."""

    async def main() -> list[float]:
        c = MockCluster(profile)
        c.start()
        r = c.submit(isl, osl)
        times = await _collect(r)
        await c.close()
        return [t - r.arrival for t in times]

    return run_virtual(main(), lag=lag)


def test_wake_up_lag_does_not_accumulate(profile: PerformanceProfile) -> None:
    """Steps end at absolute deadlines: with every wake-up ``lag`` late (less than a step), each
    decode token is ``lag`` late, never more; relative sleeps would make every gap step + lag."""
    isl, osl = 4000, 30
    step = DecodeLatency(profile).step_s(isl + osl / 2, 1)
    lag = step / 4
    times = _lagged_tokens(profile, lag, isl, osl)
    assert times[0] == pytest.approx(PrefillLatency(profile).batch_s(isl) + lag, rel=1e-9)
    gaps = [b - a for a, b in itertools.pairwise(times[1:])]
    assert len(gaps) == osl - 2
    assert gaps == pytest.approx([step] * len(gaps), rel=1e-9)
    on_time = _lagged_tokens(profile, 0.0, isl, osl)
    # first decode token: the prefill's, the KV transfer's and its own wake-up were each late
    assert times[1] - on_time[1] == pytest.approx(3 * lag, rel=1e-9)
    assert times[-1] - on_time[-1] == pytest.approx(3 * lag, rel=1e-9)


def test_a_stall_longer_than_a_step_restarts_the_step_clock(profile: PerformanceProfile) -> None:
    """A wake-up later than a whole step: the next step starts from now (gaps step + lag), no
    burst of catch-up tokens to make up for the steps missed."""
    isl, osl = 4000, 20
    step = DecodeLatency(profile).step_s(isl + osl / 2, 1)
    lag = 2 * step
    times = _lagged_tokens(profile, lag, isl, osl)
    gaps = [b - a for a, b in itertools.pairwise(times[1:])]
    assert gaps == pytest.approx([step + lag] * (osl - 2), rel=1e-9)


def test_more_decode_engines_lower_itl_under_load(profile: PerformanceProfile) -> None:
    n, isl, osl = 48, 1000, 40
    lat = DecodeLatency(profile)
    ctx = isl + osl / 2
    model_ratio = lat.step_s(12 * ctx, 12) / lat.step_s(n * ctx, n)
    assert model_ratio < 0.7  # the profile makes a 4× wider pool clearly faster

    async def main() -> tuple[float, float, tuple[int, int]]:
        c = MockCluster(profile, prefill=4, decode=1, speedup=2.0)
        c.start()
        before = await _load(c, n, isl, osl)
        c.set_replicas(4, 4)
        scaled = c.serving()
        after = await _load(c, n, isl, osl)
        await c.close()
        return _mean_itl(before), _mean_itl(after), scaled

    one_engine, four_engines, serving = run(main())
    assert serving == (4, 4)
    # exact times: the ratio is the model's, but for the ramp-up and the tail of each load
    assert four_engines / one_engine == pytest.approx(model_ratio, rel=0.05)


def test_startup_and_scale_down(profile: PerformanceProfile) -> None:
    async def main() -> None:
        c = MockCluster(profile, SimConfig(startup_s=0.2), prefill=1, decode=1)
        c.start()
        c.set_replicas(3, 2)
        p, d = c.counts()
        assert (p.starting, d.starting) == (2, 1)
        assert c.serving() == (1, 1)
        await asyncio.sleep(0.3)
        assert c.serving() == (3, 2)
        # starting engines are cancelled first, then serving ones drain
        c.set_replicas(4, 2)
        c.set_replicas(1, 2)
        p, d = c.counts()
        assert (p.starting, p.serving, p.draining) == (0, 1, 2)
        # a draining decode engine finishes what it holds
        r = c.submit(100, 50)
        while r._engine is None:
            await asyncio.sleep(0.005)
        c.set_replicas(1, 0)
        assert c.serving() == (1, 0)
        assert len(await _collect(r)) == 50
        await asyncio.sleep(0.01)
        assert c.counts()[1].draining == 0 and c.decode_load() == []
        await c.close()

    run(main())


def test_cancel_frees_kv_and_batch_slot(profile: PerformanceProfile) -> None:
    async def main() -> None:
        c = MockCluster(profile, SimConfig(startup_s=0.0, max_decode_batch=1), speedup=4.0)
        c.start()
        long = c.submit(100, 100_000)
        waiting = c.submit(100, 5)
        got = 0
        async for _ in long.tokens():
            got += 1
            if got == 3:
                break
        assert c.decode_load()[0][0] == 1
        long.cancel()
        assert c.inflight == 1
        assert len(await _collect(waiting)) == 5  # the slot went to the waiting request
        assert c.decode_load() == [(0, 0.0)]
        await c.close()

    run(asyncio.wait_for(main(), 10))
