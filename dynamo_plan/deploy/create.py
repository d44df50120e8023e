"""Writing DynamoGraphDeploymentRequests for one Dynamo release (``dgdr create``, ``dgdr convert``).

Both go through :func:`write_dgdr`, which turns the DGDR model
(:class:`~dynamo_plan.deploy.dgdr_model.DgdrSpec`) into the document a release's CRD accepts, as
data (dumped with ``yaml.safe_dump``), never as text:

* 0.6 — ``nvidia.com/v1alpha1``, the ``profilingConfig.config`` keys in snake_case
  (``use_ai_configurator``, ``aic_system``, …), no mocker switch, no ``runtimeVersionOverride``;
* 0.9 — ``nvidia.com/v1alpha1``, camelCase keys, ``useMocker``;
* 1.5 — ``nvidia.com/v1beta1``: ``model``, ``backend``, ``image``, ``sla``, ``workload``,
  ``hardware.gpuSku``, ``searchStrategy``, ``features.planner`` (the planner keys in snake_case,
  as Dynamo's PlannerConfig spells them), ``features.mocker``, ``overrides.dgd``, ``modelCache``.

Only fields that carry something are written: no ``autoApply`` at its CRD default (false in
v1alpha1, true in v1beta1), no ``useMocker: false``, no ``searchStrategy: rapid``. Whatever the
target cannot hold is listed (``path: why``) instead of written; :func:`build_dgdr` refuses such a
flag (UsageError), ``dgdr convert`` prints the list.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from dynamo_plan.core.releases import NEWEST_RELEASE, DynamoRelease
from dynamo_plan.deploy.dgdr import KIND, check_document
from dynamo_plan.deploy.dgdr_model import ALPHA, BETA, CAMEL, SNAKE, V1BETA1, DgdrSpec
from dynamo_plan.errors import InputError, UsageError

__all__ = [
    "FLAG_OF_PATH",
    "GPU_SKUS",
    "build_dgdr",
    "default_name",
    "default_profiler_image",
    "dump_dgdr",
    "write_dgdr",
]

_CONFIG = "spec.profilingConfig.config"
FLAG_OF_PATH = {
    "metadata.name": "--name",
    "metadata.namespace": "--namespace",
    "spec.model": "--model",
    "spec.backend": "--backend",
    "spec.image": "--profiler-image",
    "spec.profilingConfig.profilerImage": "--profiler-image",
    "spec.deploymentOverrides.workersImage": "--workers-image",
    "spec.workload.isl": "--isl",
    "spec.workload.osl": "--osl",
    "spec.sla.ttft": "--ttft",
    "spec.sla.itl": "--itl",
    "spec.hardware.gpuSku": "--system",
    **{f"{_CONFIG}.sla.{k}": f"--{k}" for k in ("isl", "osl", "ttft", "itl")},
    f"{_CONFIG}.sweep.aicSystem": "--system",
    f"{_CONFIG}.sweep.aic_system": "--system",
    f"{_CONFIG}.sweep.aicHfId": "--model",
    f"{_CONFIG}.sweep.aic_hf_id": "--model",
}
#: ``spec.hardware.gpuSku`` values the 1.5.0 CRD allows
GPU_SKUS = (
    "gb200_sxm", "gb10", "b200_sxm", "h200_sxm", "h100_sxm", "h100_pcie", "a100_sxm", "a100_pcie",
    "a30", "l40s", "l40", "l4", "v100_sxm", "v100_pcie", "t4", "mi200", "mi300",
)  # fmt: skip
_RUNTIME = {"vllm": "vllm", "sglang": "sglang", "trtllm": "tensorrtllm"}


def default_profiler_image(backend: str, release: DynamoRelease) -> str:
    """The profiling image a v1alpha1 DGDR needs when none is given: the backend's runtime image
    of the release (``nvcr.io/nvidia/ai-dynamo/vllm-runtime:0.9.0``), as Dynamo's samples use."""
    return (
        f"nvcr.io/nvidia/ai-dynamo/{_RUNTIME.get(backend, 'vllm')}-runtime:{release.full_version}"
    )


def default_name(model: str) -> str:
    """A DGDR name from a model id: its last part, lowercase, other characters as ``-``
    (``Qwen/Qwen3-0.6B`` → ``qwen3-0-6b``)."""
    tail = model.rstrip("/").rsplit("/", 1)[-1].lower()
    name = re.sub(r"[^a-z0-9]+", "-", tail).strip("-")[:63].strip("-")
    return name or "dgdr"


def _snake(key: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in key)


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not None and value != {} and value != []:
        target[key] = value


def _alpha(spec: DgdrSpec, release: DynamoRelease, dropped: list[str]) -> dict[str, Any]:
    snake = release is DynamoRelease.v0_6
    key = _snake if snake else (lambda k: k)

    def section(values: Mapping[str, Any]) -> dict[str, Any]:
        return {key(k): v for k, v in values.items() if v is not None}

    config: dict[str, Any] = {}
    if spec.ttft_ms is None or spec.itl_ms is None:
        raise InputError(
            f"{spec.where('ttft_ms')}: v1alpha1 needs sla.ttft and sla.itl; set them first"
        )
    config["sla"] = {"isl": spec.isl, "osl": spec.osl, "ttft": spec.ttft_ms, "itl": spec.itl_ms}
    system_in_sweep = spec.use_ai_configurator
    sweep = {
        "useAiConfigurator": True if spec.use_ai_configurator else None,
        "aicSystem": spec.aic_system if system_in_sweep else None,
        "aicHfId": spec.aic_hf_id,
        "aicModelName": spec.aic_model_name,
        "aicBackend": spec.aic_backend,
        "aicBackendVersion": spec.aic_backend_version,
    }
    hardware = {
        "gpuType": None if system_in_sweep else spec.aic_system,
        "numGpusPerNode": spec.num_gpus_per_node,
        "minNumGpusPerEngine": spec.min_gpus_per_engine,
        "maxNumGpusPerEngine": spec.max_gpus_per_engine,
    }
    planner = dict(spec.planner) | {f"{r}EngineNumGpu": n for r, n in spec.tp_hints.items()}
    _put(config, "sweep", section(sweep))
    _put(config, "planner", section(planner))
    _put(config, "hardware", section(hardware))
    _put(config, "engine", section({"maxContextLength": spec.max_context_length}))
    _put(config, "deployment", section({"modelCache": spec.model_cache}))
    image = spec.profiler_image
    if image is None:
        image = default_profiler_image(spec.concrete_backend(), release)
    profiling: dict[str, Any] = {"profilerImage": image}
    if spec.config_map_ref is not None:
        profiling["configMapRef"] = {"name": spec.config_map_ref.name}
        if spec.config_map_ref.key != "disagg.yaml":
            profiling["configMapRef"]["key"] = spec.config_map_ref.key
    profiling["config"] = config
    backend = spec.backend
    if backend == "auto" and release is not DynamoRelease.v1_5:
        backend = spec.concrete_backend()
        dropped.append(f"spec.backend: auto is not a choice before Dynamo 1.5; wrote {backend}")
    out: dict[str, Any] = {"model": spec.model, "backend": backend, "profilingConfig": profiling}
    if not spec.planner_enabled:
        dropped.append("spec.features.planner absent (no planner): v1alpha1 always has one")
    if spec.auto_apply:
        out["autoApply"] = True
    if spec.mocker:
        if release is DynamoRelease.v0_6:
            dropped.append("spec.useMocker: Dynamo 0.6's DGDR has no mocker switch (0.9+)")
        else:
            out["useMocker"] = True
    if spec.enable_gpu_discovery:
        out["enableGpuDiscovery"] = True
    overrides = {
        "name": spec.dgd_name,
        "namespace": spec.dgd_namespace,
        "labels": dict(spec.dgd_labels) or None,
        "annotations": dict(spec.dgd_annotations) or None,
        "workersImage": spec.workers_image,
    }
    _put(out, "deploymentOverrides", {k: v for k, v in overrides.items() if v is not None})
    if spec.runtime_version_override is not None:
        if release is DynamoRelease.v1_5:
            out["runtimeVersionOverride"] = spec.runtime_version_override
        else:
            dropped.append("spec.runtimeVersionOverride: only Dynamo 1.5's CRD has it")
    beta_only = {
        "spec.sla.e2eLatency": spec.e2e_latency_ms,
        "spec.sla.optimizationType": spec.optimization_type,
        "spec.workload.concurrency": spec.concurrency,
        "spec.workload.requestRate": spec.request_rate,
        "spec.hardware.totalGpus": spec.total_gpus,
    }
    dropped += [f"{k}: v1alpha1 has no such field" for k, v in beta_only.items() if v is not None]
    if spec.dgd_override is not None:
        rest = {k for k in spec.dgd_override if k not in ("apiVersion", "kind", "metadata")}
        if rest:
            dropped.append(
                f"spec.overrides.dgd ({', '.join(sorted(rest))}): v1alpha1 carries only its "
                "metadata (deploymentOverrides)"
            )
    return out


def _beta(spec: DgdrSpec, dropped: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"model": spec.model}
    if spec.backend != "auto":
        out["backend"] = spec.backend
    _put(out, "image", spec.profiler_image)
    hardware: dict[str, Any] = {}
    if spec.aic_system is not None:
        if spec.aic_system in GPU_SKUS:
            hardware["gpuSku"] = spec.aic_system
        else:
            dropped.append(f"{spec.path_of('aic_system')}: {spec.aic_system!r} is no gpuSku of "
                           f"the 1.5 CRD ({', '.join(GPU_SKUS)})")  # fmt: skip
    _put(hardware, "numGpusPerNode", spec.num_gpus_per_node)
    _put(hardware, "totalGpus", spec.total_gpus)
    _put(out, "hardware", hardware)
    sla = {
        "ttft": spec.ttft_ms,
        "itl": spec.itl_ms,
        "e2eLatency": spec.e2e_latency_ms,
        "optimizationType": spec.optimization_type,
    }
    _put(out, "sla", {k: v for k, v in sla.items() if v is not None})
    workload = {
        "isl": spec.isl,
        "osl": spec.osl,
        "concurrency": spec.concurrency,
        "requestRate": spec.request_rate,
    }
    _put(out, "workload", {k: v for k, v in workload.items() if v is not None})
    if not spec.use_ai_configurator:
        out["searchStrategy"] = "thorough"  # rapid (the simulation) is the default
    features: dict[str, Any] = {}
    if spec.planner_enabled:
        planner = dict(spec.planner) | {f"{r}EngineNumGpu": n for r, n in spec.tp_hints.items()}
        features["planner"] = {_snake(k): v for k, v in planner.items()}
    if spec.mocker:
        features["mocker"] = {"enabled": True}
    _put(out, "features", features)
    dgd: dict[str, Any] = dict(spec.dgd_override or {})
    meta = {
        "name": spec.dgd_name,
        "namespace": spec.dgd_namespace,
        "labels": dict(spec.dgd_labels) or None,
        "annotations": dict(spec.dgd_annotations) or None,
    }
    meta = {k: v for k, v in meta.items() if v is not None}
    if meta or dgd:
        dgd.setdefault("apiVersion", BETA)
        dgd.setdefault("kind", "DynamoGraphDeployment")
        if meta:
            dgd["metadata"] = {**dict(dgd.get("metadata") or {}), **meta}
        out["overrides"] = {"dgd": dgd}
    _put(out, "modelCache", dict(spec.model_cache or {}) or None)
    if not spec.auto_apply:
        out["autoApply"] = False
    _put(out, "runtimeVersionOverride", spec.runtime_version_override)
    alpha_only = {
        spec.path_of("aic_hf_id"): spec.aic_hf_id if spec.aic_hf_id != spec.model else None,
        "sweep.aicModelName": spec.aic_model_name,
        "sweep.aicBackend": spec.aic_backend,
        spec.path_of("aic_backend_version"): spec.aic_backend_version,
        spec.path_of("min_gpus_per_engine"): spec.min_gpus_per_engine,
        spec.path_of("max_gpus_per_engine"): spec.max_gpus_per_engine,
        "engine.maxContextLength": spec.max_context_length,
        spec.path_of("config_map_ref"): spec.config_map_ref,
        spec.path_of("workers_image"): spec.workers_image,
        "spec.enableGpuDiscovery": True if spec.enable_gpu_discovery else None,
    }
    dropped += [f"{k}: v1beta1 has no such field" for k, v in alpha_only.items() if v is not None]
    return out


def write_dgdr(spec: DgdrSpec, release: DynamoRelease) -> tuple[dict[str, Any], list[str]]:
    """(the DGDR document ``release``'s CRD accepts, what could not be carried: ``path: why``).

    InputError when the document does not validate (the first finding)."""
    dropped: list[str] = []
    metadata: dict[str, Any] = {}
    _put(metadata, "name", spec.name)
    _put(metadata, "namespace", spec.namespace)
    _put(metadata, "labels", dict(spec.labels) or None)
    _put(metadata, "annotations", dict(spec.annotations) or None)
    if release is DynamoRelease.v1_5:
        body = _beta(spec, dropped)
        version = BETA
    else:
        body = _alpha(spec, release, dropped)
        version = ALPHA
    doc = {"apiVersion": version, "kind": KIND, "metadata": metadata, "spec": body}
    errors, _ = check_document(doc)
    if errors:
        first = errors[0]
        flag = FLAG_OF_PATH.get(first.path, first.path)
        raise InputError(f"{flag}: {first.message}")
    return doc, dropped


def build_dgdr(
    *,
    model: str,
    backend: str,
    isl: int,
    osl: int,
    ttft_ms: float,
    itl_ms: float,
    name: str | None = None,
    profiler_image: str | None = None,
    offline: bool = False,
    system: str | None = None,
    auto_apply: bool = False,
    use_mocker: bool = False,
    workers_image: str | None = None,
    namespace: str | None = None,
    release: DynamoRelease = NEWEST_RELEASE,
) -> dict[str, Any]:
    """A DGDR for ``release`` asking for ``model`` on ``backend`` under the SLA (isl/osl tokens,
    ttft/itl ms); ``name`` defaults to :func:`default_name` of the model.

    ``offline`` selects the estimator (AI Configurator) path: v1alpha1 ``useAiConfigurator:
    true`` (0.6: ``use_ai_configurator``) with ``aicSystem`` = ``system`` (required) and
    ``aicHfId`` = ``model``; v1beta1 ``searchStrategy`` rapid (its default) with
    ``hardware.gpuSku`` = ``system``. UsageError for a flag the release cannot write
    (``--use-mocker`` on 0.6, ``--workers-image`` on 1.5)."""
    if offline and not system:
        raise UsageError("--offline needs --system (the estimator's GPU system, e.g. h200_sxm)")
    if system and not offline:
        raise UsageError("--system is used by --offline profiling only; add --offline")
    if use_mocker and release is DynamoRelease.v0_6:
        raise UsageError("--use-mocker: Dynamo 0.6's DGDR has no mocker switch (0.9 and later)")
    if workers_image is not None and release is DynamoRelease.v1_5:
        raise UsageError(
            "--workers-image: a v1beta1 DGDR (Dynamo 1.5) has no workers image field; set the "
            "image in spec.overrides.dgd, or write for --dynamo-version 0.9"
        )
    beta = release is DynamoRelease.v1_5
    spelling = V1BETA1 if beta else (SNAKE if release is DynamoRelease.v0_6 else CAMEL)
    spec = DgdrSpec(
        api_version=BETA if beta else ALPHA,
        spelling=spelling,
        release=release,
        name=default_name(model) if name is None else name,
        namespace=namespace,
        model=model,
        backend=backend,
        isl=isl,
        osl=osl,
        ttft_ms=ttft_ms,
        itl_ms=itl_ms,
        use_ai_configurator=offline,
        aic_system=system,
        aic_hf_id=model if offline and not beta else None,
        auto_apply=auto_apply,
        mocker=use_mocker,
        profiler_image=profiler_image,
        workers_image=workers_image,
        planner_enabled=True,
    )
    doc, dropped = write_dgdr(spec, release)
    if dropped:  # every flag that cannot be written was refused above
        raise UsageError(f"cannot write for Dynamo {release.value}: {dropped[0]}")
    return doc


def dump_dgdr(doc: dict[str, Any]) -> str:
    """YAML text of a DGDR, keys in the order built; non-ASCII characters escaped, so that
    characters YAML reads as line breaks (U+0085, U+2028) survive a round trip."""
    return yaml.safe_dump(doc, sort_keys=False)
