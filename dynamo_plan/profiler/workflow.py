"""``dgdr run`` / ``dgdr status``: the DynamoGraphDeploymentRequest workflow on the client side.

The DGDR is read once into the DGDR model (:func:`dynamo_plan.deploy.render.load_dgdr`: any
spelling, v1alpha1 or v1beta1). Profiling is offline when the model's ``use_ai_configurator``
(v1alpha1 ``sweep.useAiConfigurator``/``use_ai_configurator``; v1beta1 ``searchStrategy: rapid``)
is set: :func:`dynamo_plan.profiler.offline.run_offline` on ``aic_system`` with
``aic_backend_version``; otherwise online in the cluster
(:func:`dynamo_plan.profiler.online_cluster.profile_online_cluster`; needs a cluster, so not with
``no_cluster``). The manifest comes from :func:`dynamo_plan.deploy.render.render` for the target
Dynamo release (``--dynamo-version``, else the installed CRDs' release, else the newest); a
``configMapRef`` base DGD is read from the cluster (with ``no_cluster`` a warning says it needs
one and the shipped template is used).

Status, written to the ``/status`` subresource when the DGDR CRD is installed, as the DGDR's own
apiVersion names it (:func:`status_body`):

* v1alpha1 — ``state`` Pending → Profiling → (Deploying, when ``autoApply``) → Ready, or Failed;
  ``backend``; ``conditions`` of the types its CRD documents (Validation, Profiling,
  SpecGenerated, DeploymentReady); ``profilingResults`` (``configmap/<name>``);
  ``generatedDeployment`` (the full DGD); ``deployment`` (name, namespace, state, created) once
  applied; ``observedGeneration``.
* v1beta1 — ``phase`` Pending → Profiling → Ready (spec generated, not deployed) or Deploying →
  Deployed, or Failed; ``profilingPhase`` while profiling (Initializing → SelectingConfig →
  GeneratingDGD; cleared after); ``dgdName``; ``profilingJobName`` (online profiling's last Job,
  when one ran); ``profilingResults.selectedConfig`` (TP and replicas per role);
  ``deploymentInfo`` (replicas, availableReplicas) once deployed; ``observedGeneration``;
  ``conditions`` (Succeeded, Validation, Profiling, SpecGenerated, DeploymentReady).

Otherwise phases are only reported through ``on_phase``. ConfigMaps ``dgdr-output-<name>`` (the
DGD YAML) and ``<dgd>-profile`` (the profile JSON) are always written (as files with
``no_cluster``).

Immutability: the sha256 of the canonical JSON (sorted keys, no spaces) of ``spec`` is stored in
annotation :data:`SPEC_HASH` (on the DGDR, and on the ``dgdr-output`` ConfigMap); a later run with
a different spec, once profiling started, is refused.
"""

from __future__ import annotations

import copy
import hashlib
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from dynamo_plan.adapters.kubernetes import KindInfo, KubeClient, kind_info
from dynamo_plan.core.releases import DynamoRelease
from dynamo_plan.deploy.apply import (
    FIELD_MANAGER,
    ManifestObject,
    Outcome,
    apply_objects,
    wait_ready,
)
from dynamo_plan.deploy.dgdr import KIND
from dynamo_plan.deploy.dgdr_cluster import (
    CRD_NAME,
    config_map_dgd,
    release_for,
    served_versions,
)
from dynamo_plan.deploy.dgdr_model import BETA, DgdrSpec
from dynamo_plan.deploy.render import (
    Rendered,
    dump_manifest,
    load_dgdr,
    profile_configmap_data,
    profile_configmap_name,
    render,
)
from dynamo_plan.errors import DynamoPlanError, InputError
from dynamo_plan.formats.camel import camel_dict
from dynamo_plan.formats.files import write_text_atomic

__all__ = [
    "CRD_NAME",
    "SPEC_HASH",
    "RunResult",
    "apply_dgdr",
    "dgdr_status",
    "output_configmap_name",
    "run_dgdr",
    "spec_hash",
    "status_body",
]

SPEC_HASH = "dgdr.nvidia.com/spec-hash"
ONLINE_MESSAGE = (
    "online profiling runs temporary deployments and Jobs in a cluster: drop --no-cluster, or "
    "set spec.profilingConfig.config.sweep.useAiConfigurator: true (v1beta1: searchStrategy: "
    "rapid) for offline profiling"
)
_STARTED = ("Profiling", "Deploying", "Ready", "Deployed", "Failed")
#: the condition types each apiVersion's CRD documents, by the step they report
CONDITIONS = {
    "v1alpha1": {"valid": "Validation", "profiled": "Profiling", "generated": "SpecGenerated",
                 "deployed": "DeploymentReady"},
    "v1beta1": {"valid": "Validation", "profiled": "Profiling", "generated": "SpecGenerated",
                "deployed": "DeploymentReady", "done": "Succeeded"},
}  # fmt: skip


def _info(api_version: str, kind: str) -> KindInfo:
    info = kind_info(api_version, kind)
    assert info is not None
    return info


CM_INFO = _info("v1", "ConfigMap")


def spec_hash(spec: Any) -> str:
    """sha256 (hex) of the canonical JSON of ``spec`` (sorted keys, ``,``/``:`` separators)."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def output_configmap_name(name: str) -> str:
    """The ConfigMap holding the generated DGD of DGDR ``name``."""
    return f"dgdr-output-{name}"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class RunResult:
    """What ``dgdr run`` did: final state, phases passed, objects written (the ``-o json``)."""

    name: str
    namespace: str
    api_version: str = "nvidia.com/v1alpha1"
    release: str = ""
    state: str = "Pending"
    phases: list[str] = field(default_factory=list)
    conditions: list[dict[str, Any]] = field(default_factory=list)
    crd_installed: bool = False
    generated_deployment: str | None = None
    configmaps: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    applied: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The fields under camelCase keys (``crdInstalled``, ``configMaps``, ...)."""
        return camel_dict(self, {"configmaps": "configMaps"})


def crd_installed(client: KubeClient) -> bool:
    """Whether the DGDR CustomResourceDefinition exists (cluster-scoped GET, 404 → False)."""
    return served_versions(client) is not None


def status_body(
    api_version: str,
    phase: str,
    conditions: list[dict[str, Any]],
    facts: dict[str, Any],
) -> dict[str, Any]:
    """The ``status`` of a DGDR of ``api_version`` in ``phase`` (module docstring), from
    ``facts``: ``backend``, ``profile_configmap``, ``dgd`` (the generated object), ``dgd_name``,
    ``dgd_namespace``, ``deployed`` (bool), ``replicas``, ``selected`` (per-role config),
    ``profiling_phase``, ``job``, ``generation``. Only fields the CRD defines are written."""
    status: dict[str, Any] = {}
    if api_version == BETA:
        status["phase"] = phase
        if facts.get("profiling_phase") and phase == "Profiling":
            status["profilingPhase"] = facts["profiling_phase"]
        if facts.get("dgd_name"):
            status["dgdName"] = facts["dgd_name"]
        if facts.get("job"):
            status["profilingJobName"] = facts["job"]
        if facts.get("selected"):
            status["profilingResults"] = {"selectedConfig": facts["selected"]}
        if facts.get("replicas") is not None and facts.get("deployed"):
            n = int(facts["replicas"])
            status["deploymentInfo"] = {"replicas": n, "availableReplicas": n}
    else:
        status["state"] = phase
        if facts.get("backend"):
            status["backend"] = facts["backend"]
        if facts.get("profile_configmap"):
            status["profilingResults"] = f"configmap/{facts['profile_configmap']}"
        if facts.get("dgd") is not None:
            status["generatedDeployment"] = facts["dgd"]
        if facts.get("deployed"):
            status["deployment"] = {
                "name": facts["dgd_name"],
                "namespace": facts["dgd_namespace"],
                "state": "successful" if phase == "Ready" else "pending",
                "created": True,
            }
    if facts.get("generation") is not None:
        status["observedGeneration"] = int(facts["generation"])
    status["conditions"] = conditions
    return status


class _Run:
    """One workflow run; ``client`` None means --no-cluster."""

    def __init__(
        self,
        request: DgdrSpec,
        client: KubeClient | None,
        namespace: str,
        out: Path | None,
        on_phase: Callable[[str, str], None],
        path: Path,
        on_progress: Callable[[Any], None] | None,
        timeout_s: float,
        poll_s: float,
        release: DynamoRelease,
        planner_image: str | None = None,
    ) -> None:
        self.path = path
        self.planner_image = planner_image
        self.request = request
        self.on_progress = on_progress
        self.timeout_s, self.poll_s = timeout_s, poll_s
        self.dgdr: dict[str, Any] = copy.deepcopy(dict(request.raw))
        self.dgdr.setdefault("metadata", {})["namespace"] = namespace
        self.client = client
        self.out = out
        self.on_phase = on_phase
        self.release = release
        self.version = request.api_version.rsplit("/", 1)[-1]
        self.info = _info(request.api_version, KIND)
        name = str(self.dgdr["metadata"]["name"])
        self.hash = spec_hash(self.dgdr["spec"])
        self.result = RunResult(name, namespace, request.api_version, release.value)
        self.facts: dict[str, Any] = {"backend": request.backend}

    # -- cluster writes ------------------------------------------------------------------------
    def _condition(self, step: str, ok: bool, reason: str, message: str) -> None:
        """Set the condition of ``step`` (valid, profiled, generated, deployed, done) under the
        type this apiVersion's CRD documents; steps it has no type for are not written."""
        ctype = CONDITIONS[self.version].get(step)
        if ctype is None:
            return
        conds = [c for c in self.result.conditions if c["type"] != ctype]
        conds.append(
            {
                "type": ctype,
                "status": "True" if ok else "False",
                "reason": reason,
                "message": message,
                "lastTransitionTime": _now(),
            }
        )
        self.result.conditions = conds

    def phase(self, state: str, message: str) -> None:
        """Record ``state`` (and write the status to /status when the CRD is installed)."""
        self.result.state = state
        self.result.phases.append(state)
        self.result.message = message
        self.on_phase(state, message)
        self.result.status = status_body(
            self.request.api_version, state, self.result.conditions, self.facts
        )
        if self.client is None or not self.result.crd_installed:
            return
        body = {
            "apiVersion": self.request.api_version,
            "kind": KIND,
            "metadata": {"name": self.result.name, "namespace": self.result.namespace},
            "status": self.result.status,
        }
        self.client.apply_status(self.info, self.result.namespace, body, FIELD_MANAGER, force=True)

    def _check_immutable(self) -> None:
        assert self.client is not None
        ns, name = self.result.namespace, self.result.name
        live = self.client.get(self.info, ns, name) if self.result.crd_installed else None
        if live is not None:
            status = live.get("status") or {}
            started = (status.get("state") or status.get("phase")) in _STARTED
        else:
            live = self.client.get(CM_INFO, ns, output_configmap_name(name))
            started = live is not None
        old = ((live or {}).get("metadata") or {}).get("annotations", {}).get(SPEC_HASH)
        if started and old is not None and old != self.hash:
            raise InputError(
                f"DGDR {ns}/{name}: spec changed since profiling started: delete and recreate "
                f"the DGDR (dynamo-plan delete FILE)"
            )

    def _apply_dgdr(self) -> None:
        assert self.client is not None
        body = {
            "apiVersion": self.request.api_version,
            "kind": KIND,
            "metadata": {
                "name": self.result.name,
                "namespace": self.result.namespace,
                "labels": dict(self.dgdr["metadata"].get("labels") or {}),
                "annotations": {
                    **(self.dgdr["metadata"].get("annotations") or {}),
                    SPEC_HASH: self.hash,
                },
            },
            "spec": self.dgdr["spec"],
        }
        if not body["metadata"]["labels"]:
            del body["metadata"]["labels"]
        live = self.client.apply(self.info, self.result.namespace, body, FIELD_MANAGER, force=True)
        generation = ((live or {}).get("metadata") or {}).get("generation")
        if generation is not None:
            self.facts["generation"] = generation

    def _check_served(self) -> None:
        """InputError when the cluster's DGDR CRD does not serve this DGDR's apiVersion."""
        assert self.client is not None
        found = served_versions(self.client)
        self.result.crd_installed = found is not None
        if found is not None and self.version not in found.served:
            other = "v1alpha1" if self.version == "v1beta1" else "v1beta1"
            raise InputError(
                f"{self.path}: this DGDR is {self.request.api_version}, the cluster's DGDR CRD "
                f"(Dynamo {found.release.value}) serves {', '.join(found.served)}: "
                f"dynamo-plan dgdr convert {self.path} --to {other}"
            )

    # -- the workflow --------------------------------------------------------------------------
    def profile(self, work: Path) -> Any:
        """Profile into ``work`` (offline with the estimator, else online) and load it."""
        from dynamo_plan.adapters.profile_files import load_profile

        if self.offline:
            self._profile_offline(work)
        else:
            self._profile_online(work)
        return load_profile(work)

    def _profile_offline(self, work: Path) -> None:
        from dynamo_plan.profiler.offline import OfflineRequest, run_offline
        from dynamo_plan.profiler.sweep import SweepSLA

        request = self.request
        if not request.aic_system:
            raise request.error(
                "aic_system", "required for offline profiling (the GPU system, e.g. h200_sxm)"
            )
        isl, osl, ttft, itl = request.sla()
        run_offline(
            OfflineRequest(
                model=request.estimator_model,
                system=request.aic_system,
                backend=request.concrete_backend(),  # type: ignore[arg-type]  # schema-checked
                sla=SweepSLA(isl, osl, ttft, itl),
                out=work,
                plots=False,
                # AI Configurator where it covers the model, system, backend and version (the
                # DGDR's aicBackendVersion), else the roofline: dgdr run needs no optional package
                estimator="auto",
                aic_backend_version=request.aic_backend_version,
                aic_hf_id=request.aic_hf_id,
                requested_by=f"{self.path} {request.path_of('use_ai_configurator')}",
            )
        )

    @property
    def offline(self) -> bool:
        """The estimator when the DGDR asks for AI-Configurator-style profiling (any spelling)."""
        return self.request.use_ai_configurator

    def _profile_online(self, work: Path) -> None:
        from dynamo_plan.profiler.online_cluster import profile_online_cluster

        if self.client is None:
            raise InputError(ONLINE_MESSAGE)
        profile_online_cluster(
            self.path,
            self.client,
            self.result.namespace,
            work,
            progress=self.on_progress,
            poll_s=self.poll_s,
            ready_timeout_s=self.timeout_s,
            planner_image=self.planner_image,
        )

    def _base_dgd(self) -> dict[str, Any] | None:
        """The configMapRef's DGD (from the cluster), else None (the shipped template)."""
        ref = self.request.config_map_ref
        if ref is None:
            return None
        if self.client is None:
            warning = (
                f"{self.request.where('config_map_ref')}: reading ConfigMap {ref.name} needs a "
                "cluster (--no-cluster): the shipped template is used"
            )
            self.result.warnings.append(warning)
            return None
        return config_map_dgd(self.client, self.result.namespace, ref)

    def configmaps(self, profile: Any, manifest: str, dgd_name: str) -> list[dict[str, Any]]:
        ns, name = self.result.namespace, self.result.name
        labels = {"dgdr.nvidia.com/name": name, "dgdr.nvidia.com/namespace": ns}
        output = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": output_configmap_name(name),
                "namespace": ns,
                "labels": labels,
                "annotations": {SPEC_HASH: self.hash},
            },
            "data": {"dgd.yaml": manifest},
        }
        prof = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": profile_configmap_name(dgd_name),
                "namespace": ns,
                "labels": labels,
            },
            "data": profile_configmap_data(profile),
        }
        return [output, prof]

    def run(self) -> RunResult:
        if self.client is not None:
            self._check_served()
            self._check_immutable()
            if self.result.crd_installed:
                self._apply_dgdr()
        self._condition("valid", True, "SpecValid", "the DGDR passed schema validation")
        self.phase("Pending", "validated; waiting to profile")
        try:
            return self._rest()
        except DynamoPlanError as e:
            reason = type(e).__name__
            self._condition("done", False, reason, str(e))
            self._condition(self._failed_step(), False, reason, str(e))
            self.facts.pop("profiling_phase", None)
            self.phase("Failed", str(e))
            raise

    def _failed_step(self) -> str:
        """The step a failure belongs to: the first of profiled, generated, deployed not done."""
        done = {c["type"] for c in self.result.conditions if c["status"] == "True"}
        names = CONDITIONS[self.version]
        for step in ("profiled", "generated", "deployed"):
            if names[step] not in done:
                return step
        return "deployed"

    def _rest(self) -> RunResult:
        request = self.request
        how = "offline" if self.offline else "online"
        self._condition("profiled", False, "ProfilingRunning", f"{how} profiling running")
        self.facts["profiling_phase"] = "Initializing"
        if self.offline:
            self.phase("Profiling", "offline profiling with the estimator")
        else:
            self.phase("Profiling", "online profiling: a temporary DGD and Job per TP and role")
        with tempfile.TemporaryDirectory(prefix="dgdr-profile-") as tmp:
            work = (self.out / "profile") if self.out is not None else Path(tmp) / "profile"
            profile = self.profile(work)
        self._condition("profiled", True, "ProfilingDone", f"profile of {request.model}")
        rendered = render(
            request,
            profile,
            dgdr_path=self.path,
            release=self.release,
            planner_image_flag=self.planner_image,
            base_dgd=self._base_dgd(),
        )
        self.result.warnings += list(rendered.warnings)
        dgd = rendered.objects[-1]
        manifest = dump_manifest(rendered.objects)
        self.result.generated_deployment = rendered.name
        cms = self.configmaps(profile, yaml.safe_dump(dgd, sort_keys=False), rendered.name)
        self.result.configmaps = [c["metadata"]["name"] for c in cms]
        self._remember(rendered, dgd, cms[1]["metadata"]["name"])
        self._condition("generated", True, "SpecGenerated", f"DGD {rendered.name}")
        if self.client is None:
            self._write_files(manifest, cms)
        else:
            objs = [_manifest_object(c) for c in cms]
            self.result.applied += [o.row() for o in apply_objects(self.client, objs)]
        if not request.auto_apply or self.client is None:
            why = "autoApply is off" if not request.auto_apply else "--no-cluster: not applied"
            self._condition("done", True, "SpecGenerated", why)
            self.phase("Ready", f"generated DGD {rendered.name} ({why})")
            return self.result
        self.phase("Deploying", f"applying DGD {rendered.name}")
        objects = [_manifest_object(o, self.result.namespace) for o in rendered.objects]
        self.result.applied += [o.row() for o in apply_objects(self.client, objects)]
        wait_ready(self.client, objects, self.timeout_s, poll_s=self.poll_s)
        self.facts["deployed"] = True
        self._condition("deployed", True, "DeploymentReady", f"DGD {rendered.name} is Ready")
        self._condition("done", True, "Deployed", f"DGD {rendered.name} is Ready")
        final = "Deployed" if request.is_v1beta1 else "Ready"
        self.phase(final, f"DGD {rendered.name} is Ready")
        return self.result

    def _remember(self, rendered: Rendered, dgd: dict[str, Any], profile_cm: str) -> None:
        """The facts the status reports once the DGD is generated."""
        self.facts.pop("profiling_phase", None)
        self.facts |= {
            "dgd": dgd,
            "dgd_name": rendered.name,
            "dgd_namespace": rendered.namespace or self.result.namespace,
            "profile_configmap": profile_cm,
            "replicas": sum(rendered.replicas.values()),
            "selected": {
                role: {"tp": rendered.tp[role], "replicas": rendered.replicas[role]}
                for role in rendered.tp
            },
        }

    def _write_files(self, manifest: str, cms: list[dict[str, Any]]) -> None:
        assert self.out is not None
        self.out.mkdir(parents=True, exist_ok=True)
        targets = [(self.out / "dgd.yaml", manifest)] + [
            (self.out / f"{c['metadata']['name']}.yaml", yaml.safe_dump(c, sort_keys=False))
            for c in cms
        ]
        for path, text in targets:
            write_text_atomic(path, text)
            self.result.files.append(str(path))


def _manifest_object(obj: dict[str, Any], namespace: str | None = None) -> ManifestObject:
    body = copy.deepcopy(obj)
    meta = body.setdefault("metadata", {})
    ns = str(meta.get("namespace") or namespace)
    meta["namespace"] = ns
    info = _info(str(body["apiVersion"]), str(body["kind"]))
    return ManifestObject(info, str(meta["name"]), ns, body)


def run_dgdr(
    path: Path,
    client: KubeClient | None,
    namespace: str | None,
    out: Path | None = None,
    on_phase: Callable[[str, str], None] = lambda state, message: None,
    timeout_s: float = 1800.0,
    poll_s: float = 2.0,
    on_progress: Callable[[Any], None] | None = None,
    release: DynamoRelease | None = None,
    planner_image: str | None = None,
) -> RunResult:
    """Run the workflow for the DGDR in ``path`` (see the module doc); ``client`` None = files.

    The namespace is ``namespace``, else the DGDR's ``metadata.namespace``, else the client's
    default. The DGD is rendered for ``release`` (``--dynamo-version``), else the release of the
    cluster's DGDR CRD, else the newest. ``timeout_s`` bounds each wait for Ready (the final DGD;
    with online profiling also each temporary DGD); ``on_progress`` receives online profiling's
    :class:`~dynamo_plan.profiler.online_cluster.ProfilingProgress` events; ``planner_image``
    (``--planner-image``) runs the Planner and the profiling Jobs (None: the DGDR's
    ``plannerImage``, else ``dynamo-plan:<version>``). Raises the first error (after writing
    Failed), e.g. InfeasibleSLAError (exit 4).
    """
    request = load_dgdr(path)
    own = request.namespace
    if own and namespace and own != namespace:
        raise InputError(
            f"{path}: the DGDR is in namespace '{own}' but --namespace is '{namespace}'"
        )
    default = client.default_namespace if client is not None else "default"
    ns = str(namespace or own or default)
    if client is None and out is None:
        raise InputError("--no-cluster needs --out DIR (where the ConfigMaps and DGD are written)")
    target = release_for(release, client)
    run = _Run(
        request, client, ns, out, on_phase, path, on_progress, timeout_s, poll_s, target,
        planner_image,
    )  # fmt: skip
    return run.run()


def dgdr_status(client: KubeClient, name: str, namespace: str | None) -> dict[str, Any]:
    """Phase, conditions and generated DGD of DGDR ``name`` (from the DGDR's status, else from
    its ``dgdr-output-<name>`` ConfigMap); InputError when neither exists. The DGDR is read in
    the version the CRD stores (v1beta1 on Dynamo 1.x: ``phase``; v1alpha1: ``state``)."""
    ns = namespace or client.default_namespace
    found = served_versions(client)
    live = None
    if found is not None:  # the stored version first, then the others served
        order = sorted(found.served, key=lambda v: v != found.storage)
        for version in order:
            live = client.get(_info(f"nvidia.com/{version}", KIND), ns, name)
            if live is not None:
                break
    status = (live or {}).get("status") or {}
    dgd = status.get("generatedDeployment")
    source = "DynamoGraphDeploymentRequest" if live is not None else None
    if dgd is None:
        cm = client.get(CM_INFO, ns, output_configmap_name(name))
        text = ((cm or {}).get("data") or {}).get("dgd.yaml")
        if text:
            dgd = yaml.safe_load(text)
            source = source or "ConfigMap"
    if source is None:
        raise InputError(
            f"DGDR {ns}/{name} not found (no DynamoGraphDeploymentRequest and no ConfigMap "
            f"{output_configmap_name(name)})"
        )
    state = status.get("state") or status.get("phase")
    return {
        "name": name,
        "namespace": ns,
        "state": state or ("Ready" if live is None else "Pending"),
        "conditions": status.get("conditions", []),
        "generatedDeployment": dgd,
        "dgdName": status.get("dgdName") or ((dgd or {}).get("metadata") or {}).get("name"),
        "status": status,
        "source": source,
    }


def apply_dgdr(client: KubeClient, doc: dict[str, Any]) -> Outcome:
    """Create or update the DGDR ``doc`` in the cluster by server-side apply (``dgdr create
    --apply``); its namespace is its own, else the kubeconfig context's."""
    client.connect()
    return apply_objects(client, [_manifest_object(doc, client.default_namespace)])[0]
