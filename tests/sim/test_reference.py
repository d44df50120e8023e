"""The event-jumping engine against the naive per-step reference on small cases."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.sla import SLA
from dynamo_plan.sim import RequestArrays, SimConfig, StaticPolicy, simulate
from tests.sim.reference import reference_simulate

CASES = [
    # rate/s, seconds, prefill, decode, max_kv_tokens (None = profile's), max_decode_batch
    (20.0, 10.0, 1, 1, None, None),
    (40.0, 8.0, 2, 2, None, 8),
    (5.0, 20.0, 1, 2, None, None),
    (15.0, 10.0, 2, 2, 15_000, None),  # KV-bound: the admission queue fills
]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(("rate", "duration", "p", "d", "max_kv", "max_batch"), CASES)
def test_fast_engine_matches_reference(
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
    req = RequestArrays.poisson(rate, duration, (50, 3000), (1, 300), seed=seed)
    cfg = SimConfig(seed=seed, max_decode_batch=max_batch)
    fast = simulate(req, prof, sla, cfg, StaticPolicy(p, d), per_request=True).per_request
    assert fast is not None
    ref = reference_simulate(req, prof, cfg, p, d)
    for col in ("ttft_ms", "itl_ms", "finish_s"):
        a, b = fast[col].to_numpy(), ref[col].to_numpy()
        np.testing.assert_array_equal(np.isfinite(a), np.isfinite(b))
        ok = np.isfinite(b)
        np.testing.assert_allclose(a[ok], b[ok], rtol=0.01)
    np.testing.assert_array_equal(fast["decode_engine"], ref["decode_engine"])
    np.testing.assert_array_equal(fast["prefill_engine"], ref["prefill_engine"])
