"""``dgdr run``, ``dgdr status`` and ``dgdr create --apply`` against the API stand-in."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_cli
from tests.deploy.test_workflow import write_dgdr
from tests.k8s_standin import StandIn


@pytest.fixture
def kubeconfig(standin: StandIn, tmp_path: Path) -> Path:
    return standin.kubeconfig(tmp_path / "kubeconfig", namespace="team")


def test_run_json_and_progress(standin: StandIn, kubeconfig: Path, tmp_path: Path) -> None:
    standin.install_crd()
    dgdr = write_dgdr(tmp_path / "d.yaml")
    result = run_cli("dgdr", "run", dgdr, "--kubeconfig", kubeconfig, "-o", "json")
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert doc["state"] == "Ready" and doc["phases"] == ["Pending", "Profiling", "Ready"]
    assert doc["crdInstalled"] and doc["generatedDeployment"] == "llama"
    assert sorted(doc["configMaps"]) == ["dgdr-output-llama", "llama-profile"]
    lines = result.stderr.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == doc["phases"]


def test_run_infeasible_exits_4_with_failed(
    standin: StandIn, kubeconfig: Path, tmp_path: Path
) -> None:
    standin.install_crd()
    dgdr = write_dgdr(tmp_path / "d.yaml", ttft=0.001)
    result = run_cli("dgdr", "run", dgdr, "--kubeconfig", kubeconfig, "-o", "json")
    assert result.exit_code == 4
    assert "Failed:" in result.stderr
    live = standin.get("dynamographdeploymentrequests", "team", "llama")
    assert live is not None and live["status"]["state"] == "Failed"


def test_run_changed_spec_exits_1(standin: StandIn, kubeconfig: Path, tmp_path: Path) -> None:
    standin.install_crd()
    first = run_cli("dgdr", "run", write_dgdr(tmp_path / "d.yaml"), "--kubeconfig", kubeconfig)
    assert first.exit_code == 0, first.stderr
    changed = write_dgdr(tmp_path / "d.yaml", ttft=300)
    result = run_cli("dgdr", "run", changed, "--kubeconfig", kubeconfig)
    assert result.exit_code == 1
    assert "spec changed since profiling started" in result.stderr
    assert "dynamo-plan delete" in result.stderr


def test_run_no_cluster(tmp_path: Path) -> None:
    dgdr = write_dgdr(tmp_path / "d.yaml")
    out = tmp_path / "out"
    result = run_cli("dgdr", "run", dgdr, "--no-cluster", "--out", out, "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert sorted(Path(f).name for f in result.json()["files"]) == [
        "dgd.yaml",
        "dgdr-output-llama.yaml",
        "llama-profile.yaml",
    ]
    assert run_cli("dgdr", "run", dgdr, "--no-cluster").exit_code == 2


def test_status_json_and_not_found(standin: StandIn, kubeconfig: Path, tmp_path: Path) -> None:
    standin.install_crd()
    missing = run_cli("dgdr", "status", "llama", "--kubeconfig", kubeconfig)
    assert missing.exit_code == 1 and len(missing.stderr.strip().splitlines()) == 1
    run_cli("dgdr", "run", write_dgdr(tmp_path / "d.yaml"), "--kubeconfig", kubeconfig)
    result = run_cli("dgdr", "status", "llama", "--kubeconfig", kubeconfig, "-o", "json")
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert doc["state"] == "Ready" and doc["namespace"] == "team"
    assert doc["generatedDeployment"]["kind"] == "DynamoGraphDeployment"
    table = run_cli("dgdr", "status", "llama", "--kubeconfig", kubeconfig)
    assert table.exit_code == 0 and "Ready" in table.stdout


def test_status_unreachable_exits_3(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    result = run_cli("dgdr", "status", "llama", "--kubeconfig", path)
    assert result.exit_code == 3
    assert f"127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_create_apply(standin: StandIn, kubeconfig: Path) -> None:
    args = [
        "dgdr", "create", "--name", "llama", "--model", "llama-3.1-8b", "--backend", "vllm",
        "--isl", "3000", "--osl", "150", "--ttft", "200", "--itl", "20",
        "--profiler-image", "img:1", "--offline", "--system", "h200_sxm",
        "--apply", "--kubeconfig", str(kubeconfig),
    ]  # fmt: skip
    result = run_cli(*args)
    assert result.exit_code == 0, result.stderr
    assert "created" in result.stderr and result.stdout == ""
    live = standin.get("dynamographdeploymentrequests", "team", "llama")
    assert live is not None and live["spec"]["backend"] == "vllm"
    assert live["apiVersion"] == "nvidia.com/v1beta1"  # no CRD installed: the newest release
    again = run_cli(*args)
    assert again.exit_code == 0 and "unchanged" in again.stderr


def test_create_apply_writes_for_the_installed_release(tmp_path: Path) -> None:
    """Without --dynamo-version, ``create --apply`` writes what the cluster's DGDR CRD serves."""
    from tests.profiler.test_workflow_dgdr import _standin

    with _standin("0.9") as server:
        server.install_crd()
        kubeconfig = server.kubeconfig(tmp_path / "kubeconfig", namespace="team")
        result = run_cli("dgdr", "create", "--model", "llama-3.1-8b", "--backend", "vllm",
                         "--isl", "3000", "--osl", "150", "--ttft", "200", "--itl", "20",
                         "--use-mocker", "--apply", "--kubeconfig", kubeconfig)  # fmt: skip
        assert result.exit_code == 0, result.stderr
        live = server.get("dynamographdeploymentrequests", "team", "llama-3-1-8b")
    assert live is not None and live["apiVersion"] == "nvidia.com/v1alpha1"
    assert live["spec"]["useMocker"] is True
    assert live["spec"]["profilingConfig"]["profilerImage"].endswith("vllm-runtime:0.9.0")
