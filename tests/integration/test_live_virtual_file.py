"""Issue 5, scenarios 1 and 2: mocker + real Prometheus + load replay + ``plan run --connector
virtual --state FILE``.

1. The decision rises with load, the mocker (playing the environment) carries it out, and its
   latency falls after it has acknowledged the decision.
2. Prometheus stopped mid-run: the ticks say ``hold_no_data`` and the replicas do not move;
   restarted: decisions resume.

The load is an excerpt of the real Azure 2023 code trace (its busiest 40 s: ~19 requests/s,
~2,200 input and ~29 output tokens), heavier than one prefill engine of the H200 profile takes.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from dynamo_plan.adapters.state_file import FileStateStore
from tests.integration.harness import (
    H200,
    SLA,
    LoadRun,
    StateWatch,
    mean_ttft,
    outage,
    start_mocker,
    start_planner,
    start_prometheus_for,
    stop_all,
    ticks,
    trace_excerpt,
    wait_exit,
)
from tests.servers import free_port


def test_decision_rises_with_load_and_latency_falls_once_carried_out(
    shared_data: Path, tmp_path: Path
) -> None:
    profile = shared_data / H200
    state = tmp_path / "state.json"
    store = FileStateStore(state)
    requests = trace_excerpt(shared_data / "traces/azure2023_code_15min.csv", 860.0, 900.0)
    assert len(requests) > 400
    mocker = prometheus = planner = None
    watch = StateWatch(store).start()
    try:
        mocker = start_mocker(tmp_path / "m", profile, "--virtual-state", str(state))
        planner_port = free_port()
        prometheus = start_prometheus_for(tmp_path / "prom", mocker.port, planner_port)
        planner = start_planner(
            tmp_path / "p", profile, prometheus.url,
            "--connector", "virtual", "--state", str(state), "--interval", "5",
            "--startup-s", "5", "--max-ticks", "9", *SLA, port=planner_port,
        )  # fmt: skip
        load = LoadRun(mocker.url, requests).start()
        report = load.join(120)
        assert wait_exit(planner, 60) == 0
        log = ticks(planner)
        assert len(log) == 9
        # the decision rises with load
        first_busy = next(i for i, t in enumerate(log) if (t["observation"]["requests"] or 0) > 0)
        assert all(
            (t["decision"]["prefill"], t["decision"]["decode"]) == (1, 1) for t in log[:first_busy]
        )
        peak = max(t["decision"]["prefill"] + t["decision"]["decode"] for t in log)
        assert peak > 2, [t["decision"] for t in log]
        scale_up = next(t for t in log if t["decision"]["prefill"] + t["decision"]["decode"] > 2)
        assert scale_up["decision"]["reason"] == "scale_up"
        assert scale_up["connector"]["status"] == "applied"
        decided = scale_up["connector"]["decision_id"]
        # the environment carried it out and acknowledged it
        acked = watch.acknowledged_at(decided)
        assert acked is not None, watch.changes
        # latency before (one engine per role, the load piling up) vs after the scale-up
        load_start = load.t0
        before, n_before = mean_ttft(report, load.t0, lambda t: load_start + 1 < t < acked)
        after, n_after = mean_ttft(report, load.t0, lambda t: t > acked + 3)
        assert n_before >= 20 and n_after >= 100, (n_before, n_after)
        assert after < 0.5 * before, (before, after)
        assert report.ok == report.count
        # Prometheus scraped the planner's own metrics too
        q = httpx.get(
            f"{prometheus.url}/api/v1/query",
            params={
                "query": 'max_over_time(dynamo_planner_predicted_replicas{role="prefill"}[5m])'
            },
        ).json()
        values = [float(r["value"][1]) for r in q["data"]["result"]]
        assert values and max(values) == max(t["decision"]["prefill"] for t in log)
    finally:
        watch.stop()
        stop_all(planner, prometheus, mocker)


def test_prometheus_outage_holds_then_resumes(shared_data: Path, tmp_path: Path) -> None:
    profile = shared_data / H200
    state = tmp_path / "state.json"
    requests = trace_excerpt(shared_data / "traces/azure2023_code_15min.csv", 860.0, 900.0)
    mocker = prometheus = planner = None
    try:
        mocker = start_mocker(tmp_path / "m", profile, "--virtual-state", str(state))
        prometheus = start_prometheus_for(tmp_path / "prom", mocker.port)
        planner = start_planner(
            tmp_path / "p", profile, prometheus.url,
            "--connector", "virtual", "--state", str(state), "--interval", "3",
            "--startup-s", "3", "--max-ticks", "12", *SLA,
        )  # fmt: skip
        load = LoadRun(mocker.url, requests).start()
        stopped_at = outage(planner, prometheus, after_ticks=4, down_ticks=3)
        assert wait_exit(planner, 60) == 0
        load.join(60)
        log = ticks(planner)
        assert len(log) == 12
        down = [t for t in log[stopped_at + 1 : stopped_at + 3]]
        assert down and all(t["window"]["status"] == "unknown" for t in down)
        assert all(t["decision"]["reason"] == "hold_no_data" for t in down)
        held = {(t["decision"]["prefill"], t["decision"]["decode"]) for t in down}
        before = log[stopped_at]["decision"]
        assert held == {(before["prefill"], before["decode"])}
        assert max(t["consecutive_unknown"] for t in down) >= 2
        # after the restart the windows are known again and the planner decides on them
        resumed = [t for t in log[stopped_at + 3 :] if t["window"]["status"] != "unknown"]
        assert resumed, [t["window"] for t in log]
        assert all(t["decision"]["reason"] != "hold_no_data" for t in resumed)
        assert all(t["consecutive_unknown"] == 0 for t in resumed)
        assert resumed[-1]["observation"]["requests"] is not None
    finally:
        stop_all(planner, prometheus, mocker)
