"""Dataclasses as the camelCase JSON objects the Kubernetes side speaks (``-o json`` of the
cluster commands): ``crd_installed`` → ``crdInstalled``. Standard library only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

__all__ = ["camel_dict", "camel_name"]


def camel_name(name: str) -> str:
    """``max_gpus_per_node`` → ``maxGpusPerNode``."""
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)


def camel_dict(obj: Any, renames: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Each field of the dataclass instance ``obj``, in declaration order, under its camelCase
    name (or ``renames[field]``). Shallow: the values are the fields themselves, not copies."""
    renames = renames or {}
    return {renames.get(f.name) or camel_name(f.name): getattr(obj, f.name) for f in fields(obj)}
