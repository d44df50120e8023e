"""Wall time of ``profile --offline`` (whole process, no plots) with the roofline and with AI
Configurator, against AI Configurator's own ``cli default`` for the same request, in one run.

Issue 16's targets: the roofline ≤ 1 s whole process; the AIC path as fast as AIC allows. The
request: Qwen3-32B on h200_sxm with trtllm, ISL 3000 / OSL 300, TTFT 300 ms / ITL 20 ms, 8 GPUs.
Prints median (min–max) of ``--runs`` fresh processes each (one warm-up of each not counted; AIC's
``cli default`` ``--aic-runs`` times, it takes ~10 s) and the ratios to ``cli default``.

Run: ``.venv/bin/python benchmarks/estimate_speed.py [--runs 5] [--aic-runs 1]``
(needs ``pip install -e '.[aiconfigurator]'`` for the two AIC rows; without it only the roofline).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 1.0
MODEL, SYSTEM, BACKEND = "Qwen/Qwen3-32B", "h200_sxm", "trtllm"
ISL, OSL, TTFT, ITL = 3000, 300, 300, 20


def _offline(out: Path, estimator: str) -> list[str]:
    return [
        sys.executable, "-m", "dynamo_plan", "profile", "--offline", "--model", MODEL,
        "--system", SYSTEM, "--backend", BACKEND, "--isl", str(ISL), "--osl", str(OSL),
        "--ttft", str(TTFT), "--itl", str(ITL), "--estimator", estimator, "--no-plots",
        "--out", str(out), "-o", "json",
    ]  # fmt: skip


def _aic_default(out: Path) -> list[str] | None:
    exe = shutil.which("aiconfigurator") or str(Path(sys.executable).parent / "aiconfigurator")
    if not Path(exe).exists():
        return None
    return [
        exe, "cli", "default", "--model-path", MODEL, "--system", SYSTEM, "--backend", BACKEND,
        "--total-gpus", "8", "--isl", str(ISL), "--osl", str(OSL), "--ttft", str(TTFT),
        "--tpot", str(ITL), "--save-dir", str(out),
    ]  # fmt: skip


def _time(cmd: list[str], runs: int, warm: bool) -> list[float]:
    times = []
    for i in range(runs + (1 if warm else 0)):
        started = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(
                f"{' '.join(cmd[:6])} … failed ({done.returncode}):\n{done.stderr[-2000:]}"
            )
        if i or not warm:
            times.append(elapsed)
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--aic-runs", type=int, default=1)
    args = ap.parse_args()
    from dynamo_plan.estimator.aic import aiconfigurator_available, aiconfigurator_version

    rows: list[tuple[str, list[float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        rows.append(
            (
                "profile --offline (roofline)",
                _time(_offline(base / "r", "roofline"), args.runs, True),
            )
        )
        if aiconfigurator_available():
            rows.append((
                "profile --offline --estimator aiconfigurator",
                _time(_offline(base / "a", "aiconfigurator"), args.aic_runs, False),
            ))  # fmt: skip
            cmd = _aic_default(base / "aic")
            if cmd is not None:
                rows.append(
                    (
                        f"aiconfigurator {aiconfigurator_version()} cli default",
                        _time(cmd, args.aic_runs, False),
                    )
                )
    ref = statistics.median(rows[-1][1]) if len(rows) == 3 else None
    print(f"{MODEL} on {SYSTEM} ({BACKEND}), ISL {ISL} OSL {OSL}, whole process, no plots")
    print(f"{'command':52} {'median s':>9} {'min–max s':>13} {'÷ cli default':>14}")
    for label, times in rows:
        med = statistics.median(times)
        ratio = f"{med / ref:.3f}" if ref else "—"
        print(f"{label:52} {med:9.2f} {min(times):6.2f}–{max(times):<6.2f} {ratio:>14}")
    roof = statistics.median(rows[0][1])
    verdict = "meets" if roof <= TARGET_S else "MISSES"
    print(f"roofline: {roof:.2f} s {verdict} the ≤ {TARGET_S:.0f} s target")
    return 0 if roof <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
