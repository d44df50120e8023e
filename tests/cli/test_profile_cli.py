"""``dynamo-plan profile --offline``: golden result, the written profile (readable by Dynamo's keys
and by core/profile.py), plots, and one clear line + exit code for every bad input.

Golden file: tests/golden/profile_offline_llama8b_h200.json holds the stable fields of one run
(not ``elapsed_s``, ``out``, ``plots``). After an intended change to the estimator or the sweep,
regenerate it with::

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/cli/test_profile_cli.py -k golden
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from dynamo_plan.adapters.profile_files import load_profile
from tests.conftest import run_cli

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "profile_offline_llama8b_h200.json"
LLAMA = ["--model", "llama-3.1-8b", "--system", "h200_sxm", "--backend", "vllm"]
SLA = ["--isl", "3000", "--osl", "150", "--ttft", "200", "--itl", "20"]
UNSTABLE = ("elapsed_s", "out", "plots")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _profile(out: Path, *extra: str) -> object:
    return run_cli("profile", "--offline", *LLAMA, *SLA, "--out", out, "-o", "json", *extra)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("cli") / "llama8b"
    result = _profile(out)
    assert result.exit_code == 0, result.stderr
    return out, result.json()


def _flat(doc: dict, prefix: str = "") -> dict:
    out: dict = {}
    for k, v in doc.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def test_golden(run: tuple[Path, dict]) -> None:
    stable = {k: v for k, v in run[1].items() if k not in UNSTABLE}
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(stable, indent=2) + "\n")
    got, want = _flat(stable), _flat(json.loads(GOLDEN.read_text()))
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        expected = pytest.approx(value, rel=1e-9) if isinstance(value, float) else value
        assert got[key] == expected, key


def test_result_fields(run: tuple[Path, dict]) -> None:
    out, doc = run
    assert doc["out"] == str(out) and doc["meets_sla"] is True and doc["elapsed_s"] > 0
    assert doc["prefill"]["ttft_ms"] <= 200 and doc["decode"]["itl_ms"] <= 20
    assert doc["estimator"] == "roofline"


def test_profile_reads_by_dynamo_keys(run: tuple[Path, dict]) -> None:
    out, doc = run
    with np.load(out / "selected_prefill_interpolation" / "raw_data.npz") as p:
        assert sorted(p.files) == ["prefill_isl", "prefill_thpt_per_gpu", "prefill_ttft"]
        isl, ttft = p["prefill_isl"], p["prefill_ttft"]
    with np.load(out / "selected_decode_interpolation" / "raw_data.npz") as d:
        assert sorted(d.files) == sorted(
            ["x_kv_usage", "y_context_length", "z_itl", "z_thpt_per_gpu", "max_kv_tokens"]
        )
        assert d["max_kv_tokens"].tolist() == [doc["decode"]["max_kv_tokens"]]
    profile = load_profile(out)
    assert ttft[isl == 3000].tolist() == [doc["prefill"]["ttft_ms"]]
    assert profile.expected_ttft(3000).value == doc["prefill"]["ttft_ms"]
    best = profile.best_decode_throughput(20.0, 3000 + 150 // 2)
    assert best is not None and best.itl_ms <= 20.0
    meta = json.loads((out / "profile.json").read_text())
    assert meta["parallelism"]["decode"]["tp"] == doc["decode"]["tp"]
    assert meta["obtained_by"] == {
        "method": "estimated", "estimator": "roofline", "estimator_version": doc["estimator_version"],
        "requested": "roofline", "selected": "requested",
    }  # fmt: skip
    assert meta["sla"] == {"isl": 3000, "osl": 150, "ttft": 200.0, "itl": 20.0}
    assert (
        json.loads((out / "decode_raw_data.json").read_text())["max_kv_tokens"]
        == meta["max_kv_tokens"]
    )


def test_plots_are_pngs(run: tuple[Path, dict]) -> None:
    doc = run[1]
    assert sorted(Path(p).name for p in doc["plots"]) == [
        "decode.png", "decode_surface.png", "prefill.png",
    ]  # fmt: skip
    for p in doc["plots"]:
        assert Path(p).read_bytes()[:8] == PNG_MAGIC


def test_dgdr_gives_the_same_result(run: tuple[Path, dict], tmp_path: Path) -> None:
    dgdr = tmp_path / "dgdr.yaml"
    dgdr.write_text(yaml.safe_dump({
        "apiVersion": "nvidia.com/v1alpha1",
        "kind": "DynamoGraphDeploymentRequest",
        "metadata": {"name": "llama"},
        "spec": {"model": "meta-llama/Llama-3.1-8B-Instruct", "backend": "vllm",
                 "profilingConfig": {"profilerImage": "nvcr.io/nvidia/ai-dynamo/profiler:x",
                                     "config": {
                     "sla": {"isl": 3000, "osl": 150, "ttft": 200, "itl": 20},
                     "sweep": {"aicSystem": "h200_sxm"}}}},
    }))  # fmt: skip
    result = run_cli(
        "profile", "--offline", "--dgdr", dgdr, "--out", tmp_path / "p", "--no-plots", "-o", "json"
    )
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert doc["prefill"] == run[1]["prefill"] and doc["decode"] == run[1]["decode"]
    assert doc["plots"] == [] and not list((tmp_path / "p").glob("*.png"))


def test_invalid_dgdr_is_reported_with_line_and_field(tmp_path: Path) -> None:
    """``--dgdr`` validates the whole request first, as ``dgdr validate`` does."""
    dgdr = tmp_path / "dgdr.yaml"
    dgdr.write_text(
        "apiVersion: nvidia.com/v1alpha1\n"
        "kind: DynamoGraphDeploymentRequest\n"
        "metadata: {name: llama}\n"
        "spec:\n"
        "  model: meta-llama/Llama-3.1-8B\n"
        "  backend: vllm\n"
        "  profilingConfig:\n"
        "    profilerImage: img\n"
        "    config:\n"
        "      sla: {isl: 3000, osl: 150, ttft: -5, itl: 20}\n"
        "      sweep: {aicSystem: h200_sxm}\n"
    )
    result = run_cli("profile", "--offline", "--dgdr", dgdr, "--out", tmp_path / "p")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {dgdr}:10: spec.profilingConfig.config.sla.ttft:")
    assert not (tmp_path / "p").exists()


def test_table_output(tmp_path: Path) -> None:
    result = run_cli("profile", "--offline", *LLAMA, *SLA, "--out", tmp_path / "p", "--no-plots")
    assert result.exit_code == 0
    assert "prefill" in result.stdout and "decode" in result.stdout and "TTFT" in result.stdout


def test_infeasible_exits_4_with_the_closest_config(tmp_path: Path) -> None:
    result = run_cli(
        "profile", "--offline", *LLAMA, "--isl", "3000", "--osl", "150", "--ttft", "2",
        "--itl", "20", "--out", tmp_path / "p",
    )  # fmt: skip
    assert result.exit_code == 4
    assert "no TP <= 8 meets TTFT 2 ms at ISL 3000: best is TP8 with TTFT" in result.stderr
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (
            ["--model", "no-such-model", "--system", "h200_sxm", "--backend", "vllm", *SLA],
            1,
            "no-such-model",
        ),
        (
            ["--model", "llama-3.1-8b", "--system", "no-such-gpu", "--backend", "vllm", *SLA],
            1,
            "no-such-gpu",
        ),
        (
            [
                "--model",
                "llama-3.1-405b",
                "--system",
                "l40s",
                "--backend",
                "vllm",
                "--max-gpus-per-engine",
                "2",
                *SLA,
            ],
            1,
            "do not fit TP2",
        ),
        (
            [*LLAMA, "--isl", "3000", "--osl", "150", "--ttft", "-1", "--itl", "20"],
            1,
            "'ttft' must be a positive number",
        ),
        (
            [*LLAMA, "--isl", "0", "--osl", "150", "--ttft", "100", "--itl", "20"],
            1,
            "'isl' must be a positive integer",
        ),
        (
            [*LLAMA, "--isl", "200000", "--osl", "150", "--ttft", "100", "--itl", "20"],
            1,
            "context window",
        ),
        (
            [*LLAMA, "--dgdr", "x.yaml", *SLA],
            2,
            "--dgdr cannot be combined with --model, --backend, --isl",
        ),
        (
            ["--model", "llama-3.1-8b", *SLA],
            2,
            "needs --dgdr FILE or --backend, --system (or --gpu-spec)",
        ),
        ([*LLAMA, *SLA, "--backend", "tgi"], 2, "--backend must be one of"),
        ([*LLAMA, *SLA, "--dtype", "int4"], 2, "--dtype must be fp8 or bf16"),
        (
            ["--model", "llama-3.1-8b", "--system", "a100_sxm", "--backend", "vllm", *SLA],
            1,
            "a100_sxm has no FP8 tensor cores: --dtype must be one of bf16",
        ),
        ([*LLAMA, *SLA, "--max-gpus-per-engine", "1024"], 1, "must be in 1..72"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, args: list[str], code: int, fragment: str) -> None:
    result = run_cli("profile", "--offline", *args, "--out", tmp_path / "p")
    assert result.exit_code == code, result.stderr
    assert fragment in result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == ""


def test_offline_flag_is_required(tmp_path: Path) -> None:
    result = run_cli("profile", *LLAMA, *SLA, "--out", tmp_path / "p")
    assert result.exit_code == 2 and "needs --offline" in result.stderr


def test_refuses_to_overwrite_a_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "notes.txt").write_text("keep me")
    result = run_cli("profile", "--offline", *LLAMA, *SLA, "--out", tmp_path / "p", "--no-plots")
    assert result.exit_code == 1 and "refusing to overwrite" in result.stderr
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["notes.txt"]


def test_replaces_an_earlier_profile(run: tuple[Path, dict], tmp_path: Path) -> None:
    out = tmp_path / "p"
    assert _profile(out).exit_code == 0
    again = _profile(out, "--no-plots")
    assert again.exit_code == 0 and not list(out.glob("*.png"))
    assert [p.name for p in tmp_path.iterdir()] == ["p"]


def test_model_config_and_gpu_spec_files(run: tuple[Path, dict], tmp_path: Path) -> None:
    """An HF config.json and a GPU spec YAML with Llama-3.1-8B / H200 numbers give the same sizes."""
    from dynamo_plan.estimator import load_gpu, load_model

    arch, gpu = load_model("llama-3.1-8b"), load_gpu("h200_sxm")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({
        "num_hidden_layers": arch.num_layers, "hidden_size": arch.hidden_size,
        "num_attention_heads": arch.num_heads, "num_key_value_heads": arch.num_kv_heads,
        "head_dim": arch.head_dim, "intermediate_size": arch.intermediate_size,
        "vocab_size": arch.vocab_size, "max_position_embeddings": arch.max_position_embeddings,
        "tie_word_embeddings": arch.tie_word_embeddings,
    }))  # fmt: skip
    spec = tmp_path / "gpu.yaml"
    fields = ("bf16_tflops", "fp8_tflops", "hbm_gbps", "hbm_gib", "nvlink_gbps")
    spec.write_text(yaml.safe_dump({"name": "my-h200", **{f: getattr(gpu, f) for f in fields}}))
    result = run_cli(
        "profile", "--offline", "--model-config", config, "--gpu-spec", spec, "--backend", "vllm",
        *SLA, "--out", tmp_path / "p", "--no-plots", "-o", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert doc["system"] == "my-h200"
    assert doc["prefill"]["tp"] == run[1]["prefill"]["tp"]
    assert doc["decode"]["tp"] == run[1]["decode"]["tp"]
