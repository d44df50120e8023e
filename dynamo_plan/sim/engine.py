"""Discrete-event simulator of a disaggregated (prefill / decode) deployment under a policy.

Model (all times in seconds from the first arrival, t = 0):

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
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from dynamo_plan.core.planner import Observation
from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.sla import SLA
from dynamo_plan.errors import InputError
from dynamo_plan.sim.config import SimConfig
from dynamo_plan.sim.latency import DecodeLatency, PrefillLatency
from dynamo_plan.sim.policies import Policy
from dynamo_plan.sim.replicas import DRAINING, GONE, SERVING, STARTING, Decode, Engine, Prefill
from dynamo_plan.sim.requests import RequestArrays
from dynamo_plan.sim.result import RequestOutcome, SimResult, build_result

__all__ = ["simulate"]

_PF_DONE, _KV_DONE, _DEC_STEP, _READY = 0, 1, 2, 3
_INF = math.inf
_EPS = 1e-9  # in steps: a time within this of a step boundary is on it


class _Sim:
    def __init__(
        self,
        requests: RequestArrays,
        profile: PerformanceProfile,
        config: SimConfig,
        policy: Policy,
    ) -> None:
        self.cfg = config
        self.policy = policy
        self.pf_lat = PrefillLatency(profile)
        self.dec_lat = DecodeLatency(profile)
        self.max_kv = int(profile.max_kv_tokens)
        self.n = len(requests)
        self.arr: list[float] = requests.arrival_s.tolist()
        self.isl: list[int] = requests.isl.tolist()
        self.osl: list[int] = requests.osl.tolist()
        self.need = [i + o for i, o in zip(self.isl, self.osl, strict=True)]
        self.ctx = [i + o / 2.0 for i, o in zip(self.isl, self.osl, strict=True)]
        self.kv_s: list[float] = [config.kv_transfer_s(i) for i in self.isl]
        nan = math.nan
        self.first_t = [nan] * self.n
        self.dec_start = [nan] * self.n
        self.finish_t = [nan] * self.n
        self.pf_eng = [-1] * self.n
        self.dec_eng = [-1] * self.n
        self.done = 0
        self.heap: list[tuple[float, int, int, Any, int]] = []
        self.seq = itertools.count()
        self.rng = random.Random(config.seed)
        self.prefills: list[Prefill] = []
        self.decodes: list[Decode] = []
        self.pf_idle: list[Prefill] = []
        self.dec_serving: list[Decode] = []
        self.pf_queue: deque[int] = deque()
        self.dq: deque[int] = deque()
        self.timeline: list[dict[str, Any]] = []
        self.now = 0.0
        self._reset_obs()

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

    def _finish(self, rid: int, t: float) -> None:
        self.finish_t[rid] = t
        self.done += 1
        self.o_fin += 1
        self.o_dur += t - self.arr[rid]
        steps = self.osl[rid] - 1
        if steps > 0:
            self.o_dec_time += t - self.first_t[rid]
            self.o_dec_tokens += steps

    # --- prefill -----------------------------------------------------------------------------

    def _start_batch(self, e: Prefill, t: float) -> None:
        q = self.pf_queue
        isl = self.isl
        budget = self.cfg.prefill_token_budget
        rid = q.popleft()
        batch = [rid]
        tokens = isl[rid]
        while q and tokens + isl[q[0]] <= budget:
            rid = q.popleft()
            batch.append(rid)
            tokens += isl[rid]
        for rid in batch:
            self.pf_eng[rid] = e.eid
        e.batch = batch
        self._push(t + self.pf_lat.batch_s(tokens), _PF_DONE, e)

    def _prefill_done(self, e: Prefill, t: float) -> None:
        kv_s, first_t, arr, osl = self.kv_s, self.first_t, self.arr, self.osl
        heap, seq, push = self.heap, self.seq, heapq.heappush
        for rid in e.batch:
            first_t[rid] = t
            self.o_ttft += t - arr[rid]
            if osl[rid] <= 1:
                self._finish(rid, t)
            else:
                push(heap, (t + kv_s[rid], next(seq), _KV_DONE, rid, 0))
        self.o_first += len(e.batch)
        e.batch = []
        if e.state == DRAINING:
            e.state = GONE
            e.end_t = t
        elif self.pf_queue:
            self._start_batch(e, t)
        else:
            self.pf_idle.append(e)

    def _arrive(self, rid: int, t: float) -> None:
        self.o_arr += 1
        self.o_isl += self.isl[rid]
        self.o_osl += self.osl[rid]
        self.pf_queue.append(rid)
        idle = self.pf_idle
        if idle:
            e = min(idle, key=lambda x: x.rank) if len(idle) > 1 else idle[0]
            idle.remove(e)
            self._start_batch(e, t)

    # --- decode ------------------------------------------------------------------------------

    def _advance(self, e: Decode, t: float) -> None:
        """Bring ``e`` to the step boundary ``t``: finish due members, admit pending joiners."""
        if e.n:
            e.s0 += round((t - e.t0) / e.tau)
        e.t0 = t
        mem = e.members
        s0 = e.s0
        while mem and mem[0][0] <= s0:
            rid = heapq.heappop(mem)[1]
            e.n -= 1
            e.reserved -= self.need[rid]
            e.sum_ctx -= self.ctx[rid]
            self._finish(rid, t)
        if e.pending:
            for rid in e.pending:
                heapq.heappush(mem, (s0 + self.osl[rid] - 1, rid))
                e.sum_ctx += self.ctx[rid]
                self.dec_start[rid] = t
            e.n += len(e.pending)
            e.pending = []
        e.version += 1
        if e.n:
            e.tau = self.dec_lat.step_s(e.sum_ctx, e.n)
            e.sched_t = t + (mem[0][0] - s0) * e.tau
            self._push(e.sched_t, _DEC_STEP, e, e.version)
        else:
            e.sum_ctx = 0.0
            e.tau = 0.0
            e.sched_t = _INF
            if e.state == DRAINING:
                e.state = GONE
                e.end_t = t

    def _admit(self, e: Decode, rid: int, t: float) -> None:
        e.pending.append(rid)
        e.reserved += self.need[rid]
        self.dec_eng[rid] = e.eid
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
            self._push(tb, _DEC_STEP, e, e.version)

    def _try_admit(self, t: float) -> None:
        dq = self.dq
        cap = self.max_kv
        max_b = self.cfg.max_decode_batch
        while dq:
            rid = dq[0]
            need = self.need[rid]
            best: Decode | None = None
            for e in self.dec_serving:
                if e.reserved + need > cap and (e.n or e.pending):
                    continue
                if max_b is not None and e.n + len(e.pending) >= max_b:
                    continue
                if best is None or (e.reserved, e.rank) < (best.reserved, best.rank):
                    best = e
            if best is None:
                return
            dq.popleft()
            self._admit(best, rid, t)

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
        rank = self.rng.random()
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

    @staticmethod
    def _load(e: Engine) -> tuple[float, ...]:
        if isinstance(e, Prefill):
            return (float(len(e.batch)), -e.order_t, e.rank)
        assert isinstance(e, Decode)
        return (float(e.reserved), float(e.n + len(e.pending)), -e.order_t, e.rank)

    def _scale(self, role: str, target: int, t: float) -> None:
        engines: list[Any] = self.prefills if role == "prefill" else self.decodes
        active = [e for e in engines if e.state in (STARTING, SERVING)]
        target = max(0, int(target))
        for _ in range(target - len(active)):
            self._order(role, t)
        surplus = len(active) - target
        if surplus <= 0:
            return
        starting = sorted((e for e in active if e.state == STARTING), key=lambda e: -e.order_t)
        for e in starting[:surplus]:
            e.state = GONE
            e.end_t = t
        surplus -= min(surplus, len(starting))
        serving = sorted((e for e in active if e.state == SERVING), key=self._load)
        for e in serving[:surplus]:
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
        last_arrival = self.arr[-1] if self.n else 0.0
        heap = self.heap
        arr = self.arr
        n = self.n
        ai = 0
        k = 1
        next_tick = interval
        stuck = 0
        end_t = 0.0
        while self.done < n:
            ta = arr[ai] if ai < n else _INF
            th = heap[0][0] if heap else _INF
            if next_tick <= th and next_tick <= ta:
                if ai >= n and not heap:
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
                t, _, kind, obj, version = heapq.heappop(heap)
                end_t = t
                if kind == _DEC_STEP:
                    if version == obj.version:
                        self._advance(obj, t)
                        self._try_admit(t)
                elif kind == _KV_DONE:
                    self.dq.append(obj)
                    self._try_admit(t)
                elif kind == _PF_DONE:
                    self._prefill_done(obj, t)
                else:
                    self._ready(obj, t)
            else:
                self._arrive(ai, ta)
                end_t = ta
                ai += 1
        if progress is not None:
            progress(1.0)
        if self.done == n and n:
            end_t = max(self.finish_t)
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


def simulate(
    requests: RequestArrays,
    profile: PerformanceProfile,
    sla: SLA,
    config: SimConfig,
    policy: Policy,
    progress: Callable[[float], None] | None = None,
) -> SimResult:
    """Replay ``requests`` through a simulated deployment scaled by ``policy``.

    The model is in this module's docstring. ``progress``, if given, is called with the fraction
    of the trace replayed (0..1) at every interval boundary and with 1.0 at the end.
    """
    if len(requests) == 0:
        raise InputError("no requests to simulate")
    started = time.perf_counter()
    sim = _Sim(requests, profile, config, policy)
    end_t = sim.run(progress)
    result = build_result(
        policy=str(policy.name),
        requests=requests,
        profile=profile,
        sla=sla,
        interval_s=config.interval_s,
        outcome=RequestOutcome(
            first_token_s=np.array(sim.first_t),
            decode_start_s=np.array(sim.dec_start),
            finish_s=np.array(sim.finish_t),
            prefill_engine=np.array(sim.pf_eng, dtype=np.int64),
            decode_engine=np.array(sim.dec_eng, dtype=np.int64),
        ),
        timeline=sim.timeline,
        gpu_hours=sim.gpu_hours(end_t),
        sim_end_s=end_t,
    )
    result.wall_s = time.perf_counter() - started
    return result
