"""The JSON-file state store: round trip, malformed files, atomic replace, concurrent writers."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path
from typing import Any

import pytest

from dynamo_plan.adapters.state_file import FileStateStore
from dynamo_plan.adapters.virtual_state import StateStore, VirtualState
from dynamo_plan.errors import InputError, StateStoreError


def test_missing_file_reads_none_and_construction_does_no_io(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path / "state.json")
    assert isinstance(store, StateStore)
    assert store.read() is None
    assert list(tmp_path.iterdir()) == []


def test_round_trip_keeps_the_acknowledgement(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path / "state.json")
    store.write_decision(0, 2, 3)
    assert store.read() == VirtualState(0, 2, 3, -1)
    store.acknowledge(0)
    store.write_decision(1, 4, 5)
    assert store.read() == VirtualState(1, 4, 5, 0)
    assert json.loads((tmp_path / "state.json").read_text()) == {
        "decision_id": 1,
        "num_prefill_workers": 4,
        "num_decode_workers": 5,
        "scaled_decision_id": 0,
    }


def test_write_refuses_an_id_that_does_not_follow(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path / "state.json")
    with pytest.raises(StateStoreError, match=r"decision 1 not written.*found no decision"):
        store.write_decision(1, 1, 1)
    store.write_decision(0, 1, 1)
    with pytest.raises(StateStoreError, match=r"decision 0 not written.*found decision 0"):
        store.write_decision(0, 2, 2)
    assert store.read() == VirtualState(0, 1, 1, -1)


def test_acknowledge_without_a_decision_fails(tmp_path: Path) -> None:
    with pytest.raises(StateStoreError, match="no decision stored"):
        FileStateStore(tmp_path / "state.json").acknowledge(0)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            '{"decision_id": "3", "num_prefill_workers": 1, "num_decode_workers": 1}',
            "field 'decision_id' must be an integer >= -1, got \"3\"",
        ),
        (
            '{"decision_id": -2, "num_prefill_workers": 1, "num_decode_workers": 1}',
            "field 'decision_id' must be an integer >= -1, got -2",
        ),
        (
            '{"decision_id": 0, "num_prefill_workers": true, "num_decode_workers": 1}',
            "field 'num_prefill_workers' must be an integer >= 0, got true",
        ),
        (
            '{"decision_id": 0, "num_prefill_workers": 1, "num_decode_workers": 1.5}',
            "field 'num_decode_workers' must be an integer >= 0, got 1.5",
        ),
        ('{"decision_id": 0, "num_prefill_workers": 1}', "field 'num_decode_workers' is missing"),
        ("[1, 2]", "expected a JSON object"),
        ('{"decision_id": 0,\n', ":2: not valid JSON"),
    ],
)
def test_malformed_file_names_the_field(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "state.json"
    path.write_text(content)
    with pytest.raises(StateStoreError) as err:
        FileStateStore(path).read()
    assert str(err.value).startswith(str(path))
    assert message in str(err.value)


def test_failed_write_leaves_the_old_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    store = FileStateStore(path)
    store.write_decision(0, 1, 1)
    before = path.read_bytes()

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(
        StateStoreError, match=r"cannot write .*state.json: No space left on device"
    ):
        store.write_decision(1, 2, 2)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json", "state.json.lock"]


def test_write_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    link = tmp_path / "state.json"
    link.symlink_to(real.name)
    store = FileStateStore(link)
    store.write_decision(0, 1, 2)
    store.acknowledge(0)
    assert link.is_symlink() and json.loads(real.read_text())["num_decode_workers"] == 2
    assert store.read() == VirtualState(0, 1, 2, 0)


def test_missing_directory_is_a_state_store_error(tmp_path: Path) -> None:
    with pytest.raises(StateStoreError, match="cannot open lock"):
        FileStateStore(tmp_path / "absent" / "state.json").write_decision(0, 1, 1)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d, "refusing to write over"),
        (lambda d: d / "absent" / "state.json", "does not exist"),
        (lambda d: _file(d / "state.json", b"\xff\xfe{\x00"), "not UTF-8 text"),
        (lambda d: _file(d / "state.json", b"[1, 2]"), "expected a JSON object"),
    ],
    ids=["directory", "folder-missing", "binary", "not-a-state"],
)
def test_check_is_an_input_error(tmp_path: Path, make: Any, message: str) -> None:
    """A path that cannot hold the state is bad input (exit 1) when checked up front; the same
    file met while running stays a StateStoreError (the planner logs and retries)."""
    path = make(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(InputError, match=message):
        FileStateStore(path).check()
    assert sorted(tmp_path.rglob("*")) == before  # the check leaves nothing behind
    if path.is_file():
        with pytest.raises(StateStoreError):
            FileStateStore(path).read()


def test_check_accepts_a_new_or_valid_file_and_reading_needs_no_write(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    FileStateStore(path).check()
    assert list(tmp_path.iterdir()) == []
    FileStateStore(path).write_decision(0, 1, 2)
    FileStateStore(path).check()
    FileStateStore(tmp_path / "absent" / "s.json").check(writable=False)  # `virtual get`: None
    with pytest.raises(InputError, match="is a directory"):
        FileStateStore(tmp_path).check(writable=False)


def _file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _writer(path: str, worker: int, count: int) -> list[int]:
    """Write ``count`` decisions, each as the next id after what is stored; retry when another
    process got there first; acknowledge now and then. Returns the ids this worker wrote."""
    store = FileStateStore(Path(path))
    mine: list[int] = []
    while len(mine) < count:
        state = store.read()
        next_id = 0 if state is None else state.decision_id + 1
        try:
            store.write_decision(next_id, worker, next_id)
        except StateStoreError:
            continue
        mine.append(next_id)
        if next_id % 3 == 0:
            store.acknowledge(next_id)
    return mine


def test_concurrent_writers_never_corrupt_nor_duplicate(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    workers, count = 4, 25
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers) as pool:
        results = pool.starmap(_writer, [(str(path), w, count) for w in range(workers)])
    ids = sorted(i for r in results for i in r)
    assert ids == list(range(workers * count))  # every id written exactly once
    state = FileStateStore(path).read()
    assert state is not None
    assert state.decision_id == workers * count - 1
    winner = next(w for w, r in enumerate(results) if state.decision_id in r)
    assert (state.num_prefill_workers, state.num_decode_workers) == (winner, state.decision_id)
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]
