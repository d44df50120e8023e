"""Per-step FLOP and byte counters of a transformer forward pass (whole model, before TP).

Every function is pure and vectorises over numpy arrays of ``tokens``/``batch``/``context``.
Conventions: one multiply-add = 2 FLOPs; ``tokens`` = tokens processed by the GEMMs in the
step (prefill: the prompt, decode: the batch); bytes for weights/KV follow ``dtype`` (bf16 = 2,
fp8 = 1), activations and all-reduce payloads are bf16; embeddings and the lm_head stay bf16
whatever ``dtype`` (FP8 checkpoints — RedHatAI/llm-compressor, NVIDIA ModelOpt — skip them).
Divide by the TP degree outside, except where a function takes ``tp``.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from dynamo_plan.estimator.arch import ModelArch

Dtype: TypeAlias = Literal["bf16", "fp8"]
ArrayLike: TypeAlias = float | int | npt.NDArray[np.float64] | npt.NDArray[np.int64]
F: TypeAlias = npt.NDArray[np.float64]

BYTES: dict[str, float] = {"bf16": 2.0, "fp8": 1.0}
ACT_BYTES = 2.0  # activations and all-reduce payloads: bf16


def _f(x: ArrayLike) -> F:
    return np.asarray(x, dtype=np.float64)


def linear_params_per_token(m: ModelArch) -> float:
    """Weights of the transformer blocks that one token multiplies (attention projections,
    dense MLPs, ``experts_per_token`` + shared experts, routers); no embedding, no lm_head."""
    return (
        m.num_layers * m.attn_params()
        + m.num_dense_layers * m.dense_mlp_params()
        + m.num_moe_layers
        * ((m.experts_per_token + m.num_shared_experts) * m.expert_params() + m.router_params())
    )


def routed_expert_params_per_token(m: ModelArch) -> float:
    """Routed-expert weights one token multiplies: ``moe_layers·experts_per_token·expert``."""
    return float(m.num_moe_layers * m.experts_per_token * m.expert_params())


def gemm_flops(m: ModelArch, tokens: ArrayLike, logit_tokens: ArrayLike) -> F:
    """Linear-layer FLOPs: ``2·tokens·linear_params_per_token + 2·logit_tokens·vocab·hidden``.

    ``logit_tokens``: tokens whose logits are computed (prefill: 1 per request, decode: batch).
    """
    return (
        2.0 * _f(tokens) * linear_params_per_token(m) + 2.0 * _f(logit_tokens) * m.lm_head_params()
    )


def _attn_dims(m: ModelArch, absorbed: bool) -> float:
    """``d_qk + d_v`` of one head: GQA ``2·head_dim``; MLA prefill ``(d_nope+d_rope) + d_v``;
    MLA decode with absorbed weights attends in the latent: ``(r_kv+d_rope) + r_kv``."""
    if not m.is_mla:
        return 2.0 * m.head_dim
    if absorbed:
        return 2.0 * m.kv_lora_rank + m.qk_rope_head_dim
    return float(m.qk_nope_head_dim + m.qk_rope_head_dim + m.v_head_dim)


def _split_layers(m: ModelArch) -> tuple[int, int]:
    """(full-attention layers, sliding-window layers); gpt-oss alternates the two."""
    swa = m.num_layers // 2 if m.sliding_window > 0 else 0
    return m.num_layers - swa, swa


def causal_pairs(m: ModelArch, isl: ArrayLike) -> F:
    """Query-key pairs summed over layers for a causal prefill of ``isl`` tokens:
    ``n(n+1)/2`` per full layer; ``Σ_i min(i, W)`` per sliding-window layer."""
    n = _f(isl)
    full, swa = _split_layers(m)
    pairs = full * n * (n + 1) / 2
    if swa:
        w = float(m.sliding_window)
        win = np.where(n <= w, n * (n + 1) / 2, w * (w + 1) / 2 + (n - w) * w)
        pairs = pairs + swa * win
    return np.asarray(pairs, dtype=np.float64)


def attended_context(m: ModelArch, context: ArrayLike) -> F:
    """Keys read per decoded token summed over layers: ``L·c`` (sliding layers: ``min(c, W)``)."""
    c = _f(context)
    full, swa = _split_layers(m)
    out = full * c
    if swa:
        out = out + swa * np.minimum(c, float(m.sliding_window))
    return np.asarray(out, dtype=np.float64)


def attention_flops_prefill(m: ModelArch, isl: ArrayLike) -> F:
    """Score + value FLOPs of a causal prefill: ``2·heads·(d_qk+d_v)·pairs``
    (pairs ≈ L·isl²/2, see :func:`causal_pairs`)."""
    return 2.0 * m.num_heads * _attn_dims(m, absorbed=False) * causal_pairs(m, isl)


def attention_flops_decode(m: ModelArch, batch: ArrayLike, context: ArrayLike) -> F:
    """Score + value FLOPs of one decode step: ``2·heads·(d_qk+d_v)·batch·L·context``."""
    return (
        2.0 * m.num_heads * _attn_dims(m, absorbed=True) * _f(batch) * attended_context(m, context)
    )


def expected_experts_touched(m: ModelArch, tokens: ArrayLike) -> F:
    """Distinct routed experts per MoE layer hit by ``tokens`` tokens with uniform top-k
    routing: ``E·(1 − (1 − k/E)^tokens)`` (0 for dense models)."""
    if not m.is_moe:
        return np.zeros_like(_f(tokens))
    e, k = float(m.num_experts), float(m.experts_per_token)
    return np.asarray(e * (1.0 - (1.0 - k / e) ** _f(tokens)), dtype=np.float64)


def weight_storage_bytes(m: ModelArch, dtype: Dtype) -> float:
    """Bytes of weights held in HBM (whole model): linear layers and all experts in ``dtype``,
    embedding + lm_head (once if tied) + norms in bf16."""
    b = BYTES[dtype]
    moe = m.num_moe_layers * (
        (m.num_experts + m.num_shared_experts) * m.expert_params() + m.router_params()
    )
    linear = m.num_layers * m.attn_params() + m.num_dense_layers * m.dense_mlp_params() + moe
    head = m.embedding_params() * (1 if m.tie_word_embeddings else 2)
    return b * linear + ACT_BYTES * (head + m.norm_params())


def weight_read_bytes(m: ModelArch, dtype: Dtype, tokens: ArrayLike) -> F:
    """Bytes of weights streamed from HBM by one forward of ``tokens`` tokens (whole model):
    non-expert linear layers, the experts the batch touches, the lm_head (bf16). The embedding
    is a gather (``tokens·hidden`` elements), counted in :func:`activation_bytes`."""
    b = BYTES[dtype]
    dense = m.num_layers * m.attn_params() + m.num_dense_layers * m.dense_mlp_params()
    touched = expected_experts_touched(m, tokens) + m.num_shared_experts
    experts = m.num_moe_layers * (touched * m.expert_params() + m.router_params())
    return np.asarray(b * (dense + experts) + ACT_BYTES * m.lm_head_params(), dtype=np.float64)


def kv_bytes_per_token(m: ModelArch, kv_dtype: Dtype, tp: int = 1) -> float:
    """KV-cache bytes one token occupies on EACH GPU of a TP group (all layers).

    GQA: ``2·ceil(kv_heads/tp)·head_dim·L·b`` (KV heads are replicated when tp > kv_heads).
    MLA: ``(r_kv + d_rope)·L·b``, replicated on every rank (the latent is shared by all heads).
    """
    b = BYTES[kv_dtype]
    if m.is_mla:
        return float((m.kv_lora_rank + m.qk_rope_head_dim) * m.num_layers * b)
    heads = -(-m.num_kv_heads // tp)
    return float(2 * heads * m.head_dim * m.num_layers * b)


def kv_read_bytes_decode(
    m: ModelArch, kv_dtype: Dtype, batch: ArrayLike, context: ArrayLike, tp: int = 1
) -> F:
    """KV bytes one GPU reads in a decode step: ``batch · Σ_layers context · per-layer bytes``."""
    per_layer = kv_bytes_per_token(m, kv_dtype, tp) / m.num_layers
    return np.asarray(_f(batch) * attended_context(m, context) * per_layer, dtype=np.float64)


def mlp_activation_width(m: ModelArch) -> float:
    """Width of the MLP hidden activation per token (dense: ``intermediate``, MoE:
    ``(k + shared)·expert_width``) — used for activation traffic and the memory reserve."""
    if m.is_moe:
        return float((m.experts_per_token + m.num_shared_experts) * m.expert_width)
    return float(m.intermediate_size)


def activation_bytes(m: ModelArch, tokens: ArrayLike) -> F:
    """Activation HBM traffic of one forward (bf16): per token and layer the residual stream is
    read/written ~6× (norms, residual adds, QKV/O in/out) and the MLP hidden state 3× (gate, up,
    activation): ``tokens·L·(6·h + 3·mlp_width)·2``."""
    per_token = m.num_layers * (6.0 * m.hidden_size + 3.0 * mlp_activation_width(m))
    return _f(tokens) * per_token * ACT_BYTES


def allreduce_bytes(m: ModelArch, tokens: ArrayLike) -> F:
    """Payload of one TP all-reduce (one per attention block and one per MLP block):
    ``tokens·hidden·2`` bytes (bf16)."""
    return _f(tokens) * m.hidden_size * ACT_BYTES


# Kernels launched per layer per step (CUDA-graph replay still pays a launch gap and a tail per
# kernel). Dense GQA layer (vLLM/TRT-LLM with fused QKV and gate-up): 2 RMSNorm+residual,
# activation quant, QKV GEMM, RoPE + KV write, attention, O GEMM, quant, gate-up GEMM,
# SiLU·mul, quant, down GEMM = 12. MLA adds q/kv LoRA GEMMs, 2 norms and the two absorbed
# BMMs = +6. An MoE block adds router GEMM, top-k, permute, grouped GEMMs ×2 (vs dense),
# unpermute/reduce, shared-expert path = +8.
KERNELS_DENSE_LAYER = 12
KERNELS_MLA_EXTRA = 6
KERNELS_MOE_EXTRA = 8


def kernels_per_step(m: ModelArch) -> float:
    """Kernel launches of one forward step summed over layers (see the constants above)."""
    mla = KERNELS_MLA_EXTRA if m.is_mla else 0
    return float(m.num_layers * (KERNELS_DENSE_LAYER + mla) + m.num_moe_layers * KERNELS_MOE_EXTRA)
