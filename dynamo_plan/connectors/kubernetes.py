"""The Kubernetes connector of ``plan run``: reads and scales the workers of one DGD.

The DynamoGraphDeployment (``nvidia.com/v1alpha1``) names its services in ``spec.services``;
the prefill and decode workers are the services whose ``subComponentType`` is ``prefill`` /
``decode`` (DESIGN.md §3). DGDs written before ``subComponentType`` existed are resolved by
convention, one step after the other until exactly one service matches: (1) ``componentType``
equal to the role, (2) a service that is not a frontend or planner whose name contains the role
(case-insensitive: ``VllmPrefillWorker``, ``decode``). Zero or several matches → InputError.

Serving replicas come from ``status.services.<service>``, the operator's
``ServiceReplicaStatus`` (ai-dynamo/dynamo ``deploy/operator/api/v1alpha1/
dynamographdeployment_types.go``): ``readyReplicas`` (set for PodClique, Deployment and
LeaderWorkerSet backings), else ``availableReplicas`` (set for Deployment and
PodCliqueScalingGroup). ``replicas`` counts every non-terminated pod, Pending ones included, so
it is never read as "serving"; a service with neither field (or no status) makes ``observe()``
answer ``None``.

Writes are JSON merge patches (RFC 7386) of ``spec.services.<service>.replicas`` only, sent with
``fieldManager=dynamo-plan-planner``. Merge patch rather than server-side apply because an apply
with a partial object would (a) conflict with whoever owns ``replicas`` now (``dynamo-plan``'s
own ``apply``, kubectl) and need ``force``, taking ownership away from them, and (b) remove the
other role's ``replicas`` field the next time only one role is applied, if this manager was its
only owner. A merge patch is an ``Update`` operation: it owns exactly the fields it changed.
No ``resourceVersion`` precondition is sent: only the replicas fields are written, and the
planner's newest decision is meant to win. 409/429/5xx answers are retried with backoff by
:class:`~dynamo_plan.adapters.kubernetes.KubeClient`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dynamo_plan.adapters.kubernetes import KINDS, KubeClient
from dynamo_plan.connectors.base import ScaleOutcome, ScaleTarget, ServingReplicas
from dynamo_plan.errors import ClusterError, InputError

__all__ = [
    "DGD_KIND",
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
    ) -> None:
        if ready_timeout_s <= 0:
            raise InputError(f"ready timeout must be > 0 s, got {ready_timeout_s}")
        self.client = client
        self.dgd = dgd
        self.namespace = namespace
        self.ready_timeout_s = ready_timeout_s
        self.clock = clock
        self.notes: list[str] = []
        self._written: dict[Role, int] = {}
        self._started: dict[Role, _Started] = {}
        self._ready: dict[Role, int | None] = {"prefill": None, "decode": None}
        self._services: dict[Role, str] = {}

    @property
    def where(self) -> str:
        return f"DynamoGraphDeployment {self.namespace}/{self.dgd}"

    # -- reading -----------------------------------------------------------------------------
    def _read(self) -> dict[str, Any]:
        obj = self.client.get(DGD_KIND, self.namespace, self.dgd)
        if obj is None:
            raise ClusterError(
                f"{self.where} not found at {self.client.server} "
                f"(kubectl get dgd {self.dgd} -n {self.namespace})"
            )
        self._services = resolve_services(obj, self.where)
        self._ready = {r: ready_replicas(obj, self._services[r]) for r in ROLES}
        for role in ROLES:  # a scale-up is done once enough replicas are ready
            started, ready = self._started.get(role), self._ready[role]
            if started is not None and ready is not None and ready >= started.asked:
                del self._started[role]
        return obj

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
        spec = _spec_services(self._read(), self.where)
        out: list[int] = []
        for role in ROLES:
            name = self._services[role]
            gpu = (((spec[name].get("resources") or {}).get("limits")) or {}).get("gpu")
            field = f"spec.services.{name}.resources.limits.gpu"
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
        spec = _spec_services(obj, self.where)
        have = {
            r: spec_replicas(spec[self._services[r]], self._services[r], self.where) for r in ROLES
        }
        remarks = [
            self._other_writer(obj, r, have[r])
            for r in ROLES
            if self._written.get(r, have[r]) != have[r]
        ]
        changes = {r: (have[r], want[r]) for r in ROLES if have[r] != want[r]}
        if changes:
            patch = {
                "spec": {
                    "services": {
                        self._services[r]: {"replicas": new} for r, (_old, new) in changes.items()
                    }
                }
            }
            patched = self.client.merge_patch(
                DGD_KIND, self.namespace, self.dgd, patch, field_manager=FIELD_MANAGER
            )
            if patched is None:
                raise ClusterError(f"{self.where} was deleted before its replicas could be patched")
        self._written = dict(want)
        self._track(have, want)
        remarks += [p.describe() for p in self.pending_roles()]
        moves = ", ".join(
            f"{r} {self._services[r]} {old}→{new}" for r, (old, new) in changes.items()
        )
        head = (
            f"patched {self.where}: {moves}"
            if changes
            else f"{self.where} already asks for prefill={want['prefill']} decode={want['decode']}"
        )
        detail = "; ".join([head, *remarks])
        return ScaleOutcome("applied" if changes else "unchanged", detail)

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
        owners = replicas_managers(obj, service)
        others = [o for o in owners if o[0] != FIELD_MANAGER] or owners
        who = (
            ", ".join(f"'{m}' ({op} at {t or 'unknown time'})" for m, op, t in others)
            if others
            else "an unknown manager (no managedFields entry owns it)"
        )
        return (
            f"warning: spec.services.{service}.replicas is {found}, not the {self._written[role]} "
            f"{FIELD_MANAGER} wrote, last changed by {who}"
        )


# -- pure helpers over the DGD object -----------------------------------------------------------
def _spec_services(obj: Mapping[str, Any], where: str) -> dict[str, dict[str, Any]]:
    services = (obj.get("spec") or {}).get("services")
    if not isinstance(services, dict) or not services:
        raise InputError(f"{where}: spec.services is missing or empty")
    return {str(k): (v if isinstance(v, dict) else {}) for k, v in services.items()}


def resolve_services(obj: Mapping[str, Any], where: str) -> dict[Role, str]:
    """Service name per role: ``subComponentType``, then the conventions of the module docstring."""
    services = _spec_services(obj, where)
    out: dict[Role, str] = {}
    for role in ROLES:
        for rule in ("subComponentType", "componentType", "name"):
            found = sorted(n for n, s in services.items() if _matches(rule, role, n, s))
            if len(found) == 1:
                out[role] = found[0]
                break
            if len(found) > 1:
                raise InputError(
                    f"{where}: several {role} services by {rule}: {', '.join(found)}; "
                    f"set subComponentType: {role} on exactly one"
                )
        else:
            raise InputError(
                f"{where}: no {role} worker among services {', '.join(sorted(services))} "
                f"(expected subComponentType: {role})"
            )
    return out


def _matches(rule: str, role: Role, name: str, service: Mapping[str, Any]) -> bool:
    sub = service.get("subComponentType")
    if rule == "subComponentType":
        return bool(sub == role)
    if sub:  # the conventions are for services without a subComponentType only
        return False
    ctype = service.get("componentType")
    if rule == "componentType":
        return bool(ctype == role)
    return role in name.lower() and ctype not in ("frontend", "planner")


def spec_replicas(service: Mapping[str, Any], name: str, where: str) -> int:
    """``spec.services.<name>.replicas``; absent → 1 (the Kubernetes default for a workload)."""
    value = service.get("replicas", 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(
            f"{where}: spec.services.{name}.replicas must be an integer >= 0, got {value!r}"
        )
    return value


def ready_replicas(obj: Mapping[str, Any], service: str) -> int | None:
    """``status.services.<service>.readyReplicas``, else ``availableReplicas``; None if neither."""
    status = ((obj.get("status") or {}).get("services") or {}).get(service)
    if not isinstance(status, dict):
        return None
    for key in ("readyReplicas", "availableReplicas"):
        value = status.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


def replicas_managers(obj: Mapping[str, Any], service: str) -> list[tuple[str, str, str]]:
    """(manager, operation, time) of the ``managedFields`` entries owning the service's
    ``replicas`` (fieldsV1 ``f:spec`` → ``f:services`` → ``f:<service>`` → ``f:replicas``)."""
    out = []
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        node: Any = entry.get("fieldsV1") or {}
        for step in ("f:spec", "f:services", f"f:{service}", "f:replicas"):
            node = node.get(step) if isinstance(node, dict) else None
        if node is not None:
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
) -> KubernetesConnector:
    """Load the cluster config (kubeconfig, or the pod's service account when no kubeconfig is
    given or found and ``KUBERNETES_SERVICE_HOST`` is set) and build the connector; the
    namespace defaults to the context's (in-cluster: the pod's). No request is sent."""
    client = KubeClient(kubeconfig, context).connect()
    return KubernetesConnector(
        client, dgd, namespace or client.default_namespace, ready_timeout_s=ready_timeout_s
    )
