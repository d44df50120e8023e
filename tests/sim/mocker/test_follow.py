"""The mocker following a virtual connector's state: apply, wait for start-up, acknowledge.

The tests run on a virtual clock (:mod:`tests.sim.mocker.virtual_time`; the store calls in
worker threads take no virtual time): the start-ups and the polls happen at the times set,
whatever the load on the machine.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from pathlib import Path

from dynamo_plan.adapters.virtual_state import VirtualState
from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.errors import StateStoreError
from dynamo_plan.sim.config import SimConfig
from dynamo_plan.sim.mocker.cluster import MockCluster
from dynamo_plan.sim.mocker.follow import StoreFollower
from tests.sim.mocker.virtual_time import run_virtual


@dataclass
class FakeStore:
    """An in-memory StateStore; the first ``fail`` calls raise StateStoreError."""

    state: VirtualState | None = None
    fail: int = 0
    location: str = "memory"
    acks: list[int] = field(default_factory=list)

    def _maybe_fail(self) -> None:
        if self.fail > 0:
            self.fail -= 1
            raise StateStoreError("memory: store unreachable")

    def read(self) -> VirtualState | None:
        self._maybe_fail()
        return self.state

    def write_decision(self, decision_id: int, prefill: int, decode: int) -> None:
        old = self.state.scaled_decision_id if self.state else -1
        self.state = VirtualState(decision_id, prefill, decode, old)

    def acknowledge(self, decision_id: int) -> None:
        self._maybe_fail()
        assert self.state is not None
        self.state = replace(self.state, scaled_decision_id=decision_id)
        self.acks.append(decision_id)


def test_acknowledges_after_startup(profile: PerformanceProfile) -> None:
    async def main() -> None:
        store = FakeStore()
        c = MockCluster(profile, SimConfig(startup_s=0.3), prefill=1, decode=1)
        c.start()
        f = StoreFollower(store, c, poll_s=0.02)
        await f.step()  # nothing written yet: nothing happens
        assert c.serving() == (1, 1) and store.acks == []
        store.write_decision(0, 2, 3)
        await f.step()
        assert f.applied == 0 and store.acks == []  # ordered, still starting
        assert c.serving() == (1, 1)
        await asyncio.sleep(0.35)
        await f.step()
        assert c.serving() == (2, 3) and store.acks == [0]
        assert store.state is not None and store.state.acknowledged
        # a scale-down is in place at once (draining engines do not serve)
        store.write_decision(1, 1, 1)
        await f.step()
        assert store.acks == [0, 1]
        await f.step()
        assert store.acks == [0, 1]  # once per decision
        await c.close()

    run_virtual(main())


def test_store_errors_are_retried(profile: PerformanceProfile) -> None:
    async def main() -> None:
        store = FakeStore(VirtualState(4, 2, 2), fail=3)
        c = MockCluster(profile, prefill=1, decode=1)
        c.start()
        f = StoreFollower(store, c, poll_s=0.01)
        task = asyncio.create_task(f.run())
        for _ in range(200):
            if store.acks:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert f.errors == 3
        assert store.acks == [4] and c.serving() == (2, 2)
        await c.close()

    run_virtual(main())


def test_follows_a_state_file(profile: PerformanceProfile, tmp_path: Path) -> None:
    from dynamo_plan.connectors.virtual_store import make_store

    store = make_store(tmp_path / "state.json", None)

    async def main() -> None:
        c = MockCluster(profile, SimConfig(startup_s=0.1))
        c.start()
        f = StoreFollower(store, c, poll_s=0.02)
        task = asyncio.create_task(f.run())
        await asyncio.to_thread(store.write_decision, 0, 3, 2)
        for _ in range(100):
            state = await asyncio.to_thread(store.read)
            if state is not None and state.acknowledged:
                break
            await asyncio.sleep(0.02)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert c.serving() == (3, 2)
        await c.close()

    run_virtual(main())
    state = store.read()
    assert state is not None and state.scaled_decision_id == 0
