"""Per-interval building blocks of the ``optimal`` policy
(:mod:`dynamo_plan.sim.optimal_trace`), and the schedule whose *every interval* meets the
SLA-attainment target knowing the future (:class:`IntervalOptimalPolicy`: stricter than the
trace-wide target, it is where the trace-wide search starts and where the compared adaptive
policies start, :func:`optimal_start`), found with the simulator itself.

Search (:func:`optimal_needs`), interval by interval (``[j·I, (j+1)·I)``, requests grouped by
arrival):

1. The interval's requests, after those of the interval before it (which load the engines with
   the work a busy interval carries over and are not counted), are replayed on idle engines with
   fixed replicas ``(P, D)`` (:func:`~dynamo_plan.sim.engine.replay`, the same engine model as
   every other policy). A request counts as a miss when it fails TTFT or ITL; requests that no
   size can serve (:func:`~dynamo_plan.sim.result.unservable`) are left out. The interval may
   miss at most ``floor((1 - A) · servable)`` requests.
2. TTFT depends only on the prefill pool in this model, so ``P_min`` is the fewest prefill
   engines whose TTFT misses fit the allowance (decode kept at one engine: it does not change
   TTFT). Then for ``P`` in ``P_min … P_min + 2`` the fewest ``D`` whose combined misses fit
   (binary search: misses do not grow with more engines), and the cheapest ``P·g_p + D·g_d``
   wins (ties: fewer prefill).
3. The schedule is played as the hindsight oracle plays its needs
   (:class:`~dynamo_plan.sim.policies.SchedulePolicy`): replicas for interval ``j`` are ordered
   ``startup_s`` ahead, scale-down takes effect at once.
4. Repair: the whole trace is replayed under that schedule; intervals whose own attainment falls
   below ``A`` (work carried over from a busy interval adds to the next one, which step 1 does not
   see) get one more engine of the role that missed more, and the replay repeats, at most
   :data:`REPAIR_ROUNDS` times.

Bound: within the per-interval constraint step 2 is exact for the isolated interval (up to the
prefill/decode split explored, three prefill sizes); for a target over the whole trace the
schedule is an upper bound that :mod:`~dynamo_plan.sim.optimal_trace` tightens (10–12 % fewer
GPU-hours on the shared Azure and Mooncake conversation traces). Cost grows with the number of
intervals times ~2·log2(replicas) short replays, so this is meant for benchmark-sized traces.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Iterator

import numpy as np

from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.sla import SLA, Limits
from dynamo_plan.sim.config import SimConfig
from dynamo_plan.sim.engine import replay
from dynamo_plan.sim.policies import SchedulePolicy, StaticPolicy
from dynamo_plan.sim.requests import RequestArrays
from dynamo_plan.sim.result import RequestOutcome, request_latencies, unservable

__all__ = [
    "DEFAULT_SLA_ATTAINMENT",
    "REPAIR_ROUNDS",
    "IntervalOptimalPolicy",
    "allowed_misses",
    "cheapest_for_interval",
    "interval_count",
    "interval_misses",
    "interval_slices",
    "miss_masks",
    "optimal_needs",
    "optimal_start",
    "played_misses",
    "replica_cap",
    "search_config",
]

#: The fraction of (servable) requests that must meet TTFT and ITL (``--sla-attainment``).
DEFAULT_SLA_ATTAINMENT = 0.99
#: Most whole-trace replays of the repair step.
REPAIR_ROUNDS = 8
#: Prefill sizes explored above the fewest that meets TTFT alone.
_PREFILL_SPREAD = 2


def interval_misses(
    req: RequestArrays,
    profile: PerformanceProfile,
    sla: SLA,
    config: SimConfig,
    cannot: np.ndarray,
    p: int,
    d: int,
) -> tuple[int, int]:
    """(TTFT misses, ITL-only misses) among the servable requests with ``p``/``d`` engines."""
    outcome = replay(req, profile, config, StaticPolicy(p, d))
    ttft_bad, itl_bad = miss_masks(req, outcome, sla, cannot)
    return int(np.count_nonzero(ttft_bad)), int(np.count_nonzero(itl_bad))


def miss_masks(
    req: RequestArrays, outcome: RequestOutcome, sla: SLA, cannot: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Servable requests that missed TTFT (or never finished), and those that met TTFT but
    missed ITL."""
    ttft_ms, itl_ms = request_latencies(req, outcome)
    ttft_bad = (~np.isfinite(outcome.finish_s) | ~(ttft_ms <= sla.ttft_ms)) & ~cannot
    itl_bad = ~ttft_bad & (req.osl > 1) & ~(itl_ms <= sla.itl_ms) & ~cannot
    return ttft_bad, itl_bad


def allowed_misses(attainment: float, servable: int) -> int:
    """Misses an attainment target ``attainment`` allows among ``servable`` requests:
    ``floor((1 - A)·servable)``, with a hair of slack for float rounding (``(1 - 0.99)·100``
    is 0.99999…, and means 1)."""
    return math.floor((1.0 - attainment) * servable + 1e-9)


def _fewest(ok: Callable[[int], bool], start: int, cap: int) -> int:
    """Smallest ``n`` in ``[start, cap]`` with ``ok(n)`` (``ok`` monotone); ``cap`` if none."""
    if ok(start):
        return start
    lo, hi = start, start
    while hi < cap:
        lo, hi = hi, min(cap, hi * 2)
        if ok(hi):
            break
    else:
        return cap
    while hi - lo > 1:  # ok(hi), not ok(lo)
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


def search_config(config: SimConfig) -> SimConfig:
    """``config`` with engines that serve at once (``startup_s = 0``): an interval replayed
    alone starts with its replicas ready."""
    return dataclasses.replace(config, startup_s=0.0)


def cheapest_for_interval(
    req: RequestArrays,
    profile: PerformanceProfile,
    sla: SLA,
    search: SimConfig,
    cannot: np.ndarray,
    attainment: float,
    floor: int,
    limits: Limits,
    config: SimConfig,
) -> tuple[int, int]:
    """Cheapest (P, D) for one interval's requests replayed alone on ``search``'s idle engines
    (module docstring, step 2); ``cannot`` marks the unservable requests (not counted)."""
    cap = max(floor, replica_cap(limits, config))
    allowed = allowed_misses(attainment, int(np.count_nonzero(~cannot)))

    def ttft_ok(p: int) -> bool:
        return interval_misses(req, profile, sla, search, cannot, p, 1)[0] <= allowed

    def both_ok(p: int, d: int) -> bool:
        return sum(interval_misses(req, profile, sla, search, cannot, p, d)) <= allowed

    p_min = _fewest(ttft_ok, floor, cap)
    best: tuple[int, int, int] | None = None
    for p in range(p_min, min(cap, p_min + _PREFILL_SPREAD) + 1):
        d = _fewest(functools.partial(both_ok, p), floor, cap)
        cost = p * config.prefill_gpus + d * config.decode_gpus
        if best is None or cost < best[0]:
            best = (cost, p, d)
    assert best is not None
    return best[1], best[2]


def optimal_needs(
    requests: RequestArrays,
    profile: PerformanceProfile,
    sla: SLA,
    config: SimConfig,
    attainment: float = DEFAULT_SLA_ATTAINMENT,
    limits: Limits | None = None,
    progress: Callable[[float], None] | None = None,
    cannot: np.ndarray | None = None,
) -> np.ndarray:
    """Per-interval replicas of the ``optimal`` schedule before repair (module docstring, steps
    1–2): int array ``(intervals, 2)``; an empty interval needs ``min_endpoint`` of each.
    ``cannot``: the :func:`~dynamo_plan.sim.result.unservable` mask, when already known."""
    limits = limits if limits is not None else Limits()
    floor = max(1, limits.min_endpoint)
    interval = config.interval_s
    search = search_config(config)
    if cannot is None:
        cannot = unservable(requests, profile, sla, config)
    n = interval_count(requests, interval)
    needs = np.full((n, 2), limits.min_endpoint, dtype=np.int64)
    for j, sub, skip in interval_slices(requests, cannot, interval):
        needs[j] = cheapest_for_interval(
            sub, profile, sla, search, skip, attainment, floor, limits, config
        )
        if progress is not None:
            progress((j + 1) / n)
    return needs


def interval_count(requests: RequestArrays, interval_s: float) -> int:
    """Intervals ``[j·I, (j+1)·I)`` up to the last arrival's (1 when there is none)."""
    if not len(requests):
        return 1
    return math.floor(float(requests.arrival_s[-1]) / interval_s) + 1


def interval_slices(
    requests: RequestArrays, cannot: np.ndarray, interval_s: float
) -> Iterator[tuple[int, RequestArrays, np.ndarray]]:
    """Per non-empty interval ``j``: its requests after those of interval ``j - 1`` (which warm
    the engines up with the work a busy interval carries over), times from the start of
    ``j - 1``, and the mask of requests not counted (the warm-up ones and ``cannot``)."""
    idx = np.floor(requests.arrival_s / interval_s).astype(np.int64)
    n = interval_count(requests, interval_s)
    bounds = np.searchsorted(idx, np.arange(n + 1))
    for j in range(n):
        a, b = int(bounds[j]), int(bounds[j + 1])
        if b > a:
            w = int(bounds[max(0, j - 1)])
            start = max(0, j - 1) * interval_s
            sub = RequestArrays(
                requests.arrival_s[w:b] - start, requests.isl[w:b], requests.osl[w:b]
            )
            skip = cannot[w:b].copy()
            skip[: a - w] = True
            yield j, sub, skip


def optimal_start(
    requests: RequestArrays,
    profile: PerformanceProfile,
    sla: SLA,
    config: SimConfig,
    attainment: float = DEFAULT_SLA_ATTAINMENT,
    limits: Limits | None = None,
    lead: int = 0,
) -> tuple[int, int]:
    """Per role, the most replicas the ``optimal`` schedule needs over intervals
    ``0 … ceil(startup_s / interval_s) + lead``, searched and repaired on those intervals'
    requests only. ``lead = 0`` is the replicas :class:`IntervalOptimalPolicy` starts with (as
    :class:`~dynamo_plan.sim.policies.SchedulePolicy` starts); ``lead = 1`` also covers the
    interval the first decision (made at ``interval_s`` on one interval of history) must size."""
    limits = limits if limits is not None else Limits()
    horizon = math.ceil(config.startup_s / config.interval_s - 1e-9) + lead
    head = requests.arrival_s < (horizon + 1) * config.interval_s
    if not head.any():
        return limits.min_endpoint, limits.min_endpoint
    sub = RequestArrays(requests.arrival_s[head], requests.isl[head], requests.osl[head])
    needs = IntervalOptimalPolicy(sub, profile, sla, config, limits, attainment).needs[
        : horizon + 1
    ]
    return int(needs[:, 0].max()), int(needs[:, 1].max())


def played_misses(
    requests: RequestArrays,
    profile: PerformanceProfile,
    sla: SLA,
    config: SimConfig,
    policy: SchedulePolicy,
    cannot: np.ndarray,
    n: int,
) -> np.ndarray:
    """The whole trace replayed under ``policy``: per interval of arrival (``n`` of them), its
    servable requests that missed TTFT and those that met it but missed ITL, int array
    ``(n, 2)``."""
    idx = np.floor(requests.arrival_s / config.interval_s).astype(np.int64)
    outcome = replay(requests, profile, config, policy)
    masks = miss_masks(requests, outcome, sla, cannot)
    return np.stack([np.bincount(idx[m], minlength=n)[:n] for m in masks], axis=1)


def replica_cap(limits: Limits, config: SimConfig) -> int:
    """Most engines of one role the search tries: the GPU budget's worth, else 4096."""
    budget = limits.max_gpu_budget
    if budget is None:
        return 4096
    return max(1, budget // min(config.prefill_gpus, config.decode_gpus))


class IntervalOptimalPolicy(SchedulePolicy):
    """The cheapest schedule whose every interval meets the target (module docstring), played
    like the hindsight oracle. The ``optimal`` policy
    (:class:`~dynamo_plan.sim.optimal_trace.OptimalPolicy`) starts from it and relaxes the
    target to the whole trace."""

    name = "optimal"

    def __init__(
        self,
        requests: RequestArrays,
        profile: PerformanceProfile,
        sla: SLA,
        config: SimConfig,
        limits: Limits | None = None,
        attainment: float = DEFAULT_SLA_ATTAINMENT,
        progress: Callable[[float], None] | None = None,
    ) -> None:
        limits = limits if limits is not None else Limits()
        cannot = unservable(requests, profile, sla, config)
        needs = optimal_needs(requests, profile, sla, config, attainment, limits, progress, cannot)
        super().__init__(needs, config, limits)
        self.repairs = self._repair(requests, profile, sla, config, attainment, cannot)

    def _repair(
        self,
        requests: RequestArrays,
        profile: PerformanceProfile,
        sla: SLA,
        config: SimConfig,
        attainment: float,
        cannot: np.ndarray,
    ) -> int:
        """Step 4 of the module docstring; returns the replays that added engines."""
        n = self.needs.shape[0]
        idx = np.floor(requests.arrival_s / config.interval_s).astype(np.int64)
        servable = np.bincount(idx[~cannot], minlength=n)[:n]
        allowed = np.array([allowed_misses(attainment, int(s)) for s in servable])
        cap = max(self.limits.min_endpoint, replica_cap(self.limits, config))
        for round_ in range(REPAIR_ROUNDS):
            t_miss, i_miss = played_misses(requests, profile, sla, config, self, cannot, n).T
            short = np.flatnonzero(t_miss + i_miss > allowed)
            if short.size == 0:
                return round_
            for j in short:
                role = 0 if t_miss[j] >= i_miss[j] else 1
                self.needs[j, role] = min(cap, self.needs[j, role] + 1)
        return REPAIR_ROUNDS
