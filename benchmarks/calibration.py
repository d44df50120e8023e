"""Does one measurement at one TP carry to the others? Calibrate the roofline on AI
Configurator's points at TP1 (the smallest TP whose weights fit) of one (model, system, backend),
then compare with AI Configurator at TP 2, 4, 8.

Prints the table model × backend × TP: median of (calibrated roofline ÷ AIC) over ISL 128–16 k
(prefill) and batch 1–256 × context 512–8 k (decode), and the same for the uncalibrated
roofline. The AIC numbers come from the installed ``aiconfigurator`` package at run time (the
project ships none of its database). Needs ``pip install -e '.[aiconfigurator]'``.

Run: ``.venv/bin/python benchmarks/calibration.py [--system h200_sxm] [--dtype bf16]
[--models llama-3.1-8b,qwen3-32b,llama-3.1-70b] [--backends vllm,sglang,trtllm]``
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from dynamo_plan.estimator import RooflineEstimator, load_gpu, load_model
from dynamo_plan.estimator.aic import (
    AiConfiguratorEstimator,
    aiconfigurator_available,
    aiconfigurator_version,
)
from dynamo_plan.estimator.calibration import (
    GRID_BATCH,
    GRID_CONTEXT,
    GRID_ISL,
    carry_across_tp,
    measure,
)

TOLERANCE = 0.10


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--system", default="h200_sxm")
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "fp8"])
    ap.add_argument("--models", default="llama-3.1-8b,qwen3-32b,llama-3.1-70b,qwen3-30b-a3b")
    ap.add_argument("--backends", default="vllm,sglang,trtllm")
    args = ap.parse_args()
    if not aiconfigurator_available():
        print("needs the aiconfigurator package: pip install -e '.[aiconfigurator]'")
        return 2
    gpu = load_gpu(args.system)
    print(
        f"calibrated roofline ÷ AI Configurator, median over the grid ({args.system}, "
        f"{args.dtype}); calibrated on the first TP listed; 'raw' = uncalibrated roofline"
    )
    print(f"{'model':16} {'backend':8} {'TP':>3}  {'prefill':>8} {'decode':>8}   raw p/d")
    worst = {"dense": 0.0, "MoE": 0.0}
    started = time.perf_counter()
    for name in args.models.split(","):
        model = load_model(name)
        for backend in args.backends.split(","):
            aic = AiConfiguratorEstimator(model, gpu, backend, args.dtype)  # type: ignore[arg-type]
            fit, ratios = carry_across_tp(aic, model, gpu, backend, args.dtype)  # type: ignore[arg-type]
            raw = RooflineEstimator(model, gpu, backend, args.dtype)  # type: ignore[arg-type]
            for tp, (pre, dec) in ratios.items():
                m = measure(aic, tp, GRID_ISL, GRID_BATCH, GRID_CONTEXT, "aic")
                rp = np.median(raw.prefill_many(tp, m.isl)[0] / m.ttft_ms)
                rd = np.median(raw.decode_many(tp, m.batch, m.context)[0] / m.itl_ms)
                base = tp == min(ratios)
                if not base:
                    kind = "MoE" if model.is_moe else "dense"
                    worst[kind] = max(worst[kind], abs(pre - 1), abs(dec - 1))
                mark = " (calibrated here)" if base else ""
                print(
                    f"{name:16} {backend:8} {tp:>3}  {pre:8.3f} {dec:8.3f}   "
                    f"{rp:.2f}/{rd:.2f}{mark}"
                )
            for note in fit.notes:
                if note.startswith("MoE"):
                    print(f"  note: {note}")
    print(
        f"worst median off the calibrated TP: dense {worst['dense']:.1%} (target ≤ "
        f"{TOLERANCE:.0%}), MoE {worst['MoE']:.1%} (expert parallelism not modelled: no target); "
        f"AIC {aiconfigurator_version()}; {time.perf_counter() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
