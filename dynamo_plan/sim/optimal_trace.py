"""The ``optimal`` policy: the cheapest per-interval (prefill, decode) schedule that meets the
SLA-attainment target over the whole trace, knowing the future, found with the simulator.

The target is the one a user states: at least a fraction ``A`` of the trace's servable requests
meet TTFT and ITL (``budget = floor((1 - A) · servable)`` misses in all). Requiring it of every
interval (:class:`~dynamo_plan.sim.optimal.IntervalOptimalPolicy`) is stricter and costs more:
an interval whose last few requests need a whole engine more may let them miss while another
interval keeps its engines. The search:

1. **Own sizes.** Every interval's cheapest size meeting the target on its own, ``(P*_j, D*_j)``
   (:func:`~dynamo_plan.sim.optimal.optimal_needs`: the interval's requests replayed after the
   interval before it on idle engines).
2. **Frontiers.** Around that size, per interval and role, the misses each count leaves, with the
   same replays: TTFT misses ``t_j(P)`` for ``P = P*_j + 1, P*_j, P*_j - 1, …`` (decode at
   ``D*_j``; TTFT does not depend on decode in this model) and ITL-only misses ``i_j(D)`` for
   ``D = D*_j + 1, D*_j, …`` (prefill at ``P*_j``), going down while the misses fit the budget.
   An interval's misses at ``(P, D)`` are modelled as ``t_j(P) + i_j(D)`` (exact at
   ``(P*_j, D*_j)``; below ``P*_j`` requests late for TTFT are no longer counted for ITL, so the
   sum over-counts).
3. **Cheapest choice.** Per interval and role one count from its frontier, the cheapest total
   ``Σ gpus · count`` whose modelled misses ``Σ t_j + i_j`` fit the budget: a knapsack over the
   misses, solved exactly by dynamic programming (:func:`choose`; the frontiers need not be
   convex: a count that saves no miss on its own may be what the next one builds on).
4. **Play and repair.** The schedule is played as the hindsight oracle plays its needs
   (:class:`~dynamo_plan.sim.policies.SchedulePolicy`: replicas ordered ``startup_s`` ahead,
   scale-down at once) over the whole trace. While the trace misses more than the budget
   (work carried over between intervals, the approximation of step 2's model), the intervals whose
   misses exceed the model's most, enough of them to cover the excess, get one more engine of
   the role that missed more, at most :data:`~dynamo_plan.sim.optimal.REPAIR_ROUNDS` replays.
5. **Trim.** Step 2's model over-counts (and the repair adds whole engines), so the played
   schedule usually misses fewer than the budget. One engine at a time is taken back — from the
   interval and role whose played misses are fewest first (on equal misses the role with more
   GPUs per engine) — and kept out when the whole trace, replayed, still fits the budget; a
   removal that would not change the replicas played (a neighbouring interval within the
   start-up look-ahead needs as many) is skipped without a replay. At most :data:`TRIM_TRIES`
   replays. On a 10-minute Azure excerpt at 200/10 ms this found the hindsight formula's
   cheaper schedule (2 decode engines where the model asked for 3).

Bound: the schedule meets the target (checked by the last replay) and is an *upper* bound of
the true optimum; before the trim it is the optimum of step 2's model within the explored
counts, and the trim only lowers it. On the shared
traces (``benchmarks/simulate.py``) it costs 4–23 % fewer GPU-hours than the per-interval
schedule it starts from. Cost: step 1's search, about two more short replays per interval and
role for the frontiers, and a few whole-trace replays (up to :data:`TRIM_TRIES` for the trim).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.sla import SLA, Limits
from dynamo_plan.sim.config import SimConfig
from dynamo_plan.sim.optimal import (
    DEFAULT_SLA_ATTAINMENT,
    REPAIR_ROUNDS,
    allowed_misses,
    interval_count,
    interval_misses,
    interval_slices,
    optimal_needs,
    played_misses,
    replica_cap,
    search_config,
)
from dynamo_plan.sim.policies import SchedulePolicy
from dynamo_plan.sim.requests import RequestArrays
from dynamo_plan.sim.result import unservable

__all__ = [
    "MAX_BUDGET_UNITS",
    "TRIM_TRIES",
    "Frontier",
    "OptimalPolicy",
    "choose",
    "frontiers",
    "trace_needs",
]

#: Most miss units step 3's table spans (module docstring, step 3).
MAX_BUDGET_UNITS = 4096
#: Most whole-trace replays of the trim (module docstring, step 5).
TRIM_TRIES = 48


@dataclass(frozen=True)
class Frontier:
    """Misses of one interval and role by replica count (module docstring, step 2): ``counts``
    ascending, ``misses`` the servable requests that missed with that many engines, ``gpus``
    per engine."""

    counts: np.ndarray
    misses: np.ndarray
    gpus: int

    @property
    def costs(self) -> np.ndarray:
        """GPUs of each count."""
        return self.counts * self.gpus


def frontiers(
    requests: RequestArrays,
    profile: PerformanceProfile,
    sla: SLA,
    config: SimConfig,
    own: np.ndarray,
    cannot: np.ndarray,
    budget: int,
    limits: Limits,
    progress: Callable[[float], None] | None = None,
) -> dict[tuple[int, int], Frontier]:
    """Per non-empty interval ``j`` and role ``r`` (0 prefill, 1 decode), the misses around
    the interval's own size ``own[j]`` (module docstring, step 2); ``cannot`` marks the
    unservable requests (not counted)."""
    search = search_config(config)
    floor = max(1, limits.min_endpoint)
    cap = max(floor, replica_cap(limits, config))
    n = own.shape[0]
    out: dict[tuple[int, int], Frontier] = {}
    for j, sub, skip in interval_slices(requests, cannot, config.interval_s):
        p0, d0 = int(own[j, 0]), int(own[j, 1])
        for role, own_count, gpus in ((0, p0, config.prefill_gpus), (1, d0, config.decode_gpus)):
            counts: list[int] = []
            found: list[int] = []
            c = min(cap, own_count + 1)
            while c >= floor:
                size = (c, d0) if role == 0 else (p0, c)
                m = interval_misses(sub, profile, sla, search, skip, *size)[role]
                if c < own_count and m > budget:
                    break
                counts.append(c)
                found.append(m)
                c -= 1
            out[(j, role)] = Frontier(
                np.array(counts[::-1], dtype=np.int64), np.array(found[::-1], dtype=np.int64), gpus
            )
        if progress is not None:
            progress((j + 1) / n)
    return out


def choose(fronts: dict[tuple[int, int], Frontier], budget: int) -> dict[tuple[int, int], int]:
    """Index into each frontier (module docstring, step 3): the cheapest choice whose total
    misses fit ``budget``, by dynamic programming over the misses spent so far (exact when the
    budget is at most :data:`MAX_BUDGET_UNITS` misses; above, misses are counted in units of
    ``ceil(budget / MAX_BUDGET_UNITS)`` requests, rounded up, so the choice still fits). If even
    the fewest misses exceed the budget, those are chosen."""
    keys = list(fronts)
    unit = max(1, math.ceil(budget / MAX_BUDGET_UNITS))
    cap = budget // unit
    fewest = {k: int(np.argmin(fronts[k].misses)) for k in keys}
    # units of misses per candidate, ceil-rounded: the chosen total never exceeds the budget
    units = {k: -(-fronts[k].misses // unit) for k in keys}
    if sum(int(units[k][i]) for k, i in fewest.items()) > cap:
        return fewest
    best = np.zeros(cap + 1)  # best[b]: fewest GPUs with at most b units missed so far
    picks = np.zeros((len(keys), cap + 1), dtype=np.int64)
    for n, k in enumerate(keys):
        f = fronts[k]
        new = np.full(cap + 1, np.inf)
        # fewer misses first, so ties keep the choice that misses less
        for i in np.argsort(f.misses, kind="stable"):
            m = int(units[k][i])
            if m > cap:
                continue
            cand = np.full(cap + 1, np.inf)
            cand[m:] = best[: cap + 1 - m] + float(f.costs[i])
            better = cand < new
            new[better] = cand[better]
            picks[n, better] = i
        best = new
    pick: dict[tuple[int, int], int] = {}
    b = cap
    for n in range(len(keys) - 1, -1, -1):
        k = keys[n]
        i = int(picks[n, b])
        pick[k] = i
        b -= int(units[k][i])
    return pick


def trace_needs(
    requests: RequestArrays,
    profile: PerformanceProfile,
    sla: SLA,
    config: SimConfig,
    attainment: float = DEFAULT_SLA_ATTAINMENT,
    limits: Limits | None = None,
    progress: Callable[[float], None] | None = None,
    cannot: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-interval replicas of the ``optimal`` schedule before repair (module docstring, steps
    1–3), the misses its model expects (int arrays ``(intervals, 2)``; per role: TTFT misses,
    ITL-only misses) and the trace's budget of misses, ``floor((1 - A) · servable)``.
    ``cannot``: the :func:`~dynamo_plan.sim.result.unservable` mask, when already known."""
    limits = limits if limits is not None else Limits()
    if cannot is None:
        cannot = unservable(requests, profile, sla, config)
    budget = allowed_misses(attainment, int(np.count_nonzero(~cannot)))
    half = None if progress is None else (lambda f: progress(0.5 * f))
    own = optimal_needs(requests, profile, sla, config, attainment, limits, half, cannot)
    rest = None if progress is None else (lambda f: progress(0.5 + 0.5 * f))
    fronts = frontiers(requests, profile, sla, config, own, cannot, budget, limits, rest)
    pick = choose(fronts, budget)
    needs = np.full_like(own, limits.min_endpoint)
    expected = np.zeros_like(own)
    for (j, role), i in pick.items():
        needs[j, role] = fronts[(j, role)].counts[i]
        expected[j, role] = fronts[(j, role)].misses[i]
    return needs, expected, budget


class OptimalPolicy(SchedulePolicy):
    """The ``optimal`` schedule (module docstring), played like the hindsight oracle.
    ``repairs``: whole-trace replays that added engines; ``trimmed``: engines the trim took back
    (per interval and role); ``expected_misses``: step 2's model of the chosen schedule, per
    interval and role; ``budget``: the misses the trace may have."""

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
        needs, self.expected_misses, self.budget = trace_needs(
            requests, profile, sla, config, attainment, limits, progress, cannot
        )
        super().__init__(needs, config, limits)
        n = interval_count(requests, config.interval_s)

        def replayed() -> np.ndarray:  # this schedule's played misses (interval, role)
            return played_misses(requests, profile, sla, config, self, cannot, n)

        cap = max(limits.min_endpoint, replica_cap(limits, config))
        self.repairs, missed = self._repair(replayed, cap)
        self.trimmed = 0
        if missed is not None:
            gpus = (config.prefill_gpus, config.decode_gpus)
            self.trimmed = self._trim(replayed, missed, gpus)

    def _repair(
        self, replayed: Callable[[], np.ndarray], cap: int
    ) -> tuple[int, np.ndarray | None]:
        """Step 4 of the module docstring (``replayed``: the schedule's played misses per
        interval and role; ``cap``: most engines of a role); returns the replays that added
        engines and the played misses once the trace fits the budget (None if it never did)."""
        for round_ in range(REPAIR_ROUNDS + 1):
            missed = replayed()
            over = int(missed.sum()) - self.budget
            if over <= 0:
                return round_, missed
            if round_ == REPAIR_ROUNDS:
                break
            excess = missed - self.expected_misses
            worst = np.argsort(-excess.sum(axis=1), kind="stable")
            covered = 0
            for j in worst:
                role = 0 if excess[j, 0] >= excess[j, 1] else 1
                self.needs[j, role] = min(cap, self.needs[j, role] + 1)
                self.expected_misses[j, role] = 0  # unknown above the frontier: none expected
                covered += max(1, int(excess[j].sum()))
                if covered >= over:
                    break
        return REPAIR_ROUNDS, None

    def _played(self) -> np.ndarray:
        """The replicas asked for at each interval boundary (``(intervals, 2)``)."""
        return np.array([self._target(k) for k in range(self.needs.shape[0])])

    def _trim(
        self, replayed: Callable[[], np.ndarray], missed: np.ndarray, gpus: tuple[int, int]
    ) -> int:
        """Step 5 of the module docstring, from the played misses ``missed`` of a schedule
        that fits the budget (``gpus``: per prefill and decode engine); returns the engines
        taken back."""
        order = sorted(
            ((j, role) for j in range(self.needs.shape[0]) for role in (0, 1)),
            key=lambda c: (int(missed[c[0], c[1]]), -gpus[c[1]], c[0], c[1]),
        )
        played = self._played()
        tries = taken = 0
        for j, role in order:
            if tries >= TRIM_TRIES:
                break
            if self.needs[j, role] <= self.limits.min_endpoint:
                continue
            self.needs[j, role] -= 1
            trial = self._played()
            if np.array_equal(trial, played):  # the same replicas played: no saving
                self.needs[j, role] += 1
                continue
            tries += 1
            if int(replayed().sum()) > self.budget:
                self.needs[j, role] += 1
            else:
                played = trial
                taken += 1
        return taken
