"""Sizing for a per-request SLA-attainment target (``--sla-attainment A``): model-predictive,
with the simulator as the model. The same :class:`AttainmentSizer` sizes ``simulate``'s
``planner``, ``plan decide`` and ``plan run``; only where the recent request shapes come from
differs (the trace's last requests, a trace file, the frontend's ISL/OSL histograms).

One sizing (:meth:`AttainmentSizer.__call__`, a :class:`~dynamo_plan.core.planner.Sizer`):

1. the load to plan for is the largest request count of the forecast steps (the forecast at the
   planner's load quantile, look-ahead over the start-up time), and at least the recent level: the
   count of the interval just seen (a young predictor forecasts low) and, when the recent
   requests' arrival times are known, their mean count per interval over the window they came
   from. That mean lags a falling load (on the Azure conversation trace at 200/10 ms it costs
   about 1.5 % more GPU-hours), but it keeps capacity for bursts that come and go within the
   window: on the Azure code trace, whose bursts follow idle intervals, planner-A met the SLA for
   86 % / 80 % of requests with it and 69 % / 67 % without;
2. a sample is drawn: ``count`` arrivals per interval over ``1 + k`` intervals, ``k`` =
   :func:`counted_intervals` (about :data:`SAMPLE_REQUESTS` counted requests, 3 to 16 intervals:
   with 1 % allowed, a few hundred requests leave a handful of misses and a noisy choice),
   each with an (ISL, OSL) pair from the recent requests (:meth:`AttainmentSizer.observe`: the
   distribution, tails included, not only its mean). When the recent requests' arrival times are
   known (``simulate``), the sample is a block bootstrap of them: runs of :data:`BLOCK`
   consecutive requests — their gaps and shapes together — drawn at random and concatenated,
   the gaps scaled so the rate is ``count`` per interval. Bursts (requests that arrive together,
   as in Mooncake's trace, where 90 % share a timestamp with the one before) then load the
   prefill queue as they do for real; Poisson arrivals would hide them. Without arrival times
   (``plan run``: the frontend's histograms carry none; ``plan decide``) arrivals are Poisson
   and shapes drawn independently. The first interval only loads the engines with work carried
   over and is not counted;
3. the cheapest (P, D) whose replay of the sample meets TTFT and ITL for a fraction ``1 - m``
   of its servable requests is searched exactly as the ``optimal`` policy searches one interval
   (:func:`~dynamo_plan.sim.optimal.cheapest_for_interval`). The allowed miss share ``m`` is an
   error budget (:meth:`AttainmentSizer.miss_share`): ``m0 = (1 - A)·(1 - MARGIN)`` (the margin
   keeps part of the allowed misses for forecast and sampling error), plus the run's credit so
   far — ``m0·judged - missed`` over the servable requests that finished and were judged
   (:attr:`Observation.sla_judged <dynamo_plan.core.planner.Observation.sla_judged>`) — spread
   over the next :data:`BUDGET_SPREAD` intervals' requests, within
   ``[SHARE_BOUNDS[0]·(1 - A), SHARE_BOUNDS[1]·(1 - A)]``. A run ahead of its target sizes for
   less, one behind for more; without judged requests (``plan decide``; ``plan run``: Dynamo's
   frontend exports ITL per token, not per request, so a request's own ITL is not known) ``m``
   is ``m0``;
4. **hold**: when the size found costs as many GPUs as the size this sizer asked for last, or
   more, and the last size's replay of this sample meets ``1 - m`` within
   :data:`HOLD_ERRORS` sampling errors (:func:`sampling_error`: blocks are the independent
   draws), the last size is kept. The sample's attainment near the target moves by more than
   the gap between two sizes from one decision to the next (on the Mooncake hour a sample of
   ~3,000 requests put 3P/1D at 98.4–99.5 %), and the planner scales up at once but down only
   after its patience, so without the hold that noise turned into engines ordered and drained
   back and forth, each paid through its start-up. Measured on the benchmark's traces with
   seeds 0, 1 and 2 (× the trace-wide optimum, before → after): Mooncake 2000/20 1.156–1.165×
   → 1.057–1.099×, 3000/30 1.275–1.352× → 1.225–1.240×; Azure conversation 300/20
   1.167–1.180× → 1.159–1.163×, 200/10 1.222–1.309× → 1.204–1.263×; attainment 0.1–0.2
   point lower (Azure conversation 200/10: 98.99–99.14 % → 98.91–99.04 %). One sampling error
   instead of two gave 1.081–1.105× on Mooncake 2000/20 and no row better on average;
5. ``min_endpoint`` and the GPU budget apply (:func:`~dynamo_plan.core.sla.apply_limits`); the
   replay at the chosen size gives the plan's expected TTFT and ITL (means over the counted
   sample) and its attainment, stated in the plan's notes with the requests no size can serve
   (:func:`~dynamo_plan.sim.result.unservable`; left out of the target, not scaled for).

Correction factors are not applied: the simulator is the model (a profile off from the cluster
shows in the observed latencies and in ``plan run``'s metrics). Without recent shapes (nothing
observed yet) the formula sizes (:func:`~dynamo_plan.core.planner.formula_plan`), and the note
says so. Cost: about ``2·log2(replicas)·3`` replays of ``(1 + k)·count`` requests per decision,
one more when the last size is weighed (step 4).

With this sizer the planner scales down after :data:`SCALE_DOWN_PATIENCE` decisions unless told
otherwise: the sample already sizes for the tail, and holding the largest of more past targets
adds headroom twice (in sweeps on the shared traces, patience 3 cost 6–11 % more GPU-hours than
1, for attainment above the target).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from dynamo_plan.core.correction import Corrections
from dynamo_plan.core.defaults import DEFAULT_SCALE_DOWN_PATIENCE
from dynamo_plan.core.planner import LoadForecast, Observation, PlannerConfig, formula_plan
from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.sla import ReplicaPlan, apply_limits
from dynamo_plan.errors import InputError
from dynamo_plan.sim.config import SimConfig
from dynamo_plan.sim.engine import replay
from dynamo_plan.sim.optimal import cheapest_for_interval, miss_masks, search_config
from dynamo_plan.sim.policies import StaticPolicy
from dynamo_plan.sim.requests import RequestArrays
from dynamo_plan.sim.result import request_latencies, unservable

__all__ = [
    "BLOCK",
    "BUDGET_SPREAD",
    "HOLD_ERRORS",
    "MARGIN",
    "SAMPLE_REQUESTS",
    "SCALE_DOWN_PATIENCE",
    "SHARE_BOUNDS",
    "AttainmentSizer",
    "check_attainment",
    "counted_intervals",
    "default_patience",
    "sampling_error",
]

#: Counted requests the sample aims at (module docstring, step 2): more requests, less sampling
#: noise in the tail the target is about, and a longer replay.
SAMPLE_REQUESTS = 6000
#: Fewest and most counted intervals of the sample.
SAMPLE_INTERVALS_RANGE = (3, 16)
#: Share of the allowed misses kept in reserve for forecast and sampling error.
MARGIN = 0.2
#: Intervals over which the error budget's credit (or debt) is spread (module docstring, step 3).
BUDGET_SPREAD = 20
#: Fewest and most the sample's allowed miss share may be, in units of ``1 - A``.
SHARE_BOUNDS = (0.25, 4.0)
#: Default scale-down patience (decisions) of a planner sized by this sizer (module docstring).
SCALE_DOWN_PATIENCE = 1
#: Consecutive recent requests per block of the bootstrap sample (module docstring, step 2).
BLOCK = 32
#: Sampling errors within which the last size is kept (module docstring, step 4): a move needs
#: a difference of about two standard errors (~95 % two-sided), as a test of significance.
HOLD_ERRORS = 2.0


def check_attainment(value: float) -> float:
    """``value`` if it is a fraction in (0, 1); else InputError."""
    if not (math.isfinite(value) and 0.0 < value < 1.0):
        raise InputError(f"SLA attainment must be a fraction in (0, 1), e.g. 0.99; got {value!r}")
    return value


def default_patience(sla_attainment: float | None) -> int:
    """Scale-down patience when none is given: the formula's default, or
    :data:`SCALE_DOWN_PATIENCE` with an attainment target (module docstring)."""
    return DEFAULT_SCALE_DOWN_PATIENCE if sla_attainment is None else SCALE_DOWN_PATIENCE


def sampling_error(share: float, requests: int, block: int = 1) -> float:
    """Standard error of a miss share ``share`` measured on ``requests`` requests drawn in runs
    of ``block`` (the runs are the independent draws): ``sqrt(share·(1 - share)·block /
    requests)``; ``inf`` without requests."""
    if requests <= 0:
        return math.inf
    return math.sqrt(share * (1.0 - share) * block / requests)


def counted_intervals(count: int, sample_requests: int = SAMPLE_REQUESTS) -> int:
    """Counted intervals of a sample at ``count`` requests per interval: about
    ``sample_requests`` requests, within :data:`SAMPLE_INTERVALS_RANGE`."""
    lo, hi = SAMPLE_INTERVALS_RANGE
    return min(hi, max(lo, math.ceil(sample_requests / max(count, 1))))


class AttainmentSizer:
    """A :class:`~dynamo_plan.core.planner.Sizer` for an attainment target (module docstring).

    ``engine``: the simulated engines' parameters (GPUs per engine, prefill token budget, KV
    transfer); its ``interval_s`` must be the planner's and its ``seed`` seeds the samples.
    ``margin``: share of the allowed misses kept in reserve; ``sample_requests``: counted requests
    a sample aims at (:func:`counted_intervals`).
    """

    def __init__(
        self,
        attainment: float,
        engine: SimConfig,
        *,
        margin: float = MARGIN,
        sample_requests: int = SAMPLE_REQUESTS,
    ) -> None:
        self.attainment = check_attainment(attainment)
        if not 0.0 <= margin < 1.0:
            raise InputError(f"attainment margin must be in [0, 1), got {margin!r}")
        if sample_requests < 1:
            raise InputError(f"sample requests must be >= 1, got {sample_requests!r}")
        self.engine = engine
        self.search = search_config(engine)
        self.margin = margin
        self.sample_requests = sample_requests
        self.rng = np.random.default_rng(engine.seed)
        self.isl = np.zeros(0, dtype=np.int64)
        self.osl = np.zeros(0, dtype=np.int64)
        self.origin = "none"
        self.gaps: np.ndarray | None = None
        self.window_count = 0.0
        self.judged = 0.0
        self.missed = 0.0
        self.last: tuple[int, int] | None = None  # the size asked for last (module docstring)

    @classmethod
    def for_planner(cls, attainment: float, config: PlannerConfig) -> AttainmentSizer:
        """A sizer for the planner ``config`` (its interval and GPUs per engine; the other
        engine parameters :class:`SimConfig`'s defaults)."""
        engine = SimConfig(
            interval_s=config.interval_s,
            startup_s=config.startup_s,
            prefill_gpus=config.engines.prefill,
            decode_gpus=config.engines.decode,
        )
        return cls(attainment, engine)

    @property
    def base_share(self) -> float:
        """The sample's allowed miss share without credit: ``(1 - A)·(1 - margin)``."""
        return (1.0 - self.attainment) * (1.0 - self.margin)

    def judge(self, obs: Observation) -> None:
        """Add the last interval's judged and missed requests to the run's error budget."""
        if obs.sla_judged is not None and obs.sla_missed is not None:
            self.judged += obs.sla_judged
            self.missed += obs.sla_missed

    def miss_share(self, count: int) -> float:
        """The sample's allowed miss share at ``count`` requests per interval (module docstring,
        step 3): ``m0 + (m0·judged - missed) / (BUDGET_SPREAD·count)``, clamped to
        :data:`SHARE_BOUNDS` times ``1 - A``."""
        m0 = self.base_share
        if self.judged <= 0:
            return m0
        credit = m0 * self.judged - self.missed
        lo, hi = (b * (1.0 - self.attainment) for b in SHARE_BOUNDS)
        return min(hi, max(lo, m0 + credit / (BUDGET_SPREAD * max(count, 1))))

    def observe(
        self,
        isl: np.ndarray,
        osl: np.ndarray,
        origin: str = "recent requests",
        arrival_s: np.ndarray | None = None,
        window_s: float | None = None,
    ) -> None:
        """The recent requests' shapes (tokens; equal length, pairs kept together; empty: none
        known), where they came from (for the plan's note) and, when known, their arrival times
        (s, non-decreasing: the sample is then a block bootstrap of them, module docstring) and
        the span of the window they arrived in (s). The next sizing draws from these."""
        isl = np.asarray(isl, dtype=np.int64)
        osl = np.asarray(osl, dtype=np.int64)
        if isl.shape != osl.shape or isl.ndim != 1:
            raise InputError("ISL and OSL samples must be 1-D arrays of equal length")
        if isl.size and (int(isl.min()) < 1 or int(osl.min()) < 1):
            raise InputError("ISL and OSL samples must be >= 1 token")
        self.gaps = None
        if arrival_s is not None:
            arrival = np.asarray(arrival_s, dtype=float)
            if arrival.shape != isl.shape or np.any(np.diff(arrival) < 0):
                raise InputError("arrival times must be non-decreasing, one per request")
            if window_s is None or not window_s > 0:
                raise InputError("arrival times need the window's span (s) they came from")
            gaps = np.diff(arrival)
            if gaps.size >= 2 * BLOCK and gaps.sum() > 0:
                self.gaps = gaps  # gaps[k] leads to request k + 1
                self.window_count = isl.size * self.engine.interval_s / window_s
        self.isl, self.osl = isl, osl
        self.origin = origin

    def _sample(self, count: int) -> RequestArrays:
        spans = 1 + counted_intervals(count, self.sample_requests)
        n = spans * count
        span_s = spans * self.engine.interval_s
        if self.gaps is None:  # Poisson arrivals, shapes drawn independently
            pick = self.rng.integers(0, self.isl.size, size=n)
            arrival = np.sort(self.rng.uniform(0.0, span_s, size=n))
            return RequestArrays(arrival, self.isl[pick], self.osl[pick])
        gaps = self.gaps
        scale = (self.engine.interval_s / count) / float(np.mean(gaps))
        blocks = n // BLOCK + 2
        while True:  # enough blocks to cover the span (gaps vary between blocks)
            starts = self.rng.integers(0, gaps.size - BLOCK + 1, size=blocks)
            pick = (starts[:, None] + np.arange(BLOCK)[None, :]).ravel()
            arrival = np.cumsum(gaps[pick] * scale)
            if arrival[-1] >= span_s:
                break
            blocks *= 2
        keep = arrival < span_s
        return RequestArrays(arrival[keep], self.isl[pick[keep] + 1], self.osl[pick[keep] + 1])

    def _replayed(
        self,
        sample: RequestArrays,
        profile: PerformanceProfile,
        config: PlannerConfig,
        skip: np.ndarray,
        p: int,
        d: int,
    ) -> tuple[float, float, float]:
        """The sample replayed at ``p``/``d``: the fraction of its counted servable requests
        meeting the SLA, their mean TTFT and mean ITL (ms; NaN: none)."""
        outcome = replay(sample, profile, self.search, StaticPolicy(p, d))
        ttft_bad, itl_bad = miss_masks(sample, outcome, config.sla, skip)
        servable = int(np.count_nonzero(~skip))
        met = 1.0 - (np.count_nonzero(ttft_bad) + np.count_nonzero(itl_bad)) / max(servable, 1)
        ttft_ms, itl_ms = request_latencies(sample, outcome)
        ok = ~skip & np.isfinite(ttft_ms)
        mean_ttft = float(np.mean(ttft_ms[ok])) if ok.any() else math.nan
        itl_ok = ok & np.isfinite(itl_ms)
        mean_itl = float(np.mean(itl_ms[itl_ok])) if itl_ok.any() else math.nan
        return met, mean_ttft, mean_itl

    def _held(
        self,
        found: tuple[int, int],
        sample: RequestArrays,
        profile: PerformanceProfile,
        config: PlannerConfig,
        skip: np.ndarray,
        share: float,
    ) -> tuple[int, int]:
        """The size to ask for: ``found`` (the cheapest the search found), or the size asked
        for last when step 4 of the module docstring keeps it."""
        last = self.last
        if last is None or last == found:
            return found
        if config.engines.total(*found) < config.engines.total(*last):
            return found
        servable = int(np.count_nonzero(~skip))
        error = sampling_error(share, servable, BLOCK if self.gaps is not None else 1)
        met = self._replayed(sample, profile, config, skip, *last)[0]
        return last if met >= 1.0 - share - HOLD_ERRORS * error else found

    def __call__(
        self,
        config: PlannerConfig,
        profile: PerformanceProfile,
        obs: Observation,
        forecast: LoadForecast,
        corr: Corrections,
    ) -> ReplicaPlan:
        base = formula_plan(config, profile, obs, forecast, corr)
        self.judge(obs)
        recent = max(obs.requests or 0.0, 0.0 if self.gaps is None else self.window_count)
        count = math.ceil(max(float(np.max(forecast.requests)), recent))
        if count <= 0 or self.isl.size == 0:
            if count > 0:
                note = (
                    f"attainment {self.attainment:g}: no request shapes seen yet, sized by formula"
                )
                return dataclasses.replace(base, notes=(*base.notes, note))
            return base
        share = self.miss_share(count)
        sample = self._sample(count)
        cannot = unservable(sample, profile, config.sla, self.engine)
        counted = sample.arrival_s >= self.engine.interval_s
        skip = cannot | ~counted
        floor = max(1, config.limits.min_endpoint)
        p_need, d_need = cheapest_for_interval(
            sample, profile, config.sla, self.search, skip, 1.0 - share, floor, config.limits,
            self.engine,
        )  # fmt: skip
        found = (p_need, d_need)
        p_need, d_need = self.last = self._held(found, sample, profile, config, skip, share)
        kept = self.last != found
        p, d, clamped = apply_limits(p_need, d_need, config.engines, config.limits)
        met, mean_ttft, mean_itl = self._replayed(sample, profile, config, skip, p, d)
        unserved = int(np.count_nonzero(cannot & counted))
        note = (
            f"attainment {self.attainment:g}: a sample of {int(np.count_nonzero(counted))} "
            f"requests ({count}/interval) meets the SLA for {100.0 * met:.1f}% of the servable "
            f"at {p}P/{d}D"
            + f" (sized for {100.0 * (1.0 - share):.2f}%"
            + (
                f"; run so far {100.0 * (1.0 - self.missed / self.judged):.2f}% of "
                f"{self.judged:.0f} judged)"
                if self.judged > 0
                else ")"
            )
            + (
                f"; kept from the last decision, within {HOLD_ERRORS:g} sampling errors of the "
                f"target (the cheapest found: {found[0]}P/{found[1]}D)"
                if kept
                else ""
            )
            + (f"; {unserved} no size can serve" if unserved else "")
            + f"; shapes: {self.origin}"
        )
        return dataclasses.replace(
            base,
            prefill=p,
            decode=d,
            prefill_needed=p_need,
            decode_needed=d_need,
            budget_clamped=clamped,
            expected_ttft_ms=mean_ttft,
            expected_ttft_queued_ms=mean_ttft,
            expected_itl_ms=mean_itl,
            notes=(*base.notes, note),
        )
