"""One-line messages for JSON Schema errors, shared by every validated file (the DGDR, the
``plan run`` config): what was expected, what was found, with a did-you-mean for near misses.

Schemas may carry ``x-unit`` (appended to bounds), ``x-pattern-message`` (replaces "must match
<regex>"), ``x-not-message`` (says why a ``not`` value is refused) and ``x-required-message`` (names the field an ``anyOf`` of requirements wants).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only a type here: importing jsonschema is left to the validators
    from jsonschema import ValidationError

__all__ = [
    "TYPE_NAMES",
    "PathSteps",
    "describe",
    "error_summary",
    "expected_types",
    "format_path",
    "messages",
    "number",
    "suggest",
]

PathSteps = Sequence[str | int]


def error_summary(first: str, count: int, noun: str = "", hint: str = "") -> str:
    """The one-line report of ``count`` errors found in a file: the ``first`` (already located,
    e.g. ``file:line: field: message``) and how many more there are, as in
    ``first (and 2 more)``, ``first (and 2 more problem(s))`` (``noun``) or
    ``first (and 2 more: dynamo-plan dgdr validate f.yaml)`` (``hint``: where to see them all).
    Just ``first`` when it is the only one."""
    if count <= 1:
        return first
    return (
        f"{first} (and {count - 1} more{f' {noun}' if noun else ''}{f': {hint}' if hint else ''})"
    )


def format_path(steps: PathSteps) -> str:
    """``["spec", "tolerations", 0, "key"]`` → ``spec.tolerations[0].key`` ("" for the root)."""
    out = ""
    for step in steps:
        if isinstance(step, int):
            out += f"[{step}]"
        else:
            out += f".{step}" if out else str(step)
    return out


TYPE_NAMES = {
    "object": "an object",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean (true or false)",
    "null": "nothing",
}


def describe(value: Any) -> str:
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
        return number(value)
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return repr(text)
    return f"a {type(value).__name__} ({str(value)[:40]})"


def number(value: float) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    return f"{value:g}" if isinstance(value, float) else str(value)


def expected_types(types: Any) -> str:
    names = [types] if isinstance(types, str) else list(types)
    return " or ".join(TYPE_NAMES.get(t, t) for t in names)


def suggest(word: str, choices: Sequence[str]) -> str | None:
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not match:
        lowered = {c.lower(): c for c in choices}
        return lowered.get(word.lower())
    return match[0]


def messages(error: ValidationError) -> list[tuple[list[str | int], str]]:
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
        message = f"expected {expected_types(expected)}, got {describe(value)}"
    elif kind == "enum":
        choices = [str(c) for c in expected]
        message = f"expected one of {', '.join(choices)}, got {describe(value)}"
        hint = suggest(value, choices) if isinstance(value, str) else None
        if hint is not None:
            message += f" (did you mean {hint!r}?)"
    elif kind == "const":
        message = f"expected {expected!r}, got {describe(value)}"
    elif kind == "exclusiveMinimum":
        message = f"must be > {number(expected)}{unit}, got {describe(value)}"
    elif kind == "minimum":
        message = f"must be >= {number(expected)}{unit}, got {describe(value)}"
    elif kind == "exclusiveMaximum":
        message = f"must be < {number(expected)}{unit}, got {describe(value)}"
    elif kind == "maximum":
        message = f"must be <= {number(expected)}{unit}, got {describe(value)}"
    elif kind == "minLength":
        message = "must not be empty"
    elif kind == "maxLength":
        message = f"must be at most {expected} characters, got {len(value)}"
    elif kind == "pattern":
        rule = schema.get("x-pattern-message", f"must match {expected}")
        message = f"{rule}, got {describe(value)}"
    elif kind == "not":
        rule = schema.get("x-not-message", "value not allowed")
        message = f"{rule}, got {describe(value)}"
    elif kind == "anyOf":
        message = f"expected an integer or a quantity such as '8' or '16Gi', got {describe(value)}"
    else:  # pragma: no cover - every keyword the schema uses is handled above
        message = error.message
    return [(path, message)]
