"""The Kubernetes connector of ``plan run``: reads and scales the workers of one DGD.

Two shapes of DynamoGraphDeployment are read, whichever the cluster serves (``v1beta1`` is
asked first, then ``v1alpha1``; the one found is used from then on):

* ``nvidia.com/v1alpha1`` (Dynamo 0.x; still served, deprecated, in 1.x) names its services in
  the map ``spec.services``; the prefill and decode workers are the services whose
  ``subComponentType`` is ``prefill`` / ``decode`` (DESIGN.md §3). DGDs written before
  ``subComponentType`` existed are resolved by convention, one step after the other until
  exactly one service matches: (1) ``componentType`` equal to the role, (2) a service that is not
  a frontend or planner whose name contains the role (case-insensitive: ``VllmPrefillWorker``,
  ``decode``). Zero or several matches → InputError. GPUs per engine: ``resources.limits.gpu``.
* ``nvidia.com/v1beta1`` (Dynamo 1.x, its storage version) lists ``spec.components``, each with a
  ``name``, a ``type`` (``frontend``, ``worker``, ``prefill``, ``decode``, ``planner``, ``epp``)
  and ``replicas``; the workers are the components whose ``type`` is the role, else (the same
  convention) the one non-frontend, non-planner component whose name contains it. GPUs per
  engine: ``nvidia.com/gpu`` in the limits of the pod template's ``main`` container (else its
  first).

Serving replicas come from ``status.services.<service>`` (v1beta1: ``status.components.<name>``),
the operator's ``ServiceReplicaStatus`` (ai-dynamo/dynamo ``deploy/operator/api/v1alpha1/
dynamographdeployment_types.go``): ``readyReplicas`` (set for PodClique, Deployment and
LeaderWorkerSet backings), else ``availableReplicas`` (set for Deployment and
PodCliqueScalingGroup). ``replicas`` counts every non-terminated pod, Pending ones included, so
it is never read as "serving"; a service with neither field (or no status) makes ``observe()``
answer ``None``.

Scaling adapters: from Dynamo 0.9 on, the operator may give a service a
DynamoGraphDeploymentScalingAdapter (DGDSA; ``spec.dgdRef.name`` the DGD, and
``spec.dgdRef.serviceName`` in v1alpha1 / ``componentName`` in v1beta1 the service), and 1.x's
DGD CRD says the service's own ``replicas`` is then ignored. Each call lists the namespace's
adapters (a version the cluster does not serve, or the planner may not list (403, with a note),
is not asked again); a role whose service has one is read (``spec.replicas``) and scaled through
the adapter's ``scale`` subresource (an ``autoscaling/v1`` ``Scale``, merge-patched); a role
without one is read from and written to the DGD as before. :meth:`KubernetesConnector.describe` says which path each role takes; ``plan
run`` prints it at start (the connector's ``say`` callback gets it on the first read, and again
whenever it changes).

DGD writes are JSON merge patches (RFC 7386) of ``spec.services.<service>.replicas`` only (a
v1beta1 DGD: a JSON patch (RFC 6902) of ``/spec/components/<i>/replicas`` guarded by a ``test``
of that item's ``name``, as a merge patch would replace the whole list), sent with
``fieldManager=dynamo-plan-planner``. Merge patch rather than server-side apply because an apply
with a partial object would (a) conflict with whoever owns ``replicas`` now (``dynamo-plan``'s
own ``apply``, kubectl) and need ``force``, taking ownership away from them, and (b) remove the
other role's ``replicas`` field the next time only one role is applied, if this manager was its
only owner. A patch is an ``Update`` operation: it owns exactly the fields it changed.
No ``resourceVersion`` precondition is sent: only the replicas fields are written, and the
planner's newest decision is meant to win. 409/429/5xx answers are retried with backoff by
:class:`~dynamo_plan.adapters.kubernetes.KubeClient`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dynamo_plan.adapters.kubernetes import (
    GPU_RESOURCE,
    KINDS,
    SCALING_ADAPTERS,
    KindInfo,
    KubeClient,
)
from dynamo_plan.connectors.base import ScaleOutcome, ScaleTarget, ServingReplicas
from dynamo_plan.errors import ClusterError, InputError

__all__ = [
    "DGD_KIND",
    "DGD_KINDS",
    "FIELD_MANAGER",
    "KubernetesConnector",
    "PendingScale",
    "Role",
    "connect_kubernetes_connector",
]

Role = Literal["prefill", "decode"]
ROLES: tuple[Role, Role] = ("prefill", "decode")

#: The field manager of the planner's writes (``dynamo-plan`` itself is the deploy tool's).
FIELD_MANAGER = "dynamo-plan-planner"
DGD_KIND = KINDS[("nvidia.com/v1alpha1", "DynamoGraphDeployment")]
#: The DGD versions asked for, in order (the first the cluster serves the object at is kept).
DGD_KINDS = (KINDS[("nvidia.com/v1beta1", "DynamoGraphDeployment")], DGD_KIND)
ADAPTER_KIND = "DynamoGraphDeploymentScalingAdapter"


@dataclass(frozen=True)
class Adapter:
    """The scaling adapter of one DGD service: where it is, and its ``spec.replicas``."""

    info: KindInfo
    name: str
    replicas: int
    obj: dict[str, Any]


@dataclass(frozen=True)
class PendingScale:
    """A scale-up of ``role`` to ``asked`` replicas, written ``waited_s`` seconds ago (clock of
    the connector), of which ``ready`` are ready (``None``: the DGD reports no status)."""

    role: Role
    service: str
    asked: int
    ready: int | None
    waited_s: float

    def describe(self) -> str:
        ready = "unknown" if self.ready is None else str(self.ready)
        return (
            f"{self.role} scale-up to {self.asked} ({self.service}) not Ready after "
            f"{self.waited_s:.0f} s ({ready} ready; pods Pending?)"
        )


@dataclass
class _Started:
    asked: int
    since: float


class KubernetesConnector:
    """Observe and scale the prefill / decode workers of DGD ``namespace/dgd``.

    Construction does no I/O; the client connects on the first request. Every public call
    re-reads the DGD (one GET), so an edited DGD is followed. ``notes`` collects non-fatal
    remarks (e.g. a worker without a GPU limit).

    A scale-up is remembered with its time (``clock``, seconds); while the role's ready count
    stays below what was asked for longer than ``ready_timeout_s``, ``apply`` says so in its
    detail and :meth:`pending_roles` lists it, but nothing blocks: ``observe`` reports what
    serves and ``apply`` always writes a new target.
    """

    name = "kubernetes"

    def __init__(
        self,
        client: KubeClient,
        dgd: str,
        namespace: str,
        ready_timeout_s: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
        say: Callable[[str], None] | None = None,
    ) -> None:
        if ready_timeout_s <= 0:
            raise InputError(f"ready timeout must be > 0 s, got {ready_timeout_s}")
        self.client = client
        self.dgd = dgd
        self.namespace = namespace
        self.ready_timeout_s = ready_timeout_s
        self.clock = clock
        self.say = say
        self.notes: list[str] = []
        self._written: dict[Role, int] = {}
        self._started: dict[Role, _Started] = {}
        self._ready: dict[Role, int | None] = {"prefill": None, "decode": None}
        self._services: dict[Role, str] = {}
        self._kind: KindInfo | None = None  # the DGD version found
        self._adapters: dict[Role, Adapter] = {}
        self._unserved: set[str] = set()  # adapter apiVersions the cluster does not serve
        self._said = ""

    @property
    def where(self) -> str:
        return f"DynamoGraphDeployment {self.namespace}/{self.dgd}"

    # -- reading -----------------------------------------------------------------------------
    def _get_dgd(self) -> dict[str, Any] | None:
        """The DGD at the version found before, else the first of :data:`DGD_KINDS` that has it."""
        kinds = [self._kind] if self._kind is not None else list(DGD_KINDS)
        for kind in kinds:
            obj = self.client.get(kind, self.namespace, self.dgd)
            if obj is not None:
                self._kind = kind
                return obj
        return None

    def _read(self) -> dict[str, Any]:
        obj = self._get_dgd()
        if obj is None:
            raise ClusterError(
                f"{self.where} not found at {self.client.server} "
                f"(kubectl get dgd {self.dgd} -n {self.namespace})"
            )
        self._services = resolve_services(obj, self.where)
        self._ready = {r: ready_replicas(obj, self._services[r]) for r in ROLES}
        self._adapters = self._find_adapters()
        said = self.describe()
        if said != self._said:  # the first read, or an adapter appeared or went: say so
            self._said = said
            if self.say is not None:
                self.say(said)
        for role in ROLES:  # a scale-up is done once enough replicas are ready
            started, ready = self._started.get(role), self._ready[role]
            if started is not None and ready is not None and ready >= started.asked:
                del self._started[role]
        return obj

    def _find_adapters(self) -> dict[Role, Adapter]:
        """The scaling adapter of each role's service, when there is one (module docstring)."""
        by_service: dict[str, Adapter] = {}
        for version, info in sorted(SCALING_ADAPTERS.items(), reverse=True):  # v1beta1 first
            if version in self._unserved:
                continue
            try:
                items = self.client.list_objects(info, self.namespace)
            except ClusterError as e:
                if e.status != 403:
                    raise
                note = (
                    f"{self.where}: may not list {ADAPTER_KIND}s ({info.api_version}); "
                    "scaling through the DGD (the planner's Role needs get/list on "
                    "dynamographdeploymentscalingadapters and patch on their /scale)"
                )
                self.notes.append(note)
                items = None
            if items is None:  # not served (or not allowed): do not ask again
                self._unserved.add(version)
                continue
            for item in items:
                ref = (item.get("spec") or {}).get("dgdRef") or {}
                if ref.get("name") != self.dgd:
                    continue
                service = ref.get("componentName") or ref.get("serviceName")
                name = str((item.get("metadata") or {}).get("name", ""))
                replicas = (item.get("spec") or {}).get("replicas", 1)
                where = f"{ADAPTER_KIND} {self.namespace}/{name}"
                n = spec_replicas({"replicas": replicas}, "", where, field="spec.replicas")
                by_service.setdefault(str(service), Adapter(info, name, n, item))
        return {r: by_service[s] for r, s in self._services.items() if s in by_service}

    def describe(self) -> str:
        """One line: how each role is scaled (as of the last read)."""
        parts = []
        for role in ROLES:
            service = self._services.get(role, role)
            adapter = self._adapters.get(role)
            if adapter is not None:
                parts.append(
                    f"{role} ({service}) through {ADAPTER_KIND} {self.namespace}/{adapter.name} "
                    "(scale subresource)"
                )
            else:
                parts.append(f"{role} ({service}) by patching the DGD's replicas")
        return f"{self.where}: scaling " + "; ".join(parts)

    def services(self) -> dict[Role, str]:
        """The DGD's service name per role (reads the DGD)."""
        self._read()
        return dict(self._services)

    def check(self) -> None:
        """Nothing to check: :func:`connect_kubernetes_connector` loads the cluster config, and
        the cluster is only known by asking it (unreachable is not a setting error)."""
        return None

    def engine_gpus(self) -> tuple[int, int]:
        """GPUs per engine (one replica) of (prefill, decode), from ``resources.limits.gpu``.

        The value may be an int or a quantity string ("2"); missing or 0 → 1, with a note in
        :attr:`notes` (mocker workers request no GPU). InputError for anything else.
        """
        obj = self._read()
        workers = _workers(obj, self.where)
        out: list[int] = []
        for role in ROLES:
            name = self._services[role]
            gpu, field = _gpu_limit(obj, workers, name)
            if gpu is None or str(gpu).strip() == "0":
                what = "not set" if gpu is None else "0"
                note = f"{self.where}: {field} {what}; counting 1 GPU per {role} engine"
                if note not in self.notes:
                    self.notes.append(note)
                out.append(1)
                continue
            out.append(_positive_int(gpu, f"{self.where}: {field}"))
        return out[0], out[1]

    def observe(self) -> ServingReplicas | None:
        """Ready replicas per role from ``status.services`` (module docstring); ``None`` when the
        DGD has no status for either worker yet."""
        self._read()
        prefill, decode = self._ready["prefill"], self._ready["decode"]
        if prefill is None or decode is None:
            return None
        return ServingReplicas(prefill=prefill, decode=decode)

    def pending_roles(self) -> list[PendingScale]:
        """Scale-ups not Ready after ``ready_timeout_s`` (as of the last read of the DGD)."""
        now = self.clock()
        out = []
        for role in ROLES:
            started = self._started.get(role)
            if started is None or now - started.since < self.ready_timeout_s:
                continue
            service = self._services.get(role, role)
            out.append(
                PendingScale(role, service, started.asked, self._ready[role], now - started.since)
            )
        return out

    # -- writing -----------------------------------------------------------------------------
    def apply(self, target: ScaleTarget) -> ScaleOutcome:
        """Merge-patch the replicas of the roles that differ from ``target`` ('applied'), or
        write nothing when the spec already asks for it ('unchanged')."""
        want: dict[Role, int] = {"prefill": target.prefill, "decode": target.decode}
        for role, n in want.items():
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise InputError(f"target {role} replicas must be an integer >= 0, got {n!r}")
        obj = self._read()
        workers = _workers(obj, self.where)
        have = {
            r: (
                self._adapters[r].replicas
                if r in self._adapters
                else spec_replicas(
                    workers[self._services[r]], self._services[r], self.where,
                    field=_replicas_field(obj, self._services[r]),
                )
            )
            for r in ROLES
        }  # fmt: skip
        remarks = [
            self._other_writer(obj, r, have[r])
            for r in ROLES
            if self._written.get(r, have[r]) != have[r]
        ]
        changes = {r: (have[r], want[r]) for r in ROLES if have[r] != want[r]}
        via_adapter = {r: c for r, c in changes.items() if r in self._adapters}
        via_dgd = {r: c for r, c in changes.items() if r not in self._adapters}
        for role, (_old, new) in via_adapter.items():
            adapter = self._adapters[role]
            scaled = self.client.scale(
                adapter.info, self.namespace, adapter.name, new, field_manager=FIELD_MANAGER
            )
            if scaled is None:
                raise ClusterError(
                    f"{ADAPTER_KIND} {self.namespace}/{adapter.name} was deleted before it "
                    "could be scaled"
                )
        if via_dgd:
            self._patch_dgd(obj, {self._services[r]: new for r, (_old, new) in via_dgd.items()})
        self._written = dict(want)
        self._track(have, want)
        remarks += [p.describe() for p in self.pending_roles()]
        moves = ", ".join(
            f"{r} {self._services[r]} {old}→{new}"
            + (f" (via {ADAPTER_KIND} {self._adapters[r].name})" if r in via_adapter else "")
            for r, (old, new) in changes.items()
        )
        head = (
            f"patched {self.where}: {moves}"
            if changes
            else f"{self.where} already asks for prefill={want['prefill']} decode={want['decode']}"
        )
        detail = "; ".join([head, *remarks])
        return ScaleOutcome("applied" if changes else "unchanged", detail)

    def _patch_dgd(self, obj: dict[str, Any], replicas: dict[str, int]) -> None:
        """Write ``replicas`` (service name → count) into the DGD (module docstring)."""
        assert self._kind is not None  # set by _read
        if _is_components(obj):
            names = [str(c.get("name")) for c in _components(obj, self.where)]
            ops: list[dict[str, Any]] = []
            for service, n in replicas.items():
                i = names.index(service)
                ops.append({"op": "test", "path": f"/spec/components/{i}/name", "value": service})
                ops.append({"op": "add", "path": f"/spec/components/{i}/replicas", "value": n})
            patched = self.client.json_patch(
                self._kind, self.namespace, self.dgd, ops, field_manager=FIELD_MANAGER
            )
        else:
            patch = {"spec": {"services": {s: {"replicas": n} for s, n in replicas.items()}}}
            patched = self.client.merge_patch(
                self._kind, self.namespace, self.dgd, patch, field_manager=FIELD_MANAGER
            )
        if patched is None:
            raise ClusterError(f"{self.where} was deleted before its replicas could be patched")

    def _track(self, have: Mapping[Role, int], want: Mapping[Role, int]) -> None:
        """Remember when each scale-up started; a later change of the same role keeps the start
        time until enough replicas are ready (``_read`` clears it)."""
        now = self.clock()
        for role in ROLES:
            ready, started = self._ready[role], self._started.get(role)
            if ready is not None and ready >= want[role]:
                self._started.pop(role, None)
            elif started is not None:
                started.asked = want[role]
            elif want[role] > have[role]:
                self._started[role] = _Started(want[role], now)

    def _other_writer(self, obj: dict[str, Any], role: Role, found: int) -> str:
        """One line: the spec's replicas of ``role`` are not what this connector wrote last."""
        service = self._services[role]
        adapter = self._adapters.get(role)
        if adapter is not None:
            owners = _managers(adapter.obj, ("f:spec", "f:replicas"))
            field = f"{ADAPTER_KIND} {adapter.name} spec.replicas"
        else:
            owners = replicas_managers(obj, service)
            field = _replicas_field(obj, service)
        others = [o for o in owners if o[0] != FIELD_MANAGER] or owners
        who = (
            ", ".join(f"'{m}' ({op} at {t or 'unknown time'})" for m, op, t in others)
            if others
            else "an unknown manager (no managedFields entry owns it)"
        )
        return (
            f"warning: {field} is {found}, not the {self._written[role]} "
            f"{FIELD_MANAGER} wrote, last changed by {who}"
        )


# -- pure helpers over the DGD object (both shapes) ---------------------------------------------
def _is_components(obj: Mapping[str, Any]) -> bool:
    """Whether the DGD has v1beta1's shape (``spec.components``) rather than ``spec.services``."""
    spec = obj.get("spec") or {}
    return "components" in spec or (
        str(obj.get("apiVersion", "")).endswith("/v1beta1") and "services" not in spec
    )


def _spec_services(obj: Mapping[str, Any], where: str) -> dict[str, dict[str, Any]]:
    services = (obj.get("spec") or {}).get("services")
    if not isinstance(services, dict) or not services:
        raise InputError(f"{where}: spec.services is missing or empty")
    return {str(k): (v if isinstance(v, dict) else {}) for k, v in services.items()}


def _components(obj: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    components = (obj.get("spec") or {}).get("components")
    if not isinstance(components, list) or not components:
        raise InputError(f"{where}: spec.components is missing or empty")
    return [c if isinstance(c, dict) else {} for c in components]


def _workers(obj: Mapping[str, Any], where: str) -> dict[str, dict[str, Any]]:
    """The DGD's services (v1alpha1) or components (v1beta1), by name."""
    if _is_components(obj):
        return {str(c.get("name")): c for c in _components(obj, where)}
    return _spec_services(obj, where)


def _replicas_field(obj: Mapping[str, Any], service: str) -> str:
    """Where a service's replicas are written, for messages."""
    if _is_components(obj):
        return f"spec.components[name={service}].replicas"
    return f"spec.services.{service}.replicas"


def resolve_services(obj: Mapping[str, Any], where: str) -> dict[Role, str]:
    """Service name per role: ``subComponentType`` (v1beta1: ``type``), then the conventions of
    the module docstring."""
    components = _is_components(obj)
    services = _workers(obj, where)
    rules = ("type", "name") if components else ("subComponentType", "componentType", "name")
    hint = "type" if components else "subComponentType"
    out: dict[Role, str] = {}
    for role in ROLES:
        for rule in rules:
            found = sorted(n for n, s in services.items() if _matches(rule, role, n, s))
            if len(found) == 1:
                out[role] = found[0]
                break
            if len(found) > 1:
                raise InputError(
                    f"{where}: several {role} services by {rule}: {', '.join(found)}; "
                    f"set {hint}: {role} on exactly one"
                )
        else:
            raise InputError(
                f"{where}: no {role} worker among services {', '.join(sorted(services))} "
                f"(expected {hint}: {role})"
            )
    return out


def _matches(rule: str, role: Role, name: str, service: Mapping[str, Any]) -> bool:
    if rule == "type":  # v1beta1: a component's type is the role, or "worker" (aggregated)
        return bool(service.get("type") == role)
    sub = service.get("subComponentType")
    if rule == "subComponentType":
        return bool(sub == role)
    if sub:  # the conventions are for services without a subComponentType only
        return False
    ctype = service.get("componentType", service.get("type"))
    if rule == "componentType":
        return bool(ctype == role)
    return role in name.lower() and ctype not in ("frontend", "planner", "epp")


def spec_replicas(
    service: Mapping[str, Any], name: str, where: str, field: str | None = None
) -> int:
    """A service's (or component's, or adapter's) ``replicas``; absent → 1 (the Kubernetes
    default for a workload). ``field`` names it in the error (default
    ``spec.services.<name>.replicas``)."""
    value = service.get("replicas", 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        field = field or f"spec.services.{name}.replicas"
        raise InputError(f"{where}: {field} must be an integer >= 0, got {value!r}")
    return value


def ready_replicas(obj: Mapping[str, Any], service: str) -> int | None:
    """``status.services.<service>`` (v1beta1: ``status.components.<service>``)
    ``readyReplicas``, else ``availableReplicas``; None if neither."""
    status_map = (obj.get("status") or {}).get("components" if _is_components(obj) else "services")
    status = (status_map or {}).get(service) if isinstance(status_map, dict) else None
    if not isinstance(status, dict):
        return None
    for key in ("readyReplicas", "availableReplicas"):
        value = status.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


def _gpu_limit(
    obj: Mapping[str, Any], workers: Mapping[str, Mapping[str, Any]], name: str
) -> tuple[Any, str]:
    """(the GPU limit of one engine as written, its field path): v1alpha1
    ``resources.limits.gpu``; v1beta1 the ``nvidia.com/gpu`` limit of the pod template's
    ``main`` container (else its first)."""
    worker = workers[name]
    if not _is_components(obj):
        gpu = (((worker.get("resources") or {}).get("limits")) or {}).get("gpu")
        return gpu, f"spec.services.{name}.resources.limits.gpu"
    containers = ((worker.get("podTemplate") or {}).get("spec") or {}).get("containers") or []
    containers = [c for c in containers if isinstance(c, dict)]
    main = next((c for c in containers if c.get("name") == "main"), None)
    main = main if main is not None else (containers[0] if containers else {})
    limits = (main.get("resources") or {}).get("limits") or {}
    cname = main.get("name", "main")
    field = f"spec.components[name={name}].podTemplate.spec.containers[name={cname}]"
    return limits.get(GPU_RESOURCE), f"{field}.resources.limits.{GPU_RESOURCE}"


def replicas_managers(obj: Mapping[str, Any], service: str) -> list[tuple[str, str, str]]:
    """(manager, operation, time) of the ``managedFields`` entries owning the service's
    ``replicas`` (fieldsV1 ``f:spec`` → ``f:services`` → ``f:<service>`` → ``f:replicas``;
    v1beta1: ``f:spec`` → ``f:components`` → ``k:{"name":"<service>"}`` → ``f:replicas``, or the
    whole ``f:components`` list where a manager owns it atomically)."""
    if not _is_components(obj):
        return _managers(obj, ("f:spec", "f:services", f"f:{service}", "f:replicas"))
    key = "k:" + json.dumps({"name": service}, separators=(",", ":"))
    return _managers(obj, ("f:spec", "f:components", key, "f:replicas")) or _managers(
        obj, ("f:spec", "f:components"), leaf_only=True
    )


def _managers(
    obj: Mapping[str, Any], steps: tuple[str, ...], leaf_only: bool = False
) -> list[tuple[str, str, str]]:
    """(manager, operation, time) of the ``managedFields`` entries whose fieldsV1 hold ``steps``
    (``leaf_only``: where the last step owns the whole value, ``{}``)."""
    out = []
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        node: Any = entry.get("fieldsV1") or {}
        for step in steps:
            node = node.get(step) if isinstance(node, dict) else None
        if node is not None and (not leaf_only or node == {}):
            out.append(
                (
                    str(entry.get("manager", "?")),
                    str(entry.get("operation", "?")),
                    str(entry.get("time", "")),
                )
            )
    return out


def _positive_int(value: object, field: str) -> int:
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
        raise InputError(f"{field} must be a whole number of GPUs >= 1, got {value!r}")
    return int(text)


# -- construction for the CLI -------------------------------------------------------------------
def connect_kubernetes_connector(
    dgd: str,
    namespace: str | None,
    kubeconfig: Path | None,
    context: str | None,
    ready_timeout_s: float,
    say: Callable[[str], None] | None = None,
) -> KubernetesConnector:
    """Load the cluster config (kubeconfig, or the pod's service account when no kubeconfig is
    given or found and ``KUBERNETES_SERVICE_HOST`` is set) and build the connector; the
    namespace defaults to the context's (in-cluster: the pod's). No request is sent."""
    client = KubeClient(kubeconfig, context).connect()
    return KubernetesConnector(
        client,
        dgd,
        namespace or client.default_namespace,
        ready_timeout_s=ready_timeout_s,
        say=say,
    )
