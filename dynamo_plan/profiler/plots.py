"""PNG plots of a sweep: prefill curves, decode ITL-vs-throughput, the decode surface.

matplotlib is imported lazily (only when plotting) and used through its object API on the Agg
canvas — never ``pyplot`` — so importing this module is free and nothing global is touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dynamo_plan.profiler.sweep import SweepResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["PLOT_FILES", "write_plots"]

PLOT_FILES = ("prefill.png", "decode.png", "decode_surface.png")
_DPI = 80
_PNG = {"compress_level": 1}  # fast zlib: a few KB larger, ~5 ms less per plot


def _figure(ncols: int) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # fixed margins: constrained/tight layout would double the drawing time
    fig = Figure(figsize=(5.5 * ncols, 4.0))
    fig.subplots_adjust(
        left=0.15 / ncols, right=1 - 0.03 / ncols, bottom=0.12, top=0.92, wspace=0.3
    )
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> None:
    fig.savefig(path, dpi=_DPI, pil_kwargs=_PNG)


def _prefill(result: SweepResult, path: Path) -> None:
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
    ax_t.legend(fontsize=8)
    ax_p.legend(fontsize=8)
    _save(fig, path)


def _decode(result: SweepResult, path: Path) -> None:
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
    ax.legend(fontsize=8)
    _save(fig, path)


def _surface(result: SweepResult, path: Path) -> None:
    surface = result.profile.decode
    ctxs = np.linspace(surface.contexts[0], surface.contexts[-1], 48)
    kvs = np.linspace(0.0, float(np.max(surface.kv_usage)), 48)
    itl = np.vstack([surface.values("itl", kvs, c) for c in ctxs])
    fig = _figure(1)
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
    _save(fig, path)


def write_plots(result: SweepResult, out_dir: Path) -> list[Path]:
    """Write :data:`PLOT_FILES` into ``out_dir``; returns their paths."""
    paths = [out_dir / name for name in PLOT_FILES]
    for draw, path in zip((_prefill, _decode, _surface), paths, strict=True):
        draw(result, path)
    return paths
