"""Issue 5, scenario 3: the decision flow through a real etcd (v3 HTTP/JSON gateway); etcd
stopped mid-run: the planner reports the connector error and keeps ticking; etcd back: it
catches up, with no lost and no duplicated ``decision_id``.

The planner writes ``v1/<namespace>/planner/{decision_id,num_prefill_workers,
num_decode_workers}``; the mocker follows them and writes ``scaled_decision_id``. Independent
check of "no lost, no duplicate": etcd's own ``version`` of the ``decision_id`` key (one per
write) equals the number of decisions the planner logged as written, and those ids are 0..n-1.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path

import httpx

from tests.integration.harness import (
    H200,
    NAMESPACE,
    SLA,
    LoadRun,
    outage,
    start_mocker,
    start_planner,
    start_prometheus_for,
    stop_all,
    ticks,
    trace_excerpt,
    wait_exit,
)
from tests.servers import ServerProcess, start_etcd


def _key(etcd: ServerProcess, field: str) -> tuple[int, int] | None:
    """(value, version) of one planner key, or None when absent."""
    key = base64.b64encode(f"v1/{NAMESPACE}/planner/{field}".encode()).decode()
    body = httpx.post(f"{etcd.url}/v3/kv/range", json={"key": key}, timeout=5).json()
    kvs = body.get("kvs") or []
    if not kvs:
        return None
    return int(base64.b64decode(kvs[0]["value"])), int(kvs[0]["version"])


def test_decisions_through_etcd_survive_an_etcd_outage(shared_data: Path, tmp_path: Path) -> None:
    profile = shared_data / H200
    requests = trace_excerpt(shared_data / "traces/azure2023_code_15min.csv", 860.0, 880.0)
    etcd = mocker = prometheus = planner = None
    try:
        etcd = start_etcd(tmp_path / "etcd", max_lifetime_s=180)
        mocker = start_mocker(
            tmp_path / "m", profile, "--etcd", etcd.url, "--etcd-namespace", NAMESPACE
        )
        prometheus = start_prometheus_for(tmp_path / "prom", mocker.port)
        planner = start_planner(
            tmp_path / "p", profile, prometheus.url,
            "--connector", "virtual", "--etcd", etcd.url, "--interval", "3", "--startup-s", "3",
            "--scale-down-patience", "1", "--max-ticks", "13", *SLA,
        )  # fmt: skip
        load = LoadRun(mocker.url, requests).start()
        outage(planner, etcd, after_ticks=4, down_ticks=2)
        assert wait_exit(planner, 90) == 0
        load.join(60)
        log = ticks(planner)
        assert len(log) == 13  # it kept ticking through the outage
        errors = [t for t in log if t["connector"]["status"] == "error"]
        assert len(errors) >= 2, [t["connector"] for t in log]
        assert all("etcd" in t["connector"]["error"] or etcd.url in t["connector"]["error"]
                   for t in errors)  # fmt: skip
        written = [
            t["connector"]["decision_id"]
            for t in log
            if t["connector"]["status"] in ("applied", "forced")
        ]
        assert written == list(range(len(written))), written
        # a decision was written after etcd came back (the scale-down once the load ended)
        last_error = max(i for i, t in enumerate(log) if t["connector"]["status"] == "error")
        assert any(
            t["connector"]["status"] in ("applied", "forced") for t in log[last_error + 1 :]
        ), [(t["decision"], t["connector"]) for t in log]
        decision = _key(etcd, "decision_id")
        assert decision is not None
        value, version = decision
        assert (value, version) == (written[-1], len(written))
        # the environment (the mocker) carried out the last decision
        deadline = time.monotonic() + 15
        scaled = _key(etcd, "scaled_decision_id")
        while (scaled is None or scaled[0] < value) and time.monotonic() < deadline:
            time.sleep(0.2)
            scaled = _key(etcd, "scaled_decision_id")
        assert scaled is not None and scaled[0] == value
        assert _key(etcd, "num_prefill_workers")[0] == log[-1]["decision"]["prefill"]  # type: ignore[index]
    finally:
        stop_all(planner, prometheus, mocker, etcd)
