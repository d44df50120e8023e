"""RequestArrays: from a trace (rate scaling, rate series), Poisson streams, validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dynamo_plan.errors import InputError
from dynamo_plan.sim import RequestArrays
from dynamo_plan.trace import Trace, load_trace


def test_from_trace_rate_scale_compresses_time(shared_data: Path) -> None:
    trace = load_trace([shared_data / "traces" / "mooncake_synthetic_5min.jsonl"])
    one = RequestArrays.from_trace(trace)
    ten = RequestArrays.from_trace(trace, rate_scale=10.0)
    assert len(one) == len(ten) == len(trace)
    assert one.arrival_s[0] == 0.0
    np.testing.assert_allclose(ten.arrival_s * 10.0, one.arrival_s)
    np.testing.assert_array_equal(one.isl, trace.input_length.astype(np.int64))
    assert one.span_s == pytest.approx(trace.span_s)


def test_from_trace_expands_a_rate_series() -> None:
    trace = Trace(
        timestamp_ms=np.array([0.0, 60_000.0]),
        input_length=np.array([1000.0, 2000.0]),
        output_length=np.array([100.0, 50.0]),
        weight=np.array([3.0, 2.0]),
        sources=("rates.csv",),
        fmt="rate",
        step_s=60.0,
    )
    req = RequestArrays.from_trace(trace)
    np.testing.assert_allclose(req.arrival_s, [0.0, 20.0, 40.0, 60.0, 90.0])
    assert req.isl.tolist() == [1000, 1000, 1000, 2000, 2000]


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan")])
def test_from_trace_rejects_bad_rate_scale(shared_data: Path, scale: float) -> None:
    trace = load_trace([shared_data / "traces" / "mooncake_synthetic_5min.jsonl"])
    with pytest.raises(InputError, match="rate_scale"):
        RequestArrays.from_trace(trace, rate_scale=scale)


def test_poisson_is_seeded_and_has_the_rate() -> None:
    a = RequestArrays.poisson(50.0, 200.0, (10, 20), 5, seed=4)
    b = RequestArrays.poisson(50.0, 200.0, (10, 20), 5, seed=4)
    np.testing.assert_array_equal(a.arrival_s, b.arrival_s)
    assert len(a) == pytest.approx(50 * 200, rel=0.05)
    assert a.isl.min() >= 10 and a.isl.max() <= 20
    assert set(a.osl.tolist()) == {5}


@pytest.mark.parametrize(
    ("arrival", "isl", "osl", "match"),
    [
        ([0.0, 1.0], [1], [1, 1], "differ in length"),
        ([1.0, 0.5], [1, 1], [1, 1], "request 1: arrival_s"),
        ([0.0, 1.0], [1, 0], [1, 1], "request 1: isl is 0"),
        ([0.0, float("inf")], [1, 1], [1, 1], "finite"),
    ],
)
def test_request_arrays_validation(
    arrival: list[float], isl: list[int], osl: list[int], match: str
) -> None:
    with pytest.raises(InputError, match=match):
        RequestArrays(np.array(arrival), np.array(isl), np.array(osl))
