"""The object store behind the Kubernetes API stand-in (tests/k8s_standin.py).

Resource table, ``Status`` bodies, server-side apply's field ownership (simplified
``managedFields``), merge patch (RFC 7386), resourceVersion / generation bookkeeping and the
watch event log, the ``/scale`` subresource, JSON patch (RFC 6902: add, remove, replace, test)
and, for custom resources, validation against the release's CRD (422 ``Invalid`` with one
``FieldValueInvalid`` cause per error, as a server refuses an object its structural schema does
not admit). Every :class:`Collection` method runs with :attr:`Store.lock` held.
"""

from __future__ import annotations

import copy
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# (group, version, plural) -> kind; group "" is the core API. The custom resources (Dynamo's
# DGD, DGDR and scaling adapter) come from the release's CRDs: :func:`crd_resources`.
CORE_RESOURCES: dict[tuple[str, str, str], str] = {
    ("", "v1", "configmaps"): "ConfigMap",
    ("", "v1", "serviceaccounts"): "ServiceAccount",
    ("rbac.authorization.k8s.io", "v1", "roles"): "Role",
    ("rbac.authorization.k8s.io", "v1", "rolebindings"): "RoleBinding",
    # for online profiling: the profiling Jobs (status written by a test's cluster simulator)
    ("batch", "v1", "jobs"): "Job",
    # for `doctor`: the image pull secret and the events of a stuck DGDR
    ("", "v1", "secrets"): "Secret",
    ("", "v1", "events"): "Event",
}
#: The release whose CRDs a stand-in serves unless told otherwise (the newest supported).
DEFAULT_RELEASE = "1.5"
_IGNORED_FIELDS = {("apiVersion",), ("kind",), ("metadata", "name"), ("metadata", "namespace")}
JSON_PATCH = "application/json-patch+json"


@dataclass(frozen=True)
class ScalePaths:
    """A CRD version's ``subresources.scale``: where ``/scale`` reads and writes the replicas."""

    spec_replicas: tuple[str, ...]
    status_replicas: tuple[str, ...]
    label_selector: tuple[str, ...] | None


@dataclass
class Resources:
    """What a stand-in serves: kinds by (group, version, plural), the plurals with a ``/status``
    subresource, the ``/scale`` paths, and the CRD validator (None: nothing is refused)."""

    kinds: dict[tuple[str, str, str], str]
    with_status: set[tuple[str, str, str]]
    scale: dict[tuple[str, str, str], ScalePaths]
    release: str
    validate: bool


def _json_path(path: str) -> tuple[str, ...]:
    """``.spec.replicas`` → ("spec", "replicas") (the simple JSON paths CRDs use here)."""
    return tuple(p for p in path.strip().lstrip(".").split(".") if p)


def crd_resources(release: str = DEFAULT_RELEASE, validate: bool = True) -> Resources:
    """The core kinds plus every (kind, version) the release's CRDs serve
    (tests/data/dynamo/<release>/crds, read by tests/crd_schema.py), with their subresources."""
    from tests.crd_schema import served_versions

    kinds = dict(CORE_RESOURCES)
    with_status = {("batch", "v1", "jobs")}
    scale: dict[tuple[str, str, str], ScalePaths] = {}
    for sv in served_versions(release):
        group, _, version = sv.api_version.partition("/")
        key = (group, version, sv.plural)
        kinds[key] = sv.kind
        if "status" in sv.subresources:
            with_status.add(key)
        paths = sv.subresources.get("scale")
        if paths:
            selector = paths.get("labelSelectorPath")
            scale[key] = ScalePaths(
                _json_path(paths["specReplicasPath"]),
                _json_path(paths["statusReplicasPath"]),
                _json_path(selector) if selector else None,
            )
    return Resources(kinds, with_status, scale, release, validate)


Path_ = tuple[str, ...]


class HttpError(Exception):
    def __init__(self, code: int, reason: str, message: str, causes: list | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.causes = code, reason, message, causes


def status_body(code: int, reason: str, message: str, causes: list | None = None) -> dict:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if causes:
        body["details"] = {"causes": causes}
    return body


def _leaves(obj: Any, prefix: Path_ = ()) -> set[Path_]:
    """Leaf field paths of a JSON object (lists and scalars are leaves)."""
    if isinstance(obj, dict) and obj:
        out: set[Path_] = set()
        for k, v in obj.items():
            out |= _leaves(v, (*prefix, str(k)))
        return out
    return {prefix} if prefix else set()


def _get(obj: Any, path: Path_) -> Any:
    for step in path:
        if not isinstance(obj, dict) or step not in obj:
            return None
        obj = obj[step]
    return obj


def _delete(obj: dict, path: Path_) -> None:
    parents = [obj]
    for step in path[:-1]:
        nxt = parents[-1].get(step)
        if not isinstance(nxt, dict):
            return
        parents.append(nxt)
    parents[-1].pop(path[-1], None)
    for i in range(len(path) - 2, -1, -1):  # drop emptied parents
        if parents[i + 1] == {}:
            parents[i].pop(path[i], None)


def _merge(base: Any, patch: Any, drop_nulls: bool) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(base) if isinstance(base, dict) else {}
    for k, v in patch.items():
        if v is None and drop_nulls:
            out.pop(k, None)
        else:
            out[k] = _merge(out.get(k), v, drop_nulls)
    return out


def _fields_v1(paths: set[Path_]) -> dict:
    tree: dict[str, Any] = {}
    for p in sorted(paths):
        node = tree
        for step in p:
            node = node.setdefault(f"f:{step}", {})
    return tree


def _paths_of(fields: dict, prefix: Path_ = ()) -> set[Path_]:
    out: set[Path_] = set()
    for k, v in fields.items():
        p = (*prefix, k[2:])
        out |= _paths_of(v, p) if v else {p}
    return out


def _dotted(path: Path_) -> str:
    return "." + ".".join(path)


class Store:
    """The objects, keyed by (group, version, plural, namespace, name), behind one lock.

    Objects of each apiVersion are kept apart: a custom resource written as v1alpha1 is not
    read back as v1beta1 (a real server converts between served versions; this one does not)."""

    def __init__(self, resources: Resources | None = None) -> None:
        self.resources = resources if resources is not None else crd_resources()
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        # (resourceVersion, event type, key, object) for watches, oldest first
        self.events: list[tuple[int, str, tuple[str, str, str, str, str], dict]] = []
        self.objects: dict[tuple[str, str, str, str, str], dict] = {}
        self.rv = 0

    def next_rv(self) -> str:
        self.rv += 1
        return str(self.rv)

    def record(self, kind: str, key: tuple[str, str, str, str, str], obj: dict) -> None:
        """Log a watch event at the current resourceVersion and wake the watchers (lock held)."""
        self.events.append((self.rv, kind, key, copy.deepcopy(obj)))
        self.changed.notify_all()


class Collection:
    """One request's view of a resource type in a namespace (called with the store lock held)."""

    def __init__(
        self,
        store: Store,
        group: str,
        version: str,
        plural: str,
        kind: str,
        namespace: str,
        query: dict,
    ) -> None:
        self.store, self.plural, self.kind, self.namespace = store, plural, kind, namespace
        self.group, self.version = group, version
        self.api_version = f"{group}/{version}" if group else version
        self.dry_run = query.get("dryRun") == "All"
        self.manager = query.get("fieldManager")
        self.force = query.get("force") == "true"
        self.gvp = (group, version, plural)

    def key(self, name: str) -> tuple[str, str, str, str, str]:
        return (self.group, self.version, self.plural, self.namespace, name)

    def resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def not_found(self, name: str) -> HttpError:
        return HttpError(404, "NotFound", f'{self.resource()} "{name}" not found')

    def list(self) -> dict:
        items = [
            copy.deepcopy(o)
            for k, o in sorted(self.store.objects.items())
            if k[:4] == (self.group, self.version, self.plural, self.namespace)
        ]
        return {
            "kind": f"{self.kind}List",
            "apiVersion": self.api_version,
            "metadata": {"resourceVersion": str(self.store.rv)},
            "items": items,
        }

    def read(self, name: str, sub: str | None = None) -> dict:
        obj = self.store.objects.get(self.key(name))
        if obj is None:
            raise self.not_found(name)
        return self._scale_of(obj) if sub == "scale" else copy.deepcopy(obj)

    # -- the /scale subresource ----------------------------------------------------------------
    def _scale_of(self, obj: dict) -> dict:
        """The ``autoscaling/v1`` ``Scale`` of ``obj``, read at its CRD's scale paths."""
        paths = self.store.resources.scale[self.gvp]
        meta = obj["metadata"]
        status: dict[str, Any] = {"replicas": _get(obj, paths.status_replicas) or 0}
        if paths.label_selector is not None and _get(obj, paths.label_selector) is not None:
            status["selector"] = _get(obj, paths.label_selector)
        return {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {
                k: meta[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in meta
            },
            "spec": {"replicas": _get(obj, paths.spec_replicas) or 0},
            "status": status,
        }

    def _write_scale(self, name: str, old: dict, scale: Any) -> dict:
        """Store ``scale``'s ``spec.replicas`` at the CRD's specReplicasPath; the new Scale."""
        if not isinstance(scale, dict):
            raise HttpError(400, "BadRequest", "the body must be an object")
        rv = (scale.get("metadata") or {}).get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise HttpError(409, "Conflict", self._stale(name))
        replicas = (scale.get("spec") or {}).get("replicas")
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
            raise HttpError(
                422,
                "Invalid",
                f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid value: '
                f"{replicas!r}: must be greater than or equal to 0",
                [{"type": "FieldValueInvalid", "field": "spec.replicas"}],
            )
        path = self.store.resources.scale[self.gvp].spec_replicas
        new = copy.deepcopy(old)
        node = new
        for step in path[:-1]:
            node = node.setdefault(step, {})
        node[path[-1]] = replicas
        changed = {path} if _get(old, path) != replicas else set()
        self._record(new, self.manager, "Update", changed)
        return self._scale_of(self._store(name, old, new, None))

    def _check_body(self, body: Any, name: str | None) -> dict:
        if not isinstance(body, dict):
            raise HttpError(400, "BadRequest", "the body must be an object")
        meta = body.get("metadata") or {}
        if body.get("kind") not in (None, self.kind):
            raise HttpError(
                400, "BadRequest", f"kind {body.get('kind')} does not match {self.kind}"
            )
        if meta.get("namespace") not in (None, self.namespace):
            raise HttpError(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on the request",
            )
        if name is not None and meta.get("name") not in (None, name):
            raise HttpError(400, "BadRequest", "the name of the object does not match the URL")
        if not (meta.get("name") or name):
            raise HttpError(422, "Invalid", "metadata.name: Required value")
        return body

    def _record(self, obj: dict, manager: str | None, operation: str, paths: set[Path_]) -> None:
        """Give ``paths`` to (manager, operation), taking them away from every other entry."""
        entries = obj["metadata"].get("managedFields", [])
        kept = []
        for e in entries:
            own = _paths_of(e.get("fieldsV1", {}))
            if (e["manager"], e["operation"]) == (manager, operation):
                continue
            own -= paths
            if own:
                kept.append({**e, "fieldsV1": _fields_v1(own)})
        if manager and paths:
            kept.append(
                {
                    "manager": manager,
                    "operation": operation,
                    "apiVersion": self.api_version,
                    "time": _now(),
                    "fieldsType": "FieldsV1",
                    "fieldsV1": _fields_v1(paths),
                }
            )
        obj["metadata"]["managedFields"] = kept

    def _store(self, name: str, old: dict | None, new: dict, sub: str | None) -> dict:
        """Fill server-owned metadata; keep resourceVersion on a no-op; persist unless dry run."""
        new.setdefault("metadata", {})
        new["apiVersion"], new["kind"] = self.api_version, self.kind
        new["metadata"]["name"], new["metadata"]["namespace"] = name, self.namespace
        if (
            self.gvp in self.store.resources.with_status
        ):  # status subresource: each side keeps the other's part
            if sub == "status":
                if old is None:  # as the API server: a subresource of nothing is not found
                    raise self.not_found(name)
                new = {**old, "status": new.get("status")}
                if new["status"] is None:
                    new.pop("status")
            elif old is not None and "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        if old is None:
            new["metadata"].update(uid=str(uuid.uuid4()), creationTimestamp=_now(), generation=1)
        else:
            for k in ("uid", "creationTimestamp", "generation", "resourceVersion"):
                new["metadata"][k] = old["metadata"][k]
            if _strip(new) == _strip(old):
                return copy.deepcopy(old)
            spec_old = {k: v for k, v in old.items() if k not in ("metadata", "status")}
            spec_new = {k: v for k, v in new.items() if k not in ("metadata", "status")}
            if spec_old != spec_new:
                new["metadata"]["generation"] = old["metadata"]["generation"] + 1
        self._validate(name, new)
        if not self.dry_run:
            new["metadata"]["resourceVersion"] = self.store.next_rv()
            self.store.objects[self.key(name)] = new
            self.store.record("ADDED" if old is None else "MODIFIED", self.key(name), new)
        return copy.deepcopy(new)

    def _validate(self, name: str, new: dict) -> None:
        """422 ``Invalid`` (a ``Status`` with one cause per error) when a custom resource does
        not validate against its CRD version's schema (tests/crd_schema.py)."""
        res = self.store.resources
        if not res.validate or self.gvp in CORE_RESOURCES:
            return
        from tests.crd_schema import crd_errors

        errors = crd_errors(new, res.release)
        if not errors:
            return
        causes = [
            {
                "type": "FieldValueInvalid",
                "message": e.partition(": ")[2] or e,
                "field": e.partition(": ")[0],
            }
            for e in errors
        ]
        raise HttpError(
            422,
            "Invalid",
            f'{self.kind}.{self.group} "{name}" is invalid: {"; ".join(errors)}',
            causes,
        )

    def create(self, body: Any) -> dict:
        body = self._check_body(body, None)
        name = body["metadata"]["name"]
        if self.key(name) in self.store.objects:
            raise HttpError(409, "AlreadyExists", f'{self.resource()} "{name}" already exists')
        new = copy.deepcopy(body)
        new["metadata"].pop("managedFields", None)
        self._record(new, self.manager, "Update", _leaves(body) - _IGNORED_FIELDS)
        return self._store(name, None, new, None)

    def replace(self, name: str, body: Any, sub: str | None) -> dict:
        old = self.store.objects.get(self.key(name))
        if sub == "scale":
            if old is None:
                raise self.not_found(name)
            return self._write_scale(name, old, body)
        body = self._check_body(body, name)
        if old is None:
            raise self.not_found(name)
        rv = (body.get("metadata") or {}).get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise HttpError(409, "Conflict", self._stale(name))
        new = copy.deepcopy(body)
        new["metadata"]["managedFields"] = copy.deepcopy(old["metadata"].get("managedFields", []))
        changed = {p for p in _leaves(body) - _IGNORED_FIELDS if _get(old, p) != _get(body, p)}
        self._record(new, self.manager, "Update", changed)
        return self._store(name, old, new, sub)

    def _stale(self, name: str) -> str:
        return (
            f'Operation cannot be fulfilled on {self.resource()} "{name}": the object has been '
            "modified; please apply your changes to the latest version and try again"
        )

    def patch(self, name: str, body: Any, ctype: str, sub: str | None) -> tuple[int, dict]:
        old = self.store.objects.get(self.key(name))
        if sub == "scale":
            if old is None:
                raise self.not_found(name)
            if ctype in ("application/merge-patch+json", "application/json"):
                if not isinstance(body, dict):
                    raise HttpError(400, "BadRequest", "a merge patch must be an object")
                scale = _merge(self._scale_of(old), body, drop_nulls=True)
            elif ctype == JSON_PATCH:
                scale = _json_patch(self._scale_of(old), body)
            else:
                raise HttpError(
                    415, "UnsupportedMediaType", f"the body of the request was in an unknown "
                    f"format: {ctype}",
                )  # fmt: skip
            return 200, self._write_scale(name, old, scale)
        if ctype == JSON_PATCH:
            if old is None:
                raise self.not_found(name)
            base = old if sub != "status" else {"status": old.get("status")}
            new = _json_patch(base, body)
            if sub == "status":
                new = {**old, "status": new.get("status")}
            changed = (
                {p for p in _leaves(new) | _leaves(old) if _get(old, p) != _get(new, p)}
                - _IGNORED_FIELDS
                - {("metadata", "managedFields")}
            )
            self._record(new, self.manager, "Update", changed)
            return 200, self._store(name, old, new, sub)
        if ctype == "application/apply-patch+yaml":
            if not self.manager:
                raise HttpError(422, "Invalid", "fieldManager is required for apply requests")
            body = self._check_body(body, name)
            new, code = self._apply(name, old, body)
            return code, self._store(name, old, new, sub)
        if ctype in ("application/merge-patch+json", "application/json"):
            if old is None:
                raise self.not_found(name)
            if not isinstance(body, dict):
                raise HttpError(400, "BadRequest", "a merge patch must be an object")
            rv = (body.get("metadata") or {}).get("resourceVersion")
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise HttpError(409, "Conflict", self._stale(name))
            new = _merge(old, body, drop_nulls=True)
            changed = {p for p in _leaves(body) - _IGNORED_FIELDS if _get(old, p) != _get(new, p)}
            self._record(new, self.manager, "Update", changed)
            return 200, self._store(name, old, new, sub)
        raise HttpError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format: {ctype}",
        )

    def _apply(self, name: str, old: dict | None, body: dict) -> tuple[dict, int]:
        applied = _leaves(body) - _IGNORED_FIELDS - {("metadata", "managedFields")}
        if old is None:
            new = copy.deepcopy(body)
            new["metadata"].pop("managedFields", None)
            new["metadata"]["managedFields"] = []
            self._record(new, self.manager, "Apply", applied)
            return new, 201
        conflicts: list[tuple[str, Path_]] = []
        mine: set[Path_] = set()
        others: set[Path_] = set()
        for e in old["metadata"].get("managedFields", []):
            own = _paths_of(e.get("fieldsV1", {}))
            if (e["manager"], e["operation"]) == (self.manager, "Apply"):
                mine = own
                continue
            others |= own
            for p in sorted(own & applied):
                if _get(old, p) != _get(body, p):
                    conflicts.append((e["manager"], p))
        if conflicts and not self.force:
            causes = [
                {
                    "type": "FieldManagerConflict",
                    "message": f'conflict with "{m}" using {self.api_version}',
                    "field": _dotted(p),
                }
                for m, p in conflicts
            ]
            lines = "\n".join(f"- {c['message']}: {c['field']}" for c in causes)
            n = len(conflicts)
            raise HttpError(
                409, "Conflict", f"Apply failed with {n} conflict{'s' * (n != 1)}:\n{lines}", causes
            )
        new = _merge(old, body, drop_nulls=False)
        for p in mine - applied - others:
            _delete(new, p)
        self._record(new, self.manager, "Apply", applied)
        return new, 200

    def delete(self, name: str) -> dict:
        obj = self.store.objects.get(self.key(name))
        if obj is None:
            raise self.not_found(name)
        if not self.dry_run:
            del self.store.objects[self.key(name)]
            self.store.next_rv()
            self.store.record("DELETED", self.key(name), obj)
        return copy.deepcopy(obj)


def _json_patch(doc: dict, ops: Any) -> dict:
    """RFC 6902 ``add``, ``remove``, ``replace`` and ``test`` (JSON pointers into maps and
    lists); 422 ``Invalid`` when a ``test`` fails or a path does not exist, as a server answers."""
    if not isinstance(ops, list):
        raise HttpError(400, "BadRequest", "a JSON patch must be a list of operations")
    out = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or not isinstance(op.get("path"), str):
            raise HttpError(400, "BadRequest", f"invalid JSON patch operation {op!r}")
        steps = [t.replace("~1", "/").replace("~0", "~") for t in op["path"].split("/")[1:]]
        parent: Any = out
        try:
            for step in steps[:-1]:
                parent = parent[int(step)] if isinstance(parent, list) else parent[step]
            last: Any = steps[-1]
            if isinstance(parent, list):
                last = len(parent) if last == "-" else int(last)
            kind = op.get("op")
            if kind == "test":
                if parent[last] != op.get("value"):
                    raise HttpError(
                        422, "Invalid", f"the server rejected our request due to an error in our "
                        f"request: testing value {op['path']} failed",
                    )  # fmt: skip
            elif kind == "remove":
                del parent[last]
            elif kind == "replace":
                parent[last]
                parent[last] = copy.deepcopy(op.get("value"))
            elif kind == "add":
                if isinstance(parent, list):
                    parent.insert(last, copy.deepcopy(op.get("value")))
                else:
                    parent[last] = copy.deepcopy(op.get("value"))
            else:
                raise HttpError(400, "BadRequest", f"unsupported JSON patch op {kind!r}")
        except (KeyError, IndexError, ValueError, TypeError):
            raise HttpError(
                422, "Invalid", f"the server rejected our request due to an error in our "
                f"request: path {op['path']} does not exist",
            ) from None  # fmt: skip
    return out


def _strip(obj: dict) -> dict:
    """The object without fields that change on every write (for no-op detection)."""
    out = copy.deepcopy(obj)
    out["metadata"].pop("resourceVersion", None)
    for e in out["metadata"].get("managedFields", []):
        e.pop("time", None)
    out["metadata"]["managedFields"] = sorted(
        out["metadata"].get("managedFields", []), key=lambda e: (e["manager"], e["operation"])
    )
    return out


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
