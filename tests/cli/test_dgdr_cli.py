"""``dynamo-plan dgdr validate`` and ``dgdr create`` end to end: JSON output, tables, exit codes."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.conftest import run_cli

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
EXAMPLES = sorted((DEPLOY / "examples").glob("*.yaml"))
BAD = DEPLOY / "bad_dgdrs"
CREATE = [
    "dgdr", "create", "--name", "llama", "--model", "meta-llama/Llama-3.1-8B-Instruct",
    "--backend", "vllm", "--isl", "3000", "--osl", "150", "--ttft", "200", "--itl", "20",
    "--profiler-image", "nvcr.io/nvidia/ai-dynamo/vllm-runtime:0.6.1",
]  # fmt: skip


def test_validate_json_all_valid() -> None:
    result = run_cli("dgdr", "validate", *EXAMPLES, "-o", "json")
    assert result.exit_code == 0, result.stderr
    reports = result.json()
    assert [r["file"] for r in reports] == [str(p) for p in EXAMPLES]
    assert all(r["valid"] and r["errors"] == [] for r in reports)
    assert sum(r["documents"] for r in reports) == len(EXAMPLES) + 1  # one two-document file


def test_validate_mixed_files_exit_1_with_one_error_line() -> None:
    files = [EXAMPLES[0], BAD / "ttft_negative.yaml", BAD / "missing_model.yaml"]
    result = run_cli("dgdr", "validate", *files, "-o", "json")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == ["error: 2 of 3 file(s) invalid"]
    assert [r["valid"] for r in result.json()] == [True, False, False]
    ttft = result.json()[1]["errors"][0]
    assert ttft == {
        "path": "spec.profilingConfig.config.sla.ttft",
        "line": 14,
        "message": "must be > 0 ms, got -5",
        "doc": 0,
    }


def test_validate_table_lists_file_line_path_message() -> None:
    result = run_cli("dgdr", "validate", EXAMPLES[0], BAD / "ttft_negative.yaml")
    assert result.exit_code == 1
    out = result.stdout
    assert f"✓ {EXAMPLES[0]}" in out and f"✗ {BAD / 'ttft_negative.yaml'}" in out
    line = f"{BAD / 'ttft_negative.yaml'}:14: spec.profilingConfig.config.sla.ttft: must be > 0 ms"
    assert line in out


def test_validate_yaml_output_and_missing_file(tmp_path: Path) -> None:
    result = run_cli("dgdr", "validate", tmp_path / "absent.yaml", "-o", "yaml")
    assert result.exit_code == 1
    [report] = yaml.safe_load(result.stdout)
    assert report["valid"] is False and report["errors"][0]["message"].startswith("cannot read")


def test_create_stdout_is_a_valid_dgdr(tmp_path: Path) -> None:
    result = run_cli(*CREATE, "--offline", "--system", "h200_sxm", "--auto-apply", "--use-mocker",
                     "--workers-image", "img:2", "--namespace", "dynamo",
                     "--dynamo-version", "0.9")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    doc = yaml.safe_load(result.stdout)
    spec = doc["spec"]
    assert doc["apiVersion"] == "nvidia.com/v1alpha1"
    assert doc["metadata"] == {"name": "llama", "namespace": "dynamo"}
    assert spec["autoApply"] is True and spec["useMocker"] is True and "deployMocker" not in spec
    assert spec["deploymentOverrides"] == {"workersImage": "img:2"}
    assert spec["profilingConfig"]["config"]["sweep"] == {
        "useAiConfigurator": True, "aicSystem": "h200_sxm",
        "aicHfId": "meta-llama/Llama-3.1-8B-Instruct",
    }  # fmt: skip
    written = tmp_path / "out.yaml"
    written.write_text(result.stdout)
    assert run_cli("dgdr", "validate", written, "-o", "json").json()[0]["valid"] is True


def test_create_per_release_with_the_interface_flags_only(tmp_path: Path) -> None:
    """The issue's interface: --model --backend --isl --osl --ttft --itl [--dynamo-version V]."""
    base = ["dgdr", "create", "--model", "Qwen/Qwen3-0.6B", "--backend", "sglang", "--isl", "3000",
            "--osl", "150", "--ttft", "200", "--itl", "20", "--offline", "--system", "h200_sxm"]  # fmt: skip
    newest = yaml.safe_load(run_cli(*base).stdout)
    assert newest["apiVersion"] == "nvidia.com/v1beta1"
    assert newest["metadata"] == {"name": "qwen3-0-6b"}
    assert newest["spec"]["hardware"] == {"gpuSku": "h200_sxm"}
    assert newest["spec"]["sla"] == {"ttft": 200.0, "itl": 20.0}
    assert newest["spec"]["workload"] == {"isl": 3000, "osl": 150}
    assert "searchStrategy" not in newest["spec"]  # rapid, the default
    old = yaml.safe_load(run_cli(*base, "--dynamo-version", "0.6").stdout)
    assert old["apiVersion"] == "nvidia.com/v1alpha1"
    sweep = old["spec"]["profilingConfig"]["config"]["sweep"]
    assert sweep["use_ai_configurator"] is True and sweep["aic_system"] == "h200_sxm"
    for version, doc in (("1.5", newest), ("0.6", old)):
        target = tmp_path / f"{version}.yaml"
        target.write_text(yaml.safe_dump(doc))
        check = run_cli("dgdr", "validate", target, "-o", "json")
        assert check.exit_code == 0 and check.json()[0]["warnings"] == []
    refused = run_cli(*base, "--dynamo-version", "0.6", "--use-mocker")
    assert refused.exit_code == 2 and "no mocker switch" in refused.stderr


def test_validate_every_spelling() -> None:
    files = sorted((DEPLOY.parent / "data" / "dgdrs").glob("*.yaml"))
    result = run_cli("dgdr", "validate", *files, "-o", "json")
    assert result.exit_code == 0, result.stdout
    assert [r["valid"] for r in result.json()] == [True] * len(files) and len(files) == 3


def test_convert_both_ways(tmp_path: Path) -> None:
    data = DEPLOY.parent / "data" / "dgdrs"
    result = run_cli("dgdr", "convert", data / "v1beta1_1.5.yaml", "--to", "v1alpha1", "-o", "json")
    assert result.exit_code == 0, result.stderr
    out = result.json()
    assert out["dgdr"]["apiVersion"] == "nvidia.com/v1alpha1"
    spec = out["dgdr"]["spec"]
    assert "useMocker" not in spec and "autoApply" in spec  # v1alpha1's default is false
    assert spec["profilingConfig"]["config"]["sla"] == {"isl": 3000, "osl": 300, "ttft": 200.0,
                                                        "itl": 20.0}  # fmt: skip
    assert "spec.workload.requestRate: v1alpha1 has no such field" in out["notCarried"]
    back = run_cli("dgdr", "convert", data / "v1alpha1_0.6_snake.yaml", "--to", "v1beta1")
    assert back.exit_code == 0
    doc = yaml.safe_load(back.stdout)
    assert (
        doc["apiVersion"] == "nvidia.com/v1beta1"
        and doc["spec"]["hardware"]["gpuSku"] == "h200_sxm"
    )
    assert "not carried over: spec.profilingConfig.config.sweep.aic_backend_version" in back.stderr
    target = tmp_path / "converted.yaml"
    target.write_text(back.stdout)
    assert run_cli("dgdr", "validate", target).exit_code == 0


def test_create_to_file_then_validate(tmp_path: Path) -> None:
    target = tmp_path / "llama.yaml"
    result = run_cli(*CREATE, "-f", target)
    assert result.exit_code == 0 and result.stdout == ""
    check = run_cli("dgdr", "validate", target, "-o", "json")
    assert check.exit_code == 0 and check.json()[0]["warnings"] == []


def test_create_bad_values_exit_1_one_line() -> None:
    args = list(CREATE)
    args[args.index("--ttft") + 1] = "-5"
    result = run_cli(*args)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == ["error: --ttft: must be > 0 ms, got -5"]
    args = list(CREATE)
    args[args.index("--backend") + 1] = "vlm"
    result = run_cli(*args)
    assert result.exit_code == 1 and "did you mean 'vllm'?" in result.stderr


def test_create_offline_without_system_is_a_usage_error() -> None:
    result = run_cli(*CREATE, "--offline")
    assert result.exit_code == 2 and "--offline needs --system" in result.stderr


def test_create_apply_with_a_missing_kubeconfig_exits_3(tmp_path: Path) -> None:
    """``--apply`` talks to the cluster (tests/cli/test_dgdr_run_cli.py covers the success)."""
    missing = tmp_path / "nope"
    result = run_cli(*CREATE, "--apply", "--kubeconfig", missing)
    assert result.exit_code == 3 and str(missing) in result.stderr
