"""What one simulation run returns (:class:`SimResult`) and how its metrics are computed."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.sla import SLA
from dynamo_plan.sim.requests import RequestArrays

__all__ = [
    "PERCENTILES",
    "RequestOutcome",
    "SimResult",
    "build_result",
    "interval_stats",
    "out_of_profile",
    "percentiles",
]

#: Percentiles reported for TTFT and ITL (numpy's default, linear interpolation).
PERCENTILES = (50, 90, 99)


def percentiles(values: np.ndarray) -> dict[str, float]:
    """``{"p50", "p90", "p99"}`` of the finite ``values``; NaN for each when there are none."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return {f"p{q}": math.nan for q in PERCENTILES}
    return {
        f"p{q}": float(x) for q, x in zip(PERCENTILES, np.percentile(v, PERCENTILES), strict=True)
    }


def _plain(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


@dataclass
class SimResult:
    """One policy replayed over one request set.

    * ``requests`` / ``completed`` — requests in the input / that produced their last token.
    * ``sla_attainment`` — fraction of *all* requests with TTFT ≤ SLA and mean ITL ≤ SLA (a
      request with ``osl <= 1`` meets ITL; one that never completed meets nothing).
    * ``ttft_ms`` / ``itl_ms`` — p50/p90/p99 over completed requests (ITL: those with ``osl > 1``;
      ITL of a request = ``(finish - first token) / (osl - 1)``).
    * ``gpu_hours`` — ∫ (prefill engines · prefill_gpus + decode engines · decode_gpus) dt / 3600
      from t = 0 to the last completion, an engine counted from its order to its retirement
      (drained, cancelled while starting, or the end).
    * ``replica_timeline`` — one entry at t = 0 and one per interval boundary: the replicas the
      policy asked for (``prefill``, ``decode``), those serving right after the decision
      (``ready_prefill``, ``ready_decode``; starting and draining ones excluded) and its reason.
    * ``out_of_profile_requests`` — requests beyond the profile's range (ISL above the prefill
      curve, mid-life context ``isl + osl/2`` above the decode surface, or ``isl + osl`` above
      ``max_kv_tokens``); served with clamped lookups.
    * ``per_request`` — one row per request: ``arrival_s, isl, osl, first_token_s, ttft_ms,
      decode_start_s, itl_ms, finish_s, prefill_engine, decode_engine, sla_met`` (NaN / -1 where
      it does not apply or never happened).
    * ``interval_stats`` — one row per interval ``[t_s, t_s + interval_s)``, requests grouped by
      arrival: ``t_s, requests, isl, osl, ttft_p50/p90/p99, itl_p50/p90/p99, sla_attainment``, and
      the replicas asked for (``prefill``, ``decode``) and serving (``ready_prefill``,
      ``ready_decode``) at the interval's start.
    * ``sim_end_s`` — simulated seconds from t = 0 to the last completion; ``wall_s`` — seconds
      the run took.
    """

    policy: str
    requests: int
    completed: int
    sla_attainment: float
    ttft_ms: dict[str, float]
    itl_ms: dict[str, float]
    gpu_hours: float
    replica_timeline: list[dict[str, Any]]
    out_of_profile_requests: int
    wall_s: float
    per_request: pd.DataFrame = field(repr=False)
    interval_stats: pd.DataFrame = field(repr=False)
    sim_end_s: float = 0.0
    output_tokens: int = 0

    def to_json(self) -> dict[str, Any]:
        """The ``simulate -o json`` document (non-finite numbers become null)."""
        return {
            "policy": self.policy,
            "requests": self.requests,
            "completed": self.completed,
            "sla_attainment": _plain(self.sla_attainment),
            "ttft_ms": {k: _plain(v) for k, v in self.ttft_ms.items()},
            "itl_ms": {k: _plain(v) for k, v in self.itl_ms.items()},
            "gpu_hours": _plain(self.gpu_hours),
            "replica_timeline": [
                {"t_s": e["t_s"], "prefill": e["prefill"], "decode": e["decode"]}
                for e in self.replica_timeline
            ],
            "out_of_profile_requests": self.out_of_profile_requests,
            "wall_s": _plain(self.wall_s),
        }


def interval_stats(
    per_request: pd.DataFrame, timeline: list[dict[str, Any]], interval_s: float
) -> pd.DataFrame:
    """Per-interval table for plots (see :class:`SimResult`); requests grouped by arrival."""
    n_req = (
        int(np.floor(per_request["arrival_s"].max() / interval_s)) + 1 if len(per_request) else 1
    )
    n_tl = len(timeline)
    n = max(n_req, n_tl)
    idx = np.floor(per_request["arrival_s"].to_numpy() / interval_s).astype(np.int64)
    frame = per_request.assign(_k=idx)
    grouped = frame.groupby("_k")
    out = pd.DataFrame(index=pd.RangeIndex(n, name="k"))
    out["t_s"] = np.arange(n, dtype=np.float64) * interval_s
    out["requests"] = grouped.size().reindex(out.index, fill_value=0).astype(np.int64)
    out["isl"] = grouped["isl"].mean().reindex(out.index)
    out["osl"] = grouped["osl"].mean().reindex(out.index)
    for col, name in (("ttft_ms", "ttft"), ("itl_ms", "itl")):
        for q in PERCENTILES:
            out[f"{name}_p{q}"] = grouped[col].quantile(q / 100.0).reindex(out.index)
    out["sla_attainment"] = grouped["sla_met"].mean().reindex(out.index)
    # the decision in force during interval k is the one taken at its start (timeline entry k)
    tl = pd.DataFrame(timeline)
    for col in ("prefill", "decode", "ready_prefill", "ready_decode"):
        values = tl[col].to_numpy()
        out[col] = values[np.minimum(np.arange(n), n_tl - 1)]
    return out.reset_index(drop=True)


def out_of_profile(requests: RequestArrays, profile: PerformanceProfile) -> np.ndarray:
    """Boolean mask of requests beyond the profile's range (see :class:`SimResult`)."""
    isl = requests.isl.astype(np.float64)
    osl = requests.osl.astype(np.float64)
    mask: np.ndarray = (
        (isl > float(profile.prefill.isl[-1]))
        | (isl + osl / 2.0 > float(profile.decode.contexts[-1]))
        | (isl + osl > float(profile.max_kv_tokens))
    )
    return mask


@dataclass(frozen=True, eq=False)
class RequestOutcome:
    """What happened to each request (seconds; NaN / -1 where it never happened)."""

    first_token_s: np.ndarray
    decode_start_s: np.ndarray
    finish_s: np.ndarray
    prefill_engine: np.ndarray
    decode_engine: np.ndarray


def build_result(
    *,
    policy: str,
    requests: RequestArrays,
    profile: PerformanceProfile,
    sla: SLA,
    interval_s: float,
    outcome: RequestOutcome,
    timeline: list[dict[str, Any]],
    gpu_hours: float,
    sim_end_s: float,
) -> SimResult:
    """Per-request table, SLA attainment, percentiles and interval statistics of one run
    (``wall_s`` left at 0 for the caller to fill in)."""
    first, finish = outcome.first_token_s, outcome.finish_s
    arrival, osl = requests.arrival_s, requests.osl
    ttft_ms = (first - arrival) * 1000.0
    with np.errstate(invalid="ignore", divide="ignore"):
        itl_ms = np.where(osl > 1, (finish - first) * 1000.0 / np.maximum(osl - 1, 1), np.nan)
    completed = np.isfinite(finish)
    itl_ok = (osl <= 1) | (itl_ms <= sla.itl_ms)
    met = completed & (ttft_ms <= sla.ttft_ms) & itl_ok
    per_request = pd.DataFrame(
        {
            "arrival_s": arrival,
            "isl": requests.isl,
            "osl": osl,
            "first_token_s": first,
            "ttft_ms": ttft_ms,
            "decode_start_s": outcome.decode_start_s,
            "itl_ms": itl_ms,
            "finish_s": finish,
            "prefill_engine": outcome.prefill_engine,
            "decode_engine": outcome.decode_engine,
            "sla_met": met,
        }
    )
    return SimResult(
        policy=policy,
        requests=len(requests),
        completed=int(completed.sum()),
        sla_attainment=float(met.mean()),
        ttft_ms=percentiles(ttft_ms[completed]),
        itl_ms=percentiles(itl_ms[completed]),
        gpu_hours=gpu_hours,
        replica_timeline=timeline,
        out_of_profile_requests=int(out_of_profile(requests, profile).sum()),
        wall_s=0.0,
        per_request=per_request,
        interval_stats=interval_stats(per_request, timeline, interval_s),
        sim_end_s=sim_end_s,
        output_tokens=int(np.where(completed, osl, 0).sum()),
    )
