"""The numpy PCHIP matches scipy's PchipInterpolator, is exact at the knots and shape-preserving."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.interpolate import PchipInterpolator

from dynamo_plan.core.profile_interp import Pchip

finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)


@st.composite
def samples(draw: st.DrawFn, min_size: int = 2) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(min_size, 12))
    steps = draw(st.lists(st.floats(0.01, 100.0), min_size=n - 1, max_size=n - 1))
    x0 = draw(finite)
    x = np.concatenate([[x0], x0 + np.cumsum(steps)])
    y = np.array(draw(st.lists(finite, min_size=n, max_size=n)))
    return x, y


@settings(deadline=None)
@given(samples(min_size=2))
def test_matches_scipy(xy: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = xy
    q = np.linspace(x[0], x[-1], 97)
    ours = Pchip.fit(x, y)(q)
    ref = PchipInterpolator(x, y)(q)
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-9 * (1 + np.abs(y).max()))


@settings(deadline=None)
@given(samples(min_size=1))
def test_exact_at_knots(xy: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = xy
    assert np.array_equal(Pchip.fit(x, y)(x), y)


@settings(deadline=None)
@given(samples(min_size=2))
def test_monotone_data_gives_monotone_curve(xy: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = xy
    y = np.sort(y)
    v = Pchip.fit(x, y)(np.linspace(x[0], x[-1], 301))
    assert np.all(np.diff(v) >= -1e-9 * (1 + np.abs(y).max()))


def test_clamps_outside_the_knots() -> None:
    f = Pchip.fit([1.0, 2.0, 4.0], [10.0, 20.0, 5.0])
    assert f(np.array([0.0, 9.0])).tolist() == [10.0, 5.0]


@pytest.mark.parametrize(
    ("x", "y"), [([1.0, 1.0], [1.0, 2.0]), ([2.0, 1.0], [1.0, 2.0]), ([], []), ([1.0], [np.nan])]
)
def test_rejects_bad_knots(x: list[float], y: list[float]) -> None:
    with pytest.raises(ValueError):
        Pchip.fit(x, y)
