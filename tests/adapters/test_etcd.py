"""The etcd adapter against a real etcd 3.4 (v3 HTTP/JSON gateway): client calls, transactions,
the state store's layout and guard, malformed values, and an etcd that stops and comes back."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
from dynamo_plan.connectors.base import ScaleTarget
from dynamo_plan.connectors.virtual import VirtualConnector
from dynamo_plan.connectors.virtual_client import VirtualClient
from dynamo_plan.connectors.virtual_state import StateStore, VirtualState
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


def test_non_json_answer_is_a_state_store_error() -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<html>proxy</html>")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(StateStoreError, match=r"the answer is not JSON: '<html>proxy"):
            EtcdClient(url).get_prefix("x/")
    finally:
        server.shutdown()
        server.server_close()


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
