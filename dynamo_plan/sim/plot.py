"""Simulation plots (matplotlib, Agg canvas, the style of :mod:`dynamo_plan.plotting`): load,
request shape, replicas per role and TTFT/ITL over time.

One run: six panels — requests per interval, mean ISL/OSL per interval, replicas asked for and
serving per role (integer ticks), TTFT p50/p90/p99 (log axis, plain labels) and ITL p50/p90/p99
per interval (by arrival) with the SLA targets. Several runs (``--compare``): the same panels
with one line per policy (replicas per role and p90 latencies). Legends sit right of the panels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dynamo_plan.core.sla import SLA
from dynamo_plan.errors import InputError
from dynamo_plan.formats.files import atomic_output
from dynamo_plan.plotting import integer_ticks, legend_outside, new_figure, plain_log_ticks
from dynamo_plan.sim.result import SimResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["draw_simulation", "plot_simulation"]


def draw_simulation(
    results: Sequence[SimResult], sla: SLA, interval_s: float, title: str = ""
) -> Figure:
    """The figure of the module docstring (not saved); InputError when ``results`` is empty."""
    if not results:
        raise InputError("nothing to plot: no simulation results")
    fig = new_figure(12, 16, constrained=True)
    axes = fig.subplots(6, 1, sharex=True, height_ratios=(1, 0.7, 1, 1, 1, 1))
    ax_load, ax_len, ax_pre, ax_dec, ax_ttft, ax_itl = axes
    base = results[0].interval_stats
    minutes = base["t_s"].to_numpy() / 60.0
    ax_load.bar(minutes, base["requests"], width=interval_s / 60.0, align="edge", color="0.6")
    ax_load.set_ylabel(f"requests / {interval_s:g} s")
    ax_load.set_title("load (requests by arrival interval)")
    ax_len.plot(minutes, base["isl"], color="tab:purple", lw=1, label="mean ISL")
    ax_len.plot(minutes, base["osl"], color="tab:olive", lw=1, label="mean OSL")
    ax_len.set_ylabel("tokens")
    single = len(results) == 1
    for r in results:
        st = r.interval_stats
        t = st["t_s"].to_numpy() / 60.0
        label = r.policy
        for ax, role in ((ax_pre, "prefill"), (ax_dec, "decode")):
            ax.step(t, st[role], where="post", lw=1.5, label=f"{label} asked")
            if single:
                ax.step(
                    t, st[f"ready_{role}"], where="post", lw=1, ls="--", label=f"{label} serving"
                )
        if single:
            for q, ls in (("p50", ":"), ("p90", "-"), ("p99", "--")):
                ax_ttft.plot(t, st[f"ttft_{q}"], ls=ls, lw=1.2, label=f"TTFT {q}")
                ax_itl.plot(t, st[f"itl_{q}"], ls=ls, lw=1.2, label=f"ITL {q}")
        else:
            ax_ttft.plot(t, st["ttft_p90"], lw=1.2, label=f"{label} p90")
            ax_itl.plot(t, st["itl_p90"], lw=1.2, label=f"{label} p90")
    ax_pre.set_ylabel("prefill replicas")
    ax_dec.set_ylabel("decode replicas")
    for ax in (ax_pre, ax_dec):
        ax.set_ylim(bottom=0)  # replica counts from zero, ticked at whole numbers
        integer_ticks(ax.yaxis)
    ax_ttft.axhline(sla.ttft_ms, color="red", lw=1, ls="--", label="SLA")
    ax_itl.axhline(sla.itl_ms, color="red", lw=1, ls="--", label="SLA")
    ax_ttft.set_ylabel("TTFT (ms)")
    ax_ttft.set_yscale("log")
    plain_log_ticks(ax_ttft.yaxis)
    ax_itl.set_ylabel("ITL (ms)")
    ax_itl.set_xlabel("minutes of replayed time (after --rate-scale)")
    for ax in (ax_len, ax_pre, ax_dec, ax_ttft, ax_itl):
        legend_outside(ax)
    for ax in axes:
        ax.grid(alpha=0.3)
    summary = "; ".join(
        f"{r.policy}: {100 * r.sla_attainment:.1f}% SLA, {r.gpu_hours:.3g} GPU-h" for r in results
    )
    fig.suptitle(f"{title}\n{summary}" if title else summary, fontsize=10)
    return fig


def plot_simulation(
    results: Sequence[SimResult],
    sla: SLA,
    interval_s: float,
    path: str | Path,
    title: str = "",
) -> Path:
    """Write the PNG to ``path`` (see module docstring) and return it; InputError when it cannot
    be written."""
    path = Path(path)
    fig = draw_simulation(results, sla, interval_s, title)
    with atomic_output(path, "wb") as handle:  # all or nothing; a symlink's target replaced
        fig.savefig(handle, format="png", dpi=90)
    return path
