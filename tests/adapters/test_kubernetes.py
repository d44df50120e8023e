"""The typed surface of KubeClient against the Kubernetes API stand-in (real HTTP), and its
retries (urllib3 ``Retry`` for 429/5xx honouring ``Retry-After``) against a tiny loopback server.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dynamo_plan.adapters.kubernetes import (
    CRD,
    EVENT,
    KINDS,
    NODE,
    RETRY_AFTER_MAX_S,
    SCALING_ADAPTERS,
    SECRET,
    SELF_SUBJECT_ACCESS_REVIEW,
    ApplyConflict,
    KubeClient,
    allocatable_gpus,
    conflict_managers,
)
from dynamo_plan.errors import ClusterError, InputError
from tests.k8s_standin import StandIn

NS = "team"
DGD = KINDS[("nvidia.com/v1alpha1", "DynamoGraphDeployment")]
CM = KINDS[("v1", "ConfigMap")]
JOB = KINDS[("batch/v1", "Job")]


@pytest.fixture
def delays() -> list[float]:
    return []


@pytest.fixture
def kube(standin: StandIn, tmp_path: Path, delays: list[float]) -> KubeClient:
    path = standin.kubeconfig(tmp_path / "kubeconfig", NS)
    return KubeClient(kubeconfig=path, backoff_s=0.01, sleep=delays.append).connect()


def _dgd(name: str = "llama", replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": DGD.api_version,
        "kind": DGD.kind,
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "llama"}},
        "spec": {"services": {"decode": {"replicas": replicas}}},
    }


def _cm(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": labels or {}}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}}


# -- the typed surface ------------------------------------------------------------------------
def test_paths_namespaced_and_cluster_scoped() -> None:
    assert KubeClient.path(DGD, "a b", "x/y", "status") == (
        "/apis/nvidia.com/v1alpha1/namespaces/a%20b/dynamographdeployments/x%2Fy/status"
    )
    assert KubeClient.path(NODE, None) == "/api/v1/nodes"
    assert KubeClient.path(CRD, None, "c.nvidia.com") == (
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/c.nvidia.com"
    )
    with pytest.raises(ValueError, match="namespaced"):
        KubeClient.path(CM, None)


def test_version_get_and_cluster_scoped_reads(kube: KubeClient, standin: StandIn) -> None:
    assert kube.version()["gitVersion"] == "v1.31.0-standin"
    name = "dynamographdeploymentrequests.nvidia.com"
    assert kube.get(CRD, None, name) is None
    standin.install_crd()
    assert (kube.get(CRD, None, name) or {})["metadata"]["name"] == name
    standin.add_node("gpu-a", gpus=8, product="NVIDIA-H200")
    standin.add_node("cpu-a")
    nodes = kube.list_objects(NODE) or []
    assert [allocatable_gpus(n) for n in nodes] == [8, 0]


def test_create_list_with_selectors_and_delete(kube: KubeClient, standin: StandIn) -> None:
    made = kube.create(CM, NS, _cm("a", {"run": "1"})) or {}
    assert made["metadata"]["resourceVersion"]
    kube.create(CM, NS, _cm("b", {"run": "2"}))
    assert [o["metadata"]["name"] for o in kube.list_objects(CM, NS) or []] == ["a", "b"]
    only = kube.list_objects(CM, NS, label_selector="run=2") or []
    assert [o["metadata"]["name"] for o in only] == ["b"]
    by_field = kube.list_objects(CM, NS, field_selector="metadata.name=a") or []
    assert [o["metadata"]["name"] for o in by_field] == ["a"]
    assert kube.delete(CM, NS, "a", propagation="Background") is True
    assert kube.delete(CM, NS, "a") is False
    assert ("DELETE", f"/api/v1/namespaces/{NS}/configmaps/a") in standin.requests


def test_list_of_a_collection_not_served_is_none(kube: KubeClient) -> None:
    from dynamo_plan.adapters.kubernetes import KindInfo

    missing = KindInfo("example.com/v1", "Widget", "widgets")
    assert kube.list_objects(missing, NS) is None
    assert kube.list_objects(EVENT, NS) == []


def test_merge_patch_owns_what_it_changed_and_none_when_absent(kube: KubeClient) -> None:
    assert kube.merge_patch(DGD, NS, "llama", {"spec": {}}) is None
    kube.apply(DGD, NS, _dgd(), "dynamo-plan")
    patch = {"spec": {"services": {"decode": {"replicas": 3}}}}
    out = kube.merge_patch(DGD, NS, "llama", patch, field_manager="planner") or {}
    assert out["spec"]["services"]["decode"]["replicas"] == 3
    owners = {e["manager"] for e in out["metadata"]["managedFields"]}
    assert owners == {"dynamo-plan", "planner"}


def test_apply_status_writes_the_subresource_only(kube: KubeClient, standin: StandIn) -> None:
    kube.apply(DGD, NS, _dgd(), "dynamo-plan")
    body = {**_dgd(replicas=9), "status": {"state": "successful"}}
    out = kube.apply_status(DGD, NS, body, "dynamo-plan", force=True) or {}
    assert out["status"] == {"state": "successful"}
    live = standin.get("dynamographdeployments", NS, "llama") or {}
    assert live["spec"]["services"]["decode"]["replicas"] == 1  # spec untouched via /status


def test_self_subject_access_review_is_created(kube: KubeClient, standin: StandIn) -> None:
    standin.denied.add(("patch", "dynamographdeployments"))
    review = {
        "apiVersion": SELF_SUBJECT_ACCESS_REVIEW.api_version,
        "kind": SELF_SUBJECT_ACCESS_REVIEW.kind,
        "spec": {"resourceAttributes": {"verb": "patch", "resource": "dynamographdeployments"}},
    }
    out = kube.create(SELF_SUBJECT_ACCESS_REVIEW, None, review) or {}
    assert out["status"]["allowed"] is False


# -- ClusterError carries status and reason ---------------------------------------------------
def test_forbidden_carries_status_403_and_reason(kube: KubeClient, standin: StandIn) -> None:
    standin.forbidden.add("secrets")
    with pytest.raises(ClusterError) as e:
        kube.get(SECRET, NS, "pull")
    assert (e.value.status, e.value.reason) == (403, "Forbidden")
    assert "\n" not in str(e.value)


def test_exhausted_retries_carry_the_last_status(
    kube: KubeClient, standin: StandIn, delays: list[float]
) -> None:
    standin.inject_failures(*[503] * (kube.retries + 1))
    with pytest.raises(ClusterError) as e:
        kube.get(CM, NS, "x")
    assert (e.value.status, e.value.reason) == (503, "InternalError")
    assert delays == [0.01, 0.02, 0.04, 0.08]
    assert len(standin.requests) == kube.retries + 1


def test_unreachable_and_local_errors_have_no_status(standin: StandIn, tmp_path: Path) -> None:
    path = standin.kubeconfig(tmp_path / "kubeconfig")
    standin.httpd.server_close()
    with pytest.raises(ClusterError) as e:
        KubeClient(kubeconfig=path).get(CM, NS, "x")
    assert e.value.status is None and e.value.reason is None
    assert ClusterError("plain").status is None


def test_apply_on_a_missing_crd_is_404(kube: KubeClient) -> None:
    from dynamo_plan.adapters.kubernetes import KindInfo

    widget = KindInfo("example.com/v1", "Widget", "widgets")
    body = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    with pytest.raises(ClusterError, match="is the CRD installed") as e:
        kube.apply(widget, NS, body, "dynamo-plan")
    assert e.value.status == 404


# -- the other field manager comes from managedFields -----------------------------------------
def test_conflict_managers_follow_the_managed_fields() -> None:
    live = {
        "metadata": {
            "managedFields": [
                {"manager": "me", "operation": "Apply", "fieldsV1": {"f:spec": {"f:a": {}}}},
                {
                    "manager": "planner",
                    "operation": "Update",
                    "fieldsV1": {"f:spec": {"f:services": {"f:decode": {"f:replicas": {}}}}},
                },
                {
                    "manager": "helm",
                    "operation": "Apply",
                    "fieldsV1": {"f:metadata": {"f:labels": {"f:app.kubernetes.io/name": {}}}},
                },
            ]
        }
    }
    assert conflict_managers(live, [".spec.services.decode.replicas"], "me") == ["planner"]
    assert conflict_managers(live, [".metadata.labels.app.kubernetes.io/name"], "me") == ["helm"]
    both = [".spec.services.decode.replicas", ".metadata.labels.app.kubernetes.io/name"]
    assert conflict_managers(live, both, "me") == ["helm", "planner"]
    # a path that cannot be followed (a list item): every other manager
    assert conflict_managers(live, ['.spec.c[name="x"].image'], "me") == ["helm", "planner"]
    assert conflict_managers(None, [".spec.a"], "me") == ["unknown"]


def test_apply_conflict_names_the_manager_from_managed_fields(
    kube: KubeClient, standin: StandIn
) -> None:
    kube.apply(DGD, NS, _dgd(replicas=1), "dynamo-plan")
    kube.apply(DGD, NS, _dgd(replicas=4), "autoscaler", force=True)
    with pytest.raises(ApplyConflict) as e:
        kube.apply(DGD, NS, _dgd(replicas=2), "dynamo-plan")
    assert e.value.managers == ["autoscaler"]
    assert e.value.fields == [".spec.services.decode.replicas"]
    # the manager was read from the live object (a GET after the refused PATCH)
    assert standin.requests[-1] == ("GET", KubeClient.path(DGD, NS, "llama"))


# -- retries: urllib3 Retry for 429/5xx, Retry-After honoured ---------------------------------
def test_429_is_retried_with_its_retry_after(
    kube: KubeClient, standin: StandIn, delays: list[float]
) -> None:
    kube.create(CM, NS, _cm("a"))
    standin.requests.clear()
    standin.inject_failures(429, 429)
    assert kube.get(CM, NS, "a") is not None
    assert delays == [0.0, 0.0]  # the stand-in's Retry-After: 0
    assert len(standin.requests) == 3


class _Throttling(BaseHTTPRequestHandler):
    """Answers 429 with ``Retry-After`` (the server's ``retry_after``) to the first
    ``throttled`` requests, then 200 with a ConfigMap."""

    server: _ThrottleServer
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        srv = self.server
        srv.seen += 1
        if srv.seen <= srv.throttled:
            code, body = 429, {"kind": "Status", "reason": "TooManyRequests", "message": "slow"}
            extra = {"Retry-After": srv.retry_after} if srv.retry_after is not None else {}
        else:
            code, body, extra = 200, _cm("a"), {}
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    do_GET = _answer
    do_PATCH = _answer
    do_POST = _answer


class _ThrottleServer(ThreadingHTTPServer):
    daemon_threads = True
    throttled = 0
    seen = 0
    retry_after: str | None = None


@pytest.fixture
def throttle(tmp_path: Path) -> Iterator[tuple[_ThrottleServer, Path]]:
    srv = _ThrottleServer(("127.0.0.1", 0), _Throttling)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    url = f"http://127.0.0.1:{srv.server_address[1]}"
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: '{url}'}}}}]\n"
        "users: [{name: u, user: {}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    try:
        yield srv, config
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        ("3", [3.0, 3.0]),
        ("120", [float(RETRY_AFTER_MAX_S)] * 2),  # capped
        (None, [0.5, 1.0]),  # no header: exponential backoff from backoff_s
        ("soon", [0.5, 1.0]),  # not a number nor a date: backoff
    ],
)
def test_retry_after_is_honoured_and_capped(
    throttle: tuple[_ThrottleServer, Path], retry_after: str | None, expected: list[float]
) -> None:
    srv, config = throttle
    srv.throttled, srv.retry_after = 2, retry_after
    delays: list[float] = []
    kube = KubeClient(kubeconfig=config, backoff_s=0.5, sleep=delays.append)
    assert kube.get(CM, NS, "a") is not None
    assert delays == expected and srv.seen == 3


def test_retry_after_as_an_http_date(throttle: tuple[_ThrottleServer, Path]) -> None:
    import time

    srv, config = throttle
    srv.throttled, srv.retry_after = 1, formatdate(time.time() + 5, usegmt=True)
    delays: list[float] = []
    KubeClient(kubeconfig=config, sleep=delays.append).get(CM, NS, "a")
    assert len(delays) == 1 and 3.0 <= delays[0] <= 5.0


def test_writes_are_retried_too_and_give_up_with_the_status(
    throttle: tuple[_ThrottleServer, Path],
) -> None:
    srv, config = throttle
    srv.throttled, srv.retry_after = 10, "0"
    delays: list[float] = []
    kube = KubeClient(kubeconfig=config, retries=2, sleep=delays.append)
    with pytest.raises(ClusterError) as e:
        kube.merge_patch(CM, NS, "a", {"data": {"k": "w"}})
    assert (e.value.status, e.value.reason) == (429, "TooManyRequests")
    assert delays == [0.0, 0.0] and srv.seen == 3


# -- the kubeconfig is the user's input -------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\xff", r"kubeconfig:1: not UTF-8 text"),
        (b"clusters: [1,\n", r"kubeconfig:2:1: not valid YAML"),
        (b"- 1\n", r"expected a mapping .* got a list"),
    ],
    ids=["binary", "bad-yaml", "not-a-mapping"],
)
def test_kubeconfig_not_utf8_or_yaml_is_an_input_error(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "kubeconfig"
    path.write_bytes(content)
    with pytest.raises(InputError, match=expected) as e:
        KubeClient(kubeconfig=path).connect()
    assert "\n" not in str(e.value) and "codec" not in str(e.value)
    assert not isinstance(e.value, ClusterError)


def test_default_kubeconfig_not_utf8_is_an_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config"
    path.write_bytes(b"\xff\xfe\x00binary")
    from kubernetes.config import kube_config

    # $KUBECONFIG is read when the client is imported: set the default it left
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(InputError, match="cannot load the default kubeconfig: not UTF-8"):
        KubeClient().connect()


# -- scale subresource, JSON patch, wait ----------------------------------------------------------
DGDSA = SCALING_ADAPTERS["v1beta1"]


def _dgdsa(name: str = "llama-decode", replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": DGDSA.api_version,
        "kind": DGDSA.kind,
        "metadata": {"name": name},
        "spec": {"dgdRef": {"name": "llama", "componentName": "decode"}, "replicas": replicas},
    }


def test_scale_reads_and_sets_spec_replicas_through_the_subresource(
    kube: KubeClient, standin: StandIn, delays: list[float]
) -> None:
    kube.create(DGDSA, NS, _dgdsa(replicas=2))
    scale = kube.scale(DGDSA, NS, "llama-decode")
    assert scale is not None and scale["apiVersion"] == "autoscaling/v1"
    assert (scale["kind"], scale["spec"]["replicas"]) == ("Scale", 2)
    standin.inject_failures(409)  # a stale write is retried
    out = kube.scale(DGDSA, NS, "llama-decode", 5, field_manager="planner")
    assert out is not None and out["spec"]["replicas"] == 5 and delays == [0.01]
    live = standin.get("dynamographdeploymentscalingadapters", NS, "llama-decode")
    assert live is not None and live["spec"]["replicas"] == 5
    assert [m for m, p in standin.requests[-2:]] == ["PATCH", "PATCH"]
    assert standin.requests[-1][1] == kube.path(DGDSA, NS, "llama-decode", "scale")
    assert kube.scale(DGDSA, NS, "absent") is None
    kube.create(DGD, NS, _dgd())
    assert kube.scale(DGD, NS, "llama") is None  # the DGD's CRD declares no scale subresource
    with pytest.raises(ValueError, match="replicas must be an integer >= 0"):
        kube.scale(DGDSA, NS, "llama-decode", -1)


def test_invalid_custom_resources_are_refused_with_422(kube: KubeClient) -> None:
    body = _dgdsa()
    body["spec"]["replicas"] = -1
    with pytest.raises(ClusterError) as e:
        kube.create(DGDSA, NS, body)
    assert (e.value.status, e.value.reason) == (422, "Invalid")
    assert "spec.replicas" in str(e.value)


def test_json_patch_changes_one_list_item_and_a_failed_test_is_422(
    kube: KubeClient, standin: StandIn
) -> None:
    kube.create(CM, NS, {**_cm("c"), "data": {"a": "1"}})
    ops = [{"op": "test", "path": "/data/a", "value": "1"},
           {"op": "add", "path": "/data/b", "value": "2"}]  # fmt: skip
    out = kube.json_patch(CM, NS, "c", ops, field_manager="me")
    assert out is not None and out["data"] == {"a": "1", "b": "2"}
    with pytest.raises(ClusterError) as e:
        kube.json_patch(CM, NS, "c", [{"op": "test", "path": "/data/a", "value": "9"}])
    assert e.value.status == 422
    assert kube.json_patch(CM, NS, "absent", ops) is None


class FakeTime:
    """A clock that only moves when slept on."""

    def __init__(self) -> None:
        self.now, self.slept = 0.0, []  # type: ignore[var-annotated]

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s


def test_wait_polls_until_the_predicate_holds(kube: KubeClient, standin: StandIn) -> None:
    kube.create(CM, NS, _cm("c"))
    seen: list[dict[str, Any] | None] = []
    t = FakeTime()

    def ready(obj: dict[str, Any] | None) -> bool | str:
        seen.append(obj)
        if len(seen) == 3:  # a controller acts between the polls
            kube.merge_patch(CM, NS, "c", {"data": {"ready": "yes"}})
        return ((obj or {}).get("data") or {}).get("ready") == "yes" or "c to be ready"

    out = kube.wait(CM, NS, "c", ready, timeout_s=10, poll_s=2, clock=t.clock, sleep=t.sleep)
    assert out is not None and out["data"]["ready"] == "yes"
    assert len(seen) == 4 and t.slept == [2, 2, 2]


def test_wait_times_out_with_the_last_state_and_stops_on_raise(kube: KubeClient) -> None:
    from dynamo_plan.adapters.kubernetes import WaitTimeout

    t = FakeTime()
    with pytest.raises(WaitTimeout) as e:
        kube.wait(CM, NS, "absent", lambda o: f"c (now {o})", 5, 2, clock=t.clock, sleep=t.sleep)
    assert str(e.value) == "timed out after 5 s waiting for c (now None)"
    assert (e.value.status, e.value.reason, e.value.last) == (None, "Timeout", "c (now None)")
    assert t.slept == [2, 2, 1]  # the last sleep ends at the deadline
    t = FakeTime()
    with pytest.raises(WaitTimeout, match=r"waiting for ConfigMap team/absent$"):
        kube.wait(CM, NS, "absent", lambda o: False, 1, 2, clock=t.clock, sleep=t.sleep)

    def gone(obj: dict[str, Any] | None) -> bool:
        raise ClusterError("gone")

    with pytest.raises(ClusterError, match=r"^gone$"):
        kube.wait(CM, NS, "absent", gone, 5, 2, clock=t.clock, sleep=t.sleep)
