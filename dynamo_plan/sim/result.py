"""What one simulation run returns (:class:`SimResult`) and how its metrics are computed."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.profile_interp import Pchip
from dynamo_plan.core.sla import SLA
from dynamo_plan.sim.config import SimConfig
from dynamo_plan.sim.requests import RequestArrays

__all__ = [
    "PERCENTILES",
    "PER_REQUEST_COLUMNS",
    "RequestOutcome",
    "SimResult",
    "attainment",
    "decode_step1_s",
    "out_of_profile",
    "percentiles",
    "prefill_batch_s",
    "request_latencies",
    "sla_met",
    "unservable",
]

#: Percentiles reported for TTFT and ITL (numpy's default, linear interpolation).
PERCENTILES = (50, 90, 99)

#: Columns of :attr:`SimResult.per_request` (and of ``simulate --requests-csv``, after
#: ``request`` and ``policy``).
PER_REQUEST_COLUMNS = (
    "arrival_s",
    "isl",
    "osl",
    "first_token_s",
    "ttft_ms",
    "decode_start_s",
    "itl_ms",
    "finish_s",
    "prefill_engine",
    "decode_engine",
    "sla_met",
)


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
    * ``sla_attainment`` — fraction of the *servable* requests with TTFT ≤ SLA and mean ITL ≤ SLA
      (a request with ``osl <= 1`` meets ITL; one that never completed meets nothing); a request
      no deployment size can serve within the SLA (:func:`unservable`) is left out and counted
      in ``unservable``.
    * ``ttft_ms`` / ``itl_ms`` — p50/p90/p99 over completed requests (ITL: those with ``osl > 1``;
      ITL of a request = ``(finish - first token) / (osl - 1)``); numpy's percentiles exactly up
      to 2**20 completed requests (and always with ``per_request``), beyond that from a
      log-spaced histogram within 0.5 % relative error (:mod:`dynamo_plan.sim.quantiles`).
    * ``gpu_hours`` — ∫ (prefill engines · prefill_gpus + decode engines · decode_gpus) dt / 3600
      from t = 0 to the last completion, an engine counted from its order to its retirement
      (drained, cancelled while starting, or the end).
    * ``replica_timeline`` — one entry at t = 0 and one per interval boundary: the replicas the
      policy asked for (``prefill``, ``decode``), those serving right after the decision
      (``ready_prefill``, ``ready_decode``; starting and draining ones excluded) and its reason.
    * ``out_of_profile_requests`` — requests beyond the profile's range (ISL above the prefill
      curve, mid-life context ``isl + osl/2`` above the decode surface, or ``isl + osl`` above
      ``max_kv_tokens``); served with clamped lookups.
    * ``per_request`` — only when asked (``simulate(..., per_request=True)``; None otherwise):
      one row per request, :data:`PER_REQUEST_COLUMNS` (NaN / -1 where it does not apply or
      never happened).
    * ``interval_stats`` — one row per interval ``[t_s, t_s + interval_s)``, requests grouped by
      arrival: ``t_s, requests, isl, osl, ttft_p50/p90/p99, itl_p50/p90/p99, sla_attainment``
      (exact percentiles of the interval's requests; TTFT of every request that got its first
      token, ITL of the completed ones; attainment over all its requests), and
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
    per_request: pd.DataFrame | None = field(repr=False)
    interval_stats: pd.DataFrame = field(repr=False)
    sim_end_s: float = 0.0
    output_tokens: int = 0
    unservable: int = 0

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
            "unservable": self.unservable,
            "wall_s": _plain(self.wall_s),
        }


def request_latencies(
    requests: RequestArrays, outcome: RequestOutcome
) -> tuple[np.ndarray, np.ndarray]:
    """Each request's TTFT and mean ITL (ms): ``first - arrival`` and ``(finish - first) /
    (osl - 1)`` (NaN where it never happened or ``osl <= 1``)."""
    first, osl = outcome.first_token_s, requests.osl
    ttft_ms: np.ndarray = (first - requests.arrival_s) * 1000.0
    with np.errstate(invalid="ignore", divide="ignore"):
        itl_ms: np.ndarray = np.where(
            osl > 1, (outcome.finish_s - first) * 1000.0 / np.maximum(osl - 1, 1), np.nan
        )
    return ttft_ms, itl_ms


def sla_met(requests: RequestArrays, outcome: RequestOutcome, sla: SLA) -> np.ndarray:
    """Boolean mask: completed, TTFT ≤ target and (``osl <= 1`` or mean ITL ≤ target)."""
    ttft_ms, itl_ms = request_latencies(requests, outcome)
    itl_ok = (requests.osl <= 1) | (itl_ms <= sla.itl_ms)
    met: np.ndarray = np.isfinite(outcome.finish_s) & (ttft_ms <= sla.ttft_ms) & itl_ok
    return met


def unservable(
    requests: RequestArrays, profile: PerformanceProfile, sla: SLA, config: SimConfig
) -> np.ndarray:
    """Boolean mask of the requests that no deployment size can serve within the SLA: even alone
    on idle engines, their prefill takes longer than the TTFT target, or their decode step at
    batch 1 (mid-life context ``isl + osl/2``) plus their KV transfer spread over ``osl - 1``
    tokens is slower than the ITL target. More replicas cannot help such a request (one request
    runs on one engine); the simulator's own latency models decide (evaluated on arrays:
    :func:`prefill_batch_s`, :func:`decode_step1_s`), so the mask agrees with what a run
    measures on an idle deployment."""
    isl = requests.isl.astype(np.float64)
    osl = requests.osl
    slow_prefill = prefill_batch_s(profile, isl) * 1000.0 > sla.ttft_ms
    kv_s = config.kv_transfer_latency_ms / 1000.0 + isl * config.kv_bytes_per_token * 8.0 / (
        config.kv_transfer_gbps * 1e9
    )
    steps = np.maximum(osl - 1, 1).astype(np.float64)
    itl_s = decode_step1_s(profile, isl + osl / 2.0) + kv_s / steps
    out: np.ndarray = slow_prefill | ((osl > 1) & (itl_s * 1000.0 > sla.itl_ms))
    return out


def prefill_batch_s(profile: PerformanceProfile, tokens: np.ndarray) -> np.ndarray:
    """:meth:`PrefillLatency.batch_s <dynamo_plan.sim.latency.PrefillLatency.batch_s>` on an
    array of prompt token counts (seconds)."""
    curve = Pchip.fit(profile.prefill.isl, profile.prefill.ttft_ms)
    t = np.asarray(tokens, dtype=np.float64)
    hi = curve.hi
    out: np.ndarray = np.where(t > hi, curve.y[-1] * (t / hi) / 1000.0, curve(t) / 1000.0)
    return out


def decode_step1_s(profile: PerformanceProfile, context: np.ndarray) -> np.ndarray:
    """:meth:`DecodeLatency.step_s <dynamo_plan.sim.latency.DecodeLatency.step_s>` of a batch of
    one request of mid-life ``context`` tokens, on an array of contexts (seconds): the ITL
    surface at ``kv = context / max_kv_tokens``, rows blended linearly in context."""
    rows = profile.decode.rows
    ctxs = np.array([r.context for r in rows], dtype=np.float64)
    n_rows = len(rows)
    ctx_in = np.asarray(context, dtype=np.float64)
    kv_usage = ctx_in / float(profile.max_kv_tokens)
    c = np.minimum(np.maximum(ctx_in, ctxs[0]), ctxs[-1])
    j = np.searchsorted(ctxs, c, side="right") - 1
    j_top = np.minimum(j, n_rows - 1)
    exact = (j >= n_rows - 1) | (ctxs[j_top] == c)
    j_lo = np.where(exact, j_top, np.minimum(j, n_rows - 2))
    j_hi = np.where(exact, j_top, j_lo + 1)
    kv_lo = np.array([r.kv_lo for r in rows])
    kv_hi = np.array([r.kv_hi for r in rows])
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(exact, 0.0, (c - ctxs[j_lo]) / (ctxs[j_hi] - ctxs[j_lo]))
    lo = np.where(exact, kv_lo[j_top], (1.0 - w) * kv_lo[j_lo] + w * kv_lo[j_hi])
    hi = np.where(exact, kv_hi[j_top], (1.0 - w) * kv_hi[j_lo] + w * kv_hi[j_hi])
    kv = np.minimum(np.maximum(kv_usage, lo), hi)
    ctx = np.where(exact, ctxs[j_top], (1.0 - w) * ctxs[j_lo] + w * ctxs[j_hi])
    m = kv / ctx
    own = np.maximum.accumulate(
        np.maximum(np.stack([r.own_itl(m) for r in rows]), 0.0), axis=0
    )  # envelope R_j(m) of rows 0..j
    cols = np.arange(m.size)
    env_lo, env_hi = own[j_lo, cols], own[j_hi, cols]
    itl = np.where(exact, env_lo, (1.0 - w) * env_lo + w * env_hi)
    out: np.ndarray = itl / 1000.0
    return out


def attainment(met: np.ndarray, cannot: np.ndarray | None) -> float:
    """Fraction of the servable requests (all, without a ``cannot`` mask) that met the SLA."""
    if cannot is None:
        return float(met.mean()) if met.size else math.nan
    servable = ~cannot
    return float(met[servable].mean()) if servable.any() else math.nan


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
