"""The environment's side of the virtual connector: read the planner's decision, wait for a new
one, acknowledge it once carried out (``dynamo-plan virtual get|wait|complete``).

Errors: a store failure raises :class:`~dynamo_plan.errors.StateStoreError` at once (exit 3),
also while waiting; a wait that runs out raises :class:`DecisionWaitTimeout` (a
``StateStoreError``, exit 3, naming the store, the timeout and the latest decision);
acknowledging a decision that was never made raises :class:`~dynamo_plan.errors.InputError`
(exit 1).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from dynamo_plan.adapters.virtual_state import StateStore, VirtualState
from dynamo_plan.errors import InputError, StateStoreError

__all__ = ["DecisionWaitTimeout", "VirtualClient"]


class DecisionWaitTimeout(StateStoreError):
    """No decision the caller waited for appeared in the store within the timeout."""


class VirtualClient:
    """Reads and acknowledges the decisions in ``store``. ``clock`` (monotonic seconds) and
    ``sleep`` are injectable for tests. No I/O on construction."""

    def __init__(
        self,
        store: StateStore,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.clock = clock
        self.sleep = sleep

    def get(self) -> VirtualState | None:
        """The state now; ``None`` when the planner never decided anything."""
        return self.store.read()

    def wait(
        self, timeout_s: float, after_decision_id: int | None = None, poll_s: float = 0.2
    ) -> VirtualState:
        """Poll every ``poll_s`` seconds until a decision newer than ``after_decision_id`` is
        stored (default, ``None``: until the latest decision is unacknowledged, i.e. there is
        work to carry out) and return that state; :class:`DecisionWaitTimeout` after
        ``timeout_s`` seconds."""
        start = self.clock()
        while True:
            state = self.store.read()
            if state is not None and (
                not state.acknowledged
                if after_decision_id is None
                else state.decision_id > after_decision_id
            ):
                return state
            elapsed = self.clock() - start
            if elapsed >= timeout_s:
                wanted = (
                    "unacknowledged decision"
                    if after_decision_id is None
                    else f"decision after {after_decision_id}"
                )
                latest = (
                    "none decided yet"
                    if state is None
                    else f"latest decision {state.decision_id}, "
                    f"{'acknowledged' if state.acknowledged else 'unacknowledged'}"
                )
                raise DecisionWaitTimeout(
                    f"{self.store.location}: no {wanted} within {timeout_s:g} s ({latest})"
                )
            self.sleep(max(0.0, min(poll_s, timeout_s - elapsed)))

    def complete(self, decision_id: int | None = None) -> VirtualState:
        """Acknowledge the latest decision, or decision ``decision_id`` (it must have been made:
        ``0 <= decision_id <=`` the latest; ``InputError`` otherwise), and return the state after.
        A decision already acknowledged (``<= scaled_decision_id``) is left as it is: an
        acknowledgement never moves backwards."""
        state = self.store.read()
        if state is None:
            raise InputError(f"{self.store.location}: no decision to complete: none decided yet")
        target = state.decision_id if decision_id is None else decision_id
        if not 0 <= target <= state.decision_id:
            raise InputError(
                f"{self.store.location}: decision {target} was never decided "
                f"(decisions so far: 0..{state.decision_id})"
            )
        if target <= state.scaled_decision_id:
            return state
        self.store.acknowledge(target)
        after = self.store.read()
        if after is None:  # the state vanished between two reads
            raise StateStoreError(f"{self.store.location}: state gone after acknowledging {target}")
        return after
