"""Dynamo's real CRDs as JSON Schemas, checked the way a Kubernetes API server checks them.

The CRDs of each supported Dynamo release are in ``tests/data/dynamo/<full version>/crds/``
(0.6.1, 0.9.0, 1.5.0; ``description`` strings removed, schema otherwise unchanged; see
``tests/data/README.md``). A CRD's ``openAPIV3Schema`` is a *structural schema*: jsonschema alone
reads it far more laxly than an API server, which drops (prunes) — or, with the field validation
``kubectl`` asks for by default (``Strict``), refuses — every field the schema does not declare.
:func:`to_json_schema` turns it into a Draft 2020-12 JSON Schema that refuses what a server would:

* an object schema (``type: object`` or ``properties``) admits only its ``properties`` (plus,
  where given, its ``additionalProperties`` map schema), unless
  ``x-kubernetes-preserve-unknown-fields: true``; ``type: object`` with neither admits only ``{}``,
  as a server prunes everything in it;
* ``x-kubernetes-int-or-string: true`` → ``integer`` or ``string``;
* ``nullable: true`` → ``null`` is allowed as well (otherwise ``null`` is refused; a server would
  drop it silently, but nothing this project writes should carry one);
* ``x-kubernetes-embedded-resource: true`` → ``apiVersion`` and ``kind`` (non-empty, required)
  and ``metadata`` (ObjectMeta) are admitted besides the declared properties;
* ``metadata`` at the root, and of embedded resources, is ObjectMeta: its known fields only, the
  name a DNS subdomain, the namespace a DNS label, labels and annotations maps of strings with
  qualified-name keys (label values at most 63 characters of the allowed alphabet);
* at the root, ``apiVersion`` and ``kind`` must be those of the CRD version validated against,
  and ``metadata.name`` (or ``generateName``) is required, as on create;
* ``x-kubernetes-list-type: set`` / ``map`` (with ``x-kubernetes-list-map-keys``) refuse
  duplicate items / keys, as the server does;
* ``enum``, ``required``, ``pattern``, ``minimum``/``maximum`` (OpenAPI 3.0's boolean
  ``exclusiveMinimum``/``exclusiveMaximum`` turned into Draft 2020-12's numbers), lengths, item
  and property counts, ``allOf``/``anyOf``/``oneOf``/``not`` are kept. In the logical junctors no
  object is closed (a structural schema's junctors only add value validations; pruning follows the
  structural part alone).
* formats: a server validates only a fixed list and ignores the rest (``int32``, ``int64``, …);
  of those the CRDs here use, ``date-time`` (RFC 3339) and ``byte`` (base64) are checked.

Not evaluated: ``x-kubernetes-validations`` (CEL rules), ``default`` (defaulting changes nothing
a writer is responsible for), ``x-kubernetes-map-type``.

Public API (the loopback Kubernetes stand-in and the conformance tests use it; keep it stable):

* :func:`served_versions` — the (kind, apiVersion) pairs a release serves, with plural, scope,
  storage, deprecation and subresources;
* :func:`crd_documents` — the release's CRD manifests as loaded from YAML;
* :func:`crd_validator` — a cached :class:`CrdValidator` for (release, kind, apiVersion);
* :func:`to_json_schema`, :func:`validator_for` — the conversion and its validator, for any
  ``openAPIV3Schema``;
* :func:`crd_errors` — ``"path: message"`` strings for an object (its kind and apiVersion pick the
  schema); empty when a server would accept it. Paths are dotted, list indices in brackets
  (``spec.components[0].replicas``; ``<root>`` for the object itself); each unknown field is one
  message, ``spec.foo: unknown field 'foo'``.

A release is named by its full version (``"1.5.0"``) or by its minor version / a
``DynamoRelease`` (``"1.5"``).
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators
from jsonschema.protocols import Validator

__all__ = [
    "CRD_ROOT",
    "CrdValidator",
    "ServedVersion",
    "crd_documents",
    "crd_errors",
    "crd_validator",
    "full_version",
    "releases",
    "served_versions",
    "to_json_schema",
    "validator_for",
]

#: ``tests/data/dynamo``: one folder per release (full version), each with ``crds/``
CRD_ROOT = Path(__file__).resolve().parent / "data" / "dynamo"

_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = rf"{_DNS_LABEL}(\.{_DNS_LABEL})*"
_QUALIFIED_NAME = rf"^({_DNS_SUBDOMAIN}/)?([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$"
_LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
_STRING_MAP: dict[str, Any] = {
    "type": "object",
    "propertyNames": {"pattern": _QUALIFIED_NAME, "maxLength": 316},
    "additionalProperties": {"type": "string"},
}

#: ObjectMeta as a server validates it in a custom resource (metadata.name a DNS subdomain)
OBJECT_META: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 253, "pattern": f"^{_DNS_SUBDOMAIN}$"},
        "generateName": {"type": "string"},
        "namespace": {"type": "string", "maxLength": 63, "pattern": f"^{_DNS_LABEL}$"},
        "labels": {
            **_STRING_MAP,
            "additionalProperties": {"type": "string", "maxLength": 63, "pattern": _LABEL_VALUE},
        },
        "annotations": _STRING_MAP,
        "uid": {"type": "string"},
        "resourceVersion": {"type": "string"},
        "generation": {"type": "integer"},
        "creationTimestamp": {"type": ["string", "null"]},
        "deletionTimestamp": {"type": ["string", "null"]},
        "deletionGracePeriodSeconds": {"type": "integer"},
        "selfLink": {"type": "string"},
        "finalizers": {"type": "array", "items": {"type": "string"}},
        "ownerReferences": {"type": "array", "items": {"type": "object"}},
        "managedFields": {"type": "array", "items": {"type": "object"}},
    },
    "additionalProperties": False,
}

# Keywords copied unchanged (value validations JSON Schema and OpenAPI 3.0 share).
_COPIED = (
    "enum", "required", "pattern", "minLength", "maxLength", "minItems", "maxItems",
    "uniqueItems", "minProperties", "maxProperties", "multipleOf", "format",
    "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
)  # fmt: skip


def full_version(release: str) -> str:
    """``"1.5"`` / ``DynamoRelease.v1_5`` / ``"1.5.0"`` → ``"1.5.0"`` (a folder of CRD_ROOT)."""
    text = str(release)  # a DynamoRelease is a StrEnum: its value
    if (CRD_ROOT / text / "crds").is_dir():
        return text
    matches = [p.name for p in releases() if p.name.startswith(f"{text}.")]
    if len(matches) != 1:
        raise ValueError(f"no Dynamo release {text!r} in {CRD_ROOT} (have {releases()})")
    return matches[0]


def releases() -> list[Path]:
    """The release folders under :data:`CRD_ROOT`, oldest first (compared numerically)."""
    dirs = [p for p in CRD_ROOT.iterdir() if (p / "crds").is_dir()]
    return sorted(dirs, key=lambda p: tuple(int(x) for x in p.name.split(".")))


def crd_documents(release: str) -> list[dict[str, Any]]:
    """The release's CustomResourceDefinition manifests (a fresh copy each call)."""
    return copy.deepcopy(list(_load_crds(full_version(release))))


@cache
def _load_crds(version: str) -> tuple[dict[str, Any], ...]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    docs: list[dict[str, Any]] = []
    for path in sorted((CRD_ROOT / version / "crds").glob("*.yaml")):
        docs += [d for d in yaml.load_all(path.read_text(), Loader=loader) if d]
    return tuple(docs)


@dataclass(frozen=True)
class ServedVersion:
    """One (kind, apiVersion) a release serves, as its CRD declares it."""

    kind: str
    api_version: str  # "nvidia.com/v1alpha1"
    plural: str
    namespaced: bool
    storage: bool
    deprecated: bool
    #: the CRD version's ``subresources`` (``status``, ``scale`` with its JSON paths)
    subresources: Mapping[str, Any] = field(default_factory=dict)
    short_names: tuple[str, ...] = ()


def served_versions(release: str) -> list[ServedVersion]:
    """Every (kind, apiVersion) the release's CRDs serve (``served: true``), sorted."""
    out = []
    for crd in _load_crds(full_version(release)):
        spec = crd["spec"]
        for ver in spec["versions"]:
            if not ver.get("served", False):
                continue
            out.append(
                ServedVersion(
                    kind=spec["names"]["kind"],
                    api_version=f"{spec['group']}/{ver['name']}",
                    plural=spec["names"]["plural"],
                    namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                    storage=bool(ver.get("storage", False)),
                    deprecated=bool(ver.get("deprecated", False)),
                    subresources=dict(ver.get("subresources") or {}),
                    short_names=tuple(spec["names"].get("shortNames", ())),
                )
            )
    return sorted(out, key=lambda s: (s.kind, s.api_version))


def _openapi_schema(version: str, kind: str, api_version: str) -> dict[str, Any]:
    group, _, name = api_version.partition("/")
    for crd in _load_crds(version):
        spec = crd["spec"]
        if spec["names"]["kind"] != kind or spec["group"] != group:
            continue
        for ver in spec["versions"]:
            if ver["name"] == name and ver.get("served", False):
                schema: dict[str, Any] = ver["schema"]["openAPIV3Schema"]
                return schema
    raise KeyError(f"Dynamo {version} serves no {kind} {api_version}")


# -- conversion ----------------------------------------------------------------------------------


def to_json_schema(
    openapi: Mapping[str, Any], *, kind: str | None = None, api_version: str | None = None
) -> dict[str, Any]:
    """A CRD version's ``openAPIV3Schema`` as a Draft 2020-12 JSON Schema (see module docstring).

    ``kind``/``api_version``, when given, must be the root object's ``kind``/``apiVersion``.
    """
    out = _convert(openapi, structural=True)
    props = out.setdefault("properties", {})
    props["metadata"] = OBJECT_META
    if kind is not None:
        props["kind"] = {"const": kind}
    if api_version is not None:
        props["apiVersion"] = {"const": api_version}
    if kind is not None or api_version is not None:
        # a whole object, as created: it names itself (metadata.name or generateName)
        out["required"] = sorted({*out.get("required", ()), "apiVersion", "kind", "metadata"})
        props["metadata"] = {
            **OBJECT_META,
            "anyOf": [{"required": ["name"]}, {"required": ["generateName"]}],
        }
    out["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return out


def _convert(node: Mapping[str, Any], *, structural: bool) -> dict[str, Any]:
    """One schema node; ``structural`` is False inside allOf/anyOf/oneOf/not (no closing)."""
    out: dict[str, Any] = {k: node[k] for k in _COPIED if k in node}
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if bound in node:
            out[exclusive if node.get(exclusive) is True else bound] = node[bound]
    nullable = bool(node.get("nullable"))
    types: list[str] = []
    if node.get("x-kubernetes-int-or-string"):
        types = ["integer", "string"]
    elif "type" in node:
        types = [node["type"]]
    if types:
        out["type"] = types + (["null"] if nullable else [])
        if len(out["type"]) == 1:
            out["type"] = out["type"][0]
    if nullable and "enum" in out and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]

    if "properties" in node:
        out["properties"] = {
            k: _convert(v, structural=structural) for k, v in node["properties"].items()
        }
    if isinstance(node.get("items"), Mapping):
        out["items"] = _convert(node["items"], structural=structural)
    extra = node.get("additionalProperties")
    if isinstance(extra, Mapping):
        out["additionalProperties"] = _convert(extra, structural=structural)
    elif isinstance(extra, bool):
        out["additionalProperties"] = extra
    for junctor in ("allOf", "anyOf", "oneOf"):
        if junctor in node:
            branches = [_convert(b, structural=False) for b in node[junctor]]
            if junctor == "anyOf" and types == ["integer", "string"]:
                branches = [b for b in branches if set(b) != {"type"}]  # int-or-string's pair
            if branches:
                out[junctor] = branches
    if "not" in node:
        out["not"] = _convert(node["not"], structural=False)

    if not structural:
        return out
    is_object = node.get("type") == "object" or "properties" in node
    if node.get("x-kubernetes-embedded-resource"):
        props = out.setdefault("properties", {})
        props.setdefault("apiVersion", {"type": "string", "minLength": 1})
        props.setdefault("kind", {"type": "string", "minLength": 1})
        props["metadata"] = OBJECT_META
        out["required"] = sorted({*out.get("required", ()), "apiVersion", "kind"})
    if is_object and not node.get("x-kubernetes-preserve-unknown-fields"):
        out.setdefault("additionalProperties", False)
    return out


# -- validation ----------------------------------------------------------------------------------


def _list_type(
    validator: Validator, value: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    """``x-kubernetes-list-type``: ``set`` items and ``map`` keys are unique (atomic: no rule)."""
    if not validator.is_type(instance, "array"):
        return
    seen: list[Any] = []
    keys = list(schema.get("x-kubernetes-list-map-keys", ()))
    for item in instance:
        if value == "set":
            ident: Any = item
        elif value == "map" and isinstance(item, Mapping):
            ident = {k: item.get(k) for k in keys}
        else:
            continue
        if ident in seen:
            yield ValidationError(f"Duplicate value: {ident!r}")
        seen.append(ident)


_FORMATS = FormatChecker(formats=())


def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value):
        raise ValueError(f"{value!r} is not an RFC 3339 date-time")
    datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


def _byte(value: object) -> bool:
    if isinstance(value, str):
        base64.b64decode(value, validate=True)
    return True


_FORMATS.checks("date-time", raises=ValueError)(_date_time)
_FORMATS.checks("byte", raises=binascii.Error)(_byte)
_K8sValidator = validators.extend(Draft202012Validator, {"x-kubernetes-list-type": _list_type})


def validator_for(json_schema: Mapping[str, Any]) -> Validator:
    """A jsonschema validator for a schema from :func:`to_json_schema`: Draft 2020-12 plus
    ``x-kubernetes-list-type`` and the formats a server checks. The schema itself is not checked
    against the meta-schema here (a second per CRD); ``tests/test_crd_schema.py`` does that."""
    validator: Validator = _K8sValidator(json_schema, format_checker=_FORMATS)
    return validator


def _path(parts: Sequence[str | int]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


@dataclass(frozen=True)
class CrdValidator:
    """The JSON Schema of one (release, kind, apiVersion) and its jsonschema validator."""

    release: str  # full version, "1.5.0"
    kind: str
    api_version: str
    schema: Mapping[str, Any]
    validator: Validator

    def errors(self, obj: Any) -> list[str]:
        """``"path: message"`` for everything a server would refuse (or prune) in ``obj``."""
        out: list[str] = []
        for err in self.validator.iter_errors(obj):
            parts = list(err.absolute_path)
            if err.validator == "additionalProperties" and err.validator_value is False:
                known = set(err.schema.get("properties", {}))
                for key in sorted(k for k in err.instance if k not in known):
                    out.append(f"{_path([*parts, key])}: unknown field {key!r}")
                continue
            out.append(f"{_path(parts)}: {err.message}")
        return sorted(out)

    def is_valid(self, obj: Any) -> bool:
        """Whether a server would accept ``obj`` unchanged."""
        return not self.errors(obj)


@cache
def _validator(version: str, kind: str, api_version: str) -> CrdValidator:
    schema = to_json_schema(_openapi_schema(version, kind, api_version), kind=kind,
                            api_version=api_version)  # fmt: skip
    return CrdValidator(version, kind, api_version, schema, validator_for(schema))


def crd_validator(release: str, kind: str, api_version: str) -> CrdValidator:
    """The (cached) validator for ``kind`` at ``api_version`` (``nvidia.com/v1beta1``) as the
    release serves it; KeyError if the release does not serve that pair."""
    return _validator(full_version(release), kind, api_version)


def crd_errors(obj: Any, release: str) -> list[str]:
    """``"path: message"`` for what the release's API server would refuse in ``obj`` (its own
    ``kind`` and ``apiVersion`` pick the CRD version); ``[]`` when it would accept it."""
    if not isinstance(obj, Mapping):
        return [f"<root>: {obj!r} is not an object"]
    kind, api_version = obj.get("kind"), obj.get("apiVersion")
    if not isinstance(kind, str) or not isinstance(api_version, str):
        return ["<root>: kind and apiVersion must be strings"]
    try:
        return crd_validator(release, kind, api_version).errors(obj)
    except KeyError as exc:
        return [f"<root>: {exc.args[0]}"]
