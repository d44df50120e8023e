"""The ONE table of efficiency constants of the roofline estimator, with their sources.

Calibrated on the shared H200 measurement (``shared/data/profiles/h200_llama3.1-8b-fp8_tp1p_tp1d``:
Llama-3.1-8B FP8 weights, BF16 KV, TP1, Dynamo's profiler) and on public figures cited below.
That measurement matches vLLM's memory accounting (``gpu_memory_utilization`` 0.9 of the total,
BF16 KV cache: 945 029 tokens, see tests/estimator) and its ~4.4 ms batch-1 ITL and ~15 ms TTFT
floor are vLLM-like, so it calibrates the ``vllm`` row of :data:`BACKEND_OVERHEADS`; the other two rows
keep vLLM's GPU-side constants and scale only the CPU-side overheads by public comparisons.
The TP constants (all-reduce latency and bandwidth, weight-streaming efficiency) come from AI
Configurator 0.12's measured H200 data, which a TP1 measurement cannot constrain.

:func:`fit` fits these constants to any measurement (:class:`Measurement`: a Dynamo-layout
profile via :func:`measurement_from_profile`, or points of another estimator via
:func:`measure`) by bounded least squares; :func:`carry_across_tp` is the structure test
(calibrate at one TP, compare at the others; ``benchmarks/calibration.py`` prints its table).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from dynamo_plan.core.backends import BackendName
from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.errors import InputError
from dynamo_plan.estimator.arch import GpuSpec, ModelArch
from dynamo_plan.estimator.base import Dtype


@dataclass(frozen=True)
class Calibration:
    """GPU-side efficiencies (fractions of the datasheet peaks in data/gpus.yaml)."""

    gemm_efficiency: float = 0.50
    """Achieved fraction of the dense tensor-core peak by the GEMMs of a forward pass. Public
    cuBLAS/CUTLASS benchmarks on H100 reach ~60–75 % of dense peak for large square GEMMs;
    a whole forward pass (activation quantisation, epilogues, smaller N·K shapes) less. Fitted
    on the measured prefill TTFT (least squares): 0.50."""
    gemm_half_tokens: float = 128.0
    """Tokens (GEMM M) at which a GEMM reaches half of ``gemm_efficiency``: compute time is
    ``flops·(M + m½)/M / (peak·eff)`` — the tile quantisation / wave tail of small-M GEMMs
    (CUTLASS tiles are 64–128 rows)."""
    attn_efficiency: float = 0.55
    """FlashAttention fraction of the BF16 peak in prefill (FlashAttention-3 paper, Shah et al.
    2024: 500–740 TFLOP/s forward on H100 = 50–75 %; lower with causal masking and GQA);
    fitted on the curvature of the measured TTFT above 8 k tokens (0.55)."""
    hbm_efficiency: float = 0.88
    """Achieved fraction of HBM bandwidth when streaming weights and KV cache (STREAM-like
    copies reach ~90 %; decode GEMV/paged-attention kernels ~80–90 %); fitted on the measured
    ITL growth with batch·context (BF16 KV on H200): 0.88."""
    weight_hbm_efficiency: float = 0.82
    """Achieved fraction of HBM bandwidth when a GEMM streams its weights (decode, short
    prefill). AI Configurator 0.12's measured H200 GEMMs (Qwen3-32B, Llama-3.1-8B, bf16, all
    three backends): TP1 decode GEMMs take ``weights/(0.82–0.84·hbm)`` plus ~4 µs per kernel.
    Kept apart from ``hbm_efficiency`` (KV reads run at ~0.9): a TP1 measurement cannot tell
    weight streaming (÷ TP) from fixed per-step time (not ÷ TP), so this one is fitted only
    from a measurement at two or more TPs (see :func:`fit`)."""
    allreduce_latency_us: float = 3.0
    """Fixed latency of one small all-reduce: AI Configurator 0.12's measured H200 custom
    all-reduce (TRT-LLM, vLLM) is 2.6–3.5 µs up to 64 K bf16 elements at TP 2–8."""
    nvlink_efficiency: float = 0.70
    """Achieved fraction of unidirectional NVLink bandwidth by the one-shot all-reduce (small
    and mid-size messages: each GPU reads its peers' copies). With the two terms below, fitted
    on AI Configurator 0.12's H200 TP 2/4/8 points of Llama-3.1-8B, Qwen3-32B and
    Llama-3.1-70B (all three backends) after a TP1 calibration (benchmarks/calibration.py)."""
    allreduce_half_bytes: float = 8e6
    """Message size (bytes) at which the two-shot (reduce-scatter + all-gather) all-reduce reaches
    half the NVLink peak: its bandwidth is ``nvlink·S/(S + S½)``. AIC's measured TRT-LLM
    all-reduce at TP8 runs 16 MB at ~0.57 and 256 MB at ~0.96 of the peak."""
    kernel_overhead_us: float = 3.75
    """GPU time per kernel launch per step not explained by FLOPs or bytes (launch gap + tail
    of a CUDA-graph replay, 2–5 µs per kernel on Hopper); × ``counts.kernels_per_step``
    (12 per dense layer, more for MLA/MoE). Fitted on the measured batch-1 decode step:
    45 µs per Llama layer / 12 kernels."""
    runtime_reserve_gib: float = 1.0
    """HBM per GPU outside weights, activations and KV: CUDA context, cuBLAS workspaces,
    CUDA graphs (vLLM logs ~0.5–1.5 GiB of "non-torch memory" + graph memory)."""
    max_num_tokens: int = 8192
    """Tokens per scheduler step (vLLM ``max_num_batched_tokens`` / TRT-LLM ``max_num_tokens``
    default 8192): sizes the activation reserve and the prefill chunking."""
    max_num_seqs: int = 1024
    """Sequences per step (vLLM V1 default on ≥70 GiB GPUs): sizes the FP32 logits reserve."""


@dataclass(frozen=True)
class BackendOverhead:
    """CPU-side costs of a serving engine."""

    step_ms: float
    """Per scheduler step: scheduling, input preparation, graph launch, sampling."""
    seq_us: float
    """Per sequence per step: scheduler bookkeeping, sampling, detokenisation, streaming."""
    request_ms: float
    """Per request, added to TTFT: HTTP, tokenisation, queueing, first-token streaming."""


# vllm: fitted on the H200 profile (least squares on log TTFT and log ITL, robust loss, with the
# efficiencies above; the fit gave seq_us 14.6, request_ms 14.2 and 44.8 µs per Llama layer).
# sglang / trtllm: lower CPU overhead (SGLang v0.4 blog "zero-overhead batch scheduler", LMSYS
# 2024-12; TRT-LLM C++ executor runtime), same GPU kernels class.
BACKEND_OVERHEADS: MappingProxyType[BackendName, BackendOverhead] = MappingProxyType(
    {
        "vllm": BackendOverhead(step_ms=1.0, seq_us=15.0, request_ms=14.0),
        "sglang": BackendOverhead(step_ms=0.7, seq_us=10.0, request_ms=10.0),
        "trtllm": BackendOverhead(step_ms=0.5, seq_us=5.0, request_ms=8.0),
    }
)

DEFAULT = Calibration()


# --- fitting the free constants to a measurement -------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    """Measured points of one (model, system, backend, dtype): prefill TTFT (ms) of one request
    of ``isl`` tokens on a TP ``prefill_tp`` engine, decode ITL (ms) of ``batch`` sequences at
    ``context`` tokens on a TP ``decode_tp`` engine. Arrays of equal length per phase; ``tp``
    arrays allow points at several TPs (e.g. AI Configurator's). ``source`` names where it
    came from (a directory, ``aiconfigurator …``)."""

    source: str
    prefill_tp: npt.NDArray[np.int64]
    isl: npt.NDArray[np.float64]
    ttft_ms: npt.NDArray[np.float64]
    decode_tp: npt.NDArray[np.int64]
    batch: npt.NDArray[np.float64]
    context: npt.NDArray[np.float64]
    itl_ms: npt.NDArray[np.float64]

    @property
    def tps(self) -> tuple[int, ...]:
        """Distinct TPs measured (both phases)."""
        return tuple(sorted({int(t) for t in (*self.prefill_tp, *self.decode_tp)}))


def measurement_from_profile(
    profile: PerformanceProfile, prefill_tp: int, decode_tp: int, source: str
) -> Measurement:
    """The points of a Dynamo-layout profile (``core.profile``): prefill (ISL, TTFT) as is;
    decode (kv_usage, context, ITL) with ``batch = kv_usage·max_kv_tokens/context`` (at least
    1), the concurrency Dynamo's profiler ran at."""
    pre, dec = profile.prefill, profile.decode
    kv = np.asarray(dec.kv_usage, dtype=np.float64)
    ctx = np.asarray(dec.context, dtype=np.float64)
    batch = np.maximum(1.0, kv * float(profile.max_kv_tokens) / ctx)
    isl = np.asarray(pre.isl, dtype=np.float64)
    return Measurement(
        source=source,
        prefill_tp=np.full(isl.shape, prefill_tp, dtype=np.int64),
        isl=isl,
        ttft_ms=np.asarray(pre.ttft_ms, dtype=np.float64),
        decode_tp=np.full(ctx.shape, decode_tp, dtype=np.int64),
        batch=batch,
        context=ctx,
        itl_ms=np.asarray(dec.itl_ms, dtype=np.float64),
    )


#: (name, where it lives, lower bound, upper bound) of every constant :func:`fit` may fit
_PARAMS: tuple[tuple[str, str, float, float], ...] = (
    ("gemm_efficiency", "cal", 0.05, 1.0),
    ("gemm_half_tokens", "cal", 0.0, 4096.0),
    ("attn_efficiency", "cal", 0.05, 1.0),
    ("hbm_efficiency", "cal", 0.2, 1.0),
    ("kernel_overhead_us", "cal", 0.0, 100.0),
    ("step_ms", "ovh", 0.0, 50.0),
    ("seq_us", "ovh", 0.0, 500.0),
    ("request_ms", "ovh", 0.0, 500.0),
    # identifiable only from points at TP > 1 / at two TPs (see fit)
    ("nvlink_efficiency", "cal", 0.05, 1.0),
    ("allreduce_latency_us", "cal", 0.0, 50.0),
    ("allreduce_half_bytes", "cal", 1e5, 1e9),
    ("weight_hbm_efficiency", "cal", 0.2, 1.0),
)
_TP_PARAMS = ("nvlink_efficiency", "allreduce_latency_us", "allreduce_half_bytes")
_MULTI_TP_PARAMS = ("weight_hbm_efficiency",)
#: weight of the pull of each fitted constant towards its default (log space): settles the
#: constants the points hardly constrain (a TP1 profile cannot split fixed per-step time between
#: kernel launches and the scheduler) without moving the well-constrained ones
PRIOR_WEIGHT = 0.05


@dataclass(frozen=True)
class Fit:
    """Result of :func:`fit`: the fitted constants, what was fitted and how well.

    ``residuals``: per phase, the median and max |estimate/measured − 1| (fractions) and the
    point count; ``fitted`` / ``fixed``: the constants' values; ``notes``: what the data could
    not tell (one line each)."""

    calibration: Calibration
    overhead: BackendOverhead
    source: str
    fitted: dict[str, float]
    fixed: dict[str, float]
    residuals: dict[str, dict[str, float]]
    notes: tuple[str, ...]
    measured: dict[str, Any] = field(default_factory=dict)
    """What was measured (model, system, backend, dtype, TP per phase), when known."""

    def record(self) -> dict[str, Any]:
        """JSON-ready summary for ``profile.json`` (``obtained_by.calibration``) and ``-o json``."""
        return {
            "source": self.source,
            **({"measured": self.measured} if self.measured else {}),
            "fitted": {k: round(v, 6) for k, v in self.fitted.items()},
            "fixed": {k: round(v, 6) for k, v in self.fixed.items()},
            "residuals": self.residuals,
            "notes": list(self.notes),
        }


def _value(name: str, where: str, cal: Calibration, ovh: BackendOverhead) -> float:
    return float(getattr(cal if where == "cal" else ovh, name))


def fit(
    measurement: Measurement,
    model: ModelArch,
    gpu: GpuSpec,
    backend: BackendName,
    dtype: Dtype,
    kv_dtype: Dtype | None = None,
    start: Calibration = DEFAULT,
) -> Fit:
    """Fit the roofline's free constants to ``measurement`` by bounded nonlinear least squares
    (``scipy.optimize.least_squares``, trust-region reflective) on log(estimate/measured) of
    every point, plus a weak pull of each constant towards its default (:data:`PRIOR_WEIGHT`).

    Always fitted: GEMM and attention compute efficiency, the small-M ramp, KV/activation HBM
    efficiency, per-kernel and per-step overhead, per-sequence and per-request overhead. The TP
    all-reduce term (NVLink efficiency, latency) only when some point has TP > 1, the
    weight-streaming efficiency only with points at two or more TPs; otherwise they keep their
    defaults (fitted on AI Configurator's TP 2–8 data) and ``notes`` says so. MoE models: the
    fit is per expert-parallel layout it saw; ``notes`` warns that expert parallelism is not
    modelled (the estimator shards experts by TP only).
    """
    from scipy.optimize import least_squares

    from dynamo_plan.estimator.roofline import RooflineEstimator

    base = RooflineEstimator(model, gpu, backend, dtype, kv_dtype, calibration=start)
    ovh0 = base.overhead
    tps = measurement.tps
    notes: list[str] = []
    names = [p for p in _PARAMS if p[0] not in _TP_PARAMS + _MULTI_TP_PARAMS]
    if max(tps) > 1:
        names += [p for p in _PARAMS if p[0] in _TP_PARAMS]
    else:
        notes.append(
            "all points at TP1: the TP all-reduce term keeps its defaults (fitted on "
            "AI Configurator's TP 2–8 data)"
        )
    if len(tps) > 1:
        names += [p for p in _PARAMS if p[0] in _MULTI_TP_PARAMS]
    else:
        notes.append(
            f"one TP ({tps[0]}): weight streaming (÷ TP) and fixed per-step time (not ÷ TP) "
            "cannot be told apart; weight_hbm_efficiency keeps its default"
        )
    if model.is_moe:
        notes.append(
            "MoE model: experts are sharded by TP only; expert parallelism (EP) is not "
            "modelled, so TPs other than the measured one carry the dense-layer structure only"
        )
    x0 = np.array([_value(n, w, start, ovh0) for n, w, _, _ in names])
    lo = np.array([lo for _, _, lo, _ in names])
    hi = np.array([hi for _, _, _, hi in names])
    x0 = np.clip(x0, lo, hi)
    m = measurement

    def build(x: npt.NDArray[np.float64]) -> RooflineEstimator:
        cal_kw: dict[str, Any] = {
            n: float(v) for (n, w, _, _), v in zip(names, x, strict=True) if w == "cal"
        }
        ovh_kw = {n: float(v) for (n, w, _, _), v in zip(names, x, strict=True) if w == "ovh"}
        return RooflineEstimator(
            model,
            gpu,
            backend,
            dtype,
            kv_dtype,
            calibration=replace(start, **cal_kw),
            overhead=replace(ovh0, **ovh_kw),
        )

    def predict(est: RooflineEstimator) -> tuple[npt.NDArray[np.float64], ...]:
        pre = np.empty_like(m.ttft_ms)
        for tp in np.unique(m.prefill_tp):
            sel = m.prefill_tp == tp
            pre[sel] = est.prefill_many(int(tp), m.isl[sel])[0]
        dec = np.empty_like(m.itl_ms)
        for tp in np.unique(m.decode_tp):
            sel = m.decode_tp == tp
            dec[sel] = est.decode_many(int(tp), m.batch[sel], m.context[sel])[0]
        return pre, dec

    def residuals(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        pre, dec = predict(build(x))
        prior = PRIOR_WEIGHT * np.log((x + 1e-3) / (x0 + 1e-3))
        return np.concatenate([np.log(pre / m.ttft_ms), np.log(dec / m.itl_ms), prior])

    result = least_squares(residuals, x0, bounds=(lo, hi), x_scale=np.maximum(np.abs(x0), 1e-2))
    best = build(result.x)
    pre, dec = predict(best)
    stats: dict[str, dict[str, float]] = {}
    for phase, est_v, meas in (("prefill", pre, m.ttft_ms), ("decode", dec, m.itl_ms)):
        if meas.size:
            err = np.abs(est_v / meas - 1.0)
            stats[phase] = {
                "points": int(meas.size),
                "median_abs_error": round(float(np.median(err)), 4),
                "max_abs_error": round(float(np.max(err)), 4),
            }
    fitted = {n: float(v) for (n, _, _, _), v in zip(names, result.x, strict=True)}
    fixed = {n: _value(n, w, best.cal, best.overhead) for n, w, _, _ in _PARAMS if n not in fitted}
    return Fit(best.cal, best.overhead, m.source, fitted, fixed, stats, tuple(notes))


def measure(
    estimator: Any,
    tp: int,
    isl: npt.ArrayLike,
    batch: npt.ArrayLike,
    context: npt.ArrayLike,
    source: str,
) -> Measurement:
    """A :class:`Measurement` taken from any estimator (``prefill``/``decode`` per point) at one
    TP: every ISL for prefill, every (batch, context) pair of the grid for decode — e.g. from
    AI Configurator, to calibrate the roofline on it."""
    isls = np.asarray(isl, dtype=np.float64).ravel()
    grid_b, grid_c = np.meshgrid(
        np.asarray(batch, dtype=np.float64), np.asarray(context, dtype=np.float64)
    )
    b, c = grid_b.ravel(), grid_c.ravel()
    ttft = np.array([estimator.prefill(tp, int(n)).latency_ms for n in isls])
    itl = np.array(
        [estimator.decode(tp, int(x), int(y)).latency_ms for x, y in zip(b, c, strict=True)]
    )
    return Measurement(
        source=source,
        prefill_tp=np.full(isls.shape, tp, dtype=np.int64),
        isl=isls,
        ttft_ms=ttft,
        decode_tp=np.full(b.shape, tp, dtype=np.int64),
        batch=b,
        context=c,
        itl_ms=itl,
    )


#: the grid :func:`carry_across_tp` measures and compares on (tokens; batch × context pairs)
GRID_ISL = (128, 256, 512, 1024, 2048, 4096, 8192, 16384)
GRID_BATCH = (1, 4, 16, 64, 256)
GRID_CONTEXT = (512, 2048, 8192)


def carry_across_tp(
    reference: Any,
    model: ModelArch,
    gpu: GpuSpec,
    backend: BackendName,
    dtype: Dtype,
    tps: tuple[int, ...] = (1, 2, 4, 8),
    kv_dtype: Dtype | None = None,
) -> tuple[Fit, dict[int, tuple[float, float]]]:
    """The structure test: calibrate the roofline on ``reference``'s points (any estimator,
    e.g. AI Configurator) at the smallest TP of ``tps`` whose weights fit, then compare at every
    fitting TP of ``tps``: ``{tp: (median prefill ratio, median decode ratio)}``, ratio =
    calibrated roofline / reference over :data:`GRID_ISL` and :data:`GRID_BATCH` ×
    :data:`GRID_CONTEXT` (decode points beyond the engine's KV capacity are left out)."""
    from dynamo_plan.estimator.roofline import RooflineEstimator

    memory = RooflineEstimator(model, gpu, backend, dtype, kv_dtype)
    fitting = [tp for tp in tps if memory.fits(tp)]
    if not fitting:
        raise InputError(f"{model.name} does not fit on {gpu.name} at any TP of {tps}")
    base = fitting[0]
    result = fit(
        _within_kv(measure(reference, base, GRID_ISL, GRID_BATCH, GRID_CONTEXT, "reference"),
                   memory.max_kv_tokens(base)),
        model, gpu, backend, dtype, kv_dtype,
    )  # fmt: skip
    est = RooflineEstimator(
        model, gpu, backend, dtype, kv_dtype, calibration=result.calibration,
        overhead=result.overhead,
    )  # fmt: skip
    out: dict[int, tuple[float, float]] = {}
    for tp in fitting:
        m = _within_kv(
            measure(reference, tp, GRID_ISL, GRID_BATCH, GRID_CONTEXT, "reference"),
            memory.max_kv_tokens(tp),
        )
        pre = est.prefill_many(tp, m.isl)[0] / m.ttft_ms
        dec = est.decode_many(tp, m.batch, m.context)[0] / m.itl_ms
        out[tp] = (float(np.median(pre)), float(np.median(dec)))
    return result, out


def _within_kv(m: Measurement, max_kv_tokens: int) -> Measurement:
    keep = m.batch * m.context <= max_kv_tokens
    return replace(
        m, decode_tp=m.decode_tp[keep], batch=m.batch[keep], context=m.context[keep],
        itl_ms=m.itl_ms[keep],
    )  # fmt: skip
