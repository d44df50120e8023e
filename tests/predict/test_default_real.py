"""The default predictor on real data: never worse than ``constant`` (WAPE), every series.

The last interval of a bucketed trace ends at the trace's last timestamp (it is partial: a few
requests against hundreds), so it is dropped before scoring, as in ``benchmarks/backtest.py``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

from dynamo_plan.predict import ConstantPredictor, DefaultPredictor, backtest_series
from dynamo_plan.resources import shipped_file
from dynamo_plan.trace import IntervalSeries, bucket, load_trace

SAMPLES = ["mooncake_conversation_10min.jsonl", "azure2023_conv_10min.csv"]
TRACES = [
    "mooncake_conversation_5min.jsonl",
    "mooncake_synthetic_5min.jsonl",
    "azure2023_code_15min.csv",
    "azure2023_conv_5min.csv",
]
SERIES = ["count", "isl", "osl"]


@cache
def _bucketed(path: Path, interval_s: float) -> IntervalSeries:
    return bucket(load_trace([path]), interval_s)


def _assert_not_worse(buckets: IntervalSeries, series: str, label: str) -> None:
    y = buckets.series(series)[:-1]  # type: ignore[arg-type]
    default = backtest_series(y, DefaultPredictor())
    constant = backtest_series(y, ConstantPredictor())
    d, c = default.metrics["wape"], constant.metrics["wape"]
    assert d <= c + 1e-9, f"{label} {series}: default {d} > constant {c}"
    if np.array_equal(default.forecasts.mean, constant.forecasts.mean):  # guard never opened
        np.testing.assert_array_equal(default.forecasts.p90, constant.forecasts.p90)


@pytest.mark.parametrize("sample", SAMPLES)
@pytest.mark.parametrize("series", SERIES)
def test_default_never_worse_than_constant_on_samples(sample: str, series: str) -> None:
    """10-minute samples at 10 s: 59 complete intervals, enough for the guard to open."""
    buckets = _bucketed(shipped_file("sample_traces", sample), 10.0)
    _assert_not_worse(buckets, series, f"{sample} @10s")


@pytest.mark.parametrize("trace", TRACES)
@pytest.mark.parametrize("series", SERIES)
def test_default_never_worse_than_constant_on_trace_excerpts(
    shared_data: Path, trace: str, series: str
) -> None:
    """The excerpts in tests/data (5 or 15 minutes) at 5 s: 59 or 179 complete intervals."""
    buckets = _bucketed(shared_data / "traces" / trace, 5.0)
    _assert_not_worse(buckets, series, f"{trace} @5s")
