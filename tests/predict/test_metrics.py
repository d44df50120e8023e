"""Metrics against a direct NumPy computation; the rolling-origin alignment of the backtest."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dynamo_plan.errors import InputError
from dynamo_plan.predict import (
    ConstantPredictor,
    backtest,
    backtest_series,
    best_by_wape,
    forecast_metrics,
    scored_range,
)
from dynamo_plan.predict.backtest import forecasts_frame

VALUES = st.one_of(st.just(0.0), st.floats(1e-3, 1e6))  # no overflowing ratios


def _direct(y: np.ndarray, f: np.ndarray, p90: np.ndarray) -> dict[str, float]:
    mape_terms = [abs(fi - yi) / yi for yi, fi in zip(y, f, strict=True) if yi != 0]
    smape_terms = [
        0.0 if yi + fi == 0 else 2 * abs(fi - yi) / (yi + fi) for yi, fi in zip(y, f, strict=True)
    ]
    return {
        "mape": 100 * float(np.mean(mape_terms)) if mape_terms else float("nan"),
        "smape": 100 * float(np.mean(smape_terms)),
        "wape": 100 * float(np.sum(np.abs(f - y)) / np.sum(y)) if y.sum() > 0 else float("nan"),
        "rmse": float(np.sqrt(np.mean((f - y) ** 2))),
        "mae": float(np.mean(np.abs(f - y))),
        "bias": float(np.mean(f) - np.mean(y)),
        "under_rate": float(np.count_nonzero(f < y)) / y.size,
        "p90_coverage": float(np.count_nonzero(y <= p90)) / y.size,
    }


@settings(max_examples=200, deadline=None)
@given(data=st.data(), n=st.integers(1, 50))
def test_metrics_match_direct_numpy(data: st.DataObject, n: int) -> None:
    y = data.draw(arrays(float, n, elements=VALUES))
    f = data.draw(arrays(float, n, elements=VALUES))
    p90 = f + data.draw(arrays(float, n, elements=st.floats(0, 1e5)))
    got = forecast_metrics(y, f, p90)
    want = _direct(y, f, p90)
    assert got.keys() == want.keys()
    for key, value in want.items():
        if np.isnan(value):
            assert np.isnan(got[key]), key
        else:
            assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-6), key


def test_metrics_reject_mismatched_shapes() -> None:
    with pytest.raises(InputError, match="shapes"):
        forecast_metrics(np.ones(3), np.ones(2), np.ones(3))


def test_scored_range_and_too_few_intervals() -> None:
    assert scored_range(10, 1, 5) == range(5, 10)
    assert scored_range(10, 3, 5) == range(7, 10)
    with pytest.raises(
        InputError, match=r"6 intervals are too few for horizon 2 .* need at least 8"
    ):
        scored_range(6, 2, 5)


@pytest.mark.parametrize("h", [1, 3])
def test_rolling_origin_alignment(h: int) -> None:
    """The constant predictor's forecast for t with horizon h is y[t - h]."""
    y = np.arange(1.0, 21.0) ** 1.5
    steps: list[int] = []
    r = backtest_series(
        y, ConstantPredictor(), horizon=h, warmup=4, on_step=lambda: steps.append(1)
    )
    assert len(steps) == y.size
    np.testing.assert_array_equal(r.forecasts.t, np.arange(4 + h - 1, 20))
    np.testing.assert_allclose(r.forecasts.mean, y[r.forecasts.t - h])
    np.testing.assert_allclose(r.forecasts.actual, y[r.forecasts.t])
    assert r.metrics["under_rate"] == 1.0  # increasing series: the last value is always below


def test_backtest_runs_every_pair_and_ranks() -> None:
    series = {"count": np.arange(1.0, 15.0), "isl": np.full(14, 7.0)}
    results = backtest(series, {"constant": ConstantPredictor}, warmup=3)
    assert [(r.series, r.predictor) for r in results] == [
        ("count", "constant"),
        ("isl", "constant"),
    ]
    assert best_by_wape(results) == {"count": "constant", "isl": "constant"}
    frame = forecasts_frame(results, 60.0)
    assert list(frame.columns) == [
        "series", "predictor", "interval", "start_s", "actual", "forecast", "p50", "p90", "p99",
    ]  # fmt: skip
    assert len(frame) == 2 * (14 - 3)
    assert (frame["start_s"] == frame["interval"] * 60.0).all()
