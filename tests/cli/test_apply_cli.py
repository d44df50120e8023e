"""``dynamo-plan apply`` / ``delete`` end to end against the Kubernetes API stand-in."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.k8s_standin import StandIn

DGD = """\
apiVersion: nvidia.com/v1alpha1
kind: DynamoGraphDeployment
metadata:
  name: llama
spec:
  services:
    decode:
      replicas: {replicas}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: planner
rules:
  - apiGroups: [nvidia.com]
    resources: [dynamographdeployments]
    verbs: [get, list, watch, patch]
"""


@pytest.fixture
def kubeconfig(standin: StandIn, tmp_path: Path) -> Path:
    return standin.kubeconfig(tmp_path / "kubeconfig")


def _manifest(tmp_path: Path, replicas: int) -> Path:
    path = tmp_path / f"dgd-{replicas}.yaml"
    path.write_text(DGD.format(replicas=replicas))
    return path


def test_apply_json_summary_and_idempotence(tmp_path: Path, kubeconfig: Path) -> None:
    args = ("--kubeconfig", kubeconfig, "-n", "prod", "-o", "json")
    first = run_cli("apply", _manifest(tmp_path, 1), *args)
    assert first.exit_code == 0, first.stderr
    assert first.json() == [
        {"kind": "DynamoGraphDeployment", "name": "llama", "namespace": "prod",
         "action": "created", "dry_run": False},
        {"kind": "Role", "name": "planner", "namespace": "prod",
         "action": "created", "dry_run": False},
    ]  # fmt: skip
    second = run_cli("apply", _manifest(tmp_path, 2), *args)
    assert [r["action"] for r in second.json()] == ["configured", "unchanged"]
    table = run_cli("apply", _manifest(tmp_path, 2), "--kubeconfig", kubeconfig, "-n", "prod")
    assert "DynamoGraphDeployment/llama -n prod unchanged" in table.stdout


def test_dry_run_server_and_diff(tmp_path: Path, kubeconfig: Path, standin: StandIn) -> None:
    run_cli("apply", _manifest(tmp_path, 1), "--kubeconfig", kubeconfig)
    out = run_cli(
        "apply", _manifest(tmp_path, 3), "--kubeconfig", kubeconfig, "--dry-run", "server", "--diff"
    )
    assert out.exit_code == 0, out.stderr
    assert "+      replicas: 3" in out.stdout and "(server dry run)" in out.stdout
    live = standin.get("dynamographdeployments", "default", "llama")
    assert live is not None and live["spec"]["services"]["decode"]["replicas"] == 1


def test_dry_run_client_prints_the_objects(tmp_path: Path, kubeconfig: Path) -> None:
    out = run_cli(
        "apply", _manifest(tmp_path, 1), "--kubeconfig", kubeconfig, "--dry-run", "client"
    )
    assert out.exit_code == 0, out.stderr
    assert "kind: DynamoGraphDeployment" in out.stdout and "(client dry run)" in out.stdout
    rows = run_cli(
        "apply", _manifest(tmp_path, 1), "--kubeconfig", kubeconfig, "--dry-run", "client",
        "-o", "json",
    ).json()  # fmt: skip
    assert {(r["action"], r["dry_run"]) for r in rows} == {("created", True)}


def test_conflict_is_one_line_naming_the_manager(
    tmp_path: Path, kubeconfig: Path, standin: StandIn
) -> None:
    run_cli("apply", _manifest(tmp_path, 1), "--kubeconfig", kubeconfig)
    from dynamo_plan.adapters.kubernetes import KubeClient
    from dynamo_plan.deploy.apply import read_manifest

    kube = KubeClient(kubeconfig=kubeconfig).connect()
    dgd = read_manifest(_manifest(tmp_path, 6), None, "default")[0]
    kube.apply(dgd.info, dgd.namespace, dgd.body, "planner", force=True)
    out = run_cli("apply", _manifest(tmp_path, 2), "--kubeconfig", kubeconfig)
    assert out.exit_code == 1
    assert out.stderr.count("\n") == 1 and '"planner"' in out.stderr
    assert "--force-conflicts" in out.stderr and "Traceback" not in out.stderr
    forced = run_cli(
        "apply", _manifest(tmp_path, 2), "--kubeconfig", kubeconfig, "--force-conflicts",
        "-o", "json",
    )  # fmt: skip
    assert forced.exit_code == 0 and forced.json()[0]["action"] == "configured"


def test_wait_follows_ready(tmp_path: Path, kubeconfig: Path, standin: StandIn) -> None:
    timer = threading.Timer(
        0.3,
        standin.set_condition,
        ("dynamographdeployments", "default", "llama", "Ready", "True", "Up"),
    )
    timer.start()
    try:
        out = run_cli(
            "apply", _manifest(tmp_path, 1), "--kubeconfig", kubeconfig, "--wait",
            "--timeout", "10", "--poll-interval", "0.05", "-o", "json",
        )  # fmt: skip
    finally:
        timer.cancel()
    assert out.exit_code == 0, out.stderr
    assert "DynamoGraphDeployment/llama in namespace default: Ready" in out.stderr


def test_wait_timeout_exits_3_naming_the_object(tmp_path: Path, kubeconfig: Path) -> None:
    out = run_cli(
        "apply", _manifest(tmp_path, 1), "--kubeconfig", kubeconfig, "--wait",
        "--timeout", "0.2", "--poll-interval", "0.05",
    )  # fmt: skip
    assert out.exit_code == 3
    last = out.stderr.strip().splitlines()[-1]
    assert "timed out" in last and "DynamoGraphDeployment/llama" in last
    assert "no conditions yet" in last


def test_delete(tmp_path: Path, kubeconfig: Path, standin: StandIn) -> None:
    run_cli("apply", _manifest(tmp_path, 1), "--kubeconfig", kubeconfig)
    out = run_cli("delete", _manifest(tmp_path, 1), "--kubeconfig", kubeconfig, "-o", "json")
    assert out.exit_code == 0, out.stderr
    assert [(r["kind"], r["action"]) for r in out.json()] == [
        ("Role", "deleted"),
        ("DynamoGraphDeployment", "deleted"),
    ]
    assert standin.get("roles", "default", "planner") is None


def test_retries_transient_failures(tmp_path: Path, kubeconfig: Path, standin: StandIn) -> None:
    standin.inject_failures(429, 503)
    out = run_cli("apply", _manifest(tmp_path, 1), "--kubeconfig", kubeconfig, "-o", "json")
    assert out.exit_code == 0, out.stderr
    assert [r["action"] for r in out.json()] == ["created", "created"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_cluster_exits_3_with_one_line(tmp_path: Path) -> None:
    port = _closed_port()
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: u, user: {}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    out = run_cli("apply", _manifest(tmp_path, 1), "--kubeconfig", config)
    assert out.exit_code == 3
    assert out.stderr.count("\n") == 1 and f"http://127.0.0.1:{port}" in out.stderr
    assert "Traceback" not in out.stderr


def test_bad_kubeconfig_and_contradicting_flags(tmp_path: Path, kubeconfig: Path) -> None:
    missing = run_cli("delete", _manifest(tmp_path, 1), "--kubeconfig", tmp_path / "nope")
    assert missing.exit_code == 3 and "nope" in missing.stderr
    bad_context = run_cli(
        "apply", _manifest(tmp_path, 1), "--kubeconfig", kubeconfig, "--context", "other"
    )
    assert bad_context.exit_code == 3 and "other" in bad_context.stderr
    both = run_cli(
        "apply", _manifest(tmp_path, 1), "--kubeconfig", kubeconfig, "--wait", "--dry-run", "server"
    )
    assert both.exit_code == 2
