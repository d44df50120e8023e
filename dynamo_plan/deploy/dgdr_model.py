"""One internal model of a DynamoGraphDeploymentRequest, read from every spelling Dynamo uses.

:func:`read_dgdr_file` (one DGDR file → :class:`DgdrSpec` + warnings) is the only reader: the
offline profiler, ``generate-dgd``, ``dgdr run`` and online profiling all use it. It validates the
file first (:func:`dynamo_plan.deploy.dgdr.check_document`, the shipped schema of the document's
apiVersion), then :func:`interpret` fills the model. Errors are :class:`DgdrError` (an
InputError) ``FILE:LINE: field.path: message``; the path is the field as the file spells it.

Spellings (``DgdrSpec.spelling``) and the earliest release whose CRD reads them as written
(``DgdrSpec.release``):

* ``v1alpha1-snake`` — Dynamo before 0.8.1 (0.6): ``spec.profilingConfig.config`` sweep keys in
  snake_case (``use_ai_configurator``, ``aic_system``, ``aic_hf_id``, ``aic_backend_version``,
  ``min_num_gpus_per_engine``, …). Release 0.6.
* ``v1alpha1-camel`` — 0.8.1 and later: the same keys in camelCase (``useAiConfigurator``); the
  mocker switch ``spec.useMocker`` (the interim CRD's ``deployMocker`` is read as an alias, with a
  warning). Release 0.9 (0.6 when no field needs a later one).
* ``v1beta1`` — Dynamo 1.x (storage version from 1.0): ``spec.model``, ``backend`` (``auto``
  allowed, the default), ``image``, ``hardware``, ``sla``, ``workload``, ``searchStrategy``,
  ``features.planner``, ``features.mocker``, ``overrides``, ``modelCache``, ``autoApply``
  (default **true**, where v1alpha1's default is false). Release 1.5.

Fields and where each comes from (v1alpha1 ``config`` = ``spec.profilingConfig.config``; a
snake_case key is read exactly like its camelCase form; ``—`` = that version has no such field):

=======================  =============================================  ===========================
field                    v1alpha1                                       v1beta1
=======================  =============================================  ===========================
name/namespace/labels    metadata.*                                     metadata.*
model                    spec.model                                     spec.model
backend                  spec.backend                                   spec.backend (default auto)
isl, osl (tokens)        config.sla.isl/osl                             spec.workload.isl/osl
                                                                        (default 4000/1000)
ttft_ms, itl_ms          config.sla.ttft/itl                            spec.sla.ttft/itl
e2e_latency_ms           —                                              spec.sla.e2eLatency
optimization_type        —                                              spec.sla.optimizationType
concurrency              —                                              spec.workload.concurrency
request_rate (req/s)     —                                              spec.workload.requestRate
search_strategy          —                                              spec.searchStrategy
use_ai_configurator      config.sweep.useAiConfigurator                 searchStrategy rapid (the
                         (use_ai_configurator)                          default) → True
aic_system               config.sweep.aicSystem (aic_system), else      spec.hardware.gpuSku
                         config.hardware.gpuType
aic_hf_id                config.sweep.aicHfId (aic_hf_id)               —
aic_model_name           config.sweep.aicModelName (aic_model_name)     —
aic_backend              config.sweep.aicBackend (aic_backend)          —
aic_backend_version      config.sweep.aicBackendVersion                 —
                         (aic_backend_version); a number becomes text
num_gpus_per_node        config.hardware.numGpusPerNode                 spec.hardware.numGpusPerNode
total_gpus               —                                              spec.hardware.totalGpus
min/max_gpus_per_engine  config.hardware.{min,max}NumGpusPerEngine      —
max_context_length       config.engine.maxContextLength                 —
tp_hints                 config.planner.{prefill,decode}EngineNumGpu    features.planner's
                                                                        prefill/decode_engine_num_gpu
planner (camelCase)      config.planner                                 spec.features.planner
planner_enabled          always                                         features.planner not null
mocker                   spec.useMocker (alias deployMocker)            spec.features.mocker.enabled
auto_apply               spec.autoApply (default false)                 spec.autoApply (default true)
enable_gpu_discovery     spec.enableGpuDiscovery                        —
profiler_image           spec.profilingConfig.profilerImage             spec.image
workers_image            spec.deploymentOverrides.workersImage          —
config_map_ref           spec.profilingConfig.configMapRef {name, key   —
                         (default disagg.yaml)}
dgd_name/namespace/      spec.deploymentOverrides.name/namespace/       spec.overrides.dgd.metadata.*
labels/annotations       labels/annotations
dgd_override             —                                              spec.overrides.dgd
model_cache              config.deployment.modelCache                   spec.modelCache
runtime_version_override spec.runtimeVersionOverride (1.5)              spec.runtimeVersionOverride
=======================  =============================================  ===========================

A field of the other version is refused and named as such ("`useMocker` is v1alpha1's spelling
of `spec.features.mocker.enabled`"): an API server would prune it and its effect would be lost.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dynamo_plan.core.releases import DynamoRelease
from dynamo_plan.errors import InputError
from dynamo_plan.formats.yaml_lines import line_of

__all__ = [
    "ALPHA",
    "BETA",
    "CAMEL",
    "CONFIG_SECTIONS",
    "OTHER_VERSION_FIELDS",
    "SNAKE",
    "V1BETA1",
    "ConfigMapRef",
    "DgdrError",
    "DgdrSpec",
    "Issue",
    "camel_key",
    "interpret",
    "read_dgdr_file",
    "spelling_issues",
]

GROUP = "nvidia.com"
ALPHA = f"{GROUP}/v1alpha1"
BETA = f"{GROUP}/v1beta1"
SNAKE, CAMEL, V1BETA1 = "v1alpha1-snake", "v1alpha1-camel", "v1beta1"

#: the sections of ``spec.profilingConfig.config`` whose keys are read in either spelling
CONFIG_SECTIONS = ("sla", "sweep", "planner", "hardware", "engine", "deployment")

#: spec-level fields of one version → (that version, the other version's field, or None)
OTHER_VERSION_FIELDS: dict[str, dict[str, str | None]] = {
    ALPHA: {  # fields of v1beta1 met in a v1alpha1 document → their v1alpha1 spelling
        "sla": "spec.profilingConfig.config.sla",
        "workload": "spec.profilingConfig.config.sla (isl, osl)",
        "features": "spec.useMocker and spec.profilingConfig.config.planner",
        "hardware": "spec.profilingConfig.config.hardware",
        "image": "spec.profilingConfig.profilerImage",
        "overrides": "spec.deploymentOverrides",
        "searchStrategy": "spec.profilingConfig.config.sweep.useAiConfigurator",
        "modelCache": "spec.profilingConfig.config.deployment.modelCache",
    },
    BETA: {  # fields of v1alpha1 met in a v1beta1 document → their v1beta1 spelling
        "useMocker": "spec.features.mocker.enabled",
        "deployMocker": "spec.features.mocker.enabled",
        "profilingConfig": "spec.image, spec.sla, spec.workload, spec.hardware, "
        "spec.features.planner",
        "deploymentOverrides": "spec.overrides.dgd",
        "enableGpuDiscovery": None,
    },
}

Steps = tuple[str | int, ...]


@dataclass(frozen=True)
class Issue:
    """One problem found while reading: field path (as spelled in the file) and message."""

    steps: Steps
    message: str

    @property
    def path(self) -> str:
        return _dotted(self.steps)


class DgdrError(InputError):
    """A DGDR that cannot be read: ``FILE:LINE: field.path: message``."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None,
                 path: str = "") -> None:  # fmt: skip
        where = file or "the DGDR"
        where += f":{line}" if line is not None else ""
        super().__init__(f"{where}:{f' {path}:' if path else ''} {message}")
        self.file, self.line, self.path = file, line, path


@dataclass(frozen=True)
class ConfigMapRef:
    """``spec.profilingConfig.configMapRef``: a ConfigMap holding the base DGD config."""

    name: str
    key: str = "disagg.yaml"


@dataclass(frozen=True)
class DgdrSpec:
    """What a DGDR asks for, whatever its spelling (module docstring: where each field comes
    from). Tokens for isl/osl, milliseconds for the latencies, requests/s for request_rate."""

    api_version: str
    spelling: str
    release: DynamoRelease
    name: str | None
    namespace: str | None
    model: str
    backend: str
    isl: int
    osl: int
    ttft_ms: float | None = None
    itl_ms: float | None = None
    e2e_latency_ms: float | None = None
    optimization_type: str | None = None
    concurrency: float | None = None
    request_rate: float | None = None
    search_strategy: str | None = None
    use_ai_configurator: bool = False
    aic_system: str | None = None
    aic_hf_id: str | None = None
    aic_model_name: str | None = None
    aic_backend: str | None = None
    aic_backend_version: str | None = None
    num_gpus_per_node: int | None = None
    total_gpus: int | None = None
    min_gpus_per_engine: int | None = None
    max_gpus_per_engine: int | None = None
    max_context_length: int | None = None
    tp_hints: Mapping[str, int] = field(default_factory=dict)
    planner: Mapping[str, Any] = field(default_factory=dict)
    planner_enabled: bool = True
    mocker: bool = False
    auto_apply: bool = False
    enable_gpu_discovery: bool = False
    profiler_image: str | None = None
    workers_image: str | None = None
    config_map_ref: ConfigMapRef | None = None
    dgd_name: str | None = None
    dgd_namespace: str | None = None
    dgd_labels: Mapping[str, str] = field(default_factory=dict)
    dgd_annotations: Mapping[str, str] = field(default_factory=dict)
    dgd_override: Mapping[str, Any] | None = None
    model_cache: Mapping[str, Any] | None = None
    runtime_version_override: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    #: logical field → its path as the file spells it (for messages); only fields that were set
    paths: Mapping[str, str] = field(default_factory=dict)
    file: str | None = None
    #: the document as read (plain data), for writing it back (``dgdr run`` applies it)
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    node: yaml.Node | None = field(default=None, compare=False, repr=False)

    @property
    def is_v1beta1(self) -> bool:
        return self.api_version == BETA

    @property
    def estimator_model(self) -> str:
        """The model id the estimator uses: ``aic_hf_id`` when given, else ``model``."""
        return self.aic_hf_id or self.model

    def path_of(self, name: str) -> str:
        """Where field ``name`` is (or would be) written in this DGDR, e.g.
        ``spec.profilingConfig.config.sweep.aic_system`` or ``spec.sla.ttft``."""
        return self.paths.get(name) or _DEFAULT_PATHS[self.is_v1beta1].get(name, name)

    def where(self, name: str) -> str:
        """``FILE:LINE: path`` of field ``name`` (its parent's line when it is absent)."""
        path = self.path_of(name)
        line = self._line(path)
        at = (self.file or "the DGDR") + (f":{line}" if line is not None else "")
        return f"{at}: {path}"

    def _line(self, path: str) -> int | None:
        if self.node is None:
            return None
        steps: list[str | int] = [s for s in re.split(r"\.(?![^\[]*\])", path) if s]
        return line_of(self.node, steps)

    def error(self, name: str, message: str) -> DgdrError:
        """A DgdrError located at field ``name``."""
        path = self.path_of(name)
        return DgdrError(message, self.file, self._line(path), path)

    def sla(self) -> tuple[int, int, float, float]:
        """(isl, osl, ttft ms, itl ms) for profiling; DgdrError naming the missing target."""
        missing = [n for n in ("ttft_ms", "itl_ms") if getattr(self, n) is None]
        if missing:
            extra = (
                " (sla.e2eLatency alone cannot be split into TTFT and ITL)"
                if self.e2e_latency_ms is not None
                else ""
            )
            raise self.error(
                missing[0], f"dynamo-plan profiles against a TTFT and an ITL target; set it{extra}"
            )
        assert self.ttft_ms is not None and self.itl_ms is not None
        return self.isl, self.osl, self.ttft_ms, self.itl_ms

    def concrete_backend(self, recorded: str | None = None) -> str:
        """The backend to profile or render: ``backend``, or for ``auto`` the one a profile
        recorded (``recorded``), else vllm (Dynamo's first choice)."""
        if self.backend != "auto":
            return self.backend
        return recorded or "vllm"


_C = "spec.profilingConfig.config"
_DEFAULT_PATHS: dict[bool, dict[str, str]] = {
    False: {
        "model": "spec.model",
        "backend": "spec.backend",
        "isl": f"{_C}.sla.isl",
        "osl": f"{_C}.sla.osl",
        "ttft_ms": f"{_C}.sla.ttft",
        "itl_ms": f"{_C}.sla.itl",
        "use_ai_configurator": f"{_C}.sweep.useAiConfigurator",
        "aic_system": f"{_C}.sweep.aicSystem",
        "aic_hf_id": f"{_C}.sweep.aicHfId",
        "aic_backend_version": f"{_C}.sweep.aicBackendVersion",
        "min_gpus_per_engine": f"{_C}.hardware.minNumGpusPerEngine",
        "max_gpus_per_engine": f"{_C}.hardware.maxNumGpusPerEngine",
        "tp_hints.prefill": f"{_C}.planner.prefillEngineNumGpu",
        "tp_hints.decode": f"{_C}.planner.decodeEngineNumGpu",
        "planner": f"{_C}.planner",
        "mocker": "spec.useMocker",
        "config_map_ref": "spec.profilingConfig.configMapRef",
        "profiler_image": "spec.profilingConfig.profilerImage",
        "workers_image": "spec.deploymentOverrides.workersImage",
    },
    True: {
        "model": "spec.model",
        "backend": "spec.backend",
        "isl": "spec.workload.isl",
        "osl": "spec.workload.osl",
        "ttft_ms": "spec.sla.ttft",
        "itl_ms": "spec.sla.itl",
        "use_ai_configurator": "spec.searchStrategy",
        "aic_system": "spec.hardware.gpuSku",
        "planner": "spec.features.planner",
        "tp_hints.prefill": "spec.features.planner.prefill_engine_num_gpu",
        "tp_hints.decode": "spec.features.planner.decode_engine_num_gpu",
        "mocker": "spec.features.mocker.enabled",
        "profiler_image": "spec.image",
    },
}


def camel_key(key: str) -> str:
    """``aic_hf_id`` → ``aicHfId``; a key without ``_`` is returned as it is."""
    head, *rest = key.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _dotted(steps: Sequence[str | int]) -> str:
    out = ""
    for s in steps:
        out += f"[{s}]" if isinstance(s, int) else (f".{s}" if out else str(s))
    return out


def _map(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str_map(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in _map(value).items()}


def _normalise_section(
    section: Any, steps: Steps, issues: list[Issue], warnings: list[Issue]
) -> tuple[dict[str, Any], dict[str, Steps], set[str]]:
    """(camelCase copy of one config section, camel key → spelled steps, spellings seen)."""
    out: dict[str, Any] = {}
    spelled: dict[str, Steps] = {}
    seen: set[str] = set()
    for key, value in _map(section).items():
        if not isinstance(key, str):
            continue
        camel = camel_key(key)
        if "_" in key:
            seen.add(SNAKE)
        elif camel != camel.lower():
            seen.add(CAMEL)
        if camel in out:
            first = _dotted(spelled[camel])
            issues.append(
                Issue(
                    (*steps, key),
                    f"`{key}` and `{spelled[camel][-1]}` are the same field (at {first}); keep one",
                )
            )
            continue
        out[camel] = value
        spelled[camel] = (*steps, key)
    if SNAKE in seen and CAMEL in seen:
        warnings.append(
            Issue(
                steps,
                "mixes snake_case (Dynamo 0.6) and camelCase (0.8.1+) keys; both are "
                "read, but one spelling per file is clearer",
            )
        )
    return out, spelled, seen


def spelling_issues(data: Any) -> tuple[list[Issue], list[Issue]]:
    """(errors, warnings) about spelling, for any parsed document (defensive about types):
    fields of the other apiVersion, ``deployMocker`` (alias, warned), a key given in both
    snake_case and camelCase."""
    errors: list[Issue] = []
    warnings: list[Issue] = []
    doc = _map(data)
    version = doc.get("apiVersion")
    spec = _map(doc.get("spec"))
    if version in OTHER_VERSION_FIELDS:
        own, other = ("v1alpha1", "v1beta1") if version == ALPHA else ("v1beta1", "v1alpha1")
        for key, theirs in OTHER_VERSION_FIELDS[str(version)].items():
            if key not in spec:
                continue
            if theirs is None:
                message = f"`{key}` is a {other} field; {own} has no such field (remove it)"
            else:
                message = f"`{key}` is {other}'s spelling of `{theirs}` (this DGDR is {own})"
            errors.append(Issue(("spec", key), message))
    if version == ALPHA:
        if "deployMocker" in spec:
            if "useMocker" in spec:
                errors.append(
                    Issue(
                        ("spec", "deployMocker"),
                        "`deployMocker` and `useMocker` are the same field; keep `useMocker`",
                    )
                )
            else:
                warnings.append(
                    Issue(
                        ("spec", "deployMocker"),
                        "`deployMocker` is the interim name of "
                        "`useMocker` (Dynamo 0.9+ CRDs); read as useMocker",
                    )
                )
        config = _map(_map(spec.get("profilingConfig")).get("config"))
        base: Steps = ("spec", "profilingConfig", "config")
        for section in CONFIG_SECTIONS:
            if section in config:
                _normalise_section(config[section], (*base, section), errors, warnings)
    return errors, warnings


def _num(value: Any) -> float | None:
    return None if value is None or isinstance(value, bool) else float(value)


def _int(value: Any) -> int | None:
    return None if value is None or isinstance(value, bool) else int(value)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def interpret(
    data: Mapping[str, Any], node: yaml.Node | None = None, file: str | None = None
) -> tuple[DgdrSpec, list[Issue]]:
    """The model of one document that passed schema validation, and its warnings.

    DgdrError for what the schema cannot say (an other-version field, one key in both
    spellings); see :func:`read_dgdr_file` for files."""
    errors, warnings = spelling_issues(data)
    if errors:
        first = errors[0]
        line = line_of(node, list(first.steps)) if node is not None else None
        raise DgdrError(first.message, file, line, first.path)
    version = str(data.get("apiVersion"))
    meta = _map(data.get("metadata"))
    spec = _map(data.get("spec"))
    common: dict[str, Any] = {
        "name": _opt_str(meta.get("name")),
        "namespace": _opt_str(meta.get("namespace")),
        "labels": _str_map(meta.get("labels")),
        "annotations": _str_map(meta.get("annotations")),
        "model": str(spec["model"]),
        "runtime_version_override": _opt_str(spec.get("runtimeVersionOverride")),
        "file": file,
        "raw": data,
        "node": node,
    }
    if version == BETA:
        return _beta(spec, common), [*warnings]
    return _alpha(spec, common, warnings), warnings


def _alpha(spec: dict[str, Any], common: dict[str, Any], warnings: list[Issue]) -> DgdrSpec:
    profiling = _map(spec.get("profilingConfig"))
    config = _map(profiling.get("config"))
    base: Steps = ("spec", "profilingConfig", "config")
    sections: dict[str, dict[str, Any]] = {}
    spelled: dict[str, Steps] = {}
    seen: set[str] = set()
    for name in CONFIG_SECTIONS:
        values, where, kinds = _normalise_section(config.get(name), (*base, name), [], [])
        sections[name] = values
        spelled |= {f"{name}.{k}": v for k, v in where.items()}
        seen |= kinds
    sla, sweep, hardware = sections["sla"], sections["sweep"], sections["hardware"]
    planner, engine, deployment = sections["planner"], sections["engine"], sections["deployment"]
    mocker_key = (
        "deployMocker" if "deployMocker" in spec and "useMocker" not in spec else "useMocker"
    )
    paths = {
        logical: _dotted(spelled[key])
        for logical, key in (
            ("isl", "sla.isl"), ("osl", "sla.osl"), ("ttft_ms", "sla.ttft"),
            ("itl_ms", "sla.itl"), ("use_ai_configurator", "sweep.useAiConfigurator"),
            ("aic_system", "sweep.aicSystem"), ("aic_hf_id", "sweep.aicHfId"),
            ("aic_backend_version", "sweep.aicBackendVersion"),
            ("min_gpus_per_engine", "hardware.minNumGpusPerEngine"),
            ("max_gpus_per_engine", "hardware.maxNumGpusPerEngine"),
            ("tp_hints.prefill", "planner.prefillEngineNumGpu"),
            ("tp_hints.decode", "planner.decodeEngineNumGpu"),
            ("max_context_length", "engine.maxContextLength"),
        )
        if key in spelled
    }  # fmt: skip
    paths["mocker"] = f"spec.{mocker_key}"
    if "gpuType" in hardware and "aicSystem" not in sweep:
        paths["aic_system"] = _dotted(spelled["hardware.gpuType"])
    tp_hints = {
        role: int(planner[f"{role}EngineNumGpu"])
        for role in ("prefill", "decode")
        if planner.get(f"{role}EngineNumGpu") is not None
    }
    ref = profiling.get("configMapRef")
    overrides = _map(spec.get("deploymentOverrides"))
    # the release whose CRD reads it as written: snake_case is 0.6's; useMocker came with 0.9
    later = "useMocker" in spec or "deployMocker" in spec or "outputPVC" in profiling
    later = later or "resources" in profiling or "tolerations" in profiling
    later = later or CAMEL in seen
    release = DynamoRelease.v0_6 if SNAKE in seen or not later else DynamoRelease.v0_9
    if "runtimeVersionOverride" in spec or "nodeSelector" in profiling:
        release = DynamoRelease.v1_5
    version = sweep.get("aicBackendVersion")
    return DgdrSpec(
        api_version=ALPHA,
        spelling=SNAKE if SNAKE in seen else CAMEL,
        release=release,
        backend=str(spec["backend"]),
        isl=int(sla["isl"]),
        osl=int(sla["osl"]),
        ttft_ms=_num(sla.get("ttft")),
        itl_ms=_num(sla.get("itl")),
        use_ai_configurator=sweep.get("useAiConfigurator") is True,
        aic_system=_opt_str(sweep.get("aicSystem") or hardware.get("gpuType")),
        aic_hf_id=_opt_str(sweep.get("aicHfId")),
        aic_model_name=_opt_str(sweep.get("aicModelName")),
        aic_backend=_opt_str(sweep.get("aicBackend")),
        aic_backend_version=None if version is None else str(version),
        num_gpus_per_node=_int(hardware.get("numGpusPerNode")),
        min_gpus_per_engine=_int(hardware.get("minNumGpusPerEngine")),
        max_gpus_per_engine=_int(hardware.get("maxNumGpusPerEngine")),
        max_context_length=_int(engine.get("maxContextLength")),
        tp_hints=tp_hints,
        planner=dict(planner),
        planner_enabled=True,
        mocker=bool(spec.get(mocker_key, False)),
        auto_apply=bool(spec.get("autoApply", False)),
        enable_gpu_discovery=bool(spec.get("enableGpuDiscovery", False)),
        profiler_image=_opt_str(profiling.get("profilerImage")),
        workers_image=_opt_str(overrides.get("workersImage")),
        config_map_ref=(
            ConfigMapRef(str(ref["name"]), str(ref.get("key") or "disagg.yaml"))
            if isinstance(ref, dict) and ref.get("name")
            else None
        ),
        dgd_name=_opt_str(overrides.get("name")),
        dgd_namespace=_opt_str(overrides.get("namespace")),
        dgd_labels=_str_map(overrides.get("labels")),
        dgd_annotations=_str_map(overrides.get("annotations")),
        model_cache=_map(deployment.get("modelCache")) or None,
        paths=paths,
        **common,
    )


def _beta(spec: dict[str, Any], common: dict[str, Any]) -> DgdrSpec:
    sla, workload = _map(spec.get("sla")), _map(spec.get("workload"))
    hardware, features = _map(spec.get("hardware")), _map(spec.get("features"))
    planner_raw = features.get("planner")
    planner = {camel_key(str(k)): v for k, v in _map(planner_raw).items()}
    spelled_planner = {camel_key(str(k)): str(k) for k in _map(planner_raw)}
    paths: dict[str, str] = {}
    tp_hints: dict[str, int] = {}
    for role in ("prefill", "decode"):
        key = f"{role}EngineNumGpu"
        if planner.get(key) is not None:
            tp_hints[role] = int(planner[key])
            paths[f"tp_hints.{role}"] = f"spec.features.planner.{spelled_planner[key]}"
    dgd = spec.get("overrides", {}).get("dgd") if isinstance(spec.get("overrides"), dict) else None
    dgd_meta = _map(_map(dgd).get("metadata"))
    strategy = str(spec.get("searchStrategy", "rapid"))
    return DgdrSpec(
        api_version=BETA,
        spelling=V1BETA1,
        release=DynamoRelease.v1_5,
        backend=str(spec.get("backend", "auto")),
        isl=int(workload.get("isl", 4000)),
        osl=int(workload.get("osl", 1000)),
        ttft_ms=_num(sla.get("ttft")),
        itl_ms=_num(sla.get("itl")),
        e2e_latency_ms=_num(sla.get("e2eLatency")),
        optimization_type=_opt_str(sla.get("optimizationType")),
        concurrency=_num(workload.get("concurrency")),
        request_rate=_num(workload.get("requestRate")),
        search_strategy=strategy,
        use_ai_configurator=strategy == "rapid",
        aic_system=_opt_str(hardware.get("gpuSku")),
        num_gpus_per_node=_int(hardware.get("numGpusPerNode")),
        total_gpus=_int(hardware.get("totalGpus")),
        tp_hints=tp_hints,
        planner=planner,
        planner_enabled=planner_raw is not None,
        mocker=_map(features.get("mocker")).get("enabled") is True,
        auto_apply=bool(spec.get("autoApply", True)),
        profiler_image=_opt_str(spec.get("image")),
        dgd_name=_opt_str(dgd_meta.get("name")),
        dgd_namespace=_opt_str(dgd_meta.get("namespace")),
        dgd_labels=_str_map(dgd_meta.get("labels")),
        dgd_annotations=_str_map(dgd_meta.get("annotations")),
        dgd_override=dict(dgd) if isinstance(dgd, dict) else None,
        model_cache=_map(spec.get("modelCache")) or None,
        paths=paths,
        **common,
    )


def read_dgdr_file(path: Path) -> tuple[DgdrSpec, list[str]]:
    """The one DGDR in ``path``: its model and warnings (``FILE:LINE: path: message`` each).

    The file is validated first with the shipped schema of its apiVersion (as ``dgdr
    validate``); DgdrError ``FILE:LINE: field.path: message (and N more…)`` on the first
    problem, and when the file holds no or several documents."""
    from dynamo_plan.deploy.dgdr import validate_document_text  # the validator imports this module

    text_docs, report = validate_document_text(path)
    if report.errors:
        first = report.errors[0]
        more = len(report.errors) - 1
        message = first.message + (
            f" (and {more} more: dynamo-plan dgdr validate {path})" if more else ""
        )
        raise DgdrError(message, str(path), first.line, first.path)
    if len(text_docs) != 1:
        raise DgdrError(f"expected one DGDR document, found {len(text_docs)}", str(path))
    doc = text_docs[0]
    spec, _ = interpret(doc.data, doc.node, str(path))
    warnings = [
        f"{path}{f':{w.line}' if w.line is not None else ''}: {w.path}: {w.message}"
        for w in report.warnings
    ]
    return spec, warnings
