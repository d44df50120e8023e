"""The one table of ``plan run`` settings: each declared once, as a field of :class:`RunSettings`.

A field's type annotation is the setting's type (``float``, ``int``, ``str``, ``bool`` or
``Path``; ``| None`` when it may be unset), its default the default, and its metadata a
:class:`Spec`: help, unit, metavar, bounds, choices, the environment variables it falls back to
and its Dynamo aliases (the 0.6–0.9 planner's CLI flags, the 1.x ``PlannerConfig`` JSON keys, a
default Dynamo itself would use). Everything else is derived from it:

* the ``plan run`` options (:mod:`dynamo_plan.cli.plan` builds the command's signature from
  :data:`SETTINGS`), their help text and metavars;
* per-setting validation (:meth:`SettingInfo.problem`, used by
  :func:`dynamo_plan.live.config.check_settings`; cross-setting rules stay there);
* the JSON Schema of the config file (:func:`config_schema`; ``schemas/planner-config.schema.json``
  is its output, regenerated with ``python -m dynamo_plan.live.settings_spec --write`` and compared
  in tests/live/test_settings_spec.py);
* the config-file value coercion (:meth:`SettingInfo.coerce`) and the flags a rendered Planner is
  given (:mod:`dynamo_plan.deploy.planner_args`).

Units: seconds (``s``), milliseconds (``ms``), tokens, GPUs, as each :class:`Spec` says.
Sources of the Dynamo names: ``components/src/dynamo/planner`` of ai-dynamo/dynamo (0.6.1
``planner_argparse.py``/``defaults.py``, 0.9 ``planner_argparse.py``, 1.x
``config/planner_config.py``/``config/defaults.py``).
"""

from __future__ import annotations

import json
import math
import sys
import typing
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from dynamo_plan.core.defaults import (
    DEFAULT_LOAD_QUANTILE,
    DEFAULT_SCALE_DOWN_PATIENCE,
    DEFAULT_TTFT_QUANTILE,
)
from dynamo_plan.errors import InputError

__all__ = [
    "CONNECTORS",
    "DYNAMO_PROMETHEUS_DEFAULT",
    "SETTINGS",
    "SIZINGS",
    "RunSettings",
    "SettingInfo",
    "Spec",
    "config_schema",
    "flag",
    "schema_text",
]

CONNECTORS = ("none", "virtual", "kubernetes")
#: ``project``: this project's sizing (queueing-aware prefill, TTFT quantile); ``dynamo``:
#: Dynamo's throughput formula (``prefill_queueing=False``, mean TTFT), for side-by-side runs.
SIZINGS = ("project", "dynamo")
#: Dynamo 1.x's Prometheus URL when ``PROMETHEUS_ENDPOINT`` is unset (config/defaults.py).
DYNAMO_PROMETHEUS_DEFAULT = (
    "http://prometheus-kube-prometheus-prometheus.monitoring.svc.cluster.local:9090"
)
_URL_PATTERN = "^https?://[^/]+"


@dataclass(frozen=True)
class Spec:
    """What a setting means and accepts, beyond its type and default.

    ``flags``: more spellings of its own flag; ``dynamo_flags``: Dynamo 0.6–0.9 planner flags
    that mean the same; ``dynamo_keys``: Dynamo 1.x ``PlannerConfig`` keys that mean the same;
    ``env``: environment variables read when no flag or file sets it (first set wins);
    ``dynamo_default``: the value Dynamo's planner uses when nothing sets it, taken when
    ``plan run`` is started with Dynamo's arguments (``None``: same as ours). Bounds ``ge``,
    ``gt``, ``le``, ``lt`` apply to numbers; ``message`` replaces the bounds text of the error
    (``max_gpu_budget``: "must be >= 1 or -1 (no budget)"); ``not_values``: values refused
    although within the bounds.
    """

    help: str
    unit: str | None = None
    metavar: str | None = None
    flags: tuple[str, ...] = ()
    dynamo_flags: tuple[str, ...] = ()
    dynamo_keys: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    dynamo_default: Any = None
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    message: str | None = None
    not_values: tuple[Any, ...] = ()
    choices: tuple[str, ...] | None = None
    url: bool = False
    note: str | None = None


def spec(help: str, **details: Any) -> dict[str, Spec]:
    """A :class:`RunSettings` field's metadata: its :class:`Spec`."""
    return {"spec": Spec(help, **details)}


@dataclass(frozen=True)
class RunSettings:
    """Every ``plan run`` setting (``dynamo-plan plan run --help``; this table is the source).

    ``max_gpu_budget`` -1 = no budget; ``ttft_quantile`` 0 or ``None`` = the mean TTFT;
    ``metrics_port`` 0 = no ``/metrics``; ``isl``/``osl`` are the SLA's load shape, assumed
    until the frontend (or ``warmup_trace``) reports one.
    """

    profile: Path | None = field(
        default=None,
        metadata=spec(
            "Performance-profile directory (Dynamo layout).",
            metavar="DIR",
            dynamo_flags=("--profile-results-dir",),
            dynamo_keys=("profile_results_dir",),
            dynamo_default=Path("profiling_results"),
        ),
    )
    prometheus_url: str | None = field(
        default=None,
        metadata=spec(
            "Prometheus base URL.",
            metavar="URL",
            flags=("--prometheus-endpoint",),
            dynamo_flags=("--metric-pulling-prometheus-endpoint",),
            dynamo_keys=("metric_pulling_prometheus_endpoint",),
            env=("PROMETHEUS_ENDPOINT",),
            dynamo_default=DYNAMO_PROMETHEUS_DEFAULT,
            url=True,
        ),
    )
    prometheus_token_file: Path | None = field(
        default=None,
        metadata=spec(
            "File holding a bearer token for Prometheus (read at every query).",
            metavar="FILE",
            dynamo_keys=("metric_pulling_prometheus_token_file",),
            env=("PROMETHEUS_TOKEN_FILE",),
        ),
    )
    prometheus_ca_bundle: Path | None = field(
        default=None,
        metadata=spec(
            "PEM CA bundle to verify an https Prometheus.",
            metavar="FILE",
            dynamo_keys=("metric_pulling_prometheus_ca_bundle",),
            env=("PROMETHEUS_CA_BUNDLE",),
        ),
    )
    model: str | None = field(
        default=None,
        metadata=spec(
            "Served model name (the frontend's `model` label).",
            metavar="MODEL",
            dynamo_flags=("--model-name",),
            dynamo_keys=("model_name",),
        ),
    )
    namespace: str | None = field(
        default=None,
        metadata=spec(
            "Dynamo namespace watched (the frontend's `dynamo_namespace` label; the etcd key "
            "prefix); unset: every namespace.",
            metavar="NAMESPACE",
            dynamo_keys=("namespace",),
            env=("DYN_NAMESPACE",),
            dynamo_default="dynamo",
        ),
    )
    connector: str = field(
        default="none",
        metadata=spec(
            "How decisions are carried out: none (observe and log only), virtual (state file or "
            "etcd) or kubernetes (scale the DGD).",
            metavar="CONNECTOR",
            choices=CONNECTORS,
            dynamo_default="kubernetes",
        ),
    )
    state: Path | None = field(
        default=None, metadata=spec("Virtual connector: state file.", metavar="FILE")
    )
    etcd: str | None = field(
        default=None, metadata=spec("Virtual connector: etcd URL.", metavar="URL", url=True)
    )
    virtual_timeout: float = field(
        default=1800.0,
        metadata=spec(
            "Seconds an unacknowledged virtual decision blocks newer ones.",
            unit="s",
            metavar="S",
            gt=0,
        ),
    )
    virtual_wait: float = field(
        default=0.0,
        metadata=spec(
            "Virtual connector: after writing a decision, wait up to this long for the "
            "acknowledgement (0: do not wait).",
            unit="s",
            metavar="S",
            ge=0,
        ),
    )
    dgd: str | None = field(
        default=None,
        metadata=spec(
            "Kubernetes connector: the DynamoGraphDeployment to scale.",
            metavar="NAME",
            env=("DYN_PARENT_DGD_K8S_NAME",),
        ),
    )
    kube_namespace: str | None = field(
        default=None,
        metadata=spec(
            "Kubernetes connector: the DGD's Kubernetes namespace (default: the context's, or the "
            "pod's in a cluster).",
            metavar="NAMESPACE",
            env=("DYN_PARENT_DGD_K8S_NAMESPACE",),
        ),
    )
    kubeconfig: Path | None = field(
        default=None,
        metadata=spec(
            "Kubernetes connector: kubeconfig file (default: $KUBECONFIG, ~/.kube/config, else "
            "in-cluster).",
            metavar="FILE",
        ),
    )
    context: str | None = field(
        default=None, metadata=spec("Kubernetes connector: kubeconfig context.", metavar="NAME")
    )
    ready_timeout: float = field(
        default=600.0,
        metadata=spec(
            "Kubernetes connector: seconds a scale-up may stay not Ready before it is reported.",
            unit="s",
            metavar="S",
            gt=0,
        ),
    )
    interval: float = field(
        default=180.0,
        metadata=spec(
            "Adjustment interval.",
            unit="s",
            metavar="S",
            gt=0,
            dynamo_flags=("--adjustment-interval",),
            dynamo_keys=(
                "throughput_adjustment_interval_seconds",
                "throughput_adjustment_interval",
            ),
        ),
    )
    ttft: float = field(
        default=500.0,
        metadata=spec(
            "TTFT target.",
            unit="ms",
            metavar="MS",
            gt=0,
            dynamo_keys=("ttft_ms", "ttft"),
        ),
    )
    itl: float = field(
        default=50.0,
        metadata=spec(
            "Mean inter-token latency target.",
            unit="ms",
            metavar="MS",
            gt=0,
            dynamo_keys=("itl_ms", "itl"),
        ),
    )
    isl: float = field(
        default=3000.0,
        metadata=spec(
            "SLA input length: the load shape assumed until the frontend reports one.",
            unit="tokens",
            metavar="TOKENS",
            ge=1,
        ),
    )
    osl: float = field(
        default=150.0,
        metadata=spec(
            "SLA output length: the load shape assumed until the frontend reports one.",
            unit="tokens",
            metavar="TOKENS",
            ge=1,
        ),
    )
    predictor: str = field(
        default="default",
        metadata=spec(
            "Load predictor (`dynamo-plan predict list`).",
            metavar="NAME",
            dynamo_flags=("--load-predictor",),
            dynamo_keys=("load_predictor",),
            dynamo_default="arima",
        ),
    )
    predictor_log1p: bool = field(
        default=False,
        metadata=spec(
            "Kalman predictor: model log1p(load) instead of the load.",
            dynamo_flags=("--load-predictor-log1p",),
            dynamo_keys=("load_predictor_log1p",),
        ),
    )
    kalman_q_level: float = field(
        default=1.0,
        metadata=spec(
            "Kalman predictor: process noise of the level.",
            metavar="Q",
            gt=0,
            dynamo_keys=("kalman_q_level",),
        ),
    )
    kalman_q_trend: float = field(
        default=0.1,
        metadata=spec(
            "Kalman predictor: process noise of the trend.",
            metavar="Q",
            gt=0,
            dynamo_keys=("kalman_q_trend",),
        ),
    )
    kalman_r: float = field(
        default=10.0,
        metadata=spec(
            "Kalman predictor: measurement noise.",
            metavar="R",
            gt=0,
            dynamo_keys=("kalman_r",),
        ),
    )
    kalman_min_points: int = field(
        default=5,
        metadata=spec(
            "Kalman predictor: points before it forecasts.",
            metavar="N",
            ge=1,
            dynamo_keys=("kalman_min_points",),
        ),
    )
    prophet_window_size: int = field(
        default=50,
        metadata=spec(
            "Prophet predictor: points of history it fits.",
            metavar="N",
            ge=2,
            dynamo_keys=("prophet_window_size",),
        ),
    )
    warmup_trace: Path | None = field(
        default=None,
        metadata=spec(
            "Trace whose bucketed history warms the predictors.",
            metavar="FILE",
            dynamo_flags=("--load-predictor-warmup-trace",),
            dynamo_keys=("load_predictor_warmup_trace",),
        ),
    )
    max_gpu_budget: int = field(
        default=8,
        metadata=spec(
            "Most GPUs in total; -1 for no budget.",
            unit="GPUs",
            metavar="N",
            ge=-1,
            not_values=(0,),
            message="must be >= 1 or -1 (no budget)",
            dynamo_keys=("max_gpu_budget",),
        ),
    )
    min_endpoint: int = field(
        default=1,
        metadata=spec(
            "Fewest replicas per role.", metavar="N", ge=1, dynamo_keys=("min_endpoint",)
        ),
    )
    prefill_engine_num_gpu: int = field(
        default=1,
        metadata=spec(
            "GPUs per prefill engine.",
            unit="GPUs",
            metavar="N",
            ge=1,
            dynamo_keys=("prefill_engine_num_gpu",),
        ),
    )
    decode_engine_num_gpu: int = field(
        default=1,
        metadata=spec(
            "GPUs per decode engine.",
            unit="GPUs",
            metavar="N",
            ge=1,
            dynamo_keys=("decode_engine_num_gpu",),
        ),
    )
    no_correction: bool = field(
        default=False, metadata=spec("Ignore observed latencies (correction factors 1).")
    )
    sizing: str = field(
        default="project",
        metadata=spec(
            "Replica formula: project (prefill sized for TTFT with queueing, at --ttft-quantile) "
            "or dynamo (Dynamo's throughput-only formula, mean TTFT) for a side-by-side run.",
            metavar="FORMULA",
            choices=SIZINGS,
        ),
    )
    startup_s: float = field(
        default=120.0,
        metadata=spec(
            "Replica start-up time: the planner sizes for the load this far ahead.",
            unit="s",
            metavar="S",
            ge=0,
        ),
    )
    load_quantile: float | None = field(
        default=DEFAULT_LOAD_QUANTILE,
        metadata=spec(
            "Quantile of the request-count forecast to size for; unset: the mean.",
            metavar="Q",
            gt=0,
            lt=1,
        ),
    )
    ttft_quantile: float | None = field(
        default=DEFAULT_TTFT_QUANTILE,
        metadata=spec(
            "TTFT quantile the target applies to (M/D/c queueing); 0 or unset: the mean TTFT.",
            metavar="Q",
            ge=0,
            lt=1,
            note="0: the mean",
        ),
    )
    sla_attainment: float | None = field(
        default=None,
        metadata=spec(
            "Per-request SLA-attainment target: size so that this fraction of requests meets "
            "TTFT and ITL, by replaying a sample of the recent request shapes (the frontend's "
            "ISL/OSL histograms) on the simulator; unset: the formula (--sizing).",
            metavar="A",
            gt=0,
            lt=1,
        ),
    )
    scale_down_patience: int | None = field(
        default=None,
        metadata=spec(
            "Decisions a lower target must hold for before scaling down (0: at once); unset: "
            f"{DEFAULT_SCALE_DOWN_PATIENCE}, or 1 with --sla-attainment.",
            metavar="N",
            ge=0,
        ),
    )
    metrics_port: int = field(
        default=9085,
        metadata=spec(
            "Port of the planner's /metrics; 0 disables.",
            metavar="PORT",
            ge=0,
            le=65535,
            dynamo_flags=("--prometheus-port", "--metric-reporting-prometheus-port"),
            dynamo_keys=("metric_reporting_prometheus_port",),
            env=("PLANNER_PROMETHEUS_PORT",),
            dynamo_default=0,
        ),
    )
    metrics_addr: str = field(
        default="127.0.0.1",
        metadata=spec("Address /metrics listens on.", metavar="ADDR", dynamo_default="0.0.0.0"),
    )
    max_ticks: int | None = field(
        default=None,
        metadata=spec(
            "Stop after this many ticks; unset: run until SIGTERM/SIGINT.", metavar="N", ge=1
        ),
    )

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


_KINDS: dict[Any, str] = {float: "number", int: "integer", str: "string", bool: "boolean"}
_KINDS[Path] = "string"


@dataclass(frozen=True)
class SettingInfo:
    """One row of the table: ``kind`` is ``float``, ``int``, ``str``, ``bool`` or ``Path``;
    ``optional``: ``None`` is a value (not set)."""

    name: str
    kind: type
    optional: bool
    default: Any
    spec: Spec

    @property
    def flag(self) -> str:
        return flag(self.name)

    @property
    def flags(self) -> tuple[str, ...]:
        """Every spelling ``plan run`` accepts: its own, then Dynamo's."""
        return (self.flag, *self.spec.flags, *self.spec.dynamo_flags)

    @property
    def switch(self) -> bool:
        """A flag without a value."""
        return self.kind is bool

    @property
    def is_path(self) -> bool:
        return self.kind is Path

    def help_text(self) -> str:
        """``--help`` text: the help, the unit, the environment fallback."""
        text = self.spec.help
        if self.spec.unit:
            text = f"{text.rstrip('.')} ({self.spec.unit})."
        if self.spec.env:
            text += f" Default: ${' or $'.join(self.spec.env)}."
        return text

    def _bounds_text(self) -> str:
        s = self.spec
        if s.message:
            return s.message
        low = (f"{_num(s.ge)}", "[") if s.ge is not None else (f"{_num(s.gt)}", "(")
        high = (f"{_num(s.le)}", "]") if s.le is not None else (f"{_num(s.lt)}", ")")
        has_low = s.ge is not None or s.gt is not None
        has_high = s.le is not None or s.lt is not None
        if has_low and has_high:
            text = f"must be in {low[1]}{low[0]}, {high[0]}{high[1]}"
        elif has_low:
            text = f"must be {'>=' if s.ge is not None else '>'} {low[0]}"
        elif has_high:
            text = f"must be {'<=' if s.le is not None else '<'} {high[0]}"
        else:
            text = "must be a finite number"
        if self.kind is float and (has_low or has_high) and not (has_low and has_high):
            text = text.replace("must be", "must be a finite number", 1)
        extras = [x for x in (self.spec.unit, self.spec.note) if x]
        return f"{text} ({', '.join(extras)})" if extras else text

    def problem(self, value: Any) -> str | None:
        """Why ``value`` (already of the setting's type) is refused, e.g. ``must be >= 1, got
        0``; None when it is accepted. ``None`` is accepted for optional settings."""
        s = self.spec
        if value is None:
            return None if self.optional else "must be set"
        if self.kind in (float, int):
            bad = isinstance(value, float) and not math.isfinite(value)
            bad = bad or (s.ge is not None and value < s.ge) or (s.gt is not None and value <= s.gt)
            bad = bad or (s.le is not None and value > s.le) or (s.lt is not None and value >= s.lt)
            bad = bad or value in s.not_values
            return f"{self._bounds_text()}, got {_num(value)}" if bad else None
        if self.kind is str or self.kind is Path:
            text = str(value)
            if not text:
                return "must not be empty"
            if s.choices is not None and text not in s.choices:
                return f"must be one of {', '.join(s.choices)}, got {text!r}"
            if s.url and not (text.startswith(("http://", "https://")) and text.split("//", 1)[1]):
                return f"must be an http:// or https:// URL, got {text!r}"
        return None

    def coerce(self, value: Any, where: str, base: Path | None = None) -> Any:
        """A JSON/YAML/environment value as this setting's type (InputError naming ``where``):
        integers for float settings become floats, whole floats for integer settings become
        integers, strings become paths (relative ones against ``base`` when given), and
        strings are parsed for numbers and switches (environment variables)."""
        if value is None:
            if self.optional:
                return None
            raise InputError(f"{where}: expected {self._expected()}, got null")
        if isinstance(value, str) and self.kind in (float, int, bool):
            value = _parse_text(value, self.kind, where)
        kind = self.kind
        if kind is bool:
            if isinstance(value, bool):
                return value
        elif kind is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
        elif kind is float:
            if isinstance(value, int | float) and not isinstance(value, bool):
                try:
                    return float(value)
                except OverflowError:
                    limit = f"{sys.float_info.max:.4g}"
                    raise InputError(f"{where}: expected a number <= {limit}") from None
        elif isinstance(value, str):
            if kind is Path:
                p = Path(value).expanduser()
                return p if p.is_absolute() or base is None else base / p
            return value
        raise InputError(f"{where}: expected {self._expected()}, got {value!r}")

    def _expected(self) -> str:
        return {"number": "a number", "integer": "an integer", "boolean": "true or false"}.get(
            _KINDS[self.kind], "a string"
        )

    def schema(self) -> dict[str, Any]:
        """This setting's JSON Schema (2020-12) property."""
        s = self.spec
        kind = _KINDS[self.kind]
        out: dict[str, Any] = {"type": [kind, "null"] if self.optional else kind}
        if s.choices is not None:
            out["enum"] = list(s.choices)
        elif kind == "string" and not s.url:
            out["minLength"] = 1
        if s.url:
            out["pattern"] = _URL_PATTERN
            out["x-pattern-message"] = "must be an http:// or https:// URL"
        for key, bound in (
            ("minimum", s.ge),
            ("exclusiveMinimum", s.gt),
            ("maximum", s.le),
            ("exclusiveMaximum", s.lt),
        ):
            if bound is not None:
                out[key] = int(bound) if float(bound).is_integer() else bound
        for value in s.not_values:
            out["not"] = {"const": value}
            out["x-not-message"] = s.message or f"must not be {value}"
        if s.unit:
            out["x-unit"] = s.unit
        default = str(self.default) if isinstance(self.default, Path) else self.default
        out["default"] = default
        out["description"] = self.spec.help
        if s.env:
            out["x-env"] = list(s.env)
        aliases = [*s.dynamo_flags, *s.dynamo_keys]
        if aliases:
            out["x-dynamo"] = aliases
        return out


def _num(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _parse_text(text: str, kind: type, where: str) -> Any:
    if kind is bool:
        low = text.strip().lower()
        if low in ("1", "true", "yes"):
            return True
        if low in ("0", "false", "no", ""):
            return False
        raise InputError(f"{where}: expected true or false, got {text!r}")
    try:
        return int(text) if kind is int else float(text)
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise InputError(f"{where}: expected {noun}, got {text!r}") from None


def _table() -> dict[str, SettingInfo]:
    hints = typing.get_type_hints(RunSettings)
    out: dict[str, SettingInfo] = {}
    for f in fields(RunSettings):
        hint = hints[f.name]
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = bool(typing.get_args(hint)) and len(args) < len(typing.get_args(hint))
        kind = args[0] if optional else hint
        assert f.default is not MISSING and kind in _KINDS, f.name
        out[f.name] = SettingInfo(f.name, kind, optional, f.default, f.metadata["spec"])
    return out


#: Every setting, in declaration order (the order of ``--help`` and ``--print-config``).
SETTINGS: Mapping[str, SettingInfo] = _table()


def config_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of ``plan run --config FILE.yaml``, from :data:`SETTINGS`."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/dynamo-plan/dynamo-plan/schemas/planner-config.schema.json",
        "title": "dynamo-plan plan run configuration",
        "description": (
            "Settings of `dynamo-plan plan run --config FILE.yaml`: one key per flag, in "
            "snake_case (`--max-gpu-budget` → `max_gpu_budget`); null = not set (the default). "
            "Flags given on the command line override the file; the file overrides the "
            "environment (`x-env`) and the defaults. Relative paths are relative to the file's "
            "folder. `x-dynamo`: the Dynamo planner flags and PlannerConfig keys that mean the "
            "same. Generated from dynamo_plan/live/settings_spec.py "
            "(`python -m dynamo_plan.live.settings_spec --write`)."
        ),
        "type": "object",
        "additionalProperties": False,
        "properties": {name: info.schema() for name, info in SETTINGS.items()},
    }


def schema_text() -> str:
    """:func:`config_schema` as the checked-in file's text (one property a line)."""
    schema = config_schema()
    props = schema.pop("properties")
    head = json.dumps(schema, indent=2, ensure_ascii=False)
    lines = [
        f"    {json.dumps(k, ensure_ascii=False)}: {json.dumps(v, ensure_ascii=False)}"
        for k, v in props.items()
    ]
    body = '  "properties": {\n' + ",\n".join(lines) + "\n  }"
    return head[:-2] + ",\n" + body + "\n}\n"


def _main(argv: list[str]) -> int:
    """``python -m dynamo_plan.live.settings_spec [--write | --check]``: print the schema, write
    it to the shipped ``schemas/planner-config.schema.json``, or check that file is current."""
    if not argv:
        sys.stdout.write(schema_text())
        return 0
    from dynamo_plan.resources import shipped_file

    path = shipped_file("schemas", "planner-config.schema.json")
    if argv == ["--write"]:
        path.write_text(schema_text(), encoding="utf-8")
        print(f"wrote {path}")
        return 0
    if argv == ["--check"]:
        if path.read_text(encoding="utf-8") == schema_text():
            return 0
        print(f"{path} is stale: run python -m dynamo_plan.live.settings_spec --write")
        return 1
    print("usage: python -m dynamo_plan.live.settings_spec [--write | --check]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
