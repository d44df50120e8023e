"""Benchmark of ``simulate --compare``: every policy against ``optimal`` on the shared traces.

Scenarios (shared H200 profile ``h200_llama3.1-8b-fp8_tp1p_tp1d``), two SLAs each:

* Azure LLM inference 2023, conversation, ``--rate-scale 10``, interval and start-up 6 s (= 60 s
  of the trace's own time: time is compressed 10×, so the planner gets as many decisions as on
  the real trace);
* the same trace's code service, ``--rate-scale 10``, 6 s / 6 s;
* Mooncake conversation, ``--rate-scale 1``, interval and start-up 60 s (mean ISL ~12k, tail far
  beyond the profile's longest measured context).

Per scenario: one row per policy — ``optimal`` (cheapest per-interval schedule meeting the
attainment target over the whole trace, knowing the future), ``optimal-each`` (the same with the
target met in every interval: the stricter reference this benchmark used before),
``oracle-forecast`` (the planner's rule fed the true
load), ``planner`` (default sizing), ``planner-A`` (``--sla-attainment 0.99``: sized by replaying a
block bootstrap of the last five intervals' requests at the forecast rate), ``dynamo`` (Dynamo's
formula with ARIMA), ``reactive``, ``static`` (sized for the busiest interval) and ``static-A``
(the cheapest fixed replicas that meet the target, found by replaying candidates: fixed replicas
need no forecast, so when even they cost far more than ``optimal`` the gap is the load's
unpredictability, not the planner's forecasting) — with SLA attainment over the servable
requests, GPU-hours, × optimal, TTFT/ITL p99 and the requests no size can serve. Then the
issue-15 goal per row: planner-A ≥ 99 % at ≤ 1.10 × optimal's GPU-hours, ahead of dynamo and
reactive.

    .venv/bin/python benchmarks/simulate.py [--data ../shared/data] [--only azure-conv] [--seed N]

``--stream 0.1,1,8.64`` runs instead the streaming benchmark (``benchmarks/simulate_stream.py``):
0.1 M, 1 M and 8.64 M requests (a day at 100 req/s), CPU time per request and peak RSS, each
size in its own process.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dynamo_plan.adapters.profile_files import load_profile
from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.sla import SLA, Limits
from dynamo_plan.sim import RequestArrays, SimConfig, StaticPolicy, simulate
from dynamo_plan.sim.compare import POLICY_NAMES, PolicyOptions, compare_json, run_policies
from dynamo_plan.sim.optimal import (
    IntervalOptimalPolicy,
    allowed_misses,
    cheapest_for_interval,
    interval_slices,
    search_config,
)
from dynamo_plan.sim.result import SimResult, blind_intervals, ordering_decisions, unservable
from dynamo_plan.trace import load_trace

PROFILE = Path("profiles") / "h200_llama3.1-8b-fp8_tp1p_tp1d"
TARGET = 0.99


@dataclass(frozen=True)
class Scenario:
    label: str
    trace: str
    rate_scale: float
    sla: SLA
    interval_s: float


SCENARIOS = [
    Scenario("azure-conv ×10, 6/6 s", "azure2023_conv.csv", 10.0, SLA(200, 10), 6.0),
    Scenario("azure-conv ×10, 6/6 s", "azure2023_conv.csv", 10.0, SLA(300, 20), 6.0),
    Scenario("azure-code ×10, 6/6 s", "azure2023_code.csv", 10.0, SLA(300, 20), 6.0),
    Scenario("azure-code ×10, 6/6 s", "azure2023_code.csv", 10.0, SLA(500, 30), 6.0),
    Scenario("mooncake-conv, 60/60 s", "mooncake_conversation.jsonl", 1.0, SLA(2000, 20), 60.0),
    Scenario("mooncake-conv, 60/60 s", "mooncake_conversation.jsonl", 1.0, SLA(3000, 30), 60.0),
]


def table(results: list[SimResult]) -> None:
    print("| policy | SLA % | GPU-h | × optimal | TTFT p99 ms | ITL p99 ms | unservable | wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for d, r in zip(compare_json(results), results, strict=True):
        print(
            f"| {d['policy']} | {100 * r.sla_attainment:.2f} | {r.gpu_hours:.3f} | "
            f"{d.get('gpu_hours_vs_optimal', float('nan')):.3f} | "
            f"{r.ttft_ms['p99']:.0f} | {r.itl_ms['p99']:.1f} | {r.unservable} | {r.wall_s:.1f} |"
        )


def goal(results: list[SimResult]) -> str:
    by = {r.policy: r for r in results}
    p, o = by["planner-A"], by["optimal"]
    met = (
        p.sla_attainment >= TARGET
        and p.gpu_hours <= 1.10 * o.gpu_hours
        and all(
            p.sla_attainment >= by[n].sla_attainment or p.gpu_hours < by[n].gpu_hours
            for n in ("dynamo", "reactive")
        )
    )
    return (
        f"goal {'MET' if met else 'MISSED'}: planner-A {100 * p.sla_attainment:.2f} % at "
        f"{p.gpu_hours / o.gpu_hours:.3f}× optimal "
        f"({p.gpu_hours / by['optimal-each'].gpu_hours:.3f}× optimal-each)"
    )


def blind_bursts(req: RequestArrays, profile: PerformanceProfile, sla: SLA, cfg: SimConfig) -> str:
    """The requests of the intervals whose engines are ordered while the interval seen last had
    none (:func:`~dynamo_plan.sim.result.blind_intervals`: no planner that follows the load
    orders engines for them). Those of more requests than the trace's allowance of misses are
    listed, with the fewest prefill engines that keep their own misses within it (replayed
    alone on idle engines) and the busiest interval seen before that decision: when even that
    one is small, not even holding the capacity of past bursts would have served them."""
    interval = cfg.interval_s
    counts = np.bincount(np.floor(req.arrival_s / interval).astype(np.int64))
    blind = blind_intervals(counts, interval, cfg.startup_s)
    decision = ordering_decisions(counts.size, interval, cfg.startup_s)
    cannot = unservable(req, profile, sla, cfg)
    allowance = allowed_misses(TARGET, int(np.count_nonzero(~cannot)))
    over = []
    for j, sub, skip in interval_slices(req, cannot, interval):
        n = int(np.count_nonzero(~skip))
        if not blind[j] or n <= allowance:
            continue
        p, _ = cheapest_for_interval(
            sub, profile, sla, search_config(cfg), skip, 1.0 - allowance / n, 1, Limits(), cfg
        )
        over.append(
            f"interval {j}: {n} requests, >= {p} prefill engines (the busiest interval seen by "
            f"then: {int(counts[: decision[j]].max())} requests)"
        )
    total = int(counts[blind].sum())
    return (
        f"after an idle interval: {total} requests ({100.0 * total / max(1, len(req)):.1f} % of "
        f"the trace; the target allows {allowance} misses)" + "".join(f"; {o}" for o in over)
    )


def cheapest_static(
    req: RequestArrays, profile: PerformanceProfile, sla: SLA, cfg: SimConfig
) -> SimResult | None:
    """``static-A``: the fewest GPUs of fixed replicas meeting :data:`TARGET` (for each decode
    count 1–4, the fewest prefill by bisection: attainment does not fall with more engines)."""
    best: SimResult | None = None
    for d in range(1, 5):
        lo, hi = 0, 256  # prefill: lo fails (or is 0), hi meets
        if simulate(req, profile, sla, cfg, StaticPolicy(hi, d)).sla_attainment < TARGET:
            continue
        while hi - lo > 1:
            mid = (lo + hi) // 2
            ok = simulate(req, profile, sla, cfg, StaticPolicy(mid, d)).sla_attainment >= TARGET
            lo, hi = (lo, mid) if ok else (mid, hi)
        r = simulate(req, profile, sla, cfg, StaticPolicy(hi, d))
        if best is None or r.gpu_hours < best.gpu_hours:
            best = r
    if best is not None:
        best.policy = "static-A"
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    ap.add_argument("--only", default="", help="run the scenarios whose label starts with this")
    ap.add_argument(
        "--seed",
        type=int,
        default=0,
        help="SimConfig.seed: engine tie-break ranks and planner-A's samples (runs with other "
        "seeds show how much of a ratio is chance: planner-A's moves by 2-4 %%)",
    )
    ap.add_argument(
        "--stream",
        metavar="SIZES",
        help="millions of requests per run, e.g. 0.1,1,8.64: run benchmarks/simulate_stream.py",
    )
    args = ap.parse_args()
    if args.stream:
        stream = Path(__file__).with_name("simulate_stream.py")
        cmd = [sys.executable, str(stream), "--data", str(args.data), "--sizes", args.stream]
        raise SystemExit(subprocess.run(cmd, check=False).returncode)
    profile = load_profile(args.data / PROFILE)
    for sc in SCENARIOS:
        if not sc.label.startswith(args.only):
            continue
        t0 = time.perf_counter()
        req = RequestArrays.from_trace(
            load_trace([args.data / "traces" / sc.trace]), rate_scale=sc.rate_scale
        )
        cfg = SimConfig(interval_s=sc.interval_s, startup_s=sc.interval_s, seed=args.seed)
        opts = PolicyOptions(sla_attainment=TARGET)
        results = run_policies(POLICY_NAMES, req, profile, sc.sla, cfg)
        attained = run_policies(["planner"], req, profile, sc.sla, cfg, opts)[0]
        attained.policy = "planner-A"
        results.insert(3, attained)
        each = simulate(
            req,
            profile,
            sc.sla,
            cfg,
            IntervalOptimalPolicy(req, profile, sc.sla, cfg, None, TARGET),
        )
        each.policy = "optimal-each"
        results.insert(1, each)
        fixed = cheapest_static(req, profile, sc.sla, cfg)
        if fixed is not None:
            results.append(fixed)
        print(
            f"\n## {sc.label}, SLA {sc.sla.ttft_ms:g}/{sc.sla.itl_ms:g} ms: {len(req)} requests "
            f"over {req.span_s:.0f} s; all runs {time.perf_counter() - t0:.0f} s"
        )
        table(results)
        print(goal(results))
        print(blind_bursts(req, profile, sc.sla, cfg))


if __name__ == "__main__":
    main()
