"""``plan run`` settings: merging flags, config files, the environment and the profile; checks.

Each setting is declared once, in :mod:`dynamo_plan.live.settings_spec` (:class:`RunSettings`,
re-exported here). Precedence, highest first:

1. a flag given on the command line (``flag``);
2. Dynamo's arguments (:mod:`dynamo_plan.live.dynamo_compat`): its 0.6–0.9 flags
   (``--adjustment-interval``) and its 1.x ``--config '<json>'`` (``Dynamo …``);
3. this project's config file (``--config FILE.yaml``; ``config file``);
4. the setting's environment variables (``$DYN_NAMESPACE``, ``$PROMETHEUS_ENDPOINT`` …);
5. what the profile's ``profile.json`` records (model, SLA ``ttft``/``itl``/``isl``/``osl``,
   GPUs per engine; ``profile.json``);
6. when started with Dynamo's arguments, the default Dynamo's planner would use
   (``Dynamo default``: predictor arima, connector kubernetes, namespace dynamo …);
7. the default (``default``).

The config file holds one mapping whose keys are the flags in snake_case (``--max-gpu-budget`` →
``max_gpu_budget``), validated against the schema generated from the table
(``schemas/planner-config.schema.json``; unknown keys are errors, with the nearest known name);
relative paths in it are relative to the file's folder. Errors read
``file:line: field: expected …`` (the line of the offending key, from the YAML node tree).
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dynamo_plan.errors import InputError, UsageError
from dynamo_plan.formats.schema_messages import describe, error_summary, messages
from dynamo_plan.formats.yaml_lines import YamlSyntaxError, line_of, load_documents
from dynamo_plan.live.settings_spec import (
    CONNECTORS,
    SETTINGS,
    RunSettings,
    config_schema,
    flag,
)

if TYPE_CHECKING:  # jsonschema is imported when a config file is read, not at CLI start
    from jsonschema import Draft202012Validator, ValidationError

    from dynamo_plan.live.dynamo_compat import DynamoArgs

__all__ = [
    "CONNECTORS",
    "PATH_FIELDS",
    "PROFILE_SETTINGS",
    "RunSettings",
    "check_settings",
    "flag",
    "load_run_config",
    "merge_settings",
    "predictor_params",
    "resolve_run_settings",
    "run_config_schema",
]

#: Settings that are file paths (relative ones in a config file resolve against its folder).
PATH_FIELDS = frozenset(name for name, info in SETTINGS.items() if info.is_path)


def merge_settings(
    cli: Mapping[str, Any], explicit: set[str] | frozenset[str], file_values: Mapping[str, Any]
) -> RunSettings:
    """``cli`` values (defaults included) overlaid by ``file_values`` except where the flag is in
    ``explicit`` (given on the command line). Keys that are not settings are ignored in ``cli``
    and refused in ``file_values`` (InputError)."""
    unknown = sorted(set(file_values) - set(SETTINGS))
    if unknown:
        raise InputError(f"unknown plan run setting(s): {', '.join(unknown)}")
    values = {k: v for k, v in cli.items() if k in SETTINGS}
    values.update({k: v for k, v in file_values.items() if k not in explicit})
    return RunSettings(**values)


#: Settings of the kubernetes connector: their environment variables count only with it.
_KUBERNETES_ONLY = ("dgd", "kube_namespace")

#: Settings whose default is the profile's ``profile.json`` (when it records them).
PROFILE_SETTINGS = (
    "model",
    "ttft",
    "itl",
    "isl",
    "osl",
    "prefill_engine_num_gpu",
    "decode_engine_num_gpu",
)


def environment_values(environ: Mapping[str, str]) -> dict[str, tuple[Any, str]]:
    """Setting → (value, ``$VAR``) for the settings whose environment variables are set
    (``Spec.env``, first set wins; empty counts as unset). InputError for a value of the wrong
    type (``$PLANNER_PROMETHEUS_PORT: expected an integer, got 'x'``)."""
    out: dict[str, tuple[Any, str]] = {}
    for name, info in SETTINGS.items():
        for var in info.spec.env:
            text = environ.get(var, "").strip()
            if text:
                value = info.coerce(text, f"${var}")
                problem = info.problem(value)
                if problem is not None:
                    raise InputError(f"${var} (for {info.flag}) {problem}")
                out[name] = (value, f"${var}")
                break
    return out


def resolve_run_settings(
    cli: Mapping[str, Any],
    explicit: set[str] | frozenset[str],
    config: Path | None,
    *,
    dynamo: DynamoArgs | None = None,
    dynamo_defaults: bool = False,
    environ: Mapping[str, str] | None = None,
) -> tuple[RunSettings, dict[str, str], list[str]]:
    """(settings, setting → where its value came from, notes), by the module docstring's
    precedence: the flags (``cli``, with ``explicit`` the ones given on the command line),
    Dynamo's translated arguments ``dynamo``, the config file ``config``, the environment
    ``environ`` (default: ``os.environ``), the profile's ``profile.json``, Dynamo's defaults
    (when ``dynamo_defaults``), the defaults.

    Sources: ``flag``, ``Dynamo <how it was named>``, ``config file``, ``$VAR``,
    ``profile.json``, ``Dynamo default``, ``default``. Notes: one per value that overrides a
    different recorded one (``--ttft 500 ms overrides the profile's 200 ms (prof/profile.json)``).
    InputError for an unreadable or malformed ``profile.json``; a profile without one keeps the
    defaults."""
    from dynamo_plan.adapters.profile_files import ProfileMeta, profile_defaults, read_profile_meta

    file_values = load_run_config(config) if config is not None else {}
    env = environment_values(os.environ if environ is None else environ)
    values = {name: info.default for name, info in SETTINGS.items()}
    sources = {name: "default" for name in SETTINGS}
    given_as: dict[str, str] = {}  # how each explicitly given value was named, for the notes
    layers: list[tuple[Mapping[str, Any], Mapping[str, str]]] = [
        ({k: v for k, (v, _) in env.items()}, {k: var for k, (_, var) in env.items()}),
        (file_values, {k: "config file" for k in file_values}),
    ]
    if dynamo is not None:
        layers.append((dynamo.settings, {k: f"Dynamo {v}" for k, v in dynamo.given.items()}))
    given_cli = {k: v for k, v in cli.items() if k in SETTINGS and k in explicit}
    layers.append((given_cli, {k: "flag" for k in given_cli}))
    unknown = sorted(set(file_values) - set(SETTINGS))
    if unknown:
        raise InputError(f"unknown plan run setting(s): {', '.join(unknown)}")
    for layer, how in layers:
        for name, value in layer.items():
            values[name], sources[name] = value, how[name]
    if values["connector"] != "kubernetes":  # Dynamo's operator sets these in every pod
        for name in _KUBERNETES_ONLY:
            if sources[name].startswith("$"):
                values[name], sources[name] = SETTINGS[name].default, "default"
    for name, source in sources.items():
        if source == "flag":
            given_as[name] = flag(name)
        elif source == "config file":
            given_as[name] = f"{config}'s {name}:"
        elif source != "default":
            given_as[name] = f"{source}"
    if dynamo_defaults:  # none of them is a profile.json setting: apply them first
        for name, info in SETTINGS.items():
            if sources[name] == "default" and info.spec.dynamo_default is not None:
                values[name], sources[name] = info.spec.dynamo_default, "Dynamo default"
    merged = RunSettings(**values)
    meta = read_profile_meta(merged.profile) if merged.profile is not None else ProfileMeta()
    resolved = profile_defaults(
        meta,
        {name: getattr(merged, name) for name in PROFILE_SETTINGS},
        {name: given_as[name] for name in PROFILE_SETTINGS if name in given_as},
    )
    for name, value in resolved.values.items():
        if sources[name] == "default" and resolved.sources[name] == "profile.json":
            values[name], sources[name] = value, "profile.json"
    return RunSettings(**values), sources, resolved.notes


def check_settings(s: RunSettings) -> None:
    """Each setting against its row of the table (``--interval must be a finite number > 0
    (s), got -1``), then the combinations; messages name the flag."""
    if s.profile is None:
        raise UsageError("give --profile DIR (or `profile:` in --config)")
    if not s.model:
        raise UsageError("give --model NAME (or `model:` in --config)")
    for name, info in SETTINGS.items():
        problem = info.problem(getattr(s, name))
        if problem is not None:
            raise InputError(f"{info.flag} {problem}")
    if s.connector == "virtual":
        if (s.state is None) == (s.etcd is None):
            which = "both were given" if s.state is not None else "neither was given"
            raise UsageError(
                f"--connector virtual keeps its state in a file (--state FILE) or in etcd "
                f"(--etcd URL): give exactly one, {which}"
            )
    elif s.state is not None or s.etcd is not None:
        raise UsageError("--state and --etcd belong to --connector virtual")
    if s.connector == "kubernetes":
        if not s.dgd:
            raise UsageError(
                "--connector kubernetes needs --dgd NAME (the DynamoGraphDeployment; in a "
                "Dynamo pod: $DYN_PARENT_DGD_K8S_NAME)"
            )
    else:
        given = [flag(n) for n in ("dgd", "kubeconfig", "context") if getattr(s, n)]
        if given:
            raise UsageError(f"{', '.join(given)} belong(s) to --connector kubernetes")
    if s.virtual_wait and s.connector != "virtual":
        raise UsageError("--virtual-wait belongs to --connector virtual")
    from dynamo_plan.predict.registry import predictor_names

    if s.predictor not in predictor_names():
        known = ", ".join(predictor_names())
        raise InputError(f"--predictor must be one of {known}, got {s.predictor!r}")


def predictor_params(s: RunSettings) -> dict[str, Any] | None:
    """The predictor's hyper-parameters from the settings: kalman's noises, minimum points and
    log1p; prophet's window and ``interval_s`` (it models calendar seasonality); None for the
    others (their own defaults)."""
    if s.predictor == "kalman":
        return {
            "q_level": s.kalman_q_level,
            "q_trend": s.kalman_q_trend,
            "r": s.kalman_r,
            "min_points": s.kalman_min_points,
            "log1p": s.predictor_log1p,
        }
    if s.predictor == "prophet":
        return {"window": s.prophet_window_size, "interval_s": s.interval}
    return None


#: Predictor → the settings that are its hyper-parameters.
_PREDICTOR_SETTINGS = {
    "kalman": (
        "kalman_q_level",
        "kalman_q_trend",
        "kalman_r",
        "kalman_min_points",
        "predictor_log1p",
    ),
    "prophet": ("prophet_window_size",),
}


def predictor_notes(s: RunSettings, sources: Mapping[str, str]) -> list[str]:
    """Predictor settings given with a value other than their default (a config written by
    ``--print-config`` spells every setting out) that the chosen predictor does not use."""
    used = _PREDICTOR_SETTINGS.get(s.predictor, ())
    unused = [
        SETTINGS[n].flag
        for names in _PREDICTOR_SETTINGS.values()
        for n in names
        if n not in used
        and sources.get(n, "default") != "default"
        and getattr(s, n) != SETTINGS[n].default
    ]
    if not unused:
        return []
    return [f"{', '.join(unused)}: not used by the {s.predictor} predictor"]


def sizing_knobs(s: RunSettings) -> dict[str, Any]:
    """``prefill_queueing`` and ``ttft_quantile`` of the core's PlannerConfig for ``s.sizing``:
    ``project`` (queueing-aware prefill at ``ttft_quantile``) or ``dynamo`` (Dynamo's
    throughput-only formula on the mean TTFT, as ``plan decide --no-prefill-queueing
    --ttft-quantile 0``)."""
    if s.sizing == "dynamo":
        return {"prefill_queueing": False, "ttft_quantile": None}
    return {"prefill_queueing": True, "ttft_quantile": s.ttft_quantile or None}


# --- the config file -----------------------------------------------------------------------------


def run_config_schema() -> dict[str, Any]:
    """The config file's JSON Schema (2020-12), generated from the settings table (the shipped
    ``schemas/planner-config.schema.json`` is the same, checked by a test)."""
    return config_schema()


@cache
def _validator() -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(config_schema())


def _message(error: ValidationError) -> tuple[str, str]:
    """(key, message) of one schema error (key "" for the document itself)."""
    path, message = messages(error)[0]
    return (str(path[0]) if path else ""), message


def _problems(data: dict[Any, Any]) -> list[tuple[str, str]]:
    """(key, message) for every problem of one mapping, unknown keys first."""
    out: list[tuple[str, str]] = []
    for key, value in data.items():
        if not isinstance(key, str):
            out.append((str(key), f"keys must be strings, got {describe(key)}"))
        elif key not in SETTINGS:
            known = sorted(SETTINGS)
            hint = difflib.get_close_matches(key.replace("-", "_"), known, n=1, cutoff=0.6)
            more = f"did you mean {hint[0]}?" if hint else f"known keys: {', '.join(known)}"
            out.append((key, f"unknown key ({more})"))
        elif isinstance(value, float) and not math.isfinite(value):
            out.append((key, f"expected a finite number, got {value}"))
    for error in _validator().iter_errors(data):
        if error.validator == "additionalProperties":
            continue  # reported above, with a suggestion
        out.append(_message(error))
    return out


def load_run_config(path: Path) -> dict[str, Any]:
    """The settings of config file ``path`` (RunSettings field → value, paths resolved against
    the file's folder). InputError ``file:line: field: expected …`` for the first problem (with
    the count of further ones); an empty file is no settings."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputError(f"{path}: cannot read config: {e.strerror or e}") from e
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise InputError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[e.start]:02x})") from e
    try:
        docs = [d for d in load_documents(text) if d.data is not None]
    except YamlSyntaxError as e:
        raise InputError(f"{path}:{e.line or 1}: {e.message}") from e
    if not docs:
        return {}
    if len(docs) > 1:
        line = docs[1].node.start_mark.line + 1
        raise InputError(f"{path}:{line}: expected one YAML document, got {len(docs)}")
    doc = docs[0]
    if not isinstance(doc.data, dict):
        line = doc.node.start_mark.line + 1
        raise InputError(
            f"{path}:{line}: expected a mapping of plan run settings (e.g. `interval: 180`), "
            f"got {describe(doc.data)}"
        )
    problems = _problems(doc.data)
    if problems:
        located = sorted(
            ((line_of(doc.node, [k]) if k else 1, k, m) for k, m in problems), key=lambda p: p[0]
        )
        line, key, message = located[0]
        where = f"{key}: " if key else ""
        raise InputError(
            error_summary(f"{path}:{line}: {where}{message}", len(located), "problem(s)")
        )
    out: dict[str, Any] = {}
    for key, value in doc.data.items():  # schema-valid: only the type may still need coercing
        out[key] = SETTINGS[key].coerce(
            value, f"{path}:{line_of(doc.node, [key])}: {key}", path.parent
        )
    return out
