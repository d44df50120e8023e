"""The live loop's two speed goals in one run (not a test; prints tables).

1. Tick latency excluding network waits (target: p99 <= 20 ms with the default predictor):
   ``benchmarks/live_tick.py`` — the planner loop with an in-memory metrics source and connector.
2. The mocker's sustained requests/s on this machine with its TTFT/ITL within 10 % of the
   profile's engine model: ``benchmarks/live_mocker.py``.

    .venv/bin/python benchmarks/live.py [--ticks 300] [--rates 20,40,80,120,160] [--duration 12]

Each part runs as its own process (the mocker benchmark starts subprocesses of its own), so one
part's threads and event loops do not disturb the other's timings.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ticks", type=int, default=300)
    ap.add_argument("--rates", default="20,40,80,120,160")
    ap.add_argument("--duration", type=float, default=12.0)
    args = ap.parse_args()
    print("== tick latency (network waits excluded) ==", flush=True)
    subprocess.run([sys.executable, HERE / "live_tick.py", "--ticks", str(args.ticks)], check=True)
    print("\n== mocker sustained rate ==", flush=True)
    subprocess.run(
        [sys.executable, HERE / "live_mocker.py", "--rates", args.rates,
         "--duration", str(args.duration)],
        check=True,
    )  # fmt: skip


if __name__ == "__main__":
    main()
