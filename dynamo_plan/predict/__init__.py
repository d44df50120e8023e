"""Load predictors (constant, arima, kalman, prophet, default), their registry and the backtest.

Public API::

    Predictor, Forecast                      the interface (base.py)
    available_predictors() -> dict[str, bool]
    make_predictor(name, **params) -> Predictor
    backtest(series, factories, *, horizon, warmup, on_step) -> list[BacktestResult]
    forecast_metrics(actual, forecast, p90) -> dict[str, float]
"""

from dynamo_plan.predict.arima import ArimaPredictor
from dynamo_plan.predict.backtest import (
    DEFAULT_WARMUP,
    BacktestResult,
    SeriesForecasts,
    backtest,
    backtest_series,
    best_by_wape,
    scored_range,
)
from dynamo_plan.predict.base import Forecast, Predictor, ResidualWindow
from dynamo_plan.predict.constant import ConstantPredictor
from dynamo_plan.predict.ensemble import DefaultPredictor
from dynamo_plan.predict.kalman import KalmanPredictor
from dynamo_plan.predict.metrics import METRIC_NAMES, forecast_metrics
from dynamo_plan.predict.prophet import ProphetPredictor
from dynamo_plan.predict.registry import (
    PREDICTORS,
    available_predictors,
    describe_predictors,
    factory,
    make_predictor,
    predictor_names,
)

__all__ = [
    "DEFAULT_WARMUP",
    "METRIC_NAMES",
    "PREDICTORS",
    "ArimaPredictor",
    "BacktestResult",
    "ConstantPredictor",
    "DefaultPredictor",
    "Forecast",
    "KalmanPredictor",
    "Predictor",
    "ProphetPredictor",
    "ResidualWindow",
    "SeriesForecasts",
    "available_predictors",
    "backtest",
    "backtest_series",
    "best_by_wape",
    "describe_predictors",
    "factory",
    "forecast_metrics",
    "make_predictor",
    "predictor_names",
    "scored_range",
]
