"""``dynamo-plan doctor``: the troubleshooting table as checks, each a plain function.

Every check takes the Kubernetes adapter (:data:`KubeAdapter`, that is
:class:`~dynamo_plan.adapters.kubernetes.KubeClient`: its typed reads and ``server`` name) and
returns a :class:`Check`:
``ok`` True (✓), False (✗, with the ``fix``) or None (skipped, with the reason in ``detail``).
A check never raises for a cluster answer: a 403 Forbidden is reported as a ✗ naming the
permission needed. :func:`run_checks` runs them in order; when the cluster cannot be reached the
first check fails and the rest are skipped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import httpx

from dynamo_plan.adapters.kubernetes import (
    CRD,
    EVENT,
    GPU_PRODUCT_LABEL,
    GPU_RESOURCE,
    KINDS,
    NODE,
    SECRET,
    SELF_SUBJECT_ACCESS_REVIEW,
    KubeClient,
    allocatable_gpus,
)
from dynamo_plan.errors import ClusterError

__all__ = [
    "CRDS",
    "DEFAULT_PULL_SECRET",
    "PLANNER_VERBS",
    "Check",
    "KubeAdapter",
    "check_cluster",
    "check_crds",
    "check_gpus",
    "check_planner_rbac",
    "check_prometheus",
    "check_pull_secret",
    "check_stuck_dgdrs",
    "cluster_failed",
    "forbidden",
    "run_checks",
]

CRDS = (
    "dynamographdeployments.nvidia.com",
    "dynamographdeploymentrequests.nvidia.com",
)
DEFAULT_PULL_SECRET = "nvcr-imagepullsecret"  # the name Dynamo's docs use
PLANNER_VERBS = ("get", "list", "watch", "patch")
DGDR_KIND = KINDS[("nvidia.com/v1alpha1", "DynamoGraphDeploymentRequest")]
STUCK_STATES = ("Pending", "Profiling")
PROMETHEUS_TIMEOUT_S = 2.0
_SKIPPED_NO_CLUSTER = "skipped: the cluster is not reachable"


#: what every check takes: the one door to Kubernetes (its typed reads and ``server`` name)
KubeAdapter = KubeClient


@dataclass(frozen=True)
class Check:
    """One line of the report: ``ok`` None means skipped. ``unreachable``: the check failed
    because the outside service (the API server, Prometheus) did not answer usably — a
    connection error, a timeout, an error status — rather than because of what it answered;
    ``doctor`` exits 3 for such a failure and 1 for the others."""

    name: str
    ok: bool | None
    detail: str
    fix: str = ""
    unreachable: bool = False

    def row(self) -> dict[str, Any]:
        """The report's fields (name, ok, detail, fix)."""
        row = asdict(self)
        del row["unreachable"]
        return row


def forbidden(e: ClusterError) -> bool:
    """The API server refused the request (HTTP 403 Forbidden)."""
    return e.status == 403


def cluster_failed(name: str, e: ClusterError, needs: str, fix: str, denied_fix: str = "") -> Check:
    """The failed check ``name`` for an API error: a 403 names the permission it ``needs``
    (with ``denied_fix``, else ``fix``); any other error is ``unreachable`` (exit 3)."""
    if forbidden(e):
        return Check(name, False, f"forbidden: needs {needs}", denied_fix or fix)
    return Check(name, False, str(e), fix, unreachable=True)


def check_cluster(kube: KubeAdapter) -> Check:
    """GET /version: the API server answers."""
    try:
        version = kube.version()
    except ClusterError as e:
        return Check(
            "cluster",
            False,
            str(e),
            "check the kubeconfig / --context and that the API server is up (kubectl version)",
            unreachable=True,
        )
    git = version.get("gitVersion", "?")
    return Check("cluster", True, f"{kube.server} answers (Kubernetes {git})")


def check_crds(kube: KubeAdapter) -> Check:
    """GET apiextensions.k8s.io/v1 customresourcedefinitions/<name> for each Dynamo CRD."""
    fix = "install the Dynamo platform Helm chart (it installs the nvidia.com CRDs)"
    missing = []
    try:
        for name in CRDS:
            if kube.get(CRD, None, name) is None:
                missing.append(name)
    except ClusterError as e:
        return cluster_failed("crds", e, "get customresourcedefinitions", fix)
    if missing:
        return Check("crds", False, "missing: " + ", ".join(missing), fix)
    return Check("crds", True, "installed: " + ", ".join(CRDS))


def check_gpus(kube: KubeAdapter) -> Check:
    """Sum of ``status.allocatable["nvidia.com/gpu"]`` over nodes, with their GPU products."""
    fix = "install the NVIDIA GPU operator (or the device plugin) so nodes advertise nvidia.com/gpu"
    try:
        items = kube.list_objects(NODE) or []
    except ClusterError as e:
        denied = "grant a ClusterRole with list nodes, or ask the cluster admin"
        return cluster_failed("gpus", e, "list nodes (cluster-scoped) to count GPUs", fix, denied)
    total = 0
    products: set[str] = set()
    with_gpus = 0
    for node in items:
        n = allocatable_gpus(node)
        total += n
        with_gpus += n > 0
        product = ((node.get("metadata") or {}).get("labels") or {}).get(GPU_PRODUCT_LABEL)
        if n > 0 and product:
            products.add(str(product))
    if total == 0:
        return Check("gpus", False, f"no allocatable {GPU_RESOURCE} on {len(items)} node(s)", fix)
    names = ", ".join(sorted(products)) or "product label missing"
    return Check("gpus", True, f"{total} GPU(s) allocatable on {with_gpus} node(s): {names}")


def check_pull_secret(kube: KubeAdapter, namespace: str, secret: str) -> Check:
    """The image pull secret exists in ``namespace`` (skipped when ``secret`` is empty)."""
    if not secret:
        return Check("image-pull-secret", None, "skipped: --image-pull-secret is empty")
    fix = (
        f"kubectl create secret docker-registry {secret} -n {namespace} "
        "--docker-server=nvcr.io --docker-username='$oauthtoken' --docker-password=<NGC API key>"
    )
    try:
        found = kube.get(SECRET, namespace, secret)
    except ClusterError as e:
        return cluster_failed("image-pull-secret", e, "get secrets", fix)
    if found is None:
        return Check("image-pull-secret", False, f"secret {secret} not in {namespace}", fix)
    return Check("image-pull-secret", True, f"secret {secret} present in {namespace}")


def check_prometheus(url: str | None, timeout_s: float = PROMETHEUS_TIMEOUT_S) -> Check:
    """GET ``<url>/-/ready`` (httpx, ``timeout_s``); skipped without a URL."""
    if not url:
        return Check(
            "prometheus", None, "skipped: no --prometheus-url (or $PROMETHEUS_ENDPOINT) given"
        )
    fix = f"check that Prometheus runs and {url} is reachable from here (port-forward?)"
    ready = url.rstrip("/") + "/-/ready"
    try:
        resp = httpx.get(ready, timeout=timeout_s)
    except httpx.HTTPError as e:
        return Check(
            "prometheus", False, f"{ready}: {type(e).__name__}: {e}", fix, unreachable=True
        )
    if resp.status_code != 200:
        return Check(
            "prometheus", False, f"{ready} answered {resp.status_code}", fix, unreachable=True
        )
    return Check("prometheus", True, f"{ready} answered 200")


def check_planner_rbac(kube: KubeAdapter, namespace: str) -> Check:
    """SelfSubjectAccessReview for get/list/watch/patch dynamographdeployments in ``namespace``."""
    fix = (
        "apply the planner Role/RoleBinding (generate-dgd emits templates/rbac/planner.yaml): "
        "get, list, watch, patch on dynamographdeployments.nvidia.com"
    )
    denied = []
    try:
        for verb in PLANNER_VERBS:
            review = {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {
                    "resourceAttributes": {
                        "namespace": namespace,
                        "verb": verb,
                        "group": "nvidia.com",
                        "resource": "dynamographdeployments",
                    }
                },
            }
            out = kube.create(SELF_SUBJECT_ACCESS_REVIEW, None, review)
            if not ((out or {}).get("status") or {}).get("allowed"):
                denied.append(verb)
    except ClusterError as e:
        return Check("planner-rbac", False, str(e), fix, unreachable=not forbidden(e))
    if denied:
        return Check(
            "planner-rbac",
            False,
            f"denied in {namespace}: {', '.join(denied)} dynamographdeployments",
            fix,
        )
    return Check(
        "planner-rbac", True, f"{'/'.join(PLANNER_VERBS)} dynamographdeployments in {namespace}"
    )


def _event_time(event: dict[str, Any]) -> str:
    """ISO-8601 strings order by time; the newest of lastTimestamp / eventTime / creation."""
    meta = event.get("metadata") or {}
    return str(
        event.get("lastTimestamp")
        or event.get("eventTime")
        or event.get("firstTimestamp")
        or meta.get("creationTimestamp")
        or ""
    )


def _newest_events(kube: KubeAdapter, namespace: str, name: str, limit: int = 3) -> list[str]:
    items = kube.list_objects(EVENT, namespace, field_selector=f"involvedObject.name={name}")
    items = items or []
    items = [e for e in items if (e.get("involvedObject") or {}).get("name") == name]
    items.sort(key=_event_time, reverse=True)
    return [f"{e.get('reason', '?')}: {e.get('message', '')}".strip() for e in items[:limit]]


def check_stuck_dgdrs(kube: KubeAdapter, namespace: str) -> Check:
    """DGDRs whose ``status.state`` is Pending/Profiling, with their newest events as the reason."""
    fix = (
        "read the events (kubectl describe dgdr NAME); check the profiler image, pull secret "
        "and GPU quota, or delete and recreate the DGDR"
    )
    try:
        dgdrs = kube.list_objects(DGDR_KIND, namespace)
        if dgdrs is None:
            return Check("dgdr", None, "skipped: the DynamoGraphDeploymentRequest CRD is missing")
        stuck = []
        for item in dgdrs:
            state = (item.get("status") or {}).get("state")
            if state in STUCK_STATES:
                name = str((item.get("metadata") or {}).get("name", "?"))
                events = _newest_events(kube, namespace, name)
                why = "; ".join(events) if events else "no events"
                stuck.append(f"{name} ({state}): {why}")
        total = len(dgdrs)
    except ClusterError as e:
        return cluster_failed("dgdr", e, "list dynamographdeploymentrequests", fix)
    if stuck:
        return Check("dgdr", False, "stuck: " + " | ".join(stuck), fix)
    return Check("dgdr", True, f"{total} DGDR(s) in {namespace}, none Pending/Profiling")


def run_checks(
    kube: KubeAdapter,
    namespace: str,
    prometheus_url: str | None,
    pull_secret: str = DEFAULT_PULL_SECRET,
) -> list[Check]:
    """All checks in order; after an unreachable cluster the cluster checks are skipped."""
    first = check_cluster(kube)
    if not first.ok:
        names = ("crds", "gpus", "image-pull-secret", "prometheus", "planner-rbac", "dgdr")
        return [first, *(Check(n, None, _SKIPPED_NO_CLUSTER) for n in names)]
    return [
        first,
        check_crds(kube),
        check_gpus(kube),
        check_pull_secret(kube, namespace, pull_secret),
        check_prometheus(prometheus_url),
        check_planner_rbac(kube, namespace),
        check_stuck_dgdrs(kube, namespace),
    ]
