"""Build the named policies for one request set and run them: what ``simulate`` and
``simulate --compare`` do.

* ``optimal`` — the cheapest per-interval schedule that meets the SLA-attainment target over the
  whole trace knowing the future, searched with the simulator
  (:mod:`dynamo_plan.sim.optimal_trace`);
* ``oracle-forecast`` (formerly ``oracle``, still accepted) — the planner's sizing rule fed the
  true future load (:class:`~dynamo_plan.sim.policies.OraclePolicy`): what a perfect forecast
  would give this rule;
* ``planner`` — this project's planner (with ``sla_attainment``: sized by replaying a sample of
  recent requests, :mod:`dynamo_plan.sim.policies_attainment`);
* ``dynamo`` — Dynamo's planner: its formula with its default predictor (ARIMA);
* ``reactive`` — the same formula with the last interval as the forecast;
* ``static`` — fixed replicas, by default sized for the busiest interval
  (:func:`~dynamo_plan.sim.policies.static_peak_policy`).

Every adaptive policy (``oracle-forecast`` included) starts with the replicas the per-interval
``optimal`` schedule (every interval meeting the target,
:class:`~dynamo_plan.sim.optimal.IntervalOptimalPolicy`) needs over the intervals up to and including the one its first decision sizes
(:func:`~dynamo_plan.sim.optimal.optimal_start` with ``lead=1``: intervals
``0 … ceil(startup_s / interval_s) + 1``), so the comparison is about how each follows the load,
not where it starts. The first decision is made on one interval of history, which shows no
trend: on the Azure conversation trace the load rises 72 % between the first and third intervals,
and with a start covering only the intervals before the first decision (``optimal``'s own start)
or sized by the mean-load formula every policy missed the target in those intervals.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from dynamo_plan.core.planner import (
    DEFAULT_LOAD_QUANTILE,
    DEFAULT_TTFT_QUANTILE,
)
from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.sla import SLA, EngineGpus, Limits, Load, check_budget, size_replicas
from dynamo_plan.errors import InputError
from dynamo_plan.sim.attainment import default_patience
from dynamo_plan.sim.config import SimConfig
from dynamo_plan.sim.engine import simulate
from dynamo_plan.sim.optimal import DEFAULT_SLA_ATTAINMENT, optimal_start
from dynamo_plan.sim.optimal_trace import OptimalPolicy
from dynamo_plan.sim.policies import OraclePolicy, Policy, StaticPolicy, static_peak_policy
from dynamo_plan.sim.policies_attainment import AttainmentPlannerPolicy
from dynamo_plan.sim.policies_planner import (
    PlannerPolicy,
    reactive_policy,
    simulated_planner_config,
)
from dynamo_plan.sim.requests import RequestArrays
from dynamo_plan.sim.result import SimResult
from dynamo_plan.trace import Trace

__all__ = [
    "MAX_INTERVALS",
    "MAX_REQUESTS",
    "POLICY_ALIASES",
    "POLICY_NAMES",
    "RANKING_RULE",
    "PolicyName",
    "PolicyOptions",
    "adaptive_start",
    "check_feasible",
    "check_span",
    "compare_json",
    "make_policy",
    "ranks",
    "requests_from_trace",
    "run_policies",
]

PolicyName = Literal["optimal", "oracle-forecast", "planner", "dynamo", "reactive", "static"]
#: Order of ``--compare`` (``optimal`` first: the others are compared with it).
POLICY_NAMES: tuple[PolicyName, ...] = (
    "optimal",
    "oracle-forecast",
    "planner",
    "dynamo",
    "reactive",
    "static",
)
#: Former names still accepted.
POLICY_ALIASES: dict[str, PolicyName] = {"oracle": "oracle-forecast"}


#: Dynamo's planner's default load predictor (``--load-predictor``), for the ``dynamo`` policy.
DYNAMO_DEFAULT_PREDICTOR = "arima"

#: Most requests one run replays (the simulator keeps a few hundred bytes per request).
MAX_REQUESTS = 20_000_000

#: Most policy decisions one run may take (a year of 60 s intervals is 525,600): a trace whose
#: timestamps jump far ahead would otherwise tick through an empty span for a long time.
MAX_INTERVALS = 1_000_000


@dataclass(frozen=True)
class PolicyOptions:
    """Knobs of the named policies: the planner's predictor, load quantile, hysteresis and TTFT
    quantile (prefill sized so this quantile of TTFT meets the target; None: the mean), the
    replica limits (all adaptive policies and the oracle) and fixed ``static`` replicas (None:
    sized for the busiest interval); ``sla_attainment``: the target of ``optimal`` and, when
    set, of the attainment-sized ``planner``; ``prefill_queueing`` False with
    ``ttft_quantile`` None is Dynamo's formula (``--sizing dynamo``) for the planner, the
    oracle-forecast and static peak sizing. ``scale_down_patience`` None: the sizing's default
    (:func:`default_patience`)."""

    predictor: str = "default"
    load_quantile: float | None = DEFAULT_LOAD_QUANTILE
    scale_down_patience: int | None = None
    limits: Limits = field(default_factory=Limits)
    static_replicas: tuple[int, int] | None = None
    predictor_params: dict[str, Any] | None = None
    ttft_quantile: float | None = DEFAULT_TTFT_QUANTILE
    sla_attainment: float | None = None
    prefill_queueing: bool = True

    @property
    def attainment_target(self) -> float:
        """The target ``optimal`` meets: ``sla_attainment``, else 0.99."""
        return self.sla_attainment if self.sla_attainment is not None else DEFAULT_SLA_ATTAINMENT

    @property
    def patience(self) -> int:
        """``scale_down_patience``, else :func:`default_patience` of the planner's sizing."""
        if self.scale_down_patience is not None:
            return self.scale_down_patience
        return default_patience(self.sla_attainment)


def requests_from_trace(trace: Trace, rate_scale: float = 1.0) -> RequestArrays:
    """:meth:`RequestArrays.from_trace`, refusing (InputError) more than :data:`MAX_REQUESTS`
    requests — a rate series is expanded to one row per request, so check its total first."""
    total = float(np.sum(np.round(trace.weight))) if trace.fmt == "rate" else float(len(trace))
    if not total <= MAX_REQUESTS:
        where = trace.sources[0] if trace.sources else "trace"
        raise InputError(
            f"{where}: {total:.4g} requests; at most {MAX_REQUESTS} are simulated "
            "(check the request counts)"
        )
    return RequestArrays.from_trace(trace, rate_scale=rate_scale)


def check_span(requests: RequestArrays, config: SimConfig) -> None:
    """InputError when the trace spans more than :data:`MAX_INTERVALS` intervals."""
    intervals = requests.span_s / config.interval_s
    if intervals > MAX_INTERVALS:
        raise InputError(
            f"the trace spans {requests.span_s:.4g} s = {intervals:.4g} intervals of "
            f"{config.interval_s:g} s; at most {MAX_INTERVALS} are simulated (check the "
            "timestamps, or give a longer --interval)"
        )


def check_feasible(
    requests: RequestArrays, profile: PerformanceProfile, sla: SLA, config: SimConfig
) -> None:
    """InfeasibleSLAError when the SLA cannot be met at the trace's mean request shape (e.g. an
    ITL target below the profile's lowest ITL at that context); InputError when the trace spans
    more than :data:`MAX_INTERVALS` intervals."""
    check_span(requests, config)
    engines = EngineGpus(config.prefill_gpus, config.decode_gpus)
    span = max(requests.span_s, config.interval_s)
    load = Load(
        requests=len(requests) * config.interval_s / span,
        isl=float(np.mean(requests.isl)),
        osl=float(np.mean(requests.osl)),
        interval_s=config.interval_s,
    )
    size_replicas(load, profile, sla, engines, Limits(), best_effort=False)


def make_policy(
    name: str,
    requests: RequestArrays,
    profile: PerformanceProfile,
    sla: SLA,
    config: SimConfig,
    options: PolicyOptions | None = None,
    *,
    start: tuple[int, int] | None = None,
) -> Policy:
    """The policy ``name`` for this run (module docstring); ``start``: the adaptive policies'
    replicas at t = 0 when already computed (:func:`adaptive_start`)."""
    opts = options if options is not None else PolicyOptions()
    engines = EngineGpus(config.prefill_gpus, config.decode_gpus)
    check_budget(engines, opts.limits)
    name = POLICY_ALIASES.get(name, name)
    if name == "static":
        if opts.static_replicas is not None:
            p, d = opts.static_replicas
            if p < 1 or d < 1:
                raise InputError(
                    f"static replicas must be >= 1 per role, got {p} prefill, {d} decode"
                )
            return StaticPolicy(p, d)
        return static_peak_policy(
            requests, profile, sla, config, opts.limits, opts.ttft_quantile, opts.prefill_queueing
        )
    if name not in POLICY_NAMES:
        raise InputError(f"unknown policy '{name}'; known policies: {', '.join(POLICY_NAMES)}")
    if name == "optimal":
        return OptimalPolicy(requests, profile, sla, config, opts.limits, opts.attainment_target)
    if start is None:
        start = adaptive_start(requests, profile, sla, config, opts)
    if name == "oracle-forecast":
        return OraclePolicy(
            requests, profile, sla, config, opts.limits, opts.ttft_quantile,
            opts.prefill_queueing, start=start,
        )  # fmt: skip
    if name == "reactive":
        return reactive_policy(profile, sla, config, limits=opts.limits, initial=start)
    if name == "dynamo":
        return reactive_policy(
            profile, sla, config, limits=opts.limits, initial=start,
            predictor=DYNAMO_DEFAULT_PREDICTOR, name="dynamo",
        )  # fmt: skip
    cfg = simulated_planner_config(
        sla,
        config,
        limits=opts.limits,
        load_quantile=opts.load_quantile,
        scale_down_patience=opts.patience,
        ttft_quantile=opts.ttft_quantile,
        prefill_queueing=opts.prefill_queueing,
    )
    if opts.sla_attainment is None:
        return PlannerPolicy(
            cfg, profile, opts.predictor, initial=start, predictor_params=opts.predictor_params
        )
    return AttainmentPlannerPolicy(
        cfg, profile, requests, config, opts.sla_attainment, opts.predictor,
        initial=start, predictor_params=opts.predictor_params,
    )  # fmt: skip


def adaptive_start(
    requests: RequestArrays,
    profile: PerformanceProfile,
    sla: SLA,
    config: SimConfig,
    options: PolicyOptions | None = None,
) -> tuple[int, int]:
    """Replicas every adaptive policy starts with: ``optimal``'s start (module docstring)."""
    opts = options if options is not None else PolicyOptions()
    return optimal_start(
        requests, profile, sla, config, opts.attainment_target, opts.limits, lead=1
    )


def run_policies(
    names: Sequence[str],
    requests: RequestArrays,
    profile: PerformanceProfile,
    sla: SLA,
    config: SimConfig,
    options: PolicyOptions | None = None,
    progress: Callable[[str, float], None] | None = None,
    rows: Callable[[str, Any], None] | None = None,
) -> list[SimResult]:
    """Simulate each named policy on the same requests (same seed); results in ``names`` order.
    ``progress(name, fraction)`` is called as each run advances; ``rows(name, frame)`` receives
    each run's per-request rows in batches as requests finish (``simulate(rows=...)``)."""
    opts = options if options is not None else PolicyOptions()
    check_span(requests, config)
    start: tuple[int, int] | None = None
    if any(POLICY_ALIASES.get(n, n) not in ("static", "optimal") for n in names):
        start = adaptive_start(requests, profile, sla, config, opts)
    results = []
    for name in names:
        started = time.perf_counter()
        policy = make_policy(name, requests, profile, sla, config, opts, start=start)
        cb = None if progress is None else (lambda f, _n=name: progress(_n, f))
        sink = None if rows is None else (lambda f, _n=name: rows(_n, f))
        result = simulate(requests, profile, sla, config, policy, cb, rows=sink)
        # the policy's own preparation counts too (``optimal`` searches before it runs)
        result.wall_s = time.perf_counter() - started
        results.append(result)
    return results


#: How ``simulate --compare`` ranks the policies (:func:`ranks`), as its table states it.
RANKING_RULE = "ranked by SLA attainment (highest first), then GPU-hours (fewest first)"


def ranks(results: Sequence[SimResult]) -> list[int]:
    """Rank (1 = best) of each result, in ``results`` order: by SLA attainment, highest first,
    then GPU-hours, fewest first (:data:`RANKING_RULE`); a NaN counts as the worst value; equal
    results keep their order (each gets its own rank)."""

    def key(i: int) -> tuple[float, float]:
        r = results[i]
        att = r.sla_attainment if math.isfinite(r.sla_attainment) else -math.inf
        gpu_h = r.gpu_hours if math.isfinite(r.gpu_hours) else math.inf
        return (-att, gpu_h)

    order = sorted(range(len(results)), key=key)
    out = [0] * len(results)
    for rank, i in enumerate(order, start=1):
        out[i] = rank
    return out


def compare_json(results: Sequence[SimResult]) -> list[dict[str, Any]]:
    """``simulate --compare -o json``: each result's document, in ``results`` order, plus
    ``rank`` (:func:`ranks`), ``gpu_hours_vs_optimal`` and ``gpu_hours_vs_oracle`` (the ratio of
    its GPU-hours to those of ``optimal`` / ``oracle-forecast``; each absent without that run)."""
    optimal = next((r for r in results if r.policy == "optimal"), None)
    oracle = next((r for r in results if r.policy == "oracle-forecast"), None)
    out = []
    for r, rank in zip(results, ranks(results), strict=True):
        doc = r.to_json()
        doc["rank"] = rank
        for key, base in (("gpu_hours_vs_optimal", optimal), ("gpu_hours_vs_oracle", oracle)):
            if base is not None and base.gpu_hours > 0 and math.isfinite(r.gpu_hours):
                doc[key] = r.gpu_hours / base.gpu_hours
        out.append(doc)
    return out
