"""Scaling policies driven by the planner core: ``planner`` (this project's) and ``reactive``
(what Dynamo's planner does), both as simulator :class:`~dynamo_plan.sim.policies.Policy`.

* ``planner`` — :class:`~dynamo_plan.control.ForecastingPlanner` with a predictor (``default``),
  the request count sized at ``load_quantile`` (or the mean), look-ahead over the replica
  start-up time (``startup_s`` of the simulated cluster), scale-down hysteresis
  (``scale_down_patience``) and the queueing-aware prefill formula.
* ``reactive`` — Dynamo's loop: ``constant`` predictor (next interval = last interval), point
  forecast, no look-ahead (``startup_s = 0`` in the planner's config, although replicas still
  take ``startup_s`` to start in the simulated cluster), no hysteresis, Dynamo's throughput-only
  prefill formula (``prefill_queueing=False``) and unsmoothed correction factors (each interval's
  bounded sample is used as is).

Both start with ``initial`` replicas (default: ``min_endpoint`` of each role); :func:`make_policy`
in :mod:`dynamo_plan.sim.compare` gives them the oracle's start so that every adaptive policy
begins from the same point.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from dynamo_plan.control import ForecastingPlanner
from dynamo_plan.core.correction import CorrectionConfig
from dynamo_plan.core.planner import (
    DEFAULT_LOAD_QUANTILE,
    DEFAULT_SCALE_DOWN_PATIENCE,
    DEFAULT_TTFT_QUANTILE,
    Decision,
    Observation,
    PlannerConfig,
    Sizer,
    formula_plan,
)
from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.sla import SLA, EngineGpus, Limits
from dynamo_plan.sim.config import SimConfig

__all__ = [
    "PlannerPolicy",
    "reactive_policy",
    "simulated_planner_config",
]

#: Defaults of the ``planner`` policy; the same as :class:`PlannerConfig`'s.


def simulated_planner_config(
    sla: SLA,
    config: SimConfig,
    *,
    limits: Limits | None = None,
    load_quantile: float | None = DEFAULT_LOAD_QUANTILE,
    scale_down_patience: int = DEFAULT_SCALE_DOWN_PATIENCE,
    lookahead: bool = True,
    prefill_queueing: bool = True,
    correction: CorrectionConfig | None = None,
    ttft_quantile: float | None = DEFAULT_TTFT_QUANTILE,
) -> PlannerConfig:
    """The planner's config for a simulated cluster: its interval, its start-up time as the
    look-ahead (``lookahead=False``: 0), its GPUs per engine."""
    return PlannerConfig(
        interval_s=config.interval_s,
        sla=sla,
        engines=EngineGpus(config.prefill_gpus, config.decode_gpus),
        limits=limits if limits is not None else Limits(),
        startup_s=config.startup_s if lookahead else 0.0,
        load_quantile=load_quantile,
        scale_down_patience=scale_down_patience,
        correction=correction if correction is not None else CorrectionConfig(),
        prefill_queueing=prefill_queueing,
        ttft_quantile=ttft_quantile,
    )


class PlannerPolicy:
    """A :class:`ForecastingPlanner` as a simulator policy; ``decisions`` keeps every
    :class:`Decision` taken (for reports and tests); ``sizer``: how a forecast becomes replicas
    (:class:`~dynamo_plan.core.planner.Sizer`)."""

    def __init__(
        self,
        planner_config: PlannerConfig,
        profile: PerformanceProfile,
        predictor: str = "default",
        *,
        initial: tuple[int, int] | None = None,
        predictor_params: dict[str, Any] | None = None,
        name: str = "planner",
        sizer: Sizer = formula_plan,
    ) -> None:
        floor = planner_config.limits.min_endpoint
        self.name = name
        self._initial = initial if initial is not None else (floor, floor)
        self.planner = ForecastingPlanner(
            planner_config,
            profile,
            predictor,
            initial_prefill=int(self._initial[0]),
            initial_decode=int(self._initial[1]),
            predictor_params=predictor_params,
            sizer=sizer,
        )
        self.decisions: list[Decision] = []

    @property
    def config(self) -> PlannerConfig:
        return self.planner.config

    def initial(self) -> tuple[int, int]:
        return int(self._initial[0]), int(self._initial[1])

    def decide(self, obs: Observation) -> tuple[int, int, str]:
        decision = self.planner.tick(obs)
        self.decisions.append(decision)
        return decision.prefill, decision.decode, decision.reason

    def __repr__(self) -> str:
        c = self.config
        return (
            f"PlannerPolicy(name={self.name!r}, predictor={self.planner.predictor_name!r}, "
            f"load_quantile={c.load_quantile}, startup_s={c.startup_s:g}, "
            f"scale_down_patience={c.scale_down_patience}, prefill_queueing={c.prefill_queueing})"
        )


def reactive_policy(
    profile: PerformanceProfile,
    sla: SLA,
    config: SimConfig,
    *,
    limits: Limits | None = None,
    initial: tuple[int, int] | None = None,
    predictor: str = "constant",
    name: str = "reactive",
) -> PlannerPolicy:
    """Dynamo's planner (module docstring): ``predictor`` (``constant``: the last interval),
    mean forecast, no look-ahead, no hysteresis, throughput-only prefill, unsmoothed
    corrections."""
    cfg = simulated_planner_config(
        sla,
        config,
        limits=limits,
        load_quantile=None,
        scale_down_patience=0,
        lookahead=False,
        prefill_queueing=False,
        ttft_quantile=None,
        correction=dataclasses.replace(CorrectionConfig(), smoothing=1.0),
    )
    return PlannerPolicy(cfg, profile, predictor, initial=initial, name=name)
