"""trace_stats: consistency with bucket() and direct numpy computations; JSON-able."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamo_plan.trace import Trace, bucket, load_trace, trace_stats
from dynamo_plan.trace.stats import length_summary
from tests.trace.cases import write


def test_stats_of_a_real_trace(shared_data: Path) -> None:
    trace = load_trace([shared_data / "traces" / "azure2023_code_15min.csv"])
    stats = trace_stats(trace, interval_s=30.0)
    json.dumps(stats, allow_nan=False)  # strictly JSON-able
    assert stats["requests"] == len(trace) and stats["format"] == "azure"
    counts = bucket(trace, 30.0).series("count")
    assert stats["rate_rps"] == {"mean": counts.mean() / 30.0, "peak": counts.max() / 30.0}
    assert stats["intervals"] == counts.size
    isl = stats["isl"]
    assert isinstance(isl, dict)
    assert isl["mean"] == pytest.approx(trace.input_length.mean())
    for q in (50, 90, 99):
        expected = np.percentile(trace.input_length, q, method="inverted_cdf")
        assert isl[f"p{q}"] == expected
    dispersion = stats["index_of_dispersion"]
    assert isinstance(dispersion, dict)
    for window in (1, 10, 60):
        per_window = bucket(trace, float(window)).series("count")
        assert dispersion[f"{window}s"] == pytest.approx(per_window.var() / per_window.mean())


@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 50_000)), min_size=1, max_size=40).filter(
        lambda rows: any(w > 0 for w, _ in rows)
    )
)
@settings(max_examples=50, deadline=None)
def test_weighted_percentiles_equal_repeated_records(rows: list[tuple[int, int]]) -> None:
    weights = np.array([w for w, _ in rows], dtype=float)
    values = np.array([v for _, v in rows], dtype=float)
    expanded = np.repeat(values, weights.astype(int))
    summary = length_summary(values, weights)
    assert summary["mean"] == pytest.approx(expanded.mean())
    for q in (50, 90, 99):
        assert summary[f"p{q}"] == np.percentile(expanded, q, method="inverted_cdf")


def test_rate_series_stats(tmp_path: Path) -> None:
    content = "timestamp,requests\n0,60\n60,120\n120,0\n180,60\n"
    trace = load_trace([write(tmp_path / "r.csv", content)])
    stats = trace_stats(trace, interval_s=60.0)
    json.dumps(stats, allow_nan=False)
    assert stats["requests"] == 240 and stats["step_s"] == 60.0
    assert stats["rate_rps"] == {"mean": 1.0, "peak": 2.0}
    assert stats["isl"] == {"mean": None, "p50": None, "p90": None, "p99": None}
    dispersion = stats["index_of_dispersion"]
    assert isinstance(dispersion, dict)
    assert dispersion["1s"] is None and dispersion["10s"] is None  # finer than the step
    counts = np.array([60.0, 120.0, 0.0, 60.0])
    assert dispersion["60s"] == pytest.approx(counts.var() / counts.mean())


def test_single_request_has_no_dispersion() -> None:
    trace = Trace(np.array([0.0]), [5], [6], [1], ("t",), "mooncake")
    stats = trace_stats(trace)
    assert stats["index_of_dispersion"] == {"1s": None, "10s": None, "60s": None}
    assert stats["span_s"] == 0.0 and stats["requests"] == 1
