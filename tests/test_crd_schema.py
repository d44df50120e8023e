"""tests/crd_schema.py: a CRD's openAPIV3Schema read the way a structural-schema API server reads
it. Dynamo's own example DGDs (tests/data/dynamo/<ver>/examples) are the positive cases; mutated
copies of them, and small hand-written schemas for each rule, the negative ones."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from dynamo_plan.core.releases import DynamoRelease
from tests.crd_schema import (
    CRD_ROOT,
    crd_documents,
    crd_errors,
    crd_validator,
    full_version,
    releases,
    served_versions,
    to_json_schema,
    validator_for,
)

DGD, DGDR, DGDSA = (
    "DynamoGraphDeployment",
    "DynamoGraphDeploymentRequest",
    "DynamoGraphDeploymentScalingAdapter",
)
V1A, V1B = "nvidia.com/v1alpha1", "nvidia.com/v1beta1"
EXAMPLES = sorted(CRD_ROOT.glob("*/examples/*.yaml"))


def _example(path: Path) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert len(docs) == 1, path
    doc: dict[str, Any] = docs[0]
    return doc


def _errors(openapi: dict[str, Any], value: Any) -> list[str]:
    """Errors of ``value`` under a hand-written schema (no root kind/apiVersion checks)."""
    schema = to_json_schema(openapi)
    Draft202012Validator.check_schema(schema)
    return sorted(e.message for e in validator_for(schema).iter_errors(value))


# -- releases and what they serve ----------------------------------------------------------------


def test_every_supported_release_has_its_crds() -> None:
    assert [p.name for p in releases()] == [r.full_version for r in DynamoRelease]
    for release in DynamoRelease:
        assert full_version(release) == release.full_version
        assert full_version(release.value) == full_version(release.full_version)
    with pytest.raises(ValueError, match="no Dynamo release"):
        full_version("0.7")


def test_served_versions_per_release() -> None:
    def pairs(release: str) -> set[tuple[str, str]]:
        return {(s.kind, s.api_version) for s in served_versions(release)}

    assert pairs("0.6") == {(DGD, V1A), (DGDR, V1A)}
    assert pairs("0.9") == {(DGD, V1A), (DGDR, V1A), (DGDSA, V1A)}
    assert pairs("1.5") == {(k, v) for k in (DGD, DGDR, DGDSA) for v in (V1A, V1B)}
    newest = {s.kind: s for s in served_versions("1.5.0") if s.storage}
    assert {k: s.api_version for k, s in newest.items()} == {DGD: V1B, DGDR: V1B, DGDSA: V1B}
    assert all(s.deprecated for s in served_versions("1.5") if s.kind != DGDR and not s.storage)
    adapter = newest[DGDSA]
    assert adapter.plural == "dynamographdeploymentscalingadapters" and adapter.namespaced
    assert adapter.subresources["scale"]["specReplicasPath"] == ".spec.replicas"


@pytest.mark.parametrize("release", [r.full_version for r in DynamoRelease])
def test_every_served_version_converts_to_a_valid_json_schema(release: str) -> None:
    for served in served_versions(release):
        validator = crd_validator(release, served.kind, served.api_version)
        Draft202012Validator.check_schema(dict(validator.schema))
        assert crd_validator(release, served.kind, served.api_version) is validator  # cached
    kinds = {d["spec"]["names"]["kind"] for d in crd_documents(release)}
    assert kinds == {s.kind for s in served_versions(release)}


# -- Dynamo's own examples: accepted as they are; mutated, refused --------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_dynamos_example_dgds_validate_against_their_release(path: Path) -> None:
    doc = _example(path)
    assert doc["kind"] == DGD
    assert crd_errors(doc, path.parent.parent.name) == []


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_an_unknown_field_anywhere_in_an_example_is_refused(path: Path) -> None:
    release = path.parent.parent.name
    doc = _example(path)
    top = copy.deepcopy(doc)
    top["spec"]["replicaCount"] = 2
    assert crd_errors(top, release) == ["spec.replicaCount: unknown field 'replicaCount'"]
    deep = copy.deepcopy(doc)
    if "components" in deep["spec"]:  # 1.x: a list of components with a podTemplate
        deep["spec"]["components"][0]["podTemplate"]["spec"]["containers"][0]["argz"] = []
        where = "spec.components[0].podTemplate.spec.containers[0].argz"
    else:
        name, service = next(iter(deep["spec"]["services"].items()))
        service["extraPodSpec"]["mainContainer"]["argz"] = []
        where = f"spec.services.{name}.extraPodSpec.mainContainer.argz"
    assert crd_errors(deep, release) == [f"{where}: unknown field 'argz'"]


@pytest.mark.parametrize("release", ["0.9.0", "1.5.0"])
def test_mutated_examples_break_types_names_and_versions(release: str) -> None:
    doc = _example(CRD_ROOT / release / "examples" / "vllm_disagg.yaml")
    if release == "1.5.0":
        # the 1.x shape is not the v1alpha1 one, which 1.5 still serves
        assert "spec.components: unknown field 'components'" in crd_errors(
            {**doc, "apiVersion": V1A}, release
        )
        doc["spec"]["components"][0]["replicas"] = "two"
        where = "spec.components[0].replicas"
    else:
        assert crd_errors({**doc, "apiVersion": V1B}, release) == [
            f"<root>: Dynamo {release} serves no {DGD} {V1B}"
        ]
        next(iter(doc["spec"]["services"].values()))["replicas"] = "two"
        name = next(iter(doc["spec"]["services"]))
        where = f"spec.services.{name}.replicas"
    assert crd_errors(doc, release) == [f"{where}: 'two' is not of type 'integer'"]
    renamed = {**doc, "metadata": {"name": "Not_A_Name"}}
    assert [e.split(":")[0] for e in crd_errors(renamed, release)] == ["metadata.name", where]
    nameless = {**doc, "metadata": {"namespace": "x"}}
    assert "metadata: " in crd_errors(nameless, release)[0]
    assert crd_errors({**doc, "kind": DGDR}, release)[0].startswith("spec")
    assert crd_errors({**doc, "kind": "Pod"}, release) == [
        f"<root>: Dynamo {release} serves no Pod {doc['apiVersion']}"
    ]


# -- the real CRDs' special fields --------------------------------------------------------------


def _dgdr_0_9(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": V1A,
        "kind": DGDR,
        "metadata": {"name": "r", "labels": {"app.kubernetes.io/name": "x"}},
        "spec": {
            "model": "m",
            "backend": "vllm",
            "profilingConfig": {"profilerImage": "img", **spec},
        },
    }


def test_real_crd_preserve_unknown_fields_and_int_or_string() -> None:
    free = _dgdr_0_9(config={"sweep": {"anything": [1, {"goes": True}]}, "snake_case": 1})
    assert crd_errors(free, "0.9") == []
    ok = _dgdr_0_9(resources={"limits": {"nvidia.com/gpu": 1, "memory": "80Gi"}})
    assert crd_errors(ok, "0.9") == []
    bad = _dgdr_0_9(resources={"limits": {"cpu": 1.5, "memory": "lots", "gpu": True}})
    assert crd_errors(bad, "0.9") == [
        "spec.profilingConfig.resources.limits.cpu: 1.5 is not of type 'integer', 'string'",
        "spec.profilingConfig.resources.limits.gpu: True is not of type 'integer', 'string'",
        "spec.profilingConfig.resources.limits.memory: 'lots' does not match "
        + repr(
            r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]"
            r"|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
        ),
    ]


def test_real_crd_enums_required_and_version_specific_fields() -> None:
    assert crd_errors(_dgdr_0_9(), "0.9") == []
    wrong = _dgdr_0_9()
    wrong["spec"]["backend"] = "tgi"
    del wrong["spec"]["profilingConfig"]["profilerImage"]
    assert crd_errors(wrong, "0.9") == [
        "spec.backend: 'tgi' is not one of ['vllm', 'sglang', 'trtllm']",
        "spec.profilingConfig: 'profilerImage' is a required property",
    ]
    mocker = _dgdr_0_9()
    mocker["spec"]["useMocker"] = True
    assert crd_errors(mocker, "0.9") == []
    assert crd_errors(mocker, "0.6") == ["spec.useMocker: unknown field 'useMocker'"]
    beta = {"apiVersion": V1B, "kind": DGDR, "metadata": {"name": "r"}, "spec": {"model": "m"}}
    assert crd_errors({**beta, "spec": {"model": "m", "backend": "auto"}}, "1.5") == []
    assert crd_errors({**beta, "spec": {"model": "m", "backend": "tgi"}}, "1.5")[0].startswith(
        "spec.backend: 'tgi' is not one of"
    )


def test_real_crd_embedded_resource_and_status() -> None:
    dgdr = _dgdr_0_9()
    dgdr["status"] = {
        "state": "Ready",
        "generatedDeployment": {
            "apiVersion": V1A,
            "kind": DGD,
            "metadata": {"name": "d"},
            "spec": {"free": "form"},
        },
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Done",
                "message": "",
                "lastTransitionTime": "2026-01-02T03:04:05Z",
            }
        ],
    }
    assert crd_errors(dgdr, "0.9") == []
    embedded = dgdr["status"]["generatedDeployment"]
    del embedded["kind"]
    embedded["metadata"] = {"name": "d", "labelz": {}}
    dgdr["status"]["conditions"][0]["lastTransitionTime"] = "yesterday"
    dgdr["status"]["conditions"][0]["status"] = "Yes"
    assert crd_errors(dgdr, "0.9") == [
        "status.conditions[0].lastTransitionTime: 'yesterday' is not a 'date-time'",
        "status.conditions[0].status: 'Yes' is not one of ['True', 'False', 'Unknown']",
        "status.generatedDeployment.metadata.labelz: unknown field 'labelz'",
        "status.generatedDeployment: 'kind' is a required property",
    ]


def test_real_crd_scaling_adapter_of_each_version() -> None:
    adapter: dict[str, Any] = {
        "apiVersion": V1B,
        "kind": DGDSA,
        "metadata": {"name": "a"},
        "spec": {"dgdRef": {"name": "d", "componentName": "decode"}, "replicas": 2},
    }
    assert crd_errors(adapter, "1.5") == []
    assert crd_errors({**adapter, "spec": {**adapter["spec"], "replicas": -1}}, "1.5") == [
        "spec.replicas: -1 is less than the minimum of 0"
    ]
    old = {**adapter, "apiVersion": V1A}  # v1alpha1 names the service, not the component
    assert crd_errors(old, "1.5") == [
        "spec.dgdRef.componentName: unknown field 'componentName'",
        "spec.dgdRef: 'serviceName' is a required property",
    ]


# -- each conversion rule, on small schemas -----------------------------------------------------


def test_objects_with_properties_refuse_unknown_fields_unless_preserved() -> None:
    closed = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert _errors(closed, {"a": "x"}) == []
    assert _errors(closed, {"a": "x", "b": 1}) == [
        "Additional properties are not allowed ('b' was unexpected)"
    ]
    kept = {**closed, "x-kubernetes-preserve-unknown-fields": True}
    assert _errors(kept, {"a": "x", "b": {"c": 1}}) == []
    assert _errors(kept, {"a": 1}) == ["1 is not of type 'string'"]
    bare = {"type": "object"}  # a server prunes every field of it
    assert _errors(bare, {}) == []
    assert _errors(bare, {"b": 1}) != []


def test_maps_keep_their_value_schema() -> None:
    mapping = {"type": "object", "additionalProperties": {"type": "integer", "minimum": 1}}
    assert _errors(mapping, {"x": 1, "y": 2}) == []
    assert _errors(mapping, {"x": 0}) == ["0 is less than the minimum of 1"]


def test_int_or_string_nullable_and_bounds() -> None:
    ios = {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert _errors(ios, 3) == [] and _errors(ios, "50%") == []
    assert _errors(ios, 0.5) == ["0.5 is not of type 'integer', 'string'"]
    assert _errors(ios, None) != []
    assert _errors({"type": "string"}, None) == ["None is not of type 'string'"]
    assert _errors({"type": "string", "nullable": True}, None) == []
    assert _errors({"type": "string", "enum": ["a"], "nullable": True}, None) == []
    assert _errors({"type": "string", "enum": ["a"], "nullable": True}, "b") != []
    exclusive = {"type": "integer", "minimum": 0, "exclusiveMinimum": True, "maximum": 3}
    assert _errors(exclusive, 1) == [] and _errors(exclusive, 3) == []
    assert _errors(exclusive, 0) == ["0 is less than or equal to the minimum of 0"]
    assert _errors(exclusive, 4) == ["4 is greater than the maximum of 3"]
    assert _errors({"type": "integer", "format": "int32"}, 2**40) == []  # a server ignores it


def test_embedded_resources_admit_type_meta_and_object_meta() -> None:
    embedded = {
        "type": "object",
        "x-kubernetes-embedded-resource": True,
        "properties": {"spec": {"type": "object", "properties": {"n": {"type": "integer"}}}},
    }
    resource = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    assert _errors(embedded, {**resource, "spec": {"n": 1}}) == []
    assert _errors(embedded, {**resource, "data": {}}) == [
        "Additional properties are not allowed ('data' was unexpected)"
    ]
    assert _errors(embedded, {"spec": {}}) == [
        "'apiVersion' is a required property",
        "'kind' is a required property",
    ]
    free = {**embedded, "x-kubernetes-preserve-unknown-fields": True}
    assert _errors(free, {**resource, "data": {"k": "v"}}) == []
    assert _errors(free, {**resource, "metadata": {"name": "UPPER"}}) != []


def test_junctors_are_value_validations_not_closed_objects() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "anyOf": [{"required": ["a"]}, {"properties": {"b": {"minLength": 2}}}],
    }
    assert _errors(schema, {"a": "x", "b": "y"}) == []
    assert _errors(schema, {"b": "yy"}) == []
    assert _errors(schema, {"b": "y"}) != []


def test_list_types_refuse_duplicates() -> None:
    validator = crd_validator("0.9", DGDR, V1A)
    toleration = {"key": "a", "operator": "Exists"}
    dgdr = _dgdr_0_9(tolerations=[toleration, toleration])  # atomic list: duplicates allowed
    assert validator.errors(dgdr) == []
    claims = [{"name": "gpu"}, {"name": "gpu", "request": "x"}]
    dgdr = _dgdr_0_9(resources={"claims": claims})
    assert validator.errors(dgdr) == [
        "spec.profilingConfig.resources.claims: Duplicate value: {'name': 'gpu'}"
    ]
    as_set = {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"}
    assert _errors(as_set, ["a", "b"]) == []
    assert _errors(as_set, ["a", "b", "a"]) == ["Duplicate value: 'a'"]


def test_formats_a_server_checks() -> None:
    assert _errors({"type": "string", "format": "date-time"}, "2026-01-02T03:04:05.5+01:00") == []
    assert _errors({"type": "string", "format": "date-time"}, "2026-01-02 03:04") != []
    assert _errors({"type": "string", "format": "byte"}, "aGVsbG8=") == []
    assert _errors({"type": "string", "format": "byte"}, "not base64!") != []
