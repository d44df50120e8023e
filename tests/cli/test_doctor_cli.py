"""``dynamo-plan doctor`` end to end: stand-in cluster, a local Prometheus, exit codes, JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

from dynamo_plan.adapters.kubernetes import KubeClient
from tests.conftest import run_cli
from tests.deploy.test_doctor import closed_port_url, healthy, prometheus
from tests.k8s_standin import StandIn

__all__ = ["prometheus"]  # the fixture, imported for these tests


@pytest.fixture
def kubeconfig(standin: StandIn, tmp_path: Path) -> Path:
    return standin.kubeconfig(tmp_path / "kubeconfig", "prod")


def test_all_green_json_exit_0(
    standin: StandIn, kubeconfig: Path, prometheus: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    healthy(standin, KubeClient(kubeconfig=kubeconfig))
    monkeypatch.setenv("PROMETHEUS_ENDPOINT", prometheus)
    out = run_cli("doctor", "--kubeconfig", kubeconfig, "-o", "json")
    assert out.exit_code == 0, out.stdout + out.stderr
    report = out.json()
    assert report["ok"] is True
    assert [c["ok"] for c in report["checks"]] == [True] * 7
    assert set(report["checks"][0]) == {"name", "ok", "detail", "fix"}


def test_failures_exit_1_with_fixes_in_the_table(
    standin: StandIn, kubeconfig: Path, prometheus: str
) -> None:
    """What the cluster answered is wrong (missing CRDs, refused permissions): exit 1; both
    services answered (an unreachable one is exit 3, below)."""
    standin.forbidden.add("nodes")
    standin.denied.add(("*", "dynamographdeployments"))
    args = ("doctor", "--kubeconfig", kubeconfig, "--prometheus-url", prometheus)
    report = run_cli(*args, "-n", "other", "--image-pull-secret", "", "-o", "json")
    assert report.exit_code == 1
    by_name = {c["name"]: c for c in report.json()["checks"]}
    assert report.json()["ok"] is False
    assert by_name["crds"]["ok"] is False and "Helm" in by_name["crds"]["fix"]
    assert "needs list nodes" in by_name["gpus"]["detail"]
    assert by_name["image-pull-secret"]["ok"] is None
    assert by_name["prometheus"]["ok"] is True
    assert by_name["planner-rbac"]["detail"].startswith("denied in other: get, list, watch, patch")
    table = run_cli(*args)
    assert table.exit_code == 1
    assert "✗ gpus: forbidden: needs list nodes" in table.stdout
    assert "fix: install the Dynamo platform Helm chart" in table.stdout
    assert "✓ cluster" in table.stdout


def test_unreachable_cluster_is_one_failed_line_not_a_traceback(tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: '{closed_port_url()}'}}}}]\n"
        "users: [{name: u, user: {}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    out = run_cli("doctor", "--kubeconfig", config, "-o", "json")
    assert out.exit_code == 3  # an outside service failed (issue 11: was 1)
    checks = out.json()["checks"]
    assert checks[0]["ok"] is False and "cannot reach" in checks[0]["detail"]
    assert all(c["ok"] is None for c in checks[1:])
    assert out.stderr == "error: doctor: no usable answer from cluster (see the report)\n"
    missing = run_cli("doctor", "--kubeconfig", tmp_path / "absent")
    assert missing.exit_code == 3 and "✗ cluster" in missing.stdout


def test_unreachable_prometheus_exits_3(standin: StandIn, kubeconfig: Path) -> None:
    """Issue 11: a cluster that answers and a Prometheus that does not exited 1."""
    healthy(standin, KubeClient(kubeconfig=kubeconfig))
    url = closed_port_url()
    out = run_cli("doctor", "--kubeconfig", kubeconfig, "--prometheus-url", url, "-o", "json")
    assert out.exit_code == 3
    by_name = {c["name"]: c for c in out.json()["checks"]}
    assert (
        by_name["prometheus"]["ok"] is False and f"{url}/-/ready" in by_name["prometheus"]["detail"]
    )
    assert all(c["ok"] is True for n, c in by_name.items() if n != "prometheus")
    assert out.stderr == "error: doctor: no usable answer from prometheus (see the report)\n"
