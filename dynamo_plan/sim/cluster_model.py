"""The cluster model: the rules shared by the discrete-event engine and the mock cluster.

One place for *what* a disaggregated deployment does; *when* it happens stays with each
player — :mod:`dynamo_plan.sim.engine` jumps between events on a heap,
:mod:`dynamo_plan.sim.mocker.cluster` sleeps on an asyncio loop's clock. Both call these
functions, so a change to batching, admission or draining is made here once. (The naive
per-step simulator in ``tests/sim/reference.py`` is written independently, as the oracle both
are checked against.)

Units: tokens for ``isl``/``osl``/KV, seconds for times, requests for batch sizes.

* **Prefill batching** (:func:`take_prefill_batch`) — an idle engine takes the head of the
  pool's FIFO queue and the following requests while their prompts fit
  ``SimConfig.prefill_token_budget`` (a longer prompt runs alone); the batch's prompt tokens set
  its latency. An arriving request goes to the idle engine of lowest rank
  (:func:`pick_idle`).
* **KV transfer** (:func:`kv_transfer_s`) — a request with ``osl > 1`` moves its KV cache to
  decode after its first token (``SimConfig`` latency + bandwidth); ``osl <= 1`` is finished at
  its first token (:func:`needs_decode`).
* **Decode admission** (:func:`choose_decode`) — FIFO with head-of-line blocking: the head
  request goes to the serving engine with the fewest reserved KV tokens, then the lowest rank,
  among those where its ``isl + osl`` tokens (:func:`kv_need`) fit ``max_kv_tokens`` (an empty
  engine always fits: a request larger than the cache runs alone) and that hold fewer than
  ``max_decode_batch`` requests; if none, the head and everything behind it wait. Admission
  reserves the request's final KV, so nothing is preempted.
* **Decode steps** — a step's duration is the profile's ITL at the batch it starts with, each
  member counted at its mid-life context (:func:`decode_context`). A request admitted during a
  step joins at the next boundary; one admitted to an idle engine starts a step at once.
* **Scaling** (:func:`scale_plan`) — more replicas: order the difference. Fewer: cancel starting
  engines (newest first), then drain serving ones least loaded first (:func:`drain_key`:
  reserved KV, then requests held, then newest, then lowest rank); a draining engine takes no
  new work and is gone when empty.
* **Ranks** (:func:`draw_ranks`) — each engine draws a random rank in ``[0, 1)`` from
  ``random.Random(SimConfig.seed)`` when it is created (initial prefill engines first, then
  decode); ranks break ties between equally loaded engines.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Generic, Protocol, TypeVar, cast, overload

import numpy as np
import numpy.typing as npt

from dynamo_plan.sim.config import SimConfig

__all__ = [
    "Queued",
    "Replica",
    "ScalePlan",
    "choose_decode",
    "decode_context",
    "drain_key",
    "draw_ranks",
    "kv_need",
    "kv_transfer_s",
    "needs_decode",
    "pick_idle",
    "scale_plan",
    "take_prefill_batch",
]


class Queued(Protocol):
    """A request as the prefill queue sees it: ``isl`` prompt tokens."""

    @property
    def isl(self) -> int: ...


class Replica(Protocol):
    """An engine as admission and scaling see it.

    ``reserved``: KV tokens reserved by its requests (0 for prefill); ``held``: requests it holds
    (decode: running + joining; prefill: in the running batch); ``order_t``: when it was ordered
    (s); ``rank``: its tie-break rank.
    """

    @property
    def reserved(self) -> float: ...
    @property
    def held(self) -> int: ...
    @property
    def order_t(self) -> float: ...
    @property
    def rank(self) -> float: ...


Q = TypeVar("Q")
R = TypeVar("R", bound=Replica)
_Ints = npt.NDArray[np.int64]

_ISL: Callable[[Any], int] = attrgetter("isl")
_RANK = attrgetter("rank")
_RESERVED = attrgetter("reserved")


@overload
def kv_need(isl: int, osl: int) -> int: ...
@overload
def kv_need(isl: _Ints, osl: _Ints) -> _Ints: ...
def kv_need(isl: int | _Ints, osl: int | _Ints) -> int | _Ints:
    """KV tokens a request reserves on its decode engine for its whole life: ``isl + osl`` (of
    one request, or elementwise of int64 arrays: the same values)."""
    return isl + osl


@overload
def decode_context(isl: int, osl: int) -> float: ...
@overload
def decode_context(isl: _Ints, osl: _Ints) -> npt.NDArray[np.float64]: ...
def decode_context(isl: int | _Ints, osl: int | _Ints) -> float | npt.NDArray[np.float64]:
    """Context (tokens) a request counts for in a decode step's latency: its mid-life length
    ``isl + osl / 2`` (of one request, or elementwise of int64 arrays: the same float64
    values)."""
    return cast("float | npt.NDArray[np.float64]", isl + osl / 2.0)


def needs_decode(osl: int) -> bool:
    """Whether a request goes on to decode after its first token (``osl > 1``)."""
    return osl > 1


def kv_transfer_s(
    config: SimConfig, isl: npt.NDArray[np.float64] | float
) -> npt.NDArray[np.float64] | float:
    """Seconds to move the KV cache of ``isl`` prompt tokens from prefill to decode (a number or
    an array of them): :meth:`SimConfig.kv_transfer_s`, vectorised."""
    bits = np.asarray(isl, dtype=np.float64) * config.kv_bytes_per_token * 8.0
    out = config.kv_transfer_latency_ms / 1000.0 + bits / (config.kv_transfer_gbps * 1e9)
    return out if np.ndim(out) else float(out)


def take_prefill_batch(
    queue: deque[Q], budget: int, isl: Callable[[Q], int] = _ISL
) -> tuple[list[Q], int]:
    """Pop the next prefill batch from the (non-empty) FIFO ``queue``: the head, then following
    requests while the batch's prompt tokens stay within ``budget``. Returns the batch and its
    prompt tokens (what its latency is looked up at). ``isl`` reads a request's prompt tokens
    (default: its ``isl`` attribute, :class:`Queued`)."""
    r = queue.popleft()
    batch = [r]
    tokens = isl(r)
    while queue and tokens + isl(queue[0]) <= budget:
        r = queue.popleft()
        batch.append(r)
        tokens += isl(r)
    return batch, tokens


def pick_idle(idle: Sequence[R]) -> R:
    """The idle engine that takes an arriving request: the lowest rank."""
    return min(idle, key=_RANK) if len(idle) > 1 else idle[0]


def choose_decode(
    serving: Sequence[R],
    need: float,
    max_kv: float,
    max_batch: int | None,
    reserved: Sequence[float] | None = None,
) -> R | None:
    """The serving decode engine that admits a request reserving ``need`` KV tokens, or None (it
    waits, and so does every request behind it).

    Fewest reserved tokens, then lowest rank, among the engines where it fits (``reserved + need
    <= max_kv``, or the engine holds nothing) and that hold fewer than ``max_batch`` requests.
    ``reserved``, if given, is ``[e.reserved for e in serving]`` kept up to date by the caller
    (it saves reading every engine on each admission).
    """
    if not serving:
        return None
    if max_batch is None:
        # the least-reserved engine fits whenever any does (an empty one always does)
        if len(serving) > 1:
            res = list(map(_RESERVED, serving)) if reserved is None else reserved
            low = min(res)
            if res.count(low) == 1:
                best = serving[res.index(low)]
            else:  # equally loaded: the lowest rank (the first of equal ranks)
                best = min((e for e, v in zip(serving, res, strict=True) if v == low), key=_RANK)
        else:
            best = serving[0]
        if best.reserved + need > max_kv and best.held:
            return None
        return best
    found: R | None = None
    for e in serving:
        held = e.held
        if held >= max_batch or (held and e.reserved + need > max_kv):
            continue
        if found is None or (e.reserved, e.rank) < (found.reserved, found.rank):
            found = e
    return found


def drain_key(e: Replica) -> tuple[float, int, float, float]:
    """Order in which serving engines are drained on scale-down (smallest first): reserved KV
    tokens, requests held, newest ordered, lowest rank."""
    return (e.reserved, e.held, -e.order_t, e.rank)


@dataclass(frozen=True)
class ScalePlan(Generic[R]):
    """What a pool does to reach a replica target: ``order`` new engines, ``cancel`` these
    starting ones, ``drain`` these serving ones."""

    order: int
    cancel: list[R]
    drain: list[R]


def scale_plan(live: Iterable[R], target: int, starting: Callable[[R], bool]) -> ScalePlan[R]:
    """Plan the move of a pool whose ``live`` (starting or serving) engines, in creation order,
    should become ``target`` (clamped at 0): order the difference, or cancel starting engines
    newest first and then drain serving ones by :func:`drain_key`."""
    live = list(live)
    target = max(0, int(target))
    surplus = len(live) - target
    if surplus <= 0:
        return ScalePlan(-surplus, [], [])
    newest_first = sorted((e for e in live if starting(e)), key=lambda e: -e.order_t)
    cancel = newest_first[:surplus]
    surplus -= len(cancel)
    drain = sorted((e for e in live if not starting(e)), key=drain_key)[:surplus]
    return ScalePlan(0, cancel, drain)


def draw_ranks(seed: int) -> Callable[[], float]:
    """The source of engine ranks for one cluster: each call draws the next engine's rank."""
    return random.Random(seed).random
