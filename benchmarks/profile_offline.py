"""Wall time of ``python -m dynamo_plan profile --offline`` (whole process), against the import
of the CLI alone as the baseline. Target: ≤ 1 s for Qwen3-32B on h200_sxm.

Run: ``.venv/bin/python benchmarks/profile_offline.py [--runs 5]``. Prints a table of medians
(and min/max) of ``--runs`` fresh processes each; one warm-up run of each is not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 1.0
PROFILE = [
    "-m", "dynamo_plan", "profile", "--offline",
    "--model", "Qwen/Qwen3-32B", "--system", "h200_sxm", "--backend", "vllm",
    "--isl", "3000", "--osl", "300", "--ttft", "300", "--itl", "20", "-o", "json",
]  # fmt: skip


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time(args: list[str], runs: int, rc: int) -> tuple[list[float], list[float], list[float]]:
    """Wall and CPU (user+sys) seconds of ``runs`` fresh processes (after one warm-up), and the
    ``elapsed_s`` the command reports itself (its work after imports and option parsing)."""
    wall, cpu, own = [], [], []
    for i in range(runs + 1):
        c, t = _cpu(), time.perf_counter()
        done = subprocess.run([sys.executable, *args], capture_output=True, text=True)
        if done.returncode != rc:
            raise SystemExit(f"{' '.join(args)}: exit {done.returncode}: {done.stderr.strip()}")
        if i == 0:
            continue  # warm-up
        wall.append(time.perf_counter() - t)
        cpu.append(_cpu() - c)
        if done.stdout.startswith("{"):
            own.append(float(json.loads(done.stdout)["elapsed_s"]))
    return wall, cpu, own


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "profile")
        cases = {
            "import dynamo_plan.cli.app (baseline)": (["-c", "import dynamo_plan.cli.app"], 0),
            # parses every option (typer's per-parameter coercion) then stops: exit 2, no --offline
            "profile without --offline (CLI floor)": (
                [*PROFILE[:3], *PROFILE[4:], "--out", out],
                2,
            ),
            "profile --offline (with plots)": ([*PROFILE, "--out", out], 0),
            "profile --offline --no-plots": ([*PROFILE, "--no-plots", "--out", out], 0),
        }
        rows = [(name, _time(args, runs, rc)) for name, (args, rc) in cases.items()]
    print(
        f"wall time of a fresh process, {runs} runs each (Qwen3-32B, h200_sxm, roofline); "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    )
    print(
        f"{'case':<40} {'median s':>9} {'min s':>7} {'max s':>7} {'cpu s':>7} {'own s':>7}  target"
    )
    for name, (wall, cpu, own) in rows:
        med = statistics.median(wall)
        verdict = "ok" if med <= TARGET_S else "OVER"
        verdict = verdict if name.startswith("profile --offline") else ""
        own_s = f"{statistics.median(own):>7.3f}" if own else f"{'—':>7}"
        print(
            f"{name:<40} {med:>9.3f} {min(wall):>7.3f} {max(wall):>7.3f} "
            f"{statistics.median(cpu):>7.3f} {own_s}  {verdict}"
        )
    print("cpu s = median user+sys CPU time of the process (less sensitive to a busy machine)")
    print("own s = median elapsed_s the command reports: its work after imports and parsing")


if __name__ == "__main__":
    main()
