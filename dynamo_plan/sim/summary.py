"""Streaming summary of one simulation run: what :class:`~dynamo_plan.sim.result.SimResult`
reports, accumulated as requests arrive and finish, so a run keeps no per-request state for
finished requests.

* **Arrivals** (a chunk at a time, vectorized): requests, requests no size can serve
  (:func:`~dynamo_plan.sim.result.unservable`), requests beyond the profile
  (:func:`~dynamo_plan.sim.result.out_of_profile`), and per arrival interval the count and ISL/OSL
  sums.
* **Completions** (a chunk of requests at a time, vectorized, once all of them have finished —
  or at the end of the run): completed, SLA met (over servable requests), output tokens, the
  TTFT/ITL streams (:class:`~dynamo_plan.sim.quantiles.StreamQuantiles`: exact up to 2**20
  values, then within 0.5 % relative error) and the interval's TTFT values (every request with a
  first token, completed or not, as the per-request table has them), ITL values and SLA-met
  count.
* An interval's row of :attr:`SimResult.interval_stats` is computed (exact numpy percentiles of
  its own values) and its values dropped once every request that arrived in it has finished and
  arrivals have moved past it; the rest at the end. Memory: the intervals with requests still in
  flight.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from dynamo_plan.core.sla import SLA
from dynamo_plan.sim.quantiles import DEFAULT_EXACT_LIMIT, StreamQuantiles

__all__ = ["IntervalAcc", "RunSummary"]

_QS = (50, 90, 99)


class IntervalAcc:
    """One arrival interval still open: requests arrived / finished / met, ISL and OSL sums, the
    TTFT (ms, at first token) and ITL (ms, at completion) values of its requests."""

    __slots__ = ("done", "isl", "itl", "met", "n", "osl", "ttft")

    def __init__(self) -> None:
        self.n = 0
        self.done = 0
        self.met = 0
        self.isl = 0.0
        self.osl = 0.0
        self.ttft: list[float] = []
        self.itl: list[float] = []


def _pcts(values: list[float]) -> list[float]:
    if not values:
        return [math.nan] * len(_QS)
    return [float(x) for x in np.percentile(np.asarray(values, dtype=np.float64), _QS)]


class RunSummary:
    """Accumulators of one run (module docstring). The engine calls :meth:`arrivals` per chunk
    of requests it pulls, :meth:`arrivals_reached` as arrivals move on, :meth:`completions` per
    chunk whose requests have all finished (and for the rest at the end), then
    :meth:`finalize`."""

    def __init__(self, sla: SLA, interval_s: float, exact_limit: int = DEFAULT_EXACT_LIMIT):
        self.sla_ttft_ms = float(sla.ttft_ms)
        self.sla_itl_ms = float(sla.itl_ms)
        self.interval_s = float(interval_s)
        self.requests = 0
        self.unservable = 0
        self.out_of_profile = 0
        self.completed = 0
        self.met_servable = 0
        self.output_tokens = 0
        self.max_arrival = -math.inf
        self.ttft = StreamQuantiles(exact_limit=exact_limit)
        self.itl = StreamQuantiles(exact_limit=exact_limit)
        self.open: dict[int, IntervalAcc] = {}
        self.arrived_k = -1  # intervals below this have had all their arrivals
        self.rows: dict[int, tuple[Any, ...]] = {}

    # --- arrivals ----------------------------------------------------------------------------

    def arrivals(
        self,
        arrival_s: np.ndarray,
        isl: np.ndarray,
        osl: np.ndarray,
        cannot: np.ndarray,
        beyond: np.ndarray,
    ) -> np.ndarray:
        """Count a chunk of requests (arrays of one chunk, ascending arrivals); returns each
        request's arrival interval index."""
        n = int(arrival_s.size)
        k = np.floor(arrival_s / self.interval_s).astype(np.int64)
        if n == 0:
            return k
        self.requests += n
        self.unservable += int(cannot.sum())
        self.out_of_profile += int(beyond.sum())
        self.max_arrival = max(self.max_arrival, float(arrival_s[-1]))
        keys, start, counts = np.unique(k, return_index=True, return_counts=True)
        isl_sums = np.add.reduceat(isl.astype(np.float64), start)
        osl_sums = np.add.reduceat(osl.astype(np.float64), start)
        for key, c, si, so in zip(
            keys.tolist(), counts.tolist(), isl_sums.tolist(), osl_sums.tolist(), strict=True
        ):
            acc = self.open.get(key)
            if acc is None:
                acc = self.open[key] = IntervalAcc()
            acc.n += c
            acc.isl += si
            acc.osl += so
        return k

    def arrivals_reached(self, k: int) -> None:
        """Arrivals have reached interval ``k``: intervals before it are complete in count;
        close those whose requests have all finished."""
        if k <= self.arrived_k:
            return
        self.arrived_k = k
        for key in [key for key, acc in self.open.items() if key < k and acc.done == acc.n]:
            self.close(key)

    # --- completions -------------------------------------------------------------------------

    def completions(
        self,
        k: np.ndarray,
        arrival_s: np.ndarray,
        osl: np.ndarray,
        first_s: np.ndarray,
        finish_s: np.ndarray,
        cannot: np.ndarray,
    ) -> None:
        """Count a chunk of requests once they have all finished, or at the end of the run:
        arrival intervals ``k`` (ascending, from :meth:`arrivals`), arrivals, output tokens, first
        token and finish times (s; NaN: not reached) and the :func:`unservable` flags.

        Per request, as a frontend measures it: ``TTFT = (first - arrival)·1000`` ms (counted in
        its interval as soon as it has a first token), ``ITL = (finish - first)·1000 / (osl - 1)``
        ms (``osl > 1``), SLA met when finished with ``TTFT <= sla.ttft_ms`` and (``osl <= 1`` or
        ``ITL <= sla.itl_ms``). The same float operations as one request at a time, so the same
        values; the percentile streams and interval rows do not depend on the order values come
        in."""
        n = int(k.size)
        if n == 0:
            return
        done = np.isfinite(finish_s)
        has_first = np.isfinite(first_s)
        dec = osl > 1
        ttft = (first_s - arrival_s) * 1000.0
        with np.errstate(divide="ignore", invalid="ignore"):
            itl = (finish_s - first_s) * 1000.0 / (osl - 1)
        itl_in = done & dec
        met = done & (ttft <= self.sla_ttft_ms) & (~dec | (itl <= self.sla_itl_ms))
        self.completed += int(done.sum())
        self.output_tokens += int(osl[done].sum())
        self.met_servable += int((met & ~cannot).sum())
        self.ttft.add(ttft[done])
        self.itl.add(itl[itl_in])
        keys, start = np.unique(k, return_index=True)
        bounds = [*start.tolist(), n]
        for i, key in enumerate(keys.tolist()):
            a, b = bounds[i], bounds[i + 1]
            acc = self.open[key]
            acc.ttft.extend(ttft[a:b][has_first[a:b]].tolist())
            acc.itl.extend(itl[a:b][itl_in[a:b]].tolist())
            acc.done += int(done[a:b].sum())
            acc.met += int(met[a:b].sum())
            if acc.done == acc.n and key < self.arrived_k:
                self.close(key)

    def close(self, key: int) -> None:
        """Compute interval ``key``'s row and drop its values."""
        acc = self.open.pop(key)
        self.rows[key] = (
            acc.n,
            acc.isl / acc.n if acc.n else math.nan,
            acc.osl / acc.n if acc.n else math.nan,
            *_pcts(acc.ttft),
            *_pcts(acc.itl),
            acc.met / acc.n if acc.n else math.nan,
        )

    # --- results -----------------------------------------------------------------------------

    def finalize(self) -> None:
        """Close every interval still open (requests that never finished count as not met)."""
        for key in sorted(self.open):
            self.close(key)

    def attainment(self) -> float:
        servable = self.requests - self.unservable
        return self.met_servable / servable if servable > 0 else math.nan

    def percentiles(self, which: str) -> dict[str, float]:
        stream = self.ttft if which == "ttft" else self.itl
        return {f"p{q}": v for q, v in zip(_QS, stream.percentiles(_QS), strict=True)}

    def interval_table(self, timeline: list[dict[str, Any]]) -> pd.DataFrame:
        """The :attr:`SimResult.interval_stats` frame (call after :meth:`finalize`)."""
        n_req = math.floor(self.max_arrival / self.interval_s) + 1 if self.requests > 0 else 1
        n_tl = len(timeline)
        n = max(n_req, n_tl)
        empty = (0, *([math.nan] * (2 + 2 * len(_QS) + 1)))
        rows = [self.rows.get(k, empty) for k in range(n)]
        cols = [
            "requests",
            "isl",
            "osl",
            *[f"ttft_p{q}" for q in _QS],
            *[f"itl_p{q}" for q in _QS],
            "sla_attainment",
        ]
        body = pd.DataFrame(rows, columns=cols)
        out = pd.DataFrame({"t_s": np.arange(n, dtype=np.float64) * self.interval_s})
        for col in cols:
            out[col] = body[col].to_numpy()
        out["requests"] = out["requests"].astype(np.int64)
        tl = pd.DataFrame(timeline)
        for col in ("prefill", "decode", "ready_prefill", "ready_decode"):
            values = tl[col].to_numpy()
            out[col] = values[np.minimum(np.arange(n), n_tl - 1)]
        return out
