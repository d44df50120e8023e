"""Where the shipped data folders (``schemas/``, ``templates/``, ``sample_traces/``) live.

In a wheel they are installed as ``dynamo_plan/_shipped/<name>``; in a source checkout (editable
install, tests) they are the top-level folders of the repository. Computing a path opens nothing.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from dynamo_plan.errors import InputError

if TYPE_CHECKING:  # jsonschema is imported when a file is validated, not at CLI start
    from jsonschema import Draft202012Validator

ShippedFolder = Literal["schemas", "templates", "sample_traces"]

_PACKAGE_DIR = Path(__file__).resolve().parent


def shipped_dir(name: ShippedFolder) -> Path:
    """Directory of a shipped data folder, wheel layout first, then the source checkout."""
    for candidate in (_PACKAGE_DIR / "_shipped" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise InputError(f"shipped folder '{name}' is missing from this installation of dynamo-plan")


def shipped_file(name: ShippedFolder, relative: str) -> Path:
    """A file inside a shipped folder; InputError naming the available files when absent."""
    folder = shipped_dir(name)
    path = folder / relative
    if not path.is_file():
        known = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        raise InputError(f"no shipped file '{name}/{relative}'; available: {', '.join(known)}")
    return path


@cache
def shipped_schema(relative: str) -> dict[str, Any]:
    """The shipped JSON Schema ``schemas/<relative>`` (2020-12), read once."""
    schema: dict[str, Any] = json.loads(
        shipped_file("schemas", relative).read_text(encoding="utf-8")
    )
    return schema


@cache
def schema_validator(relative: str) -> Draft202012Validator:
    """A validator for the shipped JSON Schema ``schemas/<relative>``, built once."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(shipped_schema(relative))
