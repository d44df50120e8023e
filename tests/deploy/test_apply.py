"""Server-side apply / delete / wait through the official client against the API stand-in."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from dynamo_plan.adapters.kubernetes import ApplyConflict, KubeClient
from dynamo_plan.deploy.apply import (
    DryRun,
    ManifestObject,
    apply_objects,
    changed,
    delete_objects,
    load_manifest,
    preview_objects,
    wait_ready,
)
from dynamo_plan.errors import ClusterError, InputError
from tests.k8s_standin import StandIn

MANIFEST = """\
apiVersion: nvidia.com/v1alpha1
kind: DynamoGraphDeployment
metadata:
  name: llama
  labels: {{app.kubernetes.io/managed-by: dynamo-plan}}  # delete removes only dynamo-plan's
spec:
  services:
    decode:
      replicas: {replicas}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: planner-profile-data
  labels: {{app.kubernetes.io/managed-by: dynamo-plan}}
data:
  profile.json: "{{}}"
"""


@pytest.fixture
def kube(standin: StandIn, tmp_path: Path) -> KubeClient:
    path = standin.kubeconfig(tmp_path / "kubeconfig", namespace="team")
    return KubeClient(kubeconfig=path, backoff_s=0.01).connect()


def _objects(kube: KubeClient, replicas: int = 1) -> list[ManifestObject]:
    return load_manifest(MANIFEST.format(replicas=replicas), "m.yaml", None, kube.default_namespace)


def _actions(outcomes: list) -> list[str]:
    return [o.action for o in outcomes]


def test_apply_creates_then_configures_then_is_unchanged(
    kube: KubeClient, standin: StandIn
) -> None:
    assert _actions(apply_objects(kube, _objects(kube))) == ["created", "created"]
    assert _actions(apply_objects(kube, _objects(kube, 2))) == ["configured", "unchanged"]
    assert _actions(apply_objects(kube, _objects(kube, 2))) == ["unchanged", "unchanged"]
    live = standin.get("dynamographdeployments", "team", "llama")
    assert live is not None and live["spec"]["services"]["decode"]["replicas"] == 2
    assert {m["manager"] for m in live["metadata"]["managedFields"]} == {"dynamo-plan"}


@pytest.mark.parametrize("mode", [DryRun.server, DryRun.client])
def test_dry_run_does_not_persist(kube: KubeClient, standin: StandIn, mode: DryRun) -> None:
    outcomes = apply_objects(kube, _objects(kube), dry_run=mode)
    assert _actions(outcomes) == ["created", "created"] and all(o.dry_run for o in outcomes)
    assert standin.get("dynamographdeployments", "team", "llama") is None
    apply_objects(kube, _objects(kube))
    assert _actions(apply_objects(kube, _objects(kube, 3), dry_run=mode))[0] == "configured"
    live = standin.get("dynamographdeployments", "team", "llama")
    assert live is not None and live["spec"]["services"]["decode"]["replicas"] == 1


def test_diff_shows_live_against_applied(kube: KubeClient) -> None:
    apply_objects(kube, _objects(kube, 1))
    outcomes = apply_objects(kube, _objects(kube, 5), dry_run=DryRun.server, want_diff=True)
    diff = outcomes[0].diff or ""
    assert "--- live/DynamoGraphDeployment/team/llama" in diff
    assert "-      replicas: 1" in diff and "+      replicas: 5" in diff
    assert "resourceVersion" not in diff and "managedFields" not in diff
    assert outcomes[1].diff == ""  # the ConfigMap is unchanged


@pytest.mark.parametrize("mode", [DryRun.server, DryRun.client])
def test_preview_stores_nothing_and_counts_changes(
    kube: KubeClient, standin: StandIn, mode: DryRun
) -> None:
    fresh = preview_objects(kube, _objects(kube, 3), mode)
    assert _actions(fresh) == ["created", "created"] and changed(fresh) == 2
    assert all(o.dry_run and o.diff for o in fresh)
    assert standin.get("dynamographdeployments", "team", "llama") is None
    apply_objects(kube, _objects(kube, 1))
    again = preview_objects(kube, _objects(kube, 3), mode)
    assert _actions(again) == ["configured", "unchanged"] and changed(again) == 1
    assert "+      replicas: 3" in (again[0].diff or "")
    live = standin.get("dynamographdeployments", "team", "llama")
    assert live is not None and live["spec"]["services"]["decode"]["replicas"] == 1


def test_preview_is_always_a_dry_run(kube: KubeClient) -> None:
    with pytest.raises(ValueError, match="dry run"):
        preview_objects(kube, _objects(kube), None)  # type: ignore[arg-type]


def test_conflict_names_the_other_manager_and_force_takes_over(
    kube: KubeClient, standin: StandIn
) -> None:
    apply_objects(kube, _objects(kube, 1))
    dgd = _objects(kube, 4)[0]
    kube.apply(dgd.info, dgd.namespace, dgd.body, "planner", force=True)
    with pytest.raises(ApplyConflict) as e:
        apply_objects(kube, _objects(kube, 2))
    assert e.value.managers == ["planner"]
    assert e.value.fields == [".spec.services.decode.replicas"]
    assert e.value.exit_code == 1
    assert _actions(apply_objects(kube, _objects(kube, 2), force=True))[0] == "configured"
    live = standin.get("dynamographdeployments", "team", "llama")
    assert live is not None and live["spec"]["services"]["decode"]["replicas"] == 2


def test_wait_succeeds_when_a_controller_sets_ready(kube: KubeClient, standin: StandIn) -> None:
    objects = _objects(kube)
    apply_objects(kube, objects)
    polls: list[int] = []

    def controller() -> None:
        standin.set_condition(
            "dynamographdeployments", "team", "llama", "Ready", "False", "Pending"
        )
        standin.set_condition("dynamographdeployments", "team", "llama", "Ready", "True", "Up")

    def on_poll(states: list) -> None:
        polls.append(len(states))
        if len(polls) == 2:
            threading.Thread(target=controller).start()

    states = wait_ready(kube, objects, timeout_s=10, poll_s=0.02, on_poll=on_poll)
    assert [s.ready for s in states] == [True] and polls[0] == 1  # only the DGD is followed


def test_wait_times_out_naming_the_object_and_its_conditions(
    kube: KubeClient, standin: StandIn
) -> None:
    objects = _objects(kube)
    apply_objects(kube, objects)
    standin.set_condition("dynamographdeployments", "team", "llama", "Ready", "False", "Pulling")
    with pytest.raises(ClusterError) as e:
        wait_ready(kube, objects, timeout_s=0.1, poll_s=0.02)
    message = str(e.value)
    assert "DynamoGraphDeployment/llama in namespace team" in message
    assert "Ready=False (Pulling)" in message and e.value.exit_code == 3


def test_delete_removes_and_then_reports_unchanged(kube: KubeClient, standin: StandIn) -> None:
    apply_objects(kube, _objects(kube))
    assert _actions(delete_objects(kube, _objects(kube), DryRun.server)) == ["deleted"] * 2
    assert standin.get("configmaps", "team", "planner-profile-data") is not None
    outcomes = delete_objects(kube, _objects(kube))
    assert [(o.kind, o.action) for o in outcomes] == [
        ("ConfigMap", "deleted"),
        ("DynamoGraphDeployment", "deleted"),
    ]
    assert standin.get("dynamographdeployments", "team", "llama") is None
    assert _actions(delete_objects(kube, _objects(kube))) == ["unchanged"] * 2


def test_transient_failures_are_retried(kube: KubeClient, standin: StandIn) -> None:
    standin.inject_failures(429, 503, 409, 500)
    assert _actions(apply_objects(kube, _objects(kube))) == ["created", "created"]
    assert len(standin.requests) == 4 + 4  # GET + PATCH per object, and 4 retried requests
    standin.inject_failures(*[503] * (kube.retries + 1))
    with pytest.raises(ClusterError, match=r"503 InternalError"):
        apply_objects(kube, _objects(kube))


def test_unreachable_server_is_one_line_naming_it(standin: StandIn, tmp_path: Path) -> None:
    path = standin.kubeconfig(tmp_path / "kubeconfig")
    url = standin.url
    standin.httpd.server_close()  # the port is closed: connection refused
    kube = KubeClient(kubeconfig=path, backoff_s=0.01)
    with pytest.raises(ClusterError) as e:
        kube.get(_objects(kube.connect())[0].info, "default", "llama")
    assert url in str(e.value) and "\n" not in str(e.value)


def test_bad_kubeconfig_is_a_cluster_error(tmp_path: Path) -> None:
    bad = tmp_path / "kubeconfig"
    bad.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n")
    with pytest.raises(ClusterError, match="cannot load"):
        KubeClient(kubeconfig=bad).connect()
    with pytest.raises(ClusterError, match="not found"):
        KubeClient(kubeconfig=tmp_path / "missing").connect()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: [1,\n", r"m.yaml:2:1: not valid YAML"),
        ("", r"m.yaml: no Kubernetes objects"),
        ("- 1\n", r"m.yaml:1: document 1 must be a mapping"),
        ("kind: ConfigMap\nmetadata: {name: x}\n", r"'apiVersion' is required"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n", r"m.yaml:2: v1 Pod is not a kind"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", r"'metadata.name' is required"),
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: a\n",
            r"m.yaml:5: ConfigMap/x is in namespace 'a' but --namespace is 'b'",
        ),
    ],
)
def test_bad_manifests_are_input_errors(text: str, expected: str) -> None:
    with pytest.raises(InputError, match=expected):
        load_manifest(text, "m.yaml", "b" if "namespace: a" in text else None, "default")


def test_namespace_precedence() -> None:
    text = MANIFEST.format(replicas=1).replace(
        "  name: llama\n", "  name: llama\n  namespace: own\n"
    )
    objects = load_manifest(text, "m.yaml", None, "ctx")
    assert [o.namespace for o in objects] == ["own", "ctx"]
    assert [o.namespace for o in load_manifest(text, "m.yaml", "own", "ctx")] == ["own", "own"]


def test_json_bodies_are_sent_as_objects(kube: KubeClient, standin: StandIn) -> None:
    """A merge patch (application/merge-patch+json) reaches the server as a JSON object, once
    encoded (the client's transport encodes JSON bodies itself)."""
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m"}, "data": {"a": "1"}}
    status, _ = kube.request("POST", "/api/v1/namespaces/default/configmaps", body=cm)
    assert status in (200, 201)
    status, live = kube.request(
        "PATCH",
        "/api/v1/namespaces/default/configmaps/m",
        body={"data": {"b": "2"}},
        content_type="application/merge-patch+json",
    )
    assert status == 200
    assert live["data"] == {"a": "1", "b": "2"}
