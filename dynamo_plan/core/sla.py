"""SLA sizing: prefill and decode replicas from load, profile, SLA and GPUs per engine.

Per interval of ``I`` seconds with ``n`` requests of mean input ``isl`` and output ``osl`` tokens
(DESIGN.md §4, Dynamo's throughput planner with its known defects fixed):

* prefill work, in engines: ``a = n·isl/I · p_cf / (thpt_prefill(isl) · gpus_per_prefill)``
  (Erlangs: engine-seconds of prefill per second). The classic planner orders ``P = ceil(a)``.
  Here (``prefill_queueing=True``, the default) ``P`` is the smallest engine count ``>= ceil(a)``
  whose expected TTFT *including queueing* meets the target: the prefill pool is a FIFO queue
  shared by ``P`` engines with (nearly) deterministic service ``S = ttft(isl) · p_cf`` — an M/D/c
  queue. Mean wait: Allen–Cunneen with ``c_s² = 0``, i.e. half the M/M/c wait,
  ``Wq = C(P, a) · S / (2 (P - a))`` with ``C`` the Erlang-C probability of waiting (exact for
  M/D/1). With ``ttft_quantile=q`` the ``q``-quantile instead of the mean:
  ``P(Wq > t) ≈ C(P, a) · exp(-2 (P - a) t / S)`` and ``P(Wq > T - S) <= 1 - q``.
  The profile is measured at batch 1, so the throughput term alone (Dynamo) lets TTFT drift above
  the target by the queueing delay: at 60 % utilisation of one engine the mean wait is already
  0.75 S.
* ``p_cf`` multiplies the prefill work in full (Dynamo uses ``min(1, p_cf)``). A factor above 1
  means prefill is slower than profiled and must *increase* the replicas. Dynamo caps it at 1
  because its ``p_cf = observed / ttft(isl)`` cannot tell slow engines from queueing (and
  multiplying queueing in would double count it). Here the queueing model takes the queueing out
  when the factor is estimated (:func:`prefill_slowdown`), so what remains is slowness and is
  applied both ways. With ``prefill_queueing=False`` the Dynamo formula, ``min(1, p_cf)``
  included, is reproduced for comparison.
* decode: ``D = ceil(n·osl/I / thpt_decode(itl_target/d_cf, ctx=isl+osl/2) / gpus_per_decode)``,
  ``thpt_decode`` = :meth:`PerformanceProfile.best_decode_throughput` (highest tokens/s/GPU with
  ITL <= the target at that context).
* limits: each role ``>= min_endpoint``; over the GPU budget both roles shrink in proportion
  and the spare GPUs are handed back one replica at a time to the role furthest below what it
  asked for — a role never grows above its need (Dynamo PR 13064).

An SLA that no replica count can meet at this load shape (TTFT target below one batch-1 prefill,
ITL target below every decode point) raises :class:`InfeasibleSLAError` naming the nearest
achievable value; ``best_effort=True`` sizes for the nearest achievable point instead and says so
in ``ReplicaPlan.notes`` (what a running controller wants). Clamped profile lookups are reported
in the notes too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dynamo_plan.core.profile import DecodeBest, PerformanceProfile
from dynamo_plan.errors import InfeasibleSLAError, InputError

__all__ = [
    "SLA",
    "EngineGpus",
    "Limits",
    "Load",
    "ReplicaPlan",
    "apply_limits",
    "check_budget",
    "erlang_c",
    "expected_prefill_ttft_ms",
    "min_decode_itl_ms",
    "prefill_slowdown",
    "size_replicas",
]

#: Best effort for an infeasible TTFT target: size so that queueing adds at most this share of S.
BEST_EFFORT_WAIT_SHARE = 0.25


def _finite(owner: str, name: str, value: float, *, low: float, strict: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InputError(f"{owner} '{name}' must be a number, got {value!r}")
    v = float(value)
    ok = math.isfinite(v) and (v > low if strict else v >= low)
    if not ok:
        op = ">" if strict else ">="
        raise InputError(f"{owner} '{name}' must be a finite number {op} {low:g}, got {v!r}")
    return v


def _int(owner: str, name: str, value: int, *, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise InputError(f"{owner} '{name}' must be an integer >= {low}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class SLA:
    """Latency targets: time to first token and mean inter-token latency, both in ms (> 0)."""

    ttft_ms: float
    itl_ms: float

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "ttft_ms", _finite("SLA", "ttft_ms", self.ttft_ms, low=0, strict=True)
        )
        object.__setattr__(
            self, "itl_ms", _finite("SLA", "itl_ms", self.itl_ms, low=0, strict=True)
        )


@dataclass(frozen=True)
class Load:
    """One interval's load: ``requests`` in ``interval_s`` seconds, mean ``isl``/``osl`` tokens."""

    requests: float
    isl: float
    osl: float
    interval_s: float

    def __post_init__(self) -> None:
        for name in ("requests", "isl", "osl"):
            object.__setattr__(
                self, name, _finite("load", name, getattr(self, name), low=0, strict=False)
            )
        object.__setattr__(
            self, "interval_s", _finite("load", "interval_s", self.interval_s, low=0, strict=True)
        )

    @property
    def rate_rps(self) -> float:
        """Arrival rate, requests/s."""
        return self.requests / self.interval_s

    @property
    def context(self) -> float:
        """Mean decode context, tokens: ``isl + osl/2`` (Dynamo's choice)."""
        return self.isl + self.osl / 2.0


@dataclass(frozen=True)
class EngineGpus:
    """GPUs per prefill engine and per decode engine (the TP size of each role)."""

    prefill: int = 1
    decode: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefill", _int("engine GPUs", "prefill", self.prefill, low=1))
        object.__setattr__(self, "decode", _int("engine GPUs", "decode", self.decode, low=1))


@dataclass(frozen=True)
class Limits:
    """Replica floor per role and total GPU budget (``None`` = no budget)."""

    min_endpoint: int = 1
    max_gpu_budget: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "min_endpoint", _int("limits", "min_endpoint", self.min_endpoint, low=1)
        )
        if self.max_gpu_budget is not None:
            object.__setattr__(
                self,
                "max_gpu_budget",
                _int("limits", "max_gpu_budget", self.max_gpu_budget, low=1),
            )


@dataclass(frozen=True)
class ReplicaPlan:
    """Replicas per role after limits, with the operating point they were sized at.

    ``prefill_needed``/``decode_needed``: replicas the load asks for before min_endpoint and the
    budget (may be 0). ``expected_ttft_ms``: batch-1 prefill time ``ttft(isl)·p_cf``;
    ``expected_ttft_queued_ms``: the same plus the modelled mean queueing wait at ``prefill``
    engines (``inf`` when saturated); ``expected_itl_ms``: ITL of the decode operating point
    times ``d_cf``; ``prefill_utilization`` = work / engines; ``decode_concurrency``: requests
    per decode engine at the operating point.
    """

    prefill: int
    decode: int
    prefill_thpt_per_gpu: float
    decode_thpt_per_gpu: float
    expected_ttft_ms: float
    expected_itl_ms: float
    budget_clamped: bool = False
    notes: tuple[str, ...] = ()
    prefill_needed: int = 0
    decode_needed: int = 0
    expected_ttft_queued_ms: float = math.nan
    prefill_utilization: float = 0.0
    decode_concurrency: float | None = None

    def gpus(self, engines: EngineGpus) -> int:
        """GPUs this plan occupies."""
        return self.prefill * engines.prefill + self.decode * engines.decode


# --- queueing (M/D/c) ---------------------------------------------------------------------------


def erlang_c(servers: int, load: float) -> float:
    """Erlang-C probability that an arrival waits, ``servers`` engines, ``load`` Erlangs
    (1.0 when ``load >= servers``). Stable recursion through Erlang B."""
    if load <= 0.0:
        return 0.0
    if load >= servers:
        return 1.0
    b = 1.0
    for k in range(1, servers + 1):
        b = load * b / (k + load * b)
    return servers * b / (servers - load * (1.0 - b))


def _mean_wait(servers: int, load: float, service_ms: float) -> float:
    """Mean M/D/c queueing wait (ms): half the M/M/c wait (Allen–Cunneen, c_s² = 0)."""
    if load <= 0.0:
        return 0.0
    if load >= servers:
        return math.inf
    return 0.5 * erlang_c(servers, load) * service_ms / (servers - load)


def expected_prefill_ttft_ms(servers: int, load: float, service_ms: float) -> float:
    """Mean TTFT (ms) of ``servers`` prefill engines sharing a FIFO queue: ``S + Wq``."""
    return service_ms + _mean_wait(servers, load, service_ms)


def _prefill_engines(
    load: float, service_ms: float, target_ms: float, quantile: float | None
) -> int:
    """Smallest engine count >= ceil(load) whose TTFT (mean or ``quantile``) <= ``target_ms``.

    Monotone in ``load``. Erlang B is carried along k so the search is O(answer).
    """
    if load <= 0.0:
        return 0
    slack = target_ms - service_ms  # > 0 (checked by the caller)
    b = 1.0
    k = 0
    while True:
        k += 1
        b = load * b / (k + load * b)
        if k <= load:
            continue
        c = k * b / (k - load * (1.0 - b))
        if quantile is None:
            ok = 0.5 * c * service_ms / (k - load) <= slack
        else:
            ok = c * math.exp(-2.0 * (k - load) * slack / service_ms) <= 1.0 - quantile
        if ok:
            return k


def prefill_slowdown(
    observed_ttft_ms: float,
    servers: int,
    load: float,
    service_ms: float,
    lo: float,
    hi: float,
    queueing: bool = True,
) -> float | None:
    """The prefill correction sample: factor ``c`` on the profiled service time that explains
    ``observed_ttft_ms`` at ``load`` Erlangs (at profile speed) on ``servers`` engines.

    With queueing: solves ``c·S + Wq(servers, c·load, c·S) = observed`` by bisection over
    ``[lo, hi]`` (the left side grows with ``c``), clipped to the bounds. Without queueing (or no
    load): ``observed / S``. ``None`` when the pool is saturated at profile speed
    (``load >= servers``): queueing then grows without bound, so no steady-state factor exists.
    """
    if service_ms <= 0.0 or not math.isfinite(observed_ttft_ms):
        return None
    if not queueing or load <= 0.0:
        return min(max(observed_ttft_ms / service_ms, lo), hi)
    if load >= servers:
        return None

    def model(c: float) -> float:
        return expected_prefill_ttft_ms(servers, c * load, c * service_ms)

    top = min(hi, servers / load * (1.0 - 1e-9))
    if top <= lo or model(lo) >= observed_ttft_ms:
        return lo
    if model(top) <= observed_ttft_ms:
        return hi if top >= hi else top
    a, b = lo, top
    for _ in range(60):
        mid = 0.5 * (a + b)
        if model(mid) < observed_ttft_ms:
            a = mid
        else:
            b = mid
    return 0.5 * (a + b)


# --- decode --------------------------------------------------------------------------------------


def min_decode_itl_ms(profile: PerformanceProfile, context: float) -> float:
    """Lowest ITL (ms) on the decode surface at ``context`` (context clamped to the profile)."""
    lo, hi = profile.decode.kv_range(context)
    grid = np.unique(np.concatenate([np.linspace(lo, hi, 1025), [lo, hi]]))
    return float(np.nanmin(profile.decode.values("itl", grid, context)))


# --- limits --------------------------------------------------------------------------------------


def check_budget(engines: EngineGpus, limits: Limits) -> None:
    """InfeasibleSLAError when ``min_endpoint`` engines of both roles exceed the GPU budget."""
    if limits.max_gpu_budget is None:
        return
    floor = limits.min_endpoint * (engines.prefill + engines.decode)
    if floor > limits.max_gpu_budget:
        raise InfeasibleSLAError(
            f"max_gpu_budget {limits.max_gpu_budget} GPUs cannot hold min_endpoint "
            f"{limits.min_endpoint} prefill engine(s) of {engines.prefill} GPU(s) and decode "
            f"engine(s) of {engines.decode} GPU(s): they need {floor} GPUs"
        )


def apply_limits(
    prefill: int, decode: int, engines: EngineGpus, limits: Limits
) -> tuple[int, int, bool]:
    """Replicas after ``min_endpoint`` and the budget: ``(prefill, decode, budget_clamped)``.

    Over budget: what each role needs above ``min_endpoint`` scales by the share of the budget
    left above the floors (rounded down), then leftover GPUs go one replica at a time to the role with the largest
    ``needed / has`` ratio while it fits and stays ``<= needed``. Never above what was asked.
    """
    check_budget(engines, limits)
    p = max(int(prefill), limits.min_endpoint)
    d = max(int(decode), limits.min_endpoint)
    budget = limits.max_gpu_budget
    if budget is None or p * engines.prefill + d * engines.decode <= budget:
        return p, d, False
    floor = limits.min_endpoint
    want = (p, d)
    gpus = (engines.prefill, engines.decode)
    excess = (p - floor) * gpus[0] + (d - floor) * gpus[1]  # > 0: over budget
    f = (budget - floor * (gpus[0] + gpus[1])) / excess
    has = [floor + math.floor((w - floor) * f) for w in want]
    while True:
        used = has[0] * gpus[0] + has[1] * gpus[1]
        options = [i for i in (0, 1) if has[i] < want[i] and used + gpus[i] <= budget]
        if not options:
            break
        i = max(options, key=lambda j: (want[j] / has[j], -j))
        has[i] += 1
    return has[0], has[1], True


# --- sizing --------------------------------------------------------------------------------------


def _decode_point(
    profile: PerformanceProfile,
    sla: SLA,
    context: float,
    d_correction: float,
    best_effort: bool,
    notes: list[str],
) -> DecodeBest:
    target = sla.itl_ms / d_correction
    best = profile.best_decode_throughput(target, context)
    if best is not None:
        return best
    floor = min_decode_itl_ms(profile, context)
    if sla.itl_ms < floor and not best_effort:
        raise InfeasibleSLAError(
            f"ITL target {sla.itl_ms:g} ms is below every decode point of the profile at context "
            f"{context:.0f} tokens; the lowest achievable ITL there is {floor:.3g} ms"
        )
    notes.append(
        f"ITL target {target:.3g} ms (SLA {sla.itl_ms:g} ms / d_cf {d_correction:.3g}) is below "
        f"the profile's lowest ITL {floor:.3g} ms at context {context:.0f}; sized at that point"
    )
    best = profile.best_decode_throughput(floor * (1.0 + 1e-9) + 1e-12, context)
    if best is None:  # pragma: no cover - the grid minimum is on the surface
        raise InfeasibleSLAError(f"no decode point at context {context:.0f} tokens")
    return best


def size_replicas(
    load: Load,
    profile: PerformanceProfile,
    sla: SLA,
    engines: EngineGpus,
    limits: Limits,
    p_correction: float = 1.0,
    d_correction: float = 1.0,
    *,
    prefill_queueing: bool = True,
    ttft_quantile: float | None = None,
    best_effort: bool = False,
) -> ReplicaPlan:
    """Replicas per role for ``load`` under ``sla`` (module docstring has the formulas).

    ``p_correction``/``d_correction`` > 0 scale the profiled prefill time and decode ITL.
    ``prefill_queueing=False`` is Dynamo's throughput-only prefill formula (``min(1, p_cf)``).
    ``ttft_quantile`` (in (0, 1)) sizes prefill for that TTFT quantile instead of the mean.
    """
    p_cf = _finite("correction", "p_correction", p_correction, low=0, strict=True)
    d_cf = _finite("correction", "d_correction", d_correction, low=0, strict=True)
    if ttft_quantile is not None and not 0.0 < ttft_quantile < 1.0:
        raise InputError(f"ttft_quantile must be in (0, 1), got {ttft_quantile!r}")
    notes: list[str] = []
    rate = load.rate_rps

    # prefill
    ttft = profile.expected_ttft(load.isl)
    thpt_p = profile.prefill_thpt_per_gpu(load.isl)
    if ttft.clamped:
        notes.append(f"prefill: {ttft.note}")
    if ttft.value >= sla.ttft_ms and not best_effort:
        raise InfeasibleSLAError(
            f"TTFT target {sla.ttft_ms:g} ms is below the prefill time of one request at ISL "
            f"{load.isl:.0f} tokens ({ttft.value:.3g} ms at batch 1); the lowest achievable TTFT "
            f"is {ttft.value:.3g} ms"
        )
    work_cf = p_cf if prefill_queueing else min(1.0, p_cf)
    tokens_per_s = rate * load.isl
    work = tokens_per_s * work_cf / (thpt_p.value * engines.prefill) if tokens_per_s > 0 else 0.0
    service = ttft.value * p_cf
    if not prefill_queueing:
        p_need = math.ceil(work - 1e-9) if work > 0 else 0
    else:
        target = sla.ttft_ms
        if service >= target * (1.0 - 1e-9):
            target = service * (1.0 + BEST_EFFORT_WAIT_SHARE)
            notes.append(
                f"TTFT target {sla.ttft_ms:g} ms is not above the corrected prefill time "
                f"{service:.3g} ms; sized so queueing adds at most "
                f"{BEST_EFFORT_WAIT_SHARE:.0%} of it"
            )
        p_need = _prefill_engines(work, service, target, ttft_quantile)

    # decode
    context = load.context
    best = _decode_point(profile, sla, context, d_cf, best_effort, notes)
    if best.clamped:
        notes.append(f"decode: {best.note}")
    out_tokens = rate * load.osl
    d_need = (
        math.ceil(out_tokens / (best.thpt_per_gpu * engines.decode) - 1e-9) if out_tokens > 0 else 0
    )

    p, d, clamped = apply_limits(p_need, d_need, engines, limits)
    return ReplicaPlan(
        prefill=p,
        decode=d,
        prefill_thpt_per_gpu=thpt_p.value,
        decode_thpt_per_gpu=best.thpt_per_gpu,
        expected_ttft_ms=service,
        expected_itl_ms=best.itl_ms * d_cf,
        budget_clamped=clamped,
        notes=tuple(notes),
        prefill_needed=p_need,
        decode_needed=d_need,
        expected_ttft_queued_ms=expected_prefill_ttft_ms(p, work, service),
        prefill_utilization=work / p,
        decode_concurrency=best.concurrency,
    )
