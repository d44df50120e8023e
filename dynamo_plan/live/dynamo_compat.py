"""Dynamo's planner arguments, for ``plan run`` as a drop-in replacement of Dynamo's planner.

Two argument styles, both mapped onto :data:`~dynamo_plan.live.settings_spec.SETTINGS`:

* Dynamo 0.6–0.9 (``python3 -m planner_sla --environment=kubernetes --adjustment-interval=60
  …``): flags that mean a ``plan run`` setting are listed in that setting's
  ``Spec.dynamo_flags`` (``--adjustment-interval`` → ``interval``) or share its spelling
  (``--ttft``, ``--max-gpu-budget``, ``--kalman-r`` …); the others are :data:`DYNAMO_OPTIONS`
  below (``--environment``, ``--no-operation``, ``--backend``, ``--log-dir`` …).
* Dynamo 1.x (``python3 -m dynamo.planner --config '<json>'``): a ``PlannerConfig`` mapping,
  inline JSON or a JSON/YAML file; keys that mean a setting are in its ``Spec.dynamo_keys``
  (``throughput_adjustment_interval_seconds`` → ``interval``, ``ttft_ms`` → ``ttft``), the
  others are :data:`DYNAMO_OPTIONS`.

``environment``, ``no_operation`` and ``advisory`` choose the connector (kubernetes → kubernetes,
virtual → virtual, no-operation/advisory → none). An option whose value makes Dynamo behave as
``plan run`` does anyway (``mode: disagg``, ``optimization_target: sla``, ``backend: …``) is
accepted silently; every other one is named, with why, in the one warning line of
:func:`unhonoured_line`. Keys Dynamo does not know either are named there as unknown.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dynamo_plan.errors import InputError
from dynamo_plan.live.settings_spec import SETTINGS

__all__ = [
    "DYNAMO_KEYS",
    "DYNAMO_OPTIONS",
    "DynamoArgs",
    "DynamoOption",
    "is_dynamo_config",
    "read_config_arg",
    "translate",
    "unhonoured_line",
]


def _any(_: Any) -> bool:
    return True


def _never(_: Any) -> bool:
    return False


def _is(*values: Any) -> Callable[[Any], bool]:
    return lambda v: v in values


@dataclass(frozen=True)
class DynamoOption:
    """A Dynamo planner option that is not a ``plan run`` setting.

    ``cli``: a Dynamo 0.6–0.9 flag exists (``--`` + the name in kebab case); ``switch``: that
    flag takes no value; ``same``: whether a value makes Dynamo behave as ``plan run`` does
    (then it is accepted silently); ``why``: the warning's reason otherwise."""

    name: str
    why: str
    same: Callable[[Any], bool] = _never
    cli: bool = False
    switch: bool = False
    kind: type = str

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


_LOAD = "plan run has no load-based (FPM regression) scaling loop; it sizes from the profile"
_REPORT = "plan run writes no HTML reports (one JSON log line per tick, /metrics)"
_OPTIONS = [
    # the connector
    DynamoOption("environment", "", _any, cli=True),
    DynamoOption("no_operation", "", _any, cli=True, switch=True, kind=bool),
    DynamoOption("advisory", "", _any, kind=bool),
    # no effect: plan run does the same
    DynamoOption("backend", "", _any, cli=True),
    DynamoOption("mode", "plan run plans disaggregated prefill and decode only", _is("disagg"),
                 cli=True),
    DynamoOption("optimization_target", "plan run always sizes for the SLA (ttft/itl)",
                 _is("sla")),
    DynamoOption("pre_deployment_sweeping_mode",
                 "plan run sizes from a profile (profile_results_dir / --profile) even so",
                 _is("rapid", "thorough")),
    DynamoOption("enable_throughput_scaling", "plan run always scales on the throughput interval",
                 _is(True), cli=True, switch=True, kind=bool),
    DynamoOption("disable_throughput_scaling", "plan run always scales on the throughput interval",
                 _is(False), cli=True, switch=True, kind=bool),
    DynamoOption("throughput_metrics_source", "plan run reads the frontend's metrics",
                 _is("frontend")),
    DynamoOption("min_gpu_budget", "plan run has no GPU floor besides --min-endpoint", _is(-1),
                 kind=int),
    DynamoOption("prefill_min_endpoint", "plan run has one --min-endpoint for both roles",
                 _is(None), kind=int),
    DynamoOption("decode_min_endpoint", "plan run has one --min-endpoint for both roles",
                 _is(None), kind=int),
    DynamoOption("log_dir", "plan run logs one JSON line per tick to stderr (kubectl logs)",
                 _is(None), cli=True),
    DynamoOption("load_prediction_window_size",
                 "plan run's predictors keep their own windows (arima 100 points, constant and "
                 "default 50; prophet: --prophet-window-size)", cli=True, kind=int),
    DynamoOption("metric_pulling_prometheus_token",
                 "plan run reads the bearer token from a file (metric_pulling_prometheus_token_file"
                 " / --prometheus-token-file), not inline", _is(None)),
    DynamoOption("metric_pulling_prometheus_ssl_verify",
                 "plan run always verifies https (give a CA bundle for a private CA)", _is(True),
                 kind=bool),
    DynamoOption("metric_pulling_prometheus_extra_query_params",
                 "plan run adds no query parameters", _is(None)),
    DynamoOption("metric_pulling_prometheus_request_timeout_seconds",
                 "plan run's Prometheus timeout is fixed", kind=float),
    DynamoOption("global_planner_namespace", "plan run has no global-planner connector",
                 _is(None), cli=True),
    DynamoOption("enable_load_scaling", _LOAD, _is(False), kind=bool),
    DynamoOption("enable_loadbased_scaling", _LOAD, _is(False), cli=True, switch=True, kind=bool),
    *(
        DynamoOption(name, _LOAD, cli=name.startswith("loadbased"), kind=kind)
        for name, kind in (
            ("load_adjustment_interval_seconds", int),
            ("load_adjustment_interval", int),
            ("max_num_fpm_samples", int),
            ("fpm_sample_bucket_size", int),
            ("load_scaling_down_sensitivity", int),
            ("load_metric_samples", int),
            ("load_min_observations", int),
            ("prefill_scale_up_queue_tokens", int),
            ("prefill_scale_down_queue_tokens", int),
            ("decode_scale_up_kv_rate", float),
            ("decode_scale_down_kv_rate", float),
            ("loadbased_router_metrics_url", str),
            ("loadbased_adjustment_interval", int),
            ("loadbased_learning_window", int),
            ("loadbased_scaling_down_sensitivity", int),
            ("loadbased_metric_samples", int),
            ("loadbased_min_observations", int),
        )
    ),
    DynamoOption("max_throughput_scaling_replicas",
                 "plan run does not cap the replica change per decision", kind=int),
    DynamoOption("aic_interpolation", "plan run sizes from the profile directory"),
    DynamoOption("speculative_nextn", "plan run sizes from the profile as measured", _is(0),
                 kind=int),
    DynamoOption("enable_power_awareness", "plan run does not manage GPU power", _is(False),
                 kind=bool),
    DynamoOption("total_gpu_power_limit", "plan run does not manage GPU power", _is(None),
                 kind=int),
    DynamoOption("control_api_port", "plan run has no control API", _is(0), kind=int),
    DynamoOption("live_dashboard_port", "plan run has no live dashboard (use Grafana)", _is(0),
                 kind=int),
    DynamoOption("report_interval_hours", _REPORT, _is(None), kind=float),
    DynamoOption("report_output_dir", _REPORT),
    DynamoOption("report_filename", _REPORT),
    DynamoOption("report_write_gzip_log", _REPORT, kind=bool),
]  # fmt: skip
#: Dynamo options that are not ``plan run`` settings, by their snake_case name.
DYNAMO_OPTIONS: dict[str, DynamoOption] = {o.name: o for o in _OPTIONS}
#: Dynamo 1.x ``PlannerConfig`` key (or 0.6–0.9 flag name in snake case) → ``plan run`` setting.
DYNAMO_KEYS: dict[str, str] = {}
for _name, _info in SETTINGS.items():
    for _key in (
        *_info.spec.dynamo_keys,
        *(f[2:].replace("-", "_") for f in _info.spec.dynamo_flags),
    ):
        DYNAMO_KEYS[_key] = _name
_ENVIRONMENTS = {"kubernetes": "kubernetes", "virtual": "virtual"}


@dataclass
class DynamoArgs:
    """Dynamo's arguments translated: ``settings`` (setting → value, typed), ``given`` (setting
    → how Dynamo named it), ``unhonoured`` (``name=value (why)`` each)."""

    settings: dict[str, Any] = field(default_factory=dict)
    given: dict[str, str] = field(default_factory=dict)
    unhonoured: list[str] = field(default_factory=list)


def _show(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool | None | dict | list) else str(value)


def translate(
    values: Mapping[str, Any], where: str, *, base: Path | None = None, flags: bool = False
) -> DynamoArgs:
    """Translate Dynamo options (snake_case name → value; ``flags``: they came as 0.6–0.9 flags
    and are named ``--kebab-case`` in messages). ``where`` prefixes errors (``--config``);
    relative paths resolve against ``base`` (None: the working directory, as Dynamo does).
    InputError for a value of the wrong type or out of range."""
    out = DynamoArgs()

    def label(key: str) -> str:
        return "--" + key.replace("_", "-") if flags else key

    for key, value in values.items():
        if key in DYNAMO_KEYS:
            name = DYNAMO_KEYS[key]
            info = SETTINGS[name]
            if value is None and not info.optional:
                continue  # Dynamo's "not set" (e.g. GPUs per engine: detected)
            typed = info.coerce(value, f"{where}: {label(key)}", base)
            problem = info.problem(typed)
            if problem is not None:
                raise InputError(f"{where}: {label(key)} {problem}")
            out.settings[name] = typed
            out.given[name] = label(key)
        elif key in DYNAMO_OPTIONS:
            option = DYNAMO_OPTIONS[key]
            if not option.same(value):
                out.unhonoured.append(f"{label(key)}={_show(value)} ({option.why})")
        else:
            out.unhonoured.append(f"{label(key)}={_show(value)} (not a Dynamo planner option)")
    connector = _connector(values, where, label)
    if connector is not None:
        connector_value, why = connector
        out.settings["connector"] = connector_value
        out.given["connector"] = why
    return out


def _connector(
    values: Mapping[str, Any], where: str, label: Callable[[str], str]
) -> tuple[str, str] | None:
    """(connector, which Dynamo option chose it), or None when none of them was given."""
    for key in ("no_operation", "advisory"):
        value = values.get(key)
        if value is not None and not isinstance(value, bool):
            raise InputError(f"{where}: {label(key)} expected true or false, got {value!r}")
        if value:
            return "none", label(key)
    env = values.get("environment")
    if env is None:
        return None
    if env == "global-planner":
        return "none", f"{label('environment')} global-planner (not supported: observe only)"
    if env not in _ENVIRONMENTS:
        known = ", ".join([*_ENVIRONMENTS, "global-planner"])
        raise InputError(f"{where}: {label('environment')} expected one of {known}, got {env!r}")
    return _ENVIRONMENTS[str(env)], label("environment")


def unhonoured_line(items: list[str]) -> str | None:
    """The one warning line naming every Dynamo argument ``plan run`` cannot honour."""
    if not items:
        return None
    return f"Dynamo planner argument(s) plan run cannot honour, ignored: {'; '.join(items)}"


def is_dynamo_config(data: Mapping[str, Any]) -> bool:
    """Whether a ``--config`` mapping is Dynamo's ``PlannerConfig`` rather than this project's
    settings file: it has a key Dynamo knows that is not a ``plan run`` setting name."""
    return any(
        isinstance(k, str) and k not in SETTINGS and (k in DYNAMO_KEYS or k in DYNAMO_OPTIONS)
        for k in data
    )


def read_config_arg(value: str) -> tuple[Path | None, dict[str, Any] | None]:
    """``--config VALUE``: (the file, None) for this project's settings file, (file or None,
    mapping) for Dynamo's ``PlannerConfig`` — inline JSON, or a JSON/YAML file holding one
    (:func:`is_dynamo_config`). A value that is neither an existing file nor a JSON object is
    taken as a file name (its loader reports it missing)."""
    path = Path(value)
    try:
        is_file = path.is_file()
    except (OSError, ValueError):  # a long inline JSON string is no file name
        is_file = False
    if is_file:
        import yaml

        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return path, None  # the settings-file loader reports it, with the line
        if isinstance(data, dict) and is_dynamo_config(data):
            return path, data
        return path, None
    text = value.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"--config: neither a file nor valid JSON: {e}") from e
        return None, data
    return path, None
