"""The default predictor's guard: exactly ``constant`` until the evidence is in, then the blend."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamo_plan.errors import InputError
from dynamo_plan.predict import ConstantPredictor, DefaultPredictor, backtest_series
from dynamo_plan.predict.guard import ProdGuard


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.floats(0, 1e5, allow_nan=False), min_size=1, max_size=31),
    h=st.integers(1, 3),
)
def test_short_series_forecast_exactly_as_constant(values: list[float], h: int) -> None:
    """At most ``min_compare + 1`` observations: fewer than 30 comparisons, so s = 0 exactly."""
    default, constant = DefaultPredictor(), ConstantPredictor()
    for v in values:
        default.update(v)
        constant.update(v)
        fd, fc = default.forecast(h), constant.forecast(h)
        np.testing.assert_array_equal(fd.mean, fc.mean)
        for q in (0.1, 0.5, 0.9, 0.99):
            np.testing.assert_array_equal(fd.quantile(q), fc.quantile(q))


def test_random_walks_are_left_to_the_last_value() -> None:
    """On a random walk the last value is the optimal forecast: the guard stays shut on almost
    every run (it may open on a lucky one: <= 5 % by Ville's inequality), and where it stays shut
    the default's forecasts, hence its WAPE, are exactly constant's."""
    rng = np.random.default_rng(5)
    shut = 0
    for _ in range(30):
        y = np.maximum(1000.0 + np.cumsum(rng.normal(0.0, 30.0, 120)), 0.0)
        d = backtest_series(y, DefaultPredictor())
        c = backtest_series(y, ConstantPredictor())
        if np.array_equal(d.forecasts.mean, c.forecasts.mean):
            shut += 1
            assert d.metrics["wape"] == c.metrics["wape"]
            np.testing.assert_array_equal(d.forecasts.p90, c.forecasts.p90)
    assert shut >= 25


def test_guard_false_alarm_rate_is_at_most_alpha() -> None:
    """Ville's inequality: with a challenger exactly as good as the benchmark (loss differential
    of mean 0), the fraction of runs in which the gate ever opens is <= alpha (+ 3 MC sd)."""
    rng = np.random.default_rng(11)
    runs, steps, alpha = 400, 300, 0.05
    opened = 0
    for _ in range(runs):
        g = ProdGuard(min_compare=0, alpha=alpha)
        y = rng.normal(0.0, 1.0, steps)
        ever = False
        for v in y:
            # A and B symmetric around the truth: |y - a| - |y - b| has mean 0
            g.update(float(v), 0.5, -0.5)
            ever |= g.weight() > 0.0
        opened += ever
    assert opened / runs <= alpha + 3 * np.sqrt(alpha * (1 - alpha) / runs)


def test_guard_opens_for_a_better_challenger_and_stays_below_max_weight() -> None:
    rng = np.random.default_rng(3)
    g = ProdGuard()
    weights = []
    for _ in range(120):
        y = float(rng.normal(0.0, 1.0))
        g.update(y, 0.0, 2.0)  # challenger at the truth's mean, benchmark 2 sd off
        weights.append(g.weight())
    assert all(w == 0.0 for w in weights[: g.min_compare - 1])
    assert weights[-1] > 0.5
    assert max(weights) <= g.max_weight + 1e-12


def test_guard_closes_when_the_challenger_turns_bad() -> None:
    g = ProdGuard()
    for _ in range(100):
        g.update(10.0, 10.0, 12.0)
    assert g.weight() == pytest.approx(g.max_weight)
    for _ in range(20):
        g.update(12.0, 10.0, 12.0)  # now the benchmark is exact
    assert g.weight() == 0.0


@pytest.mark.parametrize(
    "kwargs",
    [{"min_compare": -1}, {"alpha": 0.0}, {"alpha": 1.0}, {"eta": 0.6}, {"max_weight": 0.4}],
)
def test_guard_rejects_bad_parameters(kwargs: dict[str, float]) -> None:
    with pytest.raises(InputError, match="guard"):
        ProdGuard(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "shape",
    [
        lambda t: 300 + 150 * np.sin(2 * np.pi * t / 12),  # strong season
        lambda t: 100 + 5.0 * t,  # strong trend
    ],
    ids=["season12", "trend"],
)
@pytest.mark.parametrize("seed", [1, 2])
def test_default_beats_constant_on_strong_season_or_trend(shape: object, seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = np.arange(200)
    y = np.maximum(shape(t) + rng.normal(0, 20, t.size), 0.0)  # type: ignore[operator]
    default = backtest_series(y, DefaultPredictor()).metrics["wape"]
    constant = backtest_series(y, ConstantPredictor()).metrics["wape"]
    assert default < constant
