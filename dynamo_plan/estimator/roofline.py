"""Analytic roofline estimator (no GPU, no database): per step, each op group takes
``max(compute time, memory time)`` at calibrated fractions of the datasheet peaks, plus TP
all-reduces and fixed engine overheads.

Step latency (ms), for ``T`` tokens through the GEMMs, on one of ``tp`` GPUs::

    t_gemm = max(gemm_flops/tp · (1 + m½/M) / (peak_dtype·η_gemm),
                 weights_read·chunks/tp / (hbm·η_w) + activations/tp / (hbm·η_hbm))
             M = T/chunks for dense GEMMs, T·k/(experts touched) for routed experts
    t_attn = max(attn_flops/tp / (peak_bf16·η_attn), kv_read_per_gpu / (hbm·η_hbm))
    t_comm = 2·L·chunks·min(lat + (tp−1)·S/(nvlink·η_nvl),                 (tp > 1)
                             2·lat + 2(tp−1)/tp·S·(S + S½)/(S·nvlink))
             S = (T/chunks)·h·2 B: one-shot vs two-shot all-reduce
    t_ovh  = chunks·(step_ms + kernels·kernel_us) + seqs·seq_us  (+ request_ms for a prefill: TTFT)

Prefill of ``isl`` tokens runs in ``chunks = ceil(isl / max_num_tokens)`` scheduler steps.
Constants: :mod:`dynamo_plan.estimator.calibration`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from dynamo_plan.core.backends import BACKENDS, BackendName
from dynamo_plan.errors import InputError
from dynamo_plan.estimator import counts
from dynamo_plan.estimator.arch import GpuSpec, ModelArch
from dynamo_plan.estimator.base import DTYPES, Dtype, EstimatePoint
from dynamo_plan.estimator.calibration import (
    BACKEND_OVERHEADS,
    DEFAULT,
    BackendOverhead,
    Calibration,
)

F = npt.NDArray[np.float64]
_GIB = float(1 << 30)


class RooflineEstimator:
    """Roofline model of one engine; implements :class:`~dynamo_plan.estimator.Estimator`.

    ``dtype``: weights and GEMM math; ``kv_dtype``: KV cache. Its default follows each backend's
    own: vLLM and SGLang keep the KV cache in the activation dtype (``kv_cache_dtype=auto`` →
    bf16) unless told otherwise — the shared H200 measurement of an FP8 Llama-3.1-8B on vLLM
    shows exactly that (945,029 KV tokens is the bf16 figure); TRT-LLM's FP8 checkpoints
    quantise the KV cache too, so there it defaults to ``dtype``.
    ``mem_util``: fraction of HBM the engine may use (vLLM ``gpu_memory_utilization``).
    ``calibration`` / ``overhead``: the free constants (defaults: the table in
    :mod:`~dynamo_plan.estimator.calibration`; :func:`~dynamo_plan.estimator.calibration.fit`
    fits them to a measured profile).
    Use :meth:`prefill_many` / :meth:`decode_many` for numpy arrays of points.
    """

    name = "roofline"
    version = "2"

    def __init__(
        self,
        model: ModelArch,
        gpu: GpuSpec,
        backend: BackendName = "trtllm",
        dtype: Dtype = "fp8",
        kv_dtype: Dtype | None = None,
        mem_util: float = 0.9,
        calibration: Calibration = DEFAULT,
        overhead: BackendOverhead | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise InputError(f"unknown backend '{backend}'; expected one of {', '.join(BACKENDS)}")
        if kv_dtype is None:
            kv_dtype = dtype if backend == "trtllm" else "bf16"
        for label, d in (("dtype", dtype), ("kv_dtype", kv_dtype)):
            if d not in DTYPES:
                raise InputError(f"unknown {label} '{d}'; expected one of {', '.join(DTYPES)}")
        if dtype not in gpu.dtypes:  # never estimate one precision under another's name
            raise InputError(
                f"{gpu.name} has no {dtype.upper()} tensor cores: --dtype must be one of "
                f"{', '.join(gpu.dtypes)} on it"
            )
        if not 0.0 < mem_util <= 1.0:
            raise InputError(f"mem_util must be in (0, 1], got {mem_util}")
        self.model = model
        self.gpu = gpu
        self.backend: BackendName = backend
        self.dtype: Dtype = dtype
        self.kv_dtype: Dtype = kv_dtype
        self.mem_util = mem_util
        self.cal = calibration
        self.overhead = overhead or BACKEND_OVERHEADS[backend]
        self._peak = (gpu.fp8_tflops if dtype == "fp8" else gpu.bf16_tflops) * 1e12
        self._hbm = gpu.hbm_gbps * 1e9 * calibration.hbm_efficiency
        self._weight_bw = gpu.hbm_gbps * 1e9 * calibration.weight_hbm_efficiency

    # --- memory ---------------------------------------------------------------------------
    def reserve_bytes(self, tp: int) -> float:
        """Per-GPU HBM outside weights and KV: runtime reserve + peak activations of a
        ``max_num_tokens`` step (residual + MLP hidden/tp, bf16) + FP32 logits of
        ``max_num_seqs`` sequences (gathered, full vocab)."""
        m, c = self.model, self.cal
        act = c.max_num_tokens * (m.hidden_size + 2.0 * counts.mlp_activation_width(m) / tp) * 2.0
        logits = c.max_num_seqs * m.vocab_size * 4.0
        return c.runtime_reserve_gib * _GIB + act + logits

    def kv_budget_bytes(self, tp: int) -> float:
        """Per-GPU bytes left for KV: ``hbm·mem_util − weights/tp − reserve`` (may be < 0)."""
        weights = counts.weight_storage_bytes(self.model, self.dtype) / tp
        return self.gpu.hbm_gib * _GIB * self.mem_util - weights - self.reserve_bytes(tp)

    def fits(self, tp: int) -> bool:
        """True when weights/tp + the reserve fit in HBM·mem_util with room for KV (≥ 1 token)."""
        return self.max_kv_tokens(tp) > 0

    def max_kv_tokens(self, tp: int) -> int:
        """Per ENGINE (all ``tp`` GPUs): per-GPU KV budget / per-GPU KV bytes of one token."""
        _check_tp(tp)
        budget = self.kv_budget_bytes(tp)
        if budget <= 0:
            return 0
        return int(budget // counts.kv_bytes_per_token(self.model, self.kv_dtype, tp))

    # --- time -----------------------------------------------------------------------------
    def _comm_ms(self, tp: int, tokens: F, steps: F) -> F:
        """Two all-reduces per layer per step. Small messages take the one-shot algorithm
        (each GPU reads its ``tp − 1`` peers' halves: ``lat + (tp−1)·S/bw``), large ones the
        two-shot/ring one (``2·lat + 2(tp−1)/tp·S/bw(S)``, ``bw(S) = nvlink·S/(S + S½)``: large
        messages approach the link's peak); the libraries (vLLM/SGLang custom all-reduce,
        TRT-LLM's, NCCL) switch where the second gets cheaper, so take the min.
        AI Configurator 0.12's measured H200 all-reduce (``comm/*/custom_allreduce_perf``) has
        this shape: 2.6–3.5 µs up to 64 K elements, then rising with ``tp − 1`` to ~1 M."""
        if tp == 1:
            return np.zeros_like(tokens)
        c = self.cal
        lat = c.allreduce_latency_us * 1e-6
        peak = self.gpu.nvlink_gbps * 1e9
        size = counts.allreduce_bytes(self.model, tokens / steps)
        one_shot = lat + (tp - 1) * size / (peak * c.nvlink_efficiency)
        two_shot_bw = peak * size / (size + c.allreduce_half_bytes)
        two_shot = 2.0 * lat + 2.0 * (tp - 1) / tp * size / two_shot_bw
        per = steps * np.minimum(one_shot, two_shot)
        return np.asarray(2.0 * self.model.num_layers * per * 1e3, dtype=np.float64)

    def _gemm_ms(self, tp: int, tokens: F, logit_tokens: F, steps: F) -> F:
        """GEMM group: compute (with the small-M ramp) vs weight + activation streaming.

        Dense GEMMs see M = tokens per step; each touched routed expert sees on average
        M = tokens·k / touched, so its ramp factor is ``1 + m½·touched/(tokens·k)``.
        """
        m, c = self.model, self.cal
        flops = counts.gemm_flops(m, tokens, logit_tokens) / tp
        expert = 2.0 * tokens * counts.routed_expert_params_per_token(m) / tp
        per_step = tokens / steps
        ramp_dense = 1.0 + c.gemm_half_tokens / per_step
        compute = (flops - expert) * ramp_dense
        if m.is_moe:
            touched = counts.expected_experts_touched(m, per_step)
            compute = compute + expert * (
                1.0 + c.gemm_half_tokens * touched / (per_step * m.experts_per_token)
            )
        compute = compute / (self._peak * c.gemm_efficiency)
        weights = counts.weight_read_bytes(m, self.dtype, per_step) * steps / tp
        memory = weights / self._weight_bw + counts.activation_bytes(m, tokens) / tp / self._hbm
        return np.asarray(np.maximum(compute, memory) * 1e3, dtype=np.float64)

    def _overhead_ms(self, steps: F, seqs: F) -> F:
        o, c = self.overhead, self.cal
        per_step = o.step_ms + counts.kernels_per_step(self.model) * c.kernel_overhead_us * 1e-3
        return np.asarray(steps * per_step + seqs * o.seq_us * 1e-3, dtype=np.float64)

    def prefill_many(self, tp: int, isl: npt.ArrayLike) -> tuple[F, F]:
        """(TTFT ms, tokens/s/GPU) for arrays of ISL, one request alone on the engine."""
        _check_tp(tp)
        n = np.asarray(isl, dtype=np.float64)
        _check_positive("isl", n)
        m, c = self.model, self.cal
        steps = np.ceil(n / c.max_num_tokens)
        attn_c = (
            counts.attention_flops_prefill(m, n)
            / tp
            / (self.gpu.bf16_tflops * 1e12 * c.attn_efficiency)
        )
        kv_write = n * counts.kv_bytes_per_token(m, self.kv_dtype, tp) / self._hbm
        t = (
            self._gemm_ms(tp, n, np.ones_like(n), steps)
            + np.maximum(attn_c, kv_write) * 1e3
            + self._comm_ms(tp, n, steps)
            + self._overhead_ms(steps, np.ones_like(n))
            + self.overhead.request_ms
        )
        return t, n / (t * 1e-3) / tp

    def decode_many(self, tp: int, batch: npt.ArrayLike, context: npt.ArrayLike) -> tuple[F, F]:
        """(ITL ms, tokens/s/GPU) for arrays of batch and context (broadcast together)."""
        _check_tp(tp)
        b, ctx = np.broadcast_arrays(
            np.asarray(batch, dtype=np.float64), np.asarray(context, dtype=np.float64)
        )
        _check_positive("batch", b)
        _check_positive("context", ctx)
        m, c = self.model, self.cal
        steps = np.ones_like(b)
        attn_c = (
            counts.attention_flops_decode(m, b, ctx)
            / tp
            / (self.gpu.bf16_tflops * 1e12 * c.attn_efficiency)
        )
        kv = counts.kv_read_bytes_decode(m, self.kv_dtype, b, ctx, tp) / self._hbm
        t = (
            self._gemm_ms(tp, b, b, steps)
            + np.maximum(attn_c, kv) * 1e3
            + self._comm_ms(tp, b, steps)
            + self._overhead_ms(steps, b)
        )
        return t, b / (t * 1e-3) / tp

    def prefill(self, tp: int, isl: int) -> EstimatePoint:
        """TTFT of one request of ``isl`` tokens; thpt = isl / TTFT / tp."""
        t, thpt = self.prefill_many(tp, isl)
        return EstimatePoint(float(t), float(thpt))

    def decode(self, tp: int, batch: int, context: int) -> EstimatePoint:
        """ITL of one step of ``batch`` sequences at ``context``; thpt = batch / ITL / tp."""
        t, thpt = self.decode_many(tp, batch, context)
        return EstimatePoint(float(t), float(thpt))


def _check_tp(tp: int) -> None:
    if isinstance(tp, bool) or not isinstance(tp, int | np.integer) or tp < 1:
        raise InputError(f"tp must be a positive integer, got {tp!r}")


def _check_positive(label: str, x: F) -> None:
    if x.size and not (np.all(np.isfinite(x)) and float(x.min()) > 0):
        bad = x[~(np.isfinite(x) & (x > 0))].ravel()[0]
        raise InputError(f"{label} must be > 0, got {bad:g}")
