"""PNG plots of a sweep: prefill curves, decode ITL-vs-throughput, the decode surface.

The style of :mod:`dynamo_plan.plotting` (object API on an Agg canvas, never ``pyplot``;
legends right of the data area, in a column the fixed margins reserve for them).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dynamo_plan.plotting import legend_outside, new_figure
from dynamo_plan.profiler.sweep import SweepResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["PLOT_FILES", "draw_plots", "write_plots"]

PLOT_FILES = ("prefill.png", "decode.png", "decode_surface.png")
_DPI = 80
_PNG = {"compress_level": 1}  # fast zlib: a few KB larger, ~5 ms less per plot


_PANEL_IN = 5.5  # width of one panel (in), with its share of the margins
_LEGEND_IN = 2.0  # width of the legend column right of the panels (in)


def _figure(ncols: int, legend: bool = True) -> Figure:
    """A figure of ``ncols`` panels, 4 in high, with fixed margins (constrained/tight layout
    would double the drawing time) and, when ``legend``, a legend column on the right."""
    extra = _LEGEND_IN if legend else 0.0
    width = _PANEL_IN * ncols + extra
    fig = new_figure(width, 4.0)
    fig.subplots_adjust(
        left=0.825 / width, right=1 - (0.165 + extra) / width, bottom=0.12, top=0.92, wspace=0.3
    )
    return fig


def _legend(ax: Axes, *others: Axes) -> None:
    """One legend right of ``ax`` for the labelled lines of ``ax`` and ``others`` (each label
    once)."""
    seen: dict[str, Any] = {}
    for a in (*others, ax):
        for handle, label in zip(*a.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    legend_outside(ax, handles=list(seen.values()), labels=list(seen))


def _save(fig: Figure, path: Path) -> None:
    fig.savefig(path, dpi=_DPI, pil_kwargs=_PNG)


def _prefill(result: SweepResult) -> Figure:
    fig = _figure(2)
    ax_t, ax_p = fig.subplots(1, 2)
    for c in result.prefill_candidates:
        chosen = c.tp == result.prefill.tp
        isl, ttft, thpt = c.curve
        style = {
            "lw": 2.5 if chosen else 1.0,
            "label": f"TP{c.tp}" + (" (chosen)" if chosen else ""),
        }
        ax_t.plot(isl, ttft, **style)
        ax_p.plot(isl, thpt, **style)
    sla = result.sla
    ax_t.axhline(sla.ttft_ms, color="red", ls="--", lw=1, label=f"TTFT target {sla.ttft_ms:g} ms")
    ax_t.axvline(sla.isl, color="grey", ls=":", lw=1)
    ax_t.plot([sla.isl], [result.prefill.ttft_ms], "k*", ms=12)
    ax_p.axvline(sla.isl, color="grey", ls=":", lw=1, label=f"SLA ISL {sla.isl}")
    ax_p.plot([sla.isl], [result.prefill.thpt_per_gpu], "k*", ms=12)
    ax_t.set(xlabel="ISL (tokens)", ylabel="TTFT (ms)", title="Prefill TTFT")
    ax_p.set(xlabel="ISL (tokens)", ylabel="tokens/s/GPU", title="Prefill throughput per GPU")
    _legend(ax_p, ax_t)
    return fig


def _decode(result: SweepResult) -> Figure:
    fig = _figure(1)
    ax = fig.subplots()
    for c in result.decode_candidates:
        chosen = c.tp == result.decode.tp
        _, itl, thpt = c.curve
        label = f"TP{c.tp}" + (" (chosen)" if chosen else "")
        ax.plot(thpt, itl, marker=".", lw=2.5 if chosen else 1.0, label=label)
    d = result.decode
    ax.axhline(
        result.sla.itl_ms, color="red", ls="--", lw=1, label=f"ITL target {result.sla.itl_ms:g} ms"
    )
    ax.plot([d.thpt_per_gpu], [d.itl_ms], "k*", ms=12, label=f"chosen: concurrency {d.concurrency}")
    ax.set(
        xlabel="decode tokens/s/GPU",
        ylabel="ITL (ms)",
        title=f"Decode at context {result.sla.decode_context} (ISL + OSL/2)",
    )
    _legend(ax)
    return fig


def _surface(result: SweepResult) -> Figure:
    surface = result.profile.decode
    ctxs = np.linspace(surface.contexts[0], surface.contexts[-1], 48)
    kvs = np.linspace(0.0, float(np.max(surface.kv_usage)), 48)
    itl = np.vstack([surface.values("itl", kvs, c) for c in ctxs])
    fig = _figure(1, legend=False)
    ax = fig.subplots()
    # colours capped at twice the ITL target (the region that matters), with the target drawn as
    # a contour; the few extreme cells (tiny contexts at huge batches) would flatten the rest
    target = result.sla.itl_ms
    grid = np.ma.masked_invalid(itl)
    mesh = ax.pcolormesh(kvs, ctxs, grid, shading="auto", cmap="viridis", vmax=2 * target)
    if np.nanmin(itl) < target < np.nanmax(itl):
        ax.contour(kvs, ctxs, grid, levels=[target], colors="red", linewidths=1.5)
    ax.plot(surface.kv_usage, surface.context, "w.", ms=4)
    fig.colorbar(mesh, ax=ax, label="ITL (ms)", extend="max")
    ax.set(
        xlabel="KV-cache usage (0..1)",
        ylabel="context (tokens)",
        title=f"Decode ITL, TP{result.decode.tp} (red: {target:g} ms target; dots: sweep)",
    )
    return fig


def draw_plots(result: SweepResult) -> dict[str, Figure]:
    """The figures of :data:`PLOT_FILES` (not saved), by file name."""
    return {
        name: draw(result)
        for name, draw in zip(PLOT_FILES, (_prefill, _decode, _surface), strict=True)
    }


def write_plots(result: SweepResult, out_dir: Path) -> list[Path]:
    """Write :data:`PLOT_FILES` into ``out_dir``; returns their paths."""
    paths = []
    for name, draw in zip(PLOT_FILES, (_prefill, _decode, _surface), strict=True):
        paths.append(out_dir / name)
        _save(draw(result), paths[-1])
    return paths
