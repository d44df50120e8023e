"""PNG plots of an online measurement: prefill TTFT/throughput over ISL, decode ITL over
throughput per context row, and the measured decode points over (kv_usage, context).

Same files and drawing style as :mod:`dynamo_plan.profiler.plots` (matplotlib imported lazily,
object API on the Agg canvas, never ``pyplot``; legends right of the data); the measured points
are drawn as they are (one engine, one TP: there is no choice between candidates to show).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dynamo_plan.profiler.plots import _figure, _legend, _save

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from dynamo_plan.profiler.online import OnlineOutcome

__all__ = ["draw_online_plots", "write_online_plots"]


def _prefill(o: OnlineOutcome) -> Figure:
    fig = _figure(2)
    ax_t, ax_p = fig.subplots(1, 2)
    isl = [p.isl for p in o.prefill]
    ax_t.plot(isl, [p.ttft_ms for p in o.prefill], marker="o", label=f"TP{o.request.tp}")
    ax_p.plot(isl, [p.thpt_per_gpu for p in o.prefill], marker="o", label=f"TP{o.request.tp}")
    if o.request.ttft_ms is not None:
        ax_t.axhline(o.request.ttft_ms, color="red", ls="--", lw=1, label="TTFT target")
    for ax in (ax_t, ax_p):
        ax.axvline(o.request.isl, color="grey", ls=":", lw=1, label=f"SLA ISL {o.request.isl}")
    ax_t.set(xlabel="ISL (tokens)", ylabel="TTFT (ms)", title=f"Prefill TTFT ({o.model})")
    ax_p.set(xlabel="ISL (tokens)", ylabel="tokens/s/GPU", title="Prefill throughput per GPU")
    _legend(ax_p, ax_t)
    return fig


def _decode(o: OnlineOutcome) -> Figure:
    fig = _figure(1)
    ax = fig.subplots()
    for ctx in sorted({p.context for p in o.decode}):
        row = sorted((p for p in o.decode if p.context == ctx), key=lambda p: p.kv_usage)
        ax.plot(
            [p.thpt_per_gpu for p in row], [p.itl_ms for p in row], marker=".", label=f"ctx {ctx:g}"
        )
    if o.request.itl_ms is not None:
        ax.axhline(o.request.itl_ms, color="red", ls="--", lw=1, label="ITL target")
    ax.set(xlabel="decode tokens/s/GPU", ylabel="ITL (ms)", title=f"Decode, TP{o.request.tp}")
    _legend(ax)
    return fig


def _surface(o: OnlineOutcome) -> Figure:
    fig = _figure(1, legend=False)
    ax = fig.subplots()
    kv = np.array([p.kv_usage for p in o.decode])
    ctx = np.array([p.context for p in o.decode])
    itl = np.array([p.itl_ms for p in o.decode])
    points = ax.scatter(kv, ctx, c=itl, cmap="viridis", s=60)
    fig.colorbar(points, ax=ax, label="ITL (ms)")
    ax.set(
        xlabel="KV-cache usage (0..1)",
        ylabel="context (tokens)",
        title=f"Decode ITL measured, TP{o.request.tp} (max_kv_tokens {o.max_kv_tokens})",
    )
    return fig


def draw_online_plots(outcome: OnlineOutcome) -> dict[str, Figure]:
    """The figures (not saved), by file name: ``prefill.png`` when prefill was measured,
    ``decode.png`` and ``decode_surface.png`` when decode was."""
    figures = {}
    if outcome.prefill:
        figures["prefill.png"] = _prefill(outcome)
    if outcome.decode:
        figures["decode.png"] = _decode(outcome)
        figures["decode_surface.png"] = _surface(outcome)
    return figures


def write_online_plots(outcome: OnlineOutcome, out_dir: Path) -> list[Path]:
    """Write the figures of :func:`draw_online_plots` into ``out_dir``; returns their paths."""
    paths = []
    for name, fig in draw_online_plots(outcome).items():
        paths.append(out_dir / name)
        _save(fig, paths[-1])
    return paths
