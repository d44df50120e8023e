"""The live loop against a scripted metrics source and a recording connector."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest

from dynamo_plan.connectors.base import ServingReplicas
from dynamo_plan.control import ForecastingPlanner
from dynamo_plan.errors import InputError, MetricsError, StateStoreError
from dynamo_plan.live.loop import PlannerLoop
from tests.live.fakes import ManualClock, RecordingConnector, ScriptedSource, busy, idle, unknown

Factory = Callable[..., ForecastingPlanner]


def make_loop(
    planner: ForecastingPlanner,
    script: list[Any],
    connector: RecordingConnector | None = None,
    clock: ManualClock | None = None,
    **kw: Any,
) -> tuple[PlannerLoop, RecordingConnector, list[dict[str, Any]]]:
    logs: list[dict[str, Any]] = []
    conn = connector if connector is not None else RecordingConnector()
    loop = PlannerLoop(
        planner,
        ScriptedSource(script),
        conn,
        planner.config.interval_s,
        clock=clock if clock is not None else ManualClock(),
        log=logs.append,
        **kw,
    )
    return loop, conn, logs


def total(record: Any) -> int:
    return int(record.decision.prefill + record.decision.decode)


def test_decisions_rise_with_load(make_planner: Factory) -> None:
    interval = 60.0
    rates = [0.5, 2.0, 8.0, 20.0, 50.0]
    loop, conn, _ = make_loop(make_planner(interval), [busy(r, interval) for r in rates])
    records = [loop.tick() for _ in rates]
    sizes = [total(r) for r in records]
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0]
    assert {r.decision.reason for r in records} <= {"scale_up", "no_change"}
    assert [(t.prefill, t.decode) for t in conn.targets] == [
        (r.decision.prefill, r.decision.decode) for r in records
    ]
    assert conn.targets[-1].reason == records[-1].decision.reason


def test_unknown_holds_and_counts(make_planner: Factory) -> None:
    interval = 60.0
    script = [busy(50.0, interval)] + [unknown(interval)] * 3 + [busy(50.0, interval)]
    loop, conn, logs = make_loop(make_planner(interval), script)
    first = loop.tick()
    held = [loop.tick() for _ in range(3)]
    for k, rec in enumerate(held, start=1):
        assert rec.decision.reason == "hold_no_data"
        assert (rec.decision.prefill, rec.decision.decode) == (
            first.decision.prefill,
            first.decision.decode,
        )
        assert rec.observation.requests is None  # unknown, not zero
        assert rec.forecast is None
        assert rec.consecutive_unknown == k
        assert logs[k]["window"]["status"] == "unknown"
        assert logs[k]["consecutive_unknown"] == k
    after = loop.tick()
    assert after.consecutive_unknown == 0
    assert loop.unknown_ticks == 3 and loop.max_consecutive_unknown == 3
    assert len(conn.targets) == 5  # the hold is applied too (a no-op for the environment)


def test_idle_scales_down_to_min_endpoint(make_planner: Factory) -> None:
    interval = 60.0
    loop, _, _ = make_loop(make_planner(interval, patience=1), [busy(50.0, interval)])
    high = loop.tick()
    assert total(high) > 2
    loop.source = ScriptedSource([idle(interval)])
    records = [loop.tick() for _ in range(3)]
    assert records[0].decision.reason == "hold_hysteresis"
    assert records[0].observation.requests == 0.0  # idle is known: zero requests
    down = records[1]
    assert down.decision.reason == "idle_scale_down"
    assert (down.decision.prefill, down.decision.decode) == (1, 1)


def test_connector_error_is_logged_and_next_tick_reapplies(make_planner: Factory) -> None:
    interval = 60.0
    conn = RecordingConnector(fail_apply={1: StateStoreError("etcd at http://x: unreachable")})
    loop, conn, logs = make_loop(make_planner(interval), [busy(20.0, interval)], connector=conn)
    recs = [loop.tick() for _ in range(3)]
    assert recs[1].connector_error == "etcd at http://x: unreachable"
    assert recs[1].outcome is None
    assert logs[1]["connector"] == {"status": "error", "error": "etcd at http://x: unreachable"}
    assert recs[2].outcome is not None and recs[2].connector_error is None
    assert conn.applied[-1] == conn.targets[1]  # the failed target went out on the next tick
    assert loop.connector_errors == 1
    assert loop.summary()["connector_errors"] == 1


def test_observe_error_and_serving_replicas(make_planner: Factory) -> None:
    interval = 60.0
    conn = RecordingConnector(serving=ServingReplicas(3, 2))
    loop, conn, logs = make_loop(make_planner(interval), [busy(1.0, interval)], connector=conn)
    first = rec = loop.tick()
    assert (rec.observation.current_prefill, rec.observation.current_decode) == (3, 2)
    assert rec.current == (3, 2) and rec.gpus == 5
    conn.fail_observe = StateStoreError("state file unreadable")
    rec = loop.tick()
    assert rec.serving is None and rec.observe_error == "state file unreadable"
    assert rec.observation.current_prefill is None
    # unknown serving replicas: the planner's previous decision stands for them
    assert rec.current == (first.decision.prefill, first.decision.decode)
    assert logs[-1]["connector"]["observe_error"] == "state file unreadable"
    assert loop.connector_errors == 1


def test_source_error_is_an_unknown_window(make_planner: Factory) -> None:
    class Failing:
        def window(self, interval_s: float) -> Any:
            raise MetricsError("boom")

    planner = make_planner(60.0)
    loop = PlannerLoop(planner, Failing(), RecordingConnector(), 60.0, log=lambda e: None)
    rec = loop.tick()
    assert rec.window.status == "unknown" and "boom" in rec.window.detail
    assert rec.decision.reason == "hold_no_data"


def test_log_line_is_json_with_every_field(make_planner: Factory) -> None:
    interval = 60.0
    loop, _, logs = make_loop(make_planner(interval), [busy(5.0, interval), unknown(interval)])
    loop.tick()
    loop.tick()
    for entry in logs:
        json.dumps(entry, allow_nan=False)
        assert {
            "t", "time", "tick", "window", "observation", "forecast", "decision", "corrections",
            "connector", "tick_ms", "compute_ms",
        } <= set(entry)  # fmt: skip
        assert {"prefill", "decode", "reason", "detail"} <= set(entry["decision"])
    assert logs[0]["forecast"]["requests"] == pytest.approx(5.0 * interval)
    assert logs[0]["connector"]["decision_id"] == 0
    assert logs[1]["forecast"] is None


def test_gpu_hours_follow_the_clock(make_planner: Factory) -> None:
    interval = 60.0
    clock = ManualClock()
    conn = RecordingConnector(serving=ServingReplicas(2, 3))
    loop, _, _ = make_loop(make_planner(interval), [busy(1.0, interval)], conn, clock)
    loop.tick()
    clock.advance(interval)
    loop.tick()
    clock.advance(2 * interval)
    rec = loop.tick()
    assert rec.elapsed_s == pytest.approx(2 * interval)
    assert loop.gpu_hours == pytest.approx(5 * 3 * interval / 3600.0)


def test_stop_event_ends_the_loop_after_the_current_tick(make_planner: Factory) -> None:
    interval = 0.05
    stop = threading.Event()
    source = ScriptedSource(
        [busy(1.0, interval)], on_window=lambda k: stop.set() if k == 1 else None
    )
    planner = make_planner(interval)
    loop = PlannerLoop(planner, source, RecordingConnector(), interval, log=lambda e: None)
    summary = loop.run(max_ticks=None, stop=stop)
    assert summary["ticks"] == 2 and summary["stopped"] == "stop"


def test_run_stops_after_max_ticks_and_summarises(make_planner: Factory) -> None:
    interval = 0.01
    planner = make_planner(interval)
    script = [busy(10.0, interval), unknown(interval), busy(10.0, interval)]
    loop, _, logs = make_loop(planner, script, clock=ManualClock(step=0.001))
    summary = loop.run(max_ticks=3)
    assert summary["ticks"] == 3 == len(logs) and summary["stopped"] == "max_ticks"
    assert sum(summary["decisions"].values()) == 3
    assert summary["decisions"]["hold_no_data"] == 1
    assert summary["unknown_ticks"] == 1


def test_overrun_skips_missed_slots(make_planner: Factory) -> None:
    interval = 0.01
    clock = ManualClock()
    # the first tick takes 2.5 intervals on the loop's clock: the slots at +1 and +2 are missed
    source = ScriptedSource(
        [busy(1.0, interval)], on_window=lambda k: clock.advance(2.5 * interval) if k == 0 else None
    )
    loop = PlannerLoop(
        make_planner(interval), source, RecordingConnector(), interval, clock=clock,
        log=lambda e: None,
    )  # fmt: skip
    loop.run(max_ticks=2)
    assert loop.skipped_slots == 2


def test_interval_must_match_the_planner(make_planner: Factory) -> None:
    with pytest.raises(InputError, match="differs from the planner's interval"):
        PlannerLoop(make_planner(60.0), ScriptedSource([]), RecordingConnector(), 30.0)
    with pytest.raises(InputError, match="max_ticks"):
        PlannerLoop(make_planner(60.0), ScriptedSource([]), RecordingConnector(), 60.0).run(0)
