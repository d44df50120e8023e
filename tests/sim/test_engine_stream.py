"""The streaming engine: a chunked source gives the same run as one array, per-request rows only
when asked (and then the same as the table), bounded percentiles, the fast decode latency and
the vectorized ``unservable`` agree with the scalar models."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.sla import SLA
from dynamo_plan.errors import InputError
from dynamo_plan.sim import RequestArrays, SimConfig, StaticPolicy, simulate
from dynamo_plan.sim.engine import replay
from dynamo_plan.sim.latency import DecodeLatency, PrefillLatency
from dynamo_plan.sim.latency_fast import FastDecodeLatency
from dynamo_plan.sim.result import (
    PER_REQUEST_COLUMNS,
    request_latencies,
    sla_met,
    unservable,
)
from dynamo_plan.sim.sources import MOONCAKE_ISL, MOONCAKE_OSL, PoissonStream
from tests.sim.conftest import ScriptPolicy


class Chunked:
    """A :class:`RequestSource` over ``requests`` in chunks of ``size``."""

    def __init__(self, requests: RequestArrays, size: int) -> None:
        self.requests, self.size = requests, size

    @property
    def span_s(self) -> float:
        return self.requests.span_s

    def chunks(self) -> Iterator[RequestArrays]:
        return self.requests.chunks(self.size)


def _req(seed: int = 3) -> RequestArrays:
    return RequestArrays.poisson(25, 120, (100, 6000), (1, 400), seed=seed)


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12)


def test_chunked_source_gives_the_same_run(profile: PerformanceProfile, sla: SLA) -> None:
    req = _req()
    cfg = SimConfig(interval_s=10, startup_s=15)
    whole = simulate(req, profile, sla, cfg, ScriptPolicy((1, 1), {2: (3, 2), 6: (1, 1)}))
    parts = simulate(
        Chunked(req, 97), profile, sla, cfg, ScriptPolicy((1, 1), {2: (3, 2), 6: (1, 1)})
    )
    assert whole.per_request is None and parts.per_request is None
    a, b = whole.to_json(), parts.to_json()
    a["wall_s"] = b["wall_s"] = 0
    assert a == b
    _same(whole.interval_stats, parts.interval_stats)


def test_summary_matches_the_per_request_table(profile: PerformanceProfile, sla: SLA) -> None:
    req = _req(seed=5)
    cfg = SimConfig(interval_s=10, startup_s=10)
    res = simulate(req, profile, sla, cfg, ScriptPolicy((1, 1), {1: (2, 2)}), per_request=True)
    pr = res.per_request
    assert pr is not None and list(pr.columns) == list(PER_REQUEST_COLUMNS)
    k = np.floor(pr["arrival_s"] / 10).astype(int)
    g = pr.groupby(k)
    st = res.interval_stats
    present = st.index.isin(g.size().index)
    np.testing.assert_array_equal(st.loc[present, "requests"], g.size())
    np.testing.assert_allclose(st.loc[present, "ttft_p90"], g["ttft_ms"].quantile(0.9))
    np.testing.assert_allclose(st.loc[present, "itl_p50"], g["itl_ms"].quantile(0.5))
    np.testing.assert_allclose(st.loc[present, "sla_attainment"], g["sla_met"].mean())
    assert res.completed == int(np.isfinite(pr["finish_s"]).sum())
    assert res.output_tokens == int(pr.loc[np.isfinite(pr["finish_s"]), "osl"].sum())


def test_streamed_percentiles_within_the_documented_bound(
    profile: PerformanceProfile, sla: SLA
) -> None:
    req = _req(seed=7)
    cfg = SimConfig(interval_s=10)
    exact = simulate(req, profile, sla, cfg, StaticPolicy(2, 2), per_request=True)
    binned = simulate(req, profile, sla, cfg, StaticPolicy(2, 2), exact_limit=100)
    pr = exact.per_request
    assert pr is not None
    done = np.isfinite(pr["finish_s"].to_numpy())
    for key, col in (("ttft_ms", "ttft_ms"), ("itl_ms", "itl_ms")):
        values = pr[col].to_numpy()[done]
        values = values[np.isfinite(values)]
        for q in (50, 90, 99):
            want = float(np.percentile(values, q))
            got = getattr(binned, key)[f"p{q}"]
            assert got == pytest.approx(want, rel=0.005 * (1 + 1e-9))
            assert getattr(exact, key)[f"p{q}"] == pytest.approx(want, rel=1e-12)
    assert binned.sla_attainment == exact.sla_attainment
    _same(binned.interval_stats, exact.interval_stats)


def test_rows_callback_streams_every_request(profile: PerformanceProfile, sla: SLA) -> None:
    req = _req(seed=11)
    frames: list[pd.DataFrame] = []
    cfg = SimConfig(interval_s=10)
    kept = simulate(req, profile, sla, cfg, StaticPolicy(1, 1), per_request=True).per_request
    simulate(req, profile, sla, cfg, StaticPolicy(1, 1), rows=frames.append)
    rows = pd.concat(frames).set_index("request").sort_index()
    assert kept is not None and list(rows.columns) == list(PER_REQUEST_COLUMNS)
    assert rows.index.tolist() == list(range(len(req)))
    _same(rows.reset_index(drop=True), kept)


def test_rows_include_requests_that_never_finished(profile: PerformanceProfile, sla: SLA) -> None:
    req = RequestArrays.poisson(5, 20, (100, 500), (1, 50), seed=2)
    frames: list[pd.DataFrame] = []
    res = simulate(
        req, profile, sla, SimConfig(interval_s=10), StaticPolicy(1, 0), rows=frames.append
    )
    rows = pd.concat(frames)
    assert len(rows) == len(req) and res.completed == int((req.osl <= 1).sum())
    assert rows.loc[~np.isfinite(rows["finish_s"]), "sla_met"].eq(False).all()


def test_replay_matches_simulate(profile: PerformanceProfile, sla: SLA) -> None:
    req = _req(seed=13)
    cfg = SimConfig(interval_s=10)
    out = replay(req, profile, cfg, StaticPolicy(2, 1))
    pr = simulate(req, profile, sla, cfg, StaticPolicy(2, 1), per_request=True).per_request
    assert pr is not None
    np.testing.assert_array_equal(out.finish_s, pr["finish_s"])
    ttft, _ = request_latencies(req, out)
    np.testing.assert_array_equal(ttft, pr["ttft_ms"])
    np.testing.assert_array_equal(sla_met(req, out, sla), pr["sla_met"])


def test_out_of_order_chunks_are_refused(profile: PerformanceProfile, sla: SLA) -> None:
    class Backwards:
        span_s = 10.0

        def chunks(self) -> Iterator[RequestArrays]:
            yield RequestArrays(np.array([5.0, 6.0]), np.array([100, 100]), np.array([5, 5]))
            yield RequestArrays(np.array([1.0]), np.array([100]), np.array([5]))

    with pytest.raises(InputError, match="ascending"):
        simulate(Backwards(), profile, sla, SimConfig(), StaticPolicy(1, 1))


def test_poisson_stream_is_deterministic_and_chunked() -> None:
    src = PoissonStream(50.0, 200.0, seed=4, chunk=1000)
    a = list(src.chunks())
    b = list(src.chunks())
    assert len(a) > 5 and all(len(c) == 1000 for c in a[:-1])
    arr = np.concatenate([c.arrival_s for c in a])
    assert arr[0] == 0.0 and np.all(np.diff(arr) >= 0) and arr[-1] < 200.0
    assert len(arr) == pytest.approx(50 * 200, rel=0.05)
    np.testing.assert_array_equal(arr, np.concatenate([c.arrival_s for c in b]))
    isl = np.concatenate([c.isl for c in a])
    assert np.median(isl) == pytest.approx(MOONCAKE_ISL.median, rel=0.05)
    assert np.percentile(isl, 90) == pytest.approx(27367, rel=0.08)
    osl = np.concatenate([c.osl for c in a])
    assert np.median(osl) == pytest.approx(MOONCAKE_OSL.median, rel=0.05)
    assert osl.min() >= 1 and osl.max() <= 2000


def test_fast_decode_latency_equals_the_scalar_model(profile: PerformanceProfile) -> None:
    slow, fast = DecodeLatency(profile), FastDecodeLatency.of(profile)
    assert FastDecodeLatency.of(profile) is fast
    rng = np.random.default_rng(0)
    sums = np.concatenate([rng.uniform(1.0, 3e6, 4000), rng.uniform(1.0, 2e4, 2000), [0.5, 1e8]])
    ns = rng.integers(1, 400, sums.size)
    for s, n in zip(sums.tolist(), ns.tolist(), strict=True):
        assert fast.step_s(s, n) == slow.step_s(s, n)


def test_unservable_is_the_scalar_rule_vectorized(profile: PerformanceProfile) -> None:
    rng = np.random.default_rng(1)
    n = 3000
    isl = np.concatenate([rng.integers(1, 60_000, n), [int(profile.prefill.isl[-1])]])
    osl = np.concatenate([rng.integers(1, 3000, n), [2]])
    req = RequestArrays(np.zeros(n + 1), isl, osl)
    sla, cfg = SLA(800.0, 12.0), SimConfig()
    prefill, decode = PrefillLatency(profile), DecodeLatency(profile)
    want = np.zeros(n + 1, dtype=bool)
    for i, (a, b) in enumerate(zip(isl.tolist(), osl.tolist(), strict=True)):
        if prefill.batch_s(a) * 1000.0 > sla.ttft_ms:
            want[i] = True
        elif b > 1:
            step = decode.step_s(a + b / 2.0, 1) + cfg.kv_transfer_s(a) / (b - 1)
            want[i] = step * 1000.0 > sla.itl_ms
    got = unservable(req, profile, sla, cfg)
    np.testing.assert_array_equal(got, want)
    assert 0 < got.sum() < n


def test_a_long_stream_is_summarised_without_the_table(profile: PerformanceProfile) -> None:
    src = PoissonStream(20.0, 600.0, seed=3, chunk=500)
    cfg = SimConfig(interval_s=30)
    res = simulate(src, profile, SLA(3000, 40), cfg, StaticPolicy(10, 4), exact_limit=1000)
    assert res.per_request is None
    assert res.requests == sum(len(c) for c in src.chunks())
    assert res.completed == res.requests
    st = res.interval_stats
    assert len(st) >= 20 and st["requests"].sum() == res.requests
    assert (st["requests"].iloc[:20] > 0).all() and (st["requests"].iloc[20:] == 0).all()
    assert 0.5 < res.sla_attainment <= 1.0
