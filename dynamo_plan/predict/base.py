"""The predictor interface (after statsforecast/sktime) and the pieces every predictor shares.

A :class:`Predictor` is built from hyper-parameters only, fed one observation at a time with
:meth:`Predictor.update` (or a whole bucketed series with :meth:`Predictor.warm_start`) and asked
for a :class:`Forecast` of the next ``h`` intervals. Observations are per-interval values in the
series' own units (requests per interval, mean input tokens, mean output tokens).

Boundary rules, common to every predictor:

- an observation must be a finite real number >= 0; NaN, +-inf, negatives, booleans and
  non-numbers raise :class:`~dynamo_plan.errors.InputError` (they are never turned into 0);
- zeros before the first non-zero value are skipped (a trace that starts idle has not started);
- before any data (or only leading zeros) ``forecast`` returns mean 0 with a zero-width band
  (every quantile 0): nothing has been seen, so nothing is predicted to arrive.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, ClassVar

import numpy as np

from dynamo_plan.errors import InputError

__all__ = [
    "Forecast",
    "Predictor",
    "ResidualWindow",
    "check_horizon",
    "check_observation",
]

QuantileFn = Callable[[float], np.ndarray]
_STD_NORMAL = NormalDist()  # stdlib: no scipy.stats import (≈0.5 s) on every CLI start


def _check_q(q: float) -> float:
    if isinstance(q, bool) or not isinstance(q, int | float | np.floating) or not 0.0 < q < 1.0:
        raise InputError(f"quantile level must be a number in (0, 1), got {q!r}")
    return float(q)


@dataclass(frozen=True)
class Forecast:
    """A forecast of the next ``h`` intervals.

    ``mean`` has shape ``(h,)`` and is never negative. ``quantile(q)`` returns the level-``q``
    predictive quantile per step (shape ``(h,)``), clipped at 0 and non-decreasing in ``q``
    (each constructor below builds a quantile function that is monotone in ``q``; clipping at 0
    keeps it so).
    """

    mean: np.ndarray
    _quantile: QuantileFn = field(repr=False)

    def quantile(self, q: float) -> np.ndarray:
        """Level-``q`` quantile per step, ``q`` in (0, 1); never negative."""
        values = np.asarray(self._quantile(_check_q(q)), dtype=float)
        big = np.finfo(float).max
        return np.asarray(np.maximum(np.nan_to_num(values, nan=0.0, posinf=big), 0.0), dtype=float)

    @property
    def horizon(self) -> int:
        """Number of forecast steps ``h``."""
        return int(self.mean.shape[0])

    @staticmethod
    def point(mean: Iterable[float] | np.ndarray) -> Forecast:
        """A forecast without spread: every quantile equals the (clipped) mean."""
        m = np.maximum(np.asarray(mean, dtype=float).reshape(-1), 0.0)
        return Forecast(m, lambda q: m)

    @staticmethod
    def gaussian(mean: np.ndarray, std: np.ndarray) -> Forecast:
        """Normal predictive distribution per step: ``q`` -> ``mean + std * Phi^-1(q)``."""
        mu = np.asarray(mean, dtype=float).reshape(-1)
        sd = np.maximum(np.asarray(std, dtype=float).reshape(-1), 0.0)
        return Forecast(np.maximum(mu, 0.0), lambda q: mu + sd * _STD_NORMAL.inv_cdf(q))

    @staticmethod
    def log_gaussian(log_mean: np.ndarray, log_std: np.ndarray) -> Forecast:
        """Normal in ``log1p`` space mapped back with ``expm1`` (the mean is the median)."""
        mu = np.asarray(log_mean, dtype=float).reshape(-1)
        sd = np.maximum(np.asarray(log_std, dtype=float).reshape(-1), 0.0)
        return Forecast(
            np.maximum(np.expm1(mu), 0.0), lambda q: np.expm1(mu + sd * _STD_NORMAL.inv_cdf(q))
        )

    @staticmethod
    def empirical(mean: np.ndarray, errors: np.ndarray) -> Forecast:
        """Mean plus conformal quantiles of past one-step errors (``actual - forecast``).

        Split-conformal rule: with ``n`` sorted errors the ``q`` quantile is the
        ``k = ceil((n + 1) q)``-th smallest (clipped to 1..n), which covers a new exchangeable
        error with probability >= ``q`` while ``k <= n``; ``k`` is non-decreasing in ``q``. Step ``k`` of a multi-step forecast
        widens the errors by ``sqrt(k)`` (random-walk growth of the error). No errors: no spread.
        """
        m = np.maximum(np.asarray(mean, dtype=float).reshape(-1), 0.0)
        e = np.sort(np.asarray(errors, dtype=float).reshape(-1))
        if e.size == 0:
            return Forecast.point(m)
        widen = np.sqrt(np.arange(1, m.shape[0] + 1, dtype=float))
        n = e.size

        def quantile(q: float) -> np.ndarray:
            k = min(max(math.ceil((n + 1) * q), 1), n)  # conformal order statistic, 1-based
            return np.asarray(m + widen * float(e[k - 1]), dtype=float)

        return Forecast(m, quantile)


def check_observation(y: Any, who: str) -> float:
    """``y`` as a float; InputError unless it is a finite real number >= 0."""
    if isinstance(y, bool) or not isinstance(y, int | float | np.integer | np.floating):
        raise InputError(f"{who}: observation must be a number >= 0, got {y!r}")
    value = float(y)
    if not math.isfinite(value) or value < 0.0:
        raise InputError(f"{who}: observation must be a finite number >= 0, got {value!r}")
    return value


def check_horizon(h: Any, who: str) -> int:
    """``h`` as an int >= 1, else InputError."""
    if isinstance(h, bool) or not isinstance(h, int | np.integer) or h < 1:
        raise InputError(f"{who}: forecast horizon must be an integer >= 1, got {h!r}")
    return int(h)


class ResidualWindow:
    """Rolling window of one-step errors ``actual - forecast`` (the shared empirical-band helper).

    ``size`` is the number of most recent errors kept (default 50 intervals).
    """

    def __init__(self, size: int = 50) -> None:
        if size < 1:
            raise InputError(f"residual window size must be >= 1, got {size}")
        self._errors: deque[float] = deque(maxlen=size)

    def add(self, actual: float, forecast: float) -> None:
        """Record the error of a one-step forecast once its actual is known."""
        self._errors.append(actual - forecast)

    def errors(self) -> np.ndarray:
        """The kept errors, oldest first."""
        return np.fromiter(self._errors, dtype=float, count=len(self._errors))

    def forecast(self, mean: np.ndarray) -> Forecast:
        """``Forecast.empirical(mean, errors)``."""
        return Forecast.empirical(mean, self.errors())


class Predictor(ABC):
    """A one-series online forecaster.

    Subclasses implement :meth:`_observe` (one validated observation, leading zeros already
    skipped) and :meth:`_forecast` (called only once at least one observation was seen).
    ``params`` lists the hyper-parameters with their values (for ``predict list`` and reports).
    """

    name: ClassVar[str] = "predictor"
    #: the constructor's hyper-parameters, each kept as ``self._<name>``: what :attr:`params` reports
    param_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self._started = False
        self._n = 0

    @property
    def n_observations(self) -> int:
        """Observations consumed (leading zeros not counted)."""
        return self._n

    @property
    def params(self) -> dict[str, Any]:
        """Hyper-parameters as given to the constructor (those named in :attr:`param_names`)."""
        return {name: getattr(self, f"_{name}") for name in self.param_names}

    def update(self, y: float) -> None:
        """Feed one observation (a finite number >= 0); leading zeros are skipped."""
        value = check_observation(y, f"predictor '{self.name}'")
        self._feed(value)

    def _feed(self, value: float) -> None:
        if not self._started:
            if value == 0.0:
                return
            self._started = True
        self._n += 1
        self._observe(value)

    def warm_start(self, series: Iterable[float] | np.ndarray) -> None:
        """Feed a whole series (e.g. a trace's bucketed series); validated in full before use."""
        values = list(series) if not isinstance(series, np.ndarray) else series.tolist()
        checked = []
        for i, v in enumerate(values):
            try:
                checked.append(check_observation(v, f"predictor '{self.name}'"))
            except InputError as e:
                raise InputError(f"{e} (series[{i}])") from None
        for v in checked:
            self._feed(v)

    def forecast(self, h: int = 1) -> Forecast:
        """Forecast the next ``h`` intervals; before any data: mean 0, zero-width band."""
        steps = check_horizon(h, f"predictor '{self.name}'")
        if not self._started:
            return Forecast.point(np.zeros(steps))
        return self._forecast(steps)

    @abstractmethod
    def _observe(self, y: float) -> None: ...

    @abstractmethod
    def _forecast(self, h: int) -> Forecast: ...
