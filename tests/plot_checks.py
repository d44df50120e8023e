"""Checks of a drawn matplotlib figure, shared by the plot tests: the conventions of
:mod:`dynamo_plan.plotting` (integer replica ticks, plain tick labels, legends outside)."""

from __future__ import annotations

from typing import Any

SCIENTIFIC = ("×10", "10^", "\\times", "e+", "e-0", "$")


def drawn(fig: Any) -> Any:
    """Draw ``fig`` (tick labels exist only then) and return its renderer."""
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def assert_plain_tick_labels(fig: Any) -> None:
    """No tick label of any axis, major or minor, in scientific or math-text form."""
    drawn(fig)
    for ax in fig.axes:
        labels = [*ax.get_xticklabels(which="both"), *ax.get_yticklabels(which="both")]
        for label in labels:
            text = label.get_text()
            assert not any(s in text for s in SCIENTIFIC), (ax.get_ylabel(), text)


def assert_integer_ticks(ax: Any) -> None:
    """The y axis ticks only at integers (within its limits), by an integer locator."""
    from matplotlib.ticker import MaxNLocator

    drawn(ax.figure)
    locator = ax.yaxis.get_major_locator()
    assert isinstance(locator, MaxNLocator) and locator._integer, ax.get_ylabel()
    low, high = sorted(ax.get_ylim())
    ticks = [t for t in ax.get_yticks() if low - 1e-9 <= t <= high + 1e-9]
    assert ticks and all(float(t).is_integer() for t in ticks), (ax.get_ylabel(), ticks)


def assert_legends_outside(fig: Any) -> int:
    """Every legend lies inside the figure and overlaps no axes' area (where data is drawn);
    returns how many legends there are."""
    renderer = drawn(fig)
    areas = [ax.get_window_extent(renderer) for ax in fig.axes]
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    for legend in legends:
        box = legend.get_window_extent(renderer)
        assert not any(box.overlaps(area) for area in areas), [t.get_text() for t in legend.texts]
        page = fig.bbox
        assert page.x0 - 1 <= box.x0 and box.x1 <= page.x1 + 1, "legend cut off the figure"
        assert page.y0 - 1 <= box.y0 and box.y1 <= page.y1 + 1, "legend cut off the figure"
    return len(legends)
