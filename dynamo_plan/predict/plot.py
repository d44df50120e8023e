"""Backtest plot: actual vs each predictor's forecast with its p90 band, one panel per series
(matplotlib, Agg canvas, the style of :mod:`dynamo_plan.plotting`; legends right of the
panels)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dynamo_plan.errors import InputError
from dynamo_plan.formats.files import atomic_output
from dynamo_plan.plotting import legend_outside, new_figure
from dynamo_plan.predict.backtest import BacktestResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_UNITS = {"count": "requests / interval", "isl": "mean input tokens", "osl": "mean output tokens"}


def draw_backtest(results: Sequence[BacktestResult], interval_s: float, title: str = "") -> Figure:
    """The figure (not saved): per series, the actual values and each predictor's forecast with
    a band from the forecast to its p90; InputError when there is nothing to draw."""
    series = list(dict.fromkeys(r.series for r in results))
    if not series:
        raise InputError("nothing to plot: the backtest has no results")
    fig = new_figure(11.5, 3.2 * len(series) + 0.4, constrained=True)
    axes = fig.subplots(len(series), 1, squeeze=False)
    for ax, name in zip(axes[:, 0], series, strict=True):
        rows = [r for r in results if r.series == name]
        t = rows[0].forecasts.t * interval_s / 60.0
        ax.plot(t, rows[0].forecasts.actual, color="black", lw=2, label="actual")
        for r in rows:
            (line,) = ax.plot(t, r.forecasts.mean, lw=1.2, label=f"{r.predictor}")
            ax.fill_between(
                t, r.forecasts.mean, r.forecasts.p90, color=line.get_color(), alpha=0.12, lw=0
            )
        ax.set_title(f"{name} ({_UNITS.get(name, name)}); band: forecast .. p90")
        ax.set_xlabel("minutes from trace start")
        legend_outside(ax)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def plot_backtest(
    results: Sequence[BacktestResult], interval_s: float, path: str | Path, title: str = ""
) -> None:
    """Write the PNG of :func:`draw_backtest` to ``path``."""
    fig = draw_backtest(results, interval_s, title)
    with atomic_output(path, "wb") as handle:  # all or nothing; a symlink's target replaced
        fig.savefig(handle, format="png", dpi=100)
