"""Correction factors: bounded, smoothed, unknown keeps the previous value."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynamo_plan.core.correction import (
    CorrectionConfig,
    Corrections,
    smooth,
    update_corrections,
)
from dynamo_plan.errors import InputError

samples = st.floats(1e-6, 1e6, allow_nan=False)
weights = st.floats(0.01, 1.0)


@given(st.floats(0.5, 3.0), samples, weights)
def test_one_sample_stays_in_bounds_and_moves_at_most_the_weight(
    prev: float, sample: float, w: float
) -> None:
    cfg = CorrectionConfig(lo=0.5, hi=3.0, smoothing=w)
    new = smooth(prev, sample, cfg)
    assert cfg.lo <= new <= cfg.hi
    clipped = min(max(sample, cfg.lo), cfg.hi)
    assert abs(new - prev) <= w * abs(clipped - prev) + 1e-12
    assert abs(new - prev) <= w * (cfg.hi - cfg.lo) + 1e-12


def test_noisy_interval_does_not_make_a_decode_cliff() -> None:
    # Dynamo: observed/expected = 7 turns d_cf from 1 into 7 in one interval
    cfg = CorrectionConfig()  # lo 0.5, hi 3, weight 0.3
    c = update_corrections(
        Corrections(),
        cfg,
        observed_ttft_ms=None,
        expected_ttft_ms=None,
        observed_itl_ms=70.0,
        expected_itl_ms=10.0,
    )
    assert c.decode == pytest.approx(1.0 + 0.3 * (3.0 - 1.0))
    assert c.prefill == 1.0


def test_unknown_keeps_previous_and_disabled_pins_one() -> None:
    prev = Corrections(1.7, 0.8)
    kept = update_corrections(
        prev,
        CorrectionConfig(),
        observed_ttft_ms=None,
        expected_ttft_ms=50.0,
        observed_itl_ms=12.0,
        expected_itl_ms=0.0,
    )
    assert kept == prev
    off = update_corrections(
        prev,
        CorrectionConfig(enabled=False),
        observed_ttft_ms=500.0,
        expected_ttft_ms=50.0,
        observed_itl_ms=30.0,
        expected_itl_ms=10.0,
    )
    assert off == Corrections(1.0, 1.0)


@given(st.floats(0.5, 3.0), st.floats(0.6, 2.9))
def test_a_steady_sample_is_approached(prev: float, target: float) -> None:
    cfg = CorrectionConfig()
    c = prev
    for _ in range(200):
        c = smooth(c, target, cfg)
    assert c == pytest.approx(target, abs=1e-6)


def test_max_step_caps_the_move() -> None:
    cfg = CorrectionConfig(smoothing=1.0, max_step=0.25)
    assert smooth(1.0, 3.0, cfg) == pytest.approx(1.25)
    assert smooth(1.0, 0.1, cfg) == pytest.approx(0.75)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lo": 0.0},
        {"lo": 1.5},
        {"hi": 0.9},
        {"smoothing": 0.0},
        {"smoothing": 1.5},
        {"max_step": 0.0},
    ],
)
def test_bad_config(kwargs: dict[str, float]) -> None:
    with pytest.raises(InputError, match="correction"):
        CorrectionConfig(**kwargs)  # type: ignore[arg-type]
