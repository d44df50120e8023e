"""The live loop end to end, with real servers only: the mocker (a subprocess serving
OpenAI-compatible HTTP and ``/metrics``), a real Prometheus scraping it and the planner every
second, a real etcd where asked, ``plan run`` as a subprocess, and load from the load generator.

Every process listens on 127.0.0.1 on a free port and stops by itself (tests/servers.py).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dynamo_plan.adapters.virtual_state import StateStore, VirtualState
from dynamo_plan.profiler.loadgen import LoadReport, replay
from dynamo_plan.trace import load_trace
from tests.servers import ServerProcess, free_port, start_process, start_prometheus

H200 = "profiles/h200_llama3.1-8b-fp8_tp1p_tp1d"
MODEL = "llama-test"
NAMESPACE = "itest"
CLI = [sys.executable, "-m", "dynamo_plan"]
#: The SLA and budget every live test plans for.
SLA = ["--ttft", "200", "--itl", "50", "--isl", "2000", "--osl", "30", "--max-gpu-budget", "8"]


def stop_all(*servers: ServerProcess | None) -> None:
    """Stop every server that was started (``None``: never started)."""
    for s in servers:
        if s is not None:
            s.stop()


def trace_excerpt(path: Path, start_s: float, end_s: float) -> list[tuple[float, int, int]]:
    """Requests of ``path`` arriving in ``[start_s, end_s)`` (s from its first request), as
    ``(arrival_s from the excerpt's start, isl, osl)``."""
    trace = load_trace([path])
    ts = (trace.timestamp_ms - trace.timestamp_ms[0]) / 1000.0
    return [
        (float(t - start_s), max(1, int(i)), max(1, int(o)))
        for t, i, o in zip(ts, trace.input_length, trace.output_length, strict=True)
        if start_s <= t < end_s
    ]


def start_mocker(
    workdir: Path, profile: Path, *follow: str, startup_s: float = 1.0
) -> ServerProcess:
    """``dynamo-plan mocker serve`` following the virtual state (``--virtual-state F`` or
    ``--etcd URL --etcd-namespace NS``)."""
    port = free_port()
    argv = [
        *CLI, "mocker", "serve", "--profile", str(profile), "--port", str(port),
        "--model", MODEL, "--namespace", NAMESPACE, "--startup-s", str(startup_s), *follow,
    ]  # fmt: skip
    return start_process("mocker", argv, port, workdir, max_lifetime_s=180)


def start_planner(
    workdir: Path, profile: Path, prometheus: str, *args: str, port: int | None = None
) -> ServerProcess:
    """``dynamo-plan plan run`` with its ``/metrics`` on ``port`` (ready once that answers);
    ``args`` add the connector, interval, SLA and tick count."""
    port = port or free_port()
    argv = [
        *CLI, "plan", "run", "--profile", str(profile), "--prometheus-url", prometheus,
        "--model", MODEL, "--namespace", NAMESPACE, "--metrics-port", str(port), "-o", "json",
        *args,
    ]  # fmt: skip
    return start_process(
        "planner", argv, port, workdir, ready_path="/metrics", max_lifetime_s=180, timeout_s=60
    )


def start_prometheus_for(workdir: Path, *ports: int) -> ServerProcess:
    """A real Prometheus scraping ``127.0.0.1:<port>/metrics`` of each port every second."""
    return start_prometheus(workdir, [f"127.0.0.1:{p}" for p in ports], 1.0, 180)


def ticks(planner: ServerProcess) -> list[dict[str, Any]]:
    """The planner's structured log: one JSON object per tick."""
    out = []
    for line in planner.log_path.read_text(errors="replace").splitlines():
        if line.startswith('{"t":'):
            out.append(json.loads(line))
    return out


def wait_ticks(planner: ServerProcess, n: int, timeout_s: float) -> list[dict[str, Any]]:
    """Wait until the planner has logged ``n`` ticks (or exited); returns them."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = ticks(planner)
        if len(got) >= n or not planner.running:
            return got
        time.sleep(0.2)
    return ticks(planner)


def outage(planner: ServerProcess, server: ServerProcess, after_ticks: int, down_ticks: int) -> int:
    """Stop ``server`` once the planner has logged ``after_ticks`` ticks, start it again after
    ``down_ticks`` more; returns how many ticks were logged when it stopped."""
    wait_ticks(planner, after_ticks, 30)
    server.stop()
    stopped_at = len(ticks(planner))
    wait_ticks(planner, stopped_at + down_ticks, 30)
    server.start()
    return stopped_at


def wait_exit(planner: ServerProcess, timeout_s: float) -> int:
    assert planner.proc is not None
    return planner.proc.wait(timeout=timeout_s)


@dataclass
class StateWatch:
    """Polls a virtual state store in a thread; ``changes`` = (monotonic time, state) on every
    change, read errors counted."""

    store: StateStore
    poll_s: float = 0.1
    changes: list[tuple[float, VirtualState]] = field(default_factory=list)
    errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> StateWatch:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        last: VirtualState | None = None
        while not self._stop.is_set():
            try:
                state = self.store.read()
            except Exception:
                self.errors += 1
                state = last
            if state is not None and state != last:
                self.changes.append((time.monotonic(), state))
                last = state
            self._stop.wait(self.poll_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def acknowledged_at(self, decision_id: int) -> float | None:
        """When the environment first acknowledged ``decision_id`` (monotonic s), or None."""
        for t, s in self.changes:
            if s.scaled_decision_id >= decision_id:
                return t
        return None


@dataclass
class LoadRun:
    """The load generator in a thread; ``t0`` = monotonic time its clock started."""

    url: str
    requests: list[tuple[float, int, int]]
    rate_scale: float = 1.0
    report: LoadReport | None = None
    error: BaseException | None = None
    t0: float = 0.0
    _thread: threading.Thread | None = None

    def start(self) -> LoadRun:
        def run() -> None:
            try:
                self.t0 = time.monotonic()
                self.report = replay(self.url, MODEL, self.requests, rate_scale=self.rate_scale)
            except BaseException as e:  # surfaced by join()
                self.error = e

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        return self

    def join(self, timeout_s: float) -> LoadReport:
        assert self._thread is not None
        self._thread.join(timeout_s)
        if self.error is not None:
            raise self.error
        assert self.report is not None, "load generator did not finish"
        return self.report


def mean_ttft(report: LoadReport, t0: float, keep: Callable[[float], bool]) -> tuple[float, int]:
    """Mean TTFT (ms) of the successful requests whose send time (monotonic) passes ``keep``."""
    vals = [
        r.ttft_ms for r in report.records if r.ok and r.ttft_ms is not None and keep(t0 + r.sent_s)
    ]
    return (sum(vals) / len(vals) if vals else float("nan")), len(vals)
