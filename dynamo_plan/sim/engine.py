"""Discrete-event simulator of a disaggregated (prefill / decode) deployment under a policy.

Model (all times in seconds from the first arrival, t = 0):

The rules (batching, KV transfer, admission, draining order, ranks) are
:mod:`dynamo_plan.sim.cluster_model`'s, shared with the mock cluster; this module plays them on an
event heap.

* **Prefill pool** — one FIFO queue shared by the pool's engines (equivalent to sending each
  request to the least-loaded engine when it can start). An idle serving engine takes the
  head of the queue plus following requests while their prompts fit ``prefill_token_budget``
  (a longer prompt runs alone) and runs them as one batch (latency:
  :class:`~dynamo_plan.sim.latency.PrefillLatency`). The batch's last step makes each request's
  **first token**: ``TTFT = queue wait + batch latency``.
* **KV transfer** — then each request with ``osl > 1`` moves its KV cache to decode
  (:meth:`SimConfig.kv_transfer_s`); a request with ``osl <= 1`` is finished at its first token.
* **Decode pool** — one FIFO admission queue. The head request is admitted to the serving engine
  with the fewest reserved KV tokens where its ``isl + osl`` tokens fit in ``max_kv_tokens`` (a
  request larger than the whole cache runs alone on an empty engine) and, if set, the batch is
  below ``max_decode_batch``; otherwise it waits (head-of-line). Admission reserves the
  request's final KV, so nothing is ever preempted.
* **Continuous batching** — an engine runs back-to-back steps; a step's duration comes from the
  batch it starts with (:class:`~dynamo_plan.sim.latency.DecodeLatency`) and every member makes
  one token per step. A request admitted during a step joins at the next step boundary; a
  request leaves at the boundary of its last token (``osl - 1`` decode steps after the first).
  Between membership changes every step lasts the same, so the engine jumps straight to the next
  change (the next completion or join) instead of stepping token by token. ``ITL = (finish -
  first token) / (osl - 1)``, so KV transfer and admission waits count in the ITL, as a
  frontend measures it.
* **Scaling** — at every interval boundary ``k·interval_s`` the policy sees an
  :class:`~dynamo_plan.core.planner.Observation` of the last interval and returns the replicas
  it wants. More: new engines are ordered (paid from now, serving after ``startup_s``). Fewer:
  engines still starting are cancelled first (newest first), then the least-loaded serving
  engines drain (no new work, finish what they hold, paid until empty). The initial replicas
  serve at t = 0.
* **Ties** between equally loaded engines go to the engine with the lower random rank (drawn
  from ``seed`` when the engine is ordered). Same inputs and seed → identical results.
* The run ends at the last completion; if work is waiting and nothing is in flight or starting
  for ``ceil(startup_s / interval_s) + 3`` intervals after the last arrival, it stops there and
  the requests left count as not completed.

Observation of the interval ``[t - I, t)``: ``requests`` arrived and their mean ``isl``/``osl``
(None when none arrived), ``ttft_ms`` the mean TTFT of first tokens made in it, ``itl_ms`` the
token-weighted mean ITL of requests finished in it (Σ decode time / Σ (osl - 1), what a frontend
histogram gives), ``request_duration_s`` their mean arrival-to-finish time (None when none),
``current_prefill``/``current_decode`` the engines serving at ``t`` (not starting, not draining).

Streaming: requests are pulled from a :class:`~dynamo_plan.sim.requests.RequestSource` a chunk at
a time; each request of a chunk is a small list (indices ``RID`` … ``CHUNK``, built for the
whole chunk at once), and once every request of a chunk has finished the chunk is summarised
with numpy (:meth:`RunSummary.completions <dynamo_plan.sim.summary.RunSummary.completions>`) and
dropped — memory follows the chunks with requests in flight, not the trace. Per-request rows are
kept only when asked (``per_request=True``, or a ``rows`` callback that receives them in batches
as they finish).

Speed (the same events in the same order, the same float operations): the event loop
(:meth:`_Sim.run`) plays arrivals, prefill completions, KV transfers and decode steps inline on
local variables; per-request values are list items, not attributes; idle prefill engines wait on
a heap by rank; the serving decode engines' reserved KV tokens are kept in a list beside them for
admission (:func:`~dynamo_plan.sim.cluster_model.choose_decode`'s ``reserved``); prefill batch
latencies are memoised by token count (:func:`~dynamo_plan.sim.latency_fast.prefill_memo`) and
decode step latencies come from :class:`~dynamo_plan.sim.latency_fast.FastDecodeLatency`.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import deque
from collections.abc import Callable, Iterator
from heapq import heapify, heappop, heappush
from itertools import repeat
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd

from dynamo_plan.core.planner import Observation
from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.sla import SLA
from dynamo_plan.errors import InputError
from dynamo_plan.sim.cluster_model import (
    choose_decode,
    decode_context,
    draw_ranks,
    kv_need,
    kv_transfer_s,
    needs_decode,
    scale_plan,
    take_prefill_batch,
)
from dynamo_plan.sim.config import SimConfig
from dynamo_plan.sim.engine_records import (
    ARR,
    CHUNK,
    CTX,
    DEC,
    DEC_ENG,
    FIN,
    FIRST,
    GET_ISL,
    ISL,
    KV,
    NEED,
    OSL,
    PF_ENG,
    RID,
    Chunk,
    Req,
    columns,
    per_request_frame,
    rows_frame,
)
from dynamo_plan.sim.latency_fast import FastDecodeLatency, prefill_memo
from dynamo_plan.sim.policies import Policy
from dynamo_plan.sim.replicas import DRAINING, GONE, SERVING, STARTING, Decode, Engine, Prefill
from dynamo_plan.sim.requests import RequestArrays, RequestSource
from dynamo_plan.sim.result import (
    RequestOutcome,
    SimResult,
    out_of_profile,
    percentiles,
    unservable,
)
from dynamo_plan.sim.summary import RunSummary

__all__ = ["RowsCallback", "replay", "simulate"]

#: Receives per-request rows in batches as requests finish (a frame with ``request`` and
#: :data:`~dynamo_plan.sim.result.PER_REQUEST_COLUMNS`, by request within a batch); the last
#: batch holds the requests that never finished.
RowsCallback = Callable[[pd.DataFrame], None]

_PF_DONE, _KV_DONE, _DEC_STEP, _READY = 0, 1, 2, 3
_INF = math.inf
_NAN = math.nan
_EPS = 1e-9  # in steps: a time within this of a step boundary is on it
_ROW_BATCH = 1 << 16


class _Sim:
    def __init__(
        self,
        source: RequestSource,
        profile: PerformanceProfile,
        config: SimConfig,
        policy: Policy,
        sla: SLA | None = None,
        *,
        keep: bool = False,
        rows: RowsCallback | None = None,
        exact_limit: int | None = None,
    ) -> None:
        self.cfg = config
        self.policy = policy
        self.profile = profile
        self.sla = sla
        self.pf_memo, self.pf_lat = prefill_memo(profile)
        self.dec_lat = FastDecodeLatency.of(profile)
        self.step_s = self.dec_lat.step_s
        self.max_kv = int(profile.max_kv_tokens)
        self.source = source
        self.span_s = float(source.span_s)
        self._chunks: Iterator[RequestArrays] = iter(source.chunks())
        self.summ: RunSummary | None = None
        if sla is not None:
            kw = {} if exact_limit is None else {"exact_limit": exact_limit}
            self.summ = RunSummary(sla, config.interval_s, **kw)
        self.open_chunks: dict[int, Chunk] = {}
        self.kept: list[Req] | None = [] if keep else None
        self.rows = rows
        self.row_buf: list[Req] = []
        self.inflight: dict[int, Req] | None = {} if rows is not None else None
        # the chunk being consumed and the next arrival
        self.c_reqs: list[Req] = []
        self.c_arr: list[float] = []
        self.ci = 0
        self.c_n = 0
        self.next_rid = 0
        self.last_arr = -_INF
        self.next_arr = _INF
        self.arrived = 0
        self.done = 0
        self.max_fin = -_INF
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
        self.now = 0.0
        self._reset_obs()
        self._pull()

    # --- request stream ----------------------------------------------------------------------

    def _pull(self) -> None:
        """Load the next non-empty chunk (or mark the stream ended: ``next_arr = inf``)."""
        for chunk in self._chunks:
            n = len(chunk)
            if n == 0:
                continue
            arr = chunk.arrival_s
            if float(arr[0]) < self.last_arr:
                raise InputError(
                    f"request {self.next_rid}: arrival_s {float(arr[0]):g} is before the "
                    f"previous one ({self.last_arr:g}); expected ascending arrivals"
                )
            cfg = self.cfg
            isl, osl = chunk.isl, chunk.osl
            kv = np.asarray(kv_transfer_s(cfg, isl.astype(np.float64)))
            s = self.summ
            rid0 = self.next_rid
            c_arr = arr.tolist()
            c: Chunk | None = None
            if s is not None:
                assert self.sla is not None
                cannot = unservable(chunk, self.profile, self.sla, cfg)
                beyond = out_of_profile(chunk, self.profile)
                c = Chunk(arr, osl, s.arrivals(arr, isl, osl, cannot, beyond), cannot)
            reqs = list(
                map(
                    list,
                    zip(
                        range(rid0, rid0 + n),
                        c_arr,
                        isl.tolist(),
                        osl.tolist(),
                        kv_need(isl, osl).tolist(),
                        decode_context(isl, osl).tolist(),
                        kv.tolist(),
                        repeat(_NAN),
                        repeat(_NAN),
                        repeat(_NAN),
                        repeat(-1),
                        repeat(-1),
                        repeat(c),
                        strict=False,
                    ),
                )
            )
            if c is not None and s is not None:
                c.reqs = reqs
                c.left = n
                self.open_chunks[rid0] = c
                # intervals before this chunk's last one have all their arrivals counted
                s.arrivals_reached(int(c.k[-1]))
            self.next_rid = rid0 + n
            self.c_reqs = reqs
            self.c_arr = c_arr
            self.ci = 0
            self.c_n = n
            self.last_arr = c_arr[-1]
            self.next_arr = c_arr[0]
            return
        self.c_reqs = []
        self.c_arr = []
        self.c_n = self.ci = 0
        self.next_arr = _INF
        if self.summ is not None:
            self.summ.arrivals_reached(1 << 62)

    def _chunk_done(self, c: Chunk) -> None:
        """Summarise a chunk (all finished, or the run is over) and drop its requests."""
        reqs = c.reqs
        if reqs is None:
            return
        c.reqs = None
        del self.open_chunks[reqs[0][RID]]
        n = len(reqs)
        first = np.fromiter(map(itemgetter(FIRST), reqs), dtype=np.float64, count=n)
        fin = np.fromiter(map(itemgetter(FIN), reqs), dtype=np.float64, count=n)
        assert self.summ is not None
        self.summ.completions(c.k, c.arr, c.osl, first, fin, c.cannot)

    def close_chunks(self) -> None:
        """Summarise the chunks whose requests did not all finish (end of the run)."""
        for c in list(self.open_chunks.values()):
            self._chunk_done(c)

    # --- observation accumulators ------------------------------------------------------------

    def _reset_obs(self) -> None:
        self.o_arr = 0
        self.o_isl = 0.0
        self.o_osl = 0.0
        self.o_first = 0
        self.o_ttft = 0.0
        self.o_fin = 0
        self.o_dur = 0.0
        self.o_dec_time = 0.0
        self.o_dec_tokens = 0

    def _observation(self, t: float) -> Observation:
        n_arr = self.o_arr
        return Observation(
            t_s=t,
            requests=float(n_arr),
            isl=self.o_isl / n_arr if n_arr else None,
            osl=self.o_osl / n_arr if n_arr else None,
            ttft_ms=1000.0 * self.o_ttft / self.o_first if self.o_first else None,
            itl_ms=1000.0 * self.o_dec_time / self.o_dec_tokens if self.o_dec_tokens else None,
            request_duration_s=self.o_dur / self.o_fin if self.o_fin else None,
            current_prefill=sum(e.state == SERVING for e in self.prefills),
            current_decode=len(self.dec_serving),
        )

    # --- event plumbing ----------------------------------------------------------------------

    def _push(self, t: float, kind: int, obj: Any, version: int = 0) -> None:
        heappush(self.heap, (t, next(self.seq), kind, obj, version))

    def _finish(self, r: Req, t: float) -> None:
        r[FIN] = t
        self.done += 1
        self.o_fin += 1
        osl = r[OSL]
        self.o_dur += t - r[ARR]
        if osl > 1:
            self.o_dec_time += t - r[FIRST]
            self.o_dec_tokens += osl - 1
        if t > self.max_fin:
            self.max_fin = t
        c = r[CHUNK]
        if c is not None:
            c.left -= 1
            if not c.left:
                self._chunk_done(c)
        if self.inflight is not None:
            del self.inflight[r[RID]]
            self.row_buf.append(r)
            if len(self.row_buf) >= _ROW_BATCH:
                self._emit_rows()

    def _emit_rows(self) -> None:
        if self.rows is not None and self.row_buf:
            assert self.sla is not None
            self.rows(rows_frame(self.row_buf, self.sla))
        self.row_buf = []

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
            finish = self._finish
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

    def _tick(self, t: float) -> None:
        obs = self._observation(t)
        self._reset_obs()
        p, d, reason = self.policy.decide(obs)
        self._scale("prefill", p, t)
        self._scale("decode", d, t)
        self._record(t, int(p), int(d), str(reason))

    # --- main loop ---------------------------------------------------------------------------

    def run(self, progress: Callable[[float], None] | None) -> float:
        """Simulate to the end; returns the end time (s).

        Between two interval boundaries the events (heap: prefill done, KV transfer done, decode
        step, engine ready) and arrivals are played in time order — a heap event before an
        arrival at the same time, the boundary before both. The frequent paths are written out
        here on local variables (the same steps as :meth:`_start_batch`, :meth:`_admit` and
        :meth:`_advance`, which serve the rarer callers).
        """
        p0, d0 = self.policy.initial()
        for _ in range(max(0, int(p0))):
            self._order("prefill", 0.0)
        for _ in range(max(0, int(d0))):
            self._order("decode", 0.0)
        self._record(0.0, int(p0), int(d0), "initial")
        interval = self.cfg.interval_s
        stuck_limit = math.ceil(self.cfg.startup_s / interval) + 3
        last_arrival = self.span_s
        heap, seq = self.heap, self.seq
        dq, pf_queue, pf_idle, serving = self.dq, self.pf_queue, self.pf_idle, self.dec_serving
        dec_res = self.dec_res
        advance, try_admit, start_batch = self._advance, self._try_admit, self._start_batch
        finish = self._finish
        step_s = self.step_s
        memo = self.pf_memo
        kept, inflight = self.kept, self.inflight
        cap = self.max_kv
        max_b = self.cfg.max_decode_batch
        ceil = math.ceil
        k = 1
        next_tick = interval
        stuck = 0
        end_t = 0.0
        # the chunk being consumed, as locals (reloaded after each pull)
        c_reqs, c_arr, ci, c_n = self.c_reqs, self.c_arr, self.ci, self.c_n
        ta = self.next_arr
        o_arr = 0
        o_isl = 0.0
        o_osl = 0.0
        o_first = 0
        o_ttft = 0.0
        while self.done < self.arrived or ta < _INF:
            # events and arrivals before the next interval boundary
            while True:
                th = heap[0][0] if heap else _INF
                if th <= ta and heap:
                    if th >= next_tick:
                        break
                    t, _, kind, e, version = heappop(heap)
                    end_t = t
                    if kind == _DEC_STEP:
                        if version != e.version:
                            continue  # superseded
                        # _advance(e, t), inline: a step boundary of e
                        n = e.n
                        s0 = e.s0 + round((t - e.t0) / e.tau)
                        e.s0 = s0
                        e.t0 = t
                        mem = e.members
                        freed = mem[0][0] <= s0
                        if freed:
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
                                dec_res[e.slot] = reserved
                        pending = e.pending
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
                        version += 1
                        e.version = version
                        if n:
                            e.tau = tau = step_s(e.sum_ctx, n)
                            e.sched_t = sched = t + (mem[0][0] - s0) * tau
                            heappush(heap, (sched, next(seq), _DEC_STEP, e, version))
                        else:
                            e.sum_ctx = 0.0
                            e.tau = 0.0
                            e.sched_t = _INF
                            if e.state == DRAINING:
                                e.state = GONE
                                e.end_t = t
                        if dq and freed:
                            # only freed KV can let the waiting head in: joining changes no
                            # engine's reserved tokens or requests held
                            try_admit(t)
                    elif kind == _KV_DONE:
                        if dq:  # behind a head that waits: nothing changed for the head
                            dq.append(e)
                            continue
                        dq.append(e)
                        while serving and dq:
                            d = choose_decode(serving, dq[0][NEED], cap, max_b, dec_res)
                            if d is None:
                                break
                            # _admit(d, r, t), inline
                            r = dq.popleft()
                            d.pending.append(r)
                            d.reserved += r[NEED]
                            dec_res[d.slot] = d.reserved
                            r[DEC_ENG] = d.eid
                            if d.n == 0:
                                advance(d, t)
                                continue
                            t0 = d.t0
                            tau = d.tau
                            x = (t - t0) / tau
                            kb = ceil(x - _EPS)
                            if kb - x < _EPS:  # on a boundary: join now
                                advance(d, t)
                                continue
                            tb = t0 + kb * tau
                            if tb < d.sched_t:
                                version = d.version + 1
                                d.version = version
                                d.sched_t = tb
                                heappush(heap, (tb, next(seq), _DEC_STEP, d, version))
                    elif kind == _PF_DONE:
                        # the batch's first tokens; each request moves on to decode
                        batch: list[Req] = e.batch
                        for r in batch:
                            r[FIRST] = t
                            o_ttft += t - r[ARR]
                            if needs_decode(r[OSL]):
                                heappush(heap, (t + r[KV], next(seq), _KV_DONE, r, 0))
                            else:
                                finish(r, t)
                        o_first += len(batch)
                        e.batch = []
                        if e.state == DRAINING:
                            e.state = GONE
                            e.end_t = t
                        elif pf_queue:
                            start_batch(e, t)
                        else:
                            heappush(pf_idle, (e.rank, e.eid, e))
                    else:
                        self._ready(e, t)
                    if ta == _INF and self.done >= self.arrived:
                        break
                    continue
                if ta >= next_tick:
                    break
                # the next request arrives and joins the prefill queue; an idle prefill
                # engine (the lowest rank) starts a batch
                t = ta
                r = c_reqs[ci]
                ci += 1
                self.arrived += 1
                if ci < c_n:
                    ta = c_arr[ci]
                else:
                    self._pull()
                    c_reqs, c_arr, ci, c_n = self.c_reqs, self.c_arr, self.ci, self.c_n
                    ta = self.next_arr
                end_t = t
                if kept is not None:
                    kept.append(r)
                if inflight is not None:
                    inflight[r[RID]] = r
                o_arr += 1
                o_isl += r[ISL]
                o_osl += r[OSL]
                if pf_idle and not pf_queue:
                    # _start_batch on a queue of just r: the batch is [r]
                    e = heappop(pf_idle)[2]
                    r[PF_ENG] = e.eid
                    e.batch = [r]
                    tokens = r[ISL]
                    dt = memo.get(tokens)
                    if dt is None:
                        dt = memo[tokens] = self.pf_lat.batch_s(tokens)
                    heappush(heap, (t + dt, next(seq), _PF_DONE, e, 0))
                else:
                    pf_queue.append(r)
                    if pf_idle:
                        start_batch(heappop(pf_idle)[2], t)
            self.ci = ci
            self.next_arr = ta
            if not (self.done < self.arrived or ta < _INF):
                break
            if ta == _INF and not heap:
                busy = any(e.state == STARTING for e in self.prefills) or any(
                    e.state == STARTING for e in self.decodes
                )
                stuck = 0 if busy else stuck + 1
                if stuck > stuck_limit:
                    break
            self.o_arr, self.o_isl, self.o_osl = o_arr, o_isl, o_osl
            self.o_first, self.o_ttft = o_first, o_ttft
            self._tick(next_tick)
            o_arr = o_first = 0
            o_isl = o_osl = o_ttft = 0.0
            end_t = max(end_t, next_tick)
            if progress is not None:
                progress(min(1.0, next_tick / last_arrival) if last_arrival > 0 else 1.0)
            k += 1
            next_tick = k * interval
        self.ci = ci
        self.next_arr = ta
        if progress is not None:
            progress(1.0)
        if self.done == self.arrived and self.arrived:
            end_t = self.max_fin
        return end_t

    def gpu_hours(self, end_t: float) -> float:
        total = 0.0
        for engines, gpus in (
            (self.prefills, self.cfg.prefill_gpus),
            (self.decodes, self.cfg.decode_gpus),
        ):
            for e in engines:
                total += max(0.0, min(e.end_t, end_t) - e.order_t) * gpus
        return total / 3600.0

    def finish_rows(self) -> None:
        """Send the rows still buffered and those of requests that never finished."""
        if self.inflight is not None:
            self.row_buf.extend(self.inflight.values())
            self.inflight.clear()
            self._emit_rows()

    def outcome(self) -> tuple[RequestArrays, RequestOutcome]:
        """Inputs and outcome of every request (``keep`` runs only)."""
        return columns(self.kept if self.kept is not None else [])


def replay(
    requests: RequestArrays,
    profile: PerformanceProfile,
    config: SimConfig,
    policy: Policy,
) -> RequestOutcome:
    """Only what happened to each request (no summary, no timeline): the inner step of searches
    that replay many candidate schedules (:mod:`dynamo_plan.sim.optimal`)."""
    sim = _Sim(requests, profile, config, policy, keep=True)
    sim.run(None)
    return sim.outcome()[1]


def simulate(
    requests: RequestSource,
    profile: PerformanceProfile,
    sla: SLA,
    config: SimConfig,
    policy: Policy,
    progress: Callable[[float], None] | None = None,
    *,
    per_request: bool = False,
    rows: RowsCallback | None = None,
    exact_limit: int | None = None,
) -> SimResult:
    """Replay ``requests`` (a :class:`RequestArrays` or any
    :class:`~dynamo_plan.sim.requests.RequestSource`) through a simulated deployment scaled by
    ``policy``.

    The model is in this module's docstring. ``progress``, if given, is called with the fraction
    of the trace replayed (0..1) at every interval boundary and with 1.0 at the end.
    ``per_request`` keeps the per-request table (:attr:`SimResult.per_request`, else None; its
    memory grows with the trace); ``rows`` receives the same rows in batches as requests finish
    (for writing them out as the run goes). ``exact_limit``: completed requests up to which the
    TTFT/ITL percentiles are exact (:mod:`dynamo_plan.sim.quantiles`; default 2**20); with
    ``per_request`` they are always exact.
    """
    started = time.perf_counter()
    sim = _Sim(
        requests,
        profile,
        config,
        policy,
        sla,
        keep=per_request,
        rows=rows,
        exact_limit=exact_limit,
    )
    if sim.next_arr == _INF:
        raise InputError("no requests to simulate")
    end_t = sim.run(progress)
    sim.close_chunks()
    sim.finish_rows()
    summ = sim.summ
    assert summ is not None
    summ.finalize()
    ttft, itl = summ.percentiles("ttft"), summ.percentiles("itl")
    table = None
    if per_request:
        req, outcome = sim.outcome()
        table = per_request_frame(req, outcome, sla)
        done = np.isfinite(outcome.finish_s)  # exact percentiles from the kept values
        ttft = percentiles(table["ttft_ms"].to_numpy()[done])
        itl = percentiles(table["itl_ms"].to_numpy()[done])
    result = SimResult(
        policy=str(policy.name),
        requests=summ.requests,
        completed=summ.completed,
        sla_attainment=summ.attainment(),
        unservable=summ.unservable,
        ttft_ms=ttft,
        itl_ms=itl,
        gpu_hours=sim.gpu_hours(end_t),
        replica_timeline=sim.timeline,
        out_of_profile_requests=summ.out_of_profile,
        wall_s=0.0,
        per_request=table,
        interval_stats=summ.interval_table(sim.timeline),
        sim_end_s=end_t,
        output_tokens=summ.output_tokens,
    )
    result.wall_s = time.perf_counter() - started
    return result
