"""The JSON-file state store: round trip, malformed files, atomic replace, concurrent writers."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest

from dynamo_plan.adapters.state_file import FileStateStore
from dynamo_plan.connectors.virtual_state import StateStore, VirtualState
from dynamo_plan.errors import StateStoreError


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
    with pytest.raises(StateStoreError, match=r"state.json: cannot write: No space left on device"):
        store.write_decision(1, 2, 2)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json", "state.json.lock"]


def test_missing_directory_is_a_state_store_error(tmp_path: Path) -> None:
    with pytest.raises(StateStoreError, match="cannot open lock"):
        FileStateStore(tmp_path / "absent" / "state.json").write_decision(0, 1, 1)


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
