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
``current_prefill``/``current_decode`` the engines serving at ``t`` (not starting, not draining);
with an SLA (:func:`simulate`), ``sla_judged`` the requests finished in it that some size could
serve (:func:`~dynamo_plan.sim.result.unservable`) and ``sla_missed`` those of them that missed
TTFT or ITL — what the run's summary counts, interval by interval (None without an SLA).

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
decode step latencies come from :class:`~dynamo_plan.sim.latency_fast.FastDecodeLatency`; an
admission whose least-reserved engine is the only one so loaded skips the call to
``choose_decode``; the cyclic garbage collector is paused during the run (:meth:`_Sim.run`).
The engines, their queues and the scaling bookkeeping are
:class:`~dynamo_plan.sim.engine_pools.EnginePools` (of which ``_Sim`` is one).
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Iterator
from heapq import heappop, heappush
from itertools import repeat
from operator import itemgetter

import numpy as np
import pandas as pd

from dynamo_plan.core.planner import Observation
from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.sla import SLA
from dynamo_plan.errors import InputError
from dynamo_plan.sim.cluster_model import (
    choose_decode,
    decode_context,
    kv_need,
    kv_transfer_s,
)
from dynamo_plan.sim.config import SimConfig
from dynamo_plan.sim.engine_pools import DEC_STEP, EPS, KV_DONE, PF_DONE, EnginePools
from dynamo_plan.sim.engine_records import (
    ARR,
    CHUNK,
    CTX,
    DEC,
    DEC_ENG,
    FIN,
    FIRST,
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
from dynamo_plan.sim.policies import Policy
from dynamo_plan.sim.replicas import DRAINING, GONE, SERVING, STARTING
from dynamo_plan.sim.requests import RequestArrays, RequestSource
from dynamo_plan.sim.result import (
    RequestOutcome,
    SimResult,
    out_of_profile,
    percentiles,
    unforeseeable,
    unservable,
)
from dynamo_plan.sim.summary import RunSummary

__all__ = ["RowsCallback", "replay", "simulate"]

#: Receives per-request rows in batches as requests finish (a frame with ``request`` and
#: :data:`~dynamo_plan.sim.result.PER_REQUEST_COLUMNS`, by request within a batch); the last
#: batch holds the requests that never finished.
RowsCallback = Callable[[pd.DataFrame], None]

_PF_DONE, _KV_DONE, _DEC_STEP, _EPS = PF_DONE, KV_DONE, DEC_STEP, EPS
_INF = math.inf
_NAN = math.nan
_ROW_BATCH = 1 << 16
#: Interval boundaries between two collections of the young generation while the collector is
#: paused (:meth:`_Sim.run`): each collection walks every young object still alive (the requests
#: in flight), so collecting at every boundary cost ~1.4 % of a day-long run.
_GC_EVERY_TICKS = 256


class _Sim(EnginePools):
    """One run: the request stream, the observation of each interval, the policy's ticks and
    the event loop (:meth:`run`) over the pools of :class:`EnginePools`."""

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
        super().__init__(config, profile, self._finish)
        self.policy = policy
        self.sla = sla
        # the SLA's targets (ms) a finished request is judged against (:meth:`_finish`)
        self.ttft_ms = sla.ttft_ms if sla is not None else _INF
        self.itl_ms = sla.itl_ms if sla is not None else _INF
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
        self.now = 0.0
        self.ticks = 0
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
                c = Chunk(arr, osl, s.arrivals(arr, isl, osl, cannot, beyond), cannot, rid0)
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
        self.o_judged = 0
        self.o_missed = 0

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
            sla_judged=None if self.summ is None else float(self.o_judged),
            sla_missed=None if self.summ is None else float(self.o_missed),
        )

    # --- finished requests -------------------------------------------------------------------

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
        if c is not None:  # summarised, so judged against the SLA unless no size can serve it
            if not c.cannot[r[RID] - c.rid0]:
                self.o_judged += 1
                first = r[FIRST]
                if (first - r[ARR]) * 1000.0 > self.ttft_ms or (
                    osl > 1 and (t - first) * 1000.0 / (osl - 1) > self.itl_ms
                ):
                    self.o_missed += 1
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

    # --- policy ticks ------------------------------------------------------------------------

    def _tick(self, t: float) -> None:
        obs = self._observation(t)
        self._reset_obs()
        p, d, reason = self.policy.decide(obs)
        self.ticks += 1
        if not self.ticks % _GC_EVERY_TICKS and not gc.isenabled():
            gc.collect(0)  # paused by run(): free the cycles the policy left (the young ones)
        self._scale("prefill", p, t)
        self._scale("decode", d, t)
        self._record(t, int(p), int(d), str(reason))

    # --- main loop ---------------------------------------------------------------------------

    def run(self, progress: Callable[[float], None] | None) -> float:
        """Simulate to the end (:meth:`_run`) with the cyclic garbage collector paused; returns
        the end time (s).

        The run allocates a list per request and a tuple per event, none of them in reference
        cycles, so the collector's passes over them find nothing (about a tenth of the run's
        time); the young generation is still collected every :data:`_GC_EVERY_TICKS` interval
        boundaries (:meth:`_tick`), which frees any cycles the policy leaves (the planner leaves
        a few objects per tick). The collector's previous state is restored after.
        """
        paused = gc.isenabled()
        gc.disable()
        try:
            return self._run(progress)
        finally:
            if paused:
                gc.enable()

    def _run(self, progress: Callable[[float], None] | None) -> float:
        """Simulate to the end; returns the end time (s).

        Between two interval boundaries the events (heap: prefill done, KV transfer done, decode
        step, engine ready) and arrivals are played in time order — a heap event before an
        arrival at the same time, the boundary before both. The frequent paths are written out
        here on local variables (the same steps as :class:`EnginePools`' ``_start_batch``,
        ``_admit`` and ``_advance``, which serve the rarer callers).
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
        itl_ms = self.dec_lat.itl_ms  # step_s(c, n) = itl_ms(c / kv_f, c / n) / 1000, inline
        kv_f = self.dec_lat.max_kv_tokens
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
                            sum_ctx = e.sum_ctx
                            e.tau = tau = itl_ms(sum_ctx / kv_f, sum_ctx / n) / 1000.0
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
                            need = dq[0][NEED]
                            if max_b is None and len(dec_res) > 1:
                                # choose_decode's least-reserved engine, inline when it is
                                # the only one so loaded (ties: choose_decode, by rank)
                                low = min(dec_res)
                                if dec_res.count(low) == 1:
                                    d = serving[dec_res.index(low)]
                                    if low + need > cap and (d.n or d.pending):
                                        break
                                else:
                                    chosen = choose_decode(serving, need, cap, max_b, dec_res)
                                    if chosen is None:
                                        break
                                    d = chosen
                            else:
                                chosen = choose_decode(serving, need, cap, max_b, dec_res)
                                if chosen is None:
                                    break
                                d = chosen
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
                            if r[OSL] > 1:  # needs_decode, inline
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
    intervals = summ.interval_table(sim.timeline)
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
        interval_stats=intervals,
        sim_end_s=end_t,
        output_tokens=summ.output_tokens,
        unforeseeable=unforeseeable(
            intervals["requests"].to_numpy(), config.interval_s, config.startup_s
        ),
    )
    result.wall_s = time.perf_counter() - started
    return result
