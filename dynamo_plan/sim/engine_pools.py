"""The engine pools of the discrete-event simulator (:mod:`dynamo_plan.sim.engine`): the event
heap, the prefill and decode engines, their queues, and the operations on them — start a prefill
batch, bring a decode engine to a step boundary, admit waiting requests, and scale a pool
(order, cancel, drain) — with the replica timeline and the GPU-hours paid.

The model's rules (batching, admission, draining order, ranks) are
:mod:`dynamo_plan.sim.cluster_model`'s; :class:`EnginePools` holds the state they act on. The
event loop (:meth:`dynamo_plan.sim.engine._Sim.run`) reads this state directly and repeats the
frequent operations inline on local variables; the methods here serve the rarer callers. Times
are seconds from the first arrival; an event on :attr:`EnginePools.heap` is ``(t, seq, kind,
object, version)`` with ``kind`` one of :data:`PF_DONE` (a prefill batch done: object the
engine), :data:`KV_DONE` (a request's KV transfer done), :data:`DEC_STEP` (a decode step boundary
of an engine, valid while ``version`` is the engine's) or :data:`READY` (an engine done starting).
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Callable
from heapq import heapify, heappop, heappush
from typing import Any

from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.sim.cluster_model import (
    choose_decode,
    draw_ranks,
    scale_plan,
    take_prefill_batch,
)
from dynamo_plan.sim.config import SimConfig
from dynamo_plan.sim.engine_records import CTX, DEC, DEC_ENG, GET_ISL, NEED, OSL, PF_ENG, RID, Req
from dynamo_plan.sim.latency_fast import FastDecodeLatency, prefill_memo
from dynamo_plan.sim.replicas import DRAINING, GONE, SERVING, STARTING, Decode, Engine, Prefill

__all__ = ["DEC_STEP", "EPS", "KV_DONE", "PF_DONE", "READY", "EnginePools"]

#: Event kinds on the heap.
PF_DONE, KV_DONE, DEC_STEP, READY = 0, 1, 2, 3
#: In steps: a time within this of a step boundary is on it.
EPS = 1e-9
_PF_DONE, _KV_DONE, _DEC_STEP, _READY = PF_DONE, KV_DONE, DEC_STEP, READY
_INF = math.inf
_EPS = EPS


class EnginePools:
    """The engines of one simulated deployment and the event heap they schedule on.

    ``on_finish(request, t)`` is called when a request makes its last token at ``t`` (s).
    ``dec_res`` is ``[e.reserved for e in dec_serving]``, kept up to date for admission
    (:func:`~dynamo_plan.sim.cluster_model.choose_decode`'s ``reserved``); ``pf_idle`` is a heap
    of the idle serving prefill engines by ``(rank, id)``.
    """

    def __init__(
        self,
        config: SimConfig,
        profile: PerformanceProfile,
        on_finish: Callable[[Req, float], None],
    ) -> None:
        self.cfg = config
        self.profile = profile
        self.on_finish = on_finish
        self.pf_memo, self.pf_lat = prefill_memo(profile)
        self.dec_lat = FastDecodeLatency.of(profile)
        self.step_s = self.dec_lat.step_s
        self.max_kv = int(profile.max_kv_tokens)
        self.heap: list[tuple[float, int, int, Any, int]] = []
        self.seq = itertools.count()
        self.rank = draw_ranks(config.seed)
        self.prefills: list[Prefill] = []
        self.decodes: list[Decode] = []
        self.pf_idle: list[tuple[float, int, Prefill]] = []  # heap: (rank, id, engine)
        self.dec_serving: list[Decode] = []
        self.dec_res: list[int] = []  # reserved KV tokens of each serving decode engine
        self.pf_queue: deque[Req] = deque()
        self.dq: deque[Req] = deque()
        self.timeline: list[dict[str, Any]] = []

    def _push(self, t: float, kind: int, obj: Any, version: int = 0) -> None:
        heappush(self.heap, (t, next(self.seq), kind, obj, version))

    # --- prefill -----------------------------------------------------------------------------

    def _start_batch(self, e: Prefill, t: float) -> None:
        batch, tokens = take_prefill_batch(self.pf_queue, self.cfg.prefill_token_budget, GET_ISL)
        eid = e.eid
        for r in batch:
            r[PF_ENG] = eid
        e.batch = batch
        d = self.pf_memo.get(tokens)
        if d is None:
            d = self.pf_memo[tokens] = self.pf_lat.batch_s(tokens)
        heappush(self.heap, (t + d, next(self.seq), _PF_DONE, e, 0))

    def _idle(self, e: Prefill) -> None:
        """``e`` waits for work: on the idle heap, lowest rank on top (:func:`pick_idle`'s
        choice)."""
        heappush(self.pf_idle, (e.rank, e.eid, e))

    # --- decode ------------------------------------------------------------------------------

    def _advance(self, e: Decode, t: float) -> None:
        """Bring ``e`` to the step boundary ``t``: finish due members, admit pending joiners."""
        n = e.n
        s0 = e.s0
        if n:
            s0 += round((t - e.t0) / e.tau)
            e.s0 = s0
        e.t0 = t
        mem: list[tuple[int, int, Req]] = e.members
        if mem and mem[0][0] <= s0:
            finish = self.on_finish
            reserved = e.reserved
            sum_ctx = e.sum_ctx
            while mem and mem[0][0] <= s0:
                r = heappop(mem)[2]
                n -= 1
                reserved -= r[NEED]
                sum_ctx -= r[CTX]
                finish(r, t)
            e.reserved = reserved
            e.sum_ctx = sum_ctx
            if e.slot >= 0:
                self.dec_res[e.slot] = reserved
        pending: list[Req] = e.pending
        if pending:
            sum_ctx = e.sum_ctx
            for r in pending:
                heappush(mem, (s0 + r[OSL] - 1, r[RID], r))
                sum_ctx += r[CTX]
                r[DEC] = t
            e.sum_ctx = sum_ctx
            n += len(pending)
            e.pending = []
        e.n = n
        version = e.version + 1
        e.version = version
        if n:
            e.tau = tau = self.step_s(e.sum_ctx, n)
            e.sched_t = sched = t + (mem[0][0] - s0) * tau
            heappush(self.heap, (sched, next(self.seq), _DEC_STEP, e, version))
        else:
            e.sum_ctx = 0.0
            e.tau = 0.0
            e.sched_t = _INF
            if e.state == DRAINING:
                e.state = GONE
                e.end_t = t

    def _admit(self, e: Decode, r: Req, t: float) -> None:
        e.pending.append(r)
        e.reserved += r[NEED]
        self.dec_res[e.slot] = e.reserved
        r[DEC_ENG] = e.eid
        if e.n == 0:
            self._advance(e, t)
            return
        t0 = e.t0
        tau = e.tau
        x = (t - t0) / tau
        k = math.ceil(x - _EPS)
        if k - x < _EPS:  # on a boundary: join now
            self._advance(e, t)
            return
        tb = t0 + k * tau
        if tb < e.sched_t:
            version = e.version + 1
            e.version = version
            e.sched_t = tb
            heappush(self.heap, (tb, next(self.seq), _DEC_STEP, e, version))

    def _try_admit(self, t: float) -> None:
        dq = self.dq
        if not dq:
            return
        serving = self.dec_serving
        if not serving:
            return
        cap = self.max_kv
        max_b = self.cfg.max_decode_batch
        admit = self._admit
        while dq:
            best = choose_decode(serving, dq[0][NEED], cap, max_b, self.dec_res)
            if best is None:
                return
            admit(best, dq.popleft(), t)

    # --- scaling -----------------------------------------------------------------------------

    def _ready(self, e: Engine, t: float) -> None:
        if e.state != STARTING:
            return  # cancelled
        e.state = SERVING
        if isinstance(e, Prefill):
            if self.pf_queue:
                self._start_batch(e, t)
            else:
                self._idle(e)
        else:
            assert isinstance(e, Decode)
            e.t0 = t
            e.slot = len(self.dec_serving)
            self.dec_serving.append(e)
            self.dec_res.append(e.reserved)
            self._try_admit(t)

    def _order(self, role: str, t: float) -> Engine:
        startup = 0.0 if t == 0.0 and not self.timeline else self.cfg.startup_s
        rank = self.rank()
        e: Engine
        if role == "prefill":
            e = Prefill(len(self.prefills), t, t + startup, rank)
            self.prefills.append(e)
        else:
            e = Decode(len(self.decodes), t, t + startup, rank)
            self.decodes.append(e)
        if startup == 0.0:
            self._ready(e, t)
        else:
            self._push(t + startup, _READY, e)
        return e

    def _scale(self, role: str, target: int, t: float) -> None:
        engines: list[Any] = self.prefills if role == "prefill" else self.decodes
        active = [e for e in engines if e.state in (STARTING, SERVING)]
        plan = scale_plan(active, target, lambda e: e.state == STARTING)
        for _ in range(plan.order):
            self._order(role, t)
        for e in plan.cancel:
            e.state = GONE
            e.end_t = t
        for e in plan.drain:
            if isinstance(e, Prefill):
                if e.batch:
                    e.state = DRAINING
                else:
                    self.pf_idle.remove((e.rank, e.eid, e))
                    heapify(self.pf_idle)
                    e.state = GONE
                    e.end_t = t
            else:
                self.dec_serving.remove(e)
                e.slot = -1
                for i, x in enumerate(self.dec_serving):
                    x.slot = i
                self.dec_res[:] = [x.reserved for x in self.dec_serving]
                if e.n or e.pending:
                    e.state = DRAINING
                else:
                    e.state = GONE
                    e.end_t = t
                    e.version += 1

    def _record(self, t: float, prefill: int, decode: int, reason: str) -> None:
        self.timeline.append(
            {
                "t_s": t,
                "prefill": prefill,
                "decode": decode,
                "ready_prefill": sum(e.state == SERVING for e in self.prefills),
                "ready_decode": len(self.dec_serving),
                "reason": reason,
            }
        )

    def gpu_hours(self, end_t: float) -> float:
        """GPU-hours paid up to ``end_t`` (s): each engine from its order to its end (or
        ``end_t``), times its GPUs."""
        total = 0.0
        for engines, gpus in (
            (self.prefills, self.cfg.prefill_gpus),
            (self.decodes, self.cfg.decode_gpus),
        ):
            for e in engines:
                total += max(0.0, min(e.end_t, end_t) - e.order_t) * gpus
        return total / 3600.0
