"""Start-up benchmark: wall time of ``dynamo-plan --help`` and ``dynamo-plan CMD --help`` (not
a test).

    .venv/bin/python benchmarks/startup.py [--runs 7]

Each command runs ``--runs`` times in a fresh interpreter (``python -m dynamo_plan``, the
console script's code); the table prints the median and the fastest wall time, and the median
CPU time (user + system, which a busy machine inflates less than wall time), in ms, beside two
baselines: ``python -c pass`` (the interpreter alone) and ``python -c "import typer"`` (the
CLI framework, which also imports rich). Target: every ``--help`` at most 500 ms. On a loaded
machine compare with the baselines of the same run, not with absolute numbers.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time

TARGET_MS = 500.0
COMMANDS: list[list[str]] = [
    ["--help"],
    ["simulate", "--help"],
    ["predict", "backtest", "--help"],
    ["plan", "decide", "--help"],
    ["plan", "run", "--help"],
    ["profile", "--help"],
    ["trace", "stats", "--help"],
    ["dgdr", "validate", "--help"],
    ["doctor", "--help"],
    ["apply", "--help"],
]


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_ms(argv: list[str], runs: int) -> tuple[list[float], list[float]]:
    """Wall and CPU times (ms) of ``runs`` runs of ``argv`` (output discarded; a failure
    stops)."""
    wall, cpu = [], []
    for _ in range(runs):
        cpu_start, start = _children_cpu_s(), time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall.append((time.perf_counter() - start) * 1000.0)
        cpu.append((_children_cpu_s() - cpu_start) * 1000.0)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per command (default 7)")
    args = parser.parse_args()
    python = sys.executable
    rows: list[tuple[str, tuple[list[float], list[float]]]] = [
        ("python -c pass", timed_ms([python, "-c", "pass"], args.runs)),
        ('python -c "import typer"', timed_ms([python, "-c", "import typer"], args.runs)),
    ]
    for command in COMMANDS:
        argv = [python, "-m", "dynamo_plan", *command]
        rows.append(("dynamo-plan " + " ".join(command), timed_ms(argv, args.runs)))
    width = max(len(name) for name, _ in rows)
    print(f"{'command':<{width}}  {'wall median':>11}  {'wall min':>8}  {'cpu median':>10}")
    for name, (wall, cpu) in rows:
        print(
            f"{name:<{width}}  {statistics.median(wall):11.0f}  {min(wall):8.0f}  "
            f"{statistics.median(cpu):10.0f}"
        )
    slow = [
        n for n, (w, _) in rows if n.startswith("dynamo-plan") and statistics.median(w) > TARGET_MS
    ]
    print(f"target: --help <= {TARGET_MS:.0f} ms (wall median): " + ("missed" if slow else "met"))
    for name in slow:
        print(f"  over: {name}")


if __name__ == "__main__":
    main()
