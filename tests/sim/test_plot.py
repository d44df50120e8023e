"""The simulation plot: integer replica axes, legends outside the data, plain log-axis labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.sla import SLA
from dynamo_plan.sim import RequestArrays, SimConfig
from dynamo_plan.sim.compare import run_policies
from dynamo_plan.sim.plot import draw_simulation, plot_simulation
from tests.plot_checks import assert_integer_ticks, assert_legends_outside, assert_plain_tick_labels


def _requests() -> RequestArrays:
    """2 min at 2 req/s then 2 min at 12 req/s (ISL 1500, OSL 150): the replicas change."""
    low = RequestArrays.poisson(2.0, 120.0, 1500, 150, seed=1)
    high = RequestArrays.poisson(12.0, 120.0, 1500, 150, seed=2)
    t = np.concatenate([low.arrival_s, high.arrival_s + 120.0])
    return RequestArrays(t, np.full(t.size, 1500), np.full(t.size, 150))


@pytest.fixture(scope="module")
def results(profile: PerformanceProfile, sla: SLA) -> list:  # type: ignore[type-arg]
    config = SimConfig(interval_s=20.0, startup_s=20.0)
    return run_policies(
        ["oracle-forecast", "reactive", "static"], _requests(), profile, sla, config
    )


@pytest.mark.parametrize("compare", [False, True], ids=["one policy", "compare"])
def test_plot_conventions(results: list, sla: SLA, compare: bool) -> None:  # type: ignore[type-arg]
    runs = results if compare else results[1:2]
    fig = draw_simulation(runs, sla, 20.0, title="test")
    replica_axes = [ax for ax in fig.axes if "replicas" in ax.get_ylabel()]
    assert len(replica_axes) == 2
    for ax in replica_axes:
        assert_integer_ticks(ax)
    assert [ax.get_yscale() for ax in fig.axes if ax.get_ylabel() == "TTFT (ms)"] == ["log"]
    assert_plain_tick_labels(fig)
    assert assert_legends_outside(fig) == 5  # ISL/OSL, prefill, decode, TTFT, ITL


def test_plot_file_is_a_png(results: list, sla: SLA, tmp_path: Path) -> None:  # type: ignore[type-arg]
    path = plot_simulation(results, sla, 20.0, tmp_path / "sim.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
