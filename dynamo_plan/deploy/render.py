"""DGDR + performance profile → DynamoGraphDeployment manifest (``generate-dgd``).

The shipped ``templates/<backend>/disagg.yaml`` (a real DynamoGraphDeployment) and
``templates/rbac/planner.yaml`` are loaded with ``yaml.safe_load`` and edited as data, never by
string substitution. The output is a list of Kubernetes objects, in apply order:

ServiceAccount, Role, RoleBinding (the Planner's least-privilege identity), ConfigMap
``planner-profile-data`` (``prefill_raw_data.json``, ``decode_raw_data.json``, ``profile.json``),
then the DynamoGraphDeployment. ``planner=False`` leaves out the Planner service and the four
objects that only it uses.

Edits made to the template:

* name / namespace: ``deploymentOverrides.name|namespace``, else the DGDR's own; labels
  ``dgdr.nvidia.com/name`` and ``dgdr.nvidia.com/namespace`` (``default`` when the DGDR has none)
  on every object, on top of ``deploymentOverrides.labels``; ``deploymentOverrides.annotations``
  on the DGD; ``dynamoNamespace`` of every service = the DGD name.
* model: the DGDR's ``spec.model`` replaces the value of ``--model``/``--model-path``/
  ``--served-model-name`` in the worker arguments.
* TP per role: ``profile.json``'s ``parallelism.<role>.tp`` (as ``profile --offline`` writes it),
  else ``planner.prefillEngineNumGpu``/``decodeEngineNumGpu``, else 1; a disagreement between the
  two, or a recorded TP outside ``hardware.{min,max}NumGpusPerEngine``, is an InputError. So is a
  ``profile.json`` model or backend other than the DGDR's (:func:`check_profile_matches`). It sets the backend's TP flag and ``resources.limits.gpu`` (GPU templates).
* replicas: the DGDR carries no expected request rate, so the initial size is the planner floor,
  ``planner.plannerMinEndpoint`` (default 1) per role, checked against ``planner.maxGpuBudget``
  (absent: ``plan run``'s default, 8, unless ``planner=False``) with
  :func:`dynamo_plan.core.sla.apply_limits` (InfeasibleSLAError when the floor does not fit).
  The Planner scales from there.
* images: ``deploymentOverrides.workersImage`` on the frontend and the workers (not the Planner).
* Planner: the container runs ``dynamo-plan plan run`` with ``--profile /data/profile`` (the
  ConfigMap mount), ``--model <spec.model>`` (the served model name: the value the workers get
  as ``--model``/``--served-model-name``, which the frontend labels its metrics with),
  ``--namespace <the services' dynamoNamespace>`` (the ``dynamo_namespace`` label),
  ``--connector kubernetes --dgd <the DGD name>`` (no ``--kube-namespace``: the planner runs in
  the DGD's namespace and in-cluster config gives the pod's), ``--ttft --itl --isl --osl`` from
  ``config.sla``, ``--prefill-engine-num-gpu``/``--decode-engine-num-gpu`` = the TP,
  ``--max-gpu-budget`` (the key, else ``plan run``'s default, the budget the replica floor was
  checked against), ``--metrics-addr 0.0.0.0`` (Prometheus scrapes ``/metrics`` on the
  ``metrics`` container port, ``--metrics-port``, default 9085), then the translated
  ``config.planner`` keys (:mod:`dynamo_plan.deploy.planner_args`: ``noOperation: true`` →
  ``--connector none`` without ``--dgd``, ``adjustmentInterval`` → ``--interval``, …; keys
  ``plan run`` cannot use are dropped and listed in :attr:`Rendered.warnings`).
  Prometheus: ``prometheusEndpoint`` → ``--prometheus-url``, else the template's
  ``PROMETHEUS_ENDPOINT`` env var (Dynamo's in-cluster default URL).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dynamo_plan.adapters.profile_files import (
    PROFILE_JSON,
    ProfileMeta,
    parse_profile_meta,
    profile_configmap_data,
    same_model,
)
from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.sla import EngineGpus, Limits, apply_limits
from dynamo_plan.deploy.dgdr import validate_file
from dynamo_plan.deploy.planner_args import flag_value, planner_flags
from dynamo_plan.errors import InputError
from dynamo_plan.formats.schema_messages import error_summary
from dynamo_plan.live.config import RunSettings
from dynamo_plan.resources import shipped_file

__all__ = [
    "LABEL_NAME",
    "LABEL_NAMESPACE",
    "PROFILE_CONFIGMAP",
    "PROFILE_MOUNT",
    "Rendered",
    "check_profile_matches",
    "dump_manifest",
    "load_dgdr",
    "load_template",
    "profile_configmap_data",
    "render",
    "set_flag",
]

LABEL_NAME = "dgdr.nvidia.com/name"
LABEL_NAMESPACE = "dgdr.nvidia.com/namespace"
PROFILE_CONFIGMAP = "planner-profile-data"
PROFILE_MOUNT = "/data/profile"
ROLES = ("prefill", "decode")

# the flag each backend reads the tensor-parallel size from (mocker: none, it uses no GPU)
TP_FLAG = {"vllm": "--tensor-parallel-size", "sglang": "--tp", "trtllm": "--tensor-parallel-size"}
MODEL_FLAGS = ("--model", "--model-path", "--served-model-name")
METRICS_ADDR = "0.0.0.0"  # all interfaces: the PodMonitor / Prometheus scrapes the pod's IP
METRICS_PORT_NAME = "metrics"
#: ``plan run`` flags the render sets itself → where their value comes from (planner keys that
#: map to one of them are dropped with a warning).
RESERVED_FLAGS = {
    "--profile": f"the {PROFILE_CONFIGMAP} ConfigMap mounted at {PROFILE_MOUNT}",
    "--model": "spec.model",
    "--namespace": "the services' dynamoNamespace (the DGD name)",
    "--dgd": "the DGD name",
    "--kube-namespace": "the pod's namespace (in-cluster config)",
    "--kubeconfig": "the pod's service account (in-cluster config)",
    "--context": "the pod's service account (in-cluster config)",
    "--state": "the connector (a DGD's planner does not use the virtual connector)",
    "--etcd": "the connector (a DGD's planner does not use the virtual connector)",
    "--virtual-timeout": "the connector (a DGD's planner does not use the virtual connector)",
    "--virtual-wait": "the connector (a DGD's planner does not use the virtual connector)",
    **{f"--{k}": f"config.sla.{k}" for k in ("ttft", "itl", "isl", "osl")},
}


@dataclass(frozen=True)
class Rendered:
    """The manifest objects (apply order) and what was chosen, for the one-line summary."""

    objects: list[dict[str, Any]]
    name: str
    namespace: str | None
    template: str
    tp: dict[str, int]
    replicas: dict[str, int]
    planner: bool
    warnings: tuple[str, ...] = ()


def load_dgdr(path: Path) -> dict[str, Any]:
    """The one DGDR in ``path``, validated; InputError ``file:line: field.path: message``."""
    report = validate_file(path)
    if report.errors:
        first = report.errors[0]
        where = str(path) if first.line is None else f"{path}:{first.line}"
        field = f" {first.path}:" if first.path else ""
        raise InputError(error_summary(f"{where}:{field} {first.message}", len(report.errors)))
    if report.documents != 1:
        raise InputError(f"{path}: expected one DGDR document, found {report.documents}")
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    doc: dict[str, Any] = docs[0]
    return doc


def load_template(relative: str) -> list[dict[str, Any]]:
    """The non-empty YAML documents of the shipped ``templates/<relative>``."""
    path = shipped_file("templates", relative)
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def set_flag(args: list[str], flag: str, value: str) -> None:
    """Set ``flag``'s value in an argument list (every occurrence), appending it when absent."""
    found = False
    for i, arg in enumerate(args[:-1]):
        if arg == flag:
            args[i + 1] = value
            found = True
    if not found:
        args += [flag, value]


def _tp(meta: ProfileMeta, config: dict[str, Any], role: str, where: tuple[str, str]) -> int:
    """TP of ``role``: profile.json's ``parallelism.<role>.tp``, else the planner hint, else 1.

    InputError naming both files (``where``: ``profile FILE``, ``the DGDR FILE``) when the
    recorded TP disagrees with the DGDR's ``planner.<role>EngineNumGpu`` or lies outside its
    ``hardware.{min,max}NumGpusPerEngine``."""
    planner: dict[str, Any] = config.get("planner") or {}
    hint_key = f"{role}EngineNumGpu"
    hint = planner.get(hint_key)
    tp = meta.tp.get(role)
    if tp is None:
        return int(hint) if hint is not None else 1
    profile_file, dgdr_file = where
    if hint is not None and int(hint) != tp:
        raise InputError(
            f"{profile_file} was measured at {role} TP {tp}, {dgdr_file} asks for {role} TP "
            f"{hint} (profilingConfig.config.planner.{hint_key}); remove the key or use a "
            "matching profile"
        )
    hardware: dict[str, Any] = config.get("hardware") or {}
    lo, hi = hardware.get("minNumGpusPerEngine"), hardware.get("maxNumGpusPerEngine")
    gpus = meta.gpus_per_engine.get(role, tp)
    if (lo is not None and gpus < int(lo)) or (hi is not None and gpus > int(hi)):
        allowed = f"{lo if lo is not None else 1}..{hi if hi is not None else 'any'}"
        raise InputError(
            f"{profile_file} was measured at {role} TP {tp} ({gpus} GPUs per engine), "
            f"{dgdr_file} allows {allowed} GPUs per engine "
            "(profilingConfig.config.hardware.minNumGpusPerEngine/maxNumGpusPerEngine)"
        )
    return tp


def check_profile_matches(dgdr: dict[str, Any], meta: ProfileMeta, where: tuple[str, str]) -> None:
    """InputError naming both values and both files (``where``: ``profile FILE``, ``the DGDR
    FILE``) when the profile's ``profile.json`` records another model than the DGDR's
    ``spec.model`` and ``sweep.aicHfId`` (compared with :func:`same_model`: ignoring case, and
    an HF id equals its catalogue short name) or another backend than ``spec.backend``. A value
    the profile does not record is not checked."""
    spec = dgdr["spec"]
    config = (spec.get("profilingConfig") or {}).get("config") or {}
    hf_id = (config.get("sweep") or {}).get("aicHfId")
    models = [str(spec["model"])] + ([str(hf_id)] if hf_id else [])
    backend = str(spec["backend"])
    wrong_model = meta.model is not None and not any(same_model(meta.model, m) for m in models)
    wrong_backend = meta.backend is not None and meta.backend.lower() != backend.lower()
    if wrong_model or wrong_backend:
        profile_file, dgdr_file = where
        raise InputError(
            f"{profile_file} is for model {meta.describe()}, {dgdr_file} asks for "
            f"{models[0]} ({backend}{f', sweep.aicHfId {hf_id}' if hf_id else ''}); use a "
            "profile made for the DGDR's model and backend"
        )


def _metadata(obj: dict[str, Any], namespace: str | None, labels: dict[str, str]) -> None:
    meta = obj.setdefault("metadata", {})
    if namespace is not None:
        meta["namespace"] = namespace
    meta["labels"] = {**meta.get("labels", {}), **labels}


def _workers(services: dict[str, Any], template: str) -> dict[str, tuple[str, dict[str, Any]]]:
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for name, svc in services.items():
        if svc.get("componentType") == "worker" and svc.get("subComponentType") in ROLES:
            found[svc["subComponentType"]] = (name, svc)
    missing = [r for r in ROLES if r not in found]
    if missing:
        raise InputError(f"template {template}: no worker with subComponentType {missing[0]}")
    return found


def _planner_args(
    sla: dict[str, Any],
    planner: dict[str, Any],
    tp: dict[str, int],
    budget: int,
    identity: dict[str, str],
    where: str,
) -> tuple[list[str], list[str]]:
    """(``plan run`` arguments, warnings) of the Planner container (module docstring)."""
    keys = {
        k: v for k, v in planner.items() if k not in ("prefillEngineNumGpu", "decodeEngineNumGpu")
    }
    keys.pop("maxGpuBudget", None)
    translated = planner_flags(keys, f"{where}.planner", RESERVED_FLAGS)
    args = ["--profile", PROFILE_MOUNT, "--model", identity["model"]]
    args += ["--namespace", identity["namespace"], "--connector", translated.connector]
    if translated.connector == "kubernetes":
        args += ["--dgd", identity["dgd"]]
    for key in ("ttft", "itl", "isl", "osl"):
        args += [f"--{key}", flag_value(f"{where}.sla.{key}", sla[key])]
    args += ["--prefill-engine-num-gpu", str(tp["prefill"])]
    args += ["--decode-engine-num-gpu", str(tp["decode"]), "--max-gpu-budget", str(budget)]
    if "--metrics-addr" not in translated.flags:
        args += ["--metrics-addr", METRICS_ADDR]
    return args + translated.args(), translated.warnings


def _metrics_port(container: dict[str, Any], args: list[str]) -> None:
    """Name the ``/metrics`` port on the container (the ``--metrics-port`` in ``args``, else
    ``plan run``'s default); none when it is 0 (disabled)."""
    port = int(args[args.index("--metrics-port") + 1]) if "--metrics-port" in args else None
    port = RunSettings.metrics_port if port is None else port
    ports = [p for p in container.get("ports", []) if p.get("name") != METRICS_PORT_NAME]
    if port:
        ports.append({"name": METRICS_PORT_NAME, "containerPort": port, "protocol": "TCP"})
    if ports:
        container["ports"] = ports
    else:
        container.pop("ports", None)


def render(
    dgdr: dict[str, Any],
    profile: PerformanceProfile,
    *,
    planner: bool = True,
    mocker: bool = False,
    dgdr_path: Path | None = None,
    profile_path: Path | None = None,
) -> Rendered:
    """The manifest for a validated DGDR and its profile (module docstring lists every edit).

    InputError when the profile's ``profile.json`` records another model, backend or TP than the
    DGDR asks for (:func:`check_profile_matches`); ``dgdr_path`` and ``profile_path`` (the
    profile directory) name the files in that message."""
    profile_file = profile_path / PROFILE_JSON if profile_path is not None else PROFILE_JSON
    files = (f"profile {profile_file}", "the DGDR" + (f" {dgdr_path}" if dgdr_path else ""))
    profile_meta = parse_profile_meta(profile.meta, profile_file)
    check_profile_matches(dgdr, profile_meta, files)
    spec = dgdr["spec"]
    meta = dgdr.get("metadata", {})
    config = spec.get("profilingConfig", {}).get("config", {})
    sla: dict[str, Any] = config["sla"]
    planner_cfg: dict[str, Any] = dict(config.get("planner") or {})
    overrides: dict[str, Any] = spec.get("deploymentOverrides") or {}
    use_mocker = mocker or bool(spec.get("deployMocker", False))
    backend = "mocker" if use_mocker else str(spec["backend"])
    template = f"{backend}/disagg.yaml"

    dgd = load_template(template)[0]
    name = str(overrides.get("name") or meta["name"])
    namespace = overrides.get("namespace") or meta.get("namespace")
    labels = {str(k): str(v) for k, v in (overrides.get("labels") or {}).items()}
    labels |= {
        LABEL_NAME: str(meta["name"]),
        LABEL_NAMESPACE: str(meta.get("namespace") or "default"),
    }

    tp = {role: _tp(profile_meta, config, role, files) for role in ROLES}
    engines = EngineGpus(tp["prefill"], tp["decode"])
    min_endpoint = int(planner_cfg.get("plannerMinEndpoint", 1))
    # the budget the Planner will run with (plan run's default when the key is absent): a floor
    # over it would make the Planner exit at start (InfeasibleSLAError); no Planner, no default
    default_budget = RunSettings.max_gpu_budget if planner else -1
    budget = int(planner_cfg.get("maxGpuBudget", default_budget))
    limits = Limits(min_endpoint, None if budget == -1 else budget)
    p_replicas, d_replicas, _ = apply_limits(0, 0, engines, limits)
    replicas = {"prefill": p_replicas, "decode": d_replicas}

    dgd["metadata"] = {"name": name}
    _metadata(dgd, namespace, labels)
    if overrides.get("annotations"):
        dgd["metadata"]["annotations"] = {
            str(k): str(v) for k, v in overrides["annotations"].items()
        }
    services: dict[str, Any] = dgd["spec"]["services"]
    workers = _workers(services, template)
    workers_image = overrides.get("workersImage")
    for svc in services.values():
        svc["dynamoNamespace"] = name
        container = svc.setdefault("extraPodSpec", {}).setdefault("mainContainer", {})
        if workers_image and svc.get("componentType") in ("frontend", "worker"):
            container["image"] = str(workers_image)
    for role, (_, svc) in workers.items():
        svc["replicas"] = replicas[role]
        args: list[str] = svc["extraPodSpec"]["mainContainer"].setdefault("args", [])
        for flag in MODEL_FLAGS:
            if flag in args:
                set_flag(args, flag, str(spec["model"]))
        if backend in TP_FLAG:
            set_flag(args, TP_FLAG[backend], str(tp[role]))
            svc.setdefault("resources", {}).setdefault("limits", {})["gpu"] = str(tp[role])

    planners = [n for n, s in services.items() if s.get("componentType") == "planner"]
    objects: list[dict[str, Any]] = []
    warnings: list[str] = []
    if planner:
        if not planners:
            raise InputError(f"template {template}: no service with componentType planner")
        where = "spec.profilingConfig.config"
        container = services[planners[0]]["extraPodSpec"]["mainContainer"]
        identity = {"model": str(spec["model"]), "namespace": name, "dgd": name}
        container["args"], warnings = _planner_args(sla, planner_cfg, tp, budget, identity, where)
        _metrics_port(container, container["args"])
        for obj in load_template("rbac/planner.yaml"):
            _metadata(obj, namespace, labels)
            objects.append(obj)
        configmap: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": PROFILE_CONFIGMAP},
            "data": profile_configmap_data(profile),
        }
        _metadata(configmap, namespace, labels)
        objects.append(configmap)
    else:
        for n in planners:
            del services[n]
    objects.append(dgd)
    return Rendered(
        objects=copy.deepcopy(objects),
        name=name,
        namespace=namespace,
        template=template,
        tp=tp,
        replicas=replicas,
        planner=planner,
        warnings=tuple(warnings),
    )


def dump_manifest(objects: list[dict[str, Any]]) -> str:
    """Multi-document YAML (``---`` between objects), keys in the order built."""
    return yaml.safe_dump_all(objects, sort_keys=False, explicit_start=True, width=100)
