"""The etcd adapter against a real etcd 3.4 (v3 HTTP/JSON gateway): client calls, transactions,
the state store's layout and guard, malformed values, and an etcd that stops and comes back.
Answers a real etcd does not give (non-JSON, HTTP 500, bad base64, timeouts) come from an
``httpx.MockTransport`` passed to the client."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dynamo_plan.adapters.etcd import (
    EtcdClient,
    EtcdStateStore,
    b64,
    compare_absent,
    compare_value,
    request_put,
)
from dynamo_plan.adapters.virtual_state import StateStore, VirtualState
from dynamo_plan.connectors.base import ScaleTarget
from dynamo_plan.connectors.virtual import VirtualConnector
from dynamo_plan.connectors.virtual_client import VirtualClient
from dynamo_plan.errors import StateStoreError
from tests.servers import ServerProcess, free_port, start_etcd


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_etcd(tmp_path_factory.mktemp("etcd"), max_lifetime_s=300)
    yield server
    server.stop()


@pytest.fixture
def client(etcd: ServerProcess) -> Iterator[EtcdClient]:
    c = EtcdClient(etcd.url)
    yield c
    c.close()


@pytest.fixture
def ns() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def test_construction_does_no_io() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    store = EtcdStateStore(EtcdClient(url + "/", timeout_s=1.0), "x")
    assert isinstance(store, StateStore)
    assert store.location == f"etcd {url} v1/x/planner/"
    store.close()  # closing a client that never connected is fine too


def test_put_and_get_prefix_stay_inside_the_prefix(client: EtcdClient, ns: str) -> None:
    client.put(f"{ns}/a", b"1")
    client.put(f"{ns}/b", b"\x00\xff")
    client.put(f"{ns}0", b"outside")  # '0' follows '/' in ASCII: just past the prefix
    assert client.get_prefix(f"{ns}/") == {f"{ns}/a": b"1", f"{ns}/b": b"\x00\xff"}
    assert client.get_prefix(f"{ns}/none/") == {}


def test_txn_is_all_or_nothing(client: EtcdClient, ns: str) -> None:
    ops = [request_put(f"{ns}/x", b"1"), request_put(f"{ns}/y", b"2")]
    assert client.txn([compare_absent(f"{ns}/x")], ops) is True
    assert client.get_prefix(f"{ns}/") == {f"{ns}/x": b"1", f"{ns}/y": b"2"}
    again = [request_put(f"{ns}/x", b"9"), request_put(f"{ns}/z", b"9")]
    assert client.txn([compare_absent(f"{ns}/x")], again) is False
    assert client.txn([compare_value(f"{ns}/x", b"2")], again) is False
    assert client.get_prefix(f"{ns}/") == {f"{ns}/x": b"1", f"{ns}/y": b"2"}
    assert client.txn([compare_value(f"{ns}/x", b"1")], again) is True
    assert client.get_prefix(f"{ns}/") == {f"{ns}/x": b"9", f"{ns}/y": b"2", f"{ns}/z": b"9"}


def test_store_layout_and_one_transaction_per_decision(
    etcd: ServerProcess, client: EtcdClient, ns: str
) -> None:
    store = EtcdStateStore(client, ns)
    assert store.read() is None
    store.write_decision(0, 2, 3)
    store.acknowledge(0)
    store.write_decision(1, 4, 5)
    prefix = f"v1/{ns}/planner/"
    assert client.get_prefix(prefix) == {
        f"{prefix}decision_id": b"1",
        f"{prefix}num_prefill_workers": b"4",
        f"{prefix}num_decode_workers": b"5",
        f"{prefix}scaled_decision_id": b"0",
    }
    assert store.read() == VirtualState(1, 4, 5, 0)
    # the three decision keys were changed by one transaction: one shared mod_revision
    raw = httpx.post(
        f"{etcd.url}/v3/kv/range", json={"key": b64(prefix), "range_end": b64(prefix[:-1] + "0")}
    ).json()
    revisions = {
        kv["mod_revision"] for kv in raw["kvs"] if kv["key"] != b64(f"{prefix}scaled_decision_id")
    }
    assert len(revisions) == 1


def test_guard_refuses_a_decision_id_twice(client: EtcdClient, ns: str) -> None:
    store = EtcdStateStore(client, ns)
    with pytest.raises(StateStoreError, match=r"decision 1 not written.*found no decision"):
        store.write_decision(1, 1, 1)
    store.write_decision(0, 1, 1)
    with pytest.raises(StateStoreError, match=r"decision 0 not written.*found decision 0"):
        store.write_decision(0, 9, 9)
    store.write_decision(1, 2, 2)
    with pytest.raises(StateStoreError, match="expected decision 0 stored, found decision 1"):
        store.write_decision(1, 9, 9)
    assert store.read() == VirtualState(1, 2, 2, -1)


def test_concurrent_writers_get_distinct_ids(etcd: ServerProcess, ns: str) -> None:
    won: dict[int, list[int]] = {w: [] for w in range(4)}

    def writer(w: int) -> None:
        store = EtcdStateStore(EtcdClient(etcd.url), ns)
        while len(won[w]) < 8:
            state = store.read()
            next_id = 0 if state is None else state.decision_id + 1
            try:
                store.write_decision(next_id, w, next_id)
            except StateStoreError:
                continue
            won[w].append(next_id)
        store.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in won]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    ids = sorted(i for r in won.values() for i in r)
    assert ids == list(range(32))
    state = EtcdStateStore(EtcdClient(etcd.url), ns).read()
    assert state is not None and state.decision_id == 31
    assert state.num_prefill_workers == next(w for w, r in won.items() if 31 in r)


@pytest.mark.parametrize(
    ("field", "value"),
    [("decision_id", b"abc"), ("num_decode_workers", b"-1"), ("scaled_decision_id", b"1.5")],
)
def test_malformed_value_names_the_key(
    client: EtcdClient, ns: str, field: str, value: bytes
) -> None:
    store = EtcdStateStore(client, ns)
    store.write_decision(0, 1, 1)
    client.put(store.key(field), value)
    with pytest.raises(StateStoreError, match=rf"key 'v1/{ns}/planner/{field}' must be an integer"):
        store.read()


def test_missing_count_names_the_key(client: EtcdClient, ns: str) -> None:
    store = EtcdStateStore(client, ns)
    client.put(store.key("decision_id"), b"0")
    with pytest.raises(StateStoreError, match=rf"'v1/{ns}/planner/num_prefill_workers' is missing"):
        store.read()


def test_http_errors_are_state_store_errors(etcd: ServerProcess) -> None:
    with pytest.raises(StateStoreError, match=r"/nope/v3/kv/range: range 'a/' failed: HTTP 404"):
        EtcdClient(f"{etcd.url}/nope").get_prefix("a/")
    with pytest.raises(StateStoreError, match=r"transaction failed: HTTP 400: illegal base64"):
        EtcdClient(etcd.url).txn([{"key": "!!"}], [])


def test_unreachable_etcd_is_a_state_store_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(StateStoreError, match=rf"etcd {url}/v3/kv/put: put 'k' failed: Connect"):
        EtcdClient(url, timeout_s=1.0).put("k", b"v")


# -- answers a real etcd does not give: httpx.MockTransport ---------------------------------------

MOCK_URL = "http://etcd.test:2379"


def canned(status: int, body: bytes | object) -> httpx.MockTransport:
    """A transport answering every request with ``status`` and ``body`` (bytes as they are,
    anything else as JSON)."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.MockTransport(lambda request: httpx.Response(status, content=content))


def failing(error: Exception) -> httpx.MockTransport:
    """A transport raising ``error`` for every request (what httpx raises on a network failure)."""

    def handle(request: httpx.Request) -> httpx.Response:
        raise error

    return httpx.MockTransport(handle)


def test_non_json_answer_is_a_state_store_error() -> None:
    client = EtcdClient(MOCK_URL, transport=canned(200, b"<html>proxy</html>"))
    with pytest.raises(StateStoreError, match=r"the answer is not JSON: '<html>proxy"):
        client.get_prefix("x/")


def test_construction_and_close_send_nothing() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    client = EtcdClient(MOCK_URL + "/", transport=httpx.MockTransport(handle))
    store = EtcdStateStore(client, "x")
    assert store.location == f"etcd {MOCK_URL} v1/x/planner/"
    store.close()
    assert seen == []
    assert store.read() is None  # a later call opens a new HTTP client over the transport
    (request,) = seen
    assert request.method == "POST" and str(request.url) == f"{MOCK_URL}/v3/kv/range"
    assert json.loads(request.content) == {
        "key": b64("v1/x/planner/"),
        "range_end": b64("v1/x/planner0"),
    }
    store.close()


@pytest.mark.parametrize(
    ("status", "body", "match"),
    [
        (500, {"error": "etcdserver: request timed out", "code": 14}, "HTTP 500: etcdserver: req"),
        (503, {"message": "etcdserver: no leader"}, "HTTP 503: etcdserver: no leader"),
        (502, b"<html>bad gateway</html>", "HTTP 502: <html>bad gateway</html>"),
        (502, b"", "HTTP 502: Bad Gateway"),
        (200, [1, 2], "expected a JSON object, got list"),
        (200, {"kvs": [{"key": "!!not base64"}]}, "malformed key-value in the answer: Error"),
        (200, {"kvs": [{"value": b64("1")}]}, "malformed key-value in the answer: KeyError"),
        (200, {"kvs": [{"key": b64(b"\xff"), "value": ""}]}, "malformed .*UnicodeDecodeError"),
    ],
)
def test_unusable_answers_are_state_store_errors(status: int, body: object, match: str) -> None:
    store = EtcdStateStore(EtcdClient(MOCK_URL, transport=canned(status, body)), "ns")
    with pytest.raises(StateStoreError, match=match) as e:
        store.read()
    assert str(e.value).startswith(f"etcd {MOCK_URL}/v3/kv/range: range 'v1/ns/planner/'")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("error", "name"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused"), "ConnectError"),
        (httpx.ReadTimeout("timed out"), "ReadTimeout"),
        (httpx.RemoteProtocolError("peer closed connection"), "RemoteProtocolError"),
    ],
)
def test_network_failures_are_state_store_errors(error: Exception, name: str) -> None:
    client = EtcdClient(MOCK_URL, transport=failing(error))
    txn_failed = rf"etcd {MOCK_URL}/v3/kv/txn: transaction failed: {name}: "
    with pytest.raises(StateStoreError, match=txn_failed):
        client.txn([], [])
    connector = VirtualConnector(EtcdStateStore(client, "ns"))
    range_failed = rf"/v3/kv/range: range 'v1/ns/planner/' failed: {name}: "
    with pytest.raises(StateStoreError, match=range_failed):
        connector.apply(ScaleTarget(1, 1, "test"))


def test_etcd_stopped_then_restarted_catches_up(tmp_path: Path) -> None:
    server = start_etcd(tmp_path / "etcd", max_lifetime_s=120)
    try:
        store = EtcdStateStore(EtcdClient(server.url, timeout_s=1.0), "restart")
        planner = VirtualConnector(store)
        environment = VirtualClient(store)
        ids = []
        for n in (1, 2):
            ids.append(planner.apply(ScaleTarget(n, n, "test")).decision_id)
            environment.complete()
        server.stop()
        with pytest.raises(StateStoreError, match=rf"etcd {server.url}/v3/kv/range"):
            planner.apply(ScaleTarget(3, 3, "test"))
        with pytest.raises(StateStoreError):
            environment.complete()
        server.start()
        for n in (3, 4):
            ids.append(planner.apply(ScaleTarget(n, n, "test")).decision_id)
            environment.complete()
        assert ids == [0, 1, 2, 3]
        assert store.read() == VirtualState(3, 4, 4, 3)
        store.close()
    finally:
        server.stop()
