"""The engine's fast paths give the same results as the plain rules they stand for: the memoised
prefill latency, the decode step latency through single curve pieces, the serving engines'
reserved-token list kept alongside them, and replay of many small request sets."""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import numpy as np
import pytest

from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.sla import SLA
from dynamo_plan.sim import RequestArrays, SimConfig, StaticPolicy, cluster_model, simulate
from dynamo_plan.sim import engine as engine_mod
from dynamo_plan.sim.engine import replay
from dynamo_plan.sim.latency import DecodeLatency, PrefillLatency
from dynamo_plan.sim.latency_fast import FastDecodeLatency, prefill_memo
from tests.sim.conftest import ScriptPolicy


def test_prefill_memo_gives_the_batch_latency(profile: PerformanceProfile) -> None:
    memo, lat = prefill_memo(profile)
    assert prefill_memo(profile)[0] is memo  # one per profile: replays share it
    slow = PrefillLatency(profile)
    for tokens in (1, 17, 512, 4096, 16384, 70_000, 500_000):
        assert lat.batch_s(tokens) == slow.batch_s(tokens)


def test_step_latency_on_rows_and_clamps_equals_the_scalar_model(
    profile: PerformanceProfile,
) -> None:
    """Batches whose mean context is exactly a profile row's, between rows, or beyond the
    surface (clamped KV usage puts ``m`` on a curve's first or last point): the single-piece path
    and the general one give the scalar model's value."""
    slow, fast = DecodeLatency(profile), FastDecodeLatency.of(profile)
    ctxs = [float(r.context) for r in profile.decode.rows]
    means = [*ctxs, *((a + b) / 2 for a, b in pairwise(ctxs))]
    means += [1.0, ctxs[0] / 3, ctxs[-1] * 1.5, ctxs[-1] * 40]
    checked = 0
    for n in range(1, 600, 7):
        for mean in means:
            assert fast.step_s(mean * n, n) == slow.step_s(mean * n, n)
            checked += 1
    assert checked > 1000


_ORIGINAL = cluster_model.choose_decode


def test_reserved_list_follows_the_engines_while_scaling(
    profile: PerformanceProfile, sla: SLA, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine keeps the serving engines' reserved tokens in a list for admission; a run that
    reads them from the engines instead (and checks the list on every admission) is the same."""
    req = RequestArrays.poisson(40, 240, (100, 8000), (1, 600), seed=5)
    cfg = SimConfig(interval_s=10, startup_s=15)
    script = {2: (3, 4), 5: (2, 1), 8: (4, 3), 12: (2, 2), 16: (3, 1)}
    fast = simulate(req, profile, sla, cfg, ScriptPolicy((2, 2), script), per_request=True)

    def checked(
        serving: Sequence[Any],
        need: float,
        max_kv: float,
        max_batch: int | None,
        reserved: Sequence[float] | None = None,
    ) -> Any:
        if reserved is not None:
            assert list(reserved) == [e.reserved for e in serving]
            assert [e.slot for e in serving] == list(range(len(serving)))
        return _ORIGINAL(serving, need, max_kv, max_batch)  # read from the engines

    monkeypatch.setattr(engine_mod, "choose_decode", checked)
    plain = simulate(req, profile, sla, cfg, ScriptPolicy((2, 2), script), per_request=True)
    assert fast.per_request is not None and plain.per_request is not None
    assert fast.per_request.equals(plain.per_request)
    assert fast.gpu_hours == plain.gpu_hours and fast.replica_timeline == plain.replica_timeline


def test_many_small_replays_are_independent(profile: PerformanceProfile) -> None:
    """Replays share the memoised latencies but nothing else: a replay gives the same outcome
    whatever ran before it."""
    cfg = SimConfig(interval_s=60)
    sets = [RequestArrays.poisson(10, 60, (100, 9000), (1, 500), seed=s) for s in range(4)]
    first = [replay(r, profile, cfg, StaticPolicy(2, 2)) for r in sets]
    again = [replay(r, profile, cfg, StaticPolicy(2, 2)) for r in reversed(sets)][::-1]
    for a, b in zip(first, again, strict=True):
        for name in ("first_token_s", "decode_start_s", "finish_s"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        np.testing.assert_array_equal(a.decode_engine, b.decode_engine)
        assert np.all(np.isfinite(a.finish_s)) and not math.isnan(float(a.finish_s.max()))
