"""Bucketing: conservation, contiguity, weighted means, carry-forward, rate series."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamo_plan.errors import InputError
from dynamo_plan.trace import Trace, bucket, load_trace
from dynamo_plan.trace.bucket import MAX_INTERVALS, interval_index
from tests.trace.cases import REAL_TRACES, write


@st.composite
def traces(draw: st.DrawFn) -> tuple[Trace, float]:
    """A small trace (<= 60 records, <= ~400 intervals) and an interval in seconds."""
    n = draw(st.integers(1, 60))
    interval_s = draw(st.sampled_from([0.001, 0.1, 1.0, 7.3, 60.0, 3600.0]))
    width_ms = interval_s * 1000.0
    origin = draw(st.sampled_from([0.0, 1.7e12]))  # relative ms or epoch ms (Azure)
    offset = st.one_of(
        st.floats(0, 400 * width_ms, allow_nan=False, allow_infinity=False),
        st.integers(0, 400).map(lambda k: k * width_ms),  # exactly on a boundary
    )
    offsets = draw(st.lists(offset, min_size=n, max_size=n))
    lengths = st.lists(st.floats(0, 1e5, allow_nan=False), min_size=n, max_size=n)
    weight = draw(
        st.one_of(
            st.just([1.0] * n),
            st.lists(st.sampled_from([0.0, 0.5, 1.0, 3.0, 17.0]), min_size=n, max_size=n),
        )
    )
    trace = Trace(
        timestamp_ms=origin + np.sort(np.asarray(offsets, dtype=float)),
        input_length=draw(lengths),
        output_length=draw(lengths),
        weight=weight,
        sources=("generated",),
        fmt="mooncake",
    )
    return trace, interval_s


@given(traces())
@settings(max_examples=80, deadline=None)
def test_bucketing_conserves_requests_and_is_contiguous(case: tuple[Trace, float]) -> None:
    trace, interval_s = case
    series = bucket(trace, interval_s)
    frame = series.frame
    n = len(series)
    assert list(frame.columns) == ["start_s", "count", "isl", "osl", "filled"]
    # conservation: every request lands in exactly one interval
    assert series.series("count").sum() == pytest.approx(trace.weight.sum(), rel=1e-12, abs=1e-9)
    # contiguous: start_s = k·I exactly, no gaps
    np.testing.assert_array_equal(frame["start_s"].to_numpy(), np.arange(n) * interval_s)
    # every record lies inside its interval; first holds ts0, last holds the max timestamp
    width_ms = interval_s * 1000.0
    rel = trace.timestamp_ms - trace.timestamp_ms[0]
    idx = interval_index(trace.timestamp_ms, interval_s)
    assert np.all(idx * width_ms <= rel) and np.all(rel < (idx + 1) * width_ms)
    assert idx[0] == 0 and idx[-1] == n - 1
    # float formula of the design agrees except within one ulp of a boundary
    naive = np.floor(rel / width_ms)
    off = naive != idx
    boundary = np.maximum(naive[off], idx[off]) * width_ms
    np.testing.assert_allclose(rel[off], boundary, rtol=1e-12)


@given(traces())
@settings(max_examples=80, deadline=None)
def test_bucketed_means_match_direct_computation(case: tuple[Trace, float]) -> None:
    trace, interval_s = case
    series = bucket(trace, interval_s)
    idx = interval_index(trace.timestamp_ms, interval_s)
    count, filled = series.series("count"), series.frame["filled"].to_numpy()
    for name, values in (("isl", trace.input_length), ("osl", trace.output_length)):
        got = series.series(name)  # type: ignore[arg-type]
        previous = np.nan
        for k in range(len(series)):
            members = (idx == k) & (trace.weight > 0)
            assert count[k] == pytest.approx(trace.weight[idx == k].sum(), abs=1e-9)
            assert filled[k] == (not members.any())
            if members.any():
                expected = np.average(values[members], weights=trace.weight[members])
                assert got[k] == pytest.approx(expected, rel=1e-9, abs=1e-9)
                previous = got[k]
            elif not np.isnan(previous):
                assert got[k] == previous  # carried forward
        first_known = np.flatnonzero(~filled)
        if first_known.size:  # leading empty intervals are carried back from the first
            assert np.all(got[: first_known[0]] == got[first_known[0]])


def test_empty_intervals_are_filled_with_zero_count() -> None:
    trace = Trace(
        np.array([0.0, 500.0, 3500.0]), [10, 30, 99], [1, 3, 9], [1, 1, 1], ("t",), "mooncake"
    )
    series = bucket(trace, 1.0)
    np.testing.assert_array_equal(series.series("count"), [2, 0, 0, 1])
    np.testing.assert_array_equal(series.series("isl"), [20, 20, 20, 99])
    np.testing.assert_array_equal(series.frame["filled"], [False, True, True, False])
    assert len(series) == 4


@pytest.mark.parametrize(("name", "fmt", "count"), REAL_TRACES, ids=[t[0] for t in REAL_TRACES])
def test_real_traces_bucket(shared_data: Path, name: str, fmt: str, count: int) -> None:
    trace = load_trace([shared_data / "traces" / name])
    series = bucket(trace, 60.0)
    assert series.series("count").sum() == count
    assert np.all(np.isfinite(series.series("isl")))
    span_intervals = int(np.floor(trace.span_s / 60.0)) + 1
    assert len(series) == span_intervals


def test_rate_series_buckets_as_weighted_rows(tmp_path: Path) -> None:
    rows = [(0, 10, 100, 10), (60, 0, "", ""), (120, 4, 300, 30), (180, 6, 200, 20)]
    content = "timestamp,requests,isl,osl\n" + "".join(f"{a},{b},{c},{d}\n" for a, b, c, d in rows)
    trace = load_trace([write(tmp_path / "r.csv", content)])
    series = bucket(trace, 120.0)
    np.testing.assert_array_equal(series.series("count"), [10, 10])
    np.testing.assert_allclose(series.series("isl"), [100, (4 * 300 + 6 * 200) / 10])
    same = bucket(trace, 60.0)
    np.testing.assert_array_equal(same.series("count"), [10, 0, 4, 6])
    assert same.frame["filled"].tolist() == [False, True, False, False]
    with pytest.raises(InputError, match="finer than the rate series step 60 s"):
        bucket(trace, 30.0)


def test_rate_series_jitter_is_snapped_to_the_step(tmp_path: Path) -> None:
    stamps = [1700000000.0, 1700000060.004, 1700000119.996, 1700000180.0]
    content = "timestamp,requests\n" + "".join(f"{t},{i + 1}\n" for i, t in enumerate(stamps))
    trace = load_trace([write(tmp_path / "r.csv", content)])
    assert trace.step_s == pytest.approx(60.0, abs=0.01)
    np.testing.assert_array_equal(bucket(trace, 60.0).series("count"), [1, 2, 3, 4])


@pytest.mark.parametrize("interval", [0.0, -1.0, float("nan"), float("inf")])
def test_invalid_interval(interval: float) -> None:
    trace = Trace(np.array([0.0]), [1], [1], [1], ("t",), "mooncake")
    with pytest.raises(InputError, match="positive number of seconds"):
        bucket(trace, interval)


def test_too_many_intervals_is_an_error() -> None:
    span_ms = (MAX_INTERVALS + 1) * 1000.0
    trace = Trace(np.array([0.0, span_ms]), [1, 1], [1, 1], [1, 1], ("t",), "mooncake")
    with pytest.raises(InputError, match="choose a wider interval"):
        bucket(trace, 1.0)


def test_series_rejects_unknown_name() -> None:
    trace = Trace(np.array([0.0]), [1], [1], [1], ("t",), "mooncake")
    with pytest.raises(ValueError, match="unknown series"):
        bucket(trace, 1.0).series("ttft")  # type: ignore[arg-type]
