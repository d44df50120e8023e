"""``dynamo-plan generate-dgd`` end to end: manifest on stdout or -f, summary and exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from dynamo_plan.deploy import dgd_shapes
from tests.conftest import run_cli
from tests.crd_schema import crd_errors

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


@pytest.mark.parametrize("version", [None, "0.6", "0.9", "1.5"])
def test_stdout_matches_golden_and_summary_is_one_line(
    inputs: tuple[Path, Path], version: str | None
) -> None:
    """Without --dynamo-version: the newest release (1.5)."""
    dgdr, profile = inputs
    flags = ("--dynamo-version", version) if version else ()
    result = run_cli("generate-dgd", "--dgdr", dgdr, "--profile", profile, *flags)
    assert result.exit_code == 0, result.stderr
    golden = GOLDEN / f"dgd_vllm_{version or '1.5'}.yaml"
    assert result.stdout == golden.read_text(encoding="utf-8")
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "DynamoGraphDeployment serving/llama-8b" in lines[0]
    assert f"(Dynamo {version or '1.5'})" in lines[0]
    assert "prefill 2×TP1, decode 2×TP2; planner on" in lines[0]


def test_json_output_and_planner_image(inputs: tuple[Path, Path]) -> None:
    dgdr, profile = inputs
    result = run_cli(
        "generate-dgd", "--dgdr", dgdr, "--profile", profile, "-o", "json",
        "--planner-image", "registry.local/dynamo-plan:9.9", "--dynamo-version", "0.9",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    objects = result.json()
    assert [o["kind"] for o in objects] == [
        "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "DynamoGraphDeployment",
    ]  # fmt: skip
    assert objects[-1]["apiVersion"] == "nvidia.com/v1alpha1"
    planner = objects[-1]["spec"]["services"]["Planner"]["extraPodSpec"]["mainContainer"]
    assert planner["image"] == "registry.local/dynamo-plan:9.9"


def test_unknown_dynamo_version_is_a_usage_error(inputs: tuple[Path, Path]) -> None:
    dgdr, profile = inputs
    result = run_cli(
        "generate-dgd", "--dgdr", dgdr, "--profile", profile, "--dynamo-version", "2.0"
    )
    assert result.exit_code == 2 and result.stdout == ""


def test_file_output_and_flags(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    dgdr, profile = inputs
    out = tmp_path / "dgd.yaml"
    args = ("--dgdr", dgdr, "--profile", profile, "-f", out, "--no-planner", "--mocker")
    result = run_cli("generate-dgd", *args)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    objects = list(yaml.safe_load_all(out.read_text(encoding="utf-8")))
    assert [o["kind"] for o in objects] == ["DynamoGraphDeployment"]
    components = objects[0]["spec"]["components"]
    assert [c["type"] for c in components] == ["frontend", "decode", "prefill"]
    workers = [c["podTemplate"]["spec"]["containers"][0] for c in components[1:]]
    assert {w["command"][-1] for w in workers} == {"dynamo.mocker"}
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


@pytest.mark.parametrize(
    ("stem", "line", "finding"),
    [
        # Dynamo's webhook requires spec.profilingConfig.config; rendering needs its sla
        ("missing_config", 8, "spec.profilingConfig.config: required field missing"),
        ("isl_too_large", 12, "spec.profilingConfig.config.sla.isl: must be <= 10000000 tokens"),
    ],
)
def test_dgdr_validate_and_generate_dgd_agree(
    inputs: tuple[Path, Path], stem: str, line: int, finding: str
) -> None:
    """A DGDR ``dgdr validate`` calls invalid is refused by ``generate-dgd`` with the same
    ``file:line: field: message`` (one line, exit 1), never rendered or a traceback."""
    _, profile = inputs
    bad = BAD / f"{stem}.yaml"
    report = run_cli("dgdr", "validate", bad, "-o", "json")
    assert report.exit_code == 1 and report.json()[0]["valid"] is False
    result = run_cli("generate-dgd", "--dgdr", bad, "--profile", profile)
    assert result.exit_code == 1 and result.stdout == ""
    [message] = result.stderr.strip().splitlines()
    assert message.startswith(f"error: {bad}:{line}: {finding}"), message


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


def test_profile_for_another_model_and_backend_is_exit_1_naming_both(
    inputs: tuple[Path, Path],
) -> None:
    """An 8B vLLM DGDR with a 70B TensorRT-LLM TP4 profile: one error naming both values and
    both files, nothing on stdout."""
    dgdr, profile = inputs
    par = {"tp": 4, "gpus_per_engine": 4}
    meta = {
        "model": "meta-llama/Llama-3.1-70B",
        "backend": "trtllm",
        "parallelism": {"prefill": par, "decode": par},
    }
    (profile / "profile.json").write_text(json.dumps(meta), encoding="utf-8")
    result = run_cli("generate-dgd", "--dgdr", dgdr, "--profile", profile)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"error: profile {profile / 'profile.json'} is for model meta-llama/Llama-3.1-70B "
        f"(trtllm, TP4), the DGDR {dgdr} asks for meta-llama/Llama-3.1-8B-Instruct (vllm); "
        "use a profile made for the DGDR's model and backend"
    ]


def test_profile_naming_the_model_by_its_catalogue_name_renders(
    inputs: tuple[Path, Path],
) -> None:
    dgdr, profile = inputs
    meta = {**META, "model": "Llama-3.1-8B", "backend": "VLLM"}  # short name, other case
    (profile / "profile.json").write_text(json.dumps(meta), encoding="utf-8")
    result = run_cli("generate-dgd", "--dgdr", dgdr, "--profile", profile)
    assert result.exit_code == 0, result.stderr
    assert "decode 2×TP2" in result.stderr


V1BETA1_DGDR = """\
apiVersion: nvidia.com/v1beta1
kind: DynamoGraphDeploymentRequest
metadata:
  name: llama-b
  namespace: serving
spec:
  model: meta-llama/Llama-3.1-8B-Instruct
  backend: vllm
  sla: {ttft: 200, itl: 20}
  workload: {isl: 3000, osl: 150}
  features:
    planner:
      plannerImage: registry.local/dynamo-plan:beta
"""


@pytest.mark.parametrize("version", ["0.9", "1.5"])
def test_v1beta1_dgdr_to_each_release(
    inputs: tuple[Path, Path], tmp_path: Path, version: str
) -> None:
    """A v1beta1 DGDR renders for any release; its features.planner.plannerImage is the
    Planner's image; the DGD validates against that release's CRD."""
    _, profile = inputs
    dgdr = tmp_path / "beta.yaml"
    dgdr.write_text(V1BETA1_DGDR, encoding="utf-8")
    args = ("--dgdr", dgdr, "--profile", profile, "--dynamo-version", version, "-o", "json")
    result = run_cli("generate-dgd", *args)
    assert result.exit_code == 0, result.stderr
    dgd = result.json()[-1]
    assert crd_errors(dgd, version) == []
    planner = dgd_shapes.planners(dgd)[0]
    assert planner.container["image"] == "registry.local/dynamo-plan:beta"
    assert ("--namespace" in planner.container["args"]) == (version != "1.5")
