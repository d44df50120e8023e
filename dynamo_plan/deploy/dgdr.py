"""Validating DynamoGraphDeploymentRequests against the shipped schemas (DESIGN.md §3).

``schemas/dgdr.schema.json`` checks ``nvidia.com/v1alpha1`` documents (its
``profilingConfig.config`` sections take each key in camelCase and, as Dynamo 0.6 wrote them, in
snake_case: :func:`dgdr_schema` adds the snake_case names), ``schemas/dgdr-v1beta1.schema.json``
checks ``nvidia.com/v1beta1`` ones (Dynamo 1.x). :func:`dynamo_plan.deploy.dgdr_model.spelling_issues`
adds what a schema cannot say: a field of the other apiVersion (error, naming its spelling there),
``deployMocker`` (the interim name of ``useMocker``; warning), one key in both spellings (error).

Each finding names the document, the field path (``spec.profilingConfig.config.sla.ttft``), the
1-based line of that field in the file and a human message ("must be > 0 ms, got -5"). Keys the
schema does not know are warnings with the nearest known name (difflib), never errors: Dynamo's
CRD leaves ``profilingConfig.config`` free-form and users write more there than we model.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from dynamo_plan.deploy.dgdr_model import ALPHA, BETA, CONFIG_SECTIONS, spelling_issues
from dynamo_plan.formats.schema_messages import (
    describe,
    format_path,
    messages,
    number,
    suggest,
)
from dynamo_plan.formats.yaml_lines import YamlDoc, YamlSyntaxError, line_of, load_documents
from dynamo_plan.resources import shipped_schema

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

__all__ = [
    "API_VERSION",
    "API_VERSIONS",
    "KIND",
    "FileReport",
    "Finding",
    "check_document",
    "dgdr_schema",
    "format_path",
    "validate_document_text",
    "validate_file",
    "validate_text",
]

#: the apiVersion ``dgdr create`` wrote before releases were chosen (kept for callers)
API_VERSION = ALPHA
API_VERSIONS = (ALPHA, BETA)
KIND = "DynamoGraphDeploymentRequest"


@dataclass(frozen=True)
class Finding:
    """One error or warning: document index (0-based), field path, 1-based line, message."""

    doc: int
    path: str
    line: int | None
    message: str
    column: int | None = None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.column is None:
            del out["column"]
        return {k: out[k] for k in ("path", "line", "column", "message", "doc") if k in out}


@dataclass(frozen=True)
class FileReport:
    """The result of validating one file: no errors means valid (warnings allowed)."""

    file: str
    documents: int
    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "valid": self.valid,
            "documents": self.documents,
            "errors": [f.as_dict() for f in self.errors],
            "warnings": [f.as_dict() for f in self.warnings],
        }


def _snake(key: str) -> str:
    """``aicHfId`` → ``aic_hf_id`` (the inverse of dgdr_model.camel_key)."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in key)


@functools.cache
def _schema(api_version: str) -> dict[str, Any]:
    if api_version == BETA:
        return shipped_schema("dgdr-v1beta1.schema.json")
    schema = copy.deepcopy(shipped_schema("dgdr.schema.json"))
    spec = schema["properties"]["spec"]["properties"]
    config = spec["profilingConfig"]["properties"]["config"]["properties"]
    for section in CONFIG_SECTIONS:
        props = config.get(section, {}).get("properties")
        if isinstance(props, dict):
            props.update({_snake(k): v for k, v in list(props.items()) if _snake(k) != k})
    return schema


def dgdr_schema(api_version: str = ALPHA) -> dict[str, Any]:
    """The DGDR JSON Schema (2020-12) of ``api_version`` (v1alpha1: with the snake_case names)."""
    return _schema(api_version)


@functools.cache
def _validator(api_version: str) -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(_schema(api_version))


def _walk(
    value: Any, schema: Any, path: list[str | int], errors: list[tuple[list[str | int], str]],
    warnings: list[tuple[list[str | int], str]],
) -> None:  # fmt: skip
    """Unknown keys (warnings), non-string keys and non-finite numbers (errors)."""
    schema = schema if isinstance(schema, dict) else {}
    if isinstance(value, float) and not math.isfinite(value):
        errors.append((path, f"must be a finite number, got {number(value)}"))
    elif isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if not isinstance(key, str):
                errors.append(([*path, str(key)], f"keys must be strings, got {describe(key)}"))
                continue
            if isinstance(props, dict) and key in props:
                _walk(item, props[key], [*path, key], errors, warnings)
                continue
            if isinstance(props, dict) and not isinstance(extra, dict):
                hint = suggest(key, sorted(props))
                message = (
                    f"`{key}`: did you mean `{hint}`?"
                    if hint is not None
                    else f"`{key}`: unknown key (known: {', '.join(sorted(props))})"
                )
                warnings.append(([*path, key], message))
            _walk(item, extra, [*path, key], errors, warnings)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _walk(item, schema.get("items"), [*path, i], errors, warnings)


def check_document(
    data: Any, node: yaml.Node | None = None, doc: int = 0
) -> tuple[list[Finding], list[Finding]]:
    """(errors, warnings) of one parsed document; lines come from ``node`` when given."""
    raw_errors: list[tuple[list[str | int], str]] = []
    raw_warnings: list[tuple[list[str | int], str]] = []
    version = data.get("apiVersion") if isinstance(data, dict) else None
    version = BETA if version == BETA else ALPHA
    if data is not None:
        _walk(data, dgdr_schema(version), [], raw_errors, raw_warnings)
    for error in _validator(version).iter_errors(data):
        raw_errors.extend(messages(error))
    spelled_errors, spelled_warnings = spelling_issues(data)
    raw_errors += [(list(i.steps), i.message) for i in spelled_errors]
    # an other-version field is an error, not also an unknown key
    refused = {tuple(i.steps) for i in spelled_errors}
    raw_warnings = [w for w in raw_warnings if tuple(w[0]) not in refused]
    raw_warnings += [(list(i.steps), i.message) for i in spelled_warnings]

    def findings(raw: list[tuple[list[str | int], str]]) -> list[Finding]:
        seen: set[tuple[str, str]] = set()
        out: list[Finding] = []
        for steps, message in raw:
            key = (format_path(steps), message)
            if key in seen:
                continue
            seen.add(key)
            line = line_of(node, steps) if node is not None else None
            out.append(Finding(doc, key[0], line, message))
        return sorted(out, key=lambda f: (f.line or 0, f.path))

    return findings(raw_errors), findings(raw_warnings)


def validate_text(text: str, file: str) -> FileReport:
    """Validate every document of a YAML stream (empty documents between ``---`` are skipped)."""
    return _validate_text(text, file)[1]


def _validate_text(text: str, file: str) -> tuple[Sequence[YamlDoc], FileReport]:
    try:
        docs = load_documents(text)
    except YamlSyntaxError as e:
        return [], FileReport(file, 0, [Finding(0, "", e.line, e.message, e.column)])
    docs = [d for d in docs if d.data is not None]
    if not docs:
        message = "empty file: expected a DynamoGraphDeploymentRequest"
        return docs, FileReport(file, 0, [Finding(0, "", 1, message)])
    errors: list[Finding] = []
    warnings: list[Finding] = []
    for d in docs:
        doc_errors, doc_warnings = check_document(d.data, d.node, d.index)
        errors.extend(doc_errors)
        warnings.extend(doc_warnings)
    return docs, FileReport(file, len(docs), errors, warnings)


def validate_document_text(path: Path) -> tuple[Sequence[YamlDoc], FileReport]:
    """The documents of one file (with their nodes) and its report, read once."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        message = f"cannot read: {e.strerror or e}"
        return [], FileReport(str(path), 0, [Finding(0, "", None, message)])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        message = f"not UTF-8 text (byte {e.start} is 0x{raw[e.start]:02x})"
        return [], FileReport(str(path), 0, [Finding(0, "", line, message)])
    return _validate_text(text, str(path))


def validate_file(path: Path) -> FileReport:
    """Read and validate one file; an unreadable or non-UTF-8 file is an invalid report."""
    return validate_document_text(path)[1]
