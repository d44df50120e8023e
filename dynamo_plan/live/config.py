"""``plan run`` settings: the flags as one dataclass, the YAML config file and their merge.

Precedence: a flag given on the command line > the config file (``--config FILE.yaml``) > what
the profile's ``profile.json`` records (model, SLA ``ttft``/``itl``/``isl``/``osl``, GPUs per
engine; :func:`resolve_run_settings`) > the default. The file holds one mapping whose keys are
the flags in snake_case (``--max-gpu-budget`` → ``max_gpu_budget``), validated against
``schemas/planner-config.schema.json`` (unknown keys are errors, with the nearest known name);
relative paths in it are relative to the file's folder. Errors read
``file:line: field: expected …`` (the line of the offending key, from the YAML node tree).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dynamo_plan.core.defaults import (
    DEFAULT_LOAD_QUANTILE,
    DEFAULT_SCALE_DOWN_PATIENCE,
    DEFAULT_TTFT_QUANTILE,
)
from dynamo_plan.errors import InputError, UsageError
from dynamo_plan.formats.schema_messages import describe, error_summary, messages
from dynamo_plan.formats.yaml_lines import YamlSyntaxError, line_of, load_documents
from dynamo_plan.resources import schema_validator, shipped_schema

if TYPE_CHECKING:  # jsonschema is imported when a config file is read, not at CLI start
    from jsonschema import ValidationError

__all__ = [
    "CONNECTORS",
    "PATH_FIELDS",
    "RunSettings",
    "check_settings",
    "flag",
    "load_run_config",
    "merge_settings",
    "resolve_run_settings",
    "run_config_schema",
]

CONNECTORS = ("none", "virtual", "kubernetes")
#: Settings that are file paths (relative ones in a config file resolve against its folder).
PATH_FIELDS = frozenset(
    {
        "profile",
        "prometheus_token_file",
        "prometheus_ca_bundle",
        "state",
        "warmup_trace",
        "kubeconfig",
    }
)


@dataclass(frozen=True)
class RunSettings:
    """Every ``plan run`` flag (see ``dynamo-plan plan run --help`` for each one's meaning).

    Units: ``interval``, ``startup_s``, ``virtual_timeout``, ``virtual_wait``, ``ready_timeout`` in
    seconds; ``ttft``, ``itl`` in ms;
    ``isl``, ``osl`` in tokens. ``isl``/``osl`` are the SLA's load shape: assumed for the
    forecasts until the frontend (or ``warmup_trace``) has reported one, and the shape the SLA is
    checked against the profile at start. ``max_gpu_budget`` -1 = no budget;
    ``ttft_quantile`` 0 or ``None`` = the mean TTFT; ``metrics_port`` 0 = no ``/metrics``.
    """

    profile: Path | None = None
    prometheus_url: str | None = None
    prometheus_token_file: Path | None = None
    prometheus_ca_bundle: Path | None = None
    model: str | None = None
    namespace: str | None = None
    connector: str = "none"
    state: Path | None = None
    etcd: str | None = None
    virtual_timeout: float = 1800.0
    virtual_wait: float = 0.0
    dgd: str | None = None
    kube_namespace: str | None = None
    kubeconfig: Path | None = None
    context: str | None = None
    ready_timeout: float = 600.0
    interval: float = 180.0
    ttft: float = 500.0
    itl: float = 50.0
    isl: float = 3000.0
    osl: float = 150.0
    predictor: str = "default"
    warmup_trace: Path | None = None
    max_gpu_budget: int = 8
    min_endpoint: int = 1
    prefill_engine_num_gpu: int = 1
    decode_engine_num_gpu: int = 1
    no_correction: bool = False
    startup_s: float = 120.0
    load_quantile: float | None = DEFAULT_LOAD_QUANTILE
    ttft_quantile: float | None = DEFAULT_TTFT_QUANTILE
    scale_down_patience: int = DEFAULT_SCALE_DOWN_PATIENCE
    metrics_port: int = 9085
    metrics_addr: str = "127.0.0.1"
    max_ticks: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON/YAML-ready (paths as strings); the same keys a config file takes."""
        return {
            f.name: (str(v) if isinstance(v, Path) else v)
            for f in fields(self)
            for v in (getattr(self, f.name),)
        }


def flag(name: str) -> str:
    """``max_gpu_budget`` → ``--max-gpu-budget``."""
    return "--" + name.replace("_", "-")


def merge_settings(
    cli: Mapping[str, Any], explicit: set[str] | frozenset[str], file_values: Mapping[str, Any]
) -> RunSettings:
    """``cli`` values (defaults included) overlaid by ``file_values`` except where the flag is in
    ``explicit`` (given on the command line). Keys that are not settings are ignored in ``cli``
    and refused in ``file_values`` (InputError)."""
    names = set(_FIELD_TYPES)
    unknown = sorted(set(file_values) - names)
    if unknown:
        raise InputError(f"unknown plan run setting(s): {', '.join(unknown)}")
    values = {k: v for k, v in cli.items() if k in names}
    values.update({k: v for k, v in file_values.items() if k not in explicit})
    return RunSettings(**values)


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


def resolve_run_settings(
    cli: Mapping[str, Any], explicit: set[str] | frozenset[str], config: Path | None
) -> tuple[RunSettings, dict[str, str], list[str]]:
    """(settings, setting → where its value came from, notes): :func:`merge_settings` of the
    flags and the config file ``config``, then the profile's ``profile.json`` values
    (:data:`PROFILE_SETTINGS`) for those neither given as a flag nor in the file.

    Sources: ``flag``, ``config file``, ``profile.json``, ``default``. Notes: one per flag or
    file value that overrides a different recorded value (``--ttft 500 ms overrides the
    profile's 200 ms (prof/profile.json)``). InputError for an unreadable or malformed
    ``profile.json``; a profile without one keeps the defaults."""
    from dynamo_plan.adapters.profile_files import ProfileMeta, profile_defaults, read_profile_meta

    file_values = load_run_config(config) if config is not None else {}
    merged = merge_settings(cli, explicit, file_values)
    sources = {f.name: "default" for f in fields(RunSettings)}
    sources |= {name: "config file" for name in file_values if name not in explicit}
    sources |= {name: "flag" for name in explicit if name in sources}
    meta = read_profile_meta(merged.profile) if merged.profile is not None else ProfileMeta()
    given_as = {
        name: flag(name) if name in explicit else f"{config}'s {name}:"
        for name in PROFILE_SETTINGS
        if sources[name] != "default"
    }
    resolved = profile_defaults(
        meta, {name: getattr(merged, name) for name in PROFILE_SETTINGS}, given_as
    )
    sources.update(resolved.sources)
    return dataclasses.replace(merged, **resolved.values), sources, resolved.notes


def check_settings(s: RunSettings) -> None:
    """Ranges and combinations of the merged settings; messages name the flag."""
    if s.profile is None:
        raise UsageError("give --profile DIR (or `profile:` in --config)")
    if not s.model:
        raise UsageError("give --model NAME (or `model:` in --config)")
    if s.connector not in CONNECTORS:
        raise InputError(f"--connector must be one of {', '.join(CONNECTORS)}, got {s.connector!r}")
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
            raise UsageError("--connector kubernetes needs --dgd NAME (the DynamoGraphDeployment)")
    else:
        given = [
            flag(n) for n in ("dgd", "kube_namespace", "kubeconfig", "context") if getattr(s, n)
        ]
        if given:
            raise UsageError(f"{', '.join(given)} belong(s) to --connector kubernetes")
    positive = ("virtual_timeout", "ready_timeout", "interval", "ttft", "itl")
    for name in positive:
        v = getattr(s, name)
        if not (math.isfinite(v) and v > 0):
            raise InputError(f"{flag(name)} must be a finite number > 0, got {v:g}")
    for name in ("isl", "osl"):  # token counts: a request has at least one of each
        v = getattr(s, name)
        if not (math.isfinite(v) and v >= 1):
            raise InputError(f"{flag(name)} must be a finite number >= 1 (tokens), got {v:g}")
    if not (math.isfinite(s.virtual_wait) and s.virtual_wait >= 0):
        raise InputError(f"--virtual-wait must be a finite number >= 0, got {s.virtual_wait:g}")
    if s.virtual_wait and s.connector != "virtual":
        raise UsageError("--virtual-wait belongs to --connector virtual")
    if not (math.isfinite(s.startup_s) and s.startup_s >= 0):
        raise InputError(f"--startup-s must be a finite number >= 0, got {s.startup_s:g}")
    if s.max_gpu_budget == 0 or s.max_gpu_budget < -1:
        raise InputError(f"--max-gpu-budget must be >= 1 or -1 (no budget), got {s.max_gpu_budget}")
    for name in ("min_endpoint", "prefill_engine_num_gpu", "decode_engine_num_gpu"):
        if getattr(s, name) < 1:
            raise InputError(f"{flag(name)} must be >= 1, got {getattr(s, name)}")
    if s.scale_down_patience < 0:
        raise InputError(f"--scale-down-patience must be >= 0, got {s.scale_down_patience}")
    if s.load_quantile is not None and not 0.0 < s.load_quantile < 1.0:
        raise InputError(f"--load-quantile must be in (0, 1), got {s.load_quantile:g}")
    if s.ttft_quantile is not None and not 0.0 <= s.ttft_quantile < 1.0:
        raise InputError(
            f"--ttft-quantile must be in [0, 1) (0: the mean), got {s.ttft_quantile:g}"
        )
    if not 0 <= s.metrics_port <= 65535:
        raise InputError(f"--metrics-port must be in 0..65535 (0 disables), got {s.metrics_port}")
    if s.max_ticks is not None and s.max_ticks < 1:
        raise InputError(f"--max-ticks must be >= 1, got {s.max_ticks}")
    if not s.predictor:
        raise InputError("--predictor must not be empty")


# --- the config file -----------------------------------------------------------------------------


def run_config_schema() -> dict[str, Any]:
    """The shipped ``planner-config.schema.json`` (JSON Schema 2020-12)."""
    return shipped_schema("planner-config.schema.json")


def _message(error: ValidationError) -> tuple[str, str]:
    """(key, message) of one schema error (key "" for the document itself)."""
    path, message = messages(error)[0]
    return (str(path[0]) if path else ""), message


def _problems(data: dict[Any, Any]) -> list[tuple[str, str]]:
    """(key, message) for every problem of one mapping, unknown keys first."""
    props = run_config_schema()["properties"]
    out: list[tuple[str, str]] = []
    for key, value in data.items():
        if not isinstance(key, str):
            out.append((str(key), f"keys must be strings, got {describe(key)}"))
        elif key not in props:
            hint = difflib.get_close_matches(key.replace("-", "_"), sorted(props), n=1, cutoff=0.6)
            more = f"did you mean {hint[0]}?" if hint else f"known keys: {', '.join(sorted(props))}"
            out.append((key, f"unknown key ({more})"))
        elif isinstance(value, float) and not math.isfinite(value):
            out.append((key, f"expected a finite number, got {value}"))
    for error in schema_validator("planner-config.schema.json").iter_errors(data):
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
    for key, value in doc.data.items():  # schema-valid, yet too large for a float setting
        if _too_large_for_float(key, value):
            raise InputError(
                f"{path}:{line_of(doc.node, [key])}: {key}: expected a number <= "
                f"{_FLOAT_MAX:.4g}, got an integer of {len(str(abs(value)))} digits"
            )
    return _coerce(doc.data, path.parent)


_FLOAT_MAX = sys.float_info.max
_FIELD_TYPES = {f.name: f.type for f in dataclasses.fields(RunSettings)}


def _too_large_for_float(key: str, value: Any) -> bool:
    """An integer given for a float setting that ``float()`` cannot hold (OverflowError)."""
    is_int = isinstance(value, int) and not isinstance(value, bool)
    return is_int and abs(value) > _FLOAT_MAX and "float" in str(_FIELD_TYPES.get(key))


def _coerce(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """Schema-valid values → RunSettings types: paths (relative to ``base``), whole floats given
    for integer settings → int."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in PATH_FIELDS and isinstance(value, str):
            p = Path(value).expanduser()
            out[key] = p if p.is_absolute() else base / p
        elif isinstance(value, float) and "int" in str(_FIELD_TYPES[key]) and value.is_integer():
            out[key] = int(value)
        elif (
            isinstance(value, int)
            and not isinstance(value, bool)
            and "float" in str(_FIELD_TYPES[key])
        ):
            out[key] = float(value)
        else:
            out[key] = value
    return out
