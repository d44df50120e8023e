"""``profilingConfig.config.planner`` keys → ``dynamo-plan plan run`` flags.

Mapping (documented contract, tested in tests/deploy/test_render.py):

* camelCase → kebab-case: ``maxGpuBudget`` → ``--max-gpu-budget``,
  ``prefillEngineNumGpu`` → ``--prefill-engine-num-gpu``.
* A leading ``planner`` word is stripped, because the ``plan`` commands' own flags do not carry it:
  ``plannerMinEndpoint: 2`` → ``--min-endpoint 2`` (the flag of ``plan decide``).
* ``true`` → the bare flag (``noCorrection: true`` → ``--no-correction``); ``false`` → omitted.
* Numbers: integers (and whole floats) as integers, other floats with ``repr`` (no rounding);
  strings as they are. Lists, objects and null are refused (InputError naming the key).

Keys the schema does not know are passed through the same way (the schema warns about them).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from dynamo_plan.errors import InputError

__all__ = ["flag_name", "flag_value", "planner_flags"]

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_PLANNER_PREFIX = re.compile(r"^planner(?=[A-Z])")


def flag_name(key: str) -> str:
    """``plannerMinEndpoint`` → ``--min-endpoint``; ``maxGpuBudget`` → ``--max-gpu-budget``."""
    stripped = _PLANNER_PREFIX.sub("", key)
    return "--" + _CAMEL_BOUNDARY.sub("-", stripped).lower().replace("_", "-")


def flag_value(where: str, value: Any) -> str:
    """The command-line text of one scalar value (see the module docstring)."""
    if isinstance(value, bool) or value is None or isinstance(value, list | dict):
        raise InputError(f"{where}: expected a number or a string, got {type(value).__name__}")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InputError(f"{where}: must be a finite number, got {value}")
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value
    raise InputError(f"{where}: expected a number or a string, got {type(value).__name__}")


def planner_flags(planner: Mapping[str, Any], where: str = "planner") -> list[str]:
    """Arguments for ``plan run`` from the planner section, in the section's key order."""
    args: list[str] = []
    for key, value in planner.items():
        name = flag_name(str(key))
        if isinstance(value, bool):
            if value:
                args.append(name)
            continue
        args += [name, flag_value(f"{where}.{key}", value)]
    return args
