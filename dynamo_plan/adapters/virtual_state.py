"""The virtual connector's shared state and the store interface behind it (file or etcd).

Layout is Dynamo's VirtualConnector's: ``decision_id`` (the planner's decisions are numbered
from 0), ``num_prefill_workers``, ``num_decode_workers`` (what decision ``decision_id`` asks for)
and ``scaled_decision_id`` (the last decision the environment has carried out; -1 = none). The
planner writes the first three together; the environment writes only ``scaled_decision_id``.
In etcd each is one key ``v1/<namespace>/planner/<field>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["FIELD_MINIMUMS", "NO_DECISION", "StateStore", "VirtualState"]

#: ``decision_id`` / ``scaled_decision_id`` before anything was decided / carried out.
NO_DECISION = -1
#: Each field of the state (in its order) and its smallest valid value, for the stores' checks.
FIELD_MINIMUMS: dict[str, int] = {
    "decision_id": NO_DECISION,
    "num_prefill_workers": 0,
    "num_decode_workers": 0,
    "scaled_decision_id": NO_DECISION,
}


@dataclass(frozen=True)
class VirtualState:
    """One snapshot of the virtual connector's state (see the module docstring)."""

    decision_id: int
    num_prefill_workers: int
    num_decode_workers: int
    scaled_decision_id: int = NO_DECISION

    @property
    def acknowledged(self) -> bool:
        """The environment has carried out the latest decision."""
        return self.scaled_decision_id >= self.decision_id


@runtime_checkable
class StateStore(Protocol):
    """Where the virtual state lives. ``location`` names it in messages (a path, an etcd URL)."""

    location: str

    def check(self, writable: bool = True) -> None:
        """Preflight from local files only: can this store hold the state (``writable``: and
        take writes)? :class:`~dynamo_plan.errors.InputError` when it cannot; a no-op for a
        store only known by asking it (etcd)."""
        ...

    def read(self) -> VirtualState | None:
        """The state now; ``None`` when nothing was ever written. ``StateStoreError`` on failure
        or on a malformed state (say which field)."""
        ...

    def write_decision(self, decision_id: int, prefill: int, decode: int) -> None:
        """Write ``decision_id`` and both worker counts at once (one etcd transaction, one atomic
        file replace); keeps ``scaled_decision_id``. ``StateStoreError`` on failure."""
        ...

    def acknowledge(self, decision_id: int) -> None:
        """The environment's side: set ``scaled_decision_id``. ``StateStoreError`` on failure."""
        ...
