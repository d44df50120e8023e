"""Manifests of online profiling in a cluster: temporary DGDs, profiling Jobs, profiler RBAC.

Every object is built by loading a shipped YAML template and editing the data (never string
substitution):

* temporary DynamoGraphDeployment (the backend's template of the target release,
  :func:`dynamo_plan.deploy.dgd_shapes.template_path`; v1alpha1 of 0.9 unless a release is given:
  every supported release serves v1alpha1): the Frontend and the worker of ONE role, one
  replica, TP = the candidate (the backend's TP flag and the GPUs per replica), the DGDR's model,
  ``workersImage``, tolerations and (after GPU discovery) a ``nvidia.com/gpu.product``
  nodeSelector. The worker runs aggregated (the disaggregation flags are removed) so that it
  serves requests alone, as Dynamo's profiler does. The Planner and the other worker are removed.
* profiling Job (``templates/profiling-job.yaml``): ``dynamo-plan profile --online --endpoint
  <frontend URL> --model M --tp N --role R --isl --osl --ttft --itl --out DIR
  --result-configmap NAME`` in this project's image
  (:func:`dynamo_plan.deploy.render.planner_image`: ``--planner-image``, else the DGDR's planner
  key ``plannerImage``, else ``dynamo-plan:<package version>``); the DGDR's ``profilerImage`` is
  a Dynamo runtime image without this project, so it is not used here (the engine under test
  runs in the workers' image); ``profilingConfig.resources`` (limits/requests) and
  ``tolerations``; ``/results`` is an emptyDir, or ``profilingConfig.outputPVC``.
* ``templates/rbac/profiler.yaml``: the Job's ServiceAccount, allowed to write ConfigMaps.

Every object carries :data:`RUN_LABEL` = the run id, so a run's leftovers can be listed.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from dynamo_plan.adapters.kubernetes import GPU_PRODUCT_LABEL
from dynamo_plan.core.releases import DynamoRelease
from dynamo_plan.deploy import dgd_shapes
from dynamo_plan.deploy.render import MODEL_FLAGS, TP_FLAG, load_template, planner_image, set_flag
from dynamo_plan.errors import InputError

__all__ = [
    "JOB_TEMPLATE",
    "PROFILER_RBAC",
    "RESULTS_MOUNT",
    "ROLE_LABEL",
    "RUN_LABEL",
    "TP_LABEL",
    "Names",
    "frontend_url",
    "profiler_rbac",
    "render_job",
    "render_temp_dgd",
    "run_names",
]

RUN_LABEL = "dynamo-plan/profiling-run"
ROLE_LABEL = "dynamo-plan/role"
TP_LABEL = "dynamo-plan/tp"
JOB_TEMPLATE = "profiling-job.yaml"
PROFILER_RBAC = "rbac/profiler.yaml"
RESULTS_MOUNT = "/results"
# flags that make a worker one half of a disaggregated pair (value-less, or with one value)
_DISAGG_SWITCHES = ("--is-prefill-worker", "--is-decode-worker")
_DISAGG_OPTIONS = ("--disaggregation-mode", "--disaggregation-strategy", "--kv-transfer-config")
#: the temporary DGD's release when none is given: v1alpha1, served by 0.6, 0.9 and 1.5
TEMP_DGD_RELEASE = DynamoRelease.v0_9


@dataclass(frozen=True)
class Names:
    """Names of one measurement's objects (DNS-1123 labels, at most 63 characters)."""

    dgd: str
    job: str
    configmap: str


def _dns_label(text: str, limit: int) -> str:
    out = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return out[:limit].rstrip("-") or "dgdr"


def run_names(dgdr_name: str, run_id: str, tp: int, role: str) -> Names:
    """``dp-<dgdr>-<run>-<p|d><tp>`` for the DGD and the Job; ``…-result`` for the ConfigMap."""
    base = f"dp-{_dns_label(dgdr_name, 20)}-{run_id}-{role[0]}{tp}"
    return Names(dgd=base, job=base, configmap=f"{base}-result")


def _labels(obj: dict[str, Any], labels: dict[str, str]) -> None:
    meta = obj.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), **labels}


def _aggregated(args: list[str]) -> list[str]:
    """``args`` without the flags that make the worker half of a disaggregated pair."""
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in _DISAGG_OPTIONS:
            skip = True
            continue
        if arg not in _DISAGG_SWITCHES:
            out.append(arg)
    return out


def frontend_url(dgd: dict[str, Any]) -> str:
    """In-cluster URL of a DGD's frontend Service: ``http://<dgd>-frontend.<ns>.svc:<port>``.

    The Dynamo operator names the frontend Service ``<dgd name>-<service name, lower case>``;
    the port is the frontend's ``--http-port`` (default 8000).
    """
    meta = dgd["metadata"]
    front = dgd_shapes.frontend(copy.deepcopy(dgd))
    name, args = front.name, front.container.get("args") or []
    port = "8000"
    for i, arg in enumerate(args[:-1]):
        if arg == "--http-port":
            port = str(args[i + 1])
    return f"http://{meta['name']}-{name.lower()}.{meta['namespace']}.svc.cluster.local:{port}"


def render_temp_dgd(
    dgdr: dict[str, Any],
    names: Names,
    namespace: str,
    tp: int,
    role: str,
    labels: dict[str, str],
    gpu_product: str | None = None,
    *,
    release: DynamoRelease | None = None,
) -> dict[str, Any]:
    """A one-role DynamoGraphDeployment measuring ``role`` at TP ``tp`` (module doc), in the
    shape of ``release`` (default :data:`TEMP_DGD_RELEASE`)."""
    spec = dgdr["spec"]
    backend = str(spec["backend"])
    template = dgd_shapes.template_path(backend, release or TEMP_DGD_RELEASE)
    dgd = load_template(template)[0]
    dgd["metadata"] = {"name": names.dgd, "namespace": namespace}
    _labels(dgd, labels)
    keep = [c for c in dgd_shapes.components(dgd) if c.role == "frontend" or c.role == role]
    workers = [c for c in keep if c.role == role]
    if len(workers) != 1 or len(keep) != 2:
        raise InputError(f"template {template}: expected one frontend and one {role} worker")
    dgd_shapes.keep_components(dgd, {c.name for c in keep})
    overrides = spec.get("deploymentOverrides") or {}
    profiling = spec.get("profilingConfig") or {}
    tolerations = copy.deepcopy(profiling.get("tolerations") or [])
    v1beta1 = dgd_shapes.is_v1beta1(dgd)
    for comp in keep:
        if not v1beta1:
            comp.body["dynamoNamespace"] = names.dgd
        comp.body["replicas"] = 1
        if overrides.get("workersImage"):
            comp.container["image"] = str(overrides["workersImage"])
    worker = workers[0]
    pod, container = worker.pod, worker.container
    args = _aggregated(list(container.get("args") or []))
    for flag in MODEL_FLAGS:
        if flag in args:
            set_flag(args, flag, str(spec["model"]))
    if backend in TP_FLAG:
        set_flag(args, TP_FLAG[backend], str(tp))
    container["args"] = args
    dgd_shapes.set_gpus(dgd, worker, tp)
    if tolerations:
        pod["tolerations"] = tolerations
    if gpu_product:
        pod["nodeSelector"] = {GPU_PRODUCT_LABEL: gpu_product}
    return dgd


def render_job(
    dgdr: dict[str, Any],
    names: Names,
    namespace: str,
    endpoint: str,
    tp: int,
    role: str,
    labels: dict[str, str],
    deadline_s: int,
    gpu_product: str | None = None,
    *,
    image: str | None = None,
) -> dict[str, Any]:
    """The profiling Job of one measurement (module doc lists every edit); ``image`` is
    ``--planner-image`` (None: the DGDR's ``plannerImage``, else ``dynamo-plan:<version>``)."""
    spec = dgdr["spec"]
    profiling = spec.get("profilingConfig") or {}
    sla = (profiling.get("config") or {})["sla"]
    job = load_template(JOB_TEMPLATE)[0]
    job["metadata"] = {"name": names.job, "namespace": namespace}
    _labels(job, labels)
    job["spec"]["activeDeadlineSeconds"] = int(deadline_s)
    pod_template = job["spec"]["template"]
    _labels(pod_template, labels)
    pod = pod_template["spec"]
    container = pod["containers"][0]
    container["image"] = planner_image(dgdr, image)
    pvc = profiling.get("outputPVC")
    out = f"{RESULTS_MOUNT}/{names.job}" if pvc else RESULTS_MOUNT
    container["args"] = [
        *(container.get("args") or ["--online"]),
        "--endpoint", endpoint,
        "--model", str(spec["model"]),
        "--tp", str(tp),
        "--role", role,
        "--isl", str(sla["isl"]),
        "--osl", str(sla["osl"]),
        "--ttft", str(sla["ttft"]),
        "--itl", str(sla["itl"]),
        "--out", out,
        "--result-configmap", names.configmap,
    ]  # fmt: skip
    if RUN_LABEL in labels:  # the result ConfigMap carries the run label (clean-up sweep)
        container["args"] += ["--result-label", f"{RUN_LABEL}={labels[RUN_LABEL]}"]
    resources = profiling.get("resources") or {}
    picked = {k: copy.deepcopy(resources[k]) for k in ("limits", "requests") if resources.get(k)}
    if picked:
        container["resources"] = picked
    if profiling.get("tolerations"):
        pod["tolerations"] = copy.deepcopy(profiling["tolerations"])
    wants_gpu = any("nvidia.com/gpu" in (picked.get(k) or {}) for k in ("limits", "requests"))
    if gpu_product and wants_gpu:
        pod["nodeSelector"] = {GPU_PRODUCT_LABEL: gpu_product}
    if pvc:
        for volume in pod["volumes"]:
            if volume["name"] == "results":
                volume.pop("emptyDir", None)
                volume["persistentVolumeClaim"] = {"claimName": str(pvc)}
    return job


def profiler_rbac(namespace: str) -> list[dict[str, Any]]:
    """ServiceAccount, Role and RoleBinding of the profiling Job pods, in ``namespace``."""
    objects = load_template(PROFILER_RBAC)
    for obj in objects:
        obj["metadata"]["namespace"] = namespace
        _labels(obj, {"app.kubernetes.io/managed-by": "dynamo-plan"})
    return objects
