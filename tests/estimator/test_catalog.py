"""Model and GPU catalogs, aliases, HF config.json and GPU spec files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dynamo_plan.errors import InputError
from dynamo_plan.estimator import GpuSpec, ModelArch, known_gpus, known_models, load_gpu, load_model

REQUIRED_MODELS = [
    "llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b", "llama-3.2-1b", "llama-3.2-3b",
    "qwen3-0.6b", "qwen3-8b", "qwen3-14b", "qwen3-32b", "qwen3-30b-a3b", "qwen3-235b-a22b",
    "mixtral-8x7b", "deepseek-v3", "gpt-oss-20b", "gpt-oss-120b",
]  # fmt: skip
REQUIRED_GPUS = ["h100_sxm", "h200_sxm", "b200_sxm", "gb200", "a100_sxm", "l40s", "h100_pcie"]


def test_every_required_model_and_gpu_is_catalogued() -> None:
    assert set(REQUIRED_MODELS) <= set(known_models())
    assert set(REQUIRED_GPUS) <= set(known_gpus())


@pytest.mark.parametrize("name", REQUIRED_MODELS)
def test_every_model_loads_consistently(name: str) -> None:
    m = load_model(name)
    assert isinstance(m, ModelArch) and m.name == name
    assert m.num_heads % m.num_kv_heads == 0
    assert m.active_params() <= m.total_params()
    assert m.is_moe == (m.num_experts > 0)


@pytest.mark.parametrize("name", REQUIRED_GPUS)
def test_every_gpu_loads(name: str) -> None:
    g = load_gpu(name)
    assert isinstance(g, GpuSpec) and g.name == name
    assert g.fp8_tflops >= g.bf16_tflops > 0 and g.hbm_gbps > 0 and g.hbm_gib > 0


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("meta-llama/Meta-Llama-3.1-8B", "llama-3.1-8b"),
        ("meta-llama/Llama-3.1-8B", "llama-3.1-8b"),
        ("meta-llama/Llama-3.1-8B-Instruct", "llama-3.1-8b"),
        ("LLAMA-3.1-8B", "llama-3.1-8b"),
        ("RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8", "llama-3.1-8b"),
        ("nvidia/Llama-3.1-8B-Instruct-FP8", "llama-3.1-8b"),
        ("Qwen/Qwen3-32B", "qwen3-32b"),
        ("qwen/qwen3-30b-a3b", "qwen3-30b-a3b"),
        ("deepseek-ai/DeepSeek-V3", "deepseek-v3"),
        ("openai/gpt-oss-20b", "gpt-oss-20b"),
        ("some-org/Qwen3-8B", "qwen3-8b"),  # unknown org, known basename
    ],
)
def test_model_aliases_resolve(alias: str, canonical: str) -> None:
    assert load_model(alias) == load_model(canonical)


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [("h200", "h200_sxm"), ("H200-SXM", "h200_sxm"), ("H100", "h100_sxm"), ("B200", "b200_sxm")],
)
def test_gpu_aliases_resolve(alias: str, canonical: str) -> None:
    assert load_gpu(alias).name == canonical


def test_unknown_names_list_known_and_suggest_nearest() -> None:
    with pytest.raises(InputError, match=r"unknown model 'qwen3-33b'; did you mean 'qwen3-32b'\?"):
        load_model("qwen3-33b")
    with pytest.raises(InputError, match=r"known: .*llama-3\.1-8b"):
        load_model("qwen3-33b")
    with pytest.raises(InputError, match=r"unknown GPU 'h201'; did you mean 'h200_sxm'\?"):
        load_gpu("h201")


def _write(tmp_path: Path, cfg: dict[str, Any]) -> Path:
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    return p


def test_hf_config_llama(tmp_path: Path) -> None:
    cfg = {
        "architectures": ["LlamaForCausalLM"], "num_hidden_layers": 32, "hidden_size": 4096,
        "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 14336,
        "vocab_size": 128256, "max_position_embeddings": 131072, "tie_word_embeddings": False,
    }  # fmt: skip
    m = load_model(config_path=_write(tmp_path, cfg))
    ref = load_model("llama-3.1-8b")
    assert m.head_dim == 128  # default hidden / heads
    assert m.total_params() == ref.total_params()


def test_hf_config_mixtral_deepseek_gpt_oss_keys(tmp_path: Path) -> None:
    mixtral = {
        "num_hidden_layers": 32, "hidden_size": 4096, "num_attention_heads": 32,
        "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 32000,
        "num_local_experts": 8, "num_experts_per_tok": 2, "sliding_window": None,
    }  # fmt: skip
    m = load_model("mixtral", config_path=_write(tmp_path, mixtral))
    assert (m.name, m.num_experts, m.experts_per_token, m.sliding_window) == ("mixtral", 8, 2, 0)
    ds = {
        "num_hidden_layers": 61, "hidden_size": 7168, "num_attention_heads": 128,
        "num_key_value_heads": 128, "intermediate_size": 18432, "vocab_size": 129280,
        "max_position_embeddings": 163840, "n_routed_experts": 256, "num_experts_per_tok": 8,
        "n_shared_experts": 1, "moe_intermediate_size": 2048, "first_k_dense_replace": 3,
        "kv_lora_rank": 512, "q_lora_rank": 1536, "qk_rope_head_dim": 64,
        "qk_nope_head_dim": 128, "v_head_dim": 128,
    }  # fmt: skip
    m = load_model(config_path=_write(tmp_path, ds))
    assert m.total_params() == pytest.approx(load_model("deepseek-v3").total_params(), rel=1e-6)
    oss = {
        "num_hidden_layers": 24, "hidden_size": 2880, "num_attention_heads": 64,
        "num_key_value_heads": 8, "head_dim": 64, "intermediate_size": 2880,
        "vocab_size": 201088, "num_local_experts": 32, "experts_per_token": 4,
        "num_experts_per_tok": 4, "sliding_window": 128,
        "layer_types": ["sliding_attention", "full_attention"] * 12,
    }  # fmt: skip
    m = load_model(config_path=_write(tmp_path, oss))
    ref = load_model("gpt-oss-20b")
    assert (m.sliding_window, m.num_experts) == (128, 32)
    assert m.total_params() == ref.total_params()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", r"config\.json:1: not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"hidden_size": 8}', "missing required field 'num_hidden_layers'"),
        (
            '{"num_hidden_layers": "32", "hidden_size": 8, "num_attention_heads": 1, '
            '"intermediate_size": 8, "vocab_size": 8}',
            "'num_hidden_layers' must be a non-negative integer, found '32'",
        ),
    ],
)
def test_bad_hf_config_names_file_and_field(tmp_path: Path, content: str, message: str) -> None:
    p = tmp_path / "config.json"
    p.write_text(content)
    with pytest.raises(InputError, match=message):
        load_model(config_path=p)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        load_model(config_path=tmp_path / "nope.json")


def test_gpu_spec_file(tmp_path: Path) -> None:
    p = tmp_path / "mi300x.yaml"
    p.write_text(
        "bf16_tflops: 1307\nfp8_tflops: 2615\nhbm_gbps: 5300\nhbm_gib: 192\nnvlink_gbps: 64\n"
    )
    g = load_gpu(spec_path=p)
    assert g == GpuSpec("mi300x", 1307.0, 2615.0, 5300.0, 192.0, 64.0)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("bf16_tflops: 1\n", "missing field 'fp8_tflops'"),
        (
            "bf16_tflops: 1\nfp8_tflops: 1\nhbm_gbps: -5\nhbm_gib: 1\nnvlink_gbps: 1\n",
            "'hbm_gbps' must be a positive number, found -5",
        ),
        ("bf16_tflops: 1\nfp8_tflop: 1\n", "unknown field 'fp8_tflop'"),
        ("- 1\n- 2\n", "expected a mapping"),
        ("a: [1\n", "not valid YAML"),
    ],
)
def test_bad_gpu_spec_is_one_precise_line(tmp_path: Path, content: str, message: str) -> None:
    p = tmp_path / "gpu.yaml"
    p.write_text(content)
    with pytest.raises(InputError, match=message) as info:
        load_gpu(spec_path=p)
    assert str(p) in str(info.value) and "\n" not in str(info.value)


def test_gpus_list_the_precisions_their_tensor_cores_run(tmp_path: Path) -> None:
    assert load_gpu("a100_sxm").dtypes == ("bf16",)  # Ampere: no FP8
    assert load_gpu("h200").dtypes == ("bf16", "fp8")
    spec = tmp_path / "v100.yaml"
    numbers = "bf16_tflops: 1\nfp8_tflops: 1\nhbm_gbps: 1\nhbm_gib: 1\nnvlink_gbps: 1\n"
    spec.write_text(numbers + "dtypes: [bf16]\n")
    assert load_gpu(spec_path=spec).dtypes == ("bf16",)
    spec.write_text(numbers)
    assert load_gpu(spec_path=spec).dtypes == ("bf16", "fp8")
    spec.write_text(numbers + "dtypes: [int4]\n")
    with pytest.raises(InputError, match="'dtypes' must be a non-empty list of bf16, fp8"):
        load_gpu(spec_path=spec)
