"""The loopback Kubernetes API stand-in, checked through the official ``kubernetes`` client."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, dynamic, watch
from kubernetes.client.exceptions import ApiException

from tests.k8s_standin import StandIn

GROUP, VERSION, PLURAL = "nvidia.com", "v1alpha1", "dynamographdeployments"


@pytest.fixture
def api(standin: StandIn, tmp_path: Path) -> client.ApiClient:
    return config.new_client_from_config(str(standin.kubeconfig(tmp_path / "kubeconfig")))


def _dgd(replicas: int = 1) -> dict:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "DynamoGraphDeployment",
        "metadata": {"name": "llama"},
        "spec": {"services": {"decode": {"replicas": replicas}}},
    }


def _message(e: pytest.ExceptionInfo[ApiException]) -> str:
    body = json.loads(e.value.body)
    assert body["kind"] == "Status" and body["code"] == e.value.status
    return str(body["message"])


def _apply(api: client.ApiClient, body: dict, manager: str, force: bool = False) -> dict:
    return client.CustomObjectsApi(api).patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, body["metadata"]["name"], body,
        field_manager=manager, force=force,
        _content_type="application/apply-patch+yaml",
    )  # fmt: skip


def test_discovery_serves_the_dynamic_client(api: client.ApiClient) -> None:
    dyn = dynamic.DynamicClient(api)
    dgds = dyn.resources.get(api_version=f"{GROUP}/{VERSION}", kind="DynamoGraphDeployment")
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    assert dgds.namespaced and dgds.name == PLURAL
    cms.create(body={"metadata": {"name": "cm"}, "data": {"k": "v"}}, namespace="default")
    assert [i.metadata.name for i in cms.get(namespace="default").items] == ["cm"]


def test_create_get_404_and_already_exists(api: client.ApiClient) -> None:
    crd = client.CustomObjectsApi(api)
    with pytest.raises(ApiException) as e:
        crd.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "llama")
    assert (
        e.value.status == 404
        and _message(e) == 'dynamographdeployments.nvidia.com "llama" not found'
    )
    made = crd.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, _dgd())
    meta = made["metadata"]
    assert meta["generation"] == 1 and meta["uid"] and meta["creationTimestamp"]
    with pytest.raises(ApiException) as e:
        crd.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, _dgd())
    assert e.value.status == 409 and "already exists" in _message(e)


def test_stale_resource_version_is_409(api: client.ApiClient) -> None:
    crd = client.CustomObjectsApi(api)
    first = crd.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, _dgd())
    first["spec"]["services"]["decode"]["replicas"] = 3
    second = crd.replace_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "llama", first)
    assert second["metadata"]["generation"] == 2
    assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    with pytest.raises(ApiException) as e:  # first's resourceVersion is now stale
        crd.replace_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "llama", first)
    assert e.value.status == 409 and "has been modified" in _message(e)


def test_server_side_apply_conflict_names_the_owner_and_force_takes_over(
    api: client.ApiClient,
) -> None:
    _apply(api, _dgd(1), "dynamo-plan")
    first = _apply(api, _dgd(1), "dynamo-plan")
    again = _apply(api, _dgd(1), "dynamo-plan")  # a no-op apply keeps the resourceVersion
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    _apply(api, _dgd(4), "planner", force=True)
    with pytest.raises(ApiException) as e:
        _apply(api, _dgd(2), "dynamo-plan")
    assert e.value.status == 409
    message = _message(e)
    assert 'conflict with "planner"' in message and ".spec.services.decode.replicas" in message
    forced = _apply(api, _dgd(2), "dynamo-plan", force=True)
    assert forced["spec"]["services"]["decode"]["replicas"] == 2
    owners = {m["manager"] for m in forced["metadata"]["managedFields"]}
    assert owners == {"dynamo-plan"}


def test_apply_removes_fields_the_manager_no_longer_sets(api: client.ApiClient) -> None:
    body = _dgd(1)
    body["spec"]["backendFramework"] = "vllm"
    _apply(api, body, "dynamo-plan")
    out = _apply(api, _dgd(1), "dynamo-plan")
    assert "backendFramework" not in out["spec"]


def test_status_subresource_and_merge_patch(api: client.ApiClient, standin: StandIn) -> None:
    crd = client.CustomObjectsApi(api)
    crd.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, _dgd())
    ready = {"type": "Ready", "status": "True", "reason": "AllReady", "message": "",
             "lastTransitionTime": "2026-01-01T00:00:00Z"}  # fmt: skip
    status = {"status": {"state": "successful", "conditions": [ready]}}
    out = crd.patch_namespaced_custom_object_status(
        GROUP, VERSION, "default", PLURAL, "llama", status,
        _content_type="application/merge-patch+json",
    )  # fmt: skip
    assert out["status"] == status["status"] and out["metadata"]["generation"] == 1
    # the main resource ignores status; a merge patch with null deletes a key
    patched = crd.patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "llama",
        {"status": None, "spec": {"services": {"decode": {"replicas": None}}}},
        _content_type="application/merge-patch+json",
    )  # fmt: skip
    assert patched["status"] == status["status"]
    assert patched["spec"]["services"] == {"decode": {}}  # RFC 7386 keeps the emptied map
    assert patched["metadata"]["generation"] == 2


def test_status_apply_to_a_missing_object_is_404(api: client.ApiClient) -> None:
    """As the API server: server-side apply to the status of an object that does not exist."""
    with pytest.raises(ApiException) as e:
        client.CustomObjectsApi(api).patch_namespaced_custom_object_status(
            GROUP, VERSION, "default", PLURAL, "llama",
            {**_dgd(), "status": {"conditions": []}},
            field_manager="t", _content_type="application/apply-patch+yaml",
        )  # fmt: skip
    assert e.value.status == 404 and "not found" in _message(e)


def test_dry_run_does_not_persist(api: client.ApiClient, standin: StandIn) -> None:
    crd = client.CustomObjectsApi(api)
    out = crd.create_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, _dgd(), dry_run="All"
    )
    assert out["metadata"]["name"] == "llama"
    assert standin.get(PLURAL, "default", "llama") is None


def test_delete_and_injected_failures(api: client.ApiClient, standin: StandIn) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map("default", {"metadata": {"name": "cm"}})
    standin.inject_failures(503)
    with pytest.raises(ApiException) as e:
        core.read_namespaced_config_map("cm", "default")
    assert e.value.status == 503
    core.delete_namespaced_config_map("cm", "default")
    with pytest.raises(ApiException) as e:
        core.delete_namespaced_config_map("cm", "default")
    assert e.value.status == 404


def test_watch_streams_added_modified_and_deleted(api: client.ApiClient, standin: StandIn) -> None:
    crd = client.CustomObjectsApi(api)
    crd.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, _dgd())

    def controller() -> None:
        standin.set_condition(PLURAL, "default", "llama", "Ready", "True", "Up")
        crd.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "llama")

    seen: list[tuple[str, bool]] = []
    stream = watch.Watch().stream(
        crd.list_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, timeout_seconds=5
    )
    for event in stream:
        conditions = (event["object"].get("status") or {}).get("conditions", [])
        seen.append((event["type"], bool(conditions)))
        if len(seen) == 1:
            threading.Thread(target=controller).start()
        if event["type"] == "DELETED":
            break
    assert seen == [("ADDED", False), ("MODIFIED", True), ("DELETED", True)]


def test_set_condition_on_a_missing_object_is_an_error(standin: StandIn) -> None:
    """Never dropped silently: a condition set before the object exists is a test's race."""
    with pytest.raises(LookupError, match="no dynamographdeployments default/llama"):
        standin.set_condition(PLURAL, "default", "llama", "Ready", "True", "Up")


def test_on_get_acts_once_after_the_first_read_that_finds_the_object(
    api: client.ApiClient, standin: StandIn
) -> None:
    crd = client.CustomObjectsApi(api)
    ran: list[int] = []
    standin.on_get(PLURAL, "default", "llama", lambda: ran.append(1))
    with pytest.raises(ApiException):  # 404: not yet created, the action waits
        crd.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "llama")
    crd.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, _dgd())
    crd.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)  # a list is no read
    assert ran == []
    standin.on_get(
        PLURAL, "default", "llama",
        lambda: standin.set_condition(PLURAL, "default", "llama", "Ready", "True", "Up"),
    )  # fmt: skip
    seen = crd.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "llama")
    assert ran == [1] and "status" not in seen  # the reader saw the object before the action
    again = crd.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "llama")
    assert again["status"]["conditions"] == [{"type": "Ready", "status": "True", "reason": "Up"}]
    crd.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "llama")
    assert ran == [1]  # once


# -- the release's CRDs: served versions, /scale, validation --------------------------------------
ADAPTERS = "dynamographdeploymentscalingadapters"


def _adapter(replicas: Any = 1) -> dict:
    return {
        "apiVersion": f"{GROUP}/v1beta1",
        "kind": "DynamoGraphDeploymentScalingAdapter",
        "metadata": {"name": "llama-decode"},
        "spec": {"dgdRef": {"name": "llama", "componentName": "decode"}, "replicas": replicas},
    }


def test_scale_subresource_at_the_crds_paths(api: client.ApiClient, standin: StandIn) -> None:
    crd = client.CustomObjectsApi(api)
    crd.create_namespaced_custom_object(GROUP, "v1beta1", "default", ADAPTERS, _adapter(2))
    scale = crd.get_namespaced_custom_object_scale(GROUP, "v1beta1", "default", ADAPTERS,
                                                   "llama-decode")  # fmt: skip
    assert (scale["kind"], scale["spec"], scale["status"]) == ("Scale", {"replicas": 2},
                                                               {"replicas": 0})  # fmt: skip
    out = crd.patch_namespaced_custom_object_scale(
        GROUP, "v1beta1", "default", ADAPTERS, "llama-decode", {"spec": {"replicas": 4}},
        _content_type="application/merge-patch+json",
    )  # fmt: skip
    assert out["spec"]["replicas"] == 4
    live = standin.get(ADAPTERS, "default", "llama-decode")
    assert live is not None and live["spec"]["replicas"] == 4  # specReplicasPath: .spec.replicas
    assert live["metadata"]["generation"] == 2
    stale = {**scale, "spec": {"replicas": 5}}  # a PUT with the old resourceVersion
    with pytest.raises(ApiException) as e:
        crd.replace_namespaced_custom_object_scale(GROUP, "v1beta1", "default", ADAPTERS,
                                                   "llama-decode", stale)  # fmt: skip
    assert e.value.status == 409
    with pytest.raises(ApiException) as e:  # the DGD's CRD declares no scale subresource
        crd.get_namespaced_custom_object_scale(GROUP, VERSION, "default", PLURAL, "llama")
    assert e.value.status == 404


def test_objects_the_crd_does_not_admit_are_refused_with_422(api: client.ApiClient) -> None:
    crd = client.CustomObjectsApi(api)
    body = _adapter("two")
    body["spec"]["surprise"] = True
    with pytest.raises(ApiException) as e:
        crd.create_namespaced_custom_object(GROUP, "v1beta1", "default", ADAPTERS, body)
    status = json.loads(e.value.body)
    assert (e.value.status, status["kind"], status["reason"]) == (422, "Status", "Invalid")
    fields = sorted(c["field"] for c in status["details"]["causes"])
    assert fields == ["spec.replicas", "spec.surprise"]
    assert "is invalid" in status["message"]
    with pytest.raises(ApiException) as e:  # a v1alpha1 field in a v1beta1 object
        dgd = _dgd()
        dgd["apiVersion"] = f"{GROUP}/v1beta1"
        crd.create_namespaced_custom_object(GROUP, "v1beta1", "default", PLURAL, dgd)
    assert e.value.status == 422 and "unknown field 'services'" in _message(e)


def test_validation_can_be_turned_off_per_instance(tmp_path: Path) -> None:
    from tests.k8s_standin import running_standin

    with running_standin(validate=False) as standin:
        api = config.new_client_from_config(str(standin.kubeconfig(tmp_path / "kc")))
        crd = client.CustomObjectsApi(api)
        out = crd.create_namespaced_custom_object(GROUP, "v1beta1", "default", ADAPTERS,
                                                  _adapter("two"))  # fmt: skip
        assert out["spec"]["replicas"] == "two"


def test_each_release_serves_what_its_crds_declare(tmp_path: Path) -> None:
    from tests.k8s_standin import running_standin

    for release, versions in (("0.6", ["v1alpha1"]), ("0.9", ["v1alpha1"]),
                              ("1.5", ["v1beta1", "v1alpha1"])):  # fmt: skip
        with running_standin(release) as standin:
            api = config.new_client_from_config(str(standin.kubeconfig(tmp_path / "kc")))
            groups = client.ApisApi(api).get_api_versions().groups
            group = next(g for g in groups if g.name == GROUP)
            assert [v.version for v in group.versions] == versions
            names = {
                r.name
                for v in versions
                for r in client.CustomObjectsApi(api).get_api_resources(GROUP, v).resources
            }
            assert (f"{ADAPTERS}/scale" in names) == (release != "0.6")
            assert f"{PLURAL}/status" in names and f"{PLURAL}/scale" not in names
            standin.install_crd(PLURAL)  # the release's real CRD, with its schema
            installed = standin.crds[f"{PLURAL}.{GROUP}"]
            assert [v["name"] for v in installed["spec"]["versions"]] == sorted(versions)
            assert "openAPIV3Schema" in installed["spec"]["versions"][0]["schema"]
