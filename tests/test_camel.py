"""``formats.camel``: dataclasses as camelCase JSON objects (the cluster commands' ``-o json``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from dynamo_plan.formats.camel import camel_dict, camel_name
from dynamo_plan.profiler.gpu_discovery import GpuDiscovery
from dynamo_plan.profiler.workflow import RunResult


@dataclass
class _Sample:
    name: str
    max_gpus_per_node: int
    config_maps: list[str] = field(default_factory=list)


def test_camel_name() -> None:
    assert camel_name("name") == "name"
    assert camel_name("max_gpus_per_node") == "maxGpusPerNode"


def test_camel_dict_keeps_field_order_and_values() -> None:
    sample = _Sample("a", 8)
    out = camel_dict(sample, {"name": "id"})
    assert list(out) == ["id", "maxGpusPerNode", "configMaps"]
    assert out["configMaps"] is sample.config_maps  # shallow: the field itself


def test_producers_keep_their_keys() -> None:
    assert GpuDiscovery("H200", "h200_sxm", 8, 2, 16).as_dict() == {
        "product": "H200",
        "system": "h200_sxm",
        "maxGpusPerNode": 8,
        "nodes": 2,
        "totalGpus": 16,
    }
    assert list(RunResult("r", "ns").as_dict()) == [
        "name", "namespace", "apiVersion", "release", "state", "phases", "conditions",
        "crdInstalled", "generatedDeployment", "configMaps", "files", "applied", "warnings",
        "status", "message",
    ]  # fmt: skip
