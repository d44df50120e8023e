"""Benchmark of the streaming simulator: cost per request and peak memory from 0.1 M to 8.6 M
requests (a day at 100 req/s).

Requests: :class:`~dynamo_plan.sim.sources.PoissonStream` — Poisson arrivals at ``--rate``
req/s, Mooncake-like log-normal ISL/OSL (median 6,909 / p90 27,367 prompt tokens; median 350 /
p90 597 output tokens), generated chunk by chunk (never held as one array). Deployment: the shared
H200 profile ``h200_llama3.1-8b-fp8_tp1p_tp1d``, SLA TTFT 2000 ms / ITL 25 ms, interval and
start-up 60 s, the ``planner`` policy (default predictor) started at the replicas sized for the
mean load (``--policy static`` keeps those replicas instead).

Each size runs in a fresh process (so its peak RSS, ``ru_maxrss``, is its own) and prints
requests, simulated hours, wall and CPU seconds of the run (CPU time is what to compare on a
shared machine), CPU µs per request, peak RSS (MiB) and the run's summary.
The goal: a day at 100 req/s (8.64 M requests) in <= 120 s and <= 1 GiB peak RSS, with the cost
per request flat across sizes.

``--replays N`` times instead what sizing searches do: N :func:`~dynamo_plan.sim.engine.replay`
calls of a minute of Poisson arrivals at 10 req/s (about 600 requests, Mooncake-like lengths, one
seed each) on 1..4 prefill and 1..3 decode engines (StaticPolicy, idle at t = 0); it prints CPU
ms per replay (best of three passes).

    .venv/bin/python benchmarks/simulate_stream.py [--data ../shared/data] [--sizes 0.1,1,8.64]
    .venv/bin/python benchmarks/simulate_stream.py --replays 200
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

PROFILE = Path("profiles") / "h200_llama3.1-8b-fp8_tp1p_tp1d"


def run_one(data: Path, millions: float, rate: float, policy_name: str) -> dict[str, object]:
    """Simulate ``millions`` M requests in this process; the summary and its cost."""
    from dynamo_plan.adapters.profile_files import load_profile
    from dynamo_plan.core.sla import SLA, EngineGpus, Limits, Load, size_replicas
    from dynamo_plan.sim import SimConfig, StaticPolicy, simulate
    from dynamo_plan.sim.policies import Policy
    from dynamo_plan.sim.policies_planner import PlannerPolicy, simulated_planner_config
    from dynamo_plan.sim.sources import MOONCAKE_ISL, MOONCAKE_OSL, PoissonStream

    profile = load_profile(data / PROFILE)
    sla = SLA(2000.0, 25.0)
    config = SimConfig(interval_s=60.0, startup_s=60.0)
    duration = millions * 1e6 / rate
    source = PoissonStream(rate, duration, MOONCAKE_ISL, MOONCAKE_OSL, seed=1)
    mean_isl = MOONCAKE_ISL.median * float(__import__("math").exp(MOONCAKE_ISL.sigma**2 / 2))
    mean_osl = MOONCAKE_OSL.median * float(__import__("math").exp(MOONCAKE_OSL.sigma**2 / 2))
    load = Load(rate * config.interval_s, mean_isl, mean_osl, config.interval_s)
    plan = size_replicas(load, profile, sla, EngineGpus(1, 1), Limits(), best_effort=True)
    start = (plan.prefill, plan.decode)
    policy: Policy
    if policy_name == "static":
        policy = StaticPolicy(*start)
    else:
        cfg = simulated_planner_config(sla, config)
        policy = PlannerPolicy(cfg, profile, "default", initial=start)
    # warm-up: the planner's first decisions import the predictors' libraries (seconds, once)
    warm = PoissonStream(1.0, 300.0, MOONCAKE_ISL, MOONCAKE_OSL, seed=2)
    simulate(
        warm,
        profile,
        sla,
        config,
        PlannerPolicy(simulated_planner_config(sla, config), profile, "default"),
    )
    t0, c0 = time.perf_counter(), time.process_time()
    res = simulate(source, profile, sla, config, policy)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {
        "requests": res.requests,
        "sim_hours": res.sim_end_s / 3600.0,
        "wall_s": wall,
        "cpu_s": cpu,
        "us_per_request": 1e6 * wall / res.requests,
        "cpu_us_per_request": 1e6 * cpu / res.requests,
        "peak_rss_mib": rss_mib,
        "completed": res.completed,
        "sla_attainment": res.sla_attainment,
        "unservable": res.unservable,
        "ttft_p99_ms": res.ttft_ms["p99"],
        "itl_p99_ms": res.itl_ms["p99"],
        "gpu_hours": res.gpu_hours,
        "start_replicas": list(start),
        "max_replicas": [
            max(e["prefill"] for e in res.replica_timeline),
            max(e["decode"] for e in res.replica_timeline),
        ],
        "intervals": len(res.interval_stats),
    }


def run_replays(data: Path, count: int) -> dict[str, float]:
    """CPU time of ``count`` small replays (module docstring), best of three passes."""
    from dynamo_plan.adapters.profile_files import load_profile
    from dynamo_plan.sim import SimConfig, StaticPolicy
    from dynamo_plan.sim.engine import replay
    from dynamo_plan.sim.sources import MOONCAKE_ISL, MOONCAKE_OSL, PoissonStream

    profile = load_profile(data / PROFILE)
    config = SimConfig(interval_s=60.0, startup_s=60.0)
    samples = [
        next(iter(PoissonStream(10.0, 60.0, MOONCAKE_ISL, MOONCAKE_OSL, seed=s).chunks()))
        for s in range(count)
    ]
    best = float("inf")
    for _ in range(3):
        c0 = time.process_time()
        for i, sample in enumerate(samples):
            replay(sample, profile, config, StaticPolicy(1 + i % 4, 1 + i % 3))
        best = min(best, time.process_time() - c0)
    n = sum(len(s) for s in samples)
    return {"replays": count, "requests": n, "cpu_ms_per_replay": 1e3 * best / count}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    ap.add_argument("--sizes", default="0.1,1,8.64", help="millions of requests per run")
    ap.add_argument("--rate", type=float, default=100.0, help="requests per second")
    ap.add_argument("--policy", choices=("planner", "static"), default="planner")
    ap.add_argument("--one", type=float, help=argparse.SUPPRESS)  # child: run one size
    ap.add_argument("--replays", type=int, help="time this many small replay() calls instead")
    args = ap.parse_args()
    if args.replays:
        r = run_replays(args.data, args.replays)
        print(
            f"{r['replays']} replays of {r['requests'] / r['replays']:.0f} requests on average: "
            f"{r['cpu_ms_per_replay']:.2f} ms CPU each (best of 3)"
        )
        return
    if args.one is not None:
        print(json.dumps(run_one(args.data, args.one, args.rate, args.policy)))
        return
    head = (
        f"{'requests':>10} {'sim h':>6} {'wall s':>7} {'CPU s':>7} {'CPU µs/req':>10} "
        f"{'peak RSS MiB':>12} {'SLA met %':>9} {'TTFT p99':>9} {'ITL p99':>8} {'GPU-h':>8} "
        f"{'max P/D':>8}"
    )
    print(f"policy {args.policy}, {args.rate:g} req/s, Mooncake-like ISL/OSL, SLA 2000/25 ms")
    print(head)
    for size in (float(s) for s in args.sizes.split(",")):
        out = subprocess.run(
            [sys.executable, __file__, "--data", str(args.data), "--rate", str(args.rate),
             "--policy", args.policy, "--one", str(size)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{r['requests']:>10} {r['sim_hours']:>6.2f} {r['wall_s']:>7.1f} {r['cpu_s']:>7.1f} "
            f"{r['cpu_us_per_request']:>10.2f} {r['peak_rss_mib']:>12.0f} "
            f"{100 * r['sla_attainment']:>9.2f} {r['ttft_p99_ms']:>9.0f} {r['itl_p99_ms']:>8.1f} "
            f"{r['gpu_hours']:>8.1f} {r['max_replicas'][0]:>4}/{r['max_replicas'][1]:<3}",
            flush=True,
        )


if __name__ == "__main__":
    main()
