"""``dynamo-plan virtual get|wait|complete`` on a state file and on a real etcd."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dynamo_plan.adapters.etcd import EtcdClient, EtcdStateStore
from dynamo_plan.adapters.state_file import FileStateStore
from tests.conftest import run_cli
from tests.servers import ServerProcess, free_port, start_etcd


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_etcd(tmp_path_factory.mktemp("etcd"), max_lifetime_s=300)
    yield server
    server.stop()


def test_get_before_any_decision(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    result = run_cli("virtual", "get", "--state", path, "-o", "json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert data["location"] == str(path)
    assert data["decision_id"] is None and data["acknowledged"] is None


def test_wait_then_complete_on_a_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    FileStateStore(path).write_decision(0, 2, 3)
    waited = run_cli("virtual", "wait", "--state", path, "--timeout", "5", "-o", "json")
    assert waited.exit_code == 0, waited.stderr
    assert waited.json() | {"location": None} == {
        "location": None,
        "decision_id": 0,
        "num_prefill_workers": 2,
        "num_decode_workers": 3,
        "scaled_decision_id": -1,
        "acknowledged": False,
    }
    done = run_cli("virtual", "complete", "--state", path, "-o", "json")
    assert done.exit_code == 0, done.stderr
    assert done.json()["scaled_decision_id"] == 0 and done.json()["acknowledged"] is True
    got = run_cli("virtual", "get", "--state", path, "-o", "yaml")
    assert "acknowledged: true" in got.stdout
    table = run_cli("virtual", "get", "--state", path)
    assert table.exit_code == 0 and "num_decode_workers" in table.stdout


def test_wait_timeout_exits_3(tmp_path: Path) -> None:
    result = run_cli("virtual", "wait", "--state", tmp_path / "s.json", "--timeout", "0")
    assert result.exit_code == 3
    assert "no unacknowledged decision within 0 s (none decided yet)" in result.stderr


def test_complete_an_id_never_decided_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    FileStateStore(path).write_decision(0, 1, 1)
    result = run_cli("virtual", "complete", "--state", path, "--decision-id", "4")
    assert result.exit_code == 1
    assert "decision 4 was never decided" in result.stderr


@pytest.mark.parametrize(
    "flags", [[], ["--state", "s.json", "--etcd", "http://127.0.0.1:1"]], ids=["none", "both"]
)
def test_store_choice_is_a_usage_error(flags: list[str]) -> None:
    result = run_cli("virtual", "get", *flags)
    assert result.exit_code == 2
    assert "give exactly one" in result.stderr


def test_malformed_state_file_exits_1(tmp_path: Path) -> None:
    """The file the user named is not a state: bad input (1), not a failed store (3)."""
    path = tmp_path / "state.json"
    path.write_text('{"decision_id": "x"}')
    result = run_cli("virtual", "get", "--state", path)
    assert result.exit_code == 1
    assert "field 'decision_id' must be an integer >= -1" in result.stderr


@pytest.mark.parametrize("command", ["get", "wait", "complete"])
@pytest.mark.parametrize(
    ("content", "message"),
    [(b"\x00\x01\xff binary", "not UTF-8 text"), ('{"a": 1}'.encode("utf-16"), "UTF-16?")],
    ids=["binary", "utf16"],
)
def test_state_file_that_is_not_text_exits_1(
    tmp_path: Path, command: str, content: bytes, message: str
) -> None:
    """Issue 11: a binary state file exited 3 (as if a store had failed)."""
    path = tmp_path / "state.json"
    path.write_bytes(content)
    extra = ["--timeout", "0"] if command == "wait" else []
    result = run_cli("virtual", command, "--state", path, *extra, "-o", "json")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {path}:1: not UTF-8 text")
    assert message in result.stderr and result.stderr.strip().count("\n") == 0
    assert path.read_bytes() == content


def test_state_path_that_is_a_directory_exits_1(tmp_path: Path) -> None:
    result = run_cli("virtual", "get", "--state", tmp_path)
    assert result.exit_code == 1 and "is a directory" in result.stderr


def test_etcd_round_trip(etcd: ServerProcess) -> None:
    ns = f"cli{uuid.uuid4().hex[:8]}"
    EtcdStateStore(EtcdClient(etcd.url), ns).write_decision(0, 1, 4)
    flags = ["--etcd", etcd.url, "--namespace", ns, "-o", "json"]
    waited = run_cli("virtual", "wait", *flags, "--timeout", "5")
    assert waited.exit_code == 0, waited.stderr
    assert waited.json()["num_decode_workers"] == 4
    assert waited.json()["location"] == f"etcd {etcd.url} v1/{ns}/planner/"
    done = run_cli("virtual", "complete", *flags, "--decision-id", "0")
    assert done.json()["acknowledged"] is True
    newer = run_cli("virtual", "wait", *flags, "--timeout", "0", "--after-decision-id", "0")
    assert newer.exit_code == 3 and "no decision after 0" in newer.stderr


def test_etcd_unreachable_exits_3() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run_cli("virtual", "get", "--etcd", url)
    assert result.exit_code == 3
    assert f"etcd {url}/v3/kv/range" in result.stderr
