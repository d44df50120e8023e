"""The mocker as the virtual connector's environment: carry out the planner's decisions.

Every ``poll_s`` seconds :class:`StoreFollower` reads the :class:`StateStore`. A decision it has
not applied yet (a new ``decision_id``; on the first read, the current one even when already
acknowledged, so the cluster matches the state) goes to :meth:`MockCluster.set_replicas`; once the
cluster serves exactly the decided counts (the new engines are past their start-up, the removed
ones no longer count), it calls ``store.acknowledge(decision_id)``. Store calls are blocking (a
file, an etcd request) and run in a worker thread. A store error is logged and retried at the
next poll; it never stops the follower.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from dynamo_plan.adapters.virtual_state import StateStore
from dynamo_plan.sim.mocker.cluster import MockCluster

__all__ = ["StoreFollower"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Pending:
    decision_id: int
    prefill: int
    decode: int


class StoreFollower:
    """Polls ``store`` and scales ``cluster`` to its decisions (module docstring)."""

    def __init__(self, store: StateStore, cluster: MockCluster, poll_s: float = 0.2) -> None:
        self.store = store
        self.cluster = cluster
        self.poll_s = poll_s
        self.applied: int | None = None
        self.acknowledged: int | None = None
        self.errors = 0
        self._pending: _Pending | None = None

    async def step(self) -> None:
        """One poll: apply a new decision, acknowledge an applied one that is in place."""
        state = await asyncio.to_thread(self.store.read)
        if state is not None and state.decision_id != self.applied:
            self.cluster.set_replicas(state.num_prefill_workers, state.num_decode_workers)
            self.applied = state.decision_id
            self._pending = _Pending(
                state.decision_id, state.num_prefill_workers, state.num_decode_workers
            )
            log.info(
                "decision %d: %d prefill, %d decode",
                state.decision_id,
                state.num_prefill_workers,
                state.num_decode_workers,
            )
        p = self._pending
        if p is not None and self.cluster.serving() == (p.prefill, p.decode):
            if p.decision_id >= 0:
                await asyncio.to_thread(self.store.acknowledge, p.decision_id)
                self.acknowledged = p.decision_id
                log.info("decision %d acknowledged", p.decision_id)
            self._pending = None

    async def run(self) -> None:
        """Poll until cancelled; store errors are logged and retried."""
        while True:
            try:
                await self.step()
            except Exception as e:  # a store fault must never stop the server
                self.errors += 1
                log.warning("virtual state %s: %s (retrying)", self.store.location, e)
            await asyncio.sleep(self.poll_s)
