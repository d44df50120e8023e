"""The simulator's fast scalar latency lookups equal the profile's own lookups."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.profile_interp import Pchip
from dynamo_plan.sim.latency import DecodeLatency, PrefillLatency, ScalarPchip


@settings(max_examples=60, deadline=None)
@given(
    ys=st.lists(st.floats(-100, 100), min_size=1, max_size=8),
    q=st.floats(-5, 15),
)
def test_scalar_pchip_matches_pchip(ys: list[float], q: float) -> None:
    xs = np.arange(len(ys), dtype=np.float64) * 1.5
    p = Pchip.fit(xs, ys)
    np.testing.assert_allclose(ScalarPchip(p)(q), p(q), rtol=1e-12, atol=1e-12)
    for x, y in zip(xs, ys, strict=True):  # exact at the knots
        assert ScalarPchip(p)(float(x)) == y


@settings(max_examples=200, deadline=None)
@given(kv=st.floats(-0.1, 1.3), ctx=st.floats(50, 20000))
def test_decode_itl_matches_profile(profile: PerformanceProfile, kv: float, ctx: float) -> None:
    fast = DecodeLatency(profile)
    np.testing.assert_allclose(fast.itl_ms(kv, ctx), profile.decode.itl(kv, ctx).value, rtol=1e-12)


def test_decode_step_uses_kv_and_mean_context(profile: PerformanceProfile) -> None:
    fast = DecodeLatency(profile)
    contexts = [1200.0, 3000.0, 450.5]
    total = sum(contexts)
    expected = profile.decode.itl(total / profile.max_kv_tokens, total / 3).value / 1000.0
    assert fast.step_s(total, 3) == expected


@settings(max_examples=100, deadline=None)
@given(tokens=st.integers(1, 60000))
def test_prefill_batch_time(profile: PerformanceProfile, tokens: int) -> None:
    fast = PrefillLatency(profile)
    hi = float(profile.prefill.isl[-1])
    if tokens <= hi:
        expected = profile.expected_ttft(tokens).value / 1000.0
    else:  # clamped throughput: the longest measured prompt's tokens/s
        expected = profile.expected_ttft(hi).value / 1000.0 * tokens / hi
    np.testing.assert_allclose(fast.batch_s(tokens), expected, rtol=1e-12)
