"""The Kubernetes API boundary: the one door of dynamo-plan to a cluster.

:class:`KubeClient` speaks REST through ``kubernetes.client.ApiClient`` (the official client's
transport, auth and TLS from a kubeconfig, or a pod's service account). Other modules use only
its typed surface, never a URL:

* reads: :meth:`~KubeClient.version`, :meth:`~KubeClient.get` (None when absent),
  :meth:`~KubeClient.list_objects` (label / field selectors; None when the collection is not
  served, e.g. a CRD not installed);
* writes: :meth:`~KubeClient.create` (POST), :meth:`~KubeClient.apply` (server-side apply with a
  field manager, ``force``, ``dryRun``), :meth:`~KubeClient.apply_status` (the same on the
  ``/status`` subresource), :meth:`~KubeClient.merge_patch` (RFC 7386, how the planner scales a
  v1alpha1 DGD's services), :meth:`~KubeClient.json_patch` (RFC 6902: one item of a list, a
  v1beta1 DGD's ``spec.components``), :meth:`~KubeClient.delete` (with ``propagationPolicy``),
  :meth:`~KubeClient.scale` (read or set ``spec.replicas`` through the ``/scale`` subresource,
  an ``autoscaling/v1`` ``Scale``: how the planner scales a DynamoGraphDeploymentScalingAdapter);
* waiting: :meth:`~KubeClient.wait` / :meth:`~KubeClient.wait_all`, the one poll loop (GET
  every ``poll_s`` seconds until a predicate holds or ``timeout_s`` passes; clock and sleep
  injectable) behind ``deploy.apply.wait_ready`` and the profiling Job wait.

There is no ``watch``: its callers would be these waits, and a watch would hold a connection
open for real seconds that the waits' injected clock cannot shorten, answer nothing for an
object that does not change (the waits report every poll), and need a second code path for
servers or proxies that end watches early. The ``kubernetes.dynamic`` client is not used: its
discovery adds requests (and a cache file) before every first use of a kind, and its errors
would need a second translation; the kinds dynamo-plan touches are few and fixed (:data:`KINDS`
and the read-only kinds below), so their REST paths are built here, in :meth:`KubeClient.path`.

Every failure leaves this module as :class:`~dynamo_plan.errors.ClusterError` (one line naming
the server; ``status`` and ``reason`` carry the HTTP status and the ``Status`` reason, so callers
test ``e.status == 403``, never the text) or, for a server-side-apply conflict,
:class:`ApplyConflict`, whose other field managers come from the live object's
``managedFields`` (:func:`conflict_managers`). A kubeconfig that is not UTF-8 or not YAML is the
user's input: :class:`~dynamo_plan.errors.InputError`.

Retries: 429 and 5xx (500, 502, 503, 504) are retried by urllib3's ``Retry`` inside the
transport (any method, at most ``retries`` times per call); a stale write (409 ``Conflict``) by
this module, at most ``retries`` times. The delay before retry k (k = 0, 1, …) is the
``Retry-After`` header when present (seconds or an HTTP date, capped at
:data:`RETRY_AFTER_MAX_S`), else ``backoff_s`` · 2^k seconds. Connection errors and timeouts are
not retried.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from dynamo_plan.adapters.kube_kinds import (
    CRD,
    EVENT,
    GPU_PRODUCT_LABEL,
    GPU_RESOURCE,
    KINDS,
    NODE,
    SCALING_ADAPTERS,
    SECRET,
    SELF_SUBJECT_ACCESS_REVIEW,
    KindInfo,
    allocatable_gpus,
    kind_info,
)
from dynamo_plan.errors import ClusterError, InputError

if TYPE_CHECKING:
    from urllib3.util.retry import Retry

__all__ = [
    "CRD",
    "EVENT",
    "GPU_PRODUCT_LABEL",
    "GPU_RESOURCE",
    "JSON_PATCH",
    "KINDS",
    "MERGE_PATCH",
    "NODE",
    "RETRY_AFTER_MAX_S",
    "SCALING_ADAPTERS",
    "SECRET",
    "SELF_SUBJECT_ACCESS_REVIEW",
    "TRANSIENT_STATUSES",
    "ApplyConflict",
    "KindInfo",
    "KubeClient",
    "WaitTimeout",
    "allocatable_gpus",
    "conflict_managers",
    "kind_info",
]

APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
#: Answers retried by urllib3's ``Retry`` (too many requests, server errors).
TRANSIENT_STATUSES = (429, 500, 502, 503, 504)
#: The longest ``Retry-After`` honoured, in seconds.
RETRY_AFTER_MAX_S = 10


class WaitTimeout(ClusterError):
    """:meth:`KubeClient.wait` ran out of time (``status`` None, ``reason`` ``Timeout``);
    ``last`` is the last state the predicate described."""

    def __init__(self, message: str, last: str) -> None:
        super().__init__(message, reason="Timeout")
        self.last = last


#: What a wait predicate answers: True when done, else False or a description of what is still
#: awaited (used in the timeout message).
Verdict = bool | str


class ApplyConflict(InputError):
    """Server-side apply refused: fields (``fields``, dotted paths as the server names them)
    owned by other field managers (``managers``) would change."""

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


def _backoff_s(attempt: int, backoff_s: float, retry_after: float | None) -> float:
    """The delay before retry ``attempt`` (0-based): Retry-After (capped), else exponential."""
    if retry_after is not None:
        return min(float(RETRY_AFTER_MAX_S), max(0.0, retry_after))
    return float(backoff_s * 2**attempt)


def _status_retry(retries: int, backoff_s: float, pause: Callable[[float], None]) -> Retry:
    """urllib3 ``Retry`` for :data:`TRANSIENT_STATUSES` on any method, at most ``retries``
    times, sleeping (through ``pause``) as the module doc says; the last answer is returned,
    not raised. Connection errors, read errors and redirects are not retried."""
    from urllib3.exceptions import InvalidHeader
    from urllib3.response import BaseHTTPResponse
    from urllib3.util.retry import Retry

    class StatusRetry(Retry):
        """``Retry`` whose sleep is injectable and whose backoff starts at ``backoff_s``."""

        pause: Callable[[float], None] = staticmethod(time.sleep)
        base_s: float = 0.2

        def new(self, **kw: Any) -> StatusRetry:
            out = super().new(**kw)
            out.pause, out.base_s = self.pause, self.base_s
            return out

        def sleep(self, response: BaseHTTPResponse | None = None) -> None:
            after = None
            if response is not None:
                try:
                    after = self.get_retry_after(response)
                except InvalidHeader:
                    after = None
            self.pause(_backoff_s(len(self.history) - 1, self.base_s, after))

    retry = StatusRetry(
        total=None,
        connect=0,
        read=0,
        redirect=0,
        other=0,
        status=retries,
        allowed_methods=None,  # every method, POST and PATCH included
        status_forcelist=TRANSIENT_STATUSES,
        raise_on_status=False,
        raise_on_redirect=False,
        respect_retry_after_header=True,
        retry_after_max=RETRY_AFTER_MAX_S,
    )
    retry.pause, retry.base_s = pause, backoff_s
    return retry


class KubeClient:
    """The typed client for the objects dynamo-plan reads and writes; ``connect()`` loads the
    kubeconfig.

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
        service account when neither exists in a pod). ClusterError when it is missing or
        names no usable cluster; InputError when it is not UTF-8 text or not YAML."""
        if self._api is not None:
            return self
        import yaml
        from kubernetes import client, config  # the client loads slowly: import on first use
        from kubernetes.config.config_exception import ConfigException

        where = str(self.kubeconfig) if self.kubeconfig else "the default kubeconfig"
        if self.kubeconfig is not None and not self.kubeconfig.is_file():
            raise ClusterError(f"kubeconfig {self.kubeconfig} not found")
        if self.kubeconfig is None and _in_cluster_only():
            conf, self.default_namespace = _in_cluster_config()
            return self._use(conf)
        if self.kubeconfig is not None:
            _check_kubeconfig_text(self.kubeconfig)
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
        except UnicodeDecodeError as e:  # $KUBECONFIG / ~/.kube/config (a given file is checked)
            raise InputError(f"cannot load {where}: not UTF-8 text (byte {e.start})") from e
        except (ConfigException, ValueError, TypeError, KeyError, OSError) as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise ClusterError(f"cannot load {where}: {msg}") from e
        except yaml.YAMLError as e:  # $KUBECONFIG / ~/.kube/config (a given file is checked)
            problem = getattr(e, "problem", None) or type(e).__name__
            raise InputError(f"cannot load {where}: not valid YAML ({problem})") from e
        if self.context:
            chosen = next((c for c in _contexts if c.get("name") == self.context), active)
        else:
            chosen = active
        self.default_namespace = ((chosen or {}).get("context") or {}).get("namespace") or "default"
        return self._use(conf)

    def _use(self, conf: Any) -> KubeClient:
        """Talk to the cluster ``conf`` (a ``kubernetes.client.Configuration``) describes, with
        urllib3 retrying the transient answers (module doc)."""
        from kubernetes import client

        conf.retries = _status_retry(self.retries, self.backoff_s, lambda s: self.sleep(s))
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
        """The raw REST call behind the typed methods (and the tests' stand-in helpers); the
        rest of dynamo-plan calls the typed methods. Returns (status, decoded JSON); 404 →
        (404, None).

        Raises ClusterError (one line naming the server, with ``status`` and ``reason``) for any
        other failure, and ApplyConflict (``managers`` empty: :meth:`apply` fills them in) for a
        409 with ``FieldManagerConflict`` causes.
        """
        self.connect()
        # The client's transport serialises bodies itself for JSON content types; a YAML
        # content type (server-side apply) takes the JSON text as is (JSON is valid YAML).
        json_body = "json" in content_type.lower()
        payload = body if json_body or body is None else json.dumps(body)
        for attempt in range(self.retries + 1):
            status, phrase, headers, data = self._send(method, path, query, payload, content_type)
            if 200 <= status < 300:
                try:
                    return status, json.loads(data) if data else None
                except ValueError as e:
                    raise ClusterError(
                        f"Kubernetes API at {self.server} answered {method} {path} with non-JSON",
                        status=status,
                    ) from e
            if status == 404:
                return 404, None
            reason, message, causes = _status_message(data)
            conflicts = [c for c in causes if c.get("type") == "FieldManagerConflict"]
            if status == 409 and conflicts:
                fields = [str(c.get("field", "")) for c in conflicts]
                raise ApplyConflict(_one_line(message), [], fields)
            if status == 409 and reason == "Conflict" and attempt < self.retries:
                retry_after = _seconds(headers.get("Retry-After"))
                self.sleep(_backoff_s(attempt, self.backoff_s, retry_after))
                continue
            raise ClusterError(
                f"Kubernetes API at {self.server}: {method} {path} → {status} "
                f"{reason or phrase}: {_one_line(message)}",
                status=status,
                reason=reason or phrase or None,
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(
        self, method: str, path: str, query: dict[str, str] | None, payload: Any, ctype: str
    ) -> tuple[int, str, Mapping[str, str], bytes]:
        """One HTTP exchange (urllib3 retrying 429/5xx): status, phrase, headers, body."""
        import urllib3

        headers = {"Accept": "application/json", "Content-Type": ctype}
        try:
            _m, url, hdrs, _b, _p = self._api.param_serialize(
                method,
                path,
                query_params=list((query or {}).items()),
                header_params=headers,
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
        return int(resp.status), str(resp.reason or ""), resp.headers, data or b""

    # -- objects ---------------------------------------------------------------------------------
    @staticmethod
    def path(
        info: KindInfo,
        namespace: str | None,
        name: str | None = None,
        subresource: str | None = None,
    ) -> str:
        """The REST path of a collection, an object or its subresource (``status``, ``scale``)."""
        if info.namespaced:
            if not namespace:
                raise ValueError(f"{info.kind} is namespaced: a namespace is needed")
            base = f"{info.prefix}/namespaces/{quote(namespace, safe='')}/{info.plural}"
        else:
            base = f"{info.prefix}/{info.plural}"
        if name is None:
            return base
        path = f"{base}/{quote(name, safe='')}"
        return path if subresource is None else f"{path}/{subresource}"

    def version(self) -> dict[str, Any]:
        """``GET /version`` (``gitVersion``, …); empty when the server answers none."""
        _status, out = self.request("GET", "/version")
        return out if isinstance(out, dict) else {}

    def get(self, info: KindInfo, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The live object, or None when absent (``namespace`` None for a cluster-scoped kind)."""
        status, obj = self.request("GET", self.path(info, namespace, name))
        return None if status == 404 or not isinstance(obj, dict) else obj

    def list_objects(
        self,
        info: KindInfo,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]] | None:
        """The items of a collection (filtered by the selectors), or None when the collection is
        not served (404: e.g. its CRD is not installed)."""
        query = {}
        if label_selector:
            query["labelSelector"] = label_selector
        if field_selector:
            query["fieldSelector"] = field_selector
        status, out = self.request("GET", self.path(info, namespace), query or None)
        if status == 404:
            return None
        items = out.get("items") if isinstance(out, dict) else None
        return [i for i in items or [] if isinstance(i, dict)]

    def create(
        self, info: KindInfo, namespace: str | None, obj: dict[str, Any]
    ) -> dict[str, Any] | None:
        """POST ``obj`` to its collection; the created object (for a review: with its status),
        or None when the collection is not served (404)."""
        status, out = self.request("POST", self.path(info, namespace), body=obj)
        return None if status == 404 or not isinstance(out, dict) else out

    def apply(
        self,
        info: KindInfo,
        namespace: str,
        obj: dict[str, Any],
        field_manager: str,
        force: bool = False,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Server-side apply ``obj``; returns the object as the server would store it.

        ApplyConflict when fields owned by other managers would change (without ``force``);
        its ``managers`` are read from the live object's ``managedFields``."""
        name = obj["metadata"]["name"]
        out = self._apply(info, namespace, obj, field_manager, force, dry_run, None)
        if out is None:
            raise ClusterError(
                f"Kubernetes API at {self.server}: apply of {info.kind}/{name} answered 404; "
                "is the CRD installed?",
                status=404,
                reason="NotFound",
            )
        return out

    def apply_status(
        self,
        info: KindInfo,
        namespace: str,
        obj: dict[str, Any],
        field_manager: str,
        force: bool = False,
    ) -> dict[str, Any] | None:
        """Server-side apply ``obj``'s ``status`` to the ``/status`` subresource; the stored
        object, or None when the object is gone (404)."""
        return self._apply(info, namespace, obj, field_manager, force, False, "status")

    def _apply(
        self,
        info: KindInfo,
        namespace: str,
        obj: dict[str, Any],
        field_manager: str,
        force: bool,
        dry_run: bool,
        subresource: str | None,
    ) -> dict[str, Any] | None:
        name = str(obj["metadata"]["name"])
        query = {"fieldManager": field_manager}
        if force:
            query["force"] = "true"
        if dry_run:
            query["dryRun"] = "All"
        path = self.path(info, namespace, name, subresource)
        try:
            status, out = self.request("PATCH", path, query, obj, APPLY_PATCH)
        except ApplyConflict as e:
            live = self.get(info, namespace, name)
            managers = conflict_managers(live, e.fields, field_manager)
            raise ApplyConflict(str(e), managers, e.fields) from e
        return None if status == 404 or not isinstance(out, dict) else out

    def merge_patch(
        self,
        info: KindInfo,
        namespace: str,
        name: str,
        patch: dict[str, Any],
        field_manager: str | None = None,
    ) -> dict[str, Any] | None:
        """JSON merge patch (RFC 7386) of one object; the patched object, or None when absent.
        An ``Update`` operation: ``field_manager`` owns exactly the fields it changed."""
        return self._patch(info, namespace, name, patch, MERGE_PATCH, field_manager)

    def json_patch(
        self,
        info: KindInfo,
        namespace: str,
        name: str,
        ops: list[dict[str, Any]],
        field_manager: str | None = None,
    ) -> dict[str, Any] | None:
        """JSON patch (RFC 6902) of one object: ``ops`` such as ``{"op": "test", "path":
        "/spec/components/1/name", "value": "decode"}`` then ``{"op": "add", ...}``, for one item
        of a list (a merge patch replaces whole lists). The patched object, or None when absent;
        a failed ``test`` is the server's 422 ``Invalid`` (ClusterError)."""
        return self._patch(info, namespace, name, ops, JSON_PATCH, field_manager)

    def _patch(
        self,
        info: KindInfo,
        namespace: str,
        name: str,
        body: Any,
        content_type: str,
        field_manager: str | None,
    ) -> dict[str, Any] | None:
        """One PATCH of ``content_type``; the patched object, or None when absent."""
        query = {"fieldManager": field_manager} if field_manager else None
        status, out = self.request(
            "PATCH", self.path(info, namespace, name), query, body, content_type
        )
        return None if status == 404 or not isinstance(out, dict) else out

    def scale(
        self,
        info: KindInfo,
        namespace: str,
        name: str,
        replicas: int | None = None,
        field_manager: str | None = None,
    ) -> dict[str, Any] | None:
        """The object's ``/scale`` subresource, an ``autoscaling/v1`` ``Scale``
        (``spec.replicas``, ``status.replicas``, ``status.selector``); with ``replicas``, first
        set ``spec.replicas`` by a merge patch of the subresource (an ``Update`` by
        ``field_manager``; a stale write, 409 ``Conflict``, is retried as every write is).
        None when the object, or its kind's scale subresource, is absent (404)."""
        path = self.path(info, namespace, name, "scale")
        if replicas is None:
            status, out = self.request("GET", path)
        else:
            if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
                raise ValueError(f"replicas must be an integer >= 0, got {replicas!r}")
            query = {"fieldManager": field_manager} if field_manager else None
            body = {"spec": {"replicas": replicas}}
            status, out = self.request("PATCH", path, query, body, MERGE_PATCH)
        return None if status == 404 or not isinstance(out, dict) else out

    def wait(
        self,
        info: KindInfo,
        namespace: str | None,
        name: str,
        until: Callable[[dict[str, Any] | None], Verdict],
        timeout_s: float,
        poll_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> dict[str, Any] | None:
        """Poll one object (None when absent) until ``until`` answers True; returns the object
        it accepted. :meth:`wait_all` for one object."""
        refs = [(info, namespace, name)]
        return self.wait_all(refs, lambda objs: until(objs[0]), timeout_s, poll_s, clock, sleep)[0]

    def wait_all(
        self,
        refs: Sequence[tuple[KindInfo, str | None, str]],
        until: Callable[[list[dict[str, Any] | None]], Verdict],
        timeout_s: float,
        poll_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> list[dict[str, Any] | None]:
        """The poll loop: GET every object of ``refs`` (kind, namespace, name; None for an
        absent one) and ask ``until`` about them, every ``poll_s`` seconds (``sleep``), until it
        answers True; returns the objects it accepted. ``until`` may raise to stop early (a
        failed Job, a deleted object).

        After ``timeout_s`` seconds (``clock``) :class:`WaitTimeout`: ``timed out after T s
        waiting for <what>``, where ``<what>`` is ``until``'s last answer when that was a
        string, else the objects' ``Kind namespace/name``. The objects are always read at least
        once, and once more after the deadline has passed."""
        deadline = clock() + timeout_s
        while True:
            live = [self.get(info, namespace, name) for info, namespace, name in refs]
            verdict = until(live)
            if verdict is True:
                return live
            if clock() >= deadline:
                last = verdict if isinstance(verdict, str) and verdict else ""
                what = last or ", ".join(
                    f"{i.kind} {ns + '/' if ns else ''}{n}" for i, ns, n in refs
                )
                raise WaitTimeout(f"timed out after {timeout_s:g} s waiting for {what}", last)
            sleep(min(poll_s, max(0.0, deadline - clock())))

    def delete(
        self,
        info: KindInfo,
        namespace: str,
        name: str,
        dry_run: bool = False,
        propagation: str | None = None,
    ) -> bool:
        """Delete the object (``propagation``: ``Background``, ``Foreground`` or ``Orphan`` for
        its dependents, e.g. a Job's pods); False when it was not there."""
        query = {"dryRun": "All"} if dry_run else {}
        if propagation:
            query["propagationPolicy"] = propagation
        status, _ = self.request("DELETE", self.path(info, namespace, name), query or None)
        return status != 404


def conflict_managers(
    live: Mapping[str, Any] | None, fields: Sequence[str], field_manager: str
) -> list[str]:
    """The field managers (sorted) whose ``managedFields`` entries own any of ``fields`` (the
    dotted paths of a conflict, ``.spec.services.decode.replicas``), other than
    ``field_manager``'s own Apply entry. When no path can be followed (list items), every other
    manager of the object; ``["unknown"]`` when there is none."""
    entries = [
        e
        for e in ((live or {}).get("metadata") or {}).get("managedFields") or []
        if isinstance(e, dict)
        and e.get("manager")
        and (e.get("manager"), e.get("operation")) != (field_manager, "Apply")
    ]
    owners = {
        str(e["manager"])
        for e in entries
        if any(_owns(e.get("fieldsV1") or {}, f.lstrip(".")) for f in fields)
    }
    if not owners:
        owners = {str(e["manager"]) for e in entries}
    return sorted(owners) or ["unknown"]


def _owns(tree: Any, rest: str) -> bool:
    """Whether a ``fieldsV1`` tree (``{"f:spec": {"f:replicas": {}}}``) holds the dotted path
    ``rest``; keys may contain dots (``f:app.kubernetes.io/name``), so each key is tried as a
    prefix of the path."""
    if not isinstance(tree, dict):
        return False
    for key, sub in tree.items():
        if not isinstance(key, str) or not key.startswith("f:"):
            continue
        name = key[2:]
        if rest == name or (rest.startswith(name + ".") and _owns(sub, rest[len(name) + 1 :])):
            return True
    return False


def _check_kubeconfig_text(path: Path) -> None:
    """InputError (one line) when the kubeconfig file is not UTF-8 text or not YAML, or is YAML
    but not a mapping; the rest (clusters, contexts, users) is the client's to check."""
    import yaml

    from dynamo_plan.formats.files import decode_text

    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read kubeconfig {path}: {e.strerror or e}") from e
    text = decode_text(raw, f"kubeconfig {path}")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or type(e).__name__
        raise InputError(f"kubeconfig {path}{at}: not valid YAML ({problem})") from e
    if doc is not None and not isinstance(doc, dict):
        raise InputError(
            f"kubeconfig {path}: expected a mapping (apiVersion, clusters, contexts, users), "
            f"got a {type(doc).__name__}"
        )


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


def _seconds(retry_after: str | None) -> float | None:
    """A ``Retry-After`` header in seconds (None when absent or not a number of seconds)."""
    if retry_after is None:
        return None
    try:
        return float(retry_after)
    except ValueError:
        return None


def _one_line(e: object) -> str:
    text = str(e).strip()
    return " ".join(text.split()) if text else type(e).__name__
