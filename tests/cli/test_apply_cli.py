"""``dynamo-plan apply`` / ``delete`` end to end against the Kubernetes API stand-in."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.k8s_standin import StandIn

DGD = """\
apiVersion: nvidia.com/v1alpha1
kind: DynamoGraphDeployment
metadata:
  name: llama
  labels: {{app.kubernetes.io/managed-by: dynamo-plan, dynamo-plan/dgd: llama}}
spec:
  services:
    decode:
      replicas: {replicas}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: planner
  labels: {{app.kubernetes.io/managed-by: dynamo-plan, dynamo-plan/dgd: llama}}
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


def test_diff_alone_only_previews(tmp_path: Path, kubeconfig: Path, standin: StandIn) -> None:
    fresh = run_cli("apply", _manifest(tmp_path, 1), "--kubeconfig", kubeconfig, "--diff")
    assert fresh.exit_code == 0, fresh.stderr
    assert "2 of 2 object(s) would change; nothing applied" in fresh.stdout
    assert "+      replicas: 1" in fresh.stdout
    assert standin.get("dynamographdeployments", "default", "llama") is None
    assert standin.get("roles", "default", "planner") is None
    run_cli("apply", _manifest(tmp_path, 1), "--kubeconfig", kubeconfig)
    out = run_cli(
        "apply", _manifest(tmp_path, 3), "--kubeconfig", kubeconfig, "--diff", "-o", "json"
    )
    assert out.exit_code == 0, out.stderr
    rows = out.json()
    assert [(r["action"], r["dry_run"]) for r in rows] == [
        ("configured", True),
        ("unchanged", True),
    ]
    assert "+      replicas: 3" in rows[0]["diff"] and rows[1]["diff"] == ""
    live = standin.get("dynamographdeployments", "default", "llama")
    assert live is not None and live["spec"]["services"]["decode"]["replicas"] == 1


def test_diff_then_apply(tmp_path: Path, kubeconfig: Path, standin: StandIn) -> None:
    run_cli("apply", _manifest(tmp_path, 1), "--kubeconfig", kubeconfig)
    table = run_cli(
        "apply", _manifest(tmp_path, 2), "--kubeconfig", kubeconfig, "--diff", "--apply"
    )
    assert table.exit_code == 0, table.stderr
    preview, _, result = table.stdout.partition("1 of 2 object(s) would change; applying")
    assert "+      replicas: 2" in preview
    assert "DynamoGraphDeployment/llama -n default configured" in result
    assert "dry run" not in result
    live = standin.get("dynamographdeployments", "default", "llama")
    assert live is not None and live["spec"]["services"]["decode"]["replicas"] == 2
    rows = run_cli(
        "apply", _manifest(tmp_path, 4), "--kubeconfig", kubeconfig, "--diff", "--apply",
        "-o", "json",
    ).json()  # fmt: skip
    assert [(r["action"], r["dry_run"]) for r in rows] == [
        ("configured", False), ("unchanged", False)
    ]  # fmt: skip
    assert "+      replicas: 4" in rows[0]["diff"]
    live = standin.get("dynamographdeployments", "default", "llama")
    assert live is not None and live["spec"]["services"]["decode"]["replicas"] == 4


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--apply"], "--apply goes with --diff"),
        (["--diff", "--apply", "--dry-run", "server"], "--apply cannot be combined with --dry-run"),
        (["--diff", "--wait"], "--wait cannot be combined with a --diff preview"),
    ],
)
def test_diff_apply_flag_misuse_is_a_usage_error(
    tmp_path: Path, kubeconfig: Path, standin: StandIn, flags: list[str], message: str
) -> None:
    args = ("--kubeconfig", kubeconfig, "--timeout", "1", *flags)
    out = run_cli("apply", _manifest(tmp_path, 1), *args)
    assert out.exit_code == 2 and message in out.stderr
    assert standin.get("dynamographdeployments", "default", "llama") is None


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
    """The controller sets Ready right after the wait's first read of the DGD (no timer: it
    cannot fire before the object exists, nor before the wait has seen it not Ready)."""
    standin.on_get(
        "dynamographdeployments", "default", "llama",
        lambda: standin.set_condition(
            "dynamographdeployments", "default", "llama", "Ready", "True", "Up"
        ),
    )  # fmt: skip
    out = run_cli(
        "apply", _manifest(tmp_path, 1), "--kubeconfig", kubeconfig, "--wait",
        "--timeout", "10", "--poll-interval", "0.05", "-o", "json",
    )  # fmt: skip
    assert out.exit_code == 0, out.stderr
    ref = "DynamoGraphDeployment/llama in namespace default"
    waiting = out.stderr.index(f"{ref}: no conditions yet")
    assert out.stderr.index(f"{ref}: Ready") > waiting


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


def test_delete_leaves_objects_that_are_not_ours(
    tmp_path: Path, kubeconfig: Path, standin: StandIn
) -> None:
    """Issue 13: delete removes only objects labelled as dynamo-plan's for this DGD; a Role of
    the same name that someone else created (no labels), or another DGD's, stays."""
    foreign = DGD.format(replicas=1).replace(
        "  labels: {app.kubernetes.io/managed-by: dynamo-plan, dynamo-plan/dgd: llama}\nrules",
        "rules",
    )
    other = tmp_path / "foreign.yaml"
    other.write_text(foreign)
    assert run_cli("apply", other, "--kubeconfig", kubeconfig).exit_code == 0
    out = run_cli("delete", _manifest(tmp_path, 1), "--kubeconfig", kubeconfig, "-o", "json")
    assert out.exit_code == 0, out.stderr
    rows = out.json()
    assert [(r["kind"], r["action"]) for r in rows] == [
        ("Role", "skipped"),
        ("DynamoGraphDeployment", "deleted"),
    ]
    assert "app.kubernetes.io/managed-by=dynamo-plan" in rows[0]["note"]
    assert "note" not in rows[1]
    assert standin.get("roles", "default", "planner") is not None
    assert standin.get("dynamographdeployments", "default", "llama") is None
    # labelled as dynamo-plan's, but for another DGD
    canary = DGD.format(replicas=1).replace("dynamo-plan/dgd: llama", "dynamo-plan/dgd: canary")
    other.write_text(canary)
    assert run_cli("apply", other, "--kubeconfig", kubeconfig, "--force-conflicts").exit_code == 0
    table = run_cli("delete", _manifest(tmp_path, 1), "--kubeconfig", kubeconfig)
    assert table.exit_code == 0, table.stderr
    assert "Role/planner -n default skipped" in table.stdout
    assert "DynamoGraphDeployment/llama -n default skipped" in table.stdout
    assert "dynamo-plan/dgd=llama" in table.stdout
    assert standin.get("dynamographdeployments", "default", "llama") is not None


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


@pytest.mark.parametrize("command", ["apply", "delete"])
@pytest.mark.parametrize(
    ("content", "hint"),
    [(b"\x89PNG\r\n\x1a\n\x00\x00", ""), (DGD.format(replicas=1).encode("utf-16"), "UTF-16?")],
    ids=["binary", "utf16"],
)
def test_manifest_that_is_not_utf8_is_one_line_exit_1(
    tmp_path: Path, kubeconfig: Path, standin: StandIn, command: str, content: bytes, hint: str
) -> None:
    """Issue 11: a binary or UTF-16 manifest was a UnicodeDecodeError traceback."""
    path = tmp_path / "manifest.yaml"
    path.write_bytes(content)
    before = len(standin.requests)
    r = run_cli(command, path, "--kubeconfig", kubeconfig, "-o", "json")
    assert r.exit_code == 1
    assert r.stdout == ""
    assert r.stderr.startswith(f"error: {path}:1: not UTF-8 text (byte ")
    assert hint in r.stderr and r.stderr.strip().count("\n") == 0
    assert [m for m, _ in standin.requests[before:] if m in ("PATCH", "DELETE")] == []


def test_binary_kubeconfig_is_bad_input_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff")
    out = run_cli("apply", _manifest(tmp_path, 1), "--kubeconfig", config)
    assert out.exit_code == 1, out.stderr
    assert out.stderr.count("\n") == 1 and "not UTF-8 text" in out.stderr
    assert "codec" not in out.stderr and "Traceback" not in out.stderr


def test_delete_removes_what_apply_applied_without_labels(
    tmp_path: Path, kubeconfig: Path, standin: StandIn
) -> None:
    """A user's own manifest (no labels) applied with `dynamo-plan apply` is labelled as this
    project's by the apply, so `dynamo-plan delete` of the same file removes it again."""
    plain = DGD.format(replicas=1).replace(
        "  labels: {app.kubernetes.io/managed-by: dynamo-plan, dynamo-plan/dgd: llama}\n", ""
    )
    assert "labels" not in plain.split("kind: Role")[1].split("rules")[0]
    path = tmp_path / "plain.yaml"
    path.write_text(plain)
    assert run_cli("apply", path, "--kubeconfig", kubeconfig).exit_code == 0
    live = standin.get("roles", "default", "planner")
    assert live is not None
    assert live["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "dynamo-plan"}
    out = run_cli("delete", path, "--kubeconfig", kubeconfig, "-o", "json")
    assert out.exit_code == 0, out.stderr
    assert {r["action"] for r in out.json() if r["kind"] == "Role"} == {"deleted"}
    assert standin.get("roles", "default", "planner") is None
