"""The planner's Prometheus metrics, read back by scraping the registry."""

from __future__ import annotations

import math
import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dynamo_plan.connectors.base import ServingReplicas
from dynamo_plan.control import ForecastingPlanner
from dynamo_plan.errors import InputError, StateStoreError
from dynamo_plan.live.exporter import DECISION_STATES, DYNAMO_NAMES, PlannerMetrics
from dynamo_plan.live.loop import PlannerLoop
from tests.live.fakes import ManualClock, RecordingConnector, ScriptedSource, busy, idle, unknown
from tests.servers import free_port

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(metrics: PlannerMetrics) -> Samples:
    text = generate_latest(metrics.registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def run_ticks(
    planner: ForecastingPlanner, script: list, connector: RecordingConnector | None = None
) -> tuple[PlannerMetrics, PlannerLoop, list]:
    metrics = PlannerMetrics()
    clock = ManualClock()
    interval = planner.config.interval_s
    source = ScriptedSource(script, on_window=lambda k: clock.advance(interval) if k else None)
    loop = PlannerLoop(
        planner, source, connector or RecordingConnector(), interval, metrics, clock=clock,
        log=lambda e: None,
    )  # fmt: skip
    records = [loop.tick() for _ in script]
    return metrics, loop, records


def test_fresh_metrics_are_nan_not_zero() -> None:
    s = scrape(PlannerMetrics())
    for name in ("dynamo_planner_observed_request_rate", "dynamo_planner_predicted_isl",
                 "dynamo_planner_expected_ttft_seconds", "dynamo_planner_gpus"):  # fmt: skip
        assert math.isnan(value(s, name))
    assert math.isnan(value(s, "dynamo_planner_predicted_replicas", role="decode"))
    assert value(s, "dynamo_planner_decision_reason", dynamo_planner_decision_reason="none") == 1
    assert value(s, "dynamo_planner_decisions_total", reason="hold_no_data") == 0


def test_values_after_a_busy_tick(make_planner: Callable[..., ForecastingPlanner]) -> None:
    interval = 60.0
    w = busy(20.0, interval, isl=2500.0, osl=200.0)
    w = type(w)("value", "ok", interval, w.requests, 2500.0, 200.0, 0.3, 0.02, 4.0)
    conn = RecordingConnector(serving=ServingReplicas(2, 1))
    metrics, _loop, (rec,) = run_ticks(make_planner(interval), [w], conn)
    s = scrape(metrics)
    assert value(s, "dynamo_planner_observed_request_rate") == 20.0
    assert value(s, "dynamo_planner_observed_isl") == 2500.0
    assert value(s, "dynamo_planner_observed_osl") == 200.0
    assert value(s, "dynamo_planner_observed_ttft_seconds") == 0.3
    assert value(s, "dynamo_planner_observed_itl_seconds") == 0.02
    assert rec.forecast is not None and rec.decision.plan is not None
    assert value(s, "dynamo_planner_predicted_request_rate") == rec.forecast.requests[0] / interval
    assert value(s, "dynamo_planner_predicted_isl") == rec.forecast.isl[0]
    assert (
        value(s, "dynamo_planner_expected_itl_seconds") == rec.decision.plan.expected_itl_ms / 1e3
    )
    assert value(s, "dynamo_planner_expected_ttft_seconds") > 0
    for role, cur, want in (
        ("prefill", 2, rec.decision.prefill),
        ("decode", 1, rec.decision.decode),
    ):
        assert value(s, "dynamo_planner_current_replicas", role=role) == cur
        assert value(s, "dynamo_planner_predicted_replicas", role=role) == want
        assert value(s, "dynamo_planner_correction_factor", role=role) == 1.0
    assert value(s, "dynamo_planner_gpus") == 3
    reason = rec.decision.reason
    assert value(s, "dynamo_planner_decision_reason", dynamo_planner_decision_reason=reason) == 1
    assert value(s, "dynamo_planner_decisions_total", reason=reason) == 1
    assert value(s, "dynamo_planner_ticks_total") == 1
    assert value(s, "dynamo_planner_tick_duration_seconds_count") == 1


def test_unknown_idle_and_errors_over_ticks(
    make_planner: Callable[..., ForecastingPlanner],
) -> None:
    interval = 60.0
    script = [busy(20.0, interval), unknown(interval), unknown(interval), idle(interval)]
    conn = RecordingConnector(fail_apply={2: StateStoreError("etcd down")})
    metrics, loop, _records = run_ticks(make_planner(interval), script, conn)
    s = scrape(metrics)
    # after the idle tick: rate known (0), shape and latencies unknown
    assert value(s, "dynamo_planner_observed_request_rate") == 0.0
    assert math.isnan(value(s, "dynamo_planner_observed_isl"))
    assert math.isnan(value(s, "dynamo_planner_observed_ttft_seconds"))
    assert value(s, "dynamo_planner_consecutive_unknown_ticks") == 0
    assert value(s, "dynamo_planner_connector_errors_total") == 1
    assert value(s, "dynamo_planner_ticks_total") == 4
    assert value(s, "dynamo_planner_decisions_total", reason="hold_no_data") == 2
    total = sum(value(s, "dynamo_planner_decisions_total", reason=r) for r in DECISION_STATES[1:])
    assert total == 4
    assert value(s, "dynamo_planner_gpu_hours") == pytest.approx(loop.gpu_hours)
    assert loop.gpu_hours > 0
    assert value(s, "dynamo_planner_tick_duration_seconds_count") == 4


def test_hold_without_data_sets_predictions_to_nan(
    make_planner: Callable[..., ForecastingPlanner],
) -> None:
    interval = 60.0
    metrics, _, _ = run_ticks(make_planner(interval), [busy(20.0, interval), unknown(interval)])
    s = scrape(metrics)
    assert value(s, "dynamo_planner_consecutive_unknown_ticks") == 1
    for name in ("dynamo_planner_observed_request_rate", "dynamo_planner_predicted_request_rate",
                 "dynamo_planner_predicted_isl", "dynamo_planner_expected_itl_seconds"):  # fmt: skip
        assert math.isnan(value(s, name)), name
    assert value(s, "dynamo_planner_predicted_replicas", role="decode") >= 1  # held, known


def test_serve_exposes_the_registry() -> None:
    metrics = PlannerMetrics()
    port = free_port()
    server = metrics.serve(port)
    try:
        body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5.0).text
    finally:
        server.shutdown()
        server.server_close()
    assert "dynamo_planner_ticks_total 0.0" in body
    assert metrics.sample_names() >= {"dynamo_planner_gpu_hours", "dynamo_planner_gpus"}


def test_serve_on_a_taken_port_is_an_input_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(InputError, match=f"--metrics-port {port}: cannot listen"):
            PlannerMetrics().serve(port)


def test_dynamo_names_and_units_after_a_busy_tick(
    make_planner: Callable[..., ForecastingPlanner],
) -> None:
    interval = 60.0
    w = busy(30.0, interval, isl=2000.0, osl=100.0)
    w = type(w)("value", "ok", interval, w.requests, 2000.0, 100.0, 0.25, 0.015, 3.5)
    conn = RecordingConnector(serving=ServingReplicas(2, 3))
    metrics, loop, (rec,) = run_ticks(make_planner(interval), [w], conn)
    s = scrape(metrics)
    assert rec.forecast is not None
    expected = {
        "num_prefill_replicas": 2,
        "num_decode_replicas": 3,
        "predicted_num_prefill_replicas": rec.decision.prefill,
        "predicted_num_decode_replicas": rec.decision.decode,
        "observed_ttft_ms": 250.0,
        "observed_itl_ms": 15.0,
        "observed_requests_per_second": 30.0,
        "observed_request_duration_seconds": 3.5,
        "observed_input_sequence_tokens": 2000.0,
        "observed_output_sequence_tokens": 100.0,
        "predicted_requests_per_second": rec.forecast.requests[0] / interval,
        "predicted_input_sequence_tokens": rec.forecast.isl[0],
        "predicted_output_sequence_tokens": rec.forecast.osl[0],
        "gpu_hours": loop.gpu_hours,
    }
    for short, want in expected.items():
        assert value(s, f"dynamo_planner_{short}") == pytest.approx(want), short
    # no SLA given: unknown, not 0
    assert math.isnan(value(s, "dynamo_planner_sla_target_ttft_ms"))


def test_dynamo_names_are_exported_and_fresh_ones_are_nan() -> None:
    s = scrape(PlannerMetrics(sla_ms=(400.0, 25.0)))
    assert {name for name, _ in s} >= set(DYNAMO_NAMES)
    assert value(s, "dynamo_planner_sla_target_ttft_ms") == 400.0
    assert value(s, "dynamo_planner_sla_target_itl_ms") == 25.0
    assert value(s, "dynamo_planner_gpu_hours") == 0.0
    assert math.isnan(value(s, "dynamo_planner_num_prefill_replicas"))


def test_labels_are_added_to_every_sample(make_planner: Callable[..., ForecastingPlanner]) -> None:
    labels = {"namespace": "team-a", "dynamo_namespace": "team-a-llm"}
    metrics = PlannerMetrics(labels=labels)
    clock = ManualClock()
    planner = make_planner(60.0)
    source = ScriptedSource([busy(20.0, 60.0)], on_window=lambda k: None)
    loop = PlannerLoop(planner, source, RecordingConnector(), 60.0, metrics, clock=clock,
                       log=lambda e: None)  # fmt: skip
    loop.tick()
    text = generate_latest(metrics.registry).decode()
    families = list(text_string_to_metric_families(text))
    assert {f.name for f in families} >= {"dynamo_planner_num_prefill_replicas",
                                          "dynamo_planner_ticks", "dynamo_planner_decisions"}  # fmt: skip
    for family in families:
        for sample in family.samples:
            assert sample.labels.items() >= labels.items(), sample
    s = scrape(metrics)
    assert value(s, "dynamo_planner_ticks_total", **labels) == 1
    assert value(s, "dynamo_planner_predicted_replicas", role="decode", **labels) >= 1
    assert metrics.sample_names() >= set(DYNAMO_NAMES) | {"dynamo_planner_ticks_total"}


def test_metric_labels_from_the_settings(tmp_path: Path) -> None:
    from dynamo_plan.live.config import RunSettings
    from dynamo_plan.live.service import metric_labels

    none = tmp_path / "absent"
    s = RunSettings(namespace="llm")
    assert metric_labels(s, {}, none) == {"namespace": "llm", "dynamo_namespace": "llm"}
    assert metric_labels(s, {"POD_NAMESPACE": "team-a"}, none)["namespace"] == "team-a"
    sa = tmp_path / "namespace"
    sa.write_text("team-b\n")
    assert metric_labels(s, {}, sa)["namespace"] == "team-b"  # in a pod
    k8s = RunSettings(namespace="team-a-llm", kube_namespace="team-a")
    assert metric_labels(k8s, {"POD_NAMESPACE": "x"}, sa) == {
        "namespace": "team-a", "dynamo_namespace": "team-a-llm",
    }  # fmt: skip
    assert metric_labels(RunSettings(), {}, none) == {
        "namespace": "default",
        "dynamo_namespace": "",
    }
