"""The shared cluster model: its rules, and the contract both of its players keep.

Contract: on small fixed-replica scenarios the discrete-event engine
(:func:`dynamo_plan.sim.simulate`) and the mock cluster (driven on a virtual clock, so its times
are exactly the model's) give every request the TTFT and ITL of the naive per-step reference
(``tests/sim/reference.py``) — within 1 %, the reference looking latencies up through the
profile's own surface rather than the simulator's scalar copy — and the same times as each other
to 1e-9 (both use the same latencies, so they agree exactly but for float rounding). With
scaling (no reference for it), the engine and the mock cluster, given the same replica script,
still agree request by request.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from dataclasses import dataclass

import numpy as np
import pytest

from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.sla import SLA
from dynamo_plan.sim import RequestArrays, SimConfig, StaticPolicy, simulate
from dynamo_plan.sim.cluster_model import (
    choose_decode,
    decode_context,
    drain_key,
    kv_need,
    kv_transfer_s,
    scale_plan,
    take_prefill_batch,
)
from dynamo_plan.sim.mocker.cluster import MockCluster, MockRequest
from tests.sim.conftest import ScriptPolicy
from tests.sim.mocker.virtual_time import run_virtual
from tests.sim.reference import reference_simulate

# --- the rules ------------------------------------------------------------------------------


@dataclass
class _Req:
    isl: int


@dataclass
class _Eng:
    reserved: float = 0.0
    held: int = 0
    order_t: float = 0.0
    rank: float = 0.0
    starting: bool = False


def test_prefill_batch_fills_the_budget_in_fifo_order() -> None:
    q = deque(_Req(i) for i in (3000, 5000, 9000, 100))
    batch, tokens = take_prefill_batch(q, 16384)
    # 3000 + 5000 fit, 9000 does not: the head-of-line stops the batch (100 waits behind it)
    assert [r.isl for r in batch] == [3000, 5000] and tokens == 8000
    assert [r.isl for r in q] == [9000, 100]
    long = deque([_Req(20000), _Req(10)])
    batch, tokens = take_prefill_batch(long, 16384)
    assert [r.isl for r in batch] == [20000] and tokens == 20000  # a longer prompt runs alone


@pytest.mark.parametrize("max_batch", [None, 4])
def test_decode_admission_least_reserved_that_fits(max_batch: int | None) -> None:
    a = _Eng(reserved=900, held=3, rank=0.1)
    b = _Eng(reserved=500, held=3, rank=0.9)
    c = _Eng(reserved=500, held=2, rank=0.5)
    assert choose_decode([a, b, c], 100, 1000, max_batch) is c  # fewest reserved, then rank
    assert choose_decode([a, b, c], 600, 1000, max_batch) is None  # fits nowhere: waits
    empty = _Eng(rank=0.99)
    # a request larger than the whole cache runs alone on an empty engine
    assert choose_decode([a, empty], 5000, 1000, max_batch) is empty
    assert choose_decode([], 1, 1000, max_batch) is None


def test_prefill_batch_reads_prompts_through_a_key() -> None:
    # the engine's requests are lists: the same batch through an item getter
    q = deque([[3000], [5000], [9000], [100]])
    batch, tokens = take_prefill_batch(q, 16384, lambda r: r[0])
    assert batch == [[3000], [5000]] and tokens == 8000 and list(q) == [[9000], [100]]


@pytest.mark.parametrize("seed", range(5))
def test_decode_admission_with_a_reserved_list_is_the_same_choice(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(200):
        n = int(rng.integers(1, 8))
        # few distinct loads, so equally loaded engines (ties broken by rank) are common
        engines = [
            _Eng(
                reserved=float(rng.integers(0, 4) * 250),
                held=int(rng.integers(0, 3)),
                rank=float(rng.random()),
            )
            for _ in range(n)
        ]
        need = float(rng.integers(1, 1200))
        reserved = [e.reserved for e in engines]
        want = choose_decode(engines, need, 1000, None)
        assert choose_decode(engines, need, 1000, None, reserved) is want
        fits = [e for e in engines if e.reserved + need <= 1000 or not e.held]
        low = min(engines, key=lambda e: (e.reserved, e.rank))
        assert want is (low if low in fits else None)


def test_kv_need_and_context_of_arrays_equal_the_scalars() -> None:
    rng = np.random.default_rng(1)
    isl = rng.integers(1, 200_000, 1000)
    osl = rng.integers(1, 5000, 1000)
    need, ctx = kv_need(isl, osl), decode_context(isl, osl)
    for i, o, a, b in zip(isl.tolist(), osl.tolist(), need.tolist(), ctx.tolist(), strict=True):
        assert kv_need(i, o) == a and decode_context(i, o) == b


def test_decode_admission_respects_the_batch_limit() -> None:
    full = _Eng(reserved=10, held=4, rank=0.0)
    other = _Eng(reserved=800, held=1, rank=0.5)
    assert choose_decode([full, other], 100, 1000, 4) is other
    assert choose_decode([full, other], 100, 1000, None) is full


def test_scale_plan_orders_cancels_newest_then_drains_least_loaded() -> None:
    s1 = _Eng(reserved=300, held=2, order_t=0.0, rank=0.2)
    s2 = _Eng(reserved=100, held=1, order_t=0.0, rank=0.7)
    s3 = _Eng(reserved=100, held=1, order_t=5.0, rank=0.9)
    st1 = _Eng(order_t=10.0, starting=True)
    st2 = _Eng(order_t=20.0, starting=True)
    live = [s1, s2, s3, st1, st2]
    up = scale_plan(live, 7, lambda e: e.starting)
    assert (up.order, up.cancel, up.drain) == (2, [], [])
    down = scale_plan(live, 1, lambda e: e.starting)
    assert down.order == 0
    assert down.cancel == [st2, st1]  # newest first
    assert down.drain == [s3, s2]  # equal load: the newer one first
    assert scale_plan(live, -3, lambda e: e.starting).drain == [s3, s2, s1]
    assert sorted([s1, s2, s3], key=drain_key) == [s3, s2, s1]


def test_kv_transfer_matches_the_config_scalar_and_array() -> None:
    cfg = SimConfig(kv_transfer_latency_ms=2.0, kv_transfer_gbps=100.0)
    isl = np.array([0.0, 1000.0, 8000.0])
    got = kv_transfer_s(cfg, isl)
    assert isinstance(got, np.ndarray)
    np.testing.assert_array_equal(got, [cfg.kv_transfer_s(x) for x in isl])
    assert kv_transfer_s(cfg, 1000.0) == cfg.kv_transfer_s(1000.0)


# --- the contract -----------------------------------------------------------------------------

CASES = [
    # rate/s, seconds, prefill, decode, max_kv_tokens (None = profile's), max_decode_batch
    (20.0, 6.0, 1, 1, None, None),
    (30.0, 5.0, 2, 2, None, 6),
    (4.0, 12.0, 1, 2, None, None),
    (15.0, 6.0, 2, 2, 12_000, None),  # KV-bound: the admission queue fills (head-of-line)
]


async def _collect(r: MockRequest) -> None:
    async for _ in r.token_batches():
        pass


async def _mock_run(
    requests: RequestArrays,
    profile: PerformanceProfile,
    config: SimConfig,
    initial: tuple[int, int],
    script: dict[float, tuple[int, int]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-request TTFT and ITL (ms) of the mock cluster, requests submitted at their arrival
    times and ``set_replicas`` called at the script's times (loop s from start)."""
    c = MockCluster(profile, config, prefill=initial[0], decode=initial[1])
    c.start()
    loop = asyncio.get_running_loop()
    t0 = loop.time()

    async def scale() -> None:
        for at, (p, d) in sorted((script or {}).items()):
            await asyncio.sleep(t0 + at - loop.time())
            c.set_replicas(p, d)

    scaler = asyncio.create_task(scale())
    reqs: list[MockRequest] = []
    tasks = []
    for a, isl, osl in zip(
        requests.arrival_s.tolist(), requests.isl.tolist(), requests.osl.tolist(), strict=True
    ):
        await asyncio.sleep(max(0.0, t0 + a - loop.time()))
        r = c.submit(isl, osl)
        reqs.append(r)
        tasks.append(asyncio.create_task(_collect(r)))
    await asyncio.gather(*tasks)
    await scaler
    await c.close()
    arr = requests.arrival_s
    first = np.array([r.first_token for r in reqs], dtype=float) - t0
    fin = np.array([r.finished for r in reqs], dtype=float) - t0
    osl = requests.osl
    with np.errstate(invalid="ignore", divide="ignore"):
        itl = np.where(osl > 1, (fin - first) * 1000.0 / np.maximum(osl - 1, 1), np.nan)
    return (first - arr) * 1000.0, itl


def _assert_close(a: np.ndarray, b: np.ndarray, rtol: float) -> None:
    np.testing.assert_array_equal(np.isfinite(a), np.isfinite(b))
    ok = np.isfinite(b)
    assert ok.any()
    np.testing.assert_allclose(a[ok], b[ok], rtol=rtol, atol=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(("rate", "duration", "p", "d", "max_kv", "max_batch"), CASES)
def test_engine_and_mock_cluster_match_the_reference(
    profile: PerformanceProfile,
    sla: SLA,
    seed: int,
    rate: float,
    duration: float,
    p: int,
    d: int,
    max_kv: int | None,
    max_batch: int | None,
) -> None:
    prof = profile if max_kv is None else dataclasses.replace(profile, max_kv_tokens=max_kv)
    req = RequestArrays.poisson(rate, duration, (50, 3000), (1, 200), seed=seed)
    cfg = SimConfig(seed=seed, max_decode_batch=max_batch, startup_s=0.0)
    ref = reference_simulate(req, prof, cfg, p, d)
    eng = simulate(req, prof, sla, cfg, StaticPolicy(p, d), per_request=True).per_request
    assert eng is not None
    mock_ttft, mock_itl = run_virtual(_mock_run(req, prof, cfg, (p, d)))
    for name, ours in (
        ("engine", (eng["ttft_ms"].to_numpy(), eng["itl_ms"].to_numpy())),
        ("mock", (mock_ttft, mock_itl)),
    ):
        want_both = (ref["ttft_ms"].to_numpy(), ref["itl_ms"].to_numpy())
        for got, want in zip(ours, want_both, strict=True):
            try:
                _assert_close(got, want, rtol=0.01)
            except AssertionError as e:
                raise AssertionError(f"{name} differs from the reference") from e
    _assert_close(mock_ttft, eng["ttft_ms"].to_numpy(), rtol=1e-9)
    _assert_close(mock_itl, eng["itl_ms"].to_numpy(), rtol=1e-9)


@pytest.mark.parametrize("seed", [0, 3])
def test_engine_and_mock_cluster_agree_while_scaling(
    profile: PerformanceProfile, sla: SLA, seed: int
) -> None:
    """Scale up (start-up delay), then down (cancel, drain): the same script on both players."""
    interval, startup = 2.0, 1.5
    req = RequestArrays.poisson(25.0, 9.0, (50, 3000), (1, 200), seed=seed)
    cfg = SimConfig(seed=seed, interval_s=interval, startup_s=startup, max_decode_batch=8)
    steps = {1: (2, 3), 2: (3, 3), 3: (1, 1), 4: (2, 2)}  # interval boundary -> replicas
    eng = simulate(req, profile, sla, cfg, ScriptPolicy((1, 1), at=steps), per_request=True)
    assert eng.per_request is not None
    script = {k * interval: pd for k, pd in steps.items()}
    mock_ttft, mock_itl = run_virtual(_mock_run(req, profile, cfg, (1, 1), script))
    _assert_close(mock_ttft, eng.per_request["ttft_ms"].to_numpy(), rtol=1e-9)
    _assert_close(mock_itl, eng.per_request["itl_ms"].to_numpy(), rtol=1e-9)
