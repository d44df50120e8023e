"""State of one simulated engine replica (prefill or decode) and its lifecycle.

Lifecycle: ``STARTING`` (ordered, paid, not serving until ``ready_t``) → ``SERVING`` →
``DRAINING`` (removed: takes no new work, finishes what it holds) → ``GONE`` (``end_t`` set:
drained, or cancelled while starting). Both satisfy
:class:`~dynamo_plan.sim.cluster_model.Replica` (``reserved``, ``held``, ``order_t``, ``rank``), so
admission and scaling use the shared rules of :mod:`dynamo_plan.sim.cluster_model`. Plain mutable classes with ``__slots__``: the event loop in
:mod:`dynamo_plan.sim.engine` reads and writes them directly.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["DRAINING", "GONE", "SERVING", "STARTING", "Decode", "Engine", "Prefill"]

STARTING, SERVING, DRAINING, GONE = 0, 1, 2, 3


class Engine:
    """Common state: id, order/ready/retire times (s), tie-break rank, lifecycle state."""

    __slots__ = ("eid", "end_t", "order_t", "rank", "ready_t", "state")

    def __init__(self, eid: int, order_t: float, ready_t: float, rank: float) -> None:
        self.eid = eid
        self.order_t = order_t
        self.ready_t = ready_t
        self.rank = rank
        self.state = STARTING
        self.end_t = math.inf


class Prefill(Engine):
    """Prefill engine: ``batch`` = the requests of the batch running now (empty when idle; the
    engine's request objects)."""

    __slots__ = ("batch",)

    def __init__(self, eid: int, order_t: float, ready_t: float, rank: float) -> None:
        super().__init__(eid, order_t, ready_t, rank)
        self.batch: list[Any] = []

    @property
    def reserved(self) -> int:
        """KV tokens reserved (none: a prefill engine holds no decode KV)."""
        return 0

    @property
    def held(self) -> int:
        """Requests in the running batch."""
        return len(self.batch)


class Decode(Engine):
    """Decode engine: ``members`` heap of (global step of the last token, request id, request),
    ``pending`` the requests joining at the next step boundary; a step
    boundary at ``t0`` had global step count ``s0``; steps last ``tau`` while membership holds.
    ``slot``: its index in the engine's list of serving decode engines (-1: not serving)."""

    __slots__ = (
        "members",
        "n",
        "pending",
        "reserved",
        "s0",
        "sched_t",
        "slot",
        "sum_ctx",
        "t0",
        "tau",
        "version",
    )

    def __init__(self, eid: int, order_t: float, ready_t: float, rank: float) -> None:
        super().__init__(eid, order_t, ready_t, rank)
        self.members: list[tuple[int, int, Any]] = []
        self.pending: list[Any] = []
        self.n = 0
        self.reserved = 0
        self.sum_ctx = 0.0
        self.t0 = 0.0
        self.s0 = 0
        self.tau = 0.0
        self.version = 0
        self.sched_t = math.inf
        self.slot = -1

    @property
    def held(self) -> int:
        """Requests running or joining at the next step boundary."""
        return self.n + len(self.pending)
