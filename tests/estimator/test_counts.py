"""Per-step FLOP and byte counters against hand-computed values, and parameter counts."""

from __future__ import annotations

import numpy as np
import pytest

from dynamo_plan.estimator import counts as c
from dynamo_plan.estimator import load_model

# ---- Llama-3.1-8B (dense, GQA 32 q / 8 kv heads, head_dim 128, 32 layers) --------------------
L8_ATTN = 4096 * 4096 + 2 * 4096 * 8 * 128 + 4096 * 4096  # q, k, v, o
L8_MLP = 3 * 4096 * 14336  # gate, up, down
L8_HEAD = 128256 * 4096


def test_llama8b_gemm_flops_per_token() -> None:
    m = load_model("llama-3.1-8b")
    linear = 32 * (L8_ATTN + L8_MLP)
    assert c.linear_params_per_token(m) == linear
    # 100 tokens through the blocks, logits for 1 (a prefill of 100 tokens)
    assert c.gemm_flops(m, 100, 1) == pytest.approx(2 * 100 * linear + 2 * L8_HEAD)


def test_llama8b_attention_flops() -> None:
    m = load_model("llama-3.1-8b")
    n = 1000
    # QK^T and PV: 2 FLOPs per MAC, head_dim 128 each, 32 heads, causal n(n+1)/2 pairs, 32 layers
    assert c.attention_flops_prefill(m, n) == pytest.approx(2 * 32 * 256 * 32 * n * (n + 1) / 2)
    assert c.attention_flops_decode(m, 8, 4096) == pytest.approx(2 * 32 * 256 * 8 * 32 * 4096)


def test_llama8b_bytes() -> None:
    m = load_model("llama-3.1-8b")
    linear = 32 * (L8_ATTN + L8_MLP)
    # FP8 linear layers, BF16 lm_head read every step (the embedding is a gather)
    assert float(c.weight_read_bytes(m, "fp8", 1)) == linear * 1 + L8_HEAD * 2
    # stored: + embedding (bf16) + norms (2 per layer + final, bf16)
    norms = 32 * 2 * 4096 + 4096
    assert c.weight_storage_bytes(m, "bf16") == 2 * linear + 2 * (2 * L8_HEAD + norms)
    # KV: K and V, 8 heads × 128, 32 layers
    assert c.kv_bytes_per_token(m, "bf16") == 2 * 8 * 128 * 32 * 2 == 131072
    assert c.kv_bytes_per_token(m, "fp8", tp=2) == 2 * 4 * 128 * 32
    assert c.kv_bytes_per_token(m, "fp8", tp=16) == 2 * 1 * 128 * 32  # kv heads replicated
    assert float(c.kv_read_bytes_decode(m, "bf16", 4, 1000)) == 4 * 1000 * 131072
    assert float(c.allreduce_bytes(m, 10)) == 10 * 4096 * 2


def test_gqa_qwen3_32b_attention_params_and_kv() -> None:
    m = load_model("Qwen/Qwen3-32B")
    assert m.attn_params() == 5120 * 64 * 128 + 2 * 5120 * 8 * 128 + 64 * 128 * 5120
    assert c.kv_bytes_per_token(m, "fp8", tp=4) == 2 * 2 * 128 * 64
    assert c.attention_flops_decode(m, 1, 100) == pytest.approx(2 * 64 * 256 * 64 * 100)


def test_moe_mixtral_experts_touched_and_bytes() -> None:
    m = load_model("mixtral-8x7b")
    expert = 3 * 4096 * 14336
    attn = 4096 * 4096 * 2 + 2 * 4096 * 1024
    router = 4096 * 8
    assert c.expected_experts_touched(m, 1) == pytest.approx(2.0)
    assert c.expected_experts_touched(m, 2) == pytest.approx(8 * (1 - 0.75**2))
    assert c.expected_experts_touched(m, 10_000) == pytest.approx(8.0)
    assert c.linear_params_per_token(m) == 32 * (attn + 2 * expert + router)
    head = 32000 * 4096
    assert float(c.weight_read_bytes(m, "fp8", 1)) == pytest.approx(
        32 * (attn + 2 * expert + router) + 2 * head
    )
    assert float(c.weight_read_bytes(m, "fp8", 10_000)) == pytest.approx(
        32 * (attn + 8 * expert + router) + 2 * head
    )
    assert c.mlp_activation_width(m) == 2 * 14336


def test_mla_deepseek_v3_counts() -> None:
    m = load_model("deepseek-ai/DeepSeek-V3")
    assert m.is_mla and m.is_moe
    attn = (
        7168 * 1536  # q_a_proj
        + 1536 * 128 * (128 + 64)  # q_b_proj
        + 7168 * (512 + 64)  # kv_a_proj_with_mqa
        + 512 * 128 * (128 + 128)  # kv_b_proj
        + 128 * 128 * 7168  # o_proj
    )
    assert m.attn_params() == attn
    expert = 3 * 7168 * 2048
    per_token = 61 * attn + 3 * 3 * 7168 * 18432 + 58 * (9 * expert + 7168 * 256)
    assert c.linear_params_per_token(m) == per_token
    # latent KV (r_kv + rope) per layer, replicated on every TP rank
    assert c.kv_bytes_per_token(m, "bf16") == (512 + 64) * 61 * 2
    assert c.kv_bytes_per_token(m, "bf16", tp=8) == (512 + 64) * 61 * 2
    # decode attends in the latent (absorbed): d_qk = 512 + 64, d_v = 512
    assert c.attention_flops_decode(m, 2, 1000) == pytest.approx(2 * 128 * 1088 * 2 * 61 * 1000)
    # prefill: d_qk = 128 + 64, d_v = 128
    assert c.attention_flops_prefill(m, 10) == pytest.approx(2 * 128 * 320 * 61 * 55)


def test_sliding_window_layers_attend_to_the_window_only() -> None:
    m = load_model("openai/gpt-oss-20b")
    w = 128
    assert float(c.attended_context(m, 1000)) == 12 * 1000 + 12 * w
    assert float(c.causal_pairs(m, 100)) == 24 * 100 * 101 / 2
    assert float(c.causal_pairs(m, 1000)) == 12 * 1000 * 1001 / 2 + 12 * (
        w * (w + 1) / 2 + (1000 - w) * w
    )


def test_counters_vectorise() -> None:
    m = load_model("qwen3-30b-a3b")
    b = np.array([1, 8, 64])
    out = c.attention_flops_decode(m, b, np.array([100, 200, 300]))
    assert out.shape == (3,)
    assert np.all(np.diff(c.expected_experts_touched(m, b)) > 0)


@pytest.mark.parametrize(
    ("name", "total", "active"),
    [
        ("llama-3.1-8b", 8.03e9, 8.03e9),
        ("llama-3.1-70b", 70.6e9, 70.6e9),
        ("llama-3.1-405b", 405.9e9, 405.9e9),
        ("llama-3.2-1b", 1.24e9, 1.24e9),
        ("qwen3-32b", 32.8e9, 32.8e9),
        ("qwen3-30b-a3b", 30.5e9, 3.3e9),
        ("qwen3-235b-a22b", 235e9, 22e9),
        ("deepseek-v3", 671e9, 37e9),
        ("mixtral-8x7b", 46.7e9, 12.9e9),
        ("gpt-oss-120b", 116.8e9, 5.1e9 + 0.58e9),  # OpenAI's 5.1B excludes the embedding
    ],
)
def test_parameter_counts_match_published(name: str, total: float, active: float) -> None:
    m = load_model(name)
    assert m.total_params() == pytest.approx(total, rel=0.03)
    assert m.active_params() == pytest.approx(active, rel=0.03)


def test_kernel_launch_counts() -> None:
    assert c.kernels_per_step(load_model("llama-3.1-8b")) == 32 * 12
    assert c.kernels_per_step(load_model("mixtral-8x7b")) == 32 * (12 + 8)
    # DeepSeek-V3: MLA in all 61 layers, MoE in 58
    assert c.kernels_per_step(load_model("deepseek-v3")) == 61 * (12 + 6) + 58 * 8
