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

Inputs are bounded (:class:`Load`): ISL and OSL at least one token and at most
:data:`MAX_TOKENS_PER_REQUEST`, the rate at most :data:`MAX_RATE_RPS` requests/s. The cost of a
decision does not grow with the load: the prefill engine count is an exponential then binary
search over ``k > a`` (the TTFT criterion is monotone in ``k``), each step one Erlang-B value in
O(1) from the Poisson ratio ``B(k, a) = pmf(k; a) / cdf(k; a)`` — O(log a) in all, where the
textbook recursion over ``k = 1..answer`` is O(a) (minutes at 1e9 requests/s).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dynamo_plan.core.profile import DecodeBest, PerformanceProfile
from dynamo_plan.errors import InfeasibleSLAError, InputError

__all__ = [
    "MAX_RATE_RPS",
    "MAX_TOKENS_PER_REQUEST",
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

#: Highest arrival rate a :class:`Load` accepts, requests/s. A sanity bound, far above any real
#: deployment (a million GPUs at ten thousand requests/s each is 1e10); with it every computed
#: quantity stays finite, and the sizing is O(log load), so a decision at this rate takes
#: milliseconds (benchmarks/sizing.py).
MAX_RATE_RPS = 1e15
#: Longest mean prompt or output a :class:`Load` accepts, tokens (100× today's longest context
#: windows); bounds the token rate ``rate · isl`` with :data:`MAX_RATE_RPS`.
MAX_TOKENS_PER_REQUEST = 1e9

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
    """One interval's load: ``requests`` (>= 0) in ``interval_s`` seconds (> 0), mean ``isl`` /
    ``osl`` tokens per request (each in ``[1, MAX_TOKENS_PER_REQUEST]``: a request has at least
    one prompt and one output token). The rate ``requests / interval_s`` is at most
    :data:`MAX_RATE_RPS`. Anything else is an :class:`InputError`."""

    requests: float
    isl: float
    osl: float
    interval_s: float

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "requests", _finite("load", "requests", self.requests, low=0, strict=False)
        )
        for name in ("isl", "osl"):
            v = _finite("load", name, getattr(self, name), low=1, strict=False)
            if v > MAX_TOKENS_PER_REQUEST:
                raise InputError(
                    f"load '{name}' must be at most {MAX_TOKENS_PER_REQUEST:g} tokens "
                    f"(MAX_TOKENS_PER_REQUEST), got {v:g}"
                )
            object.__setattr__(self, name, v)
        object.__setattr__(
            self, "interval_s", _finite("load", "interval_s", self.interval_s, low=0, strict=True)
        )
        if not self.rate_rps <= MAX_RATE_RPS:
            raise InputError(
                f"load rate {self.rate_rps:g} requests/s ({self.requests:g} requests in "
                f"{self.interval_s:g} s) is above the maximum of {MAX_RATE_RPS:g} requests/s "
                f"(MAX_RATE_RPS)"
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

    def total(self, prefill: int, decode: int) -> int:
        """GPUs of ``prefill`` prefill and ``decode`` decode engines."""
        return prefill * self.prefill + decode * self.decode


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
        return engines.total(self.prefill, self.decode)


# --- queueing (M/D/c) ---------------------------------------------------------------------------


#: Erlang B at up to this many servers comes from the exact recursion (O(servers)); above it
#: from the Poisson pmf / cdf ratio (O(1)).
_ERLANG_B_RECURSION_MAX = 1000
_LN_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def _stirlerr(n: float) -> float:
    """``ln n! - (n + 1/2) ln n + n - ln sqrt(2π)`` for ``n >= 1``: Stirling's error, with no
    cancellation for large ``n`` (series in ``1/n``; Loader 2000, as in R's ``dpois``)."""
    if n <= 15.0:
        return math.lgamma(n + 1.0) - (n + 0.5) * math.log(n) + n - _LN_SQRT_2PI
    nn = n * n
    return (
        1.0 / 12 - (1.0 / 360 - (1.0 / 1260 - (1.0 / 1680 - 1.0 / (1188 * nn)) / nn) / nn) / nn
    ) / n


def _bd0(x: float, mean: float) -> float:
    """``x ln(x / mean) + mean - x`` without cancellation when ``x`` is close to ``mean``
    (Loader 2000: series in ``v = (x - mean) / (x + mean)``)."""
    if abs(x - mean) < 0.1 * (x + mean):
        v = (x - mean) / (x + mean)
        s = (x - mean) * v
        ej = 2.0 * x * v
        v2 = v * v
        j = 1
        while True:
            ej *= v2
            s1 = s + ej / (2 * j + 1)
            if s1 == s:
                return s1
            s = s1
            j += 1
    return x * math.log(x / mean) + mean - x


def _poisson_pmf(k: int, mean: float) -> float:
    """``P(N = k)`` for ``N ~ Poisson(mean)``, ``k >= 1``, accurate for any size (saddle-point
    form ``exp(-stirlerr(k) - bd0(k, mean)) / sqrt(2π k)``; the textbook
    ``k ln(mean) - mean - ln k!`` loses every digit to cancellation at ``mean ~ 1e15``)."""
    x = float(k)
    return math.exp(-_stirlerr(x) - _bd0(x, mean) - _LN_SQRT_2PI - 0.5 * math.log(x))


def _erlang_b(servers: int, load: float) -> float:
    """Erlang-B blocking probability, ``servers >= 1`` engines, ``load > 0`` Erlangs.

    Up to :data:`_ERLANG_B_RECURSION_MAX` servers the stable recursion
    ``B(k) = a B(k-1) / (k + a B(k-1))``; above, ``B(c, a) = pmf(c; a) / cdf(c; a)`` of a
    Poisson(``a``) variable (the truncated-Poisson form of Erlang B), O(1) at any size; the cdf is
    ``scipy.special.pdtr``.
    """
    if servers <= _ERLANG_B_RECURSION_MAX:
        b = 1.0
        for k in range(1, servers + 1):
            b = load * b / (k + load * b)
        return b
    from scipy.special import pdtr  # lazy: only large pools need it

    cdf = float(pdtr(float(servers), load))
    if cdf <= 0.0:  # servers far below load: every arrival is blocked
        return 1.0
    return min(_poisson_pmf(servers, load) / cdf, 1.0)


def erlang_c(servers: int, load: float) -> float:
    """Erlang-C probability that an arrival waits, ``servers`` engines, ``load`` Erlangs
    (1.0 when ``load >= servers``): ``C = c B / (c - a (1 - B))`` with ``B`` from
    :func:`_erlang_b` — O(1) above a thousand servers, finite at any load."""
    if load <= 0.0:
        return 0.0
    gap = float(servers) - load  # float: an int far beyond 2**53 compares exactly otherwise
    if gap <= 0.0:
        return 1.0
    b = _erlang_b(servers, load)
    return min(servers * b / (gap + load * b), 1.0)


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
    """Smallest engine count ``> load`` whose TTFT (mean or ``quantile``) <= ``target_ms``.

    The criterion only gets easier with more engines (``C(k, a)`` falls and ``k - a`` grows), so
    it is found by an exponential then a binary search from ``floor(load) + 1``:
    O(log(answer - load)) evaluations of Erlang C, each O(1) for large pools — a decision at
    :data:`MAX_RATE_RPS` takes milliseconds. Monotone in ``load``.
    """
    if load <= 0.0:
        return 0
    slack = target_ms - service_ms  # > 0 (checked by the caller)

    def ok(k: int) -> bool:
        gap = float(k) - load
        if gap <= 0.0:
            return False
        c = erlang_c(k, load)
        if quantile is None:
            return 0.5 * c * service_ms / gap <= slack
        return c * math.exp(-2.0 * gap * slack / service_ms) <= 1.0 - quantile

    lo = math.floor(load) + 1  # smallest pool that is not saturated
    if ok(lo):
        return lo
    step = 1
    hi = lo + step
    while not ok(hi):  # invariant: not ok(lo)
        lo, step = hi, step * 2
        hi = lo + step
    while hi - lo > 1:  # not ok(lo), ok(hi)
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


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
