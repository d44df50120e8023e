"""The real Dynamo DGDR CRD (tests/data/crds): its openAPIV3Schema, and the pruning check.

jsonschema alone is laxer than the Kubernetes API server: the CRD's objects do not forbid extra
keys, but the server drops (prunes) every field its structural schema does not declare unless
``x-kubernetes-preserve-unknown-fields`` is set. :func:`pruned_fields` lists what it would drop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

CRD_FILE = Path("crds") / "nvidia.com_dynamographdeploymentrequests.yaml"


def crd_schema(shared_data: Path) -> dict[str, Any]:
    """openAPIV3Schema of the CRD's v1alpha1 version."""
    crd = next(d for d in yaml.safe_load_all((shared_data / CRD_FILE).read_text()) if d)
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1")
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def pruned_fields(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Paths of the fields a structural-schema API server would prune from ``value``."""
    if schema.get("x-kubernetes-preserve-unknown-fields") or path == "metadata":
        return []
    out: list[str] = []
    if isinstance(value, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if key in props:
                out += pruned_fields(item, props[key], where)
            elif isinstance(extra, dict):
                out += pruned_fields(item, extra, where)
            else:
                out.append(where)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            out += pruned_fields(item, schema["items"], f"{path}[{i}]")
    return out
