"""A loopback stand-in for the Kubernetes API server, for tests.

The real API server (with etcd) cannot run here, so the tests talk real HTTP, through the
official ``kubernetes`` Python client, to this small threaded server on ``127.0.0.1``. It speaks
the Kubernetes REST protocol for the few resources dynamo-plan uses and nothing more:

* cluster-scoped ``apiextensions.k8s.io/v1`` ``customresourcedefinitions`` (GET one / LIST),
  none until a test calls :meth:`StandIn.install_crd` (the release's real CRD);
* for ``doctor``: cluster-scoped core ``v1`` ``nodes`` (LIST; :meth:`StandIn.add_node`),
  namespaced ``secrets`` and ``events`` (LIST filtered by ``fieldSelector`` ``a.b=v`` terms),
  ``authorization.k8s.io/v1`` ``selfsubjectaccessreviews`` (POST; denied per
  ``StandIn.denied``), and 403 ``Forbidden`` for any path naming a ``StandIn.forbidden`` plural;
* namespaced custom resources: every (kind, version) the CRDs of one Dynamo release serve
  (``StandIn(release=...)``, default the newest; the real CRDs in tests/data/dynamo/<release>/crds,
  read through tests/crd_schema.py): DGD and DGDR (``v1alpha1``; ``v1beta1`` in 1.x) and, from
  0.9 on, DynamoGraphDeploymentScalingAdapter, with the subresources their CRDs declare
  (``/status``; ``/scale`` at the CRD's ``specReplicasPath`` / ``statusReplicasPath`` /
  ``labelSelectorPath``, an ``autoscaling/v1`` ``Scale`` read by GET and written by PUT or PATCH).
  Every write of a custom resource is validated against its CRD version's schema as a
  structural-schema server would (unknown fields, types, enums, required, …) and refused with
  422 ``Invalid`` and a ``Status`` naming each field (``StandIn(validate=False)``: accepted as
  sent). Objects of each version are stored apart (no conversion between v1alpha1 and v1beta1);
* core ``v1`` ``configmaps`` and ``serviceaccounts``, ``rbac.authorization.k8s.io/v1`` ``roles``
  and ``rolebindings``, ``batch/v1`` ``jobs`` (with ``/status``; nothing runs them: a test that
  needs a Job to finish writes its status itself, as the Job controller would);
* verbs: GET (one object or a list), POST, PUT, PATCH and DELETE; PATCH takes
  ``application/apply-patch+yaml`` (server-side apply with ``fieldManager`` and ``force``) and
  ``application/merge-patch+json`` (RFC 7386) and ``application/json-patch+json`` (RFC 6902:
  add, remove, replace, test);
* ``metadata.resourceVersion`` (one global counter; a no-op write keeps it), ``uid``,
  ``generation`` (bumped when anything outside metadata and status changes),
  ``creationTimestamp`` and a simplified ``managedFields``: one entry per manager and operation
  (Apply / Update), listing the leaf fields it set (lists are atomic). Server-side apply fails
  with 409 and a ``FieldManagerConflict`` cause naming the other manager when the request
  changes a field another manager owns, unless ``force=true`` (then ownership moves). Fields a
  manager applied before and no longer applies are removed when nobody else owns them;
* 404 and 409 ``Status`` objects (409 ``AlreadyExists`` on create, 409 ``Conflict`` on a PUT with a
  stale ``resourceVersion``), ``dryRun=All`` (computed, not stored), the ``/status``
  subresource (writes to the main resource ignore ``status``; ``/status`` writes touch only it),
  and ``/version``, ``/api``, ``/apis`` discovery (enough for ``kubernetes.dynamic``);
* LIST filtered by ``labelSelector`` (comma-separated, ANDed terms ``k=v``, ``k==v``, ``k!=v``,
  ``k`` (exists) and ``!k``; no set-based ``in`` / ``notin``), on namespaced collections and nodes;
* ``?watch=true`` on a collection: ADDED / MODIFIED / DELETED events, one JSON object a line,
  from ``resourceVersion`` (or the current objects first) until ``timeoutSeconds``;
* failure injection for retry tests: :meth:`StandIn.inject_failures` makes the next N requests
  answer a given status (409 ``Conflict`` as from a stale write, 429 with ``Retry-After: 0``,
  5xx);
* playing a controller without timers: :meth:`StandIn.set_condition` writes a status condition
  of an existing object (LookupError when there is none: a controller cannot set the status of
  an object that does not exist, and a test that tries has a race), and :meth:`StandIn.on_get`
  runs an action right after a client has read an object (e.g. set Ready once a ``--wait`` has
  seen the object without it).

Not implemented: set-based label selectors, field selectors beyond ``a.b=v``, bookmarks,
strategic merge patch, admission, CEL validation rules, conversion between versions, finalizers,
garbage collection, and controllers (no operator creates scaling adapters or acts on them).
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from tests.k8s_standin_store import (
    DEFAULT_RELEASE,
    Collection,
    HttpError,
    Store,
    crd_resources,
    status_body,
)


class StandIn:
    """The running server: ``url``, ``store``, ``kubeconfig()``, ``inject_failures()``."""

    def __init__(self, release: str = DEFAULT_RELEASE, validate: bool = True) -> None:
        self.release = release
        self.store = Store(crd_resources(release, validate))
        self.failures: list[int] = []
        self.requests: list[tuple[str, str]] = []
        # for `doctor`: cluster-scoped core v1 nodes, plurals answering 403 Forbidden, and the
        # (verb, resource) pairs a SelfSubjectAccessReview denies ("*" matches any verb)
        self.nodes: list[dict] = []
        self.forbidden: set[str] = set()
        self.denied: set[tuple[str, str]] = set()
        # cluster-scoped apiextensions.k8s.io/v1 customresourcedefinitions, by name (none
        # installed until a test calls install_crd)
        self.crds: dict[str, dict] = {}
        # (plural, namespace, name) -> actions to run once, after the next GET that finds it
        self.get_hooks: dict[tuple[str, str, str], list[Callable[[], None]]] = {}
        handler = type("Handler", (_Handler,), {"standin": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        """Write a kubeconfig pointing at this server (context ``standin``) and return its path."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "standin", "cluster": {"server": self.url}}],
            "users": [{"name": "standin", "user": {}}],
            "contexts": [
                {
                    "name": "standin",
                    "context": {"cluster": "standin", "user": "standin", "namespace": namespace},
                }
            ],
            "current-context": "standin",
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def inject_failures(self, *codes: int) -> None:
        """The next ``len(codes)`` requests answer these HTTP status codes, in order."""
        with self.store.lock:
            self.failures.extend(codes)

    def install_crd(
        self, plural: str = "dynamographdeploymentrequests", group: str = "nvidia.com"
    ) -> None:
        """Install a CustomResourceDefinition ``<plural>.<group>`` (served by GET / LIST)."""
        from tests.crd_schema import crd_documents

        real = [
            c
            for c in crd_documents(self.release)
            if (c["spec"]["group"], c["spec"]["names"]["plural"]) == (group, plural)
        ]
        kinds = self.store.resources.kinds
        kind = next((k for (g, _v, p), k in kinds.items() if (g, p) == (group, plural)), "")
        crd = (
            real[0]
            if real
            else {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": f"{plural}.{group}"},
                "spec": {
                    "group": group,
                    "scope": "Namespaced",
                    "names": {"plural": plural, "kind": kind},
                    "versions": [{"name": "v1alpha1", "served": True, "storage": True}],
                },
            }
        )
        with self.store.lock:
            self.crds[crd["metadata"]["name"]] = crd

    def add_node(self, name: str, gpus: int = 0, product: str | None = None) -> None:
        """A Node with ``status.allocatable["nvidia.com/gpu"]`` and ``nvidia.com/gpu.product``."""
        labels = {"kubernetes.io/hostname": name}
        if product is not None:
            labels["nvidia.com/gpu.product"] = product
        allocatable = {"cpu": "64", "memory": "512Gi"}
        if gpus:
            allocatable["nvidia.com/gpu"] = str(gpus)
        with self.store.lock:
            self.nodes.append(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {"name": name, "labels": labels},
                    "status": {"allocatable": allocatable},
                }
            )

    def get(self, plural: str, namespace: str, name: str) -> dict | None:
        """The stored object (a copy), or None."""
        for (_g, _v, p, ns, n), obj in self.store.objects.items():
            if (p, ns, n) == (plural, namespace, name):
                return copy.deepcopy(obj)
        return None

    def set_condition(
        self, plural: str, namespace: str, name: str, ctype: str, status: str, reason: str = ""
    ) -> None:
        """Write ``status.conditions[type=ctype]`` as a controller would (through HTTP-free code).

        LookupError when the object does not exist (the write is never silently dropped).
        """
        with self.store.lock:
            for key, obj in self.store.objects.items():
                if key[2:] == (plural, namespace, name):
                    conds = [
                        c
                        for c in obj.setdefault("status", {}).get("conditions", [])
                        if c.get("type") != ctype
                    ]
                    conds.append({"type": ctype, "status": status, "reason": reason})
                    obj["status"]["conditions"] = conds
                    obj["metadata"]["resourceVersion"] = self.store.next_rv()
                    self.store.record("MODIFIED", key, obj)
                    return
        raise LookupError(f"set_condition: no {plural} {namespace}/{name} in the stand-in")

    def on_get(self, plural: str, namespace: str, name: str, action: Callable[[], None]) -> None:
        """Run ``action()`` once, right after the next GET of ``plural`` ``namespace/name`` that
        finds the object, before that answer is sent: the client has seen the object as it was,
        and its next read sees what ``action`` did. Runs in the server thread, lock released."""
        with self.store.lock:
            self.get_hooks.setdefault((plural, namespace, name), []).append(action)

    def _run_get_hooks(self, path: str) -> None:
        """After a successful GET of ``.../namespaces/NS/PLURAL/NAME``: its pending actions."""
        segs = [s for s in path.split("/") if s]
        if "namespaces" not in segs:
            return
        at = segs.index("namespaces")
        if len(segs) != at + 4:  # a collection, or a subresource
            return
        key = (segs[at + 2], segs[at + 1], segs[at + 3])
        with self.store.lock:
            actions = self.get_hooks.pop(key, [])
        for action in actions:
            action()


class _Handler(BaseHTTPRequestHandler):
    standin: StandIn
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # silence
        pass

    def _send(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        si = self.standin
        with si.store.lock:
            si.requests.append((method, parts.path))
            failure = si.failures.pop(0) if si.failures else None
        if failure is not None:
            headers = {"Retry-After": "0"} if failure == 429 else {}
            reason = {409: "Conflict", 429: "TooManyRequests"}.get(failure, "InternalError")
            self._send(failure, status_body(failure, reason, "injected failure"), headers)
            return
        if method == "GET" and query.get("watch") in ("true", "1"):
            try:
                self._watch(parts.path, query)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped watching
            except HttpError as e:
                self._send(e.code, status_body(e.code, e.reason, e.message))
            return
        try:
            code, body = self._route(method, parts.path, query, raw)
        except HttpError as e:
            code, body = e.code, status_body(e.code, e.reason, e.message, e.causes)
        if method == "GET" and code == 200:
            si._run_get_hooks(parts.path)
        self._send(code, body)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _watch(self, path: str, query: dict) -> None:
        """Stream watch events (one JSON object a line) of a collection until timeoutSeconds.

        Without ``resourceVersion`` the current objects come first as ADDED events; with one,
        the events after it. Sent chunked over HTTP/1.1; the connection closes at the end.
        """
        segs = [s for s in path.split("/") if s]
        group, rest = ("", segs[1:]) if segs[:1] == ["api"] else (segs[1], segs[2:])
        kinds = self.standin.store.resources.kinds
        if len(rest) != 4 or rest[1] != "namespaces" or (group, rest[0], rest[3]) not in kinds:
            raise HttpError(
                404, "NotFound", f"the server could not find the requested resource {path}"
            )
        prefix = (group, rest[0], rest[3], rest[2])
        timeout = float(query.get("timeoutSeconds") or 5)
        store = self.standin.store
        with store.lock:
            if query.get("resourceVersion"):
                since = int(query["resourceVersion"])
                pending = []
            else:
                since = store.rv
                pending = [
                    {"type": "ADDED", "object": copy.deepcopy(o)}
                    for k, o in sorted(store.objects.items())
                    if k[:4] == prefix
                ]
        self.protocol_version = "HTTP/1.1"  # chunked: each event reaches the client at once
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        deadline = time.monotonic() + timeout
        while True:
            for event in pending:
                line = json.dumps(event).encode() + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.flush()
            with store.lock:
                store.changed.wait_for(
                    lambda after=since: (
                        any(rv > after for rv, *_ in store.events) or time.monotonic() >= deadline
                    ),
                    timeout=max(0.0, deadline - time.monotonic()),
                )
                new = [e for e in store.events if e[0] > since]
                if new:
                    since = new[-1][0]
                pending = [
                    {"type": kind, "object": copy.deepcopy(obj)}
                    for _rv, kind, key, obj in new
                    if key[:4] == prefix
                ]
            if not pending and time.monotonic() >= deadline:
                self.wfile.write(b"0\r\n\r\n")
                return

    # -- routing ---------------------------------------------------------------------------------
    def _route(self, method: str, path: str, query: dict, raw: bytes) -> tuple[int, Any]:
        segs = [s for s in path.split("/") if s]
        doctor = self._doctor_route(method, segs, raw, query)
        if doctor is not None:
            return doctor
        crds = self._crd_route(method, segs)
        if crds is not None:
            return crds
        if segs == ["version"]:
            return 200, {"major": "1", "minor": "31", "gitVersion": "v1.31.0-standin"}
        if segs == ["api"]:
            return 200, {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [],
            }
        if segs == ["apis"]:
            kinds = self.standin.store.resources.kinds
            groups = sorted({g for g, _v, _p in kinds if g})
            # the newest version a group serves ("v1beta1" sorts after "v1alpha1")
            preferred = {g: max(v for gg, v, _p in kinds if gg == g) for g in groups}
            return 200, {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [
                    {
                        "name": g,
                        "versions": [
                            {"groupVersion": f"{g}/{v}", "version": v}
                            for v in sorted({v for gg, v, _p in kinds if gg == g}, reverse=True)
                        ],
                        "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v},
                    }
                    for g, v in preferred.items()
                ],
            }
        if segs[:1] == ["api"]:
            group, rest = "", segs[1:]
        elif segs[:1] == ["apis"] and len(segs) >= 3:
            group, rest = segs[1], segs[2:]
        else:
            raise HttpError(
                404, "NotFound", f"the server could not find the requested resource {path}"
            )
        version, rest = rest[0], rest[1:]
        if not rest and method == "GET":
            return 200, self._resource_list(group, version)
        if len(rest) < 3 or rest[0] != "namespaces":
            raise HttpError(
                404, "NotFound", f"the server could not find the requested resource {path}"
            )
        namespace, plural, rest = rest[1], rest[2], rest[3:]
        res = self.standin.store.resources
        kind = res.kinds.get((group, version, plural))
        if kind is None:
            raise HttpError(
                404, "NotFound", f"the server could not find the requested resource {path}"
            )
        name = rest[0] if rest else None
        sub = rest[1] if len(rest) > 1 else None
        served = {"status": res.with_status, "scale": set(res.scale)}
        if (sub is not None and (group, version, plural) not in served.get(sub, ())) or len(
            rest
        ) > 2:
            raise HttpError(
                404, "NotFound", f"the server could not find the requested resource {path}"
            )
        ctx = Collection(self.standin.store, group, version, plural, kind, namespace, query)
        body = None
        if raw:
            try:
                body = yaml.safe_load(raw.decode())
            except yaml.YAMLError as e:
                raise HttpError(400, "BadRequest", f"cannot decode body: {e}") from None
        with self.standin.store.lock:
            if name is None:
                if method == "GET":
                    listing = _field_select(ctx.list(), query.get("fieldSelector"))
                    return 200, _label_select(listing, query.get("labelSelector"))
                if method == "POST":
                    return 201, ctx.create(body)
                raise HttpError(405, "MethodNotAllowed", f"{method} on a collection")
            if method == "GET":
                return 200, ctx.read(name, sub)
            if method == "PUT":
                return 200, ctx.replace(name, body, sub)
            if method == "PATCH":
                ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
                return ctx.patch(name, body, ctype, sub)
            if method == "DELETE":
                return 200, ctx.delete(name)
        raise HttpError(405, "MethodNotAllowed", method)

    def _doctor_route(
        self, method: str, segs: list[str], raw: bytes, query: dict | None = None
    ) -> tuple[int, Any] | None:
        """403 for ``StandIn.forbidden`` plurals, nodes, SelfSubjectAccessReview; else None."""
        si = self.standin
        hit = si.forbidden.intersection(segs)
        if hit:
            plural = sorted(hit)[0]
            raise HttpError(
                403,
                "Forbidden",
                f'{plural} is forbidden: User "standin" cannot {method.lower()} resource "{plural}"',
            )
        if segs == ["api", "v1", "nodes"] and method == "GET":
            with si.store.lock:
                items = copy.deepcopy(si.nodes)
            listing = {"kind": "NodeList", "apiVersion": "v1", "metadata": {}, "items": items}
            return 200, _label_select(listing, (query or {}).get("labelSelector"))
        ssar = ["apis", "authorization.k8s.io", "v1", "selfsubjectaccessreviews"]
        if segs == ssar and method == "POST":
            review = yaml.safe_load(raw or b"{}")
            if not isinstance(review, dict):
                raise HttpError(400, "BadRequest", "the body must be an object")
            attrs = (review.get("spec") or {}).get("resourceAttributes") or {}
            verb, resource = attrs.get("verb", ""), attrs.get("resource", "")
            denied = bool({(verb, resource), ("*", resource)} & si.denied)
            review["status"] = {"allowed": not denied}
            if denied:
                review["status"]["reason"] = f"no rule allows {verb} {resource}"
            return 201, review
        return None

    def _crd_route(self, method: str, segs: list[str]) -> tuple[int, Any] | None:
        """GET / LIST ``apiextensions.k8s.io/v1`` ``customresourcedefinitions``; else None."""
        base = ["apis", "apiextensions.k8s.io", "v1", "customresourcedefinitions"]
        if segs[:4] != base or method != "GET" or len(segs) > 5:
            return None
        si = self.standin
        with si.store.lock:
            if len(segs) == 4:
                items = [copy.deepcopy(c) for _n, c in sorted(si.crds.items())]
                kind = "CustomResourceDefinitionList"
                return 200, {"kind": kind, "apiVersion": "apiextensions.k8s.io/v1", "items": items}
            crd = si.crds.get(segs[4])
        if crd is None:
            what = f'customresourcedefinitions.apiextensions.k8s.io "{segs[4]}" not found'
            raise HttpError(404, "NotFound", what)
        return 200, copy.deepcopy(crd)

    def _resource_list(self, group: str, version: str) -> dict:
        gv = f"{group}/{version}" if group else version
        resources = []
        res = self.standin.store.resources
        for (g, v, plural), kind in res.kinds.items():
            if (g, v) != (group, version):
                continue
            verbs = ["create", "delete", "get", "list", "patch", "update"]
            resources.append(
                {"name": plural, "singularName": kind.lower(), "namespaced": True, "kind": kind,
                 "verbs": verbs}
            )  # fmt: skip
            for sub, where in (("status", res.with_status), ("scale", set(res.scale))):
                if (g, v, plural) in where:
                    resources.append(
                        {
                            "name": f"{plural}/{sub}",
                            "singularName": "",
                            "namespaced": True,
                            "kind": kind if sub == "status" else "Scale",
                            "verbs": ["get", "patch", "update"],
                        }
                    )
        if not resources:
            raise HttpError(404, "NotFound", f"no resources in {gv}")
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": gv,
            "resources": resources,
        }


def _field_select(listing: dict, selector: str | None) -> dict:
    """Keep the items matching a ``fieldSelector`` of ``a.b=v`` terms (comma-separated, ANDed)."""
    if not selector:
        return listing
    terms = [t.split("=", 1) for t in selector.split(",") if "=" in t]

    def value(obj: Any, dotted: str) -> Any:
        for step in dotted.split("."):
            obj = obj.get(step) if isinstance(obj, dict) else None
        return obj

    listing["items"] = [o for o in listing["items"] if all(str(value(o, k)) == v for k, v in terms)]
    return listing


def _label_select(listing: dict, selector: str | None) -> dict:
    """Keep the items whose ``metadata.labels`` match an equality-based ``labelSelector``."""
    if not selector:
        return listing
    terms = [t.strip() for t in selector.split(",") if t.strip()]

    def match(labels: dict, term: str) -> bool:
        if "!=" in term:
            k, v = (s.strip() for s in term.split("!=", 1))
            return labels.get(k) != v
        if "=" in term:
            k, v = (s.strip() for s in term.replace("==", "=").split("=", 1))
            return labels.get(k) == v
        if term.startswith("!"):
            return term[1:].strip() not in labels
        return term in labels

    listing["items"] = [
        o
        for o in listing["items"]
        if all(match((o.get("metadata") or {}).get("labels") or {}, t) for t in terms)
    ]
    return listing


@contextmanager
def running_standin(release: str = DEFAULT_RELEASE, validate: bool = True) -> Iterator[StandIn]:
    """Start the stand-in (serving ``release``'s CRDs; ``validate``: refuse custom resources
    they do not admit) on a free loopback port; stop it (and its threads) on exit."""
    server = StandIn(release, validate)
    thread = threading.Thread(target=server.httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        thread.join(timeout=5)
