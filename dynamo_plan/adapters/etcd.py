"""etcd over its v3 HTTP/JSON gateway, and the virtual connector's state kept in it.

:class:`EtcdClient` speaks the gateway (``POST <url>/v3/kv/range|put|txn``; keys and values
base64 in the JSON, int64 fields as decimal strings, ``false``/empty fields omitted) through
``httpx``; it opens its connection on the first call, never in the constructor. Every failure
(connection, timeout, HTTP status, JSON) becomes one :class:`~dynamo_plan.errors.StateStoreError`
line naming the URL and what failed.

:class:`EtcdStateStore` keeps a :class:`~dynamo_plan.adapters.virtual_state.VirtualState` under
``v1/<namespace>/planner/<field>`` (Dynamo's layout), each value the field as decimal text.
A decision is written by ONE transaction guarded by the previous ``decision_id``, so two planners
can never write the same decision id.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import httpx

from dynamo_plan.adapters.virtual_state import FIELD_MINIMUMS, NO_DECISION, VirtualState
from dynamo_plan.errors import StateStoreError

__all__ = [
    "EtcdClient",
    "EtcdStateStore",
    "b64",
    "compare_absent",
    "compare_value",
    "request_put",
]


def b64(data: str | bytes) -> str:
    """``data`` (UTF-8 for ``str``) base64-encoded, as the gateway's JSON carries keys and values."""
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode("ascii")


def compare_value(key: str, value: bytes) -> dict[str, Any]:
    """Gateway compare: ``key`` exists and holds exactly ``value``."""
    return {"key": b64(key), "target": "VALUE", "result": "EQUAL", "value": b64(value)}


def compare_absent(key: str) -> dict[str, Any]:
    """Gateway compare: ``key`` does not exist (its create revision is 0)."""
    return {"key": b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"}


def request_put(key: str, value: bytes) -> dict[str, Any]:
    """Gateway transaction operation: put ``value`` at ``key``."""
    return {"request_put": {"key": b64(key), "value": b64(value)}}


def _prefix_end(prefix: bytes) -> bytes:
    """The etcd ``range_end`` that selects every key starting with ``prefix`` (last byte + 1)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return b"\x00"  # every key
    return stripped[:-1] + bytes([stripped[-1] + 1])


class EtcdClient:
    """The few etcd v3 calls the planner needs, over the HTTP/JSON gateway at ``url``.

    ``timeout_s`` bounds each request (connect, read and write), in seconds; ``transport``: the
    ``httpx`` transport to send through (default: httpx's own, over the network; tests pass an
    :class:`httpx.MockTransport`). No I/O until the first call.
    """

    def __init__(
        self, url: str, timeout_s: float = 5.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.transport = transport
        self._client: httpx.Client | None = None

    def _post(self, path: str, body: dict[str, Any], what: str) -> dict[str, Any]:
        endpoint = f"{self.url}{path}"
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout_s, transport=self.transport)
        try:
            response = self._client.post(endpoint, json=body)
        except httpx.HTTPError as e:
            raise StateStoreError(f"etcd {endpoint}: {what} failed: {type(e).__name__}: {e}") from e
        if response.status_code != 200:
            raise StateStoreError(
                f"etcd {endpoint}: {what} failed: HTTP {response.status_code}: "
                f"{_error_text(response)}"
            )
        try:
            answer = response.json()
        except ValueError as e:
            raise StateStoreError(
                f"etcd {endpoint}: {what}: the answer is not JSON: {response.text[:80]!r}"
            ) from e
        if not isinstance(answer, dict):
            raise StateStoreError(
                f"etcd {endpoint}: {what}: expected a JSON object, got {type(answer).__name__}"
            )
        return answer

    def get_prefix(self, prefix: str) -> dict[str, bytes]:
        """Every key starting with ``prefix`` and its value (``{}`` when none)."""
        raw = prefix.encode()
        answer = self._post(
            "/v3/kv/range",
            {"key": b64(raw), "range_end": b64(_prefix_end(raw))},
            f"range {prefix!r}",
        )
        kvs = answer.get("kvs", [])
        try:
            return {
                base64.b64decode(kv["key"], validate=True).decode(): base64.b64decode(
                    kv.get("value", ""), validate=True
                )
                for kv in kvs
            }
        except (KeyError, TypeError, binascii.Error, UnicodeDecodeError) as e:
            raise StateStoreError(
                f"etcd {self.url}/v3/kv/range: range {prefix!r}: malformed key-value in the "
                f"answer: {type(e).__name__}: {e}"
            ) from e

    def put(self, key: str, value: bytes) -> None:
        """Set ``key`` to ``value``."""
        self._post("/v3/kv/put", {"key": b64(key), "value": b64(value)}, f"put {key!r}")

    def txn(self, compare: list[dict[str, Any]], success: list[dict[str, Any]]) -> bool:
        """One transaction: if every ``compare`` holds, run every ``success`` operation (gateway
        shapes, see :func:`compare_value`, :func:`compare_absent`, :func:`request_put`); return
        whether it did. All or nothing."""
        answer = self._post("/v3/kv/txn", {"compare": compare, "success": success}, "transaction")
        return bool(answer.get("succeeded", False))

    def close(self) -> None:
        """Close the connection pool (a later call opens a new one)."""
        if self._client is not None:
            self._client.close()
            self._client = None


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:120] or response.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("message") or body.get("error"), str):
        return str(body.get("message") or body.get("error"))
    return response.text.strip()[:120]


_INT = re.compile(rb"-?[0-9]+")


class EtcdStateStore:
    """The virtual connector's state in etcd, one key per field under
    ``v1/<namespace>/planner/`` (ints as decimal text)."""

    def __init__(self, client: EtcdClient, namespace: str) -> None:
        self.client = client
        self.namespace = namespace
        self.prefix = f"v1/{namespace}/planner/"
        self.location = f"etcd {client.url} {self.prefix}"

    def key(self, field: str) -> str:
        """The etcd key of state ``field``."""
        return f"{self.prefix}{field}"

    def _int(self, kvs: dict[str, bytes], field: str) -> int | None:
        key = self.key(field)
        if key not in kvs:
            return None
        raw = kvs[key]
        match = _INT.fullmatch(raw)
        value = int(match.group()) if match else None
        if value is None or value < FIELD_MINIMUMS[field]:
            raise StateStoreError(
                f"{self.location}: key '{key}' must be an integer >= {FIELD_MINIMUMS[field]}, "
                f"got {raw[:40]!r}"
            )
        return value

    def check(self, writable: bool = True) -> None:
        """Nothing local to check: etcd is only known by asking it (an unreachable etcd is not a
        setting error; the planner retries)."""
        return None

    def read(self) -> VirtualState | None:
        """The state now; ``None`` when no decision was ever written."""
        kvs = self.client.get_prefix(self.prefix)
        values = {field: self._int(kvs, field) for field in FIELD_MINIMUMS}
        decision_id = values["decision_id"]
        if decision_id is None:
            return None
        prefill, decode = values["num_prefill_workers"], values["num_decode_workers"]
        for field, value in (("num_prefill_workers", prefill), ("num_decode_workers", decode)):
            if value is None:
                raise StateStoreError(
                    f"{self.location}: key '{self.key(field)}' is missing "
                    f"(decision {decision_id} is stored)"
                )
        assert prefill is not None and decode is not None
        scaled = values["scaled_decision_id"]
        return VirtualState(decision_id, prefill, decode, NO_DECISION if scaled is None else scaled)

    def write_decision(self, decision_id: int, prefill: int, decode: int) -> None:
        """Write decision ``decision_id`` (which must follow the stored one: 0 when none is
        stored, else stored + 1) and both worker counts in ONE transaction guarded by the
        previous ``decision_id``. A failed guard raises ``StateStoreError`` naming what is
        stored: another writer got there first."""
        key = self.key("decision_id")
        previous = decision_id - 1
        guard = (
            compare_absent(key)
            if previous == NO_DECISION
            else compare_value(key, str(previous).encode())
        )
        ops = [
            request_put(key, str(decision_id).encode()),
            request_put(self.key("num_prefill_workers"), str(prefill).encode()),
            request_put(self.key("num_decode_workers"), str(decode).encode()),
        ]
        if self.client.txn([guard], ops):
            return
        found = self.client.get_prefix(key).get(key)
        stored = "no decision" if found is None else f"decision {found.decode(errors='replace')}"
        expected = "no decision" if previous == NO_DECISION else f"decision {previous}"
        raise StateStoreError(
            f"{self.location}: decision {decision_id} not written: expected {expected} stored, "
            f"found {stored} (another planner wrote it?)"
        )

    def acknowledge(self, decision_id: int) -> None:
        """Set ``scaled_decision_id`` (the environment's side)."""
        self.client.put(self.key("scaled_decision_id"), str(decision_id).encode())

    def close(self) -> None:
        """Close the etcd client's connections."""
        self.client.close()
