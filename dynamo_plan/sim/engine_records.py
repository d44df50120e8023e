"""The discrete-event engine's request records (:mod:`dynamo_plan.sim.engine`) and the per-request
outputs built from them.

A request in flight is a list, cheaper to build and read than an object, indexed by the
constants below; requests are summarised a chunk at a time (:class:`Chunk`). The per-request
table has :data:`~dynamo_plan.sim.result.PER_REQUEST_COLUMNS`.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd

from dynamo_plan.core.sla import SLA
from dynamo_plan.sim.requests import RequestArrays
from dynamo_plan.sim.result import PER_REQUEST_COLUMNS, RequestOutcome, request_latencies, sla_met

__all__ = [
    "ARR", "CHUNK", "CTX", "DEC", "DEC_ENG", "FIN", "FIRST", "GET_ISL", "GET_RID", "ISL", "KV",
    "NEED", "OSL", "PF_ENG", "RID", "Chunk", "Req", "columns", "per_request_frame", "rows_frame",
]  # fmt: skip

# A request in flight, indexed by:
#: request id (= arrival order), arrival (s), prompt and output tokens,
RID, ARR, ISL, OSL = 0, 1, 2, 3
#: KV tokens it reserves (``kv_need``), mid-life context (``decode_context``), KV transfer (s),
NEED, CTX, KV = 4, 5, 6
#: first token, decode start and finish times (s; NaN: not yet),
FIRST, DEC, FIN = 7, 8, 9
#: prefill and decode engine ids (-1: none yet), its chunk's :class:`Chunk` (None: no summary).
PF_ENG, DEC_ENG, CHUNK = 10, 11, 12
Req = list[Any]

GET_ISL: Callable[[Req], int] = itemgetter(ISL)
GET_RID = itemgetter(RID)


class Chunk:
    """A chunk of requests summarised once all of them have finished: the requests, how many are
    still unfinished, and the chunk's inputs and arrival intervals as arrays."""

    __slots__ = ("arr", "cannot", "k", "left", "osl", "reqs", "rid0")

    def __init__(
        self, arr: np.ndarray, osl: np.ndarray, k: np.ndarray, cannot: np.ndarray, rid0: int
    ) -> None:
        self.rid0 = rid0  # the id of its first request
        self.reqs: list[Req] | None = None
        self.left = 0
        self.arr = arr
        self.osl = osl
        self.k = k
        self.cannot = cannot


def columns(reqs: list[Req]) -> tuple[RequestArrays, RequestOutcome]:
    """Inputs and outcome of ``reqs``, in their order."""
    n = len(reqs)

    def col(i: int, dtype: type) -> np.ndarray:
        return np.fromiter(map(itemgetter(i), reqs), dtype=dtype, count=n)

    requests = RequestArrays(col(ARR, float), col(ISL, int), col(OSL, int))
    return requests, RequestOutcome(
        first_token_s=col(FIRST, float),
        decode_start_s=col(DEC, float),
        finish_s=col(FIN, float),
        prefill_engine=col(PF_ENG, np.int64),
        decode_engine=col(DEC_ENG, np.int64),
    )


def rows_frame(reqs: list[Req], sla: SLA) -> pd.DataFrame:
    """Per-request rows (``request`` + :data:`PER_REQUEST_COLUMNS`) of ``reqs``, by request id
    (= arrival order)."""
    reqs = sorted(reqs, key=GET_RID)
    requests, outcome = columns(reqs)
    frame = per_request_frame(requests, outcome, sla)
    frame.insert(0, "request", np.fromiter(map(GET_RID, reqs), dtype=np.int64, count=len(reqs)))
    return frame


def per_request_frame(requests: RequestArrays, outcome: RequestOutcome, sla: SLA) -> pd.DataFrame:
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
