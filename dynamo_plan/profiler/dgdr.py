"""The few DGDR fields offline profiling needs (DESIGN.md §3); full validation is `dgdr validate`.

Reads ``spec.model``, ``spec.backend``, ``spec.profilingConfig.config.sla{isl, osl, ttft, itl}``
and, optionally, ``spec.profilingConfig.config.sweep.{aicSystem, aicHfId}`` (the estimator's
system, and a model id that overrides ``spec.model`` for the estimator).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dynamo_plan.core.backends import BACKENDS
from dynamo_plan.errors import InputError
from dynamo_plan.formats.files import read_text

__all__ = ["DgdrIntent", "read_dgdr"]


@dataclass(frozen=True)
class DgdrIntent:
    """What a DGDR asks for: model, backend, SLA (tokens, ms) and the estimator hints."""

    model: str
    backend: str
    isl: int
    osl: int
    ttft_ms: float
    itl_ms: float
    system: str | None = None
    hf_id: str | None = None

    @property
    def estimator_model(self) -> str:
        """The model id the estimator should use (``aicHfId`` when given)."""
        return self.hf_id or self.model


def _get(doc: Any, path: str, file: Path) -> Any:
    node = doc
    walked: list[str] = []
    for key in path.split("."):
        if not isinstance(node, dict):
            where = ".".join(walked) or "the document"
            raise InputError(f"{file}: '{where}' must be a mapping, got {type(node).__name__}")
        walked.append(key)
        if key not in node or node[key] is None:
            return None
        node = node[key]
    return node


def _required(doc: Any, path: str, file: Path, expected: str) -> Any:
    value = _get(doc, path, file)
    if value is None:
        raise InputError(f"{file}: missing '{path}'; expected {expected}")
    return value


def _positive(doc: Any, path: str, file: Path, integer: bool) -> Any:
    what = "a positive integer (tokens)" if integer else "a positive number (ms)"
    v = _required(doc, path, file, what)
    ok = isinstance(v, int) if integer else isinstance(v, int | float)
    if isinstance(v, bool) or not ok or not v > 0:
        raise InputError(f"{file}: '{path}' must be {what}, got {v!r}")
    return int(v) if integer else float(v)


def _optional_str(doc: Any, path: str, file: Path) -> str | None:
    v = _get(doc, path, file)
    if v is not None and (not isinstance(v, str) or not v):
        raise InputError(f"{file}: '{path}' must be a non-empty string, got {v!r}")
    return v


def read_dgdr(path: Path) -> DgdrIntent:
    """Parse the profiling intent of a DGDR YAML file; InputError names the field and problem."""
    text = read_text(path, "DGDR")  # InputError: unreadable, binary, UTF-16
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise InputError(f"{path}{where}: invalid YAML ({getattr(e, 'problem', e)})") from e
    if not isinstance(doc, dict):
        raise InputError(f"{path}: expected a DynamoGraphDeploymentRequest mapping")
    kind = doc.get("kind")
    if kind is not None and kind != "DynamoGraphDeploymentRequest":
        raise InputError(f"{path}: 'kind' is {kind!r}; expected DynamoGraphDeploymentRequest")
    model = _required(doc, "spec.model", path, "the model id (string)")
    if not isinstance(model, str) or not model:
        raise InputError(f"{path}: 'spec.model' must be a non-empty string, got {model!r}")
    backend = _required(doc, "spec.backend", path, f"one of {', '.join(BACKENDS)}")
    if backend not in BACKENDS:
        raise InputError(
            f"{path}: 'spec.backend' is {backend!r}; expected one of {', '.join(BACKENDS)}"
        )
    sla = "spec.profilingConfig.config.sla"
    _required(doc, sla, path, "a mapping with isl, osl, ttft, itl")
    sweep = "spec.profilingConfig.config.sweep"
    return DgdrIntent(
        model=model,
        backend=backend,
        isl=_positive(doc, f"{sla}.isl", path, integer=True),
        osl=_positive(doc, f"{sla}.osl", path, integer=True),
        ttft_ms=_positive(doc, f"{sla}.ttft", path, integer=False),
        itl_ms=_positive(doc, f"{sla}.itl", path, integer=False),
        system=_optional_str(doc, f"{sweep}.aicSystem", path),
        hf_id=_optional_str(doc, f"{sweep}.aicHfId", path),
    )
