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

Counters: ``dynamo_planner_decisions_total{reason}``, ``dynamo_planner_connector_errors_total``
(observe or apply failures), ``dynamo_planner_ticks_total``. Histogram:
``dynamo_planner_tick_duration_seconds`` (the whole tick, network waits included). Enum:
``dynamo_planner_decision_reason`` over the core's ``DecisionReason`` plus ``none`` (no tick yet).

**Dynamo's names** (the contract: the ``dynamo_planner_*`` series that Dynamo 1.x's planner exports
and its Grafana dashboard ``grafana-planner-dashboard-configmap.yaml`` reads), gauges in Dynamo's
units:

===================================================  ==============================================
``dynamo_planner_num_{prefill,decode}_replicas``      replicas serving (as ``current_replicas``)
``dynamo_planner_predicted_num_{prefill,decode}_replicas``  replicas asked for (``predicted_replicas``)
``dynamo_planner_observed_ttft_ms``, ``…_itl_ms``     mean TTFT / ITL over the last interval (ms)
``dynamo_planner_observed_requests_per_second``       requests/s over the last interval
``dynamo_planner_observed_request_duration_seconds``  mean request duration (s)
``dynamo_planner_observed_{input,output}_sequence_tokens``  mean ISL / OSL (tokens)
``dynamo_planner_predicted_requests_per_second``      forecast requests/s of the next interval
``dynamo_planner_predicted_{input,output}_sequence_tokens``  forecast ISL / OSL (tokens)
``dynamo_planner_sla_target_ttft_ms``, ``…_itl_ms``   the SLA (ms), set once at start
``dynamo_planner_gpu_hours``                          cumulative GPU hours since start (GPUs serving ×
                                                      seconds since the previous tick / 3600)
===================================================  ==============================================

``dynamo_planner_gpu_hours`` is Dynamo's cumulative *gauge*; it replaces this project's former
counter ``dynamo_planner_gpu_hours_total`` (a family cannot be both a gauge and a counter of the
same name), with the same values.

**Labels:** ``labels`` (e.g. ``namespace``: the Kubernetes namespace, which Dynamo's dashboard
filters on, and ``dynamo_namespace``) are added to every sample at export. In a cluster a
PodMonitor's own ``namespace`` target label takes precedence (the exported one becomes
``exported_namespace``); both name the same namespace when the planner runs beside its DGD.

**Unknown is NaN, never 0 nor stale:** a value the tick could not know (the metrics were
unknown, an idle interval has no ISL/OSL/latency, no forecast while holding without data, no plan)
sets its gauge to NaN; every such gauge starts at NaN. An idle interval's request rate is 0
(a known value). The registry is private to the instance unless one is passed in; nothing is
served until :meth:`PlannerMetrics.serve` is called.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
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
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from dynamo_plan.core.planner import DecisionReason
from dynamo_plan.errors import InputError
from dynamo_plan.live.record import TickRecord

__all__ = ["DECISION_STATES", "DYNAMO_NAMES", "ROLES", "PlannerMetrics"]

ROLES = ("prefill", "decode")
#: States of the decision-reason Enum: ``none`` until the first tick, then the core's reasons.
DECISION_STATES: tuple[str, ...] = ("none", *get_args(DecisionReason))
#: Tick-duration buckets (s): a tick computes in milliseconds; network waits add up to seconds.
TICK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

NAN = math.nan


#: Dynamo's planner metric names (the gauges its Grafana dashboard reads), without labels.
DYNAMO_NAMES: tuple[str, ...] = (
    "dynamo_planner_num_prefill_replicas",
    "dynamo_planner_num_decode_replicas",
    "dynamo_planner_predicted_num_prefill_replicas",
    "dynamo_planner_predicted_num_decode_replicas",
    "dynamo_planner_observed_ttft_ms",
    "dynamo_planner_observed_itl_ms",
    "dynamo_planner_observed_requests_per_second",
    "dynamo_planner_observed_request_duration_seconds",
    "dynamo_planner_observed_input_sequence_tokens",
    "dynamo_planner_observed_output_sequence_tokens",
    "dynamo_planner_predicted_requests_per_second",
    "dynamo_planner_predicted_input_sequence_tokens",
    "dynamo_planner_predicted_output_sequence_tokens",
    "dynamo_planner_sla_target_ttft_ms",
    "dynamo_planner_sla_target_itl_ms",
    "dynamo_planner_gpu_hours",
)


def _value(v: float | None) -> float:
    """``v``, or NaN for unknown."""
    return NAN if v is None else float(v)


class _WithLabels(Collector):
    """Every family of ``inner``, each sample with ``labels`` added (its own labels win)."""

    def __init__(self, inner: CollectorRegistry, labels: Mapping[str, str]) -> None:
        self.inner = inner
        self.labels = dict(labels)

    def collect(self) -> Iterable[Metric]:
        for family in self.inner.collect():
            out = Metric(family.name, family.documentation, family.type, family.unit)
            out.samples = [s._replace(labels={**self.labels, **s.labels}) for s in family.samples]
            yield out


class PlannerMetrics:
    """The planner's metrics in ``registry`` (a new private one when ``None``).

    ``labels``: constant labels added to every exported sample (see the module docstring);
    ``sla_ms``: the SLA's (TTFT, ITL) in ms for ``dynamo_planner_sla_target_*`` (NaN when not
    given)."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        labels: Mapping[str, str] | None = None,
        sla_ms: tuple[float, float] | None = None,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        if labels:
            r = CollectorRegistry()  # the metrics themselves; the served registry relabels them
            self.registry.register(_WithLabels(r, labels))
        else:
            r = self.registry
        self._gpu_hours = 0.0

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
        self.dynamo = {
            name: gauge(name, doc)
            for name, doc in zip(
                DYNAMO_NAMES,
                (
                    "Current number of prefill replicas.",
                    "Current number of decode replicas.",
                    "Decided number of prefill replicas.",
                    "Decided number of decode replicas.",
                    "Observed time to first token (ms).",
                    "Observed inter-token latency (ms).",
                    "Observed request rate (req/s).",
                    "Observed average request duration (seconds).",
                    "Observed average input sequence length (tokens).",
                    "Observed average output sequence length (tokens).",
                    "Predicted request rate for the next interval (req/s).",
                    "Predicted input sequence length for the next interval (tokens).",
                    "Predicted output sequence length for the next interval (tokens).",
                    "Configured SLA target for time to first token (ms).",
                    "Configured SLA target for inter-token latency (ms).",
                    "Cumulative GPU hours consumed.",
                ),
                strict=True,
            )
        }
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
        for name, g in self.dynamo.items():
            g.set(0.0 if name == "dynamo_planner_gpu_hours" else NAN)
        if sla_ms is not None:
            self.dynamo["dynamo_planner_sla_target_ttft_ms"].set(float(sla_ms[0]))
            self.dynamo["dynamo_planner_sla_target_itl_ms"].set(float(sla_ms[1]))
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
        self._gpu_hours += rec.gpu_hours
        self._record_dynamo(rec)
        self.consecutive_unknown.set(rec.consecutive_unknown)
        self.decisions.labels(reason=d.reason).inc()
        self.decision_reason.state(d.reason)
        if rec.connector_error is not None:
            self.connector_errors.inc()
        if rec.observe_error is not None:
            self.connector_errors.inc()
        self.ticks.inc()
        self.tick_duration.observe(rec.tick_s)

    def _record_dynamo(self, rec: TickRecord) -> None:
        """Dynamo's gauges from one tick, in Dynamo's units (unknown → NaN)."""
        obs = rec.observation
        f = rec.forecast
        d = rec.decision
        values: dict[str, float] = {
            "num_prefill_replicas": rec.current[0],
            "num_decode_replicas": rec.current[1],
            "predicted_num_prefill_replicas": d.prefill,
            "predicted_num_decode_replicas": d.decode,
            "observed_ttft_ms": _value(obs.ttft_ms),
            "observed_itl_ms": _value(obs.itl_ms),
            "observed_requests_per_second": _value(obs.requests) / rec.window.interval_s,
            "observed_request_duration_seconds": _value(obs.request_duration_s),
            "observed_input_sequence_tokens": _value(obs.isl),
            "observed_output_sequence_tokens": _value(obs.osl),
            "predicted_requests_per_second": (
                NAN if f is None else float(f.requests[0]) / rec.window.interval_s
            ),
            "predicted_input_sequence_tokens": NAN if f is None else float(f.isl[0]),
            "predicted_output_sequence_tokens": NAN if f is None else float(f.osl[0]),
            "gpu_hours": self._gpu_hours,
        }
        for short, v in values.items():
            self.dynamo[f"dynamo_planner_{short}"].set(float(v))

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
