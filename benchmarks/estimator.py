"""Accuracy and speed of the roofline estimator against the shared H200 measurement.

Measurement: ``../shared/data/profiles/h200_llama3.1-8b-fp8_tp1p_tp1d`` (Llama-3.1-8B FP8
weights, TP1 prefill and decode, H200, Dynamo's profiler). Compared:
  - TTFT at each measured ISL (prefill_ttft, ms);
  - ITL and throughput/GPU at each measured decode point, where the decode batch is
    ``x_kv_usage · max_kv_tokens / context_length`` (Dynamo's definition of the point).
Prints median and p90 of |estimate − measured| / measured, and the estimator's time per point
(scalar calls and the vectorised ``*_many`` calls).

Run: .venv/bin/python benchmarks/estimator.py [--backend vllm] [--kv-dtype bf16]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from dynamo_plan.estimator import RooflineEstimator, load_gpu, load_model

PROFILE = (
    Path(__file__).resolve().parents[1].parent
    / "shared/data/profiles/h200_llama3.1-8b-fp8_tp1p_tp1d"
)


def _err(est: np.ndarray, meas: np.ndarray) -> np.ndarray:
    return np.asarray(np.abs(est - meas) / meas * 100.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", type=Path, default=PROFILE)
    ap.add_argument("--backend", default="vllm", choices=["trtllm", "vllm", "sglang"])
    ap.add_argument("--kv-dtype", default="bf16", choices=["bf16", "fp8"])
    ap.add_argument("--verbose", action="store_true", help="print every point")
    args = ap.parse_args()

    pre = np.load(args.profile / "selected_prefill_interpolation/raw_data.npz")
    dec = np.load(args.profile / "selected_decode_interpolation/raw_data.npz")
    est = RooflineEstimator(
        load_model("meta-llama/Llama-3.1-8B-Instruct"),
        load_gpu("h200_sxm"),
        backend=args.backend,
        dtype="fp8",
        kv_dtype=args.kv_dtype,
    )
    isl = pre["prefill_isl"].astype(float)
    ttft, _ = est.prefill_many(1, isl)
    max_kv = int(dec["max_kv_tokens"][0])
    ctx = dec["y_context_length"].astype(float)
    batch = np.maximum(1.0, dec["x_kv_usage"] * max_kv / ctx)
    itl, thpt = est.decode_many(1, batch, ctx)

    rows = [
        ("TTFT vs ISL", _err(ttft, pre["prefill_ttft"])),
        ("decode ITL", _err(itl, dec["z_itl"])),
        ("decode thpt/GPU", _err(thpt, dec["z_thpt_per_gpu"])),
    ]
    tbl = Table(
        title=f"roofline estimator vs H200 measurement (backend={args.backend}, "
        f"dtype=fp8, kv_dtype={args.kv_dtype})",
        title_justify="left",
    )
    for c in ("quantity", "points", "median |err| %", "p90 |err| %", "max |err| %"):
        tbl.add_column(c, justify="left" if c == "quantity" else "right")
    for name, e in rows:
        tbl.add_row(
            name,
            str(e.size),
            f"{np.median(e):.1f}",
            f"{np.percentile(e, 90):.1f}",
            f"{e.max():.1f}",
        )
    mk = est.max_kv_tokens(1)
    tbl.add_row("max_kv_tokens", "1", f"{abs(mk - max_kv) / max_kv * 100:.1f}", "", "")
    console = Console()
    console.print(tbl)
    console.print(f"max_kv_tokens: estimated {mk}, measured {max_kv}")

    if args.verbose:
        for i in range(isl.size):
            console.print(
                f"prefill isl={isl[i]:.0f} ttft est {ttft[i]:.1f} meas {pre['prefill_ttft'][i]:.1f}"
            )
        for i in range(ctx.size):
            console.print(
                f"decode ctx={ctx[i]:.0f} batch={batch[i]:.0f} itl est {itl[i]:.2f} meas "
                f"{dec['z_itl'][i]:.2f}  thpt est {thpt[i]:.0f} meas {dec['z_thpt_per_gpu'][i]:.0f}"
            )

    n = 2000
    t0 = time.perf_counter()
    for i in range(n):
        est.decode(1, 1 + i % 256, 1024 + i)
    scalar_us = (time.perf_counter() - t0) / n * 1e6
    b = np.arange(1, 100_001, dtype=float)
    t0 = time.perf_counter()
    est.decode_many(1, b, 4096.0)
    vec_us = (time.perf_counter() - t0) / b.size * 1e6
    speed = Table(title="estimator time per point", title_justify="left")
    speed.add_column("call")
    speed.add_column("µs/point", justify="right")
    speed.add_row("decode(tp, batch, context) scalar", f"{scalar_us:.1f}")
    speed.add_row("decode_many (100 000 points)", f"{vec_us:.3f}")
    console.print(speed)


if __name__ == "__main__":
    main()
