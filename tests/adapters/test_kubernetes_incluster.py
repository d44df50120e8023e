"""KubeClient inside a pod with no kubeconfig: the service account's token, CA and namespace."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes.config import incluster_config

from dynamo_plan.adapters import kubernetes as kube_mod
from dynamo_plan.adapters.kubernetes import KubeClient
from dynamo_plan.errors import ClusterError


@pytest.fixture
def pod(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A pod's environment: service host/port set, no $KUBECONFIG, no ~/.kube/config."""
    sa = tmp_path / "serviceaccount"
    sa.mkdir()
    (sa / "token").write_text("secret-token")
    (sa / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    (sa / "namespace").write_text("profiling\n")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(sa / "token"))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(sa / "ca.crt"))
    monkeypatch.setattr(kube_mod, "SERVICE_ACCOUNT_DIR", sa)
    return sa


def test_in_cluster_uses_the_service_account(pod: Path) -> None:
    client = KubeClient().connect()
    assert client.server == "https://10.0.0.1:443"
    assert client.default_namespace == "profiling"


def test_in_cluster_without_a_token_is_a_cluster_error(pod: Path) -> None:
    (pod / "token").unlink()
    with pytest.raises(ClusterError, match="in-cluster configuration"):
        KubeClient().connect()


def test_a_kubeconfig_wins_over_the_pod(pod: Path, tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="not found"):
        KubeClient(kubeconfig=tmp_path / "missing").connect()
