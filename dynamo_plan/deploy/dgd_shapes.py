"""The shape of a DynamoGraphDeployment per Dynamo release: which template, where things live.

One template per backend × release, ``templates/<backend>/disagg-<api>-<release>.yaml`` (e.g.
``vllm/disagg-v1alpha1-0.6.yaml``, ``sglang/disagg-v1beta1-1.5.yaml``; the list is in
``templates/README.md``). The two shapes, as the CRDs in ``tests/data/dynamo/<ver>/crds`` define
them:

* ``nvidia.com/v1alpha1`` (0.6, 0.9): ``spec.services`` maps a service name to
  ``{componentType: frontend|worker|planner, subComponentType: prefill|decode, replicas,
  dynamoNamespace, envFromSecret, resources.limits.gpu, extraPodSpec: {…pod spec…,
  mainContainer}}``.
* ``nvidia.com/v1beta1`` (1.5): ``spec.components`` is a list of ``{name, type:
  frontend|planner|prefill|decode|worker, replicas, podTemplate: {spec: {…pod spec…,
  containers: [main]}}}``; GPUs are the main container's ``nvidia.com/gpu`` limit, the HF token an
  ``envFrom`` ``secretRef``, and there is no ``dynamoNamespace``: the operator names the Dynamo
  namespace ``<k8s namespace>-<dgd>`` and hands it to every pod as ``DYN_NAMESPACE``.

:class:`Component` is one service/component of either shape, with its pod spec and main
container, so the render edits both shapes the same way. Pure data edits; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dynamo_plan.core.releases import DynamoRelease
from dynamo_plan.errors import InputError

__all__ = [
    "BACKENDS",
    "GPU_RESOURCE",
    "ROLES",
    "Component",
    "components",
    "frontend",
    "is_v1beta1",
    "keep_components",
    "planners",
    "set_gpus",
    "template_path",
    "workers",
]

#: the template folders (``mocker`` is Dynamo's mock engine: no GPUs, no TP flag)
BACKENDS = ("vllm", "sglang", "trtllm", "mocker")
ROLES = ("prefill", "decode")
#: the extended resource a v1beta1 container requests GPUs with (v1alpha1: ``resources.limits.gpu``)
GPU_RESOURCE = "nvidia.com/gpu"


def template_path(backend: str, release: DynamoRelease) -> str:
    """``<backend>/disagg-<api>-<release>.yaml`` under ``templates/``; InputError for a backend
    without templates."""
    if backend not in BACKENDS:
        raise InputError(f"no DGD template for backend {backend!r}; expected one of {BACKENDS}")
    api = release.api_version.split("/", 1)[1]
    return f"{backend}/disagg-{api}-{release.value}.yaml"


def is_v1beta1(dgd: dict[str, Any]) -> bool:
    """Whether ``dgd`` has the v1beta1 shape (``spec.components``)."""
    return "components" in dgd.get("spec", {})


@dataclass(frozen=True)
class Component:
    """One service (v1alpha1) or component (v1beta1); ``body``, ``pod`` and ``container`` are
    the objects inside the DGD (editing them edits the DGD).

    ``role``: ``frontend``, ``planner``, ``prefill``, ``decode`` or ``worker`` (a worker of no
    disaggregated role)."""

    name: str
    role: str
    body: dict[str, Any]
    pod: dict[str, Any]
    container: dict[str, Any]


def _v1alpha1(name: str, svc: dict[str, Any]) -> Component:
    kind = str(svc.get("componentType", ""))
    role = str(svc.get("subComponentType", "worker")) if kind == "worker" else kind
    pod = svc.setdefault("extraPodSpec", {})
    return Component(name, role, svc, pod, pod.setdefault("mainContainer", {}))


def _v1beta1(item: dict[str, Any]) -> Component:
    pod = item.setdefault("podTemplate", {}).setdefault("spec", {})
    containers = pod.setdefault("containers", [])
    if not containers:
        containers.append({"name": "main"})
    main = next((c for c in containers if c.get("name") == "main"), containers[0])
    return Component(str(item.get("name", "")), str(item.get("type", "")), item, pod, main)


def components(dgd: dict[str, Any]) -> list[Component]:
    """Every service/component of ``dgd``, in document order."""
    spec = dgd["spec"]
    if is_v1beta1(dgd):
        return [_v1beta1(item) for item in spec["components"]]
    return [_v1alpha1(name, svc) for name, svc in spec["services"].items()]


def workers(dgd: dict[str, Any], template: str) -> dict[str, Component]:
    """The prefill and the decode worker; InputError naming ``template`` when one is missing."""
    found = {c.role: c for c in components(dgd) if c.role in ROLES}
    missing = [r for r in ROLES if r not in found]
    if missing:
        raise InputError(f"template {template}: no {missing[0]} worker")
    return found


def frontend(dgd: dict[str, Any]) -> Component:
    """The frontend; InputError when there is none."""
    for c in components(dgd):
        if c.role == "frontend":
            return c
    raise InputError(f"DGD {dgd['metadata']['name']}: no frontend component")


def planners(dgd: dict[str, Any]) -> list[Component]:
    """The planner components (templates have one)."""
    return [c for c in components(dgd) if c.role == "planner"]


def keep_components(dgd: dict[str, Any], names: set[str]) -> None:
    """Remove every service/component whose name is not in ``names``."""
    spec = dgd["spec"]
    if is_v1beta1(dgd):
        spec["components"] = [c for c in spec["components"] if c.get("name") in names]
    else:
        spec["services"] = {n: s for n, s in spec["services"].items() if n in names}


def set_gpus(dgd: dict[str, Any], component: Component, gpus: int) -> None:
    """GPUs per replica: ``resources.limits.gpu`` (v1alpha1) or the main container's
    ``nvidia.com/gpu`` limit (v1beta1), as a string as in Dynamo's examples."""
    if is_v1beta1(dgd):
        limits = component.container.setdefault("resources", {}).setdefault("limits", {})
        limits[GPU_RESOURCE] = str(gpus)
    else:
        component.body.setdefault("resources", {}).setdefault("limits", {})["gpu"] = str(gpus)
