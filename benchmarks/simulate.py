"""Benchmark of ``simulate --compare``: speed and the policy comparison on real traces.

Scenarios (shared H200 profile ``h200_llama3.1-8b-fp8_tp1p_tp1d`` unless noted):

* Azure LLM inference 2023, conversation, ``--rate-scale 10``, SLA TTFT 300 ms / ITL 20 ms,
  interval and start-up 6 s (= 60 s of the trace's own time: time is compressed 10×, so the
  planner gets as many decisions as on the real trace), and the same with the unscaled 60 s.
* Mooncake conversation, ``--rate-scale 1``, SLA TTFT 2000 ms / ITL 25 ms (mean ISL ~12k),
  interval and start-up 60 s; with the shared profile (its decode surface ends at 13.6k tokens of
  context, so ~30 % of the requests are beyond it) and with a profile estimated offline for the
  trace (``profile --offline``, llama-3.1-8b on h200_sxm, vLLM, TP1, context up to 32k).

Speed: wall seconds per policy run and ``speed-up = replayed trace duration / wall`` (the
duration of the replayed, i.e. compressed, trace), after a warm-up run (the first planner run of
a process imports the predictors' libraries, ~1 s). Each scenario also runs the planner with
``--ttft-quantile 0.99`` (prefill sized for the 99th-percentile TTFT under M/D/c queueing). Targets checked per scenario: planner SLA
attainment >= 99 %, planner GPU-hours <= 1.10 × oracle and < static peak, planner attainment >
reactive's at <= its GPU-hours.

    .venv/bin/python benchmarks/simulate.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dynamo_plan.adapters.profile_files import load_profile
from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.sla import SLA
from dynamo_plan.sim import RequestArrays, SimConfig
from dynamo_plan.sim.compare import POLICY_NAMES, PolicyOptions, compare_json, run_policies
from dynamo_plan.sim.result import SimResult
from dynamo_plan.trace import load_trace

PROFILE = Path("profiles") / "h200_llama3.1-8b-fp8_tp1p_tp1d"


@dataclass(frozen=True)
class Scenario:
    label: str
    trace: str
    rate_scale: float
    sla: SLA
    interval_s: float
    startup_s: float
    estimated: bool = False


SCENARIOS = [
    Scenario("azure conv ×10, 6/6 s", "azure2023_conv.csv", 10.0, SLA(300, 20), 6.0, 6.0),
    Scenario("azure conv ×10, 60/60 s", "azure2023_conv.csv", 10.0, SLA(300, 20), 60.0, 60.0),
    Scenario(
        "mooncake conv, 60/60 s", "mooncake_conversation.jsonl", 1.0, SLA(2000, 25), 60.0, 60.0
    ),
    Scenario(
        "mooncake conv, 60/60 s, estimated profile",
        "mooncake_conversation.jsonl",
        1.0,
        SLA(2000, 25),
        60.0,
        60.0,
        estimated=True,
    ),
]


def estimated_profile(req: RequestArrays, sla: SLA, folder: Path) -> PerformanceProfile:
    """``profile --offline`` for the trace's mean shape (llama-3.1-8b, h200_sxm, vLLM, TP1)."""
    from dynamo_plan.profiler.offline import OfflineRequest, run_offline
    from dynamo_plan.profiler.sweep import SweepSLA

    out = folder / "profile"
    run_offline(
        OfflineRequest(
            model="llama-3.1-8b",
            system="h200_sxm",
            backend="vllm",
            sla=SweepSLA(
                round(float(np.mean(req.isl))),
                round(float(np.mean(req.osl))),
                sla.ttft_ms,
                sla.itl_ms,
            ),
            out=out,
            max_gpus_per_engine=1,
            plots=False,
        )
    )
    return load_profile(out)


def table(results: list[SimResult], span_s: float) -> None:
    print("| policy | SLA % | GPU-h | × oracle | TTFT p50/p99 ms | ITL p50/p99 ms | max P/D | "
          "wall s | speed-up |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for d, r in zip(compare_json(results), results, strict=True):
        tl = d["replica_timeline"]
        print(
            f"| {d['policy']} | {100 * r.sla_attainment:.2f} | {r.gpu_hours:.3f} | "
            f"{d.get('gpu_hours_vs_oracle', float('nan')):.3f} | "
            f"{r.ttft_ms['p50']:.0f}/{r.ttft_ms['p99']:.0f} | "
            f"{r.itl_ms['p50']:.1f}/{r.itl_ms['p99']:.1f} | "
            f"{max(e['prefill'] for e in tl)}/{max(e['decode'] for e in tl)} | "
            f"{r.wall_s:.2f} | {span_s / r.wall_s:,.0f}× |"
        )


def targets(results: list[SimResult]) -> list[str]:
    by = {r.policy.split(" ")[0]: r for r in results}
    p, o, s, re = by["planner"], by["oracle"], by["static"], by["reactive"]
    checks = [
        ("planner SLA >= 99 %", p.sla_attainment >= 0.99, f"{100 * p.sla_attainment:.2f} %"),
        (
            "planner GPU-h <= 1.10 × oracle",
            p.gpu_hours <= 1.10 * o.gpu_hours,
            f"{p.gpu_hours / o.gpu_hours:.3f}×",
        ),
        (
            "planner GPU-h < static peak",
            p.gpu_hours < s.gpu_hours,
            f"{p.gpu_hours:.3f} vs {s.gpu_hours:.3f}",
        ),
        (
            "planner beats reactive on SLA at <= its GPU-h",
            p.sla_attainment > re.sla_attainment and p.gpu_hours <= re.gpu_hours,
            f"{100 * p.sla_attainment:.2f} % / {p.gpu_hours:.3f} GPU-h vs "
            f"{100 * re.sla_attainment:.2f} % / {re.gpu_hours:.3f} GPU-h",
        ),
    ]
    return [f"- {'MET ' if ok else 'MISS'} {name}: {detail}" for name, ok, detail in checks]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    args = ap.parse_args()
    shared = load_profile(args.data / PROFILE)
    # warm-up: the first planner run imports the predictors' libraries (~1 s, once per process)
    warm = RequestArrays.poisson(5.0, 120.0, 1000, 100)
    run_policies(POLICY_NAMES, warm, shared, SLA(300, 20), SimConfig(interval_s=30.0))
    for sc in SCENARIOS:
        t0 = time.perf_counter()
        trace = load_trace([args.data / "traces" / sc.trace])
        req = RequestArrays.from_trace(trace, rate_scale=sc.rate_scale)
        with tempfile.TemporaryDirectory() as tmp:
            profile = estimated_profile(req, sc.sla, Path(tmp)) if sc.estimated else shared
        cfg = SimConfig(interval_s=sc.interval_s, startup_s=sc.startup_s)
        results = run_policies(POLICY_NAMES, req, profile, sc.sla, cfg)
        total = time.perf_counter() - t0
        # The same four policies with prefill sized for the mean TTFT (--ttft-quantile 0), the
        # classic rule, for comparison with the default p99-TTFT sizing above.
        mean = run_policies(
            POLICY_NAMES, req, profile, sc.sla, cfg, PolicyOptions(ttft_quantile=None)
        )
        print(
            f"\n## {sc.label}: {len(req)} requests over {req.span_s:.0f} s (replayed), SLA "
            f"{sc.sla.ttft_ms:g}/{sc.sla.itl_ms:g} ms, out of profile "
            f"{results[0].out_of_profile_requests}; all four runs + loading {total:.2f} s"
        )
        table(results, req.span_s)
        print("\n".join(targets(results)))
        print("\nthe same, prefill sized for the mean TTFT (--ttft-quantile 0):")
        table(mean, req.span_s)
        print("\n".join(targets(mean)))


if __name__ == "__main__":
    main()
