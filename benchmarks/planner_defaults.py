"""Choose the planner's defaults (``load_quantile``, ``scale_down_patience``) by simulation.

For each shared trace, the ``planner`` policy runs over the grid ``load_quantile`` ∈ {mean, 0.5,
0.75, 0.9} × ``scale_down_patience`` ∈ {0, 1, 2, 3}, next to the oracle. Rule: highest SLA
attainment subject to GPU-hours ≤ 1.10 × the oracle's, ties (attainment within 0.1 point) →
fewer GPU-hours. Across traces: the grid point that satisfies the GPU-hour bound on the most
traces, then the highest mean attainment, then the lowest mean GPU-hours ratio — over the
*eligible* traces, those where the oracle itself meets the SLA for >= 95 % of requests: where
it does not (bursts inside an interval, requests beyond the profile), the oracle's GPU-hours are
not a cost floor for meeting the SLA and the 1.10× bound only rewards under-provisioning. The
choice over all traces is printed too.

Time compression: a trace replayed at ``--rate-scale k`` has ``interval_s`` and ``startup_s``
divided by k (60 s of the trace's own time each), so the planner makes as many decisions as on
the real trace and a replica's start-up covers the same share of a load swing; with an unscaled
60 s interval the Azure conversation trace ×10 (350 s) gets only ~6 decisions, which measures
the start-up transient rather than load tracking.

    .venv/bin/python benchmarks/planner_defaults.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np

from dynamo_plan.adapters.profile_files import load_profile
from dynamo_plan.core.sla import SLA
from dynamo_plan.sim import RequestArrays, SimConfig, simulate
from dynamo_plan.sim.compare import PolicyOptions, make_policy
from dynamo_plan.sim.policies import OraclePolicy
from dynamo_plan.trace import load_trace

PROFILE = Path("profiles") / "h200_llama3.1-8b-fp8_tp1p_tp1d"
#: (trace file, rate scale, TTFT ms, ITL ms, interval s, startup s) — interval and startup in
#: the trace's own time (divided by the rate scale for the run)
TRACES = [
    ("azure2023_conv.csv", 10.0, 300.0, 20.0, 60.0, 60.0),
    ("azure2023_conv.csv", 10.0, 300.0, 20.0, 30.0, 60.0),
    ("azure2023_conv.csv", 5.0, 300.0, 20.0, 60.0, 60.0),
    ("azure2023_conv.csv", 20.0, 300.0, 20.0, 60.0, 60.0),
    ("mooncake_conversation.jsonl", 1.0, 2000.0, 25.0, 60.0, 60.0),
    ("mooncake_conversation.jsonl", 1.0, 2000.0, 25.0, 30.0, 60.0),
    ("azure2023_code.csv", 1.0, 300.0, 20.0, 60.0, 60.0),
]
QUANTILES: list[float | None] = [None, 0.5, 0.75, 0.9]
PATIENCE = [0, 1, 2, 3]
BOUND = 1.10
ELIGIBLE_ORACLE_ATTAINMENT = 0.95


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    args = ap.parse_args()
    profile = load_profile(args.data / PROFILE)
    grid = list(itertools.product(QUANTILES, PATIENCE))
    table: dict[tuple[float | None, int], list[tuple[float, float]]] = {g: [] for g in grid}
    eligible: list[bool] = []
    for name, k, ttft, itl, interval, startup in TRACES:
        req = RequestArrays.from_trace(load_trace([args.data / "traces" / name]), rate_scale=k)
        sla = SLA(ttft, itl)
        cfg = SimConfig(interval_s=interval / k, startup_s=startup / k)
        t0 = time.perf_counter()
        oracle = simulate(req, profile, sla, cfg, OraclePolicy(req, profile, sla, cfg))
        eligible.append(oracle.sla_attainment >= ELIGIBLE_ORACLE_ATTAINMENT)
        print(
            f"\n## {name} ×{k:g}: SLA {ttft:g}/{itl:g} ms, interval {cfg.interval_s:g} s, "
            f"startup {cfg.startup_s:g} s; oracle {100 * oracle.sla_attainment:.2f}% at "
            f"{oracle.gpu_hours:.3f} GPU-h"
        )
        print("| load_quantile | patience | SLA % | GPU-h | × oracle | ok |")
        print("|---|---|---|---|---|---|")
        for q, pat in grid:
            opts = PolicyOptions(load_quantile=q, scale_down_patience=pat)
            pol = make_policy("planner", req, profile, sla, cfg, opts)
            r = simulate(req, profile, sla, cfg, pol)
            ratio = r.gpu_hours / oracle.gpu_hours
            table[(q, pat)].append((r.sla_attainment, ratio))
            print(
                f"| {'mean' if q is None else q} | {pat} | {100 * r.sla_attainment:.2f} | "
                f"{r.gpu_hours:.3f} | {ratio:.3f} | {'yes' if ratio <= BOUND else 'no'} |"
            )
        best = _choose({g: [table[g][-1]] for g in grid})
        print(
            f"best on this trace: load_quantile={best[0]}, patience={best[1]} "
            f"({time.perf_counter() - t0:.1f} s)"
        )
    for title, keep in (
        ("all traces", [True] * len(TRACES)),
        ("eligible traces (oracle >= 95 %)", eligible),
    ):
        print(f"\n## across {title}: mean SLA %, mean GPU-h × oracle, traces within the bound")
        print("| load_quantile | patience | SLA % | × oracle | within |")
        print("|---|---|---|---|---|")
        for g in grid:
            rows = [x for x, k in zip(table[g], keep, strict=True) if k]
            att = np.mean([a for a, _ in rows])
            ratio = np.mean([r for _, r in rows])
            ok = sum(r <= BOUND for _, r in rows)
            q = "mean" if g[0] is None else g[0]
            print(f"| {q} | {g[1]} | {100 * att:.2f} | {ratio:.3f} | {ok}/{len(rows)} |")
    chosen_all = _choose(table)
    chosen = _choose(
        {g: [x for x, e in zip(v, eligible, strict=True) if e] for g, v in table.items()}
    )
    names = [
        f"{t[0]} ×{t[1]:g} ({t[4]:g}/{t[5]:g} s)"
        for t, e in zip(TRACES, eligible, strict=True)
        if e
    ]
    print(f"\nover all traces: load_quantile={chosen_all[0]}, scale_down_patience={chosen_all[1]}")
    print(
        f"chosen defaults (eligible traces: {', '.join(names)}): "
        f"load_quantile={chosen[0]}, scale_down_patience={chosen[1]}"
    )


def _choose(
    table: dict[tuple[float | None, int], list[tuple[float, float]]],
) -> tuple[float | None, int]:
    """Most traces within the bound; among those the highest mean attainment, where points
    within 0.1 percentage point of it tie and the fewest mean GPU-hours (× oracle) wins."""

    def ok(g: tuple[float | None, int]) -> int:
        return sum(r <= BOUND for _, r in table[g])

    def att(g: tuple[float | None, int]) -> float:
        return float(np.mean([a for a, _ in table[g]]))

    def ratio(g: tuple[float | None, int]) -> float:
        return float(np.mean([r for _, r in table[g]]))

    most = max(ok(g) for g in table)
    feasible = [g for g in table if ok(g) == most]
    best = max(att(g) for g in feasible)
    tied = [g for g in feasible if att(g) >= best - 0.001]
    return min(tied, key=ratio)


if __name__ == "__main__":
    main()
