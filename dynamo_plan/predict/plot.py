"""Backtest plot: actual vs each predictor's forecast with its p90 band, one panel per series."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dynamo_plan.errors import InputError
from dynamo_plan.predict.backtest import BacktestResult

_UNITS = {"count": "requests / interval", "isl": "mean input tokens", "osl": "mean output tokens"}


def plot_backtest(
    results: Sequence[BacktestResult], interval_s: float, path: str | Path, title: str = ""
) -> None:
    """Write a PNG (Agg backend) to ``path``; the band is forecast .. p90 of each predictor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = list(dict.fromkeys(r.series for r in results))
    if not series:
        raise InputError("nothing to plot: the backtest has no results")
    fig, axes = plt.subplots(len(series), 1, figsize=(10, 3.2 * len(series)), squeeze=False)
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
        ax.legend(loc="upper left", fontsize=8, ncol=min(len(rows) + 1, 6))
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    try:
        fig.savefig(path, format="png", dpi=100)
    except OSError as e:
        raise InputError(f"cannot write plot {path}: {e.strerror or e}") from e
    finally:
        plt.close(fig)
