"""The shipped DGDR schema against the real Dynamo CRD, and the project's example DGDRs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator, Draft202012Validator

from dynamo_plan.deploy.dgdr import dgdr_schema, validate_file
from tests.deploy.crd import crd_schema, pruned_fields

EXAMPLES = sorted((Path(__file__).parent / "examples").glob("*.yaml"))


def test_schema_is_valid_2020_12() -> None:
    Draft202012Validator.check_schema(dgdr_schema())
    assert dgdr_schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_valid_without_warnings(example: Path) -> None:
    report = validate_file(example)
    assert report.valid and report.documents >= 1, report.errors
    assert report.warnings == []


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_valid_for_the_crd(shared_data: Path, example: Path) -> None:
    crd = crd_schema(shared_data)
    for doc in yaml.safe_load_all(example.read_text()):
        errors = [e.message for e in Draft7Validator(crd).iter_errors(doc)]
        assert errors == []
        assert pruned_fields(doc, crd) == []


def _pairs(crd: dict[str, Any], ours: dict[str, Any], path: str) -> list[tuple[str, Any, Any]]:
    """(path, CRD subschema, our subschema) for every property the CRD declares."""
    out = [(path, crd, ours)]
    for key, sub in crd.get("properties", {}).items():
        where = f"{path}.{key}" if path else key
        assert key in ours.get("properties", {}), f"our schema lacks {where}"
        out += _pairs(sub, ours["properties"][key], where)
    if isinstance(crd.get("items"), dict):
        out += _pairs(crd["items"], ours.get("items", {}), f"{path}[]")
    if isinstance(crd.get("additionalProperties"), dict):
        out += _pairs(
            crd["additionalProperties"], ours.get("additionalProperties", {}), f"{path}{{}}"
        )
    return out


def test_schema_declares_every_crd_spec_field_with_a_compatible_type(shared_data: Path) -> None:
    crd_spec = crd_schema(shared_data)["properties"]["spec"]
    pairs = _pairs(crd_spec, dgdr_schema()["properties"]["spec"], "spec")
    assert len(pairs) > 30
    for path, crd, ours in pairs:
        if "type" in crd and "type" in ours:
            ours_types = {ours["type"]} if isinstance(ours["type"], str) else set(ours["type"])
            assert crd["type"] in ours_types, path
        if "enum" in crd:
            assert set(crd["enum"]) <= set(ours.get("enum", crd["enum"])), path
        assert set(ours.get("required", [])) >= set(crd.get("required", [])), path
