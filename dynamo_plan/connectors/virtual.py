"""The virtual connector: the planner's decisions go to a shared state (file or etcd) that the
environment reads, carries out and acknowledges (Dynamo's VirtualConnector protocol).

Each :meth:`VirtualConnector.apply` reads the store afresh (nothing is trusted from memory across
a failure), then:

* nothing stored → write decision 0 → ``applied``;
* target equal to the stored worker counts → ``unchanged``, nothing written (acknowledged or not);
* the stored decision is not acknowledged → ``waiting`` until it has stayed unacknowledged for
  ``ack_timeout_s`` seconds since this connector first saw it so, then write anyway → ``forced``;
* otherwise write ``decision_id + 1`` → ``applied``.

Writes go through :meth:`StateStore.write_decision`, which refuses an id that does not follow the
stored one, so after a store failure the next call continues from what the store holds: no
decision id is lost or written twice. With ``wait_s > 0``, ``apply`` then polls (every
``poll_s`` seconds) until the environment acknowledges or ``wait_s`` elapses, and says which.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from dynamo_plan.adapters.virtual_state import StateStore, VirtualState
from dynamo_plan.connectors.base import ScaleOutcome, ScaleStatus, ScaleTarget, ServingReplicas
from dynamo_plan.errors import InputError, StateStoreError

__all__ = ["VirtualConnector"]


class VirtualConnector:
    """Connector ``virtual`` over ``store``.

    ``ack_timeout_s``: how long (s) an unacknowledged decision blocks newer ones (Dynamo: 1800).
    ``wait_s``: after a write, how long (s) to wait for the acknowledgement (0: do not wait).
    ``clock`` (monotonic seconds) and ``sleep`` are injectable for tests.
    """

    name = "virtual"

    def __init__(
        self,
        store: StateStore,
        ack_timeout_s: float = 1800.0,
        wait_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        poll_s: float = 1.0,
    ) -> None:
        self.store = store
        self.ack_timeout_s = ack_timeout_s
        self.wait_s = wait_s
        self.clock = clock
        self.sleep = sleep
        self.poll_s = poll_s
        #: (decision id, clock time this connector first saw it unacknowledged)
        self._unacked_since: tuple[int, float] | None = None

    def observe(self) -> ServingReplicas | None:
        """The counts of the latest decision once the environment acknowledged it; ``None``
        before any decision or while the latest is unacknowledged (what serves then is unknown)."""
        state = self.store.read()
        if state is None or not state.acknowledged:
            return None
        return ServingReplicas(state.num_prefill_workers, state.num_decode_workers)

    def check(self) -> None:
        """The store's own preflight, writable (the planner writes decisions): the ``--state``
        path can hold the state; nothing for etcd."""
        self.store.check(writable=True)

    def engine_gpus(self) -> tuple[int, int] | None:
        """Always ``None``: the virtual state holds worker counts only, no GPUs per engine."""
        return None

    def apply(self, target: ScaleTarget) -> ScaleOutcome:
        """Write ``target`` as the next decision when allowed (see the module docstring)."""
        if target.prefill < 0 or target.decode < 0:
            raise InputError(
                f"scale target must have prefill >= 0 and decode >= 0, got "
                f"prefill={target.prefill} decode={target.decode}"
            )
        want = f"prefill={target.prefill} decode={target.decode}"
        state = self.store.read()
        if state is None:
            return self._write(0, target, "applied", f"decision 0: {want}")
        if (state.num_prefill_workers, state.num_decode_workers) == (target.prefill, target.decode):
            ack = "acknowledged" if state.acknowledged else "not acknowledged yet"
            return ScaleOutcome(
                "unchanged",
                f"{want} is decision {state.decision_id} already ({ack}); nothing written",
                state.decision_id,
            )
        new_id = state.decision_id + 1
        if state.acknowledged:
            self._unacked_since = None
            return self._write(new_id, target, "applied", f"decision {new_id}: {want}")
        now = self.clock()
        if self._unacked_since is None or self._unacked_since[0] != state.decision_id:
            self._unacked_since = (state.decision_id, now)
        waited = now - self._unacked_since[1]
        if waited < self.ack_timeout_s:
            return ScaleOutcome(
                "waiting",
                f"decision {state.decision_id} ({_counts(state)}) unacknowledged for "
                f"{waited:.0f} s of {self.ack_timeout_s:g} s; {want} not written",
                state.decision_id,
            )
        self._unacked_since = None
        return self._write(
            new_id,
            target,
            "forced",
            f"decision {new_id}: {want}, although decision {state.decision_id} stayed "
            f"unacknowledged for {waited:.0f} s (timeout {self.ack_timeout_s:g} s)",
        )

    def _write(
        self, decision_id: int, target: ScaleTarget, status: ScaleStatus, detail: str
    ) -> ScaleOutcome:
        self.store.write_decision(decision_id, target.prefill, target.decode)
        if self.wait_s > 0:
            detail = f"{detail}; {self._wait_ack(decision_id)}"
        return ScaleOutcome(status, detail, decision_id)

    def _wait_ack(self, decision_id: int) -> str:
        """Poll until ``decision_id`` is acknowledged or ``wait_s`` elapsed; say which. A store
        failure while polling ends the wait (the decision is written already)."""
        start = self.clock()
        while True:
            try:
                state = self.store.read()
            except StateStoreError as e:
                return f"acknowledgement unknown: {e}"
            elapsed = self.clock() - start
            if state is not None and state.scaled_decision_id >= decision_id:
                return f"acknowledged after {elapsed:.1f} s"
            if elapsed >= self.wait_s:
                return f"not acknowledged within {self.wait_s:g} s"
            self.sleep(min(self.poll_s, self.wait_s - elapsed))


def _counts(state: VirtualState) -> str:
    return f"prefill={state.num_prefill_workers} decode={state.num_decode_workers}"
