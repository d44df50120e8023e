"""Time per sizing decision against the load: O(log load) search vs the former O(load) loop.

For request rates 1e1 .. 1e15 requests/s (ISL 3000, OSL 150, SLA 200 ms / 10 ms, 99 % TTFT
quantile, the in-repo H200 Llama-3.1-8B profile), times :func:`dynamo_plan.core.planner.decide_once`
(one ``plan decide``) as it is, and with the prefill engine search and Erlang C swapped for the
former linear code (Erlang B carried along ``k = 1 .. answer``: O(answer) per call) — the
baseline, in the same process on the same machine. Both must give the same replicas. The
baseline is run while one decision takes under ``--baseline-budget`` seconds; beyond that its
time is extrapolated linearly from the last measured rate and marked ``(est.)``.

    .venv/bin/python benchmarks/sizing.py [--profile DIR] [--repeat 20] [--baseline-budget 2]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from dynamo_plan.adapters.profile_files import load_profile
from dynamo_plan.core import sla as sla_module
from dynamo_plan.core.planner import Decision, PlannerConfig, decide_once
from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.sla import SLA, Limits, Load
from tests.core.reference_sla import linear_erlang_c, linear_prefill_engines

PROFILE = Path(__file__).resolve().parents[1] / "tests/data/profiles/h200_llama3.1-8b-fp8_tp1p_tp1d"


@contextmanager
def linear_code() -> Iterator[None]:
    """The sizing module with its two former O(load) functions put back."""
    saved = sla_module._prefill_engines, sla_module.erlang_c
    sla_module._prefill_engines = linear_prefill_engines
    sla_module.erlang_c = linear_erlang_c
    try:
        yield
    finally:
        sla_module._prefill_engines, sla_module.erlang_c = saved


def timed(fn: Callable[[], Decision], repeat: int) -> tuple[float, Decision]:
    """Best of ``repeat`` wall times (s) and the decision."""
    best, out = math.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    assert out is not None
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", type=Path, default=PROFILE)
    ap.add_argument("--repeat", type=int, default=20, help="best of N timings per rate")
    ap.add_argument("--baseline-budget", type=float, default=2.0, help="seconds per decision")
    args = ap.parse_args()
    profile: PerformanceProfile = load_profile(args.profile)
    config = PlannerConfig(interval_s=60.0, sla=SLA(200.0, 10.0), limits=Limits(1, None))
    print(f"{'rps':>8} {'prefill':>18} {'decode':>18} {'new ms':>9} {'linear ms':>20} {'x':>16}")
    rate_s_per_engine: float | None = None
    for exponent in range(1, 16):
        rps = 10.0**exponent
        load = Load(rps * 60.0, 3000.0, 150.0, 60.0)
        new_s, d = timed(lambda load=load: decide_once(config, profile, load), args.repeat)
        if rate_s_per_engine is None or rate_s_per_engine * d.prefill <= args.baseline_budget:
            with linear_code():
                old_s, old = timed(
                    lambda load=load: decide_once(config, profile, load), 1 if exponent > 4 else 3
                )
            assert (old.prefill, old.decode) == (d.prefill, d.decode), (old, d)
            rate_s_per_engine = old_s / d.prefill
            old_txt = f"{old_s * 1e3:,.3f}"
        else:
            old_s = rate_s_per_engine * d.prefill
            old_txt = f"{old_s * 1e3:,.0f} (est.)"
        print(
            f"{rps:>8.0e} {d.prefill:>18,} {d.decode:>18,} {new_s * 1e3:>9.3f} {old_txt:>20} "
            f"{old_s / new_s:>16,.0f}"
        )


if __name__ == "__main__":
    main()
