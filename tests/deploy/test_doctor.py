"""``doctor`` checks against the Kubernetes API stand-in (real HTTP through KubeClient)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dynamo_plan.adapters.kubernetes import KubeClient
from dynamo_plan.deploy.doctor import (
    check_crds,
    check_gpus,
    check_planner_rbac,
    check_prometheus,
    check_pull_secret,
    check_stuck_dgdrs,
    forbidden,
    run_checks,
)
from dynamo_plan.errors import ClusterError
from tests.k8s_standin import StandIn

NS = "prod"


@pytest.fixture
def kube(standin: StandIn, tmp_path: Path) -> KubeClient:
    return KubeClient(kubeconfig=standin.kubeconfig(tmp_path / "kubeconfig", NS), retries=0)


def create(kube: KubeClient, path: str, body: dict[str, Any]) -> None:
    """POST an object (JSON text as YAML: KubeClient serialises the body itself)."""
    kube.request("POST", path, body=body, content_type="application/yaml")


def set_state(standin: StandIn, name: str, state: str) -> None:
    """Write a DGDR's ``status.state`` as its controller would."""
    with standin.store.lock:
        for key, obj in standin.store.objects.items():
            if key[2:] == ("dynamographdeploymentrequests", NS, name):
                obj["status"] = {"state": state}


def healthy(standin: StandIn, kube: KubeClient) -> None:
    """CRDs, two GPU nodes, the pull secret; RBAC allowed (the stand-in's default)."""
    standin.install_crd("dynamographdeployments")
    standin.install_crd("dynamographdeploymentrequests")
    standin.add_node("gpu-a", gpus=8, product="NVIDIA-H200")
    standin.add_node("gpu-b", gpus=4, product="NVIDIA-H100-80GB-HBM3")
    standin.add_node("cpu-a")
    create(
        kube,
        f"/api/v1/namespaces/{NS}/secrets",
        body={
            "metadata": {"name": "nvcr-imagepullsecret"},
            "type": "kubernetes.io/dockerconfigjson",
        },
    )


class _Ready(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"Prometheus Server is Ready.\n" if self.path == "/-/ready" else b"no"
        self.send_response(200 if self.path == "/-/ready" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def prometheus() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Ready)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_all_green(standin: StandIn, kube: KubeClient, prometheus: str) -> None:
    healthy(standin, kube)
    checks = run_checks(kube, NS, prometheus)
    assert [c.name for c in checks] == [
        "cluster", "crds", "gpus", "image-pull-secret", "prometheus", "planner-rbac", "dgdr",
    ]  # fmt: skip
    assert all(c.ok is True for c in checks), checks
    assert standin.url in checks[0].detail
    gpus = checks[2].detail
    assert "12 GPU(s)" in gpus and "on 2 node(s)" in gpus
    assert "NVIDIA-H200" in gpus and "NVIDIA-H100-80GB-HBM3" in gpus


def test_crds_missing(standin: StandIn, kube: KubeClient) -> None:
    standin.install_crd("dynamographdeployments")
    check = check_crds(kube)
    assert check.ok is False
    assert "dynamographdeploymentrequests.nvidia.com" in check.detail
    assert "dynamographdeployments.nvidia.com," not in check.detail
    assert "Helm chart" in check.fix


def test_no_gpus(standin: StandIn, kube: KubeClient) -> None:
    standin.add_node("cpu-a")
    check = check_gpus(kube)
    assert check.ok is False and "on 1 node(s)" in check.detail
    assert "GPU operator" in check.fix


def test_nodes_forbidden_is_a_failed_check(standin: StandIn, kube: KubeClient) -> None:
    standin.forbidden.add("nodes")
    check = check_gpus(kube)
    assert check.ok is False and "needs list nodes" in check.detail


def test_forbidden_is_read_from_the_status_not_the_text() -> None:
    assert forbidden(ClusterError("refused", status=403, reason="Forbidden"))
    assert not forbidden(ClusterError("GET /x → 403 Forbidden: quoted text, no status"))
    assert not forbidden(ClusterError("down", status=503, reason="ServiceUnavailable"))


def test_pull_secret_missing_then_skipped(kube: KubeClient) -> None:
    missing = check_pull_secret(kube, NS, "nvcr-imagepullsecret")
    assert missing.ok is False and "nvcr-imagepullsecret not in prod" in missing.detail
    assert "docker-registry nvcr-imagepullsecret -n prod" in missing.fix
    assert check_pull_secret(kube, NS, "").ok is None


def test_prometheus_up_down_and_unset(prometheus: str) -> None:
    assert check_prometheus(prometheus).ok is True
    down = check_prometheus(closed_port_url())
    assert down.ok is False and "ConnectError" in down.detail
    assert check_prometheus(None).ok is None


def test_rbac_denied(standin: StandIn, kube: KubeClient) -> None:
    standin.denied |= {("patch", "dynamographdeployments"), ("watch", "dynamographdeployments")}
    check = check_planner_rbac(kube, NS)
    assert check.ok is False
    assert check.detail == "denied in prod: watch, patch dynamographdeployments"


def test_stuck_dgdr_shows_the_newest_event(standin: StandIn, kube: KubeClient) -> None:
    base = f"/apis/nvidia.com/v1alpha1/namespaces/{NS}/dynamographdeploymentrequests"
    for name, state in (("stuck", "Profiling"), ("done", "Ready")):
        spec = {"model": "m", "backend": "vllm", "profilingConfig": {"profilerImage": "p"}}
        create(kube, base, {"metadata": {"name": name}, "spec": spec})  # what the CRD requires
        set_state(standin, name, state)
    events = [
        ("stuck", "Scheduled", "profiler pod scheduled", "2026-01-01T00:00:00Z"),
        (
            "stuck",
            "FailedScheduling",
            "0/3 nodes: insufficient nvidia.com/gpu",
            "2026-01-01T00:05:00Z",
        ),
        ("done", "Ready", "deployed", "2026-01-01T00:09:00Z"),
    ]
    for i, (obj, reason, message, when) in enumerate(events):
        create(
            kube,
            f"/api/v1/namespaces/{NS}/events",
            {
                "metadata": {"name": f"ev{i}"},
                "involvedObject": {"kind": "DynamoGraphDeploymentRequest", "name": obj},
                "reason": reason, "message": message, "lastTimestamp": when,
            },
        )  # fmt: skip
    check = check_stuck_dgdrs(kube, NS)
    assert check.ok is False
    assert check.detail.startswith(
        "stuck: stuck (Profiling): FailedScheduling: 0/3 nodes: insufficient nvidia.com/gpu; "
        "Scheduled: profiler pod scheduled"
    )
    assert "done" not in check.detail and "deployed" not in check.detail


def test_no_dgdrs_is_healthy(kube: KubeClient) -> None:
    assert check_stuck_dgdrs(kube, NS).ok is True


def test_unreachable_cluster_skips_the_rest(standin: StandIn, tmp_path: Path) -> None:
    config = standin.kubeconfig(tmp_path / "kubeconfig")
    config.write_text(config.read_text().replace(standin.url, closed_port_url()))
    checks = run_checks(KubeClient(kubeconfig=config, retries=0), NS, None)
    assert checks[0].ok is False and "cannot reach" in checks[0].detail
    assert checks[0].unreachable and "unreachable" not in checks[0].row()  # exit 3, not 1
    assert [c.ok for c in checks[1:]] == [None] * 6


def test_only_a_service_that_did_not_answer_is_unreachable(
    standin: StandIn, kube: KubeClient
) -> None:
    assert check_prometheus(closed_port_url()).unreachable
    assert not check_crds(kube).unreachable  # missing CRDs: the cluster answered
    standin.forbidden.add("nodes")
    assert not check_gpus(kube).unreachable  # 403: an answer, a permission to grant
