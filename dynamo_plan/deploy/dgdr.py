"""Validating DynamoGraphDeploymentRequests against ``schemas/dgdr.schema.json`` (DESIGN.md §3).

Each finding names the document, the field path (``spec.profilingConfig.config.sla.ttft``), the
1-based line of that field in the file and a human message ("must be > 0 ms, got -5"). Keys the
schema does not know are warnings with the nearest known name (difflib), never errors: Dynamo's
CRD leaves ``profilingConfig.config`` free-form and users write more there than we model.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, ValidationError

from dynamo_plan.deploy.yaml_lines import YamlSyntaxError, line_of, load_documents
from dynamo_plan.resources import shipped_file

__all__ = [
    "API_VERSION",
    "BACKENDS",
    "KIND",
    "FileReport",
    "Finding",
    "check_document",
    "dgdr_schema",
    "format_path",
    "validate_file",
    "validate_text",
]

API_VERSION = "nvidia.com/v1alpha1"
KIND = "DynamoGraphDeploymentRequest"
BACKENDS = ("vllm", "sglang", "trtllm")

PathSteps = Sequence[str | int]


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


@cache
def dgdr_schema() -> dict[str, Any]:
    """The shipped DGDR JSON Schema (2020-12)."""
    schema: dict[str, Any] = json.loads(
        shipped_file("schemas", "dgdr.schema.json").read_text(encoding="utf-8")
    )
    return schema


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(dgdr_schema())


def format_path(steps: PathSteps) -> str:
    """``["spec", "tolerations", 0, "key"]`` → ``spec.tolerations[0].key`` ("" for the root)."""
    out = ""
    for step in steps:
        if isinstance(step, int):
            out += f"[{step}]"
        else:
            out += f".{step}" if out else str(step)
    return out


_TYPE_NAMES = {
    "object": "an object",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean (true or false)",
    "null": "nothing",
}


def _describe(value: Any) -> str:
    """How a found value reads in a message: containers by kind, scalars by value."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return repr(text)
    return f"a {type(value).__name__} ({str(value)[:40]})"


def _number(value: float) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    return f"{value:g}" if isinstance(value, float) else str(value)


def _expected(types: Any) -> str:
    names = [types] if isinstance(types, str) else list(types)
    return " or ".join(_TYPE_NAMES.get(t, t) for t in names)


def _suggest(word: str, choices: Sequence[str]) -> str | None:
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not match:
        lowered = {c.lower(): c for c in choices}
        return lowered.get(word.lower())
    return match[0]


def _messages(error: ValidationError) -> list[tuple[list[str | int], str]]:
    """(path steps, message) for one jsonschema error; ``required`` gives one per missing field."""
    path: list[str | int] = list(error.absolute_path)
    kind, expected, value, schema = (
        error.validator,
        error.validator_value,
        error.instance,
        error.schema,
    )
    unit = f" {schema['x-unit']}" if isinstance(schema, dict) and "x-unit" in schema else ""
    if kind == "required" and isinstance(value, dict):
        missing = [name for name in expected if name not in value]
        return [([*path, name], f"required field missing: {format_path([*path, name])}")
                for name in missing]  # fmt: skip
    if kind == "anyOf" and isinstance(schema, dict) and "x-required-message" in schema:
        steps = [*path, schema["x-required-message"]]
        return [(steps, f"required field missing: {format_path(steps)}")]
    if kind == "type":
        message = f"expected {_expected(expected)}, got {_describe(value)}"
    elif kind == "enum":
        choices = [str(c) for c in expected]
        message = f"expected one of {', '.join(choices)}, got {_describe(value)}"
        hint = _suggest(value, choices) if isinstance(value, str) else None
        if hint is not None:
            message += f" (did you mean {hint!r}?)"
    elif kind == "const":
        message = f"expected {expected!r}, got {_describe(value)}"
    elif kind == "exclusiveMinimum":
        message = f"must be > {_number(expected)}{unit}, got {_describe(value)}"
    elif kind == "minimum":
        message = f"must be >= {_number(expected)}{unit}, got {_describe(value)}"
    elif kind == "exclusiveMaximum":
        message = f"must be < {_number(expected)}{unit}, got {_describe(value)}"
    elif kind == "maximum":
        message = f"must be <= {_number(expected)}{unit}, got {_describe(value)}"
    elif kind == "minLength":
        message = "must not be empty"
    elif kind == "maxLength":
        message = f"must be at most {expected} characters, got {len(value)}"
    elif kind == "pattern":
        rule = schema.get("x-pattern-message", f"must match {expected}")
        message = f"{rule}, got {_describe(value)}"
    elif kind == "anyOf":
        message = f"expected an integer or a quantity such as '8' or '16Gi', got {_describe(value)}"
    else:  # pragma: no cover - every keyword the schema uses is handled above
        message = error.message
    return [(path, message)]


def _walk(
    value: Any, schema: Any, path: list[str | int], errors: list[tuple[list[str | int], str]],
    warnings: list[tuple[list[str | int], str]],
) -> None:  # fmt: skip
    """Unknown keys (warnings), non-string keys and non-finite numbers (errors)."""
    schema = schema if isinstance(schema, dict) else {}
    if isinstance(value, float) and not math.isfinite(value):
        errors.append((path, f"must be a finite number, got {_number(value)}"))
    elif isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if not isinstance(key, str):
                errors.append(([*path, str(key)], f"keys must be strings, got {_describe(key)}"))
                continue
            if isinstance(props, dict) and key in props:
                _walk(item, props[key], [*path, key], errors, warnings)
                continue
            if isinstance(props, dict) and not isinstance(extra, dict):
                hint = _suggest(key, sorted(props))
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
    if data is not None:
        _walk(data, dgdr_schema(), [], raw_errors, raw_warnings)
    for error in _validator().iter_errors(data):
        raw_errors.extend(_messages(error))

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
    try:
        docs = load_documents(text)
    except YamlSyntaxError as e:
        return FileReport(file, 0, [Finding(0, "", e.line, e.message, e.column)])
    docs = [d for d in docs if d.data is not None]
    if not docs:
        message = "empty file: expected a DynamoGraphDeploymentRequest"
        return FileReport(file, 0, [Finding(0, "", 1, message)])
    errors: list[Finding] = []
    warnings: list[Finding] = []
    for d in docs:
        doc_errors, doc_warnings = check_document(d.data, d.node, d.index)
        errors.extend(doc_errors)
        warnings.extend(doc_warnings)
    return FileReport(file, len(docs), errors, warnings)


def validate_file(path: Path) -> FileReport:
    """Read and validate one file; an unreadable or non-UTF-8 file is an invalid report."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        return FileReport(str(path), 0, [Finding(0, "", None, f"cannot read: {e.strerror or e}")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        message = f"not UTF-8 text (byte {e.start} is 0x{raw[e.start]:02x})"
        return FileReport(str(path), 0, [Finding(0, "", line, message)])
    return validate_text(text, str(path))
