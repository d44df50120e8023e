"""The virtual connector's semantics (file store, injected clock): applied, unchanged, waiting,
forced, waiting for the acknowledgement, observe, and recovery after store failures."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamo_plan.adapters.state_file import FileStateStore
from dynamo_plan.adapters.virtual_state import VirtualState
from dynamo_plan.connectors.base import Connector, ScaleTarget, ServingReplicas
from dynamo_plan.connectors.virtual import VirtualConnector
from dynamo_plan.errors import InputError, StateStoreError
from tests.connectors.fakes import ControlledStore, FakeClock


def T(prefill: int, decode: int) -> ScaleTarget:
    return ScaleTarget(prefill, decode, "test")


@pytest.fixture
def store(file_store: FileStateStore) -> ControlledStore:
    return ControlledStore(file_store)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def connector(store: ControlledStore, clock: FakeClock, **kw: float) -> VirtualConnector:
    return VirtualConnector(store, clock=clock, sleep=clock.sleep, **kw)


def test_is_a_connector_named_virtual(store: ControlledStore, clock: FakeClock) -> None:
    c = connector(store, clock)
    assert isinstance(c, Connector)
    assert c.name == "virtual"


def test_first_apply_writes_decision_zero(store: ControlledStore, clock: FakeClock) -> None:
    outcome = connector(store, clock).apply(T(2, 3))
    assert (outcome.status, outcome.decision_id) == ("applied", 0)
    assert store.inner.read() == VirtualState(0, 2, 3, -1)


@pytest.mark.parametrize("acknowledged", [False, True])
def test_same_target_is_unchanged_and_writes_nothing(
    store: ControlledStore, clock: FakeClock, acknowledged: bool
) -> None:
    c = connector(store, clock)
    c.apply(T(2, 3))
    if acknowledged:
        store.acknowledge(0)
    before = store.inner.read()
    outcome = c.apply(T(2, 3))
    assert (outcome.status, outcome.decision_id) == ("unchanged", 0)
    assert store.writes == [(0, 2, 3)]
    assert store.inner.read() == before


def test_acknowledged_decision_lets_the_next_one_through(
    store: ControlledStore, clock: FakeClock
) -> None:
    c = connector(store, clock)
    c.apply(T(2, 3))
    store.acknowledge(0)
    outcome = c.apply(T(4, 3))
    assert (outcome.status, outcome.decision_id) == ("applied", 1)
    assert store.inner.read() == VirtualState(1, 4, 3, 0)


def test_unacknowledged_decision_waits_then_is_forced_after_the_timeout(
    store: ControlledStore, clock: FakeClock
) -> None:
    c = connector(store, clock, ack_timeout_s=100.0)
    c.apply(T(1, 1))
    clock.advance(500.0)  # time before the connector first sees it unacknowledged does not count
    first = c.apply(T(2, 2))
    assert (first.status, first.decision_id) == ("waiting", 0)
    assert "decision 0" in first.detail and "0 s of 100 s" in first.detail
    clock.advance(99.0)
    still = c.apply(T(3, 3))
    assert still.status == "waiting" and "99 s of 100 s" in still.detail
    clock.advance(1.0)
    forced = c.apply(T(3, 3))
    assert (forced.status, forced.decision_id) == ("forced", 1)
    assert "unacknowledged for 100 s" in forced.detail
    assert store.writes == [(0, 1, 1), (1, 3, 3)]
    # the forced decision is itself unacknowledged: its own timeout starts now
    after = c.apply(T(4, 4))
    assert (after.status, after.decision_id) == ("waiting", 1)


def test_wait_s_polls_until_acknowledged(store: ControlledStore, clock: FakeClock) -> None:
    def sleep_then_ack(seconds: float) -> None:
        clock.sleep(seconds)
        if clock.now >= 3.0:
            store.inner.acknowledge(0)

    c = VirtualConnector(store, wait_s=10.0, poll_s=1.0, clock=clock, sleep=sleep_then_ack)
    outcome = c.apply(T(1, 2))
    assert outcome.status == "applied"
    assert "acknowledged after 3.0 s" in outcome.detail
    assert clock.sleeps == [1.0, 1.0, 1.0]


def test_wait_s_gives_up_after_wait_s(store: ControlledStore, clock: FakeClock) -> None:
    c = connector(store, clock, wait_s=2.5, poll_s=1.0)
    outcome = c.apply(T(1, 2))
    assert outcome.status == "applied"
    assert "not acknowledged within 2.5 s" in outcome.detail
    assert sum(clock.sleeps) == pytest.approx(2.5)


def test_wait_s_store_failure_while_polling_keeps_the_write(
    store: ControlledStore, clock: FakeClock
) -> None:
    def sleep_then_fail(seconds: float) -> None:
        clock.sleep(seconds)
        store.down = True

    c = VirtualConnector(store, wait_s=5.0, clock=clock, sleep=sleep_then_fail)
    outcome = c.apply(T(1, 2))
    assert (outcome.status, outcome.decision_id) == ("applied", 0)
    assert "acknowledgement unknown" in outcome.detail
    assert store.inner.read() == VirtualState(0, 1, 2, -1)


def test_observe_reports_only_acknowledged_counts(store: ControlledStore, clock: FakeClock) -> None:
    c = connector(store, clock)
    assert c.observe() is None
    c.apply(T(2, 5))
    assert c.observe() is None
    store.acknowledge(0)
    assert c.observe() == ServingReplicas(2, 5)


def test_negative_target_is_refused(store: ControlledStore, clock: FakeClock) -> None:
    with pytest.raises(InputError, match="prefill=-1"):
        connector(store, clock).apply(T(-1, 2))
    assert store.writes == []


def test_store_down_raises_then_continues_from_the_store(
    store: ControlledStore, clock: FakeClock
) -> None:
    c = connector(store, clock)
    c.apply(T(1, 1))
    store.acknowledge(0)
    store.down = True
    with pytest.raises(StateStoreError, match="unreachable"):
        c.apply(T(2, 2))
    with pytest.raises(StateStoreError):
        c.observe()
    store.down = False
    outcome = c.apply(T(2, 2))
    assert (outcome.status, outcome.decision_id) == ("applied", 1)


def test_lost_write_reply_is_neither_lost_nor_duplicated(
    store: ControlledStore, clock: FakeClock
) -> None:
    c = connector(store, clock)
    c.apply(T(1, 1))
    store.acknowledge(0)
    store.lose_next_reply = True
    with pytest.raises(StateStoreError, match="reply lost"):
        c.apply(T(2, 2))
    again = c.apply(T(2, 2))  # the store holds decision 1 already
    assert (again.status, again.decision_id) == ("unchanged", 1)
    assert [w[0] for w in store.writes] == [0, 1]


def test_two_planners_never_write_the_same_id(store: ControlledStore, clock: FakeClock) -> None:
    a, b = connector(store, clock), connector(store, clock)
    a.apply(T(1, 1))
    store.acknowledge(0)
    state = store.read()
    assert state is not None
    a.apply(T(2, 2))
    with pytest.raises(StateStoreError, match="found decision 1"):
        store.write_decision(state.decision_id + 1, 3, 3)  # b's stale view of the store
    assert b.apply(T(2, 2)).status == "unchanged"


_steps = st.lists(
    st.one_of(
        st.tuples(st.just("apply"), st.integers(0, 3), st.integers(0, 3)),
        st.tuples(st.just("ack"), st.just(0), st.just(0)),
        st.tuples(st.just("tick"), st.integers(0, 60), st.just(0)),
    ),
    max_size=30,
)


@settings(max_examples=40, deadline=None)
@given(steps=_steps)
def test_decision_ids_stay_consecutive(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[str, int, int]]
) -> None:
    path: Path = tmp_path_factory.mktemp("prop") / "virtual.json"
    store = ControlledStore(FileStateStore(path))
    clock = FakeClock()
    c = connector(store, clock, ack_timeout_s=100.0)
    for op, x, y in steps:
        if op == "apply":
            before = store.read()
            outcome = c.apply(T(x, y))
            after = store.read()
            assert after is not None
            if outcome.status in ("applied", "forced"):
                expected_id = 0 if before is None else before.decision_id + 1
                assert after == VirtualState(
                    expected_id, x, y, -1 if before is None else before.scaled_decision_id
                )
            else:
                assert after == before
            if outcome.status == "forced":
                assert before is not None and not before.acknowledged
            if outcome.status == "waiting":
                assert before is not None and not before.acknowledged
                assert (before.num_prefill_workers, before.num_decode_workers) != (x, y)
        elif op == "ack":
            state = store.read()
            if state is not None:
                store.acknowledge(state.decision_id)
        else:
            clock.advance(x)
    assert [w[0] for w in store.writes] == list(range(len(store.writes)))
