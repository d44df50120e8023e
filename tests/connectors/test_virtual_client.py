"""The environment's side of the virtual connector: get, wait, complete (file store, fake clock)."""

from __future__ import annotations

import pytest

from dynamo_plan.adapters.state_file import FileStateStore
from dynamo_plan.adapters.virtual_state import VirtualState
from dynamo_plan.connectors.virtual_client import DecisionWaitTimeout, VirtualClient
from dynamo_plan.errors import InputError, StateStoreError
from tests.connectors.fakes import ControlledStore, FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def client(store: FileStateStore | ControlledStore, clock: FakeClock) -> VirtualClient:
    return VirtualClient(store, clock=clock, sleep=clock.sleep)


def test_get_is_none_before_any_decision(file_store: FileStateStore, clock: FakeClock) -> None:
    assert client(file_store, clock).get() is None


def test_wait_returns_an_unacknowledged_decision(
    file_store: FileStateStore, clock: FakeClock
) -> None:
    def sleep_then_decide(seconds: float) -> None:
        clock.sleep(seconds)
        if clock.now >= 1.0 and file_store.read() is None:
            file_store.write_decision(0, 2, 3)

    c = VirtualClient(file_store, clock=clock, sleep=sleep_then_decide)
    assert c.wait(timeout_s=10.0, poll_s=0.5) == VirtualState(0, 2, 3, -1)
    assert clock.now == pytest.approx(1.0)


def test_wait_after_decision_id(file_store: FileStateStore, clock: FakeClock) -> None:
    file_store.write_decision(0, 1, 1)
    file_store.write_decision(1, 2, 2)
    file_store.acknowledge(1)
    c = client(file_store, clock)
    assert c.wait(5.0, after_decision_id=0).decision_id == 1  # acknowledged, but newer than 0
    with pytest.raises(DecisionWaitTimeout, match="no decision after 1 within 5 s"):
        c.wait(5.0, after_decision_id=1)


def test_wait_times_out_with_a_clear_error(file_store: FileStateStore, clock: FakeClock) -> None:
    file_store.write_decision(0, 1, 1)
    file_store.acknowledge(0)
    with pytest.raises(DecisionWaitTimeout) as err:
        client(file_store, clock).wait(timeout_s=2.0, poll_s=0.5)
    message = str(err.value)
    assert str(file_store.path) in message and "within 2 s" in message
    assert "latest decision 0, acknowledged" in message
    assert err.value.exit_code == 3
    assert clock.now == pytest.approx(2.0)


def test_wait_store_failure_raises_state_store_error(
    file_store: FileStateStore, clock: FakeClock
) -> None:
    store = ControlledStore(file_store)
    store.down = True
    with pytest.raises(StateStoreError, match="unreachable"):
        client(store, clock).wait(timeout_s=5.0)


def test_complete_acknowledges_the_latest(file_store: FileStateStore, clock: FakeClock) -> None:
    file_store.write_decision(0, 1, 1)
    file_store.write_decision(1, 2, 3)
    state = client(file_store, clock).complete()
    assert state == VirtualState(1, 2, 3, 1) and state.acknowledged


def test_complete_a_given_id_never_moves_backwards(
    file_store: FileStateStore, clock: FakeClock
) -> None:
    file_store.write_decision(0, 1, 1)
    file_store.write_decision(1, 2, 3)
    c = client(file_store, clock)
    assert c.complete(0).scaled_decision_id == 0
    assert c.complete(1).scaled_decision_id == 1
    assert c.complete(0).scaled_decision_id == 1


@pytest.mark.parametrize("decision_id", [2, -1])
def test_complete_refuses_an_id_never_decided(
    file_store: FileStateStore, clock: FakeClock, decision_id: int
) -> None:
    file_store.write_decision(0, 1, 1)
    file_store.write_decision(1, 2, 3)
    with pytest.raises(InputError, match=rf"decision {decision_id} was never decided"):
        client(file_store, clock).complete(decision_id)
    assert file_store.read() == VirtualState(1, 2, 3, -1)


def test_complete_without_any_decision(file_store: FileStateStore, clock: FakeClock) -> None:
    with pytest.raises(InputError, match="none decided yet"):
        client(file_store, clock).complete()
