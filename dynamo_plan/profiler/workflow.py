"""``dgdr run`` / ``dgdr status``: the DynamoGraphDeploymentRequest workflow on the client side.

Phases (``status.state``): Pending → Profiling → (Deploying, when ``spec.autoApply``) → Ready,
or Failed with the error's message. Profiling is offline with ``sweep.useAiConfigurator: true``
(:func:`dynamo_plan.profiler.offline.run_offline` on ``aicSystem``), otherwise online in the
cluster (:func:`dynamo_plan.profiler.online_cluster.profile_online_cluster`: a temporary DGD and
a profiling Job per candidate TP and role, all deleted afterwards; needs a cluster, so not with
``no_cluster``). The generated manifest comes from :func:`dynamo_plan.deploy.render.render`.

When the DGDR CRD (``dynamographdeploymentrequests.nvidia.com``) is installed, the DGDR object is
server-side applied (field manager ``dynamo-plan``) and every phase is written to its ``/status``
subresource (``state``, ``conditions``, ``generatedDeployment`` = the full DGD object); otherwise
phases are only reported through ``on_phase``. ConfigMaps ``dgdr-output-<name>`` (the DGD YAML)
and ``planner-profile-data`` (the profile JSON) are always written (as files with
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

from dynamo_plan.adapters.kubernetes import CRD, KindInfo, KubeClient, kind_info
from dynamo_plan.deploy.apply import (
    FIELD_MANAGER,
    ManifestObject,
    Outcome,
    apply_objects,
    wait_ready,
)
from dynamo_plan.deploy.dgdr import API_VERSION, KIND
from dynamo_plan.deploy.render import (
    PROFILE_CONFIGMAP,
    dump_manifest,
    load_dgdr,
    profile_configmap_data,
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
]

CRD_NAME = "dynamographdeploymentrequests.nvidia.com"
SPEC_HASH = "dgdr.nvidia.com/spec-hash"
ONLINE_MESSAGE = (
    "online profiling runs temporary deployments and Jobs in a cluster: drop --no-cluster, or "
    "set spec.profilingConfig.config.sweep.useAiConfigurator: true for offline profiling"
)
_STARTED = ("Profiling", "Deploying", "Ready", "Failed")


def _info(api_version: str, kind: str) -> KindInfo:
    info = kind_info(api_version, kind)
    assert info is not None
    return info


DGDR_INFO = _info(API_VERSION, KIND)
DGD_INFO = _info(API_VERSION, "DynamoGraphDeployment")
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
    state: str = "Pending"
    phases: list[str] = field(default_factory=list)
    conditions: list[dict[str, Any]] = field(default_factory=list)
    crd_installed: bool = False
    generated_deployment: str | None = None
    configmaps: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    applied: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The fields under camelCase keys (``crdInstalled``, ``configMaps``, ...)."""
        return camel_dict(self, {"configmaps": "configMaps"})


def crd_installed(client: KubeClient) -> bool:
    """Whether the DGDR CustomResourceDefinition exists (cluster-scoped GET, 404 → False)."""
    return client.get(CRD, None, CRD_NAME) is not None


class _Run:
    """One workflow run; ``client`` None means --no-cluster."""

    def __init__(
        self,
        dgdr: dict[str, Any],
        client: KubeClient | None,
        namespace: str,
        out: Path | None,
        on_phase: Callable[[str, str], None],
        path: Path,
        on_progress: Callable[[Any], None] | None,
        timeout_s: float,
        poll_s: float,
    ) -> None:
        self.path = path
        self.on_progress = on_progress
        self.timeout_s, self.poll_s = timeout_s, poll_s
        self.dgdr = copy.deepcopy(dgdr)
        self.dgdr.setdefault("metadata", {})["namespace"] = namespace
        self.client = client
        self.out = out
        self.on_phase = on_phase
        name = str(self.dgdr["metadata"]["name"])
        self.hash = spec_hash(self.dgdr["spec"])
        self.result = RunResult(name, namespace)

    # -- cluster writes ------------------------------------------------------------------------
    def _condition(self, ctype: str, ok: bool, reason: str, message: str) -> None:
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

    def phase(self, state: str, message: str, dgd: dict[str, Any] | None = None) -> None:
        """Record ``state`` (and write it to /status when the CRD is installed)."""
        self.result.state = state
        self.result.phases.append(state)
        self.result.message = message
        self.on_phase(state, message)
        if self.client is None or not self.result.crd_installed:
            return
        status: dict[str, Any] = {"state": state, "conditions": self.result.conditions}
        if dgd is not None:
            status["generatedDeployment"] = dgd
        body = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": self.result.name, "namespace": self.result.namespace},
            "status": status,
        }
        self.client.apply_status(DGDR_INFO, self.result.namespace, body, FIELD_MANAGER, force=True)

    def _check_immutable(self) -> None:
        assert self.client is not None
        ns, name = self.result.namespace, self.result.name
        live = self.client.get(DGDR_INFO, ns, name) if self.result.crd_installed else None
        if live is not None:
            started = (live.get("status") or {}).get("state") in _STARTED
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
            "apiVersion": API_VERSION,
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
        self.client.apply(DGDR_INFO, self.result.namespace, body, FIELD_MANAGER, force=True)

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

        spec = self.dgdr["spec"]
        config = (spec.get("profilingConfig") or {}).get("config") or {}
        sweep = config.get("sweep") or {}
        system = sweep.get("aicSystem")
        if not system:
            raise InputError(
                "spec.profilingConfig.config.sweep.aicSystem is required for offline profiling "
                "(e.g. h200_sxm)"
            )
        sla = config["sla"]
        request = OfflineRequest(
            model=str(sweep.get("aicHfId") or spec["model"]),
            system=str(system),
            backend=spec["backend"],
            sla=SweepSLA(int(sla["isl"]), int(sla["osl"]), float(sla["ttft"]), float(sla["itl"])),
            out=work,
            plots=False,
        )
        run_offline(request)

    @property
    def offline(self) -> bool:
        """``sweep.useAiConfigurator: true`` selects the estimator; anything else is online."""
        config = (self.dgdr["spec"].get("profilingConfig") or {}).get("config") or {}
        return (config.get("sweep") or {}).get("useAiConfigurator") is True

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
        )

    def configmaps(self, profile: Any, manifest: str) -> list[dict[str, Any]]:
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
            "metadata": {"name": PROFILE_CONFIGMAP, "namespace": ns, "labels": labels},
            "data": profile_configmap_data(profile),
        }
        return [output, prof]

    def run(self) -> RunResult:
        if self.client is not None:
            self.result.crd_installed = crd_installed(self.client)
            self._check_immutable()
            if self.result.crd_installed:
                self._apply_dgdr()
        self._condition("Validated", True, "SpecValid", "the DGDR passed schema validation")
        self.phase("Pending", "validated; waiting to profile")
        try:
            return self._rest()
        except DynamoPlanError as e:
            self._condition("Ready", False, type(e).__name__, str(e))
            self.phase("Failed", str(e))
            raise

    def _rest(self) -> RunResult:
        spec = self.dgdr["spec"]
        if self.offline:
            self._condition("Profiled", False, "Profiling", "offline profiling running")
            self.phase("Profiling", "offline profiling with the estimator")
        else:
            self._condition("Profiled", False, "Profiling", "online profiling running")
            self.phase("Profiling", "online profiling: a temporary DGD and Job per TP and role")
        with tempfile.TemporaryDirectory(prefix="dgdr-profile-") as tmp:
            work = (self.out / "profile") if self.out is not None else Path(tmp) / "profile"
            profile = self.profile(work)
        self._condition("Profiled", True, "ProfilingDone", f"profile of {spec['model']}")
        rendered = render(self.dgdr, profile, dgdr_path=self.path)
        dgd = rendered.objects[-1]
        manifest = dump_manifest(rendered.objects)
        self.result.generated_deployment = rendered.name
        cms = self.configmaps(profile, yaml.safe_dump(dgd, sort_keys=False))
        self.result.configmaps = [c["metadata"]["name"] for c in cms]
        self._condition("Generated", True, "DeploymentGenerated", f"DGD {rendered.name}")
        if self.client is None:
            self._write_files(manifest, cms)
        else:
            objs = [_manifest_object(c) for c in cms]
            self.result.applied += [o.row() for o in apply_objects(self.client, objs)]
        if not spec.get("autoApply"):
            self._condition("Ready", True, "DeploymentGenerated", "autoApply is off")
            self.phase("Ready", f"generated DGD {rendered.name} (autoApply off)", dgd)
            return self.result
        if self.client is None:
            self._condition("Ready", True, "DeploymentGenerated", "--no-cluster: not applied")
            self.phase("Ready", f"generated DGD {rendered.name} (--no-cluster: not applied)", dgd)
            return self.result
        self.phase("Deploying", f"applying DGD {rendered.name}", dgd)
        objects = [_manifest_object(o, self.result.namespace) for o in rendered.objects]
        self.result.applied += [o.row() for o in apply_objects(self.client, objects)]
        wait_ready(self.client, objects, self.timeout_s, poll_s=self.poll_s)
        self._condition("Ready", True, "DeploymentReady", f"DGD {rendered.name} is Ready")
        self.phase("Ready", f"DGD {rendered.name} is Ready", dgd)
        return self.result

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
) -> RunResult:
    """Run the workflow for the DGDR in ``path`` (see the module doc); ``client`` None = files.

    The namespace is ``namespace``, else the DGDR's ``metadata.namespace``, else the client's
    default. ``timeout_s`` bounds each wait for Ready (the final DGD; with online profiling also
    each temporary DGD); ``on_progress`` receives online profiling's
    :class:`~dynamo_plan.profiler.online_cluster.ProfilingProgress` events. Raises the first
    error (after writing Failed), e.g. InfeasibleSLAError (exit 4).
    """
    dgdr = load_dgdr(path)
    own = (dgdr.get("metadata") or {}).get("namespace")
    if own and namespace and own != namespace:
        raise InputError(
            f"{path}: the DGDR is in namespace '{own}' but --namespace is '{namespace}'"
        )
    default = client.default_namespace if client is not None else "default"
    ns = str(namespace or own or default)
    if client is None and out is None:
        raise InputError("--no-cluster needs --out DIR (where the ConfigMaps and DGD are written)")
    return _Run(dgdr, client, ns, out, on_phase, path, on_progress, timeout_s, poll_s).run()


def dgdr_status(client: KubeClient, name: str, namespace: str | None) -> dict[str, Any]:
    """Phase, conditions and generated DGD of DGDR ``name`` (from the DGDR's status, else from
    its ``dgdr-output-<name>`` ConfigMap); InputError when neither exists."""
    ns = namespace or client.default_namespace
    live = client.get(DGDR_INFO, ns, name) if crd_installed(client) else None
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
    return {
        "name": name,
        "namespace": ns,
        "state": status.get("state", "Ready" if live is None else "Pending"),
        "conditions": status.get("conditions", []),
        "generatedDeployment": dgd,
        "source": source,
    }


def apply_dgdr(client: KubeClient, doc: dict[str, Any]) -> Outcome:
    """Create or update the DGDR ``doc`` in the cluster by server-side apply (``dgdr create
    --apply``); its namespace is its own, else the kubeconfig context's."""
    client.connect()
    return apply_objects(client, [_manifest_object(doc, client.default_namespace)])[0]
