"""Simulation plots (matplotlib, Agg backend): load, replicas per role and TTFT/ITL over time.

One run: four panels — requests per interval (with mean ISL/OSL on a second axis), replicas
asked for and serving per role, TTFT p50/p90/p99 and ITL p50/p90/p99 per interval (by arrival)
with the SLA targets. Several runs (``--compare``): the same panels with one line per policy
(replicas per role and p90 latencies), so the policies can be compared on one figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dynamo_plan.core.sla import SLA
from dynamo_plan.errors import InputError
from dynamo_plan.sim.result import SimResult

__all__ = ["plot_simulation"]


def plot_simulation(
    results: Sequence[SimResult],
    sla: SLA,
    interval_s: float,
    path: str | Path,
    title: str = "",
) -> Path:
    """Write the PNG to ``path`` (see module docstring) and return it; InputError when it cannot
    be written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not results:
        raise InputError("nothing to plot: no simulation results")
    path = Path(path)
    fig, axes = plt.subplots(5, 1, figsize=(11, 14), sharex=True)
    ax_load, ax_pre, ax_dec, ax_ttft, ax_itl = axes
    base = results[0].interval_stats
    minutes = base["t_s"].to_numpy() / 60.0
    ax_load.bar(minutes, base["requests"], width=interval_s / 60.0, align="edge", color="0.6")
    ax_load.set_ylabel(f"requests / {interval_s:g} s")
    ax_len = ax_load.twinx()
    ax_len.plot(minutes, base["isl"], color="tab:purple", lw=1, label="mean ISL")
    ax_len.plot(minutes, base["osl"], color="tab:olive", lw=1, label="mean OSL")
    ax_len.set_ylabel("tokens")
    ax_len.legend(loc="upper right", fontsize=8)
    ax_load.set_title("load (requests by arrival interval)")
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
    ax_ttft.axhline(sla.ttft_ms, color="red", lw=1, ls="--", label="SLA")
    ax_itl.axhline(sla.itl_ms, color="red", lw=1, ls="--", label="SLA")
    ax_ttft.set_ylabel("TTFT (ms)")
    ax_ttft.set_yscale("log")
    ax_itl.set_ylabel("ITL (ms)")
    ax_itl.set_xlabel("minutes of replayed time (after --rate-scale)")
    for ax in (ax_pre, ax_dec, ax_ttft, ax_itl):
        ax.legend(loc="upper left", fontsize=8, ncol=4)
    for ax in axes:
        ax.grid(alpha=0.3)
    summary = ", ".join(
        f"{r.policy}: {100 * r.sla_attainment:.1f}% SLA, {r.gpu_hours:.3g} GPU-h" for r in results
    )
    fig.suptitle(f"{title}\n{summary}" if title else summary, fontsize=10)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=90)
    except OSError as e:
        raise InputError(f"cannot write the plot {path}: {e.strerror or e}") from e
    finally:
        plt.close(fig)
    return path
