"""What one simulation run returns (:class:`SimResult`) and how its metrics are computed."""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import pairwise
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
    "blind_intervals",
    "decode_step1_s",
    "ordering_decisions",
    "out_of_profile",
    "percentiles",
    "prefill_batch_s",
    "request_latencies",
    "sla_met",
    "unforeseeable",
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
    * ``unforeseeable`` — requests no planner that follows the load can have engines ready for
      (:func:`unforeseeable`): they arrive in intervals whose engines are ordered while the
      interval seen last had no requests. When they exceed the misses an attainment target
      allows, only capacity held through idle intervals meets it.
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
    unforeseeable: int = 0

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
            "unforeseeable": self.unforeseeable,
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


def ordering_decisions(intervals: int, interval_s: float, startup_s: float) -> np.ndarray:
    """Per interval ``j < intervals``, the last decision whose engines serve from its start:
    ``k = floor((j·I - startup_s) / I)``. Decisions come at each boundary ``k·I`` (``k >= 1``)
    and see interval ``k - 1``; engines ordered at ``k·I`` serve from ``k·I + startup_s``.
    ``k < 1``: only the replicas at t = 0, set before any decision."""
    j = np.arange(intervals)
    k: np.ndarray = np.floor((j * interval_s - startup_s) / interval_s + 1e-9).astype(np.int64)
    return k


def blind_intervals(counts: np.ndarray, interval_s: float, startup_s: float) -> np.ndarray:
    """Boolean mask of the intervals whose engines are ordered while the interval seen last had
    no requests. ``counts[j]``: arrivals in interval ``[j·I, (j+1)·I)``. Interval ``j`` is
    blind when its :func:`ordering_decisions` ``k >= 1`` and ``counts[k - 1] == 0``: a planner
    that sizes for the load it sees orders nothing for it (the replicas at t = 0 are not
    counted)."""
    counts = np.asarray(counts, dtype=np.int64)
    seen = ordering_decisions(counts.size, interval_s, startup_s) - 1
    blind: np.ndarray = seen >= 0
    blind[blind] = counts[seen[blind]] == 0
    return blind


def unforeseeable(counts: np.ndarray, interval_s: float, startup_s: float) -> int:
    """Requests arriving in the :func:`blind_intervals` (the ``unforeseeable`` of
    :class:`SimResult`)."""
    counts = np.asarray(counts, dtype=np.int64)
    return int(counts[blind_intervals(counts, interval_s, startup_s)].sum())


def unservable(
    requests: RequestArrays, profile: PerformanceProfile, sla: SLA, config: SimConfig
) -> np.ndarray:
    """Boolean mask of the requests that no deployment size can serve within the SLA: even alone
    on idle engines, their prefill takes longer than the TTFT target, or their decode step at
    batch 1 (mid-life context ``isl + osl/2``) plus their KV transfer spread over ``osl - 1``
    tokens is slower than the ITL target. More replicas cannot help such a request (one request
    runs on one engine); the simulator's own latency models decide (evaluated on arrays:
    :func:`prefill_batch_s`, :func:`decode_step1_s`), so the mask agrees with what a run
    measures on an idle deployment.

    Element by element the mask is exactly

        ``prefill_batch_s(isl)·1000 > ttft_ms``
        or ``osl > 1`` and ``(decode_step1_s(isl + osl/2) + kv_s/(osl - 1))·1000 > itl_ms``

    (``kv_s = kv_transfer_latency_ms/1000 + isl·kv_bytes_per_token·8/(kv_transfer_gbps·1e9)``,
    seconds), but each latency model is evaluated only where a cheap bound cannot decide
    (:func:`_exceeds`): both are non-decreasing in their argument, so a request's latency lies
    between the model's values at the edges of its bin of a small grid (64 bins per octave),
    widened by a slack that covers float rounding and any certified defect of monotonicity
    (:class:`_Bounds`). A request whose upper bound passes the test, or whose lower bound fails
    it, is decided; the others (typically a few percent) get the exact latency, the same
    elementwise arithmetic on the same numbers as on the whole array.
    """
    isl = requests.isl.astype(np.float64)
    osl = requests.osl
    bounds = _Bounds.of(profile)
    slow_prefill = _exceeds(
        lambda t: prefill_batch_s(profile, t),
        isl,
        sla.ttft_ms,
        bounds.prefill_defect_s,
    )
    kv_s = config.kv_transfer_latency_ms / 1000.0 + isl * config.kv_bytes_per_token * 8.0 / (
        config.kv_transfer_gbps * 1e9
    )
    steps = np.maximum(osl - 1, 1).astype(np.float64)
    long = osl > 1
    slow_decode = _exceeds(
        lambda c: decode_step1_s(profile, c),
        isl + osl / 2.0,
        sla.itl_ms,
        bounds.decode_defect_s,
        extra=kv_s / steps,
        candidates=long & ~slow_prefill,
    )
    out: np.ndarray = slow_prefill | (long & slow_decode)
    return out


#: Relative slack (of the largest latency on a chunk's grid) added to the bin bounds of
#: :func:`_exceeds`: far above the rounding of the latency models (a few ulps of the largest
#: term of a PCHIP segment or context blend), far below any difference that matters.
_REL_SLACK = 1e-8

#: Bins per octave of :func:`_bins` (2**_SUB_BITS) and the most bins a chunk gets.
_SUB_BITS = 6
_MAX_BINS = 2048


def _bins(x: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """A grid ``edges`` and each element's bin ``b`` with ``edges[b] <= x <= edges[b+1]``
    exactly; None when ``x`` is empty or not finite.

    Bins come from the bits of ``max(x, 1)``: a positive float64's bit pattern read as an
    int64 increases with its value, so dropping its low ``52 - 6`` bits gives 64 bins per
    octave (coarser when the range would need more than :data:`_MAX_BINS`), with edges that are
    exact floats. The first edge is replaced by ``min(x)`` and the last by ``max(x)`` (every
    element lies between them), so values below 1 and the range's ends are covered.
    """
    if x.size == 0:
        return None
    x_min, x_max = float(x.min()), float(x.max())
    if not (math.isfinite(x_min) and math.isfinite(x_max)):
        return None
    key = np.maximum(x, 1.0).view(np.int64)
    lo_bits = int(np.float64(max(x_min, 1.0)).view(np.int64))
    hi_bits = int(np.float64(max(x_max, 1.0)).view(np.int64))
    shift = 52 - _SUB_BITS
    while (hi_bits >> shift) - (lo_bits >> shift) > _MAX_BINS:
        shift += 1
    k_lo, k_hi = lo_bits >> shift, hi_bits >> shift
    b = (key >> shift) - k_lo
    edges = (np.arange(k_lo, k_hi + 2, dtype=np.int64) << shift).view(np.float64).copy()
    edges[0], edges[-1] = x_min, x_max
    return edges, b


def _exceeds(
    latency_s: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    limit_ms: float,
    defect_s: float | None,
    extra: np.ndarray | None = None,
    candidates: np.ndarray | None = None,
) -> np.ndarray:
    """``(latency_s(x) + extra)·1000 > limit_ms`` elementwise (``extra`` 0 when None), exact
    wherever ``candidates`` (all when None) holds; elsewhere it may be False where the exact
    test is True (the caller masks those elements out).

    ``latency_s`` must be elementwise and, in exact arithmetic, satisfy ``f(x') >= f(x) -
    defect_s`` for every ``x' >= x`` (``defect_s`` None: no such bound, every candidate is
    evaluated). On the grid of :func:`_bins`, an element of bin ``b`` then has
    ``fe[b] - s <= f(x) <= fe[b+1] + s`` for the computed values too, with ``fe`` the computed
    latencies at the edges and ``s = defect_s + 1e-8·max|fe|`` (the models' rounding is a few
    ulps; the tests see no fall at all on dense grids). Rounding to nearest is monotone, so ``((fe[b+1] + s) + extra)·1000 <=
    limit_ms`` implies the exact test is False and ``((fe[b] - s) + extra)·1000 > limit_ms``
    that it is True; only the candidates neither decides are evaluated exactly.
    """
    grid = _bins(x) if defect_s is not None else None
    if grid is None:
        maybe = np.ones(x.shape, dtype=bool) if candidates is None else candidates
        sure = np.zeros(x.shape, dtype=bool)
    else:
        edges, b = grid
        fe = latency_s(edges)
        slack = float(defect_s or 0.0) + _REL_SLACK * float(np.max(np.abs(fe)))
        low, high = (fe - slack)[b], (fe + slack)[b + 1]
        if extra is not None:
            low += extra
            high += extra
        sure = low * 1000.0 > limit_ms
        maybe = (high * 1000.0 > limit_ms) & ~sure
        if candidates is not None:
            maybe &= candidates
    idx = np.flatnonzero(maybe)
    if idx.size:
        exact = latency_s(x[idx])
        if extra is not None:
            exact = exact + extra[idx]
        sure[idx] = exact * 1000.0 > limit_ms
    return sure


@dataclass(frozen=True)
class _Bounds:
    """How far a profile's latency models may fall when their argument grows (seconds; None:
    not known to be monotone), for :func:`_exceeds`; one per profile object (:meth:`of`).

    * ``prefill_defect_s`` — 0 when the prefill TTFT curve's PCHIP is non-decreasing
      (:func:`_pchip_nondecreasing`); :func:`prefill_batch_s` is then non-decreasing: the PCHIP
      clamps to its first value below its first ISL and continues as ``y[-1]·t/hi`` (> 0,
      increasing, equal to ``y[-1]`` at ``hi``) past its last.
    * ``decode_defect_s`` — :func:`decode_step1_s` is ``g(c) = (1-w)·R_j(m) + w·R_{j+1}(m)``
      between rows ``c_j <= c <= c_{j+1}`` (``w`` the context weight, ``R_j`` the envelope of
      rows ``0..j``, each non-decreasing in ``m`` when every row's PCHIP is and its slope past
      the end is >= 0, and ``R_{j+1} >= R_j``), with ``m = min(max(k, L(c)), H(c))``,
      ``k = 1/max_kv_tokens``, ``L(c) = kv_lo(c)/c`` and ``H(c) = kv_hi(c)/c`` (kv bounds
      linear in ``c``, so ``L`` and ``H`` have the form ``A/c + B`` and are monotone between
      their values at the rows). Where ``m`` is non-decreasing on a segment, so is ``g``
      (``dg = (R_{j+1} - R_j)·dw + ((1-w)·R_j' + w·R_{j+1}')·dm >= 0``); elsewhere ``g`` falls
      by at most ``D = max(R_j(m_hi) - R_j(m_lo), R_{j+1}(m_hi) - R_{j+1}(m_lo))`` over the
      segment's range ``[m_lo, m_hi]`` of ``m``. Outside the rows' contexts ``c`` is clamped
      and ``m = clamp(context·k, kv_lo, kv_hi)/c`` grows with the context. ``g`` is
      continuous, so ``g(c') >= g(c) - ΣD`` for ``c' >= c``; ``decode_defect_s = ΣD/1000``.
      The conditions on ``L``, ``H`` and ``k`` are checked in exact rational arithmetic; they
      hold on the shared H200 profile and on the estimator's profiles (``D = 0``: rows measured
      from batch 1, ``kv_lo/c = k``), so there the bound costs nothing.
    """

    prefill_curve: Pchip
    prefill_defect_s: float | None
    decode_defect_s: float | None

    @classmethod
    def of(cls, profile: PerformanceProfile) -> _Bounds:
        """The bounds of ``profile`` (computed once per profile object)."""
        got = _BOUNDS.get(profile)
        if got is None:
            curve = Pchip.fit(profile.prefill.isl, profile.prefill.ttft_ms)
            prefill = 0.0 if _pchip_nondecreasing(curve) else None
            got = _BOUNDS[profile] = cls(curve, prefill, _decode_defect_s(profile))
        return got


_BOUNDS: weakref.WeakKeyDictionary[PerformanceProfile, _Bounds] = weakref.WeakKeyDictionary()


def _pchip_nondecreasing(curve: Pchip) -> bool:
    """Whether ``curve`` is non-decreasing on its knots' range (it is held constant outside):
    on every segment ``y[k+1] >= y[k]`` and both end slopes in ``[0, 3·δ]`` (``δ`` the secant),
    the square that Fritsch & Carlson (1980) show keeps a cubic Hermite segment monotone; checked
    in exact rational arithmetic on the stored floats."""
    x = [Fraction(v) for v in curve.x.tolist()]
    y = [Fraction(v) for v in curve.y.tolist()]
    d = [Fraction(v) for v in curve.d.tolist()]
    for k in range(len(x) - 1):
        dx, dy = x[k + 1] - x[k], y[k + 1] - y[k]
        if dy < 0 or any(s < 0 or s * dx > 3 * dy for s in (d[k], d[k + 1])):
            return False
    return True


def _decode_defect_s(profile: PerformanceProfile) -> float | None:
    """``decode_defect_s`` of :class:`_Bounds` (None when a row's curve is not monotone)."""
    rows = profile.decode.rows
    if not all(_pchip_nondecreasing(r.itl) and r.slope >= 0.0 for r in rows):
        return None
    k = Fraction(1, int(profile.max_kv_tokens))
    defect_ms = 0.0
    for j, (a, b) in enumerate(pairwise(rows)):
        ca, cb = Fraction(a.context), Fraction(b.context)
        l0, l1 = Fraction(a.kv_lo) / ca, Fraction(b.kv_lo) / cb
        h0, h1 = Fraction(a.kv_hi) / ca, Fraction(b.kv_hi) / cb
        x_up = l0 <= l1 or l0 <= k  # max(k, L) non-decreasing on the segment
        if x_up and (h0 <= h1 or h1 >= max(k, l0, l1)):  # min(., H) too
            continue
        m_lo = min(max(k, min(l0, l1)), min(h0, h1))
        m_hi = min(max(k, max(l0, l1)), max(h0, h1))
        m = np.array([float(m_lo), float(m_hi)])
        m = np.array([np.nextafter(m[0], -np.inf), np.nextafter(m[1], np.inf)])
        env = np.maximum.accumulate(
            np.maximum(np.stack([r.own_itl(m) for r in rows[: j + 2]]), 0.0), axis=0
        )
        defect_ms += float(np.max(env[-2:, 1] - env[-2:, 0]))
    return defect_ms / 1000.0


def prefill_batch_s(profile: PerformanceProfile, tokens: np.ndarray) -> np.ndarray:
    """:meth:`PrefillLatency.batch_s <dynamo_plan.sim.latency.PrefillLatency.batch_s>` on an
    array of prompt token counts (seconds): the PCHIP of the prefill TTFT (ms) at ``t``, and
    ``ttft[-1]·t/isl[-1]`` past the last ISL; the PCHIP is fitted once per profile object."""
    curve = _Bounds.of(profile).prefill_curve
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
