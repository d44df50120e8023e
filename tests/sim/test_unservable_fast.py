"""``unservable`` evaluates the latency models only where a bound cannot decide: the mask must be
the plain formula's, element by element, for every profile (monotone or not) and SLA."""

from __future__ import annotations

import numpy as np
import pytest

from dynamo_plan.core.profile import DecodeSurface, PerformanceProfile, PrefillCurve
from dynamo_plan.core.profile_interp import Pchip
from dynamo_plan.core.sla import SLA
from dynamo_plan.estimator import load_gpu, load_model, make_estimator
from dynamo_plan.profiler.sweep import SweepSLA, run_sweep
from dynamo_plan.sim.config import SimConfig
from dynamo_plan.sim.requests import RequestArrays
from dynamo_plan.sim.result import _bins, _Bounds, decode_step1_s, prefill_batch_s, unservable
from dynamo_plan.sim.sources import MOONCAKE_ISL, MOONCAKE_OSL, PoissonStream


def _reference(
    req: RequestArrays, profile: PerformanceProfile, sla: SLA, cfg: SimConfig
) -> np.ndarray:
    """The formula evaluated on the whole array (a fresh prefill PCHIP, no bounds)."""
    isl = req.isl.astype(np.float64)
    osl = req.osl
    curve = Pchip.fit(profile.prefill.isl, profile.prefill.ttft_ms)
    pre = np.where(isl > curve.hi, curve.y[-1] * (isl / curve.hi) / 1000.0, curve(isl) / 1000.0)
    kv_s = cfg.kv_transfer_latency_ms / 1000.0 + isl * cfg.kv_bytes_per_token * 8.0 / (
        cfg.kv_transfer_gbps * 1e9
    )
    steps = np.maximum(osl - 1, 1).astype(np.float64)
    itl_s = decode_step1_s(profile, isl + osl / 2.0) + kv_s / steps
    out: np.ndarray = (pre * 1000.0 > sla.ttft_ms) | ((osl > 1) & (itl_s * 1000.0 > sla.itl_ms))
    return out


@pytest.fixture(scope="module")
def estimated() -> PerformanceProfile:
    eng = make_estimator(
        "roofline", load_model("meta-llama/Llama-3.1-8B-Instruct"), load_gpu("h200_sxm"), "vllm"
    )
    sla = SweepSLA(isl=3000, osl=300, ttft_ms=300.0, itl_ms=20.0)
    return run_sweep(eng, sla, 131072).profile


def _bent(profile: PerformanceProfile) -> PerformanceProfile:
    """``profile`` with a dip in the prefill TTFT (its PCHIP is no longer monotone) and a decode
    surface whose lowest batch per token of KV (``kv_lo/context``) falls from row to row, above
    ``1/max_kv_tokens`` (so ``decode_step1_s`` may fall with the context)."""
    p = profile.prefill
    ttft = p.ttft_ms.copy()
    ttft[5] = ttft[3]  # below its neighbours
    prefill = PrefillCurve(p.isl, ttft, p.thpt_per_gpu)
    max_kv = 1_000_000
    kv, ctx, itl, thpt = [], [], [], []
    for c, kv_lo in ((500.0, 0.004), (4000.0, 0.01), (9000.0, 0.012), (16000.0, 0.016)):
        for u in np.linspace(kv_lo, 0.9, 12):
            n = u * max_kv / c
            kv.append(u)
            ctx.append(c)
            itl.append(5.0 + n * (0.02 + 4e-5 * c))
            thpt.append(1000.0 * n / itl[-1])
    decode = DecodeSurface(np.array(kv), np.array(ctx), np.array(itl), np.array(thpt))
    return PerformanceProfile(prefill, decode, max_kv)


def _chunk(rng: np.random.Generator, n: int) -> RequestArrays:
    kind = rng.integers(0, 3)
    if kind == 0:  # log-uniform, beyond every profile's range
        isl = np.exp(rng.uniform(0.0, np.log(200_000.0), n)).astype(np.int64) + 1
        osl = np.exp(rng.uniform(0.0, np.log(5000.0), n)).astype(np.int64) + 1
    elif kind == 1:  # a narrow band: many requests share a bin
        base = int(rng.integers(1, 20_000))
        isl = base + rng.integers(0, 200, n)
        osl = rng.integers(1, 4, n)
    else:
        isl = rng.integers(1, 200_001, n)
        osl = rng.integers(1, 3000, n)
    return RequestArrays(np.zeros(n), isl, osl)


def _slas(
    rng: np.random.Generator, req: RequestArrays, profile: PerformanceProfile, cfg: SimConfig
) -> list[SLA]:
    """Random targets, and targets equal to some request's exact latency (ties at the margin)."""
    isl = req.isl.astype(np.float64)
    i = rng.integers(0, len(req), 4)
    pre_ms = prefill_batch_s(profile, isl[i]) * 1000.0
    kv_s = cfg.kv_transfer_latency_ms / 1000.0 + isl[i] * cfg.kv_bytes_per_token * 8.0 / (
        cfg.kv_transfer_gbps * 1e9
    )
    steps = np.maximum(req.osl[i] - 1, 1).astype(np.float64)
    itl_ms = (decode_step1_s(profile, isl[i] + req.osl[i] / 2.0) + kv_s / steps) * 1000.0
    slas = [SLA(float(a), float(b)) for a, b in zip(pre_ms, itl_ms, strict=True)]
    slas.append(SLA(float(rng.uniform(5.0, 5000.0)), float(rng.uniform(2.0, 60.0))))
    slas.append(SLA(50.0, 5.0))  # most requests unservable
    return slas


@pytest.mark.parametrize("which", ["shared", "estimated", "bent"])
def test_mask_equals_the_formula_on_the_whole_array(
    which: str, profile: PerformanceProfile, estimated: PerformanceProfile
) -> None:
    prof = {"shared": profile, "estimated": estimated, "bent": _bent(profile)}[which]
    rng = np.random.default_rng(7)
    cfgs = [SimConfig(), SimConfig(kv_transfer_latency_ms=20.0, kv_transfer_gbps=5.0)]
    unservable_share = []
    for trial in range(24):
        req = _chunk(rng, int(rng.integers(1, 6000)))
        cfg = cfgs[trial % 2]
        for sla in _slas(rng, req, prof, cfg):
            got = unservable(req, prof, sla, cfg)
            want = _reference(req, prof, sla, cfg)
            np.testing.assert_array_equal(got, want)
            unservable_share.append(float(want.mean()))
    assert min(unservable_share) < 0.1 and max(unservable_share) > 0.9


def test_mask_equals_the_formula_on_mooncake_chunks(profile: PerformanceProfile) -> None:
    src = PoissonStream(50.0, 200.0, MOONCAKE_ISL, MOONCAKE_OSL, seed=3, chunk=4096)
    cfg = SimConfig()
    chunks = list(src.chunks())
    assert len(chunks) >= 2
    for sla in (SLA(2000.0, 25.0), SLA(200.0, 10.0), SLA(300.0, 20.0), SLA(3000.0, 30.0)):
        for req in chunks:
            np.testing.assert_array_equal(
                unservable(req, profile, sla, cfg), _reference(req, profile, sla, cfg)
            )


def test_empty_and_single_requests(profile: PerformanceProfile) -> None:
    cfg, sla = SimConfig(), SLA(300.0, 20.0)
    empty = RequestArrays(np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    assert unservable(empty, profile, sla, cfg).shape == (0,)
    for isl, osl in ((1, 1), (1, 2), (100_000, 2), (200_000, 5000), (3000, 1)):
        req = RequestArrays(np.zeros(1), np.array([isl]), np.array([osl]))
        np.testing.assert_array_equal(
            unservable(req, profile, sla, cfg), _reference(req, profile, sla, cfg)
        )


def test_bins_bracket_every_value() -> None:
    rng = np.random.default_rng(0)
    cases = [
        np.exp(rng.uniform(-3.0, 14.0, 5000)),
        rng.integers(1, 200_001, 5000).astype(np.float64),
        np.array([0.0, 0.25, 1.0, 1.0, 2.0]),
        np.array([7.0]),
        np.array([1e-300, 1e300, 3.0]),  # a range too wide for 64 bins per octave
    ]
    for x in cases:
        grid = _bins(x)
        assert grid is not None
        edges, b = grid
        assert edges.size <= 2050 and np.all(np.diff(edges) >= 0)
        assert np.all(edges[b] <= x) and np.all(x <= edges[b + 1])
    assert _bins(np.zeros(0)) is None
    assert _bins(np.array([1.0, np.inf])) is None


def test_latencies_are_monotone_where_the_bounds_say_so(
    profile: PerformanceProfile, estimated: PerformanceProfile
) -> None:
    for prof in (profile, estimated):
        bounds = _Bounds.of(prof)
        assert _Bounds.of(prof) is bounds
        assert bounds.prefill_defect_s == 0.0 and bounds.decode_defect_s == 0.0
        x = np.concatenate([np.linspace(1.0, 200_000.0, 400_001), np.geomspace(1.0, 2e5, 20_001)])
        x.sort()
        for f in (prefill_batch_s(prof, x), decode_step1_s(prof, x)):
            drop = np.diff(f) / f[1:]
            assert drop.min() >= -1e-13  # rounding only
            assert f[-1] > f[0]
    bent = _bent(profile)
    bounds = _Bounds.of(bent)
    assert bounds.prefill_defect_s is None  # a dip: every request evaluated
    assert bounds.decode_defect_s is not None and bounds.decode_defect_s > 0.0
    # the decode latency falls with the context somewhere, by no more than the certified defect
    x = np.linspace(1.0, 20_000.0, 200_001)
    f = decode_step1_s(bent, x)
    fall = float(np.max(np.maximum.accumulate(f) - f))
    assert 0.0 < fall <= bounds.decode_defect_s * (1.0 + 1e-9)
