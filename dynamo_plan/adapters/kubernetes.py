"""The Kubernetes API boundary: the official ``kubernetes`` client, errors translated here.

:class:`KubeClient` speaks REST through ``kubernetes.client.ApiClient`` (the official client's
transport, auth and TLS from a kubeconfig) for the few namespaced kinds dynamo-plan writes
(:data:`KINDS`). Every failure leaves this module as :class:`~dynamo_plan.errors.ClusterError`
(one line naming the server) or, for a server-side-apply conflict, :class:`ApplyConflict`.
Transient answers (409 stale write, 429, 5xx) are retried with exponential backoff:
delay_k = ``backoff_s`` · 2^k (k = 0, 1, …), at most ``retries`` retries; a ``Retry-After``
header, when present, is used instead (capped at 10 s).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from dynamo_plan.errors import ClusterError, InputError

__all__ = ["KINDS", "ApplyConflict", "KindInfo", "KubeClient", "kind_info"]

APPLY_PATCH = "application/apply-patch+yaml"


@dataclass(frozen=True)
class KindInfo:
    """Where a kind lives in the REST API: ``/api[s]/<group_version>/namespaces/NS/<plural>``."""

    api_version: str
    kind: str
    plural: str

    @property
    def prefix(self) -> str:
        return (
            f"/api/{self.api_version}"
            if "/" not in self.api_version
            else f"/apis/{self.api_version}"
        )


KINDS: dict[tuple[str, str], KindInfo] = {
    (k.api_version, k.kind): k
    for k in (
        KindInfo("nvidia.com/v1alpha1", "DynamoGraphDeployment", "dynamographdeployments"),
        KindInfo(
            "nvidia.com/v1alpha1", "DynamoGraphDeploymentRequest", "dynamographdeploymentrequests"
        ),
        KindInfo("v1", "ConfigMap", "configmaps"),
        KindInfo("v1", "ServiceAccount", "serviceaccounts"),
        KindInfo("rbac.authorization.k8s.io/v1", "Role", "roles"),
        KindInfo("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
        KindInfo("batch/v1", "Job", "jobs"),
    )
}


def kind_info(api_version: str, kind: str) -> KindInfo | None:
    """The REST location of ``apiVersion``/``kind``, or None when dynamo-plan does not handle it."""
    return KINDS.get((api_version, kind))


class ApplyConflict(InputError):
    """Server-side apply refused: fields owned by other managers (``managers``) would change."""

    def __init__(self, message: str, managers: list[str], fields: list[str]) -> None:
        super().__init__(message)
        self.managers = managers
        self.fields = fields


def _status_message(body: bytes) -> tuple[str, str, list[dict[str, Any]]]:
    """(reason, message, causes) of a Kubernetes ``Status`` body (empty strings when absent)."""
    try:
        status = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return "", body[:200].decode(errors="replace").strip(), []
    if not isinstance(status, dict):
        return "", "", []
    causes = (status.get("details") or {}).get("causes") or []
    return str(status.get("reason", "")), str(status.get("message", "")), list(causes)


class KubeClient:
    """A thin REST client for namespaced objects; ``connect()`` loads the kubeconfig.

    The constructor only stores its arguments; nothing is read or opened before a request.
    ``sleep`` is injectable so tests can check the backoff without waiting.
    """

    def __init__(
        self,
        kubeconfig: Path | None = None,
        context: str | None = None,
        retries: int = 4,
        backoff_s: float = 0.2,
        request_timeout_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.context = context
        self.retries = retries
        self.backoff_s = backoff_s
        self.request_timeout_s = request_timeout_s
        self.sleep = sleep
        self._api: Any = None
        self.server = "(kubeconfig not loaded)"
        self.default_namespace = "default"

    def connect(self) -> KubeClient:
        """Load the kubeconfig (``$KUBECONFIG`` / ``~/.kube/config`` when not given; a pod's
        service account when neither exists in a pod); ClusterError if bad."""
        if self._api is not None:
            return self
        from kubernetes import client, config  # the client loads slowly: import on first use
        from kubernetes.config.config_exception import ConfigException

        where = str(self.kubeconfig) if self.kubeconfig else "the default kubeconfig"
        if self.kubeconfig is not None and not self.kubeconfig.is_file():
            raise ClusterError(f"kubeconfig {self.kubeconfig} not found")
        if self.kubeconfig is None and _in_cluster_only():
            conf, self.default_namespace = _in_cluster_config()
            return self._use(conf)
        try:
            conf = client.Configuration()
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(self.kubeconfig) if self.kubeconfig else None,
                context=self.context,
                client_configuration=conf,
                persist_config=False,
            )
            _contexts, active = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
                config_file=str(self.kubeconfig) if self.kubeconfig else None
            )
        except (ConfigException, ValueError, TypeError, KeyError, OSError) as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise ClusterError(f"cannot load {where}: {msg}") from e
        if self.context:
            chosen = next((c for c in _contexts if c.get("name") == self.context), active)
        else:
            chosen = active
        self.default_namespace = ((chosen or {}).get("context") or {}).get("namespace") or "default"
        return self._use(conf)

    def _use(self, conf: Any) -> KubeClient:
        """Talk to the cluster ``conf`` (a ``kubernetes.client.Configuration``) describes."""
        from kubernetes import client

        conf.retries = 0  # retries are ours (below), not urllib3's
        self.server = conf.host
        self._api = client.ApiClient(conf)
        return self

    # -- transport -------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        """One REST call with retries; returns (status, decoded JSON). 404 → (404, None).

        Raises ClusterError (one line naming the server) for any other failure, and
        ApplyConflict for a 409 with ``FieldManagerConflict`` causes.
        """
        import urllib3

        self.connect()
        headers = {"Accept": "application/json", "Content-Type": content_type}
        # The client's transport serialises bodies itself for JSON content types; a YAML
        # content type (server-side apply) takes the JSON text as is (JSON is valid YAML).
        json_body = "json" in content_type.lower()
        payload = body if json_body or body is None else json.dumps(body)
        for attempt in range(self.retries + 1):
            try:
                _m, url, hdrs, _b, _p = self._api.param_serialize(
                    method,
                    path,
                    query_params=list((query or {}).items()),
                    header_params=dict(headers),
                    auth_settings=["BearerToken"],
                )
                resp = self._api.call_api(
                    method, url, header_params=hdrs, body=payload,
                    _request_timeout=self.request_timeout_s,
                )  # fmt: skip
                data = resp.read()
            except urllib3.exceptions.HTTPError as e:
                cause = getattr(e, "reason", None) or e
                raise ClusterError(
                    f"cannot reach the Kubernetes API at {self.server}: {_one_line(cause)}"
                ) from e
            except Exception as e:  # the client's own errors (ApiException status 0, …)
                raise ClusterError(
                    f"Kubernetes API at {self.server}: {type(e).__name__}: {_one_line(e)}"
                ) from e
            status = int(resp.status)
            if 200 <= status < 300:
                try:
                    return status, json.loads(data) if data else None
                except ValueError as e:
                    raise ClusterError(
                        f"Kubernetes API at {self.server} answered {method} {path} with non-JSON"
                    ) from e
            if status == 404:
                return 404, None
            reason, message, causes = _status_message(data)
            conflicts = [c for c in causes if c.get("type") == "FieldManagerConflict"]
            if status == 409 and conflicts:
                managers = sorted({_manager_of(str(c.get("message", ""))) for c in conflicts})
                fields = [str(c.get("field", "")) for c in conflicts]
                raise ApplyConflict(_one_line(message), managers, fields)
            transient = status in (429, 500, 502, 503, 504) or (
                status == 409 and reason == "Conflict"
            )
            if transient and attempt < self.retries:
                self.sleep(self._delay(attempt, resp.headers.get("Retry-After")))
                continue
            raise ClusterError(
                f"Kubernetes API at {self.server}: {method} {path} → {status} "
                f"{reason or resp.reason}: {_one_line(message)}"
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after is not None:
            try:
                return min(10.0, max(0.0, float(retry_after)))
            except ValueError:
                pass
        return float(self.backoff_s * 2**attempt)

    # -- objects ---------------------------------------------------------------------------------
    @staticmethod
    def path(info: KindInfo, namespace: str, name: str | None = None) -> str:
        base = f"{info.prefix}/namespaces/{quote(namespace, safe='')}/{info.plural}"
        return base if name is None else f"{base}/{quote(name, safe='')}"

    def get(self, info: KindInfo, namespace: str, name: str) -> dict[str, Any] | None:
        """The live object, or None when absent."""
        status, obj = self.request("GET", self.path(info, namespace, name))
        return None if status == 404 else obj

    def apply(
        self,
        info: KindInfo,
        namespace: str,
        obj: dict[str, Any],
        field_manager: str,
        force: bool = False,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Server-side apply ``obj``; returns the object as the server would store it."""
        name = obj["metadata"]["name"]
        query = {"fieldManager": field_manager}
        if force:
            query["force"] = "true"
        if dry_run:
            query["dryRun"] = "All"
        status, out = self.request(
            "PATCH", self.path(info, namespace, name), query, obj, APPLY_PATCH
        )
        if status == 404 or not isinstance(out, dict):
            raise ClusterError(
                f"Kubernetes API at {self.server}: apply of {info.kind}/{name} answered {status}; "
                "is the CRD installed?"
            )
        return out

    def delete(self, info: KindInfo, namespace: str, name: str, dry_run: bool = False) -> bool:
        """Delete the object; False when it was not there."""
        query = {"dryRun": "All"} if dry_run else None
        status, _ = self.request("DELETE", self.path(info, namespace, name), query)
        return status != 404


SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def _in_cluster_config() -> tuple[Any, str]:
    """A pod's service account (token, CA, namespace under ``SERVICE_ACCOUNT_DIR``): the client
    configuration and the namespace (``default`` when unreadable)."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    try:
        conf = client.Configuration()
        config.load_incluster_config(client_configuration=conf)  # type: ignore[no-untyped-call]
    except (ConfigException, OSError) as e:
        raise ClusterError(f"cannot load the in-cluster configuration: {_one_line(e)}") from e
    try:
        ns = (SERVICE_ACCOUNT_DIR / "namespace").read_text(encoding="utf-8").strip()
    except OSError:
        ns = ""
    return conf, ns or "default"


def _in_cluster_only() -> bool:
    """Inside a pod with no kubeconfig: ``KUBERNETES_SERVICE_HOST`` set, no ``$KUBECONFIG``, no
    ``~/.kube/config`` (then the service account is used, as kubectl does)."""
    return (
        bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
        and not os.environ.get("KUBECONFIG")
        and not (Path.home() / ".kube" / "config").is_file()
    )


def _manager_of(message: str) -> str:
    """``conflict with "planner" using …`` → ``planner``."""
    start = message.find('"')
    end = message.find('"', start + 1)
    return message[start + 1 : end] if 0 <= start < end else message


def _one_line(e: object) -> str:
    text = str(e).strip()
    return " ".join(text.split()) if text else type(e).__name__
