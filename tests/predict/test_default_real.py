"""The default predictor on real data: never worse than ``constant`` (WAPE) on the bundled
sample traces, every series, at 60 s intervals."""

from __future__ import annotations

import pytest

from dynamo_plan.predict import ConstantPredictor, DefaultPredictor, backtest_series
from dynamo_plan.resources import shipped_file
from dynamo_plan.trace import bucket, load_trace

SAMPLES = ["mooncake_conversation_10min.jsonl", "azure2023_conv_10min.csv"]


@pytest.mark.parametrize("sample", SAMPLES)
@pytest.mark.parametrize("series", ["count", "isl", "osl"])
def test_default_never_worse_than_constant(sample: str, series: str) -> None:
    interval = 60.0
    buckets = bucket(load_trace([shipped_file("sample_traces", sample)]), interval)
    y = buckets.series(series)  # type: ignore[arg-type]
    default = backtest_series(y, DefaultPredictor()).metrics["wape"]
    constant = backtest_series(y, ConstantPredictor()).metrics["wape"]
    assert default <= constant + 1e-9, f"{sample} {series} @{interval:g}s: {default} > {constant}"
