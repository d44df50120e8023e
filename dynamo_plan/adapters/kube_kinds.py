"""The kinds dynamo-plan touches in a Kubernetes API and where each lives in REST
(:class:`KindInfo`), plus the GPU facts read off Nodes. Data only: no client, no I/O; the client
is :mod:`dynamo_plan.adapters.kubernetes`, which re-exports all of this."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CRD",
    "EVENT",
    "GPU_PRODUCT_LABEL",
    "GPU_RESOURCE",
    "KINDS",
    "NODE",
    "SCALING_ADAPTERS",
    "SECRET",
    "SELF_SUBJECT_ACCESS_REVIEW",
    "KindInfo",
    "allocatable_gpus",
    "kind_info",
]

#: The extended resource the NVIDIA device plugin advertises in ``status.allocatable``.
GPU_RESOURCE = "nvidia.com/gpu"
#: The node label the GPU operator's feature discovery sets (e.g. ``NVIDIA-H100-80GB-HBM3``).
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"


@dataclass(frozen=True)
class KindInfo:
    """Where a kind lives in the REST API: ``/api[s]/<group_version>[/namespaces/NS]/<plural>``
    (``namespaced`` False: cluster-scoped, no namespace segment)."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def prefix(self) -> str:
        return (
            f"/api/{self.api_version}"
            if "/" not in self.api_version
            else f"/apis/{self.api_version}"
        )


#: The namespaced kinds dynamo-plan writes (and ``apply`` accepts in a manifest).
KINDS: dict[tuple[str, str], KindInfo] = {
    (k.api_version, k.kind): k
    for k in (
        *(
            KindInfo(f"nvidia.com/{version}", kind, plural)
            for version in ("v1alpha1", "v1beta1")  # v1beta1: stored from Dynamo 1.x on
            for kind, plural in (
                ("DynamoGraphDeployment", "dynamographdeployments"),
                ("DynamoGraphDeploymentRequest", "dynamographdeploymentrequests"),
            )
        ),
        KindInfo("v1", "ConfigMap", "configmaps"),
        KindInfo("v1", "ServiceAccount", "serviceaccounts"),
        KindInfo("rbac.authorization.k8s.io/v1", "Role", "roles"),
        KindInfo("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
        KindInfo("batch/v1", "Job", "jobs"),
    )
}

#: DynamoGraphDeploymentScalingAdapter (Dynamo 0.9 and later; created by the operator, one per
#: DGD service, scaled through its ``scale`` subresource), by apiVersion: v1alpha1 names the
#: service in ``spec.dgdRef.serviceName``, v1beta1 (Dynamo 1.x) in ``spec.dgdRef.componentName``.
SCALING_ADAPTERS: dict[str, KindInfo] = {
    v: KindInfo(
        f"nvidia.com/{v}",
        "DynamoGraphDeploymentScalingAdapter",
        "dynamographdeploymentscalingadapters",
    )
    for v in ("v1alpha1", "v1beta1")
}

# Kinds only read (or, for the access review, created) by ``doctor``, GPU discovery and the
# DGDR workflow; not in KINDS, so a manifest cannot apply them.
NODE = KindInfo("v1", "Node", "nodes", namespaced=False)
SECRET = KindInfo("v1", "Secret", "secrets")
EVENT = KindInfo("v1", "Event", "events")
CRD = KindInfo(
    "apiextensions.k8s.io/v1",
    "CustomResourceDefinition",
    "customresourcedefinitions",
    namespaced=False,
)
SELF_SUBJECT_ACCESS_REVIEW = KindInfo(
    "authorization.k8s.io/v1",
    "SelfSubjectAccessReview",
    "selfsubjectaccessreviews",
    namespaced=False,
)


def kind_info(api_version: str, kind: str) -> KindInfo | None:
    """The REST location of ``apiVersion``/``kind``, or None when dynamo-plan does not handle it."""
    return KINDS.get((api_version, kind))


def allocatable_gpus(node: Mapping[str, Any]) -> int:
    """``status.allocatable["nvidia.com/gpu"]`` of a Node object (0 when absent or not a number)."""
    raw = str(((node.get("status") or {}).get("allocatable") or {}).get(GPU_RESOURCE, "0"))
    try:
        return int(raw)
    except ValueError:
        return 0
