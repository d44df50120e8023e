"""``dynamo-plan doctor``: the troubleshooting table as checks, each a plain function.

Every check takes the Kubernetes adapter (anything with ``request(method, path, query, body)``
returning ``(status, json)`` and a ``server`` name, i.e.
:class:`~dynamo_plan.adapters.kubernetes.KubeClient`) and returns a :class:`Check`:
``ok`` True (✓), False (✗, with the ``fix``) or None (skipped, with the reason in ``detail``).
A check never raises for a cluster answer: a 403 Forbidden is reported as a ✗ naming the
permission needed. :func:`run_checks` runs them in order; when the cluster cannot be reached the
first check fails and the rest are skipped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from dynamo_plan.errors import ClusterError

__all__ = [
    "CRDS",
    "DEFAULT_PULL_SECRET",
    "GPU_PRODUCT_LABEL",
    "GPU_RESOURCE",
    "PLANNER_VERBS",
    "Check",
    "KubeAdapter",
    "allocatable_gpus",
    "check_cluster",
    "check_crds",
    "check_gpus",
    "check_planner_rbac",
    "check_prometheus",
    "check_pull_secret",
    "check_stuck_dgdrs",
    "forbidden",
    "run_checks",
]

CRDS = (
    "dynamographdeployments.nvidia.com",
    "dynamographdeploymentrequests.nvidia.com",
)
DEFAULT_PULL_SECRET = "nvcr-imagepullsecret"  # the name Dynamo's docs use
PLANNER_VERBS = ("get", "list", "watch", "patch")
GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
STUCK_STATES = ("Pending", "Profiling")
PROMETHEUS_TIMEOUT_S = 2.0
_SKIPPED_NO_CLUSTER = "skipped: the cluster is not reachable"


class KubeAdapter(Protocol):
    """The part of KubeClient the checks use."""

    server: str

    def request(
        self,
        method: str,
        path: str,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> tuple[int, Any]: ...


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
    """KubeClient words a refused request ``… → 403 Forbidden: …``."""
    return "→ 403" in str(e)


def check_cluster(kube: KubeAdapter) -> Check:
    """GET /version: the API server answers."""
    try:
        _status, version = kube.request("GET", "/version")
    except ClusterError as e:
        return Check(
            "cluster",
            False,
            str(e),
            "check the kubeconfig / --context and that the API server is up (kubectl version)",
            unreachable=True,
        )
    git = (version or {}).get("gitVersion", "?") if isinstance(version, dict) else "?"
    return Check("cluster", True, f"{kube.server} answers (Kubernetes {git})")


def check_crds(kube: KubeAdapter) -> Check:
    """GET apiextensions.k8s.io/v1 customresourcedefinitions/<name> for each Dynamo CRD."""
    fix = "install the Dynamo platform Helm chart (it installs the nvidia.com CRDs)"
    missing = []
    try:
        for name in CRDS:
            status, _crd = kube.request(
                "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
            )
            if status == 404:
                missing.append(name)
    except ClusterError as e:
        if forbidden(e):
            return Check("crds", False, "forbidden: needs get customresourcedefinitions", fix)
        return Check("crds", False, str(e), fix, unreachable=True)
    if missing:
        return Check("crds", False, "missing: " + ", ".join(missing), fix)
    return Check("crds", True, "installed: " + ", ".join(CRDS))


def allocatable_gpus(node: dict[str, Any]) -> int:
    """``status.allocatable["nvidia.com/gpu"]`` of a node (0 when absent or not a number)."""
    raw = str(((node.get("status") or {}).get("allocatable") or {}).get(GPU_RESOURCE, "0"))
    try:
        return int(raw)
    except ValueError:
        return 0


def check_gpus(kube: KubeAdapter) -> Check:
    """Sum of ``status.allocatable["nvidia.com/gpu"]`` over nodes, with their GPU products."""
    fix = "install the NVIDIA GPU operator (or the device plugin) so nodes advertise nvidia.com/gpu"
    try:
        _status, nodes = kube.request("GET", "/api/v1/nodes")
    except ClusterError as e:
        if forbidden(e):
            return Check(
                "gpus",
                False,
                "forbidden: needs list nodes (cluster-scoped) to count GPUs",
                "grant a ClusterRole with list nodes, or ask the cluster admin",
            )
        return Check("gpus", False, str(e), fix, unreachable=True)
    items = (nodes or {}).get("items") or []
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
    path = f"/api/v1/namespaces/{quote(namespace, safe='')}/secrets/{quote(secret, safe='')}"
    try:
        status, _obj = kube.request("GET", path)
    except ClusterError as e:
        if forbidden(e):
            return Check("image-pull-secret", False, "forbidden: needs get secrets", fix)
        return Check("image-pull-secret", False, str(e), fix, unreachable=True)
    if status == 404:
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
            # JSON text sent as YAML: KubeClient.request serialises the body itself, and the
            # client's transport would encode it a second time for a JSON content type
            _status, out = kube.request(
                "POST",
                "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                body=review,
                content_type="application/yaml",
            )
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
    status, events = kube.request(
        "GET",
        f"/api/v1/namespaces/{quote(namespace, safe='')}/events",
        {"fieldSelector": f"involvedObject.name={name}"},
    )
    items = (events or {}).get("items") or [] if status != 404 else []
    items = [e for e in items if (e.get("involvedObject") or {}).get("name") == name]
    items.sort(key=_event_time, reverse=True)
    return [f"{e.get('reason', '?')}: {e.get('message', '')}".strip() for e in items[:limit]]


def check_stuck_dgdrs(kube: KubeAdapter, namespace: str) -> Check:
    """DGDRs whose ``status.state`` is Pending/Profiling, with their newest events as the reason."""
    fix = (
        "read the events (kubectl describe dgdr NAME); check the profiler image, pull secret "
        "and GPU quota, or delete and recreate the DGDR"
    )
    path = f"/apis/nvidia.com/v1alpha1/namespaces/{quote(namespace, safe='')}/dynamographdeploymentrequests"
    try:
        status, dgdrs = kube.request("GET", path)
        if status == 404:
            return Check("dgdr", None, "skipped: the DynamoGraphDeploymentRequest CRD is missing")
        stuck = []
        for item in (dgdrs or {}).get("items") or []:
            state = (item.get("status") or {}).get("state")
            if state in STUCK_STATES:
                name = str((item.get("metadata") or {}).get("name", "?"))
                events = _newest_events(kube, namespace, name)
                why = "; ".join(events) if events else "no events"
                stuck.append(f"{name} ({state}): {why}")
        total = len((dgdrs or {}).get("items") or [])
    except ClusterError as e:
        if forbidden(e):
            return Check("dgdr", False, "forbidden: needs list dynamographdeploymentrequests", fix)
        return Check("dgdr", False, str(e), fix, unreachable=True)
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
