"""SimResult: the JSON document, percentiles, attainment and per-interval statistics."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.sla import SLA
from dynamo_plan.errors import InputError
from dynamo_plan.sim import RequestArrays, SimConfig, StaticPolicy, simulate
from dynamo_plan.sim.result import percentiles, unforeseeable


def test_to_json_has_exactly_the_documented_keys(profile: PerformanceProfile, sla: SLA) -> None:
    req = RequestArrays.poisson(10, 30, (100, 2000), (1, 200), seed=0)
    res = simulate(req, profile, sla, SimConfig(interval_s=10), StaticPolicy(1, 1))
    doc = json.loads(json.dumps(res.to_json()))
    assert list(doc) == [
        "policy", "requests", "completed", "sla_attainment", "ttft_ms", "itl_ms", "gpu_hours",
        "replica_timeline", "out_of_profile_requests", "unservable", "unforeseeable", "wall_s",
    ]  # fmt: skip
    assert list(doc["ttft_ms"]) == list(doc["itl_ms"]) == ["p50", "p90", "p99"]
    assert all(list(e) == ["t_s", "prefill", "decode"] for e in doc["replica_timeline"])
    assert doc["replica_timeline"][0] == {"t_s": 0.0, "prefill": 1, "decode": 1}


def test_attainment_and_percentiles_from_per_request(profile: PerformanceProfile) -> None:
    req = RequestArrays.poisson(30, 30, (100, 4000), (1, 300), seed=1)
    sla = SLA(ttft_ms=120.0, itl_ms=15.0)
    res = simulate(req, profile, sla, SimConfig(), StaticPolicy(1, 1), per_request=True)
    pr = res.per_request
    itl_ok = (pr["osl"] <= 1) | (pr["itl_ms"] <= 15.0)
    expected = ((pr["ttft_ms"] <= 120.0) & itl_ok).mean()
    assert res.sla_attainment == pytest.approx(expected)
    assert 0.0 < res.sla_attainment < 1.0
    assert res.ttft_ms["p90"] == pytest.approx(np.percentile(pr["ttft_ms"], 90))
    assert res.itl_ms["p50"] == pytest.approx(np.nanpercentile(pr["itl_ms"], 50))


def test_interval_stats_cover_every_request(profile: PerformanceProfile, sla: SLA) -> None:
    req = RequestArrays.poisson(20, 45, (100, 2000), (2, 200), seed=2)
    res = simulate(
        req, profile, sla, SimConfig(interval_s=10), StaticPolicy(2, 2), per_request=True
    )
    stats = res.interval_stats
    assert stats["requests"].sum() == len(req)
    assert stats["t_s"].tolist()[:5] == [0.0, 10.0, 20.0, 30.0, 40.0]
    assert {"ttft_p99", "itl_p50", "prefill", "ready_decode", "sla_attainment"} <= set(stats)
    first = res.per_request[res.per_request["arrival_s"] < 10]
    assert stats["ttft_p50"].iloc[0] == pytest.approx(first["ttft_ms"].median())


def test_percentiles_of_nothing_are_nan() -> None:
    out = percentiles(np.array([np.nan]))
    assert list(out) == ["p50", "p90", "p99"] and all(math.isnan(v) for v in out.values())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"interval_s": 0.0}, "interval_s"),
        ({"startup_s": -1.0}, "startup_s"),
        ({"prefill_gpus": 0}, "prefill_gpus"),
        ({"max_decode_batch": 0}, "max_decode_batch"),
        ({"kv_transfer_gbps": float("inf")}, "kv_transfer_gbps"),
    ],
)
def test_config_validation(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(InputError, match=match):
        SimConfig(**kwargs)  # type: ignore[arg-type]


def test_kv_transfer_time() -> None:
    cfg = SimConfig(kv_transfer_latency_ms=2.0, kv_transfer_gbps=100.0, kv_bytes_per_token=1e5)
    assert cfg.kv_transfer_s(1000) == pytest.approx(0.002 + 1000 * 1e5 * 8 / 100e9)


@pytest.mark.parametrize(
    ("startup_s", "expected"),
    [
        # decisions at 6, 12, ... s see the interval before; engines serve startup_s later
        (6.0, 7 + 3),  # intervals 3 and 4: ordered at 12 s and 18 s, having seen 0 and 0
        (0.0, 0 + 7 + 4),  # intervals 2, 3 and 6: ordered at their start, after an empty one
        (12.0, 3 + 0),  # intervals 4 and 5: ordered at 12 s and 18 s
        (3.0, 7 + 3),  # the last order ready by interval j's start is at floor(j - 1/2)·6 s
    ],
)
def test_unforeseeable_counts_intervals_ordered_after_an_empty_one(
    startup_s: float, expected: int
) -> None:
    counts = np.array([5, 0, 0, 7, 3, 0, 4])
    assert unforeseeable(counts, 6.0, startup_s) == expected


def _unforeseeable_by_decisions(counts: list[int], interval: int, startup: int) -> int:
    """Reference: walk the decisions; each interval takes the last order ready at its start."""
    total = 0
    for j, n in enumerate(counts):
        orders = [k for k in range(1, len(counts) + 1) if k * interval + startup <= j * interval]
        if orders and counts[orders[-1] - 1] == 0:
            total += n
    return total


@given(
    st.lists(st.integers(0, 5), max_size=30),
    st.integers(1, 60),
    st.integers(0, 200),
)
def test_unforeseeable_matches_walking_the_decisions(
    counts: list[int], interval: int, startup: int
) -> None:
    got = unforeseeable(np.array(counts, dtype=np.int64), float(interval), float(startup))
    assert got == _unforeseeable_by_decisions(counts, interval, startup)
    assert 0 <= got <= sum(counts)
    if 0 not in counts:
        assert got == 0


def test_a_run_counts_the_requests_after_an_idle_interval(
    profile: PerformanceProfile, sla: SLA
) -> None:
    busy = RequestArrays.poisson(5, 10, (100, 1000), (10, 50), seed=2)  # 0-10 s
    late = RequestArrays.poisson(5, 10, (100, 1000), (10, 50), seed=3)  # 20-30 s after a gap
    req = RequestArrays(
        np.concatenate([busy.arrival_s, late.arrival_s + 20.0]),
        np.concatenate([busy.isl, late.isl]),
        np.concatenate([busy.osl, late.osl]),
    )
    res = simulate(req, profile, sla, SimConfig(interval_s=10, startup_s=10), StaticPolicy(1, 1))
    # interval 2 (20-30 s) is served by the order at 10 s, which saw interval 0: busy
    assert res.unforeseeable == 0
    res = simulate(req, profile, sla, SimConfig(interval_s=10, startup_s=0), StaticPolicy(1, 1))
    # without start-up time, by the order at 20 s, which saw interval 1: empty
    counts = res.interval_stats["requests"].to_numpy()
    assert list(counts) == [busy.arrival_s.size, 0, late.arrival_s.size]
    assert res.unforeseeable == late.arrival_s.size
    assert res.to_json()["unforeseeable"] == late.arrival_s.size
