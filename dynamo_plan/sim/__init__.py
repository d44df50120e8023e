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
    reference_simulate(requests, profile, config, prefill, decode)   (naive, for tests)

The model (prefill batching, KV transfer, continuous batching, scaling) is documented in
:mod:`dynamo_plan.sim.engine`.
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
from dynamo_plan.sim.reference import reference_simulate
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
    "reference_simulate",
    "simulate",
    "static_peak_policy",
]
