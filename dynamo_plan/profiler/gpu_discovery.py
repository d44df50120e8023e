"""GPU discovery for online profiling (``spec.enableGpuDiscovery: true`` in a DGDR).

Lists the cluster's nodes (a cluster-scoped read), keeps those advertising
``status.allocatable["nvidia.com/gpu"] > 0`` and reads their ``nvidia.com/gpu.product`` label
(set by the NVIDIA GPU operator's feature discovery, e.g. ``NVIDIA-H100-80GB-HBM3``). The GPU
product with the most GPUs on one node wins; its catalog system name (``h100_sxm``) comes from
:func:`system_for_product`, and the per-engine GPU range is 1 … that node's GPU count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dynamo_plan.adapters.kubernetes import (
    GPU_PRODUCT_LABEL,
    GPU_RESOURCE,
    NODE,
    KubeClient,
    allocatable_gpus,
)
from dynamo_plan.errors import ClusterError, InputError
from dynamo_plan.formats.camel import camel_dict

__all__ = [
    "GpuDiscovery",
    "discover_gpus",
    "system_for_product",
]

# substring of the lower-cased product label -> catalog system (first match wins: order matters)
_PRODUCT_HINTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("gb200",), "gb200"),
    (("b200",), "b200_sxm"),
    (("h200",), "h200_sxm"),
    (("h100", "pcie"), "h100_pcie"),
    (("h100",), "h100_sxm"),
    (("a100",), "a100_sxm"),
    (("l40s",), "l40s"),
)


@dataclass(frozen=True)
class GpuDiscovery:
    """What the nodes advertise: the chosen product, its catalog system and GPUs per node."""

    product: str
    system: str
    max_gpus_per_node: int
    nodes: int
    total_gpus: int

    def as_dict(self) -> dict[str, Any]:
        """The fields under camelCase keys (``maxGpusPerNode``, ``totalGpus``)."""
        return camel_dict(self)


def system_for_product(product: str) -> str:
    """The estimator catalog's system name for a ``nvidia.com/gpu.product`` label value.

    An exact catalog name or alias wins (``nvidia-h200`` → ``h200_sxm``); otherwise the first
    known GPU family in the label (``NVIDIA-H100-PCIe`` → ``h100_pcie``). InputError when none.
    """
    from dynamo_plan.estimator.catalog import known_gpus, load_gpu

    try:
        return str(load_gpu(product).name)
    except InputError:
        pass
    lowered = product.lower()
    for words, system in _PRODUCT_HINTS:
        if all(w in lowered for w in words):
            return system
    raise InputError(
        f"GPU product '{product}' (node label {GPU_PRODUCT_LABEL}) is not in the GPU catalog "
        f"(known: {', '.join(known_gpus())}); set spec.profilingConfig.config.hardware.gpuType "
        "and turn spec.enableGpuDiscovery off"
    )


def discover_gpus(client: KubeClient) -> GpuDiscovery:
    """List nodes and pick the GPU product with the most GPUs on one node.

    ClusterError when listing nodes is forbidden (names the fields to set instead) or when no
    node advertises ``nvidia.com/gpu``.
    """
    try:
        listing = client.list_objects(NODE)
    except ClusterError as e:
        if e.status == 403:
            raise ClusterError(
                "GPU discovery needs the cluster-scoped read of nodes (list nodes), which is "
                "forbidden for this identity; set spec.enableGpuDiscovery: false and give "
                "spec.profilingConfig.config.hardware.gpuType and maxNumGpusPerEngine instead "
                "(or grant a ClusterRole with list nodes)"
            ) from e
        raise
    items = listing or []
    per_product: dict[str, list[int]] = {}
    for node in items:
        n = allocatable_gpus(node)
        if n <= 0:
            continue
        labels = (node.get("metadata") or {}).get("labels") or {}
        product = str(labels.get(GPU_PRODUCT_LABEL) or "")
        per_product.setdefault(product, []).append(n)
    if not per_product:
        raise ClusterError(
            f"GPU discovery: no node advertises allocatable {GPU_RESOURCE} "
            f"({len(items)} node(s) listed); install the NVIDIA GPU operator or set "
            "spec.enableGpuDiscovery: false with spec.profilingConfig.config.hardware"
        )
    product, counts = max(per_product.items(), key=lambda kv: (max(kv[1]), sum(kv[1]), kv[0]))
    if not product:
        raise ClusterError(
            f"GPU discovery: nodes with {GPU_RESOURCE} carry no {GPU_PRODUCT_LABEL} label; "
            "set spec.profilingConfig.config.hardware.gpuType"
        )
    return GpuDiscovery(
        product=product,
        system=system_for_product(product),
        max_gpus_per_node=max(counts),
        nodes=len(counts),
        total_gpus=sum(counts),
    )
