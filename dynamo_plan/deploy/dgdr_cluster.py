"""What a cluster says about DGDRs: the Dynamo release its CRDs are from, and configMapRef.

Everything goes through the Kubernetes adapter (:class:`~dynamo_plan.adapters.kubernetes.KubeClient`).

* :func:`served_versions` — the versions the DGDR CRD (``dynamographdeploymentrequests.nvidia.com``)
  serves, and the one it stores; None when the CRD is not installed.
* :func:`installed_release` — the release those CRDs are from: v1beta1 stored → 1.5; v1alpha1
  whose spec has ``useMocker`` → 0.9; v1alpha1 without it → 0.6.
* :func:`release_for` — ``--dynamo-version`` when given, else the installed release, else
  :data:`~dynamo_plan.core.releases.NEWEST_RELEASE`.
* :func:`config_map_dgd` — the base DGD a DGDR's ``configMapRef`` names (the ConfigMap's ``key``,
  default ``disagg.yaml``, parsed as YAML).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from dynamo_plan.adapters.kubernetes import CRD, KubeClient, kind_info
from dynamo_plan.core.releases import NEWEST_RELEASE, DynamoRelease
from dynamo_plan.deploy.dgdr_model import ConfigMapRef
from dynamo_plan.errors import InputError

__all__ = [
    "CRD_NAME",
    "ServedVersions",
    "config_map_dgd",
    "installed_release",
    "release_for",
    "served_versions",
]

CRD_NAME = "dynamographdeploymentrequests.nvidia.com"


@dataclass(frozen=True)
class ServedVersions:
    """The DGDR CRD's served versions (``v1alpha1``, ``v1beta1``), its storage version, and
    whether its v1alpha1 spec knows ``useMocker`` (0.9 and later)."""

    served: tuple[str, ...]
    storage: str | None
    use_mocker: bool

    @property
    def release(self) -> DynamoRelease:
        if self.storage == "v1beta1" or "v1beta1" in self.served:
            return DynamoRelease.v1_5
        return DynamoRelease.v0_9 if self.use_mocker else DynamoRelease.v0_6


def served_versions(client: KubeClient) -> ServedVersions | None:
    """The DGDR CRD's versions (GET of the CRD, cluster-scoped); None when it is not installed."""
    crd = client.get(CRD, None, CRD_NAME)
    if crd is None:
        return None
    versions = [v for v in (crd.get("spec") or {}).get("versions") or [] if isinstance(v, dict)]
    served = tuple(str(v.get("name")) for v in versions if v.get("served"))
    storage = next((str(v.get("name")) for v in versions if v.get("storage")), None)
    use_mocker = False
    for v in versions:
        schema = ((v.get("schema") or {}).get("openAPIV3Schema") or {}).get("properties") or {}
        spec = (schema.get("spec") or {}).get("properties") or {}
        use_mocker = use_mocker or "useMocker" in spec
    return ServedVersions(served, storage, use_mocker)


def installed_release(client: KubeClient) -> DynamoRelease | None:
    """The release of the installed DGDR CRD (module docstring); None when none is installed."""
    found = served_versions(client)
    return None if found is None else found.release


def release_for(flag: DynamoRelease | None, client: KubeClient | None) -> DynamoRelease:
    """``flag`` when given, else the cluster's release (when ``client`` and a CRD), else newest."""
    if flag is not None:
        return flag
    found = installed_release(client) if client is not None else None
    return found or NEWEST_RELEASE


def config_map_dgd(client: KubeClient, namespace: str, ref: ConfigMapRef) -> dict[str, Any]:
    """The DynamoGraphDeployment in ConfigMap ``ref.name`` under ``ref.key``; InputError when the
    ConfigMap or the key is missing, or the value is not one DGD mapping."""
    info = kind_info("v1", "ConfigMap")
    assert info is not None
    where = f"configMapRef {namespace}/{ref.name} key {ref.key}"
    cm = client.get(info, namespace, ref.name)
    if cm is None:
        raise InputError(f"{where}: no such ConfigMap")
    text = (cm.get("data") or {}).get(ref.key)
    if text is None:
        keys = ", ".join(sorted(cm.get("data") or {})) or "none"
        raise InputError(f"{where}: the ConfigMap has no such key (keys: {keys})")
    try:
        doc = yaml.safe_load(str(text))
    except yaml.YAMLError as e:
        raise InputError(f"{where}: invalid YAML ({e})") from e
    if not isinstance(doc, dict) or doc.get("kind") != "DynamoGraphDeployment":
        raise InputError(f"{where}: expected a DynamoGraphDeployment")
    return doc
