"""The stand-in's ``batch/v1`` Jobs (``/status`` subresource) and ``labelSelector`` on lists,
checked through the official client's typed APIs (BatchV1Api, CoreV1Api)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.k8s_standin import StandIn


@pytest.fixture
def api(standin: StandIn, tmp_path: Path) -> client.ApiClient:
    return config.new_client_from_config(str(standin.kubeconfig(tmp_path / "kubeconfig")))


def _job(name: str, labels: dict[str, str] | None = None) -> dict:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox", "args": ["true"]}],
                }
            },
        },
    }


def test_job_create_read_status_and_delete(api: client.ApiClient) -> None:
    batch = client.BatchV1Api(api)
    made = batch.create_namespaced_job("default", _job("j1"))
    assert made.metadata.uid and made.spec.backoff_limit == 0
    # a write to the main resource cannot set status; /status can, and keeps the spec
    body = _job("j1")
    body["status"] = {"succeeded": 1}
    batch.replace_namespaced_job("j1", "default", body)
    assert batch.read_namespaced_job("j1", "default").status is None
    patch = {"status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}}
    batch.patch_namespaced_job_status(
        "j1", "default", patch, _content_type="application/merge-patch+json"
    )
    job = batch.read_namespaced_job_status("j1", "default")
    assert job.status.succeeded == 1 and job.status.conditions[0].type == "Complete"
    assert job.spec.template.spec.containers[0].image == "busybox"
    batch.delete_namespaced_job("j1", "default", propagation_policy="Background")
    with pytest.raises(ApiException) as e:
        batch.read_namespaced_job("j1", "default")
    assert e.value.status == 404


def test_duplicate_job_is_already_exists(api: client.ApiClient) -> None:
    batch = client.BatchV1Api(api)
    batch.create_namespaced_job("default", _job("j1"))
    with pytest.raises(ApiException) as e:
        batch.create_namespaced_job("default", _job("j1"))
    assert e.value.status == 409 and json.loads(e.value.body)["reason"] == "AlreadyExists"


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("run=a", ["j-a1", "j-a2"]),
        ("run==a,role=prefill", ["j-a1"]),
        ("run!=a", ["j-b", "j-none"]),
        ("run", ["j-a1", "j-a2", "j-b"]),
        ("!run", ["j-none"]),
    ],
)
def test_label_selector_filters_lists(
    api: client.ApiClient, selector: str, expected: list[str]
) -> None:
    batch = client.BatchV1Api(api)
    for name, labels in (
        ("j-a1", {"run": "a", "role": "prefill"}),
        ("j-a2", {"run": "a", "role": "decode"}),
        ("j-b", {"run": "b"}),
        ("j-none", {}),
    ):
        batch.create_namespaced_job("default", _job(name, labels))
    listed = batch.list_namespaced_job("default", label_selector=selector)
    assert sorted(j.metadata.name for j in listed.items) == expected


def test_label_selector_on_nodes(standin: StandIn, api: client.ApiClient) -> None:
    standin.add_node("a", gpus=8, product="NVIDIA-H200")
    standin.add_node("b")
    nodes = client.CoreV1Api(api).list_node(label_selector="nvidia.com/gpu.product=NVIDIA-H200")
    assert [n.metadata.name for n in nodes.items] == ["a"]
