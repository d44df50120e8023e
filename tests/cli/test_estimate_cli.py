"""``dynamo-plan estimate``: JSON rows, skipping TPs that do not fit, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from dynamo_plan.estimator import RooflineEstimator, load_gpu, load_model
from tests.conftest import run_cli


def test_prefill_json_rows_match_the_library() -> None:
    r = run_cli(
        "estimate", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--system", "h200",
        "--backend", "vllm", "--tp", "1,2", "--isl", "1024,4096", "-o", "json",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    rows = r.json()
    assert [(row["tp"], row["isl"]) for row in rows] == [(1, 1024), (1, 4096), (2, 1024), (2, 4096)]
    est = RooflineEstimator(load_model("llama-3.1-8b"), load_gpu("h200_sxm"), "vllm", "fp8")
    for row in rows:
        assert set(row) == {"phase", "tp", "isl", "latency_ms", "thpt_per_gpu", "estimator"}
        assert row["estimator"] == "roofline"
        assert row["phase"] == "prefill"
        p = est.prefill(row["tp"], row["isl"])
        assert row["latency_ms"] == pytest.approx(p.latency_ms, abs=1e-3)
        assert row["thpt_per_gpu"] == pytest.approx(p.thpt_per_gpu, abs=0.1)


def test_decode_json_rows_cover_batch_by_context() -> None:
    r = run_cli(
        "estimate", "--model", "qwen3-30b-a3b", "--system", "h100_sxm", "--dtype", "bf16",
        "--kv-dtype", "fp8", "--tp", "2", "--batch", "1,64", "--context", "1024,8192", "-o", "json",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    rows = r.json()
    assert {(row["batch"], row["context"]) for row in rows} == {
        (1, 1024), (64, 1024), (1, 8192), (64, 8192),
    }  # fmt: skip
    for row in rows:
        assert set(row) == {
            "phase",
            "tp",
            "batch",
            "context",
            "latency_ms",
            "thpt_per_gpu",
            "estimator",
        }
        assert row["phase"] == "decode" and row["tp"] == 2
        assert row["thpt_per_gpu"] == pytest.approx(
            row["batch"] / (row["latency_ms"] / 1e3) / 2, rel=1e-3
        )


def test_table_is_the_default_output() -> None:
    r = run_cli("estimate", "--model", "llama-3.2-1b", "--system", "l40s", "--isl", "512")
    assert r.exit_code == 0
    assert "TTFT (ms)" in r.stdout and "llama-3.2-1b" in r.stdout


def test_tp_that_does_not_fit_is_skipped_with_a_warning() -> None:
    r = run_cli(
        "estimate", "--model", "llama-3.1-70b", "--system", "h100", "--dtype", "bf16",
        "--tp", "1,4", "--isl", "1000", "-o", "json",
    )  # fmt: skip
    assert r.exit_code == 0
    assert [row["tp"] for row in r.json()] == [4]
    assert "does not fit" in r.stderr and "tp=1" in r.stderr


def test_nothing_fits_is_an_input_error() -> None:
    r = run_cli(
        "estimate", "--model", "deepseek-v3", "--system", "l40s", "--tp", "1,2", "--isl", "1"
    )
    assert r.exit_code == 1
    assert "does not fit on l40s at any of tp=1,2" in r.stderr


def test_model_config_and_gpu_spec_files(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(
        '{"num_hidden_layers": 2, "hidden_size": 256, "num_attention_heads": 4, '
        '"intermediate_size": 512, "vocab_size": 1000}'
    )
    spec = tmp_path / "gpu.yaml"
    spec.write_text(
        "bf16_tflops: 100\nfp8_tflops: 200\nhbm_gbps: 1000\nhbm_gib: 16\nnvlink_gbps: 50\n"
    )
    r = run_cli(
        "estimate", "--model-config", cfg, "--gpu-spec", spec, "--batch", "4",
        "--context", "100", "-o", "json",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert len(r.json()) == 1


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--model", "llama-3.1-9b", "--system", "h100", "--isl", "1"], 1, "did you mean"),
        (["--model", "llama-3.1-8b", "--system", "h300", "--isl", "1"], 1, "unknown GPU 'h300'"),
        (["--model", "llama-3.1-8b", "--system", "h100"], 2, "nothing to estimate"),
        ([], 2, "nothing to estimate"),
        (
            ["--model", "llama-3.1-8b", "--system", "h100", "--isl", "1", "--batch", "2"],
            2,
            "not both",
        ),
        (
            ["--model", "llama-3.1-8b", "--system", "h100", "--batch", "2"],
            2,
            "--context is missing",
        ),
        (
            ["--model", "llama-3.1-8b", "--system", "h100", "--isl", "1,a"],
            1,
            "--isl: 'a' is not an integer",
        ),
        (
            ["--model", "llama-3.1-8b", "--system", "h100", "--isl", "1.5"],
            1,
            "'1.5' is not an integer",
        ),
        (
            ["--model", "llama-3.1-8b", "--system", "h100", "--tp", "0", "--isl", "1"],
            1,
            "--tp: values must be > 0",
        ),
        (
            ["--model", "llama-3.1-8b", "--system", "h100", "--batch", "-4", "--context", "9"],
            1,
            "--batch: values must be > 0",
        ),
        (
            ["--model", "llama-3.1-8b", "--system", "h100", "--isl", "8", "--mem-util", "0"],
            1,
            "--mem-util",
        ),
        (["--system", "h100", "--isl", "8"], 2, "give a model name"),
        (["--model", "llama-3.1-8b", "--isl", "8"], 2, "give a GPU name"),
        (
            ["--model", "llama-3.1-8b", "--system", "h200", "--tp", "1,1024", "--isl", "8"],
            1,
            "--tp: values must be <= 72",
        ),
        (
            ["--model", "llama-3.1-8b", "--system", "a100_sxm", "--dtype", "fp8", "--isl", "8"],
            1,
            "a100_sxm has no FP8 tensor cores: --dtype must be one of bf16",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_code(args: list[str], code: int, message: str) -> None:
    r = run_cli("estimate", *args)
    assert r.exit_code == code
    assert message in r.stderr
    assert r.stderr.strip().count("\n") == 0
    assert r.stdout == ""


@pytest.mark.parametrize("flag", ["--gpu-spec", "--model-config"])
@pytest.mark.parametrize(
    "content",
    [b"\x00\x01\xfe\xff binary", "bf16_tflops: 1\n".encode("utf-16")],
    ids=["binary", "utf16"],
)
def test_spec_files_that_are_not_utf8_are_one_line(
    tmp_path: Path, flag: str, content: bytes
) -> None:
    """Issue 11: a binary or UTF-16 --gpu-spec was a UnicodeDecodeError traceback."""
    path = tmp_path / "spec"
    path.write_bytes(content)
    given = {"--gpu-spec": ["--model", "llama-3.1-8b"], "--model-config": ["--system", "h200"]}
    r = run_cli("estimate", *given[flag], flag, path, "--isl", "8", "-o", "json")
    assert r.exit_code == 1
    assert r.stdout == ""
    assert r.stderr.startswith(f"error: {path}:1: not UTF-8 text (byte ")
    assert r.stderr.strip().count("\n") == 0


def test_a100_estimates_bf16_but_refuses_fp8() -> None:
    """A100 has no FP8 tensor cores: bf16 works, fp8 is refused instead of printing bf16-rate
    numbers under an fp8 header."""
    args = ["estimate", "--model", "llama-3.1-8b", "--system", "a100_sxm", "--isl", "1000"]
    bf16 = run_cli(*args, "--dtype", "bf16", "-o", "json")
    assert bf16.exit_code == 0, bf16.stderr
    assert bf16.json()[0]["latency_ms"] > 0
    fp8 = run_cli(*args, "--dtype", "fp8", "-o", "json")
    assert fp8.exit_code == 1 and fp8.stdout == ""
    assert "--dtype must be one of bf16" in fp8.stderr
