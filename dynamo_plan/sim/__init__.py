"""Discrete-event simulator of a disaggregated deployment driven by a scaling policy.

Public API::

    RequestArrays(arrival_s, isl, osl)        .from_trace(trace, rate_scale=1.0), .poisson(...)
    SimConfig(interval_s=60, startup_s=60, prefill_gpus=1, decode_gpus=1, ...)
    Policy (protocol: name, initial() -> (p, d), decide(Observation) -> (p, d, reason))
    StaticPolicy(prefill, decode), static_peak_policy(requests, profile, sla, config)
    OraclePolicy(requests, profile, sla, config), interval_needs(...)
    simulate(requests, profile, sla, config, policy, progress=None, *, per_request=False,
             rows=None) -> SimResult       requests: RequestArrays or any RequestSource
    RequestSource (protocol: span_s, chunks()), PoissonStream(rate, duration, isl, osl)

The model's rules (prefill batching, KV transfer, decode admission, draining order) live once in
:mod:`dynamo_plan.sim.cluster_model`, shared by the event engine (:mod:`dynamo_plan.sim.engine`,
whose docstring describes the whole model) and the mock cluster
(:mod:`dynamo_plan.sim.mocker.cluster`). The naive per-step reference simulator they are both
checked against is a test oracle (``tests/sim/reference.py``), not part of the package.
"""

from dynamo_plan.sim.config import SimConfig
from dynamo_plan.sim.engine import simulate
from dynamo_plan.sim.policies import (
    OraclePolicy,
    Policy,
    StaticPolicy,
    interval_needs,
    static_peak_policy,
)
from dynamo_plan.sim.requests import RequestArrays, RequestSource
from dynamo_plan.sim.result import SimResult, out_of_profile
from dynamo_plan.sim.sources import PoissonStream

__all__ = [
    "OraclePolicy",
    "PoissonStream",
    "Policy",
    "RequestArrays",
    "RequestSource",
    "SimConfig",
    "SimResult",
    "StaticPolicy",
    "interval_needs",
    "out_of_profile",
    "simulate",
    "static_peak_policy",
]
