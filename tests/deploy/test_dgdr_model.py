"""The one DGDR model: every spelling read alike, errors located, other-version fields named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from dynamo_plan.core.releases import DynamoRelease
from dynamo_plan.deploy.dgdr import validate_file
from dynamo_plan.deploy.dgdr_model import (
    ConfigMapRef,
    DgdrError,
    camel_key,
    interpret,
    read_dgdr_file,
)

DGDRS = Path(__file__).parents[1] / "data" / "dgdrs"


def _load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((DGDRS / name).read_text())
    return doc


def _write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "dgdr.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_camel_key() -> None:
    assert camel_key("aic_hf_id") == "aicHfId"
    assert camel_key("min_num_gpus_per_engine") == "minNumGpusPerEngine"
    assert camel_key("ttft") == "ttft"


def test_snake_and_camel_read_to_the_same_model() -> None:
    snake, w1 = read_dgdr_file(DGDRS / "v1alpha1_0.6_snake.yaml")
    camel, w2 = read_dgdr_file(DGDRS / "v1alpha1_0.9_camel.yaml")
    assert w1 == w2 == []
    assert (snake.spelling, snake.release) == ("v1alpha1-snake", DynamoRelease.v0_6)
    assert (camel.spelling, camel.release) == ("v1alpha1-camel", DynamoRelease.v0_9)
    for field in ("model", "backend", "isl", "osl", "ttft_ms", "itl_ms", "use_ai_configurator",
                  "aic_system", "aic_hf_id", "aic_backend_version", "auto_apply", "mocker",
                  "workers_image", "profiler_image", "planner", "tp_hints"):  # fmt: skip
        assert getattr(snake, field) == getattr(camel, field), field
    assert snake.use_ai_configurator and snake.aic_backend_version == "0.20.0"
    # paths are as each file spells them
    assert snake.path_of("aic_system") == "spec.profilingConfig.config.sweep.aic_system"
    assert camel.path_of("aic_system") == "spec.profilingConfig.config.sweep.aicSystem"
    assert snake.where("aic_system").endswith(
        ".yaml:16: spec.profilingConfig.config.sweep.aic_system"
    )


def test_v1beta1_fields_and_defaults(tmp_path: Path) -> None:
    spec, warnings = read_dgdr_file(DGDRS / "v1beta1_1.5.yaml")
    assert warnings == [] and spec.is_v1beta1 and spec.release is DynamoRelease.v1_5
    assert (spec.isl, spec.osl, spec.ttft_ms, spec.itl_ms) == (3000, 300, 200.0, 20.0)
    assert (spec.request_rate, spec.optimization_type) == (5.0, "throughput")
    assert (spec.aic_system, spec.total_gpus, spec.num_gpus_per_node) == ("h200_sxm", 16, 8)
    assert spec.use_ai_configurator and spec.search_strategy == "rapid"
    assert spec.planner == {"minEndpoint": 1, "adjustmentInterval": 60} and spec.planner_enabled
    assert spec.profiler_image == "nvcr.io/nvidia/ai-dynamo/dynamo-planner:1.5.0"
    assert spec.model_cache == {"pvcName": "model-cache", "pvcModelPath": "qwen3-0.6b"}
    # the CRD's defaults: backend auto, autoApply true, workload 4000/1000, no planner
    minimal = {"apiVersion": "nvidia.com/v1beta1", "kind": "DynamoGraphDeploymentRequest",
               "metadata": {"name": "m"}, "spec": {"model": "Qwen/Qwen3-0.6B"}}  # fmt: skip
    spec, _ = read_dgdr_file(_write(tmp_path, minimal))
    assert (spec.backend, spec.auto_apply, spec.isl, spec.osl) == ("auto", True, 4000, 1000)
    assert not spec.planner_enabled and spec.concrete_backend() == "vllm"
    assert spec.concrete_backend("sglang") == "sglang"
    with pytest.raises(DgdrError, match=r"dgdr\.yaml:\d+: spec\.sla\.ttft: "):
        spec.sla()


@pytest.mark.parametrize(
    ("source", "field", "message"),
    [
        ("v1beta1_1.5.yaml", "useMocker",
         "`useMocker` is v1alpha1's spelling of `spec.features.mocker.enabled`"),
        ("v1beta1_1.5.yaml", "profilingConfig", "`profilingConfig` is v1alpha1's spelling of"),
        ("v1beta1_1.5.yaml", "enableGpuDiscovery", "`enableGpuDiscovery` is a v1alpha1 field"),
        ("v1alpha1_0.9_camel.yaml", "sla",
         "`sla` is v1beta1's spelling of `spec.profilingConfig.config.sla`"),
        ("v1alpha1_0.9_camel.yaml", "features", "`features` is v1beta1's spelling of"),
    ],
)  # fmt: skip
def test_a_field_of_the_other_version_is_named(
    tmp_path: Path, source: str, field: str, message: str
) -> None:
    doc = _load(source)
    doc["spec"][field] = {"enabled": True} if field != "useMocker" else True
    path = _write(tmp_path, doc)
    with pytest.raises(DgdrError) as e:
        read_dgdr_file(path)
    line = (
        path.read_text()
        .splitlines()
        .index(f"  {field}:" + (" true" if field == "useMocker" else ""))
        + 1
    )
    assert str(e.value).startswith(f"{path}:{line}: spec.{field}: {message}")
    report = validate_file(path)  # dgdr validate: the same error, not also an unknown key
    assert [f.path for f in report.errors] == [f"spec.{field}"]
    assert not [w for w in report.warnings if w.path == f"spec.{field}"]


def test_deploy_mocker_is_read_as_use_mocker_with_a_warning(tmp_path: Path) -> None:
    doc = _load("v1alpha1_0.9_camel.yaml")
    del doc["spec"]["useMocker"]
    doc["spec"]["deployMocker"] = True
    spec, warnings = read_dgdr_file(_write(tmp_path, doc))
    assert spec.mocker and spec.path_of("mocker") == "spec.deployMocker"
    assert len(warnings) == 1 and "interim name of `useMocker`" in warnings[0]
    doc["spec"]["useMocker"] = True
    with pytest.raises(DgdrError, match="`deployMocker` and `useMocker` are the same field"):
        read_dgdr_file(_write(tmp_path, doc))


def test_one_key_in_both_spellings_is_an_error_mixed_spellings_a_warning(tmp_path: Path) -> None:
    doc = _load("v1alpha1_0.6_snake.yaml")
    doc["spec"]["profilingConfig"]["config"]["sweep"]["aicSystem"] = "h100_sxm"
    with pytest.raises(DgdrError, match=r"sweep\.aicSystem: `aicSystem` and `aic_system` are the"):
        read_dgdr_file(_write(tmp_path, doc))
    del doc["spec"]["profilingConfig"]["config"]["sweep"]["aicSystem"]
    doc["spec"]["profilingConfig"]["config"]["sweep"]["aicHfId2"] = "x"
    doc["spec"]["profilingConfig"]["config"]["hardware"] = {"minNumGpusPerEngine": 2,
                                                            "max_num_gpus_per_engine": 4}  # fmt: skip
    spec, warnings = read_dgdr_file(_write(tmp_path, doc))
    assert (spec.min_gpus_per_engine, spec.max_gpus_per_engine) == (2, 4)
    assert any("mixes snake_case" in w for w in warnings)


def test_snake_case_values_are_checked_like_camel_case(tmp_path: Path) -> None:
    doc = _load("v1alpha1_0.6_snake.yaml")
    doc["spec"]["profilingConfig"]["config"]["sweep"]["use_ai_configurator"] = "yes"
    path = _write(tmp_path, doc)
    with pytest.raises(DgdrError, match=r"sweep\.use_ai_configurator: expected a boolean"):
        read_dgdr_file(path)


def test_config_map_ref_and_overrides(tmp_path: Path) -> None:
    doc = _load("v1alpha1_0.9_camel.yaml")
    doc["spec"]["profilingConfig"]["configMapRef"] = {"name": "base-dgd"}
    doc["spec"]["deploymentOverrides"] |= {"name": "served", "labels": {"a": "b"}}
    spec, _ = read_dgdr_file(_write(tmp_path, doc))
    assert spec.config_map_ref == ConfigMapRef("base-dgd", "disagg.yaml")
    assert (spec.dgd_name, dict(spec.dgd_labels)) == ("served", {"a": "b"})


def test_interpret_takes_parsed_documents() -> None:
    spec, warnings = interpret(_load("v1beta1_1.5.yaml"))
    assert spec.model == "Qwen/Qwen3-0.6B" and warnings == [] and spec.file is None
