"""``profilingConfig.config.planner`` keys → ``dynamo-plan plan run`` flags.

Every flag this module emits is a ``plan run`` setting (a field of
:class:`dynamo_plan.live.config.RunSettings`); keys that have no such flag are dropped with a
warning the caller reports, never passed on as unknown flags. The rules, in order:

Dynamo planner keys (tested in tests/deploy/test_planner_args.py):

======================================  =======================================================
key                                      ``plan run``
======================================  =======================================================
``noOperation: true``                    ``--connector none`` (observe and log only; wins over
                                         ``environment``); ``false``: no effect
``environment: kubernetes``              ``--connector kubernetes`` (the default)
``environment: observe-only``            ``--connector none``
``environment: virtual``                 InputError naming the key: the virtual connector needs a
                                         decision store (``--state``/``--etcd``) and an external
                                         scaler that a DGD does not provide
``adjustmentInterval``                   ``--interval`` (s)
``loadPredictor``                        ``--predictor`` (checked against the predictor registry)
``prometheusEndpoint``                   ``--prometheus-url`` (else ``$PROMETHEUS_ENDPOINT``)
``plannerMinEndpoint``                   ``--min-endpoint`` (the leading ``planner`` word dropped)
``metricPullingInterval``                dropped, warning: ``plan run`` reads the frontend's
                                         metrics once per ``--interval``
``logDir``                               dropped, warning: ``plan run`` logs one JSON line per
                                         tick to stderr (``kubectl logs``)
``loadPredictionWindowSize``             dropped, warning: ``plan run`` has no window flag; the
                                         predictors keep their own windows (arima 100 points,
                                         constant and default 50)
======================================  =======================================================

Every other key: camelCase → kebab-case (``maxGpuBudget`` → ``--max-gpu-budget``, a leading
``planner`` word stripped); it is emitted when that is a ``plan run`` setting flag, else dropped
with a warning. Keys whose flag the caller derives itself (``reserved``: ``--profile``,
``--model``, ``--dgd``, ``--ttft`` … in :mod:`dynamo_plan.deploy.render`) are dropped with a
warning naming where the value comes from.

Values: ``true`` → the bare flag for a switch (``noCorrection: true`` → ``--no-correction``),
``false`` → omitted; numbers: integers (and whole floats) as integers, other floats with ``repr``
(no rounding); strings as they are. Lists, objects, null, and booleans for non-switch settings are
refused (InputError naming the key).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from dynamo_plan.errors import InputError
from dynamo_plan.live.config import RunSettings, flag
from dynamo_plan.predict.registry import predictor_names

__all__ = [
    "DROPPED_KEYS",
    "RENAMED_KEYS",
    "RUN_FLAGS",
    "PlannerFlags",
    "flag_name",
    "flag_value",
    "planner_flags",
]

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_PLANNER_PREFIX = re.compile(r"^planner(?=[A-Z])")

#: ``plan run`` setting flags → whether each is a switch (a flag without a value).
RUN_FLAGS: dict[str, bool] = {flag(f.name): f.type in (bool, "bool") for f in fields(RunSettings)}
#: Dynamo keys whose ``plan run`` flag is not their kebab-case spelling.
RENAMED_KEYS: dict[str, str] = {
    "adjustmentInterval": "--interval",
    "loadPredictor": "--predictor",
    "prometheusEndpoint": "--prometheus-url",
}
#: Dynamo keys ``plan run`` has no use for → why (the warning's text).
DROPPED_KEYS: dict[str, str] = {
    "metricPullingInterval": "plan run reads the frontend's metrics once per --interval "
    "(adjustmentInterval)",
    "logDir": "plan run logs one JSON line per tick to stderr (kubectl logs)",
    "loadPredictionWindowSize": "plan run has no predictor window flag; the predictors keep "
    "their own windows (arima 100 points, constant and default 50)",
}
_ENVIRONMENTS = {"kubernetes": "kubernetes", "observe-only": "none"}


@dataclass(frozen=True)
class PlannerFlags:
    """The translated planner section.

    ``connector``: ``kubernetes`` or ``none``; ``flags``: flag → value (None for a switch), in
    the section's key order; ``warnings``: one line per dropped key.
    """

    connector: str
    flags: dict[str, str | None]
    warnings: list[str]

    def args(self) -> list[str]:
        """``flags`` as an argument list."""
        out: list[str] = []
        for name, value in self.flags.items():
            out += [name] if value is None else [name, value]
        return out


def flag_name(key: str) -> str:
    """``plannerMinEndpoint`` → ``--min-endpoint``; ``maxGpuBudget`` → ``--max-gpu-budget``;
    the Dynamo renames of :data:`RENAMED_KEYS` (``adjustmentInterval`` → ``--interval``)."""
    if key in RENAMED_KEYS:
        return RENAMED_KEYS[key]
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


def _connector(planner: Mapping[str, Any], where: str) -> str:
    no_op = planner.get("noOperation", False)
    if not isinstance(no_op, bool):
        raise InputError(f"{where}.noOperation: expected true or false, got {no_op!r}")
    env = planner.get("environment", "kubernetes")
    if env == "virtual" and not no_op:
        raise InputError(
            f"{where}.environment: 'virtual' needs a decision store and an external scaler that "
            "a DGD does not provide; use kubernetes, observe-only or noOperation: true (or run "
            "`plan run --connector virtual --etcd URL` outside the DGD)"
        )
    if env != "virtual" and env not in _ENVIRONMENTS:
        known = ", ".join([*_ENVIRONMENTS, "virtual"])
        raise InputError(f"{where}.environment: expected one of {known}, got {env!r}")
    return "none" if no_op else _ENVIRONMENTS[str(env)]


def planner_flags(
    planner: Mapping[str, Any],
    where: str = "planner",
    reserved: Mapping[str, str] | None = None,
) -> PlannerFlags:
    """Translate the planner section (module docstring); ``reserved``: flag → where the caller
    takes its value from (such keys are dropped with a warning)."""
    reserved = reserved or {}
    out: dict[str, str | None] = {}
    warnings: list[str] = []
    for raw_key, value in planner.items():
        key = str(raw_key)
        at = f"{where}.{key}"
        if key in ("noOperation", "environment"):
            continue
        if key in DROPPED_KEYS:
            warnings.append(f"{at} is not used: {DROPPED_KEYS[key]}")
            continue
        name = flag_name(key)
        if name in reserved:
            warnings.append(f"{at} is not used: {name} is set from {reserved[name]}")
            continue
        if name not in RUN_FLAGS or name == "--connector":
            warnings.append(f"{at} is not used: plan run has no {name} setting")
            continue
        if RUN_FLAGS[name]:
            if not isinstance(value, bool):
                raise InputError(f"{at}: expected true or false, got {value!r}")
            if value:
                out[name] = None
            continue
        out[name] = flag_value(at, value)
        if name == "--predictor" and out[name] not in predictor_names():
            known = ", ".join(predictor_names())
            raise InputError(f"{at}: expected one of {known}, got {out[name]!r}")
    return PlannerFlags(_connector(planner, where), out, warnings)
