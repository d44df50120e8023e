"""DGDR + performance profile → DynamoGraphDeployment manifest (``generate-dgd``).

The shipped template of the backend and the target Dynamo release,
``templates/<backend>/disagg-<api>-<release>.yaml`` (a real DynamoGraphDeployment of that
release's shape, after its own examples: :mod:`dynamo_plan.deploy.dgd_shapes`), and
``templates/rbac/planner.yaml`` are loaded with ``yaml.safe_load`` and edited as data, never by
string substitution. The output is a list of Kubernetes objects, in apply order:

ServiceAccount, Role, RoleBinding ``<dgd>-planner`` (the Planner's least-privilege identity; the
Role may scale DynamoGraphDeploymentScalingAdapters on releases that have them), ConfigMap
``<dgd>-profile`` (``prefill_raw_data.json``, ``decode_raw_data.json``, ``profile.json``), then
the DynamoGraphDeployment. ``planner=False`` leaves out the Planner service and the four objects
that only it uses. Names are per DGD and every object carries the labels of
:mod:`dynamo_plan.deploy.ownership` (``delete`` removes only objects carrying them).

Edits made to the template:

* name / namespace: ``deploymentOverrides.name|namespace``, else the DGDR's own; labels
  ``dgdr.nvidia.com/name`` and ``dgdr.nvidia.com/namespace`` (``default`` when the DGDR has none)
  on every object, on top of ``deploymentOverrides.labels``, and the ownership labels
  (``app.kubernetes.io/managed-by: dynamo-plan``, ``dynamo-plan/dgd: <dgd>``);
  ``deploymentOverrides.annotations`` on the DGD; 0.6/0.9: ``dynamoNamespace`` of every service
  = the DGD name (1.x has no such field: the operator names the Dynamo namespace).
* model: the DGDR's ``spec.model`` replaces the value of ``--model``/``--model-path``/
  ``--served-model-name``/``--model-name`` (the mocker's) in the worker arguments.
* TP per role: ``profile.json``'s ``parallelism.<role>.tp`` (as ``profile --offline`` writes it),
  else ``planner.prefillEngineNumGpu``/``decodeEngineNumGpu``, else 1; a disagreement between the
  two, or a recorded TP outside ``hardware.{min,max}NumGpusPerEngine``, is an InputError. So is a
  ``profile.json`` model or backend other than the DGDR's (:func:`check_profile_matches`). It sets the
  backend's TP flag and the GPUs per replica (GPU templates; v1alpha1 ``resources.limits.gpu``,
  v1beta1 the main container's ``nvidia.com/gpu`` limit).
* replicas: the DGDR carries no expected request rate, so the initial size is the planner floor,
  ``planner.plannerMinEndpoint`` (default 1) per role, checked against ``planner.maxGpuBudget``
  (absent: ``plan run``'s default, 8, unless ``planner=False``) with
  :func:`dynamo_plan.core.sla.apply_limits` (InfeasibleSLAError when the floor does not fit).
  The Planner scales from there.
* images: ``deploymentOverrides.workersImage`` on the frontend and the workers (not the Planner).
  The Planner runs this project's image (:func:`planner_image`: ``--planner-image``, else the
  DGDR's planner key ``plannerImage``, else ``dynamo-plan:<package version>``, never ``latest``).
* Planner: the container runs ``dynamo-plan plan run`` with ``--profile /data/profile`` (the
  ConfigMap mount), ``--model <spec.model>`` (the served model name: the value the workers get
  as ``--model``/``--served-model-name``, which the frontend labels its metrics with),
  0.6/0.9: ``--namespace <the services' dynamoNamespace>`` (the ``dynamo_namespace`` label);
  1.x: no ``--namespace``, ``plan run`` reads the operator's ``DYN_NAMESPACE``,
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

from dynamo_plan import __version__
from dynamo_plan.adapters.profile_files import (
    PROFILE_JSON,
    ProfileMeta,
    parse_profile_meta,
    profile_configmap_data,
    same_model,
)
from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.releases import NEWEST_RELEASE, DynamoRelease
from dynamo_plan.core.sla import EngineGpus, Limits, apply_limits
from dynamo_plan.deploy import dgd_shapes
from dynamo_plan.deploy.dgdr_model import DgdrSpec, interpret, read_dgdr_file
from dynamo_plan.deploy.ownership import (
    ownership_labels,
    planner_rbac_name,
    profile_configmap_name,
)
from dynamo_plan.deploy.planner_args import flag_value, planner_flags
from dynamo_plan.errors import InputError
from dynamo_plan.live.config import RunSettings
from dynamo_plan.resources import shipped_file

__all__ = [
    "LABEL_NAME",
    "LABEL_NAMESPACE",
    "PLANNER_IMAGE_KEY",
    "PROFILE_MOUNT",
    "Rendered",
    "check_profile_matches",
    "default_planner_image",
    "dump_manifest",
    "load_dgdr",
    "load_template",
    "planner_image",
    "profile_configmap_data",
    "profile_configmap_name",
    "render",
    "set_flag",
]

LABEL_NAME = "dgdr.nvidia.com/name"
LABEL_NAMESPACE = "dgdr.nvidia.com/namespace"
PROFILE_MOUNT = "/data/profile"
PROFILE_VOLUME = "planner-profile-data"  # the pod-local volume name (the ConfigMap is per DGD)
PLANNER_COMMAND = ("dynamo-plan", "plan", "run")
#: the planner key (v1alpha1 ``spec.profilingConfig.config.planner``, v1beta1
#: ``spec.features.planner``) that names the Planner's image
PLANNER_IMAGE_KEY = "plannerImage"
ROLES = ("prefill", "decode")

# the flag each backend reads the tensor-parallel size from (mocker: none, it uses no GPU)
TP_FLAG = {"vllm": "--tensor-parallel-size", "sglang": "--tp", "trtllm": "--tensor-parallel-size"}
MODEL_FLAGS = ("--model", "--model-path", "--served-model-name", "--model-name")
METRICS_ADDR = "0.0.0.0"  # all interfaces: the PodMonitor / Prometheus scrapes the pod's IP
METRICS_PORT_NAME = "metrics"
#: ``plan run`` flags the render sets itself → where their value comes from (planner keys that
#: map to one of them are dropped with a warning).
RESERVED_FLAGS = {
    "--profile": f"the <dgd>-profile ConfigMap mounted at {PROFILE_MOUNT}",
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


def load_dgdr(path: Path) -> DgdrSpec:
    """The one DGDR in ``path``, validated and read into the DGDR model (any spelling:
    :mod:`dynamo_plan.deploy.dgdr_model`); InputError ``file:line: field.path: message``."""
    return read_dgdr_file(path)[0]


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


def _tp(meta: ProfileMeta, dgdr: DgdrSpec, role: str, where: tuple[str, str]) -> int:
    """TP of ``role``: profile.json's ``parallelism.<role>.tp``, else the DGDR's TP hint, else 1.

    InputError naming both files (``where``: ``profile FILE``, ``the DGDR FILE``) when the
    recorded TP disagrees with the DGDR's hint (v1alpha1 ``planner.<role>EngineNumGpu``) or lies
    outside its GPUs per engine (v1alpha1 ``hardware.{min,max}NumGpusPerEngine``)."""
    hint = dgdr.tp_hints.get(role)
    tp = meta.tp.get(role)
    if tp is None:
        return hint if hint is not None else 1
    profile_file, dgdr_file = where
    if hint is not None and hint != tp:
        raise InputError(
            f"{profile_file} was measured at {role} TP {tp}, {dgdr_file} asks for {role} TP "
            f"{hint} ({dgdr.path_of(f'tp_hints.{role}')}); remove the key or use a "
            "matching profile"
        )
    lo, hi = dgdr.min_gpus_per_engine, dgdr.max_gpus_per_engine
    gpus = meta.gpus_per_engine.get(role, tp)
    if (lo is not None and gpus < lo) or (hi is not None and gpus > hi):
        allowed = f"{lo if lo is not None else 1}..{hi if hi is not None else 'any'}"
        raise InputError(
            f"{profile_file} was measured at {role} TP {tp} ({gpus} GPUs per engine), "
            f"{dgdr_file} allows {allowed} GPUs per engine "
            f"({dgdr.path_of('min_gpus_per_engine')}/{dgdr.path_of('max_gpus_per_engine')})"
        )
    return tp


def check_profile_matches(dgdr: DgdrSpec, meta: ProfileMeta, where: tuple[str, str]) -> None:
    """InputError naming both values and both files (``where``: ``profile FILE``, ``the DGDR
    FILE``) when the profile's ``profile.json`` records another model than the DGDR's ``model``
    and ``aic_hf_id`` (compared with :func:`same_model`: ignoring case, and an HF id equals its
    catalogue short name) or another backend than its ``backend`` (``auto`` accepts any). A
    value the profile does not record is not checked."""
    hf_id = dgdr.aic_hf_id
    models = [dgdr.model] + ([hf_id] if hf_id else [])
    backend = dgdr.backend
    wrong_model = meta.model is not None and not any(same_model(meta.model, m) for m in models)
    wrong_backend = (
        backend != "auto" and meta.backend is not None and meta.backend.lower() != backend.lower()
    )
    if wrong_model or wrong_backend:
        profile_file, dgdr_file = where
        hint = f", {dgdr.path_of('aic_hf_id')} {hf_id}" if hf_id else ""
        raise InputError(
            f"{profile_file} is for model {meta.describe()}, {dgdr_file} asks for "
            f"{models[0]} ({backend}{hint}); use a profile made for the DGDR's model and backend"
        )


def _metadata(obj: dict[str, Any], namespace: str | None, labels: dict[str, str]) -> None:
    meta = obj.setdefault("metadata", {})
    if namespace is not None:
        meta["namespace"] = namespace
    meta["labels"] = {**meta.get("labels", {}), **labels}


def default_planner_image() -> str:
    """``dynamo-plan:<package version>``: the image the README's build instructions tag (never
    ``latest``)."""
    return f"dynamo-plan:{__version__}"


def _dgdr_planner_section(dgdr: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The DGDR's planner overrides and their path: v1alpha1
    ``spec.profilingConfig.config.planner``, v1beta1 ``spec.features.planner``."""
    spec = dgdr.get("spec") or {}
    if str(dgdr.get("apiVersion", "")).endswith("/v1beta1"):
        section = (spec.get("features") or {}).get("planner")
        return (section if isinstance(section, dict) else {}), "spec.features.planner"
    config = (spec.get("profilingConfig") or {}).get("config") or {}
    section = config.get("planner")
    return (section if isinstance(section, dict) else {}), "spec.profilingConfig.config.planner"


def planner_image(dgdr: DgdrSpec | dict[str, Any] | None, flag: str | None = None) -> str:
    """The image of the Planner and of the profiling Jobs: ``flag`` (``--planner-image``) when
    given, else the DGDR's planner key :data:`PLANNER_IMAGE_KEY` (v1alpha1
    ``spec.profilingConfig.config.planner.plannerImage``, v1beta1
    ``spec.features.planner.plannerImage`` or ``planner_image``), else
    :func:`default_planner_image`. InputError when the key is not a non-empty string."""
    if flag:
        return flag
    if dgdr is None:
        return default_planner_image()
    if isinstance(dgdr, DgdrSpec):
        section, where = dict(dgdr.planner), dgdr.path_of("planner")
    else:
        section, where = _dgdr_planner_section(dgdr)
    value = section.get(PLANNER_IMAGE_KEY)
    if value is None:
        return default_planner_image()
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{where}.{PLANNER_IMAGE_KEY}: expected an image reference (a string)")
    return value.strip()


def _planner_args(
    sla: dict[str, Any],
    planner: dict[str, Any],
    tp: dict[str, int],
    budget: int,
    identity: dict[str, str | None],
    where: str,
) -> tuple[list[str], list[str]]:
    """(``plan run`` arguments, warnings) of the Planner container (module docstring).

    ``identity["namespace"]`` None: no ``--namespace`` (Dynamo 1.x: the operator's
    ``DYN_NAMESPACE``, which ``plan run`` falls back to)."""
    skip = ("prefillEngineNumGpu", "decodeEngineNumGpu", "maxGpuBudget", PLANNER_IMAGE_KEY)
    keys = {k: v for k, v in planner.items() if k not in skip}
    reserved = dict(RESERVED_FLAGS)
    if identity["namespace"] is None:
        reserved["--namespace"] = "the operator's DYN_NAMESPACE (<k8s namespace>-<dgd>)"
    translated = planner_flags(keys, f"{where}.planner", reserved)
    args = ["--profile", PROFILE_MOUNT, "--model", str(identity["model"])]
    if identity["namespace"] is not None:
        args += ["--namespace", identity["namespace"]]
    args += ["--connector", translated.connector]
    if translated.connector == "kubernetes":
        args += ["--dgd", str(identity["dgd"])]
    for key in ("ttft", "itl", "isl", "osl"):
        args += [f"--{key}", flag_value(f"{where}.sla.{key}", sla[key])]
    args += ["--prefill-engine-num-gpu", str(tp["prefill"])]
    args += ["--decode-engine-num-gpu", str(tp["decode"]), "--max-gpu-budget", str(budget)]
    if "--metrics-addr" not in translated.flags:
        args += ["--metrics-addr", METRICS_ADDR]
    return args + translated.args(), translated.warnings


def _planner_rbac(name: str, release: DynamoRelease) -> list[dict[str, Any]]:
    """``templates/rbac/planner.yaml``: ServiceAccount, Role and RoleBinding all named ``name``
    (the binding ties the two); without the scaling-adapter rules where ``release`` has no
    DynamoGraphDeploymentScalingAdapter (0.6)."""
    objects = load_template("rbac/planner.yaml")
    for obj in objects:
        obj["metadata"]["name"] = name
        if obj["kind"] == "Role" and not release.has_scaling_adapters:
            obj["rules"] = [
                rule
                for rule in obj["rules"]
                if not any(
                    r.startswith("dynamographdeploymentscalingadapters") for r in rule["resources"]
                )
            ]
        if obj["kind"] == "RoleBinding":
            obj["roleRef"]["name"] = name
            for subject in obj["subjects"]:
                subject["name"] = name
    return objects


def _profile_mount(comp: dgd_shapes.Component, configmap: str) -> None:
    """The profile ConfigMap as volume :data:`PROFILE_VOLUME` of the Planner's pod, mounted
    read-only at :data:`PROFILE_MOUNT` (kept when the template has them, added when a base DGD
    from ``configMapRef`` does not)."""
    volumes = [v for v in comp.pod.get("volumes") or [] if v.get("name") != PROFILE_VOLUME]
    comp.pod["volumes"] = [*volumes, {"name": PROFILE_VOLUME, "configMap": {"name": configmap}}]
    mounts = [
        m
        for m in comp.container.get("volumeMounts") or []
        if m.get("name") != PROFILE_VOLUME and m.get("mountPath") != PROFILE_MOUNT
    ]
    mount = {"name": PROFILE_VOLUME, "mountPath": PROFILE_MOUNT, "readOnly": True}
    comp.container["volumeMounts"] = [*mounts, mount]


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
    dgdr: DgdrSpec | dict[str, Any],
    profile: PerformanceProfile,
    *,
    planner: bool = True,
    mocker: bool = False,
    dgdr_path: Path | None = None,
    profile_path: Path | None = None,
    release: DynamoRelease = NEWEST_RELEASE,
    planner_image_flag: str | None = None,
    base_dgd: dict[str, Any] | None = None,
) -> Rendered:
    """The manifest for a validated DGDR and its profile (module docstring lists every edit),
    in the shape and with the worker arguments of Dynamo ``release``; the Planner runs
    :func:`planner_image` (``planner_image_flag`` = ``--planner-image``).

    InputError when the profile's ``profile.json`` records another model, backend or TP than the
    DGDR asks for (:func:`check_profile_matches`); ``dgdr_path`` and ``profile_path`` (the
    profile directory) name the files in that message."""
    profile_file = profile_path / PROFILE_JSON if profile_path is not None else PROFILE_JSON
    files = (f"profile {profile_file}", "the DGDR" + (f" {dgdr_path}" if dgdr_path else ""))
    profile_meta = parse_profile_meta(profile.meta, profile_file)
    request = dgdr if isinstance(dgdr, DgdrSpec) else interpret(dgdr)[0]
    check_profile_matches(request, profile_meta, files)
    sla: dict[str, Any] = dict(zip(("isl", "osl", "ttft", "itl"), request.sla(), strict=True))
    planner_cfg: dict[str, Any] = dict(request.planner)
    use_mocker = mocker or request.mocker
    backend = "mocker" if use_mocker else request.concrete_backend(profile_meta.backend)
    template = dgd_shapes.template_path(backend, release)

    # the DGDR's configMapRef DGD (read from the cluster by the caller) replaces the template
    dgd = copy.deepcopy(base_dgd) if base_dgd is not None else load_template(template)[0]
    name = str(request.dgd_name or request.name)
    namespace = request.dgd_namespace or request.namespace
    labels = dict(request.dgd_labels)
    labels |= {LABEL_NAME: str(request.name), LABEL_NAMESPACE: request.namespace or "default"}

    tp = {role: _tp(profile_meta, request, role, files) for role in ROLES}
    engines = EngineGpus(tp["prefill"], tp["decode"])
    min_endpoint = int(planner_cfg.get("plannerMinEndpoint", 1))
    # the budget the Planner will run with (plan run's default when the key is absent): a floor
    # over it would make the Planner exit at start (InfeasibleSLAError); no Planner, no default
    default_budget = RunSettings.max_gpu_budget if planner else -1
    budget = int(planner_cfg.get("maxGpuBudget", default_budget))
    limits = Limits(min_endpoint, None if budget == -1 else budget)
    p_replicas, d_replicas, _ = apply_limits(0, 0, engines, limits)
    replicas = {"prefill": p_replicas, "decode": d_replicas}

    labels |= ownership_labels(name)
    dgd["metadata"] = {"name": name}
    _metadata(dgd, namespace, labels)
    if request.dgd_annotations:
        dgd["metadata"]["annotations"] = dict(request.dgd_annotations)
    v1beta1 = dgd_shapes.is_v1beta1(dgd)
    workers = dgd_shapes.workers(dgd, template)
    workers_image = request.workers_image
    for comp in dgd_shapes.components(dgd):
        if not v1beta1:  # 0.6/0.9: the Dynamo namespace is the DGD name; 1.x: the operator's
            comp.body["dynamoNamespace"] = name
        if workers_image and comp.role != "planner":
            comp.container["image"] = str(workers_image)
    for role, comp in workers.items():
        comp.body["replicas"] = replicas[role]
        args: list[str] = comp.container.setdefault("args", [])
        for flag in MODEL_FLAGS:
            if flag in args:
                set_flag(args, flag, request.model)
        if backend in TP_FLAG:
            set_flag(args, TP_FLAG[backend], str(tp[role]))
            dgd_shapes.set_gpus(dgd, comp, tp[role])

    planners = dgd_shapes.planners(dgd)
    objects: list[dict[str, Any]] = []
    warnings: list[str] = []
    if planner:
        if not planners:
            raise InputError(f"template {template}: no planner component")
        where = "spec.profilingConfig.config"
        comp = planners[0]
        identity: dict[str, str | None] = {
            "model": request.model,
            "namespace": None if v1beta1 else name,
            "dgd": name,
        }
        args, warnings = _planner_args(sla, planner_cfg, tp, budget, identity, where)
        comp.container["command"] = list(PLANNER_COMMAND)
        comp.container["args"] = args
        comp.container["image"] = planner_image(request, planner_image_flag)
        _metrics_port(comp.container, args)
        identity_name, configmap_name = planner_rbac_name(name), profile_configmap_name(name)
        comp.pod["serviceAccountName"] = identity_name
        _profile_mount(comp, configmap_name)
        objects += _planner_rbac(identity_name, release)
        for obj in objects:
            _metadata(obj, namespace, labels)
        configmap: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": configmap_name},
            "data": profile_configmap_data(profile),
        }
        _metadata(configmap, namespace, labels)
        objects.append(configmap)
    else:
        dgd_shapes.keep_components(
            dgd, {c.name for c in dgd_shapes.components(dgd) if c.role != "planner"}
        )
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
