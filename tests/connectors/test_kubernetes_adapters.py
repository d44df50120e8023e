"""The Kubernetes connector with scaling adapters and with v1beta1 DGDs, against the stand-in.

The stand-in serves Dynamo 1.5.0's CRDs and validates every custom resource against them. The
operator's side is played by the test: it creates the DynamoGraphDeploymentScalingAdapters (as
the operator does for a service), and, carrying out a target, copies each adapter's
``spec.replicas`` into the DGD's status as ready replicas. Which path a write took is read from
the stand-in's request log.
"""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from typing import Any

import pytest
import yaml

from dynamo_plan.adapters.kubernetes import KINDS, SCALING_ADAPTERS, KubeClient
from dynamo_plan.connectors.base import ScaleTarget, ServingReplicas
from dynamo_plan.connectors.kubernetes import (
    DGD_KIND,
    FIELD_MANAGER,
    KubernetesConnector,
    resolve_services,
)
from dynamo_plan.errors import InputError
from tests.conftest import REPO_ROOT, run_cli
from tests.connectors.contract import DEFAULT_TARGETS, check_connector_contract
from tests.k8s_standin import StandIn

NS = "team"
ALPHA_PREFILL, ALPHA_DECODE = "MockerPrefillWorker", "MockerDecodeWorker"
DGD_BETA = KINDS[("nvidia.com/v1beta1", "DynamoGraphDeployment")]
EXAMPLE_BETA = REPO_ROOT / "tests/data/dynamo/1.5.0/examples/mocker_disagg.yaml"
MERGE = "application/merge-patch+json"
CLOSED = "http://127.0.0.1:1"  # nothing listens on port 1: every Prometheus query fails at once


def _target(prefill: int, decode: int) -> ScaleTarget:
    return ScaleTarget(prefill=prefill, decode=decode, reason="test")


@pytest.fixture
def kube(standin: StandIn, tmp_path: Path) -> KubeClient:
    path = standin.kubeconfig(tmp_path / "kubeconfig", namespace=NS)
    return KubeClient(kubeconfig=path, backoff_s=0.01, sleep=lambda _s: None)


def _alpha_dgd(kube: KubeClient, name: str = "dgd1", replicas: int = 1) -> dict[str, Any]:
    body = yaml.safe_load((Path(__file__).parent / "data/mocker_dgd_v1alpha1.yaml").read_text())
    body["metadata"]["name"] = name
    for service in (ALPHA_PREFILL, ALPHA_DECODE):
        body["spec"]["services"][service]["replicas"] = replicas
    return kube.apply(DGD_KIND, NS, body, "dynamo-plan")


def _beta_dgd(kube: KubeClient, name: str = "dgd1", mutate: Any = None) -> dict[str, Any]:
    body = yaml.safe_load(EXAMPLE_BETA.read_text())
    body["metadata"]["name"] = name
    if mutate is not None:
        mutate(body)
    return kube.apply(DGD_BETA, NS, body, "dynamo-plan")


def _adapter(
    kube: KubeClient, dgd: str, service: str, replicas: int, version: str = "v1beta1"
) -> str:
    """Create the service's scaling adapter as the operator does; its name."""
    name = f"{dgd}-{service.lower()}"
    key = "componentName" if version == "v1beta1" else "serviceName"
    info = SCALING_ADAPTERS[version]
    body = {
        "apiVersion": info.api_version,
        "kind": info.kind,
        "metadata": {"name": name},
        "spec": {"dgdRef": {"name": dgd, key: service}, "replicas": replicas},
    }
    assert kube.create(info, NS, body) is not None
    return name


def _status(service: str, n: int) -> dict[str, Any]:
    """One v1beta1 component's status as the operator writes it (the fields the CRD requires)."""
    return {"componentKind": "Deployment", "componentNames": [f"dgd1-{service.lower()}"],
            "replicas": n, "updatedReplicas": n, "readyReplicas": n}  # fmt: skip


def _set_ready(kube: KubeClient, info: Any, name: str, key: str, ready: dict[str, int]) -> None:
    body = {"status": {"state": "successful", key: {s: _status(s, n) for s, n in ready.items()}}}
    path = kube.path(info, NS, name) + "/status"
    kube.request("PATCH", path, {"fieldManager": "dynamo-operator"}, body, MERGE)


def _writes(standin: StandIn, since: int) -> list[str]:
    return [p for m, p in standin.requests[since:] if m in ("PATCH", "PUT", "POST")]


# -- v1alpha1 DGD: through an adapter when one exists, else the DGD --------------------------------
def test_scales_through_the_adapter_when_one_exists_and_the_dgd_otherwise(
    standin: StandIn, kube: KubeClient
) -> None:
    _alpha_dgd(kube)
    adapter = _adapter(kube, "dgd1", ALPHA_DECODE, 1, version="v1alpha1")
    _adapter(kube, "other-dgd", ALPHA_PREFILL, 7, version="v1alpha1")  # another DGD's: ignored
    said: list[str] = []
    conn = KubernetesConnector(kube, "dgd1", NS, say=said.append)
    before = len(standin.requests)
    outcome = conn.apply(_target(2, 3))
    assert outcome.status == "applied"
    adapters = "/apis/nvidia.com/v1alpha1/namespaces/team/dynamographdeploymentscalingadapters"
    assert _writes(standin, before) == [
        f"{adapters}/{adapter}/scale",
        kube.path(DGD_KIND, NS, "dgd1"),
    ]
    live = standin.get("dynamographdeployments", NS, "dgd1")
    assert live is not None
    services = live["spec"]["services"]
    assert services[ALPHA_PREFILL]["replicas"] == 2  # patched in the DGD
    assert services[ALPHA_DECODE]["replicas"] == 1  # not the DGD: its adapter
    scaled = standin.get("dynamographdeploymentscalingadapters", NS, adapter)
    assert scaled is not None and scaled["spec"]["replicas"] == 3
    owners = {e["manager"] for e in scaled["metadata"]["managedFields"]}
    assert FIELD_MANAGER in owners
    assert f"via DynamoGraphDeploymentScalingAdapter {adapter}" in outcome.detail
    assert said == [
        f"DynamoGraphDeployment {NS}/dgd1: scaling prefill ({ALPHA_PREFILL}) by patching the "
        f"DGD's replicas; decode ({ALPHA_DECODE}) through DynamoGraphDeploymentScalingAdapter "
        f"{NS}/{adapter} (scale subresource)"
    ]
    # the adapter's replicas are what the connector compares with: nothing more to write
    before = len(standin.requests)
    assert conn.apply(_target(2, 3)).status == "unchanged"
    assert _writes(standin, before) == []


def test_without_adapters_every_role_patches_the_dgd(standin: StandIn, kube: KubeClient) -> None:
    _alpha_dgd(kube)
    said: list[str] = []
    conn = KubernetesConnector(kube, "dgd1", NS, say=said.append)
    before = len(standin.requests)
    assert conn.apply(_target(2, 2)).status == "applied"
    assert _writes(standin, before) == [kube.path(DGD_KIND, NS, "dgd1")]
    assert not any("/scale" in p for _m, p in standin.requests)
    assert len(said) == 1 and "ScalingAdapter" not in said[0]


def test_an_adapter_created_later_is_used_and_said(standin: StandIn, kube: KubeClient) -> None:
    _alpha_dgd(kube)
    said: list[str] = []
    conn = KubernetesConnector(kube, "dgd1", NS, say=said.append)
    conn.apply(_target(2, 2))
    adapter = _adapter(kube, "dgd1", ALPHA_PREFILL, 2, version="v1alpha1")
    conn.apply(_target(4, 2))
    assert (
        len(said) == 2
        and f"through DynamoGraphDeploymentScalingAdapter {NS}/{adapter}" in (said[1])
    )
    scaled = standin.get("dynamographdeploymentscalingadapters", NS, adapter)
    assert scaled is not None and scaled["spec"]["replicas"] == 4


def test_an_adapter_write_conflict_is_retried(standin: StandIn, kube: KubeClient) -> None:
    _alpha_dgd(kube)
    adapter = _adapter(kube, "dgd1", ALPHA_PREFILL, 1, version="v1alpha1")
    adapter_decode = _adapter(kube, "dgd1", ALPHA_DECODE, 1, version="v1alpha1")
    conn = KubernetesConnector(kube, "dgd1", NS)
    conn.services()  # the reads first; then the writes meet two stale answers
    original = kube.scale

    def scale(*args: Any, **kw: Any) -> Any:
        standin.inject_failures(409, 409)
        return original(*args, **kw)

    kube.scale = scale  # type: ignore[method-assign]
    assert conn.apply(_target(3, 1)).status == "applied"
    scaled = standin.get("dynamographdeploymentscalingadapters", NS, adapter)
    assert scaled is not None and scaled["spec"]["replicas"] == 3
    untouched = standin.get("dynamographdeploymentscalingadapters", NS, adapter_decode)
    assert untouched is not None and untouched["spec"]["replicas"] == 1
    scale_writes = [p for m, p in standin.requests if m == "PATCH" and p.endswith("/scale")]
    assert len(scale_writes) == 3  # two refused, the third written


def test_a_release_without_adapters_is_asked_once(tmp_path: Path) -> None:
    from tests.k8s_standin import running_standin

    with running_standin(release="0.6") as standin:
        kube = KubeClient(kubeconfig=standin.kubeconfig(tmp_path / "kc", namespace=NS))
        _alpha_dgd(kube)
        conn = KubernetesConnector(kube, "dgd1", NS)
        for _ in range(3):
            conn.apply(_target(2, 2))
        lists = [p for m, p in standin.requests if "scalingadapters" in p]
        assert len(lists) == 2  # v1beta1, v1alpha1: 404 once each, then never asked again
        assert (
            standin.get("dynamographdeployments", NS, "dgd1")["spec"]["services"][ALPHA_DECODE][
                "replicas"
            ]
            == 2
        )


# -- v1beta1 DGD (spec.components) ---------------------------------------------------------------
def test_v1beta1_dgd_is_resolved_read_and_patched_by_component(
    standin: StandIn, kube: KubeClient
) -> None:
    def gpus(body: dict[str, Any]) -> None:
        for c in body["spec"]["components"]:
            if c["type"] == "decode":
                c["podTemplate"]["spec"]["containers"][0]["resources"] = {
                    "limits": {"nvidia.com/gpu": "2"}
                }

    _beta_dgd(kube, mutate=gpus)
    conn = KubernetesConnector(kube, "dgd1", NS)
    assert conn.services() == {"prefill": "prefill", "decode": "decode"}
    assert conn.engine_gpus() == (1, 2)  # prefill: no limit (the mocker), counted as 1
    assert any("nvidia.com/gpu" in n and "prefill" in n for n in conn.notes)
    assert conn.observe() is None
    _set_ready(kube, DGD_BETA, "dgd1", "components", {"prefill": 1, "decode": 1})
    assert conn.observe() == ServingReplicas(prefill=1, decode=1)
    before = len(standin.requests)
    outcome = conn.apply(_target(1, 4))
    assert outcome.status == "applied" and "decode decode 1→4" in outcome.detail
    assert _writes(standin, before) == [kube.path(DGD_BETA, NS, "dgd1")]
    live = standin.get("dynamographdeployments", NS, "dgd1")
    assert live is not None and live["apiVersion"] == "nvidia.com/v1beta1"
    replicas = {c["name"]: c["replicas"] for c in live["spec"]["components"]}
    assert replicas == {"Frontend": 1, "decode": 4, "prefill": 1}
    assert [c["name"] for c in live["spec"]["components"]] == ["Frontend", "decode", "prefill"]


def test_v1beta1_resolution_by_type_then_by_name() -> None:
    def dgd(*components: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": "nvidia.com/v1beta1", "spec": {"components": list(components)}}

    typed = dgd({"name": "a", "type": "prefill"}, {"name": "b", "type": "decode"})
    assert resolve_services(typed, "x") == {"prefill": "a", "decode": "b"}
    named = dgd(
        {"name": "Frontend", "type": "frontend"},
        {"name": "VllmPrefillWorker", "type": "worker"},
        {"name": "VllmDecodeWorker", "type": "worker"},
    )
    assert resolve_services(named, "x") == {
        "prefill": "VllmPrefillWorker",
        "decode": "VllmDecodeWorker",
    }
    with pytest.raises(InputError, match="several decode services by type: a, b; set type"):
        resolve_services(
            dgd(
                {"name": "p", "type": "prefill"},
                {"name": "a", "type": "decode"},
                {"name": "b", "type": "decode"},
            ),
            "x",
        )


def test_v1beta1_dgd_with_adapters_scales_through_them(standin: StandIn, kube: KubeClient) -> None:
    _beta_dgd(kube)
    prefill = _adapter(kube, "dgd1", "prefill", 1)
    decode = _adapter(kube, "dgd1", "decode", 1)
    conn = KubernetesConnector(kube, "dgd1", NS)
    before = len(standin.requests)
    assert conn.apply(_target(3, 2)).status == "applied"
    base = "/apis/nvidia.com/v1beta1/namespaces/team/dynamographdeploymentscalingadapters"
    assert _writes(standin, before) == [f"{base}/{prefill}/scale", f"{base}/{decode}/scale"]
    scale = kube.scale(SCALING_ADAPTERS["v1beta1"], NS, prefill)
    assert scale is not None and scale["kind"] == "Scale" and scale["spec"]["replicas"] == 3


# -- the connector contract, through adapters ----------------------------------------------------
class AdapterEnvironment:
    """The operator: carrying out copies each adapter's replicas into the DGD as ready."""

    def __init__(self, standin: StandIn, kube: KubeClient, adapters: dict[str, str]) -> None:
        self.standin, self.kube, self.adapters = standin, kube, adapters

    def _replicas(self) -> dict[str, int]:
        out = {}
        for service, name in self.adapters.items():
            obj = self.standin.get("dynamographdeploymentscalingadapters", NS, name)
            assert obj is not None
            out[service] = obj["spec"]["replicas"]
        return out

    def carry_out(self) -> None:
        _set_ready(self.kube, DGD_BETA, "dgd1", "components", self._replicas())

    def serving(self) -> ServingReplicas | None:
        live = self.standin.get("dynamographdeployments", NS, "dgd1") or {}
        status = (live.get("status") or {}).get("components") or {}
        if "prefill" not in status or "decode" not in status:
            return None
        return ServingReplicas(
            status["prefill"]["readyReplicas"], status["decode"]["readyReplicas"]
        )

    def revision(self) -> Hashable:
        objs = [self.standin.get("dynamographdeploymentscalingadapters", NS, n) for n in
                self.adapters.values()] + [self.standin.get("dynamographdeployments", NS, "dgd1")]  # fmt: skip
        return tuple(str((o or {}).get("metadata", {}).get("resourceVersion")) for o in objs)


def test_kubernetes_connector_through_adapters_meets_the_contract(
    standin: StandIn, kube: KubeClient
) -> None:
    _beta_dgd(kube)
    adapters = {s: _adapter(kube, "dgd1", s, 4) for s in ("prefill", "decode")}
    conn = KubernetesConnector(kube, "dgd1", NS)
    before = len(standin.requests)
    outcomes = check_connector_contract(conn, AdapterEnvironment(standin, kube, adapters))
    assert [o.status for o in outcomes] == ["applied", "unchanged"] * len(DEFAULT_TARGETS)
    writes = _writes(standin, before)
    assert kube.path(DGD_BETA, NS, "dgd1") not in writes  # the spec: never; the status: operator
    assert sum(p.endswith("/scale") for p in writes) == 2 * len(DEFAULT_TARGETS)


# -- plan run says at start which path it takes ---------------------------------------------------
def test_plan_run_says_at_start_how_it_scales(
    standin: StandIn, kube: KubeClient, shared_data: Path
) -> None:
    _beta_dgd(kube)
    adapter = _adapter(kube, "dgd1", "decode", 1)
    r = run_cli(
        "plan", "run", "--profile", str(shared_data / "profiles/h200_llama3.1-8b-fp8_tp1p_tp1d"),
        "--model", "llama", "--prometheus-url", CLOSED, "--interval", "0.1", "--startup-s", "0",
        "--max-ticks", "1", "--metrics-port", "0", "--connector", "kubernetes", "--dgd", "dgd1",
        "--kubeconfig", str(kube.kubeconfig), "-o", "json",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    first_tick = next(i for i, x in enumerate(r.stderr.splitlines()) if x.startswith("{"))
    said = [x for x in r.stderr.splitlines()[:first_tick] if "scaling prefill" in x]
    assert len(said) == 1
    assert "prefill (prefill) by patching the DGD's replicas" in said[0]
    assert f"decode (decode) through DynamoGraphDeploymentScalingAdapter {NS}/{adapter}" in said[0]


def test_adapters_the_planner_may_not_list_leave_the_dgd_path(
    standin: StandIn, kube: KubeClient
) -> None:
    _alpha_dgd(kube)
    _adapter(kube, "dgd1", ALPHA_DECODE, 1, version="v1alpha1")
    standin.forbidden.add("dynamographdeploymentscalingadapters")
    conn = KubernetesConnector(kube, "dgd1", NS)
    assert conn.apply(_target(2, 2)).status == "applied"
    assert conn.apply(_target(3, 3)).status == "applied"
    live = standin.get("dynamographdeployments", NS, "dgd1")
    assert live is not None and live["spec"]["services"][ALPHA_DECODE]["replicas"] == 3
    assert len(conn.notes) == 2 and all("may not list" in n for n in conn.notes)  # each version
    assert sum("scalingadapters" in p for _m, p in standin.requests) == 1 + 2  # create; 2 lists
