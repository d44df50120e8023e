"""The planner's own Prometheus metrics (``dynamo_planner_*``), with prometheus-client.

Gauges (set at every tick; ``role`` is ``prefill`` or ``decode``):

==========================================  =====================================================
``dynamo_planner_current_replicas{role}``   replicas serving: the connector's count, else the
                                            planner's previous decision (what the core assumes)
``dynamo_planner_predicted_replicas{role}`` replicas the planner asked for at this tick
``dynamo_planner_observed_request_rate``    requests/s over the last interval (0 when idle)
``dynamo_planner_predicted_request_rate``   forecast requests/s of the next interval
``dynamo_planner_{observed,predicted}_isl``  mean input tokens per request
``dynamo_planner_{observed,predicted}_osl``  mean output tokens per request
``dynamo_planner_observed_ttft_seconds``    mean TTFT over the last interval
``dynamo_planner_observed_itl_seconds``     mean inter-token latency over the last interval
``dynamo_planner_expected_ttft_seconds``    mean TTFT of the plan, queueing included
                                            (``ReplicaPlan.expected_ttft_queued_ms``; +Inf when
                                            the plan's prefill pool is saturated)
``dynamo_planner_expected_itl_seconds``     ITL of the plan's decode operating point × d_cf
``dynamo_planner_correction_factor{role}``  p_cf (prefill) and d_cf (decode) in use
``dynamo_planner_gpus``                     GPUs of the current replicas
``dynamo_planner_consecutive_unknown_ticks`` ticks in a row whose metrics were unknown
==========================================  =====================================================

Counters: ``dynamo_planner_gpu_hours_total`` (GPUs serving × seconds since the previous tick /
3600), ``dynamo_planner_decisions_total{reason}``, ``dynamo_planner_connector_errors_total``
(observe or apply failures), ``dynamo_planner_ticks_total``. Histogram:
``dynamo_planner_tick_duration_seconds`` (the whole tick, network waits included). Enum:
``dynamo_planner_decision_reason`` over the core's ``DecisionReason`` plus ``none`` (no tick yet).

**Unknown is NaN, never 0 nor stale:** a value the tick could not know (the metrics were
unknown, an idle interval has no ISL/OSL/latency, no forecast while holding without data, no plan)
sets its gauge to NaN; every such gauge starts at NaN. An idle interval's request rate is 0
(a known value). The registry is private to the instance unless one is passed in; nothing is
served until :meth:`PlannerMetrics.serve` is called.
"""

from __future__ import annotations

import math
from typing import get_args
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    start_http_server,
)

from dynamo_plan.core.planner import DecisionReason
from dynamo_plan.errors import InputError
from dynamo_plan.live.record import TickRecord

__all__ = ["DECISION_STATES", "ROLES", "PlannerMetrics"]

ROLES = ("prefill", "decode")
#: States of the decision-reason Enum: ``none`` until the first tick, then the core's reasons.
DECISION_STATES: tuple[str, ...] = ("none", *get_args(DecisionReason))
#: Tick-duration buckets (s): a tick computes in milliseconds; network waits add up to seconds.
TICK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

NAN = math.nan


def _value(v: float | None) -> float:
    """``v``, or NaN for unknown."""
    return NAN if v is None else float(v)


class PlannerMetrics:
    """The planner's metrics in ``registry`` (a new private one when ``None``)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry

        def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
            return Gauge(name, doc, labels, registry=r)

        self.current_replicas = gauge(
            "dynamo_planner_current_replicas", "Replicas serving per role.", ("role",)
        )
        self.predicted_replicas = gauge(
            "dynamo_planner_predicted_replicas", "Replicas the planner asked for.", ("role",)
        )
        self.observed_request_rate = gauge(
            "dynamo_planner_observed_request_rate", "Requests/s over the last interval."
        )
        self.predicted_request_rate = gauge(
            "dynamo_planner_predicted_request_rate", "Forecast requests/s of the next interval."
        )
        self.observed_isl = gauge("dynamo_planner_observed_isl", "Mean input tokens, observed.")
        self.predicted_isl = gauge("dynamo_planner_predicted_isl", "Mean input tokens, forecast.")
        self.observed_osl = gauge("dynamo_planner_observed_osl", "Mean output tokens, observed.")
        self.predicted_osl = gauge("dynamo_planner_predicted_osl", "Mean output tokens, forecast.")
        self.observed_ttft = gauge(
            "dynamo_planner_observed_ttft_seconds", "Mean TTFT over the last interval."
        )
        self.observed_itl = gauge(
            "dynamo_planner_observed_itl_seconds", "Mean ITL over the last interval."
        )
        self.expected_ttft = gauge(
            "dynamo_planner_expected_ttft_seconds", "Mean TTFT of the plan (queueing included)."
        )
        self.expected_itl = gauge("dynamo_planner_expected_itl_seconds", "ITL of the plan.")
        self.correction_factor = gauge(
            "dynamo_planner_correction_factor", "Correction factor per role.", ("role",)
        )
        self.gpus = gauge("dynamo_planner_gpus", "GPUs of the replicas serving.")
        self.consecutive_unknown = gauge(
            "dynamo_planner_consecutive_unknown_ticks", "Ticks in a row with unknown metrics."
        )
        self.gpu_hours = Counter(
            "dynamo_planner_gpu_hours", "GPU hours of the replicas serving.", registry=r
        )
        self.decisions = Counter(
            "dynamo_planner_decisions", "Decisions by reason.", ("reason",), registry=r
        )
        self.connector_errors = Counter(
            "dynamo_planner_connector_errors", "Connector observe/apply failures.", registry=r
        )
        self.ticks = Counter("dynamo_planner_ticks", "Planner ticks.", registry=r)
        self.tick_duration = Histogram(
            "dynamo_planner_tick_duration_seconds",
            "Duration of a planner tick (network waits included).",
            buckets=TICK_BUCKETS,
            registry=r,
        )
        self.decision_reason = Enum(
            "dynamo_planner_decision_reason",
            "Reason of the last decision.",
            states=list(DECISION_STATES),
            registry=r,
        )
        for role in ROLES:
            for g in (self.current_replicas, self.predicted_replicas, self.correction_factor):
                g.labels(role=role).set(NAN)
        for g in (
            self.observed_request_rate,
            self.predicted_request_rate,
            self.observed_isl,
            self.predicted_isl,
            self.observed_osl,
            self.predicted_osl,
            self.observed_ttft,
            self.observed_itl,
            self.expected_ttft,
            self.expected_itl,
            self.gpus,
        ):
            g.set(NAN)
        for reason in DECISION_STATES[1:]:
            self.decisions.labels(reason=reason)

    def record(self, rec: TickRecord) -> None:
        """Set every metric from one tick (unknown → NaN, see the module docstring)."""
        w = rec.window
        d = rec.decision
        obs = rec.observation  # unknown: None; idle: 0 requests, no shape, no latency
        self.observed_request_rate.set(_value(obs.requests) / w.interval_s)
        self.observed_isl.set(_value(obs.isl))
        self.observed_osl.set(_value(obs.osl))
        self.observed_ttft.set(_value(obs.ttft_ms) / 1000.0)
        self.observed_itl.set(_value(obs.itl_ms) / 1000.0)
        f = rec.forecast
        if f is None:
            for g in (self.predicted_request_rate, self.predicted_isl, self.predicted_osl):
                g.set(NAN)
        else:
            self.predicted_request_rate.set(float(f.requests[0]) / w.interval_s)
            self.predicted_isl.set(float(f.isl[0]))
            self.predicted_osl.set(float(f.osl[0]))
        plan = d.plan
        if plan is None:
            self.expected_ttft.set(NAN)
            self.expected_itl.set(NAN)
        else:
            queued = plan.expected_ttft_queued_ms
            ttft_ms = plan.expected_ttft_ms if math.isnan(queued) else queued
            self.expected_ttft.set(ttft_ms / 1000.0)
            self.expected_itl.set(plan.expected_itl_ms / 1000.0)
        for role, cur, want, cf in (
            ("prefill", rec.current[0], d.prefill, d.corrections.prefill),
            ("decode", rec.current[1], d.decode, d.corrections.decode),
        ):
            self.current_replicas.labels(role=role).set(cur)
            self.predicted_replicas.labels(role=role).set(want)
            self.correction_factor.labels(role=role).set(cf)
        self.gpus.set(rec.gpus)
        self.gpu_hours.inc(rec.gpu_hours)
        self.consecutive_unknown.set(rec.consecutive_unknown)
        self.decisions.labels(reason=d.reason).inc()
        self.decision_reason.state(d.reason)
        if rec.connector_error is not None:
            self.connector_errors.inc()
        if rec.observe_error is not None:
            self.connector_errors.inc()
        self.ticks.inc()
        self.tick_duration.observe(rec.tick_s)

    def sample_names(self) -> set[str]:
        """Every sample name the registry exports (``_total``, ``_bucket``… included)."""
        return {s.name for family in self.registry.collect() for s in family.samples}

    def serve(self, port: int, addr: str = "127.0.0.1") -> WSGIServer:
        """Serve ``/metrics`` on ``addr:port`` in a daemon thread; the caller shuts it down
        (``server.shutdown(); server.server_close()``). InputError when the port is taken."""
        if not 0 < port < 65536:
            raise InputError(f"--metrics-port must be in 1..65535 (0 disables), got {port}")
        try:
            server, _thread = start_http_server(port, addr, registry=self.registry)
        except OSError as e:
            raise InputError(
                f"--metrics-port {port}: cannot listen on {addr}:{port}: {e.strerror or e}"
            ) from e
        return server
