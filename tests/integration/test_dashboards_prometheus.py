"""Issue 14, item 6: every query of both planner dashboards returns data from a running
``plan run``.

A real Prometheus scrapes the mocker (the frontend) and ``plan run`` (``--connector none``) every
second while the load generator replays a short trace excerpt. Then every PromQL expression of
Dynamo 1.5.0's planner dashboard (tests/data/dynamo/1.5.0/observability, the contract) and of
this project's dashboard (templates/grafana) is evaluated over the run as Grafana would (a range
query, the dashboard variables substituted: ``$namespace`` = the planner's ``namespace`` label,
``$instance`` = all, ``$__rate_interval`` = 4 scrapes, ``$__range`` = the run) and must return at
least one series with a finite value.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.harness import (
    H200,
    NAMESPACE,
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
from tests.test_grafana_dashboard import _dashboard, _panels, dynamo_dashboard

TICKS = 6
INTERVAL_S = 2


def substitute(expr: str, namespace: str, range_s: int) -> str:
    """The expression as Grafana sends it: template variables replaced."""
    values = {
        "namespace": re.escape(namespace),
        "instance": ".*",
        "__rate_interval": "4s",
        "__interval": "1s",
        "__range": f"{range_s}s",
    }

    def one(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        assert name in values, f"unknown variable ${name} in {expr!r}"
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", one, expr)


def queries(dash: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for p in _panels(dash["panels"]):
        for t in p.get("targets", []):
            yield p["title"], t["expr"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[dict[str, Any]]:
    """A finished ``plan run`` of :data:`TICKS` ticks under load, Prometheus still up."""
    tmp = tmp_path_factory.mktemp("dash")
    profile = shared_data / H200
    requests = trace_excerpt(shared_data / "traces/azure2023_code_15min.csv", 860.0, 868.0)
    mocker = prometheus = planner = None
    try:
        mocker = start_mocker(tmp / "m", profile)
        planner_port = free_port()
        prometheus = start_prometheus_for(tmp / "prom", mocker.port, planner_port)
        t0 = time.time()
        planner = start_planner(
            tmp / "p", profile, prometheus.url, "--connector", "none",
            "--interval", str(INTERVAL_S), "--max-ticks", str(TICKS), *SLA, port=planner_port,
        )  # fmt: skip
        load = LoadRun(mocker.url, requests).start()
        assert wait_exit(planner, 90) == 0, planner.log_path.read_text()[-2000:]
        load.join(60)
        time.sleep(2.0)  # the final scrape of the metrics the planner served before exiting
        yield {"prometheus": prometheus.url, "start": t0, "end": time.time(), "log": ticks(planner)}
    finally:
        stop_all(planner, prometheus, mocker)


def query_range(run: dict[str, Any], expr: str) -> list[dict[str, Any]]:
    r = httpx.get(
        f"{run['prometheus']}/api/v1/query_range",
        params={"query": expr, "start": run["start"], "end": run["end"], "step": "1s"},
        timeout=10.0,
    )
    body = r.json()
    assert r.status_code == 200 and body["status"] == "success", (expr, body)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def finite_points(series: list[dict[str, Any]]) -> int:
    return sum(1 for s in series for _, v in s["values"] if math.isfinite(float(v)))


def test_the_run_saw_load(run: dict[str, Any]) -> None:
    log = run["log"]
    assert len(log) == TICKS
    assert any((t["observation"]["requests"] or 0) > 0 for t in log), log


def test_every_query_of_dynamos_dashboard_returns_data(run: dict[str, Any]) -> None:
    dash = dynamo_dashboard()
    range_s = int(run["end"] - run["start"]) + 1
    checked = 0
    for title, expr in queries(dash):
        series = query_range(run, substitute(expr, NAMESPACE, range_s))
        assert series, f"{title!r}: no data for {expr!r}"
        assert finite_points(series), f"{title!r}: only NaN for {expr!r}"
        for s in series:  # Dynamo's dashboard selects on the namespace label the planner sets
            assert s["metric"]["namespace"] == NAMESPACE, s["metric"]
        checked += 1
    assert checked >= 17
    # and the Namespace variable lists the planner's namespace
    (var,) = [v for v in dash["templating"]["list"] if v["name"] == "namespace"]
    metric = re.fullmatch(r"label_values\((\w+), namespace\)", var["query"])
    assert metric is not None
    r = httpx.get(f"{run['prometheus']}/api/v1/label/namespace/values",
                  params={"match[]": metric.group(1)}, timeout=10.0)  # fmt: skip
    assert r.json()["data"] == [NAMESPACE]


def test_every_query_of_our_dashboard_returns_data(run: dict[str, Any]) -> None:
    range_s = int(run["end"] - run["start"]) + 1
    checked = 0
    for title, expr in queries(_dashboard()):
        series = query_range(run, substitute(expr, NAMESPACE, range_s))
        assert series, f"{title!r}: no data for {expr!r}"
        assert finite_points(series), f"{title!r}: only NaN for {expr!r}"
        checked += 1
    assert checked >= 20
    # a selector on another namespace selects nothing: the variable really filters
    (title, expr) = next(queries(_dashboard()))
    assert query_range(run, substitute(expr, "elsewhere", range_s)) == [], title
