"""The Kubernetes connector of ``plan run`` against the loopback API stand-in.

The DGD is the mocker template (templates/mocker/disagg-v1alpha1-0.6.yaml), created by server-side apply as
``dynamo-plan apply`` would; the operator's side (``status.services``) is written through the
``/status`` subresource with a merge patch, as field manager ``dynamo-operator``.
"""

from __future__ import annotations

import copy
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import pytest
import yaml

from dynamo_plan.adapters.kubernetes import KubeClient
from dynamo_plan.connectors.base import Connector, ScaleTarget, ServingReplicas
from dynamo_plan.connectors.kubernetes import (
    DGD_KIND,
    FIELD_MANAGER,
    KubernetesConnector,
    connect_kubernetes_connector,
    replicas_managers,
    resolve_services,
)
from dynamo_plan.errors import ClusterError, InputError
from tests.conftest import REPO_ROOT
from tests.connectors.contract import DEFAULT_TARGETS, check_connector_contract
from tests.k8s_standin import StandIn

NS = "team"
PREFILL, DECODE = "MockerPrefillWorker", "MockerDecodeWorker"
MERGE = "application/merge-patch+json"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Cluster:
    """The stand-in seen from the test: writes as other actors (deploy tool, operator, kubectl)."""

    def __init__(self, standin: StandIn, kube: KubeClient, name: str = "mocker-disagg") -> None:
        self.standin, self.kube, self.name = standin, kube, name
        self.path = kube.path(DGD_KIND, NS, name)
        self.seen = 0  # requests before the last create (not counted by patches())

    def create(self, mutate: Any = None) -> dict[str, Any]:
        body = yaml.safe_load((REPO_ROOT / "templates/mocker/disagg-v1alpha1-0.6.yaml").read_text())
        body["metadata"]["name"] = self.name
        if mutate is not None:
            mutate(body)
        created = self.kube.apply(DGD_KIND, NS, body, "dynamo-plan")
        self.seen = len(self.standin.requests)
        return created

    def set_ready(
        self, prefill: int | None, decode: int | None, key: str = "readyReplicas"
    ) -> None:
        """The operator's status: ``key`` per worker service (None: leave that service out)."""
        services = {
            name: {
                "componentKind": "Deployment",
                "componentName": name,
                "replicas": n,
                "updatedReplicas": n,
                "readyReplicas": None,  # merge patch: null removes the previous count
                "availableReplicas": None,
                key: n,
            }
            for name, n in ((PREFILL, prefill), (DECODE, decode))
            if n is not None
        }
        body = {"status": {"state": "successful", "services": services}}
        query = {"fieldManager": "dynamo-operator"}
        self.kube.request("PATCH", self.path + "/status", query, body, MERGE)

    def edit(self, service: str, replicas: int, manager: str = "kubectl-edit") -> None:
        body = {"spec": {"services": {service: {"replicas": replicas}}}}
        self.kube.request("PATCH", self.path, {"fieldManager": manager}, body, MERGE)

    def live(self) -> dict[str, Any]:
        obj = self.standin.get("dynamographdeployments", NS, self.name)
        assert obj is not None
        return obj

    def replicas(self) -> tuple[int, int]:
        services = self.live()["spec"]["services"]
        return services[PREFILL]["replicas"], services[DECODE]["replicas"]

    def patches(self) -> int:
        """PATCH requests on the DGD since it was created."""
        later = self.standin.requests[self.seen :]
        return sum(1 for m, p in later if m == "PATCH" and p == self.path)


@pytest.fixture
def delays() -> list[float]:
    return []


@pytest.fixture
def kube(standin: StandIn, tmp_path: Path, delays: list[float]) -> KubeClient:
    path = standin.kubeconfig(tmp_path / "kubeconfig", namespace=NS)
    return KubeClient(kubeconfig=path, backoff_s=0.01, sleep=delays.append)


@pytest.fixture
def cluster(standin: StandIn, kube: KubeClient) -> Cluster:
    return Cluster(standin, kube)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def connector(kube: KubeClient, cluster: Cluster, clock: FakeClock) -> KubernetesConnector:
    cluster.create()
    return KubernetesConnector(kube, cluster.name, NS, ready_timeout_s=600.0, clock=clock)


def _target(prefill: int, decode: int) -> ScaleTarget:
    return ScaleTarget(prefill=prefill, decode=decode, reason="test")


# -- construction, resolution, GPUs ---------------------------------------------------------------
def test_construction_sends_nothing_and_is_a_connector(standin: StandIn, tmp_path: Path) -> None:
    client = KubeClient(kubeconfig=tmp_path / "absent")
    conn = KubernetesConnector(client, "x", NS)
    assert isinstance(conn, Connector) and conn.name == "kubernetes"
    assert standin.requests == []
    with pytest.raises(ClusterError, match="absent"):
        conn.observe()  # the kubeconfig is read on the first call only


def test_missing_dgd_is_one_line_cluster_error(kube: KubeClient) -> None:
    conn = KubernetesConnector(kube, "nope", NS)
    for call in (conn.observe, conn.engine_gpus, lambda: conn.apply(_target(1, 1))):
        with pytest.raises(ClusterError) as e:
            call()
        message = str(e.value)
        assert "\n" not in message and f"DynamoGraphDeployment {NS}/nope not found" in message


def test_services_resolved_by_subcomponent_type(connector: KubernetesConnector) -> None:
    assert connector.services() == {"prefill": PREFILL, "decode": DECODE}


@pytest.mark.parametrize(
    ("services", "expected"),
    [
        (  # no subComponentType: componentType names the role
            {"a": {"componentType": "prefill"}, "b": {"componentType": "decode"}},
            {"prefill": "a", "decode": "b"},
        ),
        (  # no subComponentType: Dynamo's default worker names
            {
                "Frontend": {"componentType": "frontend"},
                "VllmPrefillWorker": {"componentType": "worker"},
                "VllmDecodeWorker": {"componentType": "worker"},
            },
            {"prefill": "VllmPrefillWorker", "decode": "VllmDecodeWorker"},
        ),
        (  # subComponentType wins over a name that says otherwise
            {
                "decode-big": {"subComponentType": "prefill"},
                "prefill-old": {"subComponentType": "decode"},
            },
            {"prefill": "decode-big", "decode": "prefill-old"},
        ),
    ],
)
def test_services_fallback_conventions(services: dict, expected: dict) -> None:
    assert resolve_services({"spec": {"services": services}}, "DGD ns/x") == expected


@pytest.mark.parametrize(
    ("services", "message"),
    [
        ({"Frontend": {}, "decode": {}}, "no prefill worker among services Frontend, decode"),
        (
            {"p1": {"subComponentType": "prefill"}, "p2": {"subComponentType": "prefill"}},
            "several prefill services by subComponentType: p1, p2",
        ),
        ({}, "spec.services is missing or empty"),
    ],
)
def test_services_missing_or_ambiguous_is_input_error(services: dict, message: str) -> None:
    with pytest.raises(InputError, match=message) as e:
        resolve_services({"spec": {"services": services}}, "DynamoGraphDeployment ns/x")
    assert str(e.value).startswith("DynamoGraphDeployment ns/x: ")


@pytest.mark.parametrize(
    ("prefill_gpu", "decode_gpu", "expected", "notes"),
    [
        (None, None, (1, 1), 2),
        ("2", 4, (2, 4), 0),
        (8, "0", (8, 1), 1),
    ],
)
def test_engine_gpus_from_resources_limits(
    standin: StandIn,
    kube: KubeClient,
    cluster: Cluster,
    prefill_gpu: Any,
    decode_gpu: Any,
    expected: tuple[int, int],
    notes: int,
) -> None:
    def mutate(body: dict) -> None:
        for name, gpu in ((PREFILL, prefill_gpu), (DECODE, decode_gpu)):
            if gpu is not None:
                body["spec"]["services"][name]["resources"] = {"limits": {"gpu": gpu}}

    standin.store.resources.validate = False  # an integer where the CRD says string: still read
    cluster.create(mutate)
    conn = KubernetesConnector(kube, cluster.name, NS)
    assert conn.engine_gpus() == expected
    assert len(conn.notes) == notes and all("limits.gpu" in n for n in conn.notes)


@pytest.mark.parametrize("gpu", ["two", "-1", "1.5", True])
def test_engine_gpus_rejects_non_counts(
    standin: StandIn, kube: KubeClient, cluster: Cluster, gpu: Any
) -> None:
    standin.store.resources.validate = False  # what no server would store must still be refused
    cluster.create(
        lambda b: b["spec"]["services"][DECODE].update(resources={"limits": {"gpu": gpu}})
    )
    with pytest.raises(InputError, match=f"spec.services.{DECODE}.resources.limits.gpu must be"):
        KubernetesConnector(kube, cluster.name, NS).engine_gpus()


# -- observe -------------------------------------------------------------------------------------
def test_observe_reads_ready_replicas_from_status(
    connector: KubernetesConnector, cluster: Cluster
) -> None:
    assert connector.observe() is None  # no status yet
    cluster.set_ready(1, None)
    assert connector.observe() is None  # decode not reported
    cluster.set_ready(2, 3)
    assert connector.observe() == ServingReplicas(prefill=2, decode=3)
    cluster.set_ready(4, 1, key="availableReplicas")  # a PodCliqueScalingGroup has no ready count
    assert connector.observe() == ServingReplicas(prefill=4, decode=1)


def test_observe_does_not_count_non_ready_replicas(
    connector: KubernetesConnector, cluster: Cluster
) -> None:
    cluster.set_ready(2, 2, key="replicas")  # only the total of non-terminated pods
    assert connector.observe() is None


# -- apply ---------------------------------------------------------------------------------------
def test_apply_patches_only_when_changed_and_only_replicas(
    connector: KubernetesConnector, cluster: Cluster
) -> None:
    before = cluster.live()
    outcome = connector.apply(_target(1, 1))
    assert outcome.status == "unchanged" and cluster.patches() == 0
    assert cluster.live()["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]

    outcome = connector.apply(_target(3, 1))
    assert outcome.status == "applied" and cluster.patches() == 1
    assert f"{PREFILL} 1→3" in outcome.detail and DECODE not in outcome.detail
    after = cluster.live()
    expected = copy.deepcopy(before["spec"])
    expected["services"][PREFILL]["replicas"] = 3
    assert after["spec"] == expected
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1
    mine = [m for m in after["metadata"]["managedFields"] if m["manager"] == FIELD_MANAGER]
    assert len(mine) == 1 and mine[0]["operation"] == "Update"
    assert mine[0]["fieldsV1"] == {"f:spec": {"f:services": {f"f:{PREFILL}": {"f:replicas": {}}}}}
    assert replicas_managers(after, DECODE)[0][0] == "dynamo-plan"  # the deploy tool keeps it

    assert connector.apply(_target(3, 1)).status == "unchanged" and cluster.patches() == 1
    assert connector.apply(_target(2, 5)).status == "applied" and cluster.replicas() == (2, 5)


def test_apply_rejects_negative_targets(connector: KubernetesConnector) -> None:
    with pytest.raises(InputError, match="target decode replicas must be an integer >= 0"):
        connector.apply(_target(1, -1))


class _FailOnWrite(KubeClient):
    """Injects failures just before the connector's merge patch, so that they hit the PATCH."""

    standin: StandIn
    codes: tuple[int, ...] = ()

    def merge_patch(self, *args: Any, **kw: Any) -> dict[str, Any] | None:
        self.standin.inject_failures(*self.codes)  # the write's first answers
        return super().merge_patch(*args, **kw)


@pytest.mark.parametrize("code", [409, 429, 503])
def test_apply_retries_transient_answers(
    standin: StandIn, cluster: Cluster, tmp_path: Path, delays: list[float], code: int
) -> None:
    cluster.create()
    kube = _FailOnWrite(kubeconfig=cluster.kube.kubeconfig, backoff_s=0.01, sleep=delays.append)
    kube.standin, kube.codes = standin, (code, code)
    outcome = KubernetesConnector(kube, cluster.name, NS).apply(_target(2, 2))
    assert outcome.status == "applied" and cluster.replicas() == (2, 2)
    assert cluster.patches() == 3  # two refused, the third written
    assert delays == ([0.0, 0.0] if code == 429 else [0.01, 0.02])  # Retry-After: 0 for 429


def test_apply_gives_up_after_the_retries_and_writes_nothing(
    standin: StandIn, cluster: Cluster, delays: list[float]
) -> None:
    cluster.create()
    kube = _FailOnWrite(kubeconfig=cluster.kube.kubeconfig, backoff_s=0.01, sleep=delays.append)
    kube.standin, kube.codes = standin, (503,) * 5
    with pytest.raises(ClusterError, match="503") as e:
        KubernetesConnector(kube, cluster.name, NS).apply(_target(2, 2))
    assert "\n" not in str(e.value) and cluster.replicas() == (1, 1) and len(delays) == 4


def test_pending_scale_up_is_reported_and_never_blocks(
    connector: KubernetesConnector, cluster: Cluster, clock: FakeClock
) -> None:
    cluster.set_ready(1, 1)
    assert connector.apply(_target(3, 1)).status == "applied"
    cluster.set_ready(2, 1)  # one new prefill pod came up, the other stays Pending
    clock.now += 599.0
    outcome = connector.apply(_target(3, 1))
    assert outcome.status == "unchanged" and "not Ready" not in outcome.detail
    assert connector.pending_roles() == []

    clock.now += 2.0  # past ready_timeout_s since the scale-up
    assert connector.observe() == ServingReplicas(prefill=2, decode=1)  # what serves
    [pending] = connector.pending_roles()
    assert (pending.role, pending.service, pending.asked, pending.ready) == (
        "prefill",
        PREFILL,
        3,
        2,
    )
    assert pending.waited_s == pytest.approx(601.0)

    outcome = connector.apply(_target(4, 2))  # a new target is written all the same
    assert outcome.status == "applied" and cluster.replicas() == (4, 2)
    assert "prefill scale-up to 4 (MockerPrefillWorker) not Ready after 601 s (2 ready" in (
        outcome.detail
    )
    assert "decode" not in outcome.detail.split(";", 1)[1]  # decode's scale-up is fresh

    cluster.set_ready(4, 2)
    assert connector.observe() == ServingReplicas(prefill=4, decode=2)
    clock.now += 1000.0
    assert connector.pending_roles() == []


def test_pending_without_status_reports_unknown_ready(
    connector: KubernetesConnector, clock: FakeClock
) -> None:
    connector.apply(_target(1, 2))
    clock.now += 700.0
    outcome = connector.apply(_target(1, 2))
    assert "decode scale-up to 2 (MockerDecodeWorker) not Ready after 700 s (unknown ready" in (
        outcome.detail
    )


def test_scale_down_below_ready_clears_the_pending_scale_up(
    connector: KubernetesConnector, cluster: Cluster, clock: FakeClock
) -> None:
    cluster.set_ready(1, 1)
    connector.apply(_target(5, 1))
    clock.now += 900.0
    assert [p.role for p in connector.pending_roles()] == ["prefill"]
    connector.apply(_target(1, 1))
    assert connector.pending_roles() == []


def test_another_writer_is_named(connector: KubernetesConnector, cluster: Cluster) -> None:
    connector.apply(_target(2, 2))
    cluster.edit(PREFILL, 7)  # a human with kubectl edit
    outcome = connector.apply(_target(2, 2))
    assert outcome.status == "applied" and cluster.replicas() == (2, 2)
    warning = next(p for p in outcome.detail.split("; ") if p.startswith("warning"))
    assert f"spec.services.{PREFILL}.replicas is 7, not the 2 {FIELD_MANAGER} wrote" in warning
    assert "'kubectl-edit' (Update at " in warning and DECODE not in warning
    assert "warning" not in connector.apply(_target(2, 2)).detail  # said once

    cluster.edit(DECODE, 2, manager="planner")  # same value: nothing changes, nobody to name
    cluster.edit(DECODE, 3, manager="planner")  # Dynamo's own planner
    outcome = connector.apply(_target(2, 3))
    assert outcome.status == "unchanged" and "'planner' (Update at " in outcome.detail


# -- factory -------------------------------------------------------------------------------------
def test_factory_uses_the_kubeconfig_and_its_namespace(standin: StandIn, cluster: Cluster) -> None:
    cluster.create()
    kubeconfig = cluster.kube.kubeconfig
    assert kubeconfig is not None
    conn = connect_kubernetes_connector(cluster.name, None, kubeconfig, None, 30.0)
    assert (conn.namespace, conn.ready_timeout_s, conn.client.server) == (NS, 30.0, standin.url)
    assert conn.services()["decode"] == DECODE
    other = connect_kubernetes_connector(cluster.name, "elsewhere", kubeconfig, "standin", 30.0)
    assert other.namespace == "elsewhere"


def test_factory_falls_back_to_in_cluster_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    with pytest.raises(ClusterError, match="cannot load the in-cluster config"):
        connect_kubernetes_connector("x", None, None, None, 60.0)  # no service account here


# -- the connector contract (tests/connectors/contract.py) --------------------------------------
class KubernetesEnvironment:
    """The operator's side: carrying out marks every asked replica ready in ``status``."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def carry_out(self) -> None:
        self.cluster.set_ready(*self.cluster.replicas())

    def serving(self) -> ServingReplicas | None:
        services = self.cluster.live().get("status", {}).get("services", {})
        if PREFILL not in services or DECODE not in services:
            return None
        return ServingReplicas(
            services[PREFILL]["readyReplicas"], services[DECODE]["readyReplicas"]
        )

    def revision(self) -> Hashable:
        return str(self.cluster.live()["metadata"]["resourceVersion"])


def test_kubernetes_connector_meets_the_contract(
    kube: KubeClient, cluster: Cluster, clock: FakeClock
) -> None:
    def start_at_four(body: dict) -> None:  # the contract's first target must be a change
        for name in (PREFILL, DECODE):
            body["spec"]["services"][name]["replicas"] = 4

    cluster.create(start_at_four)
    conn = KubernetesConnector(kube, cluster.name, NS, clock=clock)
    outcomes = check_connector_contract(conn, KubernetesEnvironment(cluster))
    assert [o.status for o in outcomes] == ["applied", "unchanged"] * len(DEFAULT_TARGETS)
    assert cluster.replicas() == DEFAULT_TARGETS[-1]
