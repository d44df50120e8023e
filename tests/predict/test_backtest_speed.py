"""Per-step cost of a backtest: median, mean and maximum, so occasional refits are visible."""

from __future__ import annotations

import numpy as np
import pytest

from dynamo_plan.predict import ConstantPredictor, backtest_series


class SteppingClock:
    """Each step (one ``update`` + ``forecast``) lasts the next of ``durations_s``: the clock is
    read twice per step, at its start and at its end."""

    def __init__(self, durations_s: list[float]) -> None:
        self.durations = iter(durations_s)
        self.now = 0.0
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        if self.reads % 2 == 0:  # the end of a step
            self.now += next(self.durations)
        return self.now


def test_mean_and_max_show_a_rare_slow_step() -> None:
    """Nine 1 ms steps and one 91 ms refit: the median is 1 ms and hides it; the mean (10 ms)
    and the maximum (91 ms) show it, and mean × steps is the total time."""
    durations = [0.001] * 9 + [0.091]
    result = backtest_series(
        np.arange(1.0, 11.0), ConstantPredictor(), warmup=3, clock=SteppingClock(durations)
    )
    assert result.ms_per_step == pytest.approx(1.0)
    assert result.ms_per_step_mean == pytest.approx(10.0)
    assert result.ms_per_step_max == pytest.approx(91.0)
    assert result.ms_per_step_mean * len(durations) == pytest.approx(1000 * sum(durations))
    row = result.row()
    assert row["ms_per_step"] == pytest.approx(1.0)
    assert row["ms_per_step_mean"] == pytest.approx(10.0)
    assert row["ms_per_step_max"] == pytest.approx(91.0)
