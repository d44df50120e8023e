"""Test doubles for the virtual connector: a manual clock and a store wrapper that counts writes
and can be taken down."""

from __future__ import annotations

from dynamo_plan.adapters.virtual_state import StateStore, VirtualState
from dynamo_plan.errors import StateStoreError


class FakeClock:
    """Monotonic seconds that move only by :meth:`sleep` or :meth:`advance`."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class ControlledStore:
    """Delegates to ``inner``; counts writes; ``down`` makes every call fail; ``lose_next_reply``
    makes the next ``write_decision`` write and then fail (a reply lost on the way back)."""

    def __init__(self, inner: StateStore) -> None:
        self.inner = inner
        self.location = inner.location
        self.writes: list[tuple[int, int, int]] = []
        self.reads = 0
        self.down = False
        self.lose_next_reply = False

    def _check(self) -> None:
        if self.down:
            raise StateStoreError(f"{self.location}: unreachable (test)")

    def check(self, writable: bool = True) -> None:
        self.inner.check(writable)

    def read(self) -> VirtualState | None:
        self._check()
        self.reads += 1
        return self.inner.read()

    def write_decision(self, decision_id: int, prefill: int, decode: int) -> None:
        self._check()
        self.inner.write_decision(decision_id, prefill, decode)
        self.writes.append((decision_id, prefill, decode))
        if self.lose_next_reply:
            self.lose_next_reply = False
            raise StateStoreError(f"{self.location}: reply lost (test)")

    def acknowledge(self, decision_id: int) -> None:
        self._check()
        self.inner.acknowledge(decision_id)
