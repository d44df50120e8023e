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

    from dynamo_plan.core.profile import PerformanceProfile

__all__ = [
    "EXTENDED_PLOT_FILES",
    "PLOT_FILES",
    "draw_plots",
    "draw_profile_plots",
    "write_plots",
    "write_profile_plots",
]

PLOT_FILES = ("prefill.png", "decode.png", "decode_surface.png")
#: plots of a profile extended beyond its measured range (:func:`write_profile_plots`)
EXTENDED_PLOT_FILES = ("prefill.png", "decode_surface.png")
_ESTIMATED: dict[str, Any] = {"facecolor": "none", "edgecolor": "grey", "hatch": "//", "lw": 0.0}
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


# --- a profile extended beyond its measured range (profiler/extend.py) ---------------------------


def _estimated_from(profile: PerformanceProfile) -> tuple[float, float]:
    """(ISL, context) above which ``profile``'s points are estimated (inf: none are)."""
    from dynamo_plan.profiler.extend import estimated_from

    p, d = estimated_from(profile)
    return (np.inf if p is None else p), (np.inf if d is None else d)


def _profile_prefill(profile: PerformanceProfile) -> Figure:
    pre = profile.prefill
    isl_from, _ = _estimated_from(profile)
    fig = _figure(2)
    ax_t, ax_p = fig.subplots(1, 2)
    est = pre.isl > isl_from
    for ax, y in ((ax_t, pre.ttft_ms), (ax_p, pre.thpt_per_gpu)):
        ax.plot(pre.isl, y, color="C0", lw=1.0)
        ax.plot(pre.isl[~est], y[~est], "o", color="C0", ms=4, label="measured")
        if est.any():
            ax.plot(pre.isl[est], y[est], "o", mfc="none", color="C1", ms=4, label="estimated")
            ax.axvspan(isl_from, float(pre.isl[-1]), **_ESTIMATED, label="estimated range")
    ax_t.set(xlabel="ISL (tokens)", ylabel="TTFT (ms)", title="Prefill TTFT")
    ax_p.set(xlabel="ISL (tokens)", ylabel="tokens/s/GPU", title="Prefill throughput per GPU")
    _legend(ax_p, ax_t)
    return fig


def _profile_surface(profile: PerformanceProfile) -> Figure:
    surface = profile.decode
    _, ctx_from = _estimated_from(profile)
    ctxs = np.linspace(surface.contexts[0], surface.contexts[-1], 64)
    kvs = np.linspace(0.0, float(np.max(surface.kv_usage)), 48)
    itl = np.vstack([surface.values("itl", kvs, c) for c in ctxs])
    fig = _figure(1, legend=False)  # the colour bar takes the right margin
    ax = fig.subplots()
    grid = np.ma.masked_invalid(itl)
    finite = itl[np.isfinite(itl)]
    top = float(np.percentile(finite, 95)) if finite.size else None
    mesh = ax.pcolormesh(kvs, ctxs, grid, shading="auto", cmap="viridis", vmax=top)
    est = surface.context > ctx_from
    ax.plot(surface.kv_usage[~est], surface.context[~est], "w.", ms=4, label="measured")
    if est.any():
        ax.plot(
            surface.kv_usage[est], surface.context[est], "x", color="orange", ms=4,
            label="estimated",
        )  # fmt: skip
        ax.axhspan(ctx_from, float(surface.contexts[-1]), **_ESTIMATED, label="estimated range")
    fig.colorbar(mesh, ax=ax, label="ITL (ms)", extend="max")
    title = "Decode ITL (dots: measured"
    title += "; x over hatching: estimated)" if est.any() else ")"
    ax.set(xlabel="KV-cache usage (0..1)", ylabel="context (tokens)", title=title)
    return fig


def draw_profile_plots(profile: PerformanceProfile) -> dict[str, Figure]:
    """The figures of :data:`EXTENDED_PLOT_FILES` for ``profile`` (not saved): prefill TTFT and
    throughput against ISL, decode ITL over (kv_usage, context); estimated points (above
    ``profile.json``'s ``extended.prefill_isl_from`` / ``decode_context_from``) in another
    marker over a hatched band."""
    return {
        name: draw(profile)
        for name, draw in zip(
            EXTENDED_PLOT_FILES, (_profile_prefill, _profile_surface), strict=True
        )
    }


def write_profile_plots(profile: PerformanceProfile, out_dir: Path) -> list[Path]:
    """Write :data:`EXTENDED_PLOT_FILES` of ``profile`` into ``out_dir``; returns their paths."""
    paths = []
    for name, fig in draw_profile_plots(profile).items():
        paths.append(out_dir / name)
        _save(fig, paths[-1])
    return paths
