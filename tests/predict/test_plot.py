"""The backtest plot: legends outside the data area, plain tick labels."""

from __future__ import annotations

import numpy as np

from dynamo_plan.predict import ConstantPredictor, KalmanPredictor, backtest
from dynamo_plan.predict.plot import draw_backtest
from tests.plot_checks import assert_legends_outside, assert_plain_tick_labels


def test_plot_conventions() -> None:
    rng = np.random.default_rng(0)
    series = {
        "count": 100 + 10 * rng.standard_normal(40),
        "isl": 12_000 + 2_000 * rng.standard_normal(40),
    }
    results = backtest(series, {"constant": ConstantPredictor, "kalman": KalmanPredictor})
    fig = draw_backtest(results, 60.0, title="synthetic")
    assert assert_legends_outside(fig) == 2
    assert_plain_tick_labels(fig)
