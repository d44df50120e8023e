"""Scaling policies the simulator drives: the :class:`Policy` protocol, ``static`` and ``oracle``.

A policy is asked for the replicas at t = 0 (:meth:`Policy.initial`, ready at once) and, at every
interval boundary, for the replicas it wants now given what the last interval showed
(:meth:`Policy.decide`). The simulator orders the difference: new replicas serve after
``startup_s``, removed ones drain first.
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import numpy as np

from dynamo_plan.core.planner import DEFAULT_TTFT_QUANTILE, Observation
from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.sla import SLA, EngineGpus, Limits, Load, size_replicas
from dynamo_plan.sim.config import SimConfig
from dynamo_plan.sim.requests import RequestArrays

__all__ = [
    "OraclePolicy",
    "Policy",
    "SchedulePolicy",
    "StaticPolicy",
    "interval_needs",
    "static_peak_policy",
]


@runtime_checkable
class Policy(Protocol):
    """What the simulator needs from a scaling policy."""

    name: str

    def initial(self) -> tuple[int, int]:
        """``(prefill, decode)`` replicas at t = 0 (ready at once)."""
        ...

    def decide(self, obs: Observation) -> tuple[int, int, str]:
        """``(prefill, decode, reason)`` wanted at ``obs.t_s`` (called at every interval end)."""
        ...


class StaticPolicy:
    """Fixed replicas for the whole run (reason ``static``)."""

    name = "static"

    def __init__(self, prefill: int, decode: int) -> None:
        self.prefill = int(prefill)
        self.decode = int(decode)

    def initial(self) -> tuple[int, int]:
        return self.prefill, self.decode

    def decide(self, obs: Observation) -> tuple[int, int, str]:
        return self.prefill, self.decode, "static"

    def __repr__(self) -> str:
        return f"StaticPolicy(prefill={self.prefill}, decode={self.decode})"


def interval_needs(
    requests: RequestArrays,
    profile: PerformanceProfile,
    sla: SLA,
    config: SimConfig,
    limits: Limits | None = None,
    ttft_quantile: float | None = DEFAULT_TTFT_QUANTILE,
    prefill_queueing: bool = True,
) -> np.ndarray:
    """Replicas each interval's *actual* load needs: int array of shape ``(intervals, 2)``
    (prefill, decode), interval ``j`` = arrivals in ``[j·I, (j+1)·I)``.

    Sized with :func:`~dynamo_plan.core.sla.size_replicas` on the interval's request count and
    mean ISL/OSL (``best_effort=True``: an interval whose shape no replica count can serve is
    sized at the nearest achievable point), with the planner's own sizing rule
    (``prefill_queueing``: the queueing-aware prefill formula, else Dynamo's throughput-only one;
    ``ttft_quantile``:
    prefill sized so that TTFT quantile meets the target; None: the mean), so that oracle and
    static differ from the planner only in knowing the load; an empty interval needs
    ``min_endpoint`` of each.
    """
    limits = limits if limits is not None else Limits()
    engines = EngineGpus(prefill=config.prefill_gpus, decode=config.decode_gpus)
    interval = config.interval_s
    if len(requests) == 0:
        return np.full((1, 2), limits.min_endpoint, dtype=np.int64)
    idx = np.floor(requests.arrival_s / interval).astype(np.int64)
    n = int(idx[-1]) + 1
    count = np.bincount(idx, minlength=n)
    isl = np.bincount(idx, weights=requests.isl, minlength=n)
    osl = np.bincount(idx, weights=requests.osl, minlength=n)
    needs = np.full((n, 2), limits.min_endpoint, dtype=np.int64)
    for j in np.flatnonzero(count):
        c = float(count[j])
        load = Load(requests=c, isl=isl[j] / c, osl=osl[j] / c, interval_s=interval)
        plan = size_replicas(
            load, profile, sla, engines, limits, best_effort=True, ttft_quantile=ttft_quantile,
            prefill_queueing=prefill_queueing,
        )  # fmt: skip
        needs[j] = (plan.prefill, plan.decode)
    return needs


def static_peak_policy(
    requests: RequestArrays,
    profile: PerformanceProfile,
    sla: SLA,
    config: SimConfig,
    limits: Limits | None = None,
    ttft_quantile: float | None = DEFAULT_TTFT_QUANTILE,
    prefill_queueing: bool = True,
) -> StaticPolicy:
    """Static replicas sized for the trace's busiest interval — the usual manual choice.

    Per role, the most replicas any single interval's actual load needs
    (:func:`interval_needs`): the prefill peak is the interval with the most prompt work, the
    decode peak the one with the most output work.
    """
    needs = interval_needs(requests, profile, sla, config, limits, ttft_quantile, prefill_queueing)
    return StaticPolicy(int(needs[:, 0].max()), int(needs[:, 1].max()))


class SchedulePolicy:
    """Replicas known per interval ahead of time (``needs``, int array ``(intervals, 2)``),
    ordered ahead.

    A replica ordered at ``t`` serves from ``t + startup_s``; scaling down takes effect at once.
    So at the boundary ``k·I`` the policy asks for the most any interval ``j`` in
    ``k … k + ceil(startup_s / I)`` needs: replicas for interval ``j`` are ordered early enough
    and kept until it ends. At t = 0 it starts with the most needed over intervals
    ``0 … ceil(startup_s / I)`` (or at ``start`` when given). Beyond the schedule it asks for
    ``min_endpoint``.
    """

    name = "schedule"

    def __init__(
        self,
        needs: np.ndarray,
        config: SimConfig,
        limits: Limits | None = None,
        start: tuple[int, int] | None = None,
    ) -> None:
        self.limits = limits if limits is not None else Limits()
        self.interval_s = config.interval_s
        self.needs = needs
        self.horizon = math.ceil(config.startup_s / config.interval_s - 1e-9)
        self.start = start

    def _target(self, k: int) -> tuple[int, int]:
        window = self.needs[k : k + self.horizon + 1]
        if window.shape[0] == 0:
            return self.limits.min_endpoint, self.limits.min_endpoint
        return int(window[:, 0].max()), int(window[:, 1].max())

    def initial(self) -> tuple[int, int]:
        return self.start if self.start is not None else self._target(0)

    def decide(self, obs: Observation) -> tuple[int, int, str]:
        k = round(obs.t_s / self.interval_s)
        p, d = self._target(k)
        return p, d, self.name


class OraclePolicy(SchedulePolicy):
    """``oracle-forecast``: the planner's own sizing rule fed the *actual* load of each interval
    (:func:`interval_needs`), played as a :class:`SchedulePolicy`. It measures what a perfect
    forecast would give that rule; it does not make the rule meet a per-request SLA (that is
    ``optimal``, :mod:`dynamo_plan.sim.optimal`)."""

    name = "oracle-forecast"

    def __init__(
        self,
        requests: RequestArrays,
        profile: PerformanceProfile,
        sla: SLA,
        config: SimConfig,
        limits: Limits | None = None,
        ttft_quantile: float | None = DEFAULT_TTFT_QUANTILE,
        prefill_queueing: bool = True,
        start: tuple[int, int] | None = None,
    ) -> None:
        limits = limits if limits is not None else Limits()
        needs = interval_needs(
            requests, profile, sla, config, limits, ttft_quantile, prefill_queueing
        )
        super().__init__(needs, config, limits, start)
