"""A real-time asyncio cluster of mock prefill and decode engines (the simulator's model, live).

Same model as :mod:`dynamo_plan.sim.engine` — the rules are
:mod:`dynamo_plan.sim.cluster_model`'s, shared by both — played on the event loop's clock instead
of jumping between events; every latency is divided by ``speedup``:

* **Prefill pool** — one FIFO queue shared by the engines. An idle serving engine takes the head
  and the following requests while their prompts fit ``config.prefill_token_budget`` (a longer
  prompt runs alone), sleeps :meth:`PrefillLatency.batch_s` of the batch's tokens and then makes
  every member's **first token**.
* **KV transfer** — a request with ``osl > 1`` then waits :meth:`SimConfig.kv_transfer_s` and
  enters the decode admission queue; ``osl == 1`` finishes at its first token.
* **Decode pool** — FIFO, head-of-line admission to the serving engine with the fewest reserved
  KV tokens where the request's ``isl + osl`` tokens fit ``max_kv_tokens`` (a request larger than
  the cache runs alone on an empty engine) and the batch is below ``config.max_decode_batch``.
* **Continuous batching** — an engine runs back-to-back steps; a step lasts
  :meth:`DecodeLatency.step_s` of the batch it starts with (mid-life contexts
  ``isl + osl / 2``) and each member makes one token at its end. Step ends are absolute
  deadlines (``deadline += step``), so sleep overshoot does not accumulate; after an idle spell
  (the engine held nothing) or a stall longer than one step the clock restarts from now. A request admitted during a step
  joins at the next boundary and leaves after its ``osl - 1``-th decode token.
* **Replicas** — :meth:`MockCluster.set_replicas` orders engines that serve after
  ``config.startup_s / speedup`` seconds, and removes engines by cancelling starting ones
  (newest first) and then draining the least-loaded serving ones
  (:func:`~dynamo_plan.sim.cluster_model.drain_key`; no new work; gone when empty).
* **Ranks** — each engine draws a tie-break rank from ``config.seed`` when created (initial
  prefill engines first, then decode), as the engine does; an arriving request wakes the idle
  prefill engine of lowest rank.
* **Cancellation** — :meth:`MockRequest.cancel` (a client that went away) takes the request out
  of any queue or batch at once and frees its KV reservation.

Everything runs on one event loop and is not thread-safe; :meth:`MockCluster.start` needs a
running loop.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.errors import InputError
from dynamo_plan.sim import cluster_model as model
from dynamo_plan.sim.config import SimConfig
from dynamo_plan.sim.latency import DecodeLatency, PrefillLatency

__all__ = ["EngineState", "MockCluster", "MockRequest", "PoolCounts", "WorkerLoad"]

EngineState = Literal["starting", "serving", "draining", "gone"]


class MockRequest:
    """One request in the cluster; iterate :meth:`tokens` for the loop time of each token."""

    def __init__(self, rid: int, isl: int, osl: int, arrival: float) -> None:
        self.id = rid
        self.isl = isl
        self.osl = osl
        self.arrival = arrival
        self.kv_tokens = float(model.kv_need(isl, osl))
        self.context = model.decode_context(isl, osl)
        self.made = 0
        self.first_token: float | None = None
        self.finished: float | None = None
        self.cancelled = False
        self._queue: asyncio.Queue[float | None] = asyncio.Queue()
        self._cluster: MockCluster | None = None
        self._engine: _DecodeEngine | None = None

    @property
    def done(self) -> bool:
        return self.finished is not None or self.cancelled

    def _emit(self, t: float) -> None:
        self.made += 1
        if self.first_token is None:
            self.first_token = t
        self._queue.put_nowait(t)
        if self.made >= self.osl:
            self.finished = t
            self._queue.put_nowait(None)

    async def tokens(self) -> AsyncIterator[float]:
        """Yield the loop time (s) at which each of the ``osl`` tokens is made."""
        while True:
            t = await self._queue.get()
            if t is None:
                return
            yield t

    async def token_batches(self) -> AsyncIterator[list[float]]:
        """Like :meth:`tokens`, but every token already made comes at once (fewer wake-ups when
        the reader lags behind the engines)."""
        while True:
            t = await self._queue.get()
            out: list[float] = []
            while t is not None:
                out.append(t)
                try:
                    t = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
            if out:
                yield out
            if t is None:
                return

    def cancel(self) -> None:
        """Leave the cluster now (client gone): free the queue place, batch slot and KV."""
        if self.done:
            return
        self.cancelled = True
        if self._cluster is not None:
            self._cluster._drop(self)
        self._queue.put_nowait(None)


@dataclass(eq=False)
class _Engine:
    """``order_t``: loop time (s) it was ordered; ``rank``: tie-break rank (module docstring)."""

    index: int
    state: EngineState = "starting"
    order_t: float = 0.0
    rank: float = 0.0
    task: asyncio.Task[None] | None = None


_E = TypeVar("_E", bound=_Engine)


@dataclass(eq=False)
class _PrefillEngine(_Engine):
    busy_tokens: int = 0
    busy: int = 0  # requests in the running batch
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    last_ttft_s: float | None = None
    last_isl: int | None = None

    @property
    def reserved(self) -> float:
        """KV tokens reserved: none (:class:`~dynamo_plan.sim.cluster_model.Replica`)."""
        return 0.0

    @property
    def held(self) -> int:
        return self.busy


@dataclass(eq=False)
class _DecodeEngine(_Engine):
    members: list[MockRequest] = field(default_factory=list)
    joining: list[MockRequest] = field(default_factory=list)
    reserved: float = 0.0
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    last_itl_s: float | None = None

    @property
    def batch(self) -> int:
        return len(self.members) + len(self.joining)

    @property
    def held(self) -> int:
        """Requests running or joining (:class:`~dynamo_plan.sim.cluster_model.Replica`)."""
        return self.batch

    def remove(self, r: MockRequest) -> None:
        if r in self.members:
            self.members.remove(r)
        elif r in self.joining:
            self.joining.remove(r)
        else:
            return
        self.reserved -= r.kv_tokens
        r._engine = None


@dataclass(frozen=True)
class WorkerLoad:
    """One serving or draining engine as a router sees it (what Dynamo's frontend exports per
    worker). ``role``: ``prefill`` or ``decode``; ``worker_id``: the engine's number.

    * ``active_prefill_tokens`` (prefill) — prompt tokens of its batch in progress plus an even
      share of the pool's queue (the queue is shared; a router would have split it);
    * ``active_kv_tokens`` (decode) — KV tokens reserved by its requests (``isl + osl`` each);
    * ``last_ttft_s`` / ``last_isl`` (prefill) — TTFT (loop s, arrival to first token) and
      prompt tokens of the last request it prefilled; ``last_itl_s`` (decode) — the mean gap of
      the last request it finished (osl > 1). ``None`` until there is one.
    """

    role: Literal["prefill", "decode"]
    worker_id: int
    active_prefill_tokens: int = 0
    active_kv_tokens: float = 0.0
    last_ttft_s: float | None = None
    last_isl: int | None = None
    last_itl_s: float | None = None


@dataclass(frozen=True)
class PoolCounts:
    """Engines of one pool by state."""

    starting: int
    serving: int
    draining: int


class MockCluster:
    """Prefill and decode pools running the profile's latencies in real time (module docstring).

    ``prefill`` / ``decode``: engines serving from :meth:`start`. ``speedup``: every latency
    (prefill batch, decode step, KV transfer, start-up) is divided by it.
    """

    def __init__(
        self,
        profile: PerformanceProfile,
        config: SimConfig | None = None,
        prefill: int = 1,
        decode: int = 1,
        speedup: float = 1.0,
    ) -> None:
        if not speedup > 0:
            raise InputError(f"speedup must be > 0, got {speedup!r}")
        _check_replicas(prefill, decode)
        self.config = config or SimConfig(startup_s=0.0)
        self.speedup = float(speedup)
        self._prefill_lat = PrefillLatency(profile)
        self._decode_lat = DecodeLatency(profile)
        self._max_kv = float(profile.max_kv_tokens)
        self._initial = (prefill, decode)
        self._rank = model.draw_ranks(self.config.seed)
        self._ids = itertools.count()
        self._engine_ids = itertools.count()
        self._prefill: list[_PrefillEngine] = []
        self._decode: list[_DecodeEngine] = []
        self._pq: deque[MockRequest] = deque()
        self._dq: deque[MockRequest] = deque()
        self._idle_prefill: list[_PrefillEngine] = []
        self._inflight: set[MockRequest] = set()
        self._transfers: dict[MockRequest, asyncio.TimerHandle] = {}
        self._started = False

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Create the initial engines (serving at once); needs a running event loop."""
        if self._started:
            return
        self._started = True
        self._loop = asyncio.get_running_loop()
        for _ in range(self._initial[0]):
            self._add_prefill(serving=True)
        for _ in range(self._initial[1]):
            self._add_decode(serving=True)

    async def close(self) -> None:
        """Cancel every engine and request."""
        for r in list(self._inflight):
            r.cancel()
        for h in self._transfers.values():
            h.cancel()
        self._transfers.clear()
        tasks = [e.task for e in [*self._prefill, *self._decode] if e.task is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._prefill.clear()
        self._decode.clear()

    # ------------------------------------------------------------------ requests
    def submit(self, isl: int, osl: int) -> MockRequest:
        """Queue a request of ``isl`` prompt tokens that makes ``osl`` (>= 1) tokens."""
        if isl < 0 or osl < 1:
            raise InputError(f"a request needs isl >= 0 and osl >= 1, got isl={isl}, osl={osl}")
        r = MockRequest(next(self._ids), isl, osl, self._loop.time())
        r._cluster = self
        self._inflight.add(r)
        self._pq.append(r)
        self._notify_prefill()
        return r

    @property
    def inflight(self) -> int:
        """Requests submitted and neither finished nor cancelled."""
        return len(self._inflight)

    def _drop(self, r: MockRequest) -> None:
        self._inflight.discard(r)
        if r in self._pq:
            self._pq.remove(r)
        elif r in self._dq:
            self._dq.remove(r)
        elif r in self._transfers:
            self._transfers.pop(r).cancel()
        elif r._engine is not None:
            r._engine.remove(r)
            self._admit()

    def _finish(self, r: MockRequest) -> None:
        self._inflight.discard(r)

    # ------------------------------------------------------------------ replicas
    def set_replicas(self, prefill: int, decode: int) -> None:
        """Scale both pools to ``prefill`` / ``decode`` engines (starting + serving)."""
        _check_replicas(prefill, decode)
        self._scale(self._prefill, prefill, self._add_prefill)
        self._scale(self._decode, decode, self._add_decode)

    def _scale(self, pool: list[Any], target: int, add: Callable[[bool], None]) -> None:
        live = [e for e in pool if e.state in ("starting", "serving")]
        plan = model.scale_plan(live, target, lambda e: e.state == "starting")
        for _ in range(plan.order):
            add(self.config.startup_s == 0)  # no start-up: serving at once
        for e in plan.cancel:
            e.state = "gone"
            if e.task is not None:
                e.task.cancel()
            pool.remove(e)
        for e in plan.drain:
            e.state = "draining"
            if isinstance(e, _DecodeEngine):
                e.wake.set()
        if plan.drain:
            self._notify_prefill()

    def counts(self) -> tuple[PoolCounts, PoolCounts]:
        """(prefill, decode) engines by state."""
        return _counts(self._prefill), _counts(self._decode)

    def decode_load(self) -> list[tuple[int, float]]:
        """(requests, reserved KV tokens) of each live decode engine."""
        return [(e.batch, e.reserved) for e in self._decode]

    def workers(self) -> list[WorkerLoad]:
        """Every serving or draining engine's load (:class:`WorkerLoad`), prefill first."""
        live = ("serving", "draining")
        prefill = [e for e in self._prefill if e.state in live]
        serving = sum(1 for e in prefill if e.state == "serving")
        share = sum(r.isl for r in self._pq) / serving if serving else 0.0
        out = [
            WorkerLoad(
                "prefill",
                e.index,
                active_prefill_tokens=round(e.busy_tokens + (share if e.state == "serving" else 0)),
                last_ttft_s=e.last_ttft_s,
                last_isl=e.last_isl,
            )
            for e in prefill
        ]
        out += [
            WorkerLoad("decode", e.index, active_kv_tokens=e.reserved, last_itl_s=e.last_itl_s)
            for e in self._decode
            if e.state in live
        ]
        return out

    def serving(self) -> tuple[int, int]:
        """Serving (not starting, not draining) (prefill, decode) engines."""
        p, d = self.counts()
        return p.serving, d.serving

    def _new(self, kind: type[_E], serving: bool) -> _E:
        """An engine ordered now: next number, its state, order time (loop s), rank drawn."""
        state: EngineState = "serving" if serving else "starting"
        return kind(next(self._engine_ids), state, self._loop.time(), self._rank())

    def _add_prefill(self, serving: bool) -> None:
        e = self._new(_PrefillEngine, serving)
        self._prefill.append(e)
        e.task = self._loop.create_task(self._run_prefill(e))

    def _add_decode(self, serving: bool) -> None:
        e = self._new(_DecodeEngine, serving)
        self._decode.append(e)
        e.task = self._loop.create_task(self._run_decode(e))

    async def _startup(self, e: _Engine) -> None:
        if e.state == "starting":
            await asyncio.sleep(self.config.startup_s / self.speedup)
            e.state = "serving"

    # ------------------------------------------------------------------ prefill
    def _notify_prefill(self) -> None:
        """Wake one idle prefill engine per queued request (lowest rank first), and every
        draining one."""
        idle = self._idle_prefill
        for e in [e for e in idle if e.state != "serving"]:
            idle.remove(e)
            e.wake.set()
        for _ in range(min(len(self._pq), len(idle))):
            e = model.pick_idle(idle)
            idle.remove(e)
            e.wake.set()

    async def _run_prefill(self, e: _PrefillEngine) -> None:
        await self._startup(e)
        budget = self.config.prefill_token_budget
        while e.state == "serving":
            if not self._pq:
                e.wake.clear()
                self._idle_prefill.append(e)
                try:
                    await e.wake.wait()
                finally:
                    if e in self._idle_prefill:
                        self._idle_prefill.remove(e)
                continue
            batch, tokens = model.take_prefill_batch(self._pq, budget)
            e.busy_tokens, e.busy = tokens, len(batch)
            await asyncio.sleep(self._prefill_lat.batch_s(tokens) / self.speedup)
            e.busy_tokens = e.busy = 0
            now = self._loop.time()
            for r in batch:
                if r.cancelled:
                    continue
                r._emit(now)
                e.last_ttft_s = now - r.arrival
                e.last_isl = r.isl
                if not model.needs_decode(r.osl):
                    self._finish(r)
                else:
                    delay = float(model.kv_transfer_s(self.config, r.isl)) / self.speedup
                    self._transfers[r] = self._loop.call_later(delay, self._to_decode, r)
        self._remove_engine(self._prefill, e)

    # ------------------------------------------------------------------ decode
    def _to_decode(self, r: MockRequest) -> None:
        self._transfers.pop(r, None)
        if r.cancelled:
            return
        self._dq.append(r)
        self._admit()

    def _admit(self) -> None:
        limit = self.config.max_decode_batch
        while self._dq:
            r = self._dq[0]
            serving = [e for e in self._decode if e.state == "serving"]
            e = model.choose_decode(serving, r.kv_tokens, self._max_kv, limit)
            if e is None:
                return
            self._dq.popleft()
            e.joining.append(r)
            e.reserved += r.kv_tokens
            r._engine = e
            e.wake.set()

    async def _run_decode(self, e: _DecodeEngine) -> None:
        await self._startup(e)
        if e.state == "serving":
            self._admit()
        loop = self._loop
        deadline = loop.time()
        while e.state in ("serving", "draining"):
            if not e.members and not e.joining:
                if e.state == "draining":
                    break
                e.wake.clear()
                await e.wake.wait()
                deadline = loop.time()  # idle: the next step starts when work arrives
                continue
            e.members.extend(e.joining)
            e.joining.clear()
            n = len(e.members)
            step = self._decode_lat.step_s(sum(r.context for r in e.members), n) / self.speedup
            now = loop.time()
            if deadline < now - step:  # idle, or stalled for over a step: restart the clock
                deadline = now
            deadline += step
            stepping = list(e.members)
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            t = loop.time()
            for r in stepping:
                if r._engine is not e:
                    continue  # cancelled during the step (remove() cleared r._engine)
                r._emit(t)
                if r.finished is not None:
                    if r.first_token is not None and r.osl > 1:
                        e.last_itl_s = (t - r.first_token) / (r.osl - 1)
                    e.remove(r)
                    self._finish(r)
            self._admit()
        e.state = "gone"
        self._remove_engine(self._decode, e)

    def _remove_engine(self, pool: list[Any], e: _Engine) -> None:
        e.state = "gone"
        if e in pool:
            pool.remove(e)


def _counts(pool: list[Any]) -> PoolCounts:
    states = [e.state for e in pool]
    return PoolCounts(states.count("starting"), states.count("serving"), states.count("draining"))


def _check_replicas(prefill: int, decode: int) -> None:
    for name, v in (("prefill", prefill), ("decode", decode)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise InputError(f"{name} replicas must be an integer >= 0, got {v!r}")
