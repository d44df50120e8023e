"""The drawing style every PNG plot shares (simulation, backtest, profile).

matplotlib is imported lazily (only when a plot is drawn) and used through its object API on an
Agg canvas — ``Figure`` + ``FigureCanvasAgg``, never ``pyplot``'s global state — so importing a
plotting module is free and nothing global is touched. Conventions:

- replica counts are whole numbers: their axis ticks only at integers (:func:`integer_ticks`);
- a log axis labels its ticks as plain numbers (``60``, ``200``, not ``6×10^1``), at 1, 2 and 5
  per decade (:func:`plain_log_ticks`);
- legends sit outside the data area, right of the axes (:func:`legend_outside`), so they never
  hide a line; a figure that has them is laid out with room for them (``constrained`` layout,
  or fixed margins that reserve a legend column).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.axis import Axis
    from matplotlib.figure import Figure
    from matplotlib.legend import Legend

__all__ = ["integer_ticks", "legend_outside", "new_figure", "plain_log_ticks", "plain_tick"]

#: Font size of legends (points).
LEGEND_FONTSIZE = 8


def new_figure(width_in: float, height_in: float, *, constrained: bool = False) -> Figure:
    """A figure of ``width_in`` × ``height_in`` inches on its own Agg canvas (no pyplot);
    ``constrained``: matplotlib's constrained layout, which makes room for outside legends."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), layout="constrained" if constrained else None)
    FigureCanvasAgg(fig)
    return fig


def integer_ticks(axis: Axis) -> None:
    """Major ticks of ``axis`` only at integers (replica counts: never a tick at 1.5), also when
    the view holds a single integer (a constant count)."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def plain_tick(value: float, _pos: Any = None) -> str:
    """A tick label as a plain number: ``60``, ``200``, ``0.5``, ``1500`` (never 6×10^1)."""
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else ""
    if abs(value) >= 1:
        return f"{value:.0f}" if float(value).is_integer() else f"{value:g}"
    return f"{value:.6f}".rstrip("0").rstrip(".")


def plain_log_ticks(axis: Axis) -> None:
    """A log-scale ``axis`` ticked at 1, 2 and 5 per decade, labelled as plain numbers; the
    other minor ticks stay unlabelled."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(plain_tick))
    axis.set_minor_locator(LogLocator(base=10, subs=tuple(float(s) for s in range(1, 10))))
    axis.set_minor_formatter(NullFormatter())


def legend_outside(ax: Axes, handles: list[Any] | None = None, **kwargs: Any) -> Legend:
    """The legend of ``ax`` (or of ``handles``) to the right of its data area, top-aligned."""
    options: dict[str, Any] = {
        "loc": "upper left",
        "bbox_to_anchor": (1.01, 1.0),
        "borderaxespad": 0.0,
        "fontsize": LEGEND_FONTSIZE,
        **kwargs,
    }
    if handles is not None:
        return ax.legend(handles=handles, **options)
    return ax.legend(**options)
