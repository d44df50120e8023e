"""Rolling-origin backtest of predictors on bucketed series.

For a series ``y[0..n-1]`` and horizon ``h``, the predictor is fed ``y[0], y[1], ...`` one at a
time; after ``y[i]`` it forecasts ``h`` steps and its step-``h`` forecast is the forecast for
interval ``t = i + h`` (made with data up to ``t - h``; for ``h = 1``, up to ``t - 1``).

Scored intervals: ``t = warmup + h - 1 .. n - 1`` — the same for every predictor, so each has
seen at least ``warmup`` intervals before its first scored forecast (default 5, Dynamo's
``min_points``). Speed: the wall time (``time.perf_counter``, passed in as ``clock``) of one
``update`` + ``forecast``, over every step of the run, as its median (``ms_per_step``), mean
(``ms_per_step_mean``) and maximum (``ms_per_step_max``), in ms. The median is the usual step;
the mean and maximum show the occasional refits (ARIMA's) that dominate the total time, which
is ``ms_per_step_mean`` × steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from dynamo_plan.core.defaults import DEFAULT_WARMUP as DEFAULT_WARMUP  # re-exported
from dynamo_plan.errors import InputError
from dynamo_plan.predict.base import Predictor, check_horizon
from dynamo_plan.predict.metrics import forecast_metrics

if TYPE_CHECKING:  # pandas only for forecasts_frame (--csv)
    import pandas as pd

QUANTILES: tuple[float, ...] = (0.5, 0.9, 0.99)


@dataclass(frozen=True)
class SeriesForecasts:
    """Forecasts of one predictor on one series over the scored intervals ``t``."""

    t: np.ndarray
    actual: np.ndarray
    mean: np.ndarray
    p50: np.ndarray
    p90: np.ndarray
    p99: np.ndarray


@dataclass(frozen=True)
class BacktestResult:
    """Metrics (see :mod:`dynamo_plan.predict.metrics`), speed and forecasts of one run.

    Speed, ms of wall time per step (one ``update`` + ``forecast``): ``ms_per_step`` the median,
    ``ms_per_step_mean`` the mean, ``ms_per_step_max`` the slowest step."""

    series: str
    predictor: str
    metrics: dict[str, float]
    ms_per_step: float
    forecasts: SeriesForecasts
    ms_per_step_mean: float
    ms_per_step_max: float

    def row(self) -> dict[str, float | str]:
        """Flat record: series, predictor, every metric, ms_per_step (median),
        ms_per_step_mean, ms_per_step_max."""
        return {
            "series": self.series,
            "predictor": self.predictor,
            **self.metrics,
            "ms_per_step": self.ms_per_step,
            "ms_per_step_mean": self.ms_per_step_mean,
            "ms_per_step_max": self.ms_per_step_max,
        }


def scored_range(n: int, horizon: int, warmup: int = DEFAULT_WARMUP) -> range:
    """Target intervals that are scored; InputError with the numbers when fewer than 2."""
    h = check_horizon(horizon, "backtest")
    if warmup < 1:
        raise InputError(f"backtest: warmup must be >= 1 interval, got {warmup}")
    first = warmup + h - 1
    if n - first < 2:
        raise InputError(
            f"backtest: {n} intervals are too few for horizon {h} with {warmup} warm-up "
            f"intervals: need at least {first + 2} (warmup + horizon + 1)"
        )
    return range(first, n)


def backtest_series(
    series: np.ndarray,
    predictor: Predictor,
    *,
    series_name: str = "series",
    horizon: int = 1,
    warmup: int = DEFAULT_WARMUP,
    on_step: Callable[[], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> BacktestResult:
    """Run one fresh ``predictor`` over ``series`` (see the module docstring)."""
    y = np.asarray(series, dtype=float)
    scored = scored_range(y.size, horizon, warmup)
    n_scored = len(scored)
    mean = np.empty(n_scored)
    quant = np.empty((len(QUANTILES), n_scored))
    durations = np.empty(y.size)
    for i in range(y.size):
        start = clock()
        predictor.update(float(y[i]))
        fc = predictor.forecast(horizon)
        durations[i] = clock() - start
        t = i + horizon
        if t >= scored.start and t < y.size:
            j = t - scored.start
            mean[j] = fc.mean[-1]
            for k, q in enumerate(QUANTILES):
                quant[k, j] = fc.quantile(q)[-1]
        if on_step is not None:
            on_step()
    actual = y[scored.start :]
    forecasts = SeriesForecasts(
        np.arange(scored.start, y.size), actual, mean, quant[0], quant[1], quant[2]
    )
    return BacktestResult(
        series=series_name,
        predictor=predictor.name,
        metrics=forecast_metrics(actual, mean, quant[1]),
        ms_per_step=float(np.median(durations) * 1000.0),
        forecasts=forecasts,
        ms_per_step_mean=float(np.mean(durations) * 1000.0),
        ms_per_step_max=float(np.max(durations) * 1000.0),
    )


def backtest(
    series: Mapping[str, np.ndarray],
    factories: Mapping[str, Callable[[], Predictor]],
    *,
    horizon: int = 1,
    warmup: int = DEFAULT_WARMUP,
    on_step: Callable[[], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> list[BacktestResult]:
    """Every predictor (a fresh one per series, from ``factories``) over every named series."""
    results = []
    for name, values in series.items():
        for factory in factories.values():
            results.append(
                backtest_series(
                    values,
                    factory(),
                    series_name=name,
                    horizon=horizon,
                    warmup=warmup,
                    on_step=on_step,
                    clock=clock,
                )
            )
    return results


def best_by_wape(results: Sequence[BacktestResult]) -> dict[str, str]:
    """Per series, the predictor with the lowest WAPE (NaN ranks last; ties: first listed)."""
    best: dict[str, tuple[float, str]] = {}
    for r in results:
        w = r.metrics["wape"]
        key = w if np.isfinite(w) else float("inf")
        if r.series not in best or key < best[r.series][0]:
            best[r.series] = (key, r.predictor)
    return {s: p for s, (_, p) in best.items()}


def forecasts_frame(results: Sequence[BacktestResult], interval_s: float) -> pd.DataFrame:
    """Long table of every scored forecast: series, predictor, interval, start_s (``interval ×
    interval_s``), actual, forecast (the mean), p50, p90, p99."""
    import pandas as pd

    frames = [
        pd.DataFrame(
            {
                "series": r.series,
                "predictor": r.predictor,
                "interval": r.forecasts.t,
                "start_s": r.forecasts.t * float(interval_s),
                "actual": r.forecasts.actual,
                "forecast": r.forecasts.mean,
                "p50": r.forecasts.p50,
                "p90": r.forecasts.p90,
                "p99": r.forecasts.p99,
            }
        )
        for r in results
    ]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
