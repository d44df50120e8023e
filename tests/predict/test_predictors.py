"""Predictor-specific behaviour: arima's refits and log1p rule, kalman's adaptive band, registry."""

from __future__ import annotations

import numpy as np
import pytest

from dynamo_plan.errors import InputError, MissingExtraError
from dynamo_plan.predict import (
    ArimaPredictor,
    ConstantPredictor,
    DefaultPredictor,
    KalmanPredictor,
    available_predictors,
    describe_predictors,
    make_predictor,
)
from dynamo_plan.predict.base import Forecast


def test_constant_repeats_the_last_value() -> None:
    p = ConstantPredictor()
    p.warm_start([3.0, 8.0, 5.0])
    np.testing.assert_array_equal(p.forecast(3).mean, [5.0, 5.0, 5.0])


def test_kalman_band_adapts_to_the_data_units() -> None:
    rng = np.random.default_rng(1)
    small, large = KalmanPredictor(), KalmanPredictor()
    noise = rng.normal(0, 1, 60)
    small.warm_start(100 + noise)
    large.warm_start(100_000 + 1000 * noise)
    width_small = small.forecast(1).quantile(0.9)[0] - small.forecast(1).mean[0]
    width_large = large.forecast(1).quantile(0.9)[0] - large.forecast(1).mean[0]
    assert 300 < width_large / width_small < 3000  # scales with the data (x1000), not fixed r


def test_kalman_follows_a_ramp() -> None:
    p = KalmanPredictor()
    p.warm_start(np.arange(1, 41, dtype=float) * 10)
    assert p.forecast(1).mean[0] == pytest.approx(410, rel=0.02)


def test_kalman_log1p_forecasts_in_data_units() -> None:
    p = KalmanPredictor(log1p=True)
    p.warm_start(np.full(20, 1000.0))
    assert p.forecast(1).mean[0] == pytest.approx(1000, rel=0.01)


def test_arima_fits_after_min_points_and_refits_as_history_grows() -> None:
    rng = np.random.default_rng(3)
    y = np.maximum(300 + np.cumsum(rng.normal(0, 10, 40)), 0)
    p = ArimaPredictor(min_points=10, refit_every=50)
    p.warm_start(y[:9])
    assert p.fits == 0
    p.warm_start(y[9:])
    assert p.fits >= 3  # 10, then growth by half: 15, 23, 35
    assert p.order is not None


def test_arima_constant_window_forecasts_the_constant() -> None:
    p = ArimaPredictor()
    p.warm_start(np.full(12, 42.0))
    assert p.forecast(2).mean == pytest.approx([42.0, 42.0])


def test_default_members_weights_sum_to_one() -> None:
    p = DefaultPredictor()
    p.warm_start(np.arange(1, 30, dtype=float))
    w = p.member_weights()
    assert set(w) == set(p.members)
    assert sum(w.values()) == pytest.approx(1.0)


def test_default_beats_constant_on_a_noisy_level() -> None:
    rng = np.random.default_rng(5)
    y = rng.poisson(300, 200).astype(float)
    d, c = DefaultPredictor(), ConstantPredictor()
    err_d, err_c = [], []
    for v in y:
        err_d.append(abs(d.forecast(1).mean[0] - v))
        err_c.append(abs(c.forecast(1).mean[0] - v))
        d.update(v)
        c.update(v)
    assert sum(err_d[20:]) < 0.85 * sum(err_c[20:])


def test_empirical_band_is_conformal() -> None:
    errors = np.arange(1.0, 10.0)  # 9 errors: the p90 level needs the ceil(10*0.9)=9th
    f = Forecast.empirical(np.array([100.0]), errors)
    assert f.quantile(0.9)[0] == pytest.approx(109.0)
    assert f.quantile(0.5)[0] == pytest.approx(105.0)


def test_registry_unknown_name_suggests_the_nearest() -> None:
    with pytest.raises(InputError, match=r"unknown predictor 'kalmn' \(did you mean 'kalman'\?\)"):
        make_predictor("kalmn")
    with pytest.raises(InputError, match="constant, arima, kalman, prophet, default"):
        make_predictor("nope")


def test_registry_bad_parameter() -> None:
    with pytest.raises(InputError, match="bad parameters"):
        make_predictor("kalman", q=1)


def test_registry_lists_every_predictor_with_parameters() -> None:
    described = {d["name"]: d for d in describe_predictors()}
    assert described["kalman"]["params"] == {
        "q_level": 1.0,
        "q_trend": 0.1,
        "r": 10.0,
        "min_points": 5,
        "log1p": False,
        "nis_window": 30,
    }
    assert described["prophet"]["extra"] == "prophet"
    assert described["prophet"]["installed"] == available_predictors()["prophet"]


@pytest.mark.skipif(available_predictors()["prophet"], reason="prophet is installed here")
def test_prophet_missing_extra_message() -> None:
    with pytest.raises(MissingExtraError) as info:
        make_predictor("prophet")
    assert str(info.value) == (
        "the prophet predictor needs the 'prophet' package: pip install 'dynamo-plan[prophet]'"
    )


def test_prophet_forecasts_when_installed() -> None:
    pytest.importorskip("prophet")
    p = make_predictor("prophet")
    p.warm_start(np.arange(1, 21, dtype=float))
    assert p.forecast(2).mean.shape == (2,)
