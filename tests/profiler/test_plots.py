"""Profile plots (an offline sweep over TP 1..8): legends outside the data area (one column
right of the panels), plain tick labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dynamo_plan.profiler.offline import OfflineRequest, run_offline
from dynamo_plan.profiler.plots import PLOT_FILES, draw_plots
from dynamo_plan.profiler.sweep import SweepSLA
from tests.plot_checks import assert_legends_outside, assert_plain_tick_labels


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("profile") / "p"
    outcome = run_offline(
        OfflineRequest(
            model="llama-3.1-70b",
            system="h200_sxm",
            backend="vllm",
            sla=SweepSLA(3000, 300, 500.0, 30.0),
            out=out,
            plots=False,
        )
    )
    assert len(outcome.result.prefill_candidates) > 1  # several TP lines in the legends
    return draw_plots(outcome.result)


def test_every_plot_is_drawn(figures: dict[str, Any]) -> None:
    assert list(figures) == list(PLOT_FILES)


@pytest.mark.parametrize("name", PLOT_FILES)
def test_plot_conventions(figures: dict[str, Any], name: str) -> None:
    fig = figures[name]
    legends = assert_legends_outside(fig)
    assert legends == (0 if name == "decode_surface.png" else 1)
    assert_plain_tick_labels(fig)


def test_written_files_are_pngs(figures: dict[str, Any], tmp_path: Path) -> None:
    from dynamo_plan.profiler.plots import _save

    for name, fig in figures.items():
        _save(fig, tmp_path / name)
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
