"""``profilingConfig.config.planner`` keys → ``dynamo-plan plan run`` flags.

Every flag this module emits is a ``plan run`` setting (a row of the settings table,
:data:`dynamo_plan.live.settings_spec.SETTINGS`); keys that have no such flag are dropped with a
warning the caller reports, never passed on as unknown flags. A key names a setting by its own
name, or by one of the setting's Dynamo aliases (its 0.6–0.9 flag or 1.x ``PlannerConfig`` key,
in camelCase: ``adjustmentInterval``, ``loadPredictorLog1p``, ``kalmanQLevel`` …). The rules,
in order:

Dynamo planner keys (tested in tests/deploy/test_planner_args.py):

======================================  =======================================================
key                                      ``plan run``
======================================  =======================================================
``noOperation: true`` (1.x:               ``--connector none`` (observe and log only; wins over
``advisory: true``)                      ``environment``); ``false``: no effect
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
``loadPredictionWindowSize``             dropped, warning: the predictors keep their own windows
                                         (arima 100 points, constant and default 50; prophet:
                                         ``prophetWindowSize``)
======================================  =======================================================

Every other key: camelCase → snake_case, a leading ``planner`` word stripped; when that is a
setting's name or one of its Dynamo aliases (``maxGpuBudget`` → ``--max-gpu-budget``,
``kalmanQLevel`` → ``--kalman-q-level``, ``loadPredictorLog1p`` → ``--predictor-log1p``) the
setting's flag is emitted; a Dynamo option that is no setting
(:data:`dynamo_plan.live.dynamo_compat.DYNAMO_OPTIONS`: ``backend``, ``enableLoadScaling`` …) is
dropped, with a warning only when its value makes Dynamo behave otherwise than ``plan run``;
anything else is dropped with a warning. Keys whose flag the caller derives itself (``reserved``: ``--profile``,
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
from dataclasses import dataclass
from typing import Any

from dynamo_plan.errors import InputError
from dynamo_plan.live.dynamo_compat import DYNAMO_KEYS, DYNAMO_OPTIONS
from dynamo_plan.live.settings_spec import SETTINGS
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

#: ``plan run`` setting flags → whether each is a switch (a flag without a value), from the
#: settings table (:data:`dynamo_plan.live.settings_spec.SETTINGS`).
RUN_FLAGS: dict[str, bool] = {info.flag: info.switch for info in SETTINGS.values()}
#: snake_case name → setting: the settings' own names and flag spellings, Dynamo's 0.6–0.9
#: flags and 1.x ``PlannerConfig`` keys (``adjustment_interval`` → ``interval``).
_SETTING_OF: dict[str, str] = {
    **DYNAMO_KEYS,
    **{f[2:].replace("-", "_"): n for n, i in SETTINGS.items() for f in i.spec.flags},
    **{n: n for n in SETTINGS},
}
#: Dynamo keys whose ``plan run`` flag is not their kebab-case spelling.
RENAMED_KEYS: dict[str, str] = {
    key: SETTINGS[_SETTING_OF[snake]].flag
    for key, snake in (
        ("adjustmentInterval", "adjustment_interval"),
        ("loadPredictor", "load_predictor"),
        ("prometheusEndpoint", "prometheus_endpoint"),
    )
}
#: Dynamo keys ``plan run`` has no use for → why (the warning's text).
DROPPED_KEYS: dict[str, str] = {
    "metricPullingInterval": "plan run reads the frontend's metrics once per --interval "
    "(adjustmentInterval)",
    "logDir": DYNAMO_OPTIONS["log_dir"].why,
    "loadPredictionWindowSize": DYNAMO_OPTIONS["load_prediction_window_size"].why,
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
    stripped = _PLANNER_PREFIX.sub("", key)
    snake = _CAMEL_BOUNDARY.sub("_", stripped).lower().replace("-", "_")
    if snake in _SETTING_OF:
        return SETTINGS[_SETTING_OF[snake]].flag
    return "--" + snake.replace("_", "-")


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
    no_op = False
    for key in ("noOperation", "advisory"):  # Dynamo 0.6–0.9 / 1.x: decide and log only
        value = planner.get(key, False)
        if not isinstance(value, bool):
            raise InputError(f"{where}.{key}: expected true or false, got {value!r}")
        no_op = no_op or value
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
        if key in ("noOperation", "advisory", "environment"):
            continue
        if key in DROPPED_KEYS:
            warnings.append(f"{at} is not used: {DROPPED_KEYS[key]}")
            continue
        option = DYNAMO_OPTIONS.get(_CAMEL_BOUNDARY.sub("_", key).lower())
        if option is not None:  # a Dynamo option that is no setting: dropped
            if not option.same(value):
                warnings.append(f"{at} is not used: {option.why}")
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
