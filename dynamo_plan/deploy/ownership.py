"""Which objects are this project's: per-DGD names and the labels ``delete`` checks.

Everything ``generate-dgd`` renders for a DGD is named after it, never with a fixed name that a
second DGD in the namespace (or Dynamo's own Helm chart: ``planner-serviceaccount``,
``planner-role``, ``planner-binding``, ``planner-profile-data``) would share:

* the Planner's ServiceAccount, Role and RoleBinding: ``<dgd>-planner``;
* the profile ConfigMap: ``<dgd>-profile``.

Each carries :data:`MANAGED_BY_LABEL` = :data:`MANAGED_BY` and :data:`DGD_LABEL` = the DGD name
(the DGD itself too). ``dynamo-plan delete`` deletes a live object only when it carries those
labels (:func:`owned_by_us`), so it never removes an object that Dynamo or someone else owns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "DGD_LABEL",
    "MANAGED_BY",
    "MANAGED_BY_LABEL",
    "owned_by_us",
    "ownership_labels",
    "planner_rbac_name",
    "profile_configmap_name",
]

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "dynamo-plan"
DGD_LABEL = "dynamo-plan/dgd"


def planner_rbac_name(dgd: str) -> str:
    """Name of a DGD's Planner ServiceAccount, Role and RoleBinding."""
    return f"{dgd}-planner"


def profile_configmap_name(dgd: str) -> str:
    """Name of the ConfigMap holding a DGD's profile (mounted by its Planner)."""
    return f"{dgd}-profile"


def ownership_labels(dgd: str) -> dict[str, str]:
    """The labels every object rendered for ``dgd`` carries."""
    return {MANAGED_BY_LABEL: MANAGED_BY, DGD_LABEL: dgd}


def owned_by_us(live: Mapping[str, Any], wanted: Mapping[str, Any] | None = None) -> bool:
    """Whether the live object carries :data:`MANAGED_BY_LABEL` = :data:`MANAGED_BY` and, when
    the manifest object (``wanted``) names a DGD in :data:`DGD_LABEL`, the same DGD."""
    labels = (live.get("metadata") or {}).get("labels") or {}
    if labels.get(MANAGED_BY_LABEL) != MANAGED_BY:
        return False
    want = ((wanted or {}).get("metadata") or {}).get("labels") or {}
    return DGD_LABEL not in want or labels.get(DGD_LABEL) == want[DGD_LABEL]
