"""The planner's decision core: ``step(state, observation, forecast) -> (state, Decision)``.

Pure state machine (no predictor, no clock, no I/O): the caller observes the last interval,
forecasts the next ``config.lookahead_steps()`` intervals and passes both in. One step:

1. correction factors from the observed latencies (:mod:`dynamo_plan.core.correction`); the
   prefill sample is queueing-aware (:func:`dynamo_plan.core.sla.prefill_slowdown`), the decode
   sample is ``observed_itl / itl(concurrency, isl + osl/2)`` with
   ``concurrency = requests / current_decode · (request_duration - ttft) / interval`` (Little's
   law over the time a request holds a decode engine: first token to last). Dynamo uses the
   whole request duration; that counts the prefill queueing as decode time, and whenever
   prefill runs short (always, under a binding GPU budget) it inflates the concurrency, drives
   ``d_cf`` down (to its floor 0.5 in simulation) and cuts the decode need — which moved the
   budget split, shortened the prefill queue, raised ``d_cf`` again, and so on: the planner
   flipped between two splits (6P+2D <-> 5P+3D) from one tick to the next at constant load;
2. unknown is not zero: no request count observed, or no forecast, holds the current replicas
   (``hold_no_data``); a known idle interval is data and may scale down to ``min_endpoint``;
3. look-ahead: a replica ordered now serves after ``startup_s``, so each role is sized for the
   largest need over the forecast steps (``ceil(startup_s / interval_s) + 1``), then clamped to
   ``min_endpoint`` and the GPU budget (:func:`dynamo_plan.core.sla.apply_limits`, a
   deterministic function of the need alone);
4. hysteresis: scale-up is immediate; a lower target must be seen on ``scale_down_patience``
   decisions that hold, and the next one scales down — to the largest target of that window.
   Under the GPU budget a role can only grow if the other shrinks (a swap, which restarts pods
   in both roles). A swap of at most one engine's GPUs (``max(gpus_prefill, gpus_decode)``) is
   a scale-down like any other: the shrinking role is held for the patience window and the
   growing one gets what fits beside it, at least what it has (so a need that wobbles across a split boundary, e.g. noise in
   the forecast, does not swap back and forth; one that stays swaps after the window). A larger
   shift in the load's shape, or a role already stepping down to its window maximum, gives way
   at once: the held role goes to its target and the other gets the room.

Step 3's sizing is a plug-point (:class:`Sizer`): :func:`formula_plan` (the throughput and
queueing formulas of :mod:`dynamo_plan.core.sla` at the forecast's mean shape) unless the caller
passes another, e.g. :class:`dynamo_plan.sim.attainment.AttainmentSizer` (``--sla-attainment``:
the cheapest replicas whose simulated replay of a sample of recent requests meets the target).
Hysteresis, budget and reasons (step 4) are the same for every sizer.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from dynamo_plan.core.correction import (
    CorrectionConfig,
    Corrections,
    update_corrections_from_samples,
)
from dynamo_plan.core.defaults import (
    DEFAULT_LOAD_QUANTILE,
    DEFAULT_SCALE_DOWN_PATIENCE,
    DEFAULT_TTFT_QUANTILE,
)
from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.sla import (
    MAX_RATE_RPS,
    MAX_TOKENS_PER_REQUEST,
    SLA,
    EngineGpus,
    Limits,
    Load,
    ReplicaPlan,
    apply_limits,
    check_budget,
    prefill_slowdown,
    size_replicas,
)
from dynamo_plan.errors import InputError

__all__ = [  # the DEFAULT_* knobs live in dynamo_plan.core.defaults (no numpy), re-exported
    "DEFAULT_LOAD_QUANTILE",
    "DEFAULT_SCALE_DOWN_PATIENCE",
    "DEFAULT_TTFT_QUANTILE",
    "Decision",
    "DecisionReason",
    "LoadForecast",
    "Observation",
    "PlannerConfig",
    "PlannerState",
    "Sizer",
    "decide_once",
    "formula_plan",
    "step",
]

DecisionReason = Literal[
    "scale_up",
    "scale_down",
    "idle_scale_down",
    "rebalance",
    "no_change",
    "hold_no_data",
    "hold_budget",
    "hold_hysteresis",
]


@dataclass(frozen=True)
class PlannerConfig:
    """Everything a decision depends on besides state, observation and forecast.

    ``interval_s``: adjustment interval (s); ``startup_s``: time from ordering a replica to its
    serving (s); ``load_quantile``: quantile of the request-count forecast to size for (``None`` =
    the mean; applied by the forecasting caller); ``scale_down_patience``: decisions a lower
    target must hold for before scaling down (0 = at once); ``prefill_queueing`` /
    ``ttft_quantile``: see :func:`dynamo_plan.core.sla.size_replicas`.
    """

    interval_s: float
    sla: SLA
    engines: EngineGpus = field(default_factory=EngineGpus)
    limits: Limits = field(default_factory=Limits)
    startup_s: float = 0.0
    load_quantile: float | None = DEFAULT_LOAD_QUANTILE
    scale_down_patience: int = DEFAULT_SCALE_DOWN_PATIENCE
    correction: CorrectionConfig = field(default_factory=CorrectionConfig)
    prefill_queueing: bool = True
    ttft_quantile: float | None = DEFAULT_TTFT_QUANTILE

    def __post_init__(self) -> None:
        if not (math.isfinite(self.interval_s) and self.interval_s > 0):
            raise InputError(f"planner interval_s must be > 0 seconds, got {self.interval_s!r}")
        if not (math.isfinite(self.startup_s) and self.startup_s >= 0):
            raise InputError(f"planner startup_s must be >= 0 seconds, got {self.startup_s!r}")
        for name in ("load_quantile", "ttft_quantile"):
            q = getattr(self, name)
            if q is not None and not 0.0 < q < 1.0:
                raise InputError(f"planner {name} must be in (0, 1), got {q!r}")
        if isinstance(self.scale_down_patience, bool) or not (
            isinstance(self.scale_down_patience, int) and self.scale_down_patience >= 0
        ):
            raise InputError(
                f"planner scale_down_patience must be an integer >= 0, got "
                f"{self.scale_down_patience!r}"
            )

    def lookahead_steps(self) -> int:
        """Forecast steps to size for: ``ceil(startup_s / interval_s) + 1``."""
        return math.ceil(self.startup_s / self.interval_s - 1e-9) + 1


def _opt(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InputError(f"observation '{name}' must be a number or None, got {value!r}")
    v = float(value)
    if not (math.isfinite(v) and v >= 0):
        raise InputError(f"observation '{name}' must be a finite number >= 0 or None, got {v!r}")
    return v


@dataclass(frozen=True)
class Observation:
    """What the last interval showed; ``None`` means unknown (never zero).

    ``requests`` per interval, mean ``isl``/``osl`` tokens, mean ``ttft_ms``/``itl_ms`` (ms),
    mean ``request_duration_s`` (s), replicas serving now (``current_*``; ``None``: the
    planner's last decision); ``sla_judged``: requests that finished in the interval and that
    some size could serve within the SLA, ``sla_missed``: how many of those missed TTFT or ITL
    (the simulator knows both; ``None``: not known).
    """

    t_s: float
    requests: float | None
    isl: float | None
    osl: float | None
    ttft_ms: float | None = None
    itl_ms: float | None = None
    request_duration_s: float | None = None
    current_prefill: int | None = None
    current_decode: int | None = None
    sla_judged: float | None = None
    sla_missed: float | None = None

    def __post_init__(self) -> None:
        for name in (
            "requests", "isl", "osl", "ttft_ms", "itl_ms", "request_duration_s", "sla_judged",
            "sla_missed",
        ):  # fmt: skip
            object.__setattr__(self, name, _opt(name, getattr(self, name)))
        for name in ("current_prefill", "current_decode"):
            v = getattr(self, name)
            if v is not None and (
                isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0
            ):
                raise InputError(f"observation '{name}' must be an integer >= 0 or None, got {v!r}")
        if (
            self.sla_missed is not None
            and self.sla_judged is not None
            and self.sla_missed > self.sla_judged
        ):
            raise InputError(
                f"observation 'sla_missed' ({self.sla_missed:g}) exceeds 'sla_judged' "
                f"({self.sla_judged:g})"
            )


@dataclass(frozen=True, eq=False)
class LoadForecast:
    """Per look-ahead step: requests per interval (already at the chosen quantile or the mean),
    mean ISL and OSL (tokens). Arrays of equal length >= 1, finite, >= 0."""

    requests: np.ndarray
    isl: np.ndarray
    osl: np.ndarray

    def __post_init__(self) -> None:
        arrays = {}
        for name in ("requests", "isl", "osl"):
            a = np.asarray(getattr(self, name), dtype=np.float64).reshape(-1)
            if a.size == 0 or not np.all(np.isfinite(a)) or np.any(a < 0):
                raise InputError(
                    f"forecast '{name}' must be a non-empty array of finite numbers >= 0, got {a!r}"
                )
            arrays[name] = a
        if len({a.size for a in arrays.values()}) != 1:
            raise InputError(
                "forecast arrays differ in length: "
                + ", ".join(f"{k} {v.size}" for k, v in arrays.items())
            )
        for name, a in arrays.items():
            object.__setattr__(self, name, a)

    @property
    def steps(self) -> int:
        """Number of look-ahead steps."""
        return int(self.requests.size)


@dataclass(frozen=True)
class Decision:
    """Replicas per role after this step, why (``reason``, machine-readable; ``detail``, human),
    the plan it was sized from (``None`` when holding without data) and the factors used."""

    prefill: int
    decode: int
    reason: DecisionReason
    detail: str
    plan: ReplicaPlan | None
    corrections: Corrections
    t_s: float


@dataclass(frozen=True)
class PlannerState:
    """Replicas last decided, correction factors and the scale-down windows per role.

    ``pending_prefill``/``pending_decode``: targets below the current replicas seen on
    consecutive decisions (bounded by ``scale_down_patience + 1``).
    """

    prefill: int
    decode: int
    corrections: Corrections = field(default_factory=Corrections)
    pending_prefill: tuple[int, ...] = ()
    pending_decode: tuple[int, ...] = ()

    @property
    def below_since(self) -> int:
        """Decisions the longer of the two pending scale-downs has been held."""
        return max(len(self.pending_prefill), len(self.pending_decode))

    @classmethod
    def initial(cls, config: PlannerConfig, prefill: int, decode: int) -> PlannerState:
        """Start state with the replicas running now; InfeasibleSLAError for an infeasible budget."""
        check_budget(config.engines, config.limits)
        for name, v in (("prefill", prefill), ("decode", decode)):
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0:
                raise InputError(f"initial {name} replicas must be an integer >= 0, got {v!r}")
        return cls(int(prefill), int(decode))


# --- corrections ---------------------------------------------------------------------------------


def _decode_residence_s(duration_s: float, ttft_ms: float | None) -> float | None:
    """Mean seconds a request holds a decode engine: from its first token to its last, i.e. the
    request duration less the TTFT (``None`` when that is not positive: the two means disagree).
    Unknown TTFT: the whole duration (an upper bound; Dynamo's choice)."""
    if ttft_ms is None:
        return duration_s
    decode_s = duration_s - ttft_ms / 1000.0
    return decode_s if decode_s > 0.0 else None


def _corrections(
    state: PlannerState, config: PlannerConfig, profile: PerformanceProfile, obs: Observation
) -> tuple[Corrections, list[str]]:
    cfg = config.correction
    if not cfg.enabled:
        return Corrections(), []
    notes: list[str] = []
    p_sample: float | None = None
    d_sample: float | None = None
    n, isl, osl = obs.requests, obs.isl, obs.osl
    cur_p = obs.current_prefill if obs.current_prefill is not None else state.prefill
    cur_d = obs.current_decode if obs.current_decode is not None else state.decode
    if obs.ttft_ms is not None and n is not None and isl is not None and cur_p > 0:
        service = profile.expected_ttft(isl).value
        thpt = profile.prefill_thpt_per_gpu(isl).value * config.engines.prefill
        work = n / config.interval_s * isl / thpt if thpt > 0 else 0.0
        p_sample = prefill_slowdown(
            obs.ttft_ms, cur_p, work, service, cfg.lo, cfg.hi, queueing=config.prefill_queueing
        )
        if p_sample is None:
            notes.append(
                f"prefill correction kept: {cur_p} engine(s) saturated at profile speed "
                f"({work:.3g} engine-loads of work)"
            )
    if obs.itl_ms is not None:
        if n is None or isl is None or osl is None or obs.request_duration_s is None or cur_d <= 0:
            notes.append("decode correction kept: needs requests, isl, osl and request duration")
        else:
            decode_s = _decode_residence_s(obs.request_duration_s, obs.ttft_ms)
            if decode_s is None:
                notes.append(
                    f"decode correction kept: mean request duration {obs.request_duration_s:g} s "
                    f"is not above the mean TTFT {obs.ttft_ms:g} ms"
                )
            else:
                concurrency = n / cur_d * decode_s / config.interval_s
                expected = profile.expected_itl(concurrency, isl + osl / 2.0)
                if expected.clamped:
                    notes.append(f"decode correction: {expected.note}")
                if expected.value > 0:
                    d_sample = obs.itl_ms / expected.value
    return update_corrections_from_samples(
        state.corrections, cfg, prefill_sample=p_sample, decode_sample=d_sample
    ), notes


# --- hysteresis ----------------------------------------------------------------------------------


def _role(
    current: int, target: int, pending: tuple[int, ...], patience: int
) -> tuple[int, tuple[int, ...]]:
    """(replicas, pending window) for one role."""
    if target >= current:
        return target, ()
    window = (*pending, target)
    if len(window) > patience:
        return max(window), ()
    return current, window


def _fit_budget(
    state: PlannerState,
    config: PlannerConfig,
    plan: ReplicaPlan,
    p: int,
    d: int,
    pend_p: tuple[int, ...],
    pend_d: tuple[int, ...],
) -> tuple[int, int, tuple[int, ...], tuple[int, ...]]:
    """Replicas within the budget when hysteresis kept a role above its target while the other
    role grew (module docstring, step 4): a swap of at most one engine's GPUs keeps the held role
    and caps the growing one at what fits beside it (at least what it has, as long as the current
    replicas are within the limits); a larger shift, or a role already on its way down to a window
    max, gives way to its target at once."""
    eng, limits = config.engines, config.limits
    budget = limits.max_gpu_budget
    assert budget is not None
    quantum = max(eng.prefill, eng.decode)
    sane = (
        min(state.prefill, state.decode) >= limits.min_endpoint
        and state.prefill * eng.prefill + state.decode * eng.decode <= budget
    )
    if sane and pend_p and not pend_d and (state.prefill - plan.prefill) * eng.prefill <= quantum:
        return p, min(d, (budget - p * eng.prefill) // eng.decode), pend_p, pend_d
    if sane and pend_d and not pend_p and (state.decode - plan.decode) * eng.decode <= quantum:
        return min(p, (budget - d * eng.decode) // eng.prefill), d, pend_p, pend_d
    if p > plan.prefill:
        p, pend_p = plan.prefill, ()
    if d > plan.decode:
        d, pend_d = plan.decode, ()
    return p, d, pend_p, pend_d


def _clip_tokens(tokens: float) -> float:
    """A forecast token count within ``[1, MAX_TOKENS_PER_REQUEST]``."""
    return min(max(tokens, 1.0), MAX_TOKENS_PER_REQUEST)


class Sizer(Protocol):
    """Step 3 of the module docstring: the replicas (after ``min_endpoint`` and the budget) for
    ``forecast``, given what the last interval showed and the correction factors."""

    def __call__(
        self,
        config: PlannerConfig,
        profile: PerformanceProfile,
        obs: Observation,
        forecast: LoadForecast,
        corr: Corrections,
    ) -> ReplicaPlan: ...


def formula_plan(
    config: PlannerConfig,
    profile: PerformanceProfile,
    obs: Observation,
    forecast: LoadForecast,
    corr: Corrections,
) -> ReplicaPlan:
    """The default :class:`Sizer`: per forecast step, :func:`~dynamo_plan.core.sla.size_replicas`
    at the step's request count and mean ISL/OSL; the largest need per role over the steps, then
    ``min_endpoint`` and the budget. ``obs`` is not used."""
    plans = [
        size_replicas(
            Load(
                # a forecast is clipped to what a Load may hold (a diverging predictor must not
                # stop the loop): at least one token each way (an idle step's shape may be 0),
                # at most MAX_TOKENS_PER_REQUEST tokens and MAX_RATE_RPS requests/s
                min(float(forecast.requests[k]), MAX_RATE_RPS * config.interval_s),
                _clip_tokens(float(forecast.isl[k])),
                _clip_tokens(float(forecast.osl[k])),
                config.interval_s,
            ),
            profile,
            config.sla,
            config.engines,
            config.limits,
            corr.prefill,
            corr.decode,
            prefill_queueing=config.prefill_queueing,
            ttft_quantile=config.ttft_quantile,
            best_effort=True,
        )
        for k in range(forecast.steps)
    ]
    p_need = max(p.prefill_needed for p in plans)
    d_need = max(p.decode_needed for p in plans)
    binding = max(
        plans,
        key=lambda p: (
            p.prefill_needed * config.engines.prefill + p.decode_needed * config.engines.decode
        ),
    )
    p, d, clamped = apply_limits(p_need, d_need, config.engines, config.limits)
    notes = tuple(dict.fromkeys(n for plan in plans for n in plan.notes))
    return dataclasses.replace(
        binding,
        prefill=p,
        decode=d,
        prefill_needed=p_need,
        decode_needed=d_need,
        budget_clamped=clamped,
        notes=notes,
    )


def step(
    state: PlannerState,
    config: PlannerConfig,
    profile: PerformanceProfile,
    obs: Observation,
    forecast: LoadForecast | None,
    sizer: Sizer = formula_plan,
) -> tuple[PlannerState, Decision]:
    """One planner decision (module docstring). Never raises for an SLA that the load shape makes
    infeasible: it sizes for the nearest achievable point and says so in ``plan.notes``."""
    corr, corr_notes = _corrections(state, config, profile, obs)
    if obs.requests is None or forecast is None:
        missing = "request count" if obs.requests is None else "load forecast"
        new = dataclasses.replace(state, corrections=corr)
        return new, Decision(
            state.prefill,
            state.decode,
            "hold_no_data",
            f"no {missing} for the interval ending at t={obs.t_s:g} s: unknown is not zero, "
            f"holding {state.prefill} prefill / {state.decode} decode",
            None,
            corr,
            obs.t_s,
        )
    plan = sizer(config, profile, obs, forecast, corr)
    if corr_notes:
        plan = dataclasses.replace(plan, notes=(*plan.notes, *corr_notes))
    patience = config.scale_down_patience
    p, pend_p = _role(state.prefill, plan.prefill, state.pending_prefill, patience)
    d, pend_d = _role(state.decode, plan.decode, state.pending_decode, patience)
    budget = config.limits.max_gpu_budget
    eng = config.engines
    if budget is not None and p * eng.prefill + d * eng.decode > budget:
        p, d, pend_p, pend_d = _fit_budget(state, config, plan, p, d, pend_p, pend_d)
    reason, detail = _reason(state, p, d, plan, pend_p, pend_d, forecast, config)
    new = PlannerState(p, d, corr, pend_p, pend_d)
    return new, Decision(p, d, reason, detail, plan, corr, obs.t_s)


def _reason(
    state: PlannerState,
    p: int,
    d: int,
    plan: ReplicaPlan,
    pend_p: tuple[int, ...],
    pend_d: tuple[int, ...],
    forecast: LoadForecast,
    config: PlannerConfig,
) -> tuple[DecisionReason, str]:
    moves = f"prefill {state.prefill}->{p}, decode {state.decode}->{d}"
    need = f"need {plan.prefill_needed} prefill / {plan.decode_needed} decode"
    horizon = f"over {forecast.steps} look-ahead step(s)"
    up = p > state.prefill or d > state.decode
    down = p < state.prefill or d < state.decode
    reason: DecisionReason
    if plan.budget_clamped:
        reason = "hold_budget"
        detail = f"{moves}: {need} {horizon}, limited by the budget of {config.limits.max_gpu_budget} GPUs"
    elif up and down:
        reason, detail = "rebalance", f"{moves}: {need} {horizon}"
    elif up:
        reason, detail = "scale_up", f"{moves}: {need} {horizon}"
    elif down:
        idle = not np.any(forecast.requests > 0)
        reason = "idle_scale_down" if idle else "scale_down"
        detail = f"{moves}: {need} {horizon}" + (" (idle: no requests forecast)" if idle else "")
    elif pend_p or pend_d:
        reason = "hold_hysteresis"
        held = [
            f"{role} target {window[-1]} held {len(window)}/{config.scale_down_patience + 1}"
            for role, window in (("prefill", pend_p), ("decode", pend_d))
            if window
        ]
        detail = f"{moves}: " + ", ".join(held)
    else:
        reason, detail = "no_change", f"{moves}: {need} {horizon}"
    if reason != "hold_hysteresis" and (pend_p or pend_d):
        held = [role for role, w in (("prefill", pend_p), ("decode", pend_d)) if w]
        detail += f"; scale-down of {' and '.join(held)} held by hysteresis"
    return reason, detail


def decide_once(
    config: PlannerConfig,
    profile: PerformanceProfile,
    load: Load,
    *,
    current_prefill: int | None = None,
    current_decode: int | None = None,
    observed_ttft_ms: float | None = None,
    observed_itl_ms: float | None = None,
    observed_request_duration_s: float | None = None,
    sizer: Sizer = formula_plan,
) -> Decision:
    """One what-if decision for ``load`` (``plan decide``): no history, so no hysteresis and a
    correction factor equal to its bounded sample (smoothing 1). Current replicas default to
    ``min_endpoint``. Unlike :func:`step` it raises InfeasibleSLAError for an SLA that the load
    shape makes infeasible. ``sizer``: step 3 of the module docstring (:class:`Sizer`)."""
    floor = config.limits.min_endpoint
    cur_p = floor if current_prefill is None else current_prefill
    cur_d = floor if current_decode is None else current_decode
    cfg = dataclasses.replace(
        config,
        interval_s=load.interval_s,
        scale_down_patience=0,
        correction=dataclasses.replace(config.correction, smoothing=1.0),
    )
    # raise early for an SLA infeasible at this load shape (step sizes best-effort)
    size_replicas(
        load,
        profile,
        cfg.sla,
        cfg.engines,
        Limits(cfg.limits.min_endpoint, None),
        prefill_queueing=cfg.prefill_queueing,
        ttft_quantile=cfg.ttft_quantile,
    )
    state = PlannerState.initial(cfg, cur_p, cur_d)
    obs = Observation(
        0.0,
        load.requests,
        load.isl,
        load.osl,
        ttft_ms=observed_ttft_ms,
        itl_ms=observed_itl_ms,
        request_duration_s=observed_request_duration_s,
        current_prefill=cur_p,
        current_decode=cur_d,
    )
    forecast = LoadForecast(np.array([load.requests]), np.array([load.isl]), np.array([load.osl]))
    _, decision = step(state, cfg, profile, obs, forecast, sizer)
    return decision
