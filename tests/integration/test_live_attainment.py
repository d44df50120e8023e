"""``plan run --sla-attainment`` end to end: a real Prometheus scrapes the mocker (the frontend,
whose ISL/OSL histograms carry the request shapes) while the load generator replays a trace
excerpt; the planner's decisions are sized by replaying samples drawn from those histograms."""

from __future__ import annotations

from pathlib import Path

from tests.integration.harness import (
    H200,
    SLA,
    LoadRun,
    start_mocker,
    start_planner,
    start_prometheus_for,
    stop_all,
    ticks,
    trace_excerpt,
    wait_exit,
)
from tests.servers import free_port

TICKS = 6
INTERVAL_S = 2


def test_plan_run_sizes_from_the_frontends_token_histograms(
    tmp_path: Path, shared_data: Path
) -> None:
    profile = shared_data / H200
    requests = trace_excerpt(shared_data / "traces/azure2023_code_15min.csv", 860.0, 868.0)
    mocker = prometheus = planner = None
    try:
        mocker = start_mocker(tmp_path / "m", profile)
        planner_port = free_port()
        prometheus = start_prometheus_for(tmp_path / "prom", mocker.port, planner_port)
        planner = start_planner(
            tmp_path / "p", profile, prometheus.url, "--connector", "none",
            "--interval", str(INTERVAL_S), "--max-ticks", str(TICKS), *SLA,
            "--sla-attainment", "0.99", port=planner_port,
        )  # fmt: skip
        load = LoadRun(mocker.url, requests).start()
        assert wait_exit(planner, 90) == 0, planner.log_path.read_text()[-2000:]
        load.join(60)
        log = ticks(planner)
        text = planner.log_path.read_text()
    finally:
        stop_all(planner, prometheus, mocker)
    assert "sizing for SLA attainment 0.99" in text
    assert len(log) == TICKS
    sized = [
        n
        for t in log
        for n in t["decision"]["notes"]
        if n.startswith("attainment 0.99: a sample of")
    ]
    assert sized, [t["decision"] for t in log]
    measured = [n for n in sized if f"frontend histograms of the last {5 * INTERVAL_S} s" in n]
    assert measured, sized  # the shapes came from Prometheus, not only the SLA-shape prior
    # each sized decision is the sample's size, or above it while hysteresis holds a scale-down
    matched = 0
    for t in log:
        for n in t["decision"]["notes"]:
            if n.startswith("attainment 0.99: a sample of"):
                p, d = (int(x) for x in n.split(" at ")[1].split("D")[0].split("P/"))
                got = (t["decision"]["prefill"], t["decision"]["decode"])
                assert got[0] >= p and got[1] >= d, (got, n)
                matched += got == (p, d)
    assert matched, sized
