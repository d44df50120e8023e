"""``dynamo-plan apply`` / ``delete``: manifests to the cluster by server-side apply.

A manifest is a multi-document YAML file of the kinds in
:data:`dynamo_plan.adapters.kubernetes.KINDS` (DGD, DGDR, ConfigMap, ServiceAccount, Role,
RoleBinding). Each object is applied with field manager :data:`FIELD_MANAGER`, in file order
(deleted in reverse order). The action reported per object follows kubectl: ``created`` when it
was absent, ``unchanged`` when the applied result equals the live object (ignoring
server-managed metadata), ``configured`` otherwise; ``deleted`` on delete (``unchanged`` when it
was already gone, ``skipped`` when the live object is not this project's: delete removes only
objects labelled as :mod:`dynamo_plan.deploy.ownership` says).

Dry runs: ``client`` reads the live object and merges locally (maps merged key by key, lists
replaced, as server-side apply does for atomic lists), never writes; ``server`` sends
``dryRun=All`` so the API server computes (and validates) the result without storing it.

Previews (``apply --diff``): :func:`preview_objects` is a dry run (``server`` unless asked
otherwise, as ``kubectl diff`` does) with the unified diff of live against applied per object;
it never stores anything. :func:`changed` counts the objects a preview says would change.
"""

from __future__ import annotations

import copy
import difflib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from dynamo_plan.adapters.kubernetes import KINDS, ApplyConflict, KindInfo, KubeClient, kind_info
from dynamo_plan.deploy.ownership import DGD_LABEL, MANAGED_BY, MANAGED_BY_LABEL, owned_by_us
from dynamo_plan.errors import ClusterError, InputError
from dynamo_plan.formats.files import read_text
from dynamo_plan.formats.yaml_lines import YamlSyntaxError, line_of, load_documents

__all__ = [
    "FIELD_MANAGER",
    "DryRun",
    "ManifestObject",
    "Outcome",
    "ReadyState",
    "apply_objects",
    "changed",
    "delete_objects",
    "load_manifest",
    "preview_objects",
    "wait_ready",
]

FIELD_MANAGER = "dynamo-plan"
_SERVER_FIELDS = ("resourceVersion", "managedFields", "generation", "creationTimestamp", "uid")


class DryRun(StrEnum):
    """Where a dry run is computed."""

    client = "client"
    server = "server"


@dataclass(frozen=True)
class ManifestObject:
    """One object of a manifest, with where it goes."""

    info: KindInfo
    name: str
    namespace: str
    body: dict[str, Any]

    @property
    def ref(self) -> str:
        return f"{self.info.kind}/{self.name} in namespace {self.namespace}"


@dataclass
class Outcome:
    """What happened to one object (the ``-o json`` row; ``diff`` only with ``--diff``)."""

    kind: str
    name: str
    namespace: str
    action: str
    dry_run: bool
    diff: str | None = field(default=None)
    #: why nothing was done (``skipped`` by ``delete``)
    note: str | None = field(default=None)

    def row(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("diff", "note"):
            if out[key] is None:
                out.pop(key)
        return out


def load_manifest(
    text: str, file: str, namespace: str | None, default_namespace: str
) -> list[ManifestObject]:
    """Parse every document of ``text``; InputError (file:line) on anything not appliable.

    The namespace is the object's own ``metadata.namespace``, else ``namespace`` (the flag),
    else ``default_namespace`` (the kubeconfig context's). A flag that contradicts an object's
    namespace is an error, as with kubectl.
    """
    try:
        docs = load_documents(text)
    except YamlSyntaxError as e:
        where = f":{e.line}:{e.column}" if e.line is not None else ""
        raise InputError(f"{file}{where}: not valid YAML: {e.message}") from e
    objects: list[ManifestObject] = []
    supported = ", ".join(sorted(f"{a} {k}" for a, k in KINDS))
    for doc in docs:
        data = doc.data
        if data is None:
            continue
        line = doc.node.start_mark.line + 1
        if not isinstance(data, dict):
            raise InputError(
                f"{file}:{line}: document {doc.index + 1} must be a mapping (a Kubernetes object), "
                f"got {type(data).__name__}"
            )

        def at(path: list[str | int], doc_node: Any = doc.node) -> int:
            return line_of(doc_node, path)

        api_version, kind = data.get("apiVersion"), data.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str):
            missing = "apiVersion" if not isinstance(api_version, str) else "kind"
            raise InputError(
                f"{file}:{line}: document {doc.index + 1}: '{missing}' is required (a string)"
            )
        info = kind_info(api_version, kind)
        if info is None:
            raise InputError(
                f"{file}:{at(['kind'])}: {api_version} {kind} is not a kind dynamo-plan applies; "
                f"expected one of: {supported}"
            )
        meta = data.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        if not isinstance(name, str) or not name:
            raise InputError(
                f"{file}:{at(['metadata'])}: {kind}: 'metadata.name' is required (a string)"
            )
        own_ns = meta.get("namespace") if isinstance(meta, dict) else None
        if own_ns is not None and not isinstance(own_ns, str):
            raise InputError(f"{file}:{at(['metadata', 'namespace'])}: must be a string")
        if own_ns and namespace and own_ns != namespace:
            raise InputError(
                f"{file}:{at(['metadata', 'namespace'])}: {kind}/{name} is in namespace "
                f"'{own_ns}' but --namespace is '{namespace}'"
            )
        ns = own_ns or namespace or default_namespace
        body = copy.deepcopy(data)
        body["metadata"]["namespace"] = ns
        objects.append(ManifestObject(info, name, ns, body))
    if not objects:
        raise InputError(f"{file}: no Kubernetes objects in the file")
    return objects


def read_manifest(
    path: Path, namespace: str | None, default_namespace: str
) -> list[ManifestObject]:
    """:func:`load_manifest` on a file; InputError for a file that cannot be read or is not
    UTF-8 text (binary, UTF-16)."""
    text = read_text(path, "manifest")
    return load_manifest(text, str(path), namespace, default_namespace)


def _clean(obj: dict[str, Any] | None) -> dict[str, Any]:
    """The object without server-managed metadata and status (what a diff should show)."""
    if obj is None:
        return {}
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.get("metadata") or {}
    for key in _SERVER_FIELDS:
        meta.pop(key, None)
    return out


def _merge(live: Any, applied: Any) -> Any:
    """Local stand-in for server-side apply's merge: maps merge key by key, the rest replaces."""
    if not isinstance(live, dict) or not isinstance(applied, dict):
        return copy.deepcopy(applied)
    out = copy.deepcopy(live)
    for key, value in applied.items():
        out[key] = _merge(out.get(key), value)
    return out


def _diff(obj: ManifestObject, live: dict[str, Any] | None, result: dict[str, Any]) -> str:
    def dump(o: dict[str, Any]) -> list[str]:
        return yaml.safe_dump(o, sort_keys=True).splitlines(keepends=True) if o else []

    label = f"{obj.info.kind}/{obj.namespace}/{obj.name}"
    return "".join(
        difflib.unified_diff(
            dump(_clean(live)), dump(_clean(result)), f"live/{label}", f"applied/{label}"
        )
    )


def _labelled(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with ``app.kubernetes.io/managed-by: dynamo-plan`` unless it names a manager."""
    out = copy.deepcopy(body)
    labels = out.setdefault("metadata", {}).setdefault("labels", {})
    labels.setdefault(MANAGED_BY_LABEL, MANAGED_BY)
    return out


def apply_objects(
    client: KubeClient,
    objects: list[ManifestObject],
    dry_run: DryRun | None = None,
    force: bool = False,
    want_diff: bool = False,
) -> list[Outcome]:
    """Server-side apply each object in order; the outcome per object (see the module doc).

    Each object is applied with :data:`~dynamo_plan.deploy.ownership.MANAGED_BY_LABEL` =
    ``dynamo-plan`` added to its labels, so that ``delete`` of the same file later recognises it
    as this project's (an object that already names another manager keeps it)."""
    outcomes = []
    for obj in objects:
        live = client.get(obj.info, obj.namespace, obj.name)
        body = _labelled(obj.body)
        if dry_run is DryRun.client:
            result = _merge(live, body) if live is not None else copy.deepcopy(body)
        else:
            try:
                result = client.apply(
                    obj.info,
                    obj.namespace,
                    body,
                    FIELD_MANAGER,
                    force=force,
                    dry_run=dry_run is DryRun.server,
                )
            except ApplyConflict as e:
                owners = ", ".join(f'"{m}"' for m in e.managers)
                raise ApplyConflict(
                    f"{obj.ref}: {', '.join(e.fields)} owned by field manager {owners}; "
                    "re-run with --force-conflicts to take the fields over",
                    e.managers,
                    e.fields,
                ) from e
        if live is None:
            action = "created"
        else:
            action = "unchanged" if _clean(live) == _clean(result) else "configured"
        outcomes.append(
            Outcome(
                obj.info.kind,
                obj.name,
                obj.namespace,
                action,
                dry_run is not None,
                _diff(obj, live, result) if want_diff else None,
            )
        )
    return outcomes


def preview_objects(
    client: KubeClient,
    objects: list[ManifestObject],
    dry_run: DryRun = DryRun.server,
    force: bool = False,
) -> list[Outcome]:
    """What applying ``objects`` would do, each with its diff (live against applied), storing
    nothing: a dry run computed by the API server (``server``, dryRun=All: validation and
    conflicts included) or locally (``client``). A conflict raises as in :func:`apply_objects`."""
    if dry_run not in (DryRun.server, DryRun.client):
        raise ValueError(f"a preview is a dry run (server or client), not {dry_run!r}")
    return apply_objects(client, objects, dry_run, force=force, want_diff=True)


def changed(outcomes: list[Outcome]) -> int:
    """How many outcomes create or change an object (``created`` or ``configured``)."""
    return sum(o.action in ("created", "configured") for o in outcomes)


def delete_objects(
    client: KubeClient, objects: list[ManifestObject], dry_run: DryRun | None = None
) -> list[Outcome]:
    """Delete each object, last first; ``unchanged`` for one that was already absent.

    Only this project's objects are deleted (:func:`dynamo_plan.deploy.ownership.owned_by_us`:
    the live object carries ``app.kubernetes.io/managed-by: dynamo-plan`` and, when the manifest
    names one, the same ``dynamo-plan/dgd``); any other is left in place and reported
    ``skipped``, with the reason in ``note``."""
    outcomes = []
    for obj in reversed(objects):
        live = client.get(obj.info, obj.namespace, obj.name)
        if live is not None and not owned_by_us(live, obj.body):
            note = (
                f"not deleted: it lacks the labels {MANAGED_BY_LABEL}={MANAGED_BY}"
                + (f" and {DGD_LABEL}={_dgd_label(obj)}" if _dgd_label(obj) else "")
                + " (not created by dynamo-plan for this DGD)"
            )
            row = Outcome(obj.info.kind, obj.name, obj.namespace, "skipped", dry_run is not None)
            outcomes.append(replace(row, note=note))
            continue
        if dry_run is DryRun.client or live is None:
            existed = live is not None
        else:
            existed = client.delete(
                obj.info, obj.namespace, obj.name, dry_run=dry_run is DryRun.server
            )
        action = "deleted" if existed else "unchanged"
        outcomes.append(
            Outcome(obj.info.kind, obj.name, obj.namespace, action, dry_run is not None)
        )
    return outcomes


def _dgd_label(obj: ManifestObject) -> str | None:
    labels = (obj.body.get("metadata") or {}).get("labels") or {}
    value = labels.get(DGD_LABEL)
    return str(value) if value is not None else None


@dataclass(frozen=True)
class ReadyState:
    """The ``Ready`` condition of one DGD at one poll."""

    ref: str
    ready: bool
    conditions: list[dict[str, Any]]

    def summary(self) -> str:
        """``Ready=False (Reason: message); …`` for the conditions, or ``no conditions yet``."""
        if not self.conditions:
            return "no conditions yet"
        parts = []
        for c in self.conditions:
            why = ": ".join(str(x) for x in (c.get("reason"), c.get("message")) if x)
            parts.append(f"{c.get('type')}={c.get('status')}" + (f" ({why})" if why else ""))
        return "; ".join(parts)


def _ready_state(obj: ManifestObject, live: dict[str, Any] | None) -> ReadyState:
    if live is None:
        raise ClusterError(f"{obj.ref} disappeared while waiting for it to be Ready")
    conditions = [
        c for c in ((live.get("status") or {}).get("conditions") or []) if isinstance(c, dict)
    ]
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    return ReadyState(obj.ref, ready, conditions)


def wait_ready(
    client: KubeClient,
    objects: list[ManifestObject],
    timeout_s: float,
    poll_s: float = 2.0,
    on_poll: Callable[[list[ReadyState]], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[ReadyState]:
    """Poll every DynamoGraphDeployment until ``status.conditions[type=Ready].status == "True"``
    (:meth:`KubeClient.wait_all`: every DGD read at each poll).

    ``on_poll`` sees every poll's states (for a progress display). After ``timeout_s`` seconds a
    ClusterError (exit 3) names the first object not Ready and its last conditions.
    """
    dgds = [o for o in objects if o.info.kind == "DynamoGraphDeployment"]
    states: list[ReadyState] = []

    def ready(live: list[dict[str, Any] | None]) -> bool | str:
        states[:] = [_ready_state(o, obj) for o, obj in zip(dgds, live, strict=True)]
        if on_poll is not None:
            on_poll(list(states))
        waiting = [s for s in states if not s.ready]
        if not waiting:
            return True
        return f"{waiting[0].ref} to be Ready; last conditions: {waiting[0].summary()}"

    refs = [(o.info, o.namespace, o.name) for o in dgds]
    client.wait_all(refs, ready, timeout_s, poll_s, clock=clock, sleep=sleep)
    return states
