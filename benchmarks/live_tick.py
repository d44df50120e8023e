"""Tick latency of the live planner loop (``plan run``), network waits excluded (not a test).

    .venv/bin/python benchmarks/live_tick.py [--ticks 300]

Drives :class:`dynamo_plan.live.loop.PlannerLoop` with an in-memory metrics source replaying
``mooncake_conversation`` bucketed at the interval (requests, ISL, OSL and made-up latencies
around the profile's, so correction factors move) and a connector that records targets, with
the exporter on. Prints per (predictor, interval, start-up, warm start) the tick's compute time
(``TickRecord.compute_s``: the tick minus the source and connector calls) p50 / p90 / p99 / max
in ms. Target: p99 <= 20 ms with the default predictor.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from dynamo_plan.adapters.frontend import FrontendWindow
from dynamo_plan.adapters.profile_files import load_profile
from dynamo_plan.connectors.base import ScaleOutcome, ScaleTarget, ServingReplicas
from dynamo_plan.live.config import RunSettings
from dynamo_plan.live.exporter import PlannerMetrics
from dynamo_plan.live.loop import PlannerLoop
from dynamo_plan.live.service import build_planner, planner_config
from dynamo_plan.trace import bucket, load_trace

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PROFILE = DATA / "profiles" / "h200_llama3.1-8b-fp8_tp1p_tp1d"
TRACE = DATA / "traces" / "mooncake_conversation.jsonl"


class ReplaySource:
    def __init__(self, counts: np.ndarray, isl: np.ndarray, osl: np.ndarray, interval_s: float):
        self.rows = list(zip(counts, isl, osl, strict=True))
        self.k = 0
        self.rng = np.random.default_rng(0)

    def window(self, interval_s: float) -> FrontendWindow:
        n, i, o = self.rows[self.k % len(self.rows)]
        self.k += 1
        if n <= 0:
            return FrontendWindow("idle", "", interval_s)
        ttft = 0.15 * self.rng.uniform(0.8, 1.6)
        itl = 0.012 * self.rng.uniform(0.8, 1.6)
        return FrontendWindow("value", "", interval_s, n, i, o, ttft, itl, o * itl + ttft)


class Recorder:
    name = "bench"

    def __init__(self) -> None:
        self.last: ScaleTarget | None = None

    def observe(self) -> ServingReplicas | None:
        return None if self.last is None else ServingReplicas(self.last.prefill, self.last.decode)

    def apply(self, target: ScaleTarget) -> ScaleOutcome:
        self.last = target
        return ScaleOutcome("applied", "")


def measure(predictor: str, interval: float, startup: float, warm: bool, ticks: int) -> list[float]:
    s = RunSettings(
        profile=PROFILE, model="m", interval=interval, startup_s=startup, predictor=predictor,
        warmup_trace=TRACE if warm else None, max_gpu_budget=-1,
    )  # fmt: skip
    config = planner_config(s)
    planner = build_planner(s, config, load_profile(PROFILE), (1, 1))
    series = bucket(load_trace([TRACE]), interval)
    source = ReplaySource(
        series.series("count"), series.series("isl"), series.series("osl"), interval
    )
    loop = PlannerLoop(planner, source, Recorder(), interval, PlannerMetrics(), log=lambda e: None)
    out = []
    for _ in range(ticks):
        rec = loop.tick()
        out.append(rec.compute_s * 1000.0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ticks", type=int, default=300)
    args = ap.parse_args()
    print(f"{'predictor':>10} {'interval':>8} {'startup':>7} {'warm':>5} "
          f"{'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'max ms':>7}")  # fmt: skip
    for predictor, interval, startup, warm in [
        ("default", 180.0, 120.0, False),
        ("default", 180.0, 120.0, True),
        ("default", 60.0, 120.0, True),
        ("default", 10.0, 120.0, True),
        ("constant", 180.0, 120.0, True),
        ("kalman", 60.0, 120.0, True),
        ("arima", 60.0, 120.0, True),
    ]:
        t0 = time.perf_counter()
        ms = np.array(measure(predictor, interval, startup, warm, args.ticks))
        p50, p90, p99 = np.percentile(ms, [50, 90, 99])
        print(
            f"{predictor:>10} {interval:>8g} {startup:>7g} {warm!s:>5} "
            f"{p50:>7.2f} {p90:>7.2f} {p99:>7.2f} {ms.max():>7.2f}"
            f"   ({time.perf_counter() - t0:.1f} s)"
        )


if __name__ == "__main__":
    main()
