"""The shipped DGDR schemas against the real Dynamo CRDs of every release, and the examples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from dynamo_plan.core.releases import DynamoRelease
from dynamo_plan.deploy.dgdr import dgdr_schema, validate_file
from dynamo_plan.deploy.dgdr_model import ALPHA, BETA
from tests.crd_schema import crd_documents, crd_errors

EXAMPLES = sorted((Path(__file__).parent / "examples").glob("*.yaml"))
DGDRS = sorted((Path(__file__).parents[1] / "data" / "dgdrs").glob("*.yaml"))
#: DGDRs as Dynamo's own repository and documentation write them (v1alpha1 both spellings, v1beta1)
DYNAMO = sorted((Path(__file__).parents[1] / "data" / "dgdrs" / "dynamo").glob("*.yaml"))


@pytest.mark.parametrize("version", [ALPHA, BETA])
def test_schema_is_valid_2020_12(version: str) -> None:
    Draft202012Validator.check_schema(dgdr_schema(version))
    assert dgdr_schema(version)["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("example", EXAMPLES + DGDRS, ids=lambda p: p.stem)
def test_examples_valid_without_warnings(example: Path) -> None:
    report = validate_file(example)
    assert report.valid and report.documents >= 1, report.errors
    assert report.warnings == []


@pytest.mark.parametrize("release", [DynamoRelease.v0_9, DynamoRelease.v1_5])
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_examples_valid_for_the_crds_since_0_9(example: Path, release: DynamoRelease) -> None:
    """The examples use useMocker, which 0.9 introduced: an API server of 0.9 or 1.5 takes them."""
    for doc in yaml.safe_load_all(example.read_text()):
        assert crd_errors(doc, release.value) == []


@pytest.mark.parametrize("dgdr", DYNAMO, ids=lambda p: p.stem)
def test_dynamos_own_dgdrs_are_valid_and_no_crd_field_is_unknown(dgdr: Path) -> None:
    report = validate_file(dgdr)
    assert report.valid, report.errors
    crd_paths = {"spec." + k for k in _crd_spec(DynamoRelease.v1_5, "v1beta1")["properties"]}
    crd_paths |= {"spec." + k for k in _crd_spec(DynamoRelease.v1_5, "v1alpha1")["properties"]}
    for warning in report.warnings:  # only keys inside free-form config may be unknown
        assert warning.path.startswith("spec.profilingConfig.config."), warning
        assert warning.path not in crd_paths


def _crd_spec(release: DynamoRelease, version: str) -> dict[str, Any]:
    crd = next(
        c for c in crd_documents(release.value)
        if c["spec"]["names"]["kind"] == "DynamoGraphDeploymentRequest"
    )  # fmt: skip
    served = next(v for v in crd["spec"]["versions"] if v["name"] == version)
    spec: dict[str, Any] = served["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return spec


def _pairs(crd: dict[str, Any], ours: dict[str, Any], path: str) -> list[tuple[str, Any, Any]]:
    """(path, CRD subschema, our subschema) for every property the CRD declares (below an
    embedded or free-form object of ours, the CRD's detail is not followed)."""
    out = [(path, crd, ours)]
    if ours.get("additionalProperties") is True and "properties" not in ours:
        return out
    for key, sub in crd.get("properties", {}).items():
        where = f"{path}.{key}" if path else key
        props = ours.get("properties", {})
        if key not in props and ours.get("additionalProperties") is True:
            continue
        assert key in props, f"our schema lacks {where}"
        out += _pairs(sub, props[key], where)
    if isinstance(crd.get("items"), dict):
        out += _pairs(crd["items"], ours.get("items", {}), f"{path}[]")
    if isinstance(crd.get("additionalProperties"), dict):
        out += _pairs(
            crd["additionalProperties"], ours.get("additionalProperties", {}), f"{path}{{}}"
        )
    return out


CASES = [(r, "v1alpha1", ALPHA) for r in DynamoRelease] + [(DynamoRelease.v1_5, "v1beta1", BETA)]


@pytest.mark.parametrize(("release", "version", "api"), CASES, ids=lambda c: str(c))
def test_schema_declares_every_crd_spec_field_with_a_compatible_type(
    release: DynamoRelease, version: str, api: str
) -> None:
    """No field a release's CRD defines is unknown to our schema of that apiVersion."""
    pairs = _pairs(_crd_spec(release, version), dgdr_schema(api)["properties"]["spec"], "spec")
    assert len(pairs) > 15
    for path, crd, ours in pairs:
        if "type" in crd and "type" in ours:
            ours_types = {ours["type"]} if isinstance(ours["type"], str) else set(ours["type"])
            assert crd["type"] in ours_types, path
        if "enum" in crd and not (path == "spec.backend" and api == ALPHA):
            assert set(crd["enum"]) <= set(ours.get("enum", crd["enum"])), path
        assert set(ours.get("required", [])) >= set(crd.get("required", [])), path
