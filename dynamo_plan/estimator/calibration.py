"""The ONE table of efficiency constants of the roofline estimator, with their sources.

Calibrated on the shared H200 measurement (``shared/data/profiles/h200_llama3.1-8b-fp8_tp1p_tp1d``:
Llama-3.1-8B FP8 weights, BF16 KV, TP1, Dynamo's profiler) and on public figures cited below.
That measurement matches vLLM's memory accounting (``gpu_memory_utilization`` 0.9 of the total,
BF16 KV cache: 945 029 tokens, see tests/estimator) and its ~4.4 ms batch-1 ITL and ~15 ms TTFT
floor are vLLM-like, so it calibrates the ``vllm`` row of :data:`BACKEND_OVERHEADS`; the other two rows
keep vLLM's GPU-side constants and scale only the CPU-side overheads by public comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from dynamo_plan.core.backends import BackendName


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
    nvlink_efficiency: float = 0.70
    """Achieved fraction of unidirectional NVLink bandwidth by ring all-reduce (nccl-tests
    all_reduce_perf bus bandwidth on 8×H100 NVLink 4 is ~350–450 GB/s at large messages;
    inference messages are small, so take the lower end). Not calibrated here (TP1 data)."""
    allreduce_latency_us: float = 8.0
    """Fixed latency of one small all-reduce (nccl-tests / vLLM custom all-reduce: 5–10 µs)."""
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
