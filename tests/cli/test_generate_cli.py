"""``dynamo-plan generate-dgd`` end to end: manifest on stdout or -f, summary and exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_cli

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
BAD = Path(__file__).resolve().parent.parent / "deploy" / "bad_dgdrs"
DGDR = """\
apiVersion: nvidia.com/v1alpha1
kind: DynamoGraphDeploymentRequest
metadata:
  name: llama-8b
  namespace: serving
spec:
  model: meta-llama/Llama-3.1-8B-Instruct
  backend: vllm
  profilingConfig:
    profilerImage: nvcr.io/nvidia/ai-dynamo/vllm-runtime:0.6.1
    config:
      sla: {isl: 3000, osl: 150, ttft: 200, itl: 20.5}
      planner:
        plannerMinEndpoint: 2
        adjustmentInterval: 60
        loadPredictor: arima
        noCorrection: true
"""
META = {
    "model": "meta-llama/Llama-3.1-8B-Instruct",
    "system": "h200_sxm",
    "parallelism": {
        "prefill": {"tp": 1, "gpus_per_engine": 1},
        "decode": {"tp": 2, "gpus_per_engine": 2},
    },
}


@pytest.fixture
def inputs(shared_data: Path, tmp_path: Path) -> tuple[Path, Path]:
    """(DGDR file, profile dir: the shared H200 profile with a decode-TP-2 profile.json)."""
    profile = tmp_path / "profile"
    shutil.copytree(shared_data / "profiles" / "h200_llama3.1-8b-fp8_tp1p_tp1d", profile)
    (profile / "profile.json").write_text(json.dumps(META), encoding="utf-8")
    dgdr = tmp_path / "dgdr.yaml"
    dgdr.write_text(DGDR, encoding="utf-8")
    return dgdr, profile


def test_stdout_matches_golden_and_summary_is_one_line(inputs: tuple[Path, Path]) -> None:
    dgdr, profile = inputs
    result = run_cli("generate-dgd", "--dgdr", dgdr, "--profile", profile)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (GOLDEN / "dgd_vllm.yaml").read_text(encoding="utf-8")
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "DynamoGraphDeployment serving/llama-8b" in lines[0]
    assert "prefill 2×TP1, decode 2×TP2; planner on" in lines[0]


def test_file_output_and_flags(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    dgdr, profile = inputs
    out = tmp_path / "dgd.yaml"
    args = ("--dgdr", dgdr, "--profile", profile, "-f", out, "--no-planner", "--mocker")
    result = run_cli("generate-dgd", *args)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    objects = list(yaml.safe_load_all(out.read_text(encoding="utf-8")))
    assert [o["kind"] for o in objects] == ["DynamoGraphDeployment"]
    services = objects[0]["spec"]["services"]
    assert "Planner" not in services
    assert {s["extraPodSpec"]["mainContainer"]["command"][-1] for s in services.values()} == {
        "dynamo.frontend", "dynamo.mocker",
    }  # fmt: skip
    assert str(out) in result.stderr and "planner off" in result.stderr
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_bad_dgdr_exit_1_names_line_and_field(inputs: tuple[Path, Path]) -> None:
    _, profile = inputs
    bad = BAD / "ttft_negative.yaml"
    result = run_cli("generate-dgd", "--dgdr", bad, "--profile", profile)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"error: {bad}:14: spec.profilingConfig.config.sla.ttft: must be > 0 ms, got -5"
    ]


def test_missing_profile_exit_1(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    dgdr, _ = inputs
    missing = tmp_path / "nope"
    result = run_cli("generate-dgd", "--dgdr", dgdr, "--profile", missing)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"error: {missing}: not a directory; expected a performance-profile directory"
    ]


def test_missing_dgdr_file_exit_1(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    _, profile = inputs
    result = run_cli("generate-dgd", "--dgdr", tmp_path / "none.yaml", "--profile", profile)
    assert result.exit_code == 1
    assert "none.yaml" in result.stderr and "cannot read" in result.stderr


def test_help_lists_generate_dgd() -> None:
    result = run_cli("--help")
    assert result.exit_code == 0
    assert "generate-dgd" in result.stdout
