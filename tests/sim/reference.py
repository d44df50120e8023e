"""A naive reference of the simulator, the oracle of the contract tests: fixed replicas, every
decode step an event.

Same model as :mod:`dynamo_plan.sim.cluster_model` (read its docstring), written the slow,
obvious way and independently of it (it imports none of its rules), for checking the fast engine
(:mod:`dynamo_plan.sim.engine`) and the mock cluster (:mod:`dynamo_plan.sim.mocker.cluster`) on
small cases: each decode step is simulated one by one, its
duration recomputed from the batch with the profile's own lookups
(:meth:`~dynamo_plan.core.profile.DecodeSurface.itl`,
:meth:`~dynamo_plan.core.profile.PerformanceProfile.expected_ttft`), not the fast scalar copies.
Cost is O(total output tokens); use it on a few hundred requests.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import deque

import numpy as np
import pandas as pd

from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.sim.config import SimConfig
from dynamo_plan.sim.requests import RequestArrays

__all__ = ["reference_simulate"]


def _prefill_s(profile: PerformanceProfile, tokens: int) -> float:
    hi = float(profile.prefill.isl[-1])
    if tokens > hi:
        return profile.expected_ttft(hi).value * tokens / hi / 1000.0
    return profile.expected_ttft(tokens).value / 1000.0


def reference_simulate(
    requests: RequestArrays,
    profile: PerformanceProfile,
    config: SimConfig,
    prefill: int,
    decode: int,
) -> pd.DataFrame:
    """Per-request ``first_token_s, finish_s, ttft_ms, itl_ms, prefill_engine, decode_engine``
    with ``prefill``/``decode`` engines serving from t = 0 (ranks drawn as the engine draws
    them: prefill engines first, then decode)."""
    n = len(requests)
    arr = requests.arrival_s.tolist()
    isl = requests.isl.tolist()
    osl = requests.osl.tolist()
    rng = random.Random(config.seed)
    p_rank = [rng.random() for _ in range(prefill)]
    d_rank = [rng.random() for _ in range(decode)]
    max_kv = int(profile.max_kv_tokens)
    first = [math.nan] * n
    finish = [math.nan] * n
    pf_eng = [-1] * n
    dec_eng = [-1] * n
    # decode engine state
    remaining: list[dict[int, int]] = [{} for _ in range(decode)]
    pending: list[list[int]] = [[] for _ in range(decode)]
    reserved = [0] * decode
    stepping = [False] * decode
    pf_busy = [False] * prefill
    pf_batch: list[list[int]] = [[] for _ in range(prefill)]
    queue: deque[int] = deque()
    admit_q: deque[int] = deque()
    heap: list[tuple[float, int, str, int]] = []
    seq = itertools.count()
    for rid, t in enumerate(arr):
        heapq.heappush(heap, (t, next(seq), "arrive", rid))

    def start_prefill(e: int, t: float) -> None:
        batch = [queue.popleft()]
        tokens = isl[batch[0]]
        while queue and tokens + isl[queue[0]] <= config.prefill_token_budget:
            batch.append(queue.popleft())
            tokens += isl[batch[-1]]
        pf_batch[e] = batch
        pf_busy[e] = True
        for rid in batch:
            pf_eng[rid] = e
        heapq.heappush(heap, (t + _prefill_s(profile, tokens), next(seq), "prefill", e))

    def start_step(e: int, t: float) -> None:
        for rid in pending[e]:
            remaining[e][rid] = osl[rid] - 1
        pending[e] = []
        if not remaining[e]:
            stepping[e] = False
            return
        ctx = [isl[r] + osl[r] / 2.0 for r in remaining[e]]
        itl = profile.decode.itl(sum(ctx) / max_kv, sum(ctx) / len(ctx)).value
        stepping[e] = True
        heapq.heappush(heap, (t + itl / 1000.0, next(seq), "step", e))

    def try_admit(t: float) -> None:
        while admit_q:
            rid = admit_q[0]
            need = isl[rid] + osl[rid]
            fits = [
                e
                for e in range(decode)
                if (reserved[e] + need <= max_kv or not (remaining[e] or pending[e]))
                and (
                    config.max_decode_batch is None
                    or len(remaining[e]) + len(pending[e]) < config.max_decode_batch
                )
            ]
            if not fits:
                return
            e = min(fits, key=lambda i: (reserved[i], d_rank[i]))
            admit_q.popleft()
            reserved[e] += need
            dec_eng[rid] = e
            pending[e].append(rid)
            if not stepping[e]:
                start_step(e, t)

    while heap:
        t, _, kind, x = heapq.heappop(heap)
        if kind == "arrive":
            queue.append(x)
            idle = [e for e in range(prefill) if not pf_busy[e]]
            if idle:
                start_prefill(min(idle, key=lambda i: p_rank[i]), t)
        elif kind == "prefill":
            for rid in pf_batch[x]:
                first[rid] = t
                if osl[rid] <= 1:
                    finish[rid] = t
                else:
                    heapq.heappush(heap, (t + config.kv_transfer_s(isl[rid]), next(seq), "kv", rid))
            pf_busy[x] = False
            if queue:
                start_prefill(x, t)
        elif kind == "kv":
            admit_q.append(x)
            try_admit(t)
        else:  # one decode step of engine x ends: one token for every member
            done = []
            for rid in remaining[x]:
                remaining[x][rid] -= 1
                if remaining[x][rid] == 0:
                    done.append(rid)
            for rid in done:
                del remaining[x][rid]
                reserved[x] -= isl[rid] + osl[rid]
                finish[rid] = t
            try_admit(t)  # freed KV: requests admitted here join the step that starts now
            start_step(x, t)

    first_a = np.array(first)
    finish_a = np.array(finish)
    o = requests.osl
    with np.errstate(invalid="ignore", divide="ignore"):
        itl_ms = np.where(o > 1, (finish_a - first_a) * 1000.0 / np.maximum(o - 1, 1), np.nan)
    return pd.DataFrame(
        {
            "first_token_s": first_a,
            "finish_s": finish_a,
            "ttft_ms": (first_a - requests.arrival_s) * 1000.0,
            "itl_ms": itl_ms,
            "prefill_engine": pf_eng,
            "decode_engine": dec_eng,
        }
    )
