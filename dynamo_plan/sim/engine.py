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
a time, each becomes a small object when it arrives, and a finished request is summarised
(:class:`~dynamo_plan.sim.summary.RunSummary`) and dropped — memory follows the requests in
flight, not the trace. Per-request rows are kept only when asked (``per_request=True``, or a
``rows`` callback that receives them in batches as they finish).
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections import deque
from collections.abc import Callable, Iterator
from heapq import heappop, heappush
from operator import attrgetter
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
    pick_idle,
    scale_plan,
    take_prefill_batch,
)
from dynamo_plan.sim.config import SimConfig
from dynamo_plan.sim.latency import PrefillLatency
from dynamo_plan.sim.latency_fast import FastDecodeLatency
from dynamo_plan.sim.policies import Policy
from dynamo_plan.sim.replicas import DRAINING, GONE, SERVING, STARTING, Decode, Engine, Prefill
from dynamo_plan.sim.requests import RequestArrays, RequestSource
from dynamo_plan.sim.result import (
    PER_REQUEST_COLUMNS,
    RequestOutcome,
    SimResult,
    out_of_profile,
    percentiles,
    request_latencies,
    sla_met,
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
_EPS = 1e-9  # in steps: a time within this of a step boundary is on it
_ROW_BATCH = 1 << 16
_RID = attrgetter("rid")


class _Req:
    """One request in flight: inputs (arrival s, tokens, KV need, mid-life context, KV transfer
    s, arrival interval, unservable flag) and what happened so far (s; -1: no engine yet)."""

    __slots__ = (
        "arr",
        "cannot",
        "ctx",
        "dec_eng",
        "dec_start",
        "fin",
        "first_t",
        "isl",
        "k",
        "kv_s",
        "need",
        "osl",
        "pf_eng",
        "rid",
    )

    def __init__(
        self, rid: int, arr: float, isl: int, osl: int, kv_s: float, k: int, cannot: bool
    ) -> None:
        self.rid = rid
        self.arr = arr
        self.isl = isl
        self.osl = osl
        self.need = kv_need(isl, osl)
        self.ctx = decode_context(isl, osl)
        self.kv_s = kv_s
        self.k = k
        self.cannot = cannot
        self.first_t = math.nan
        self.dec_start = math.nan
        self.fin = math.nan
        self.pf_eng = -1
        self.dec_eng = -1


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
        self.pf_lat = PrefillLatency(profile)
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
        self.kept: list[_Req] | None = [] if keep else None
        self.rows = rows
        self.row_buf: list[_Req] = []
        self.inflight: dict[int, _Req] | None = {} if rows is not None else None
        # the chunk being consumed (plain lists) and the next arrival
        self.c_arr: list[float] = []
        self.c_isl: list[int] = []
        self.c_osl: list[int] = []
        self.c_kv: list[float] = []
        self.c_k: list[int] = []
        self.c_cannot: list[bool] = []
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
        self.pf_idle: list[Prefill] = []
        self.dec_serving: list[Decode] = []
        self.pf_queue: deque[_Req] = deque()
        self.dq: deque[_Req] = deque()
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
            kv = np.asarray(kv_transfer_s(cfg, chunk.isl.astype(np.float64)))
            s = self.summ
            if s is not None:
                assert self.sla is not None
                cannot = unservable(chunk, self.profile, self.sla, cfg)
                beyond = out_of_profile(chunk, self.profile)
                k = s.arrivals(arr, chunk.isl, chunk.osl, cannot, beyond)
                self.c_cannot = cannot.tolist()
                self.c_k = k.tolist()
            else:
                self.c_cannot = [False] * n
                self.c_k = [0] * n
            self.c_arr = arr.tolist()
            self.c_isl = chunk.isl.tolist()
            self.c_osl = chunk.osl.tolist()
            self.c_kv = kv.tolist()
            self.ci = 0
            self.c_n = n
            self.last_arr = self.c_arr[-1]
            self.next_arr = self.c_arr[0]
            return
        self.c_n = self.ci = 0
        self.next_arr = _INF
        if self.summ is not None:
            self.summ.arrivals_reached(1 << 62)

    def _arrive_next(self, t: float) -> None:
        """The next request of the stream arrives (at ``t = next_arr``) and joins the prefill
        queue; an idle prefill engine (the lowest rank) starts a batch."""
        i = self.ci
        r = _Req(
            self.next_rid,
            t,
            self.c_isl[i],
            self.c_osl[i],
            self.c_kv[i],
            self.c_k[i],
            self.c_cannot[i],
        )
        self.next_rid += 1
        self.arrived += 1
        i += 1
        self.ci = i
        if i < self.c_n:
            self.next_arr = self.c_arr[i]
        else:
            self._pull()
        if self.kept is not None:
            self.kept.append(r)
        if self.inflight is not None:
            self.inflight[r.rid] = r
        self.o_arr += 1
        self.o_isl += r.isl
        self.o_osl += r.osl
        s = self.summ
        if s is not None and r.k > s.arrived_k:
            s.arrivals_reached(r.k)
        self.pf_queue.append(r)
        idle = self.pf_idle
        if idle:
            e = pick_idle(idle)
            idle.remove(e)
            self._start_batch(e, t)

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
        heapq.heappush(self.heap, (t, next(self.seq), kind, obj, version))

    def _finish(self, r: _Req, t: float) -> None:
        r.fin = t
        self.done += 1
        self.o_fin += 1
        arr = r.arr
        first = r.first_t
        osl = r.osl
        self.o_dur += t - arr
        if osl > 1:
            self.o_dec_time += t - first
            self.o_dec_tokens += osl - 1
        if t > self.max_fin:
            self.max_fin = t
        s = self.summ
        if s is not None:
            ttft = (first - arr) * 1000.0
            s.ttft_buf.append(ttft)
            met = ttft <= s.sla_ttft_ms
            acc = s.open[r.k]
            if osl > 1:
                itl = (t - first) * 1000.0 / (osl - 1)
                s.itl_buf.append(itl)
                acc.itl.append(itl)
                met = met and itl <= s.sla_itl_ms
            s.completed += 1
            s.output_tokens += osl
            acc.done += 1
            if met:
                acc.met += 1
                if not r.cannot:
                    s.met_servable += 1
            if acc.done == acc.n and r.k < s.arrived_k:
                s.close(r.k)
            if len(s.ttft_buf) >= 65536:
                s.flush()
        if self.inflight is not None:
            del self.inflight[r.rid]
            self.row_buf.append(r)
            if len(self.row_buf) >= _ROW_BATCH:
                self._emit_rows()

    def _emit_rows(self) -> None:
        if self.rows is not None and self.row_buf:
            assert self.sla is not None
            self.rows(_rows_frame(self.row_buf, self.sla))
        self.row_buf = []

    # --- prefill -----------------------------------------------------------------------------

    def _start_batch(self, e: Prefill, t: float) -> None:
        batch, tokens = take_prefill_batch(self.pf_queue, self.cfg.prefill_token_budget)
        eid = e.eid
        for r in batch:
            r.pf_eng = eid
        e.batch = batch
        self._push(t + self.pf_lat.batch_s(tokens), _PF_DONE, e)

    def _prefill_done(self, e: Prefill, t: float) -> None:
        heap, seq, push = self.heap, self.seq, heapq.heappush
        s = self.summ
        batch: list[_Req] = e.batch
        for r in batch:
            r.first_t = t
            wait = t - r.arr
            self.o_ttft += wait
            if s is not None:
                s.open[r.k].ttft.append(wait * 1000.0)
            if not needs_decode(r.osl):
                self._finish(r, t)
            else:
                push(heap, (t + r.kv_s, next(seq), _KV_DONE, r, 0))
        self.o_first += len(batch)
        e.batch = []
        if e.state == DRAINING:
            e.state = GONE
            e.end_t = t
        elif self.pf_queue:
            self._start_batch(e, t)
        else:
            self.pf_idle.append(e)

    # --- decode ------------------------------------------------------------------------------

    def _advance(self, e: Decode, t: float) -> None:
        """Bring ``e`` to the step boundary ``t``: finish due members, admit pending joiners."""
        if e.n:
            e.s0 += round((t - e.t0) / e.tau)
        e.t0 = t
        mem: list[tuple[int, int, _Req]] = e.members
        s0 = e.s0
        if mem and mem[0][0] <= s0:
            finish = self._finish
            while mem and mem[0][0] <= s0:
                r = heappop(mem)[2]
                e.n -= 1
                e.reserved -= r.need
                e.sum_ctx -= r.ctx
                finish(r, t)
        if e.pending:
            pending: list[_Req] = e.pending
            sum_ctx = e.sum_ctx
            for r in pending:
                heappush(mem, (s0 + r.osl - 1, r.rid, r))
                sum_ctx += r.ctx
                r.dec_start = t
            e.sum_ctx = sum_ctx
            e.n += len(pending)
            e.pending = []
        e.version += 1
        if e.n:
            e.tau = tau = self.step_s(e.sum_ctx, e.n)
            e.sched_t = sched = t + (mem[0][0] - s0) * tau
            heappush(self.heap, (sched, next(self.seq), _DEC_STEP, e, e.version))
        else:
            e.sum_ctx = 0.0
            e.tau = 0.0
            e.sched_t = _INF
            if e.state == DRAINING:
                e.state = GONE
                e.end_t = t

    def _admit(self, e: Decode, r: _Req, t: float) -> None:
        e.pending.append(r)
        e.reserved += r.need
        r.dec_eng = e.eid
        if e.n == 0:
            self._advance(e, t)
            return
        x = (t - e.t0) / e.tau
        k = math.ceil(x - _EPS)
        if k - x < _EPS:  # on a boundary: join now
            self._advance(e, t)
            return
        tb = e.t0 + k * e.tau
        if tb < e.sched_t:
            e.version += 1
            e.sched_t = tb
            heappush(self.heap, (tb, next(self.seq), _DEC_STEP, e, e.version))

    def _try_admit(self, t: float) -> None:
        dq = self.dq
        if not dq:
            return
        serving = self.dec_serving
        if not serving:
            return
        cap = self.max_kv
        max_b = self.cfg.max_decode_batch
        while dq:
            best = choose_decode(serving, dq[0].need, cap, max_b)
            if best is None:
                return
            self._admit(best, dq.popleft(), t)

    # --- scaling -----------------------------------------------------------------------------

    def _ready(self, e: Engine, t: float) -> None:
        if e.state != STARTING:
            return  # cancelled
        e.state = SERVING
        if isinstance(e, Prefill):
            if self.pf_queue:
                self._start_batch(e, t)
            else:
                self.pf_idle.append(e)
        else:
            assert isinstance(e, Decode)
            e.t0 = t
            self.dec_serving.append(e)
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
                    self.pf_idle.remove(e)
                    e.state = GONE
                    e.end_t = t
            else:
                self.dec_serving.remove(e)
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
        """Simulate to the end; returns the end time (s)."""
        p0, d0 = self.policy.initial()
        for _ in range(max(0, int(p0))):
            self._order("prefill", 0.0)
        for _ in range(max(0, int(d0))):
            self._order("decode", 0.0)
        self._record(0.0, int(p0), int(d0), "initial")
        interval = self.cfg.interval_s
        stuck_limit = math.ceil(self.cfg.startup_s / interval) + 3
        last_arrival = self.span_s
        heap = self.heap
        advance, try_admit, dq = self._advance, self._try_admit, self.dq
        k = 1
        next_tick = interval
        stuck = 0
        end_t = 0.0
        while self.done < self.arrived or self.next_arr < _INF:
            ta = self.next_arr
            th = heap[0][0] if heap else _INF
            if next_tick <= th and next_tick <= ta:
                if ta == _INF and not heap:
                    busy = any(e.state == STARTING for e in self.prefills) or any(
                        e.state == STARTING for e in self.decodes
                    )
                    stuck = 0 if busy else stuck + 1
                    if stuck > stuck_limit:
                        break
                self._tick(next_tick)
                end_t = max(end_t, next_tick)
                if progress is not None:
                    progress(min(1.0, next_tick / last_arrival) if last_arrival > 0 else 1.0)
                k += 1
                next_tick = k * interval
            elif th <= ta:
                t, _, kind, obj, version = heappop(heap)
                end_t = t
                if kind == _DEC_STEP:
                    if version == obj.version:
                        advance(obj, t)
                        if dq:
                            try_admit(t)
                elif kind == _KV_DONE:
                    dq.append(obj)
                    try_admit(t)
                elif kind == _PF_DONE:
                    self._prefill_done(obj, t)
                else:
                    self._ready(obj, t)
            else:
                self._arrive_next(ta)
                end_t = ta
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
        kept = self.kept if self.kept is not None else []

        def col(name: str, dtype: type) -> np.ndarray:
            return np.fromiter((getattr(r, name) for r in kept), dtype=dtype, count=len(kept))

        requests = RequestArrays(col("arr", float), col("isl", int), col("osl", int))
        return requests, RequestOutcome(
            first_token_s=col("first_t", float),
            decode_start_s=col("dec_start", float),
            finish_s=col("fin", float),
            prefill_engine=col("pf_eng", np.int64),
            decode_engine=col("dec_eng", np.int64),
        )


def _rows_frame(reqs: list[_Req], sla: SLA) -> pd.DataFrame:
    """Per-request rows (``request`` + :data:`PER_REQUEST_COLUMNS`) of ``reqs``, by request id
    (= arrival order)."""
    reqs = sorted(reqs, key=_RID)

    def col(name: str, dtype: type) -> np.ndarray:
        return np.fromiter((getattr(r, name) for r in reqs), dtype=dtype, count=len(reqs))

    requests = RequestArrays(col("arr", float), col("isl", int), col("osl", int))
    outcome = RequestOutcome(
        first_token_s=col("first_t", float),
        decode_start_s=col("dec_start", float),
        finish_s=col("fin", float),
        prefill_engine=col("pf_eng", np.int64),
        decode_engine=col("dec_eng", np.int64),
    )
    frame = _per_request(requests, outcome, sla)
    frame.insert(0, "request", col("rid", np.int64))
    return frame


def _per_request(requests: RequestArrays, outcome: RequestOutcome, sla: SLA) -> pd.DataFrame:
    ttft_ms, itl_ms = request_latencies(requests, outcome)
    frame = pd.DataFrame(
        {
            "arrival_s": requests.arrival_s,
            "isl": requests.isl,
            "osl": requests.osl,
            "first_token_s": outcome.first_token_s,
            "ttft_ms": ttft_ms,
            "decode_start_s": outcome.decode_start_s,
            "itl_ms": itl_ms,
            "finish_s": outcome.finish_s,
            "prefill_engine": outcome.prefill_engine,
            "decode_engine": outcome.decode_engine,
            "sla_met": sla_met(requests, outcome, sla),
        }
    )
    assert list(frame.columns) == list(PER_REQUEST_COLUMNS)
    return frame


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
    sim.finish_rows()
    summ = sim.summ
    assert summ is not None
    summ.finalize()
    ttft, itl = summ.percentiles("ttft"), summ.percentiles("itl")
    table = None
    if per_request:
        req, outcome = sim.outcome()
        table = _per_request(req, outcome, sla)
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
