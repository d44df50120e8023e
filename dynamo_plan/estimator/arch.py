"""Model architecture and GPU specification records, and parameter counts.

``ModelArch`` holds the architecture fields of a Hugging Face ``config.json``; parameter counts
are derived from them (weights of every linear layer, embeddings and norms; biases, rotary
tables and gpt-oss attention sinks are ignored — under 0.1 % of any catalogued model).
"""

from __future__ import annotations

from dataclasses import dataclass

# re-exported: the estimator's callers read the bound here (defined in core for the adapters)
from dynamo_plan.core.limits import MAX_GPUS_PER_NODE as MAX_GPUS_PER_NODE


@dataclass(frozen=True)
class ModelArch:
    """Architecture of a decoder-only transformer (HF config.json field names in comments).

    MoE: ``num_experts`` routed experts (``num_local_experts``/``num_experts``/
    ``n_routed_experts``), ``experts_per_token`` of them per token (``num_experts_per_tok``),
    ``num_shared_experts`` always-on experts (``n_shared_experts``), each expert a gated MLP of
    width ``moe_intermediate_size``; the first ``first_k_dense_layers`` layers
    (``first_k_dense_replace``) use a dense MLP of width ``intermediate_size``.
    MLA (DeepSeek): ``kv_lora_rank`` > 0. ``sliding_window`` > 0: every other layer attends to
    the last ``sliding_window`` tokens only (gpt-oss).
    """

    name: str
    num_layers: int  # num_hidden_layers
    hidden_size: int
    num_heads: int  # num_attention_heads
    num_kv_heads: int  # num_key_value_heads
    head_dim: int
    intermediate_size: int
    vocab_size: int
    max_position_embeddings: int
    num_experts: int = 0
    experts_per_token: int = 0
    num_shared_experts: int = 0
    moe_intermediate_size: int = 0
    first_k_dense_layers: int = 0
    kv_lora_rank: int = 0
    q_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    qk_nope_head_dim: int = 0
    v_head_dim: int = 0
    sliding_window: int = 0
    tie_word_embeddings: bool = False

    @property
    def is_moe(self) -> bool:
        """True when the MLP of (some) layers is a mixture of experts."""
        return self.num_experts > 0

    @property
    def is_mla(self) -> bool:
        """True for multi-head latent attention (DeepSeek-V2/V3)."""
        return self.kv_lora_rank > 0

    @property
    def num_moe_layers(self) -> int:
        """Layers whose MLP is an MoE block."""
        return self.num_layers - self.first_k_dense_layers if self.is_moe else 0

    @property
    def num_dense_layers(self) -> int:
        """Layers whose MLP is a dense gated MLP."""
        return self.num_layers - self.num_moe_layers

    @property
    def expert_width(self) -> int:
        """Intermediate width of one expert (``moe_intermediate_size``, else ``intermediate_size``)."""
        return self.moe_intermediate_size or self.intermediate_size

    # --- parameters per block -------------------------------------------------------------
    def attn_params(self) -> float:
        """Attention projection weights of one layer.

        GQA: ``h·(n_q·d) + 2·h·(n_kv·d) + (n_q·d)·h``. MLA: ``h·r_q + r_q·n_q·(d_nope+d_rope)``
        (or ``h·n_q·(d_nope+d_rope)`` without q LoRA) ``+ h·(r_kv+d_rope) + r_kv·n_q·(d_nope+d_v)
        + n_q·d_v·h``.
        """
        h, nq = self.hidden_size, self.num_heads
        if self.is_mla:
            qk = self.qk_nope_head_dim + self.qk_rope_head_dim
            q = (
                h * self.q_lora_rank + self.q_lora_rank * nq * qk
                if self.q_lora_rank
                else h * nq * qk
            )
            kv = h * (self.kv_lora_rank + self.qk_rope_head_dim) + self.kv_lora_rank * nq * (
                self.qk_nope_head_dim + self.v_head_dim
            )
            return float(q + kv + nq * self.v_head_dim * h)
        d = self.head_dim
        return float(h * nq * d + 2 * h * self.num_kv_heads * d + nq * d * h)

    def dense_mlp_params(self) -> float:
        """One dense gated MLP (gate, up, down): ``3·h·intermediate_size``."""
        return 3.0 * self.hidden_size * self.intermediate_size

    def expert_params(self) -> float:
        """One expert (gated MLP): ``3·h·expert_width``."""
        return 3.0 * self.hidden_size * self.expert_width

    def router_params(self) -> float:
        """The router of one MoE layer: ``h·num_experts``."""
        return float(self.hidden_size * self.num_experts)

    def embedding_params(self) -> float:
        """Input embedding ``vocab·h`` (the lm_head has as many unless tied)."""
        return float(self.vocab_size * self.hidden_size)

    def norm_params(self) -> float:
        """RMSNorm weights: 2 per layer (+ MLA's q/kv LoRA norms) + the final norm."""
        per_layer = 2 * self.hidden_size + self.q_lora_rank + self.kv_lora_rank
        return float(self.num_layers * per_layer + self.hidden_size)

    def lm_head_params(self) -> float:
        """Output projection ``vocab·h`` (0 extra storage when tied, but it is still computed)."""
        return self.embedding_params()

    def total_params(self) -> float:
        """Every weight stored: embeddings, all experts, norms (lm_head once when tied)."""
        return self._params(self.num_experts)

    def active_params(self) -> float:
        """Weights used per token: as :meth:`total_params` with ``experts_per_token`` routed experts."""
        return self._params(self.experts_per_token)

    def _params(self, routed_experts: int) -> float:
        """Weights with ``routed_experts`` routed (+ the shared) experts per MoE layer."""
        moe = routed_experts + self.num_shared_experts
        return (
            self.embedding_params() * (1 if self.tie_word_embeddings else 2)
            + self.num_layers * self.attn_params()
            + self.num_dense_layers * self.dense_mlp_params()
            + self.num_moe_layers * (moe * self.expert_params() + self.router_params())
            + self.norm_params()
        )


#: GEMM precisions with tensor-core support, when a GPU's catalogue entry does not narrow them.
ALL_DTYPES: tuple[str, ...] = ("bf16", "fp8")


@dataclass(frozen=True)
class GpuSpec:
    """One GPU: dense peak TFLOP/s, HBM GB/s (1e9 B/s) and GiB, unidirectional NVLink GB/s, and
    ``dtypes``, the weight/GEMM precisions its tensor cores run (an A100 has no FP8)."""

    name: str
    bf16_tflops: float
    fp8_tflops: float
    hbm_gbps: float
    hbm_gib: float
    nvlink_gbps: float
    dtypes: tuple[str, ...] = ALL_DTYPES
