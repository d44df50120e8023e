"""One contract, every registered predictor (prophet only where its extra is installed)."""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamo_plan.errors import InputError
from dynamo_plan.predict import Predictor, available_predictors, make_predictor, predictor_names

INSTALLED = [n for n, ok in available_predictors().items() if ok]
# update-then-forecast equals a fresh fit on the same data (arima: only right after a refit).
FRESH_FIT_EQUAL = {"constant", "kalman", "default", "prophet"}

RNG = np.random.default_rng(7)
SERIES = np.maximum(200 + 30 * np.sin(np.arange(30) / 3) + RNG.normal(0, 15, 30), 0).round()


def _fresh(name: str) -> Predictor:
    return make_predictor(name)


_FED: dict[tuple[str, bytes], Predictor] = {}


def _fed(name: str, values: np.ndarray) -> Predictor:
    """A predictor fed ``values`` one ``update`` at a time (cached per input; a deep copy)."""
    key = (name, np.asarray(values, dtype=float).tobytes())
    if key not in _FED:
        p = _fresh(name)
        for v in values:
            p.update(float(v))
        _FED[key] = p
    return copy.deepcopy(_FED[key])


def _same(a: Predictor, b: Predictor, h: int = 3) -> None:
    fa, fb = a.forecast(h), b.forecast(h)
    np.testing.assert_allclose(fa.mean, fb.mean, rtol=1e-9, atol=1e-9)
    for q in (0.5, 0.9, 0.99):
        np.testing.assert_allclose(fa.quantile(q), fb.quantile(q), rtol=1e-9, atol=1e-9)


def test_every_registered_predictor_is_covered() -> None:
    assert set(predictor_names()) == {"constant", "arima", "kalman", "prophet", "default"}
    assert set(INSTALLED) <= set(predictor_names())


@pytest.mark.parametrize("name", INSTALLED)
@pytest.mark.parametrize("h", [1, 4])
def test_forecast_shape_order_and_sign(name: str, h: int) -> None:
    p = _fed(name, SERIES)
    f = p.forecast(h)
    assert f.mean.shape == (h,)
    assert np.all(f.mean >= 0)
    qs = [f.quantile(q) for q in (0.01, 0.1, 0.5, 0.9, 0.99)]
    for lo, hi in itertools.pairwise(qs):
        assert lo.shape == (h,)
        assert np.all(lo <= hi + 1e-9)
    assert np.all(qs[0] >= 0)
    assert np.all(qs[-1] > qs[2] - 1e-9)  # p99 >= p50


@pytest.mark.parametrize("name", INSTALLED)
def test_before_any_data_forecast_is_zero_with_no_spread(name: str) -> None:
    f = _fresh(name).forecast(2)
    assert np.all(f.mean == 0)
    assert np.all(f.quantile(0.99) == 0)


@pytest.mark.parametrize("name", INSTALLED)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, -1.0, -1e-9, True, "3", None])
def test_bad_observations_are_rejected(name: str, bad: object) -> None:
    p = _fed(name, SERIES[:6])
    before = p.forecast(1).mean.copy()
    with pytest.raises(InputError, match="observation"):
        p.update(bad)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"series\[1\]"):
        p.warm_start([5.0, bad, 6.0])  # type: ignore[list-item]
    np.testing.assert_allclose(p.forecast(1).mean, before)  # nothing was consumed


@pytest.mark.parametrize("name", INSTALLED)
def test_bad_horizon_is_rejected(name: str) -> None:
    with pytest.raises(InputError, match="horizon"):
        _fed(name, SERIES[:6]).forecast(0)


@pytest.mark.parametrize("name", INSTALLED)
def test_leading_zeros_are_skipped(name: str) -> None:
    with_zeros = _fed(name, np.concatenate([np.zeros(4), SERIES[:15]]))
    without = _fed(name, SERIES[:15])
    assert with_zeros.n_observations == without.n_observations == 15
    _same(with_zeros, without)


@pytest.mark.parametrize("name", INSTALLED)
def test_zeros_after_the_start_are_data(name: str) -> None:
    p = _fed(name, np.array([5.0, 0.0, 0.0, 7.0, 0.0]))
    assert p.n_observations == 5


@pytest.mark.parametrize("name", INSTALLED)
def test_warm_start_equals_sequence_of_updates(name: str) -> None:
    warm = _fresh(name)
    warm.warm_start(SERIES)
    _same(warm, _fed(name, SERIES))


@pytest.mark.parametrize("name", [n for n in INSTALLED if n in FRESH_FIT_EQUAL])
def test_interleaved_forecasts_equal_a_fresh_fit(name: str) -> None:
    live = _fresh(name)
    for v in SERIES:
        live.update(float(v))
        live.forecast(2).quantile(0.9)  # forecasting must not change the state
    fresh = _fresh(name)
    fresh.warm_start(SERIES)
    _same(live, fresh)


@pytest.mark.parametrize("name", [n for n in INSTALLED if n != "arima"])
@settings(max_examples=25, deadline=None)
@given(
    values=st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=40),
    q1=st.floats(0.001, 0.999),
    q2=st.floats(0.001, 0.999),
)
def test_quantiles_monotone_in_q(name: str, values: list[float], q1: float, q2: float) -> None:
    p = _fresh(name)
    p.warm_start(values)
    f = p.forecast(3)
    lo, hi = sorted((q1, q2))
    assert np.all(f.quantile(lo) <= f.quantile(hi) + 1e-6 * (1 + np.abs(f.quantile(hi))))
    assert np.all(f.quantile(lo) >= 0) and np.all(f.mean >= 0)


@pytest.mark.parametrize("q", [0.0, 1.0, -0.5, 1.5, math.nan])
def test_quantile_level_out_of_range_is_rejected(q: float) -> None:
    with pytest.raises(InputError, match="quantile level"):
        _fed("constant", SERIES[:5]).forecast(1).quantile(q)
