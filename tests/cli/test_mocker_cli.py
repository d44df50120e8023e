"""``dynamo-plan mocker serve``: flag validation in-process; a real server as a subprocess."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import run_cli
from tests.servers import free_port, start_process

PROFILE = Path("profiles") / "h200_llama3.1-8b-fp8_tp1p_tp1d"


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        (["--virtual-state", "s.json", "--etcd", "http://127.0.0.1:1"], 2),
        (["--virtual-state", "s.json", "--prefill-replicas", "2"], 2),
        (["--etcd", "http://127.0.0.1:1", "--decode-replicas", "2"], 2),
        (["--speedup", "0"], 1),
        (["--prefill-replicas", "-1"], 1),
        (["--port", "70000"], 1),
    ],
)
def test_contradictory_or_invalid_flags(shared_data: Path, extra: list[str], code: int) -> None:
    r = run_cli("mocker", "serve", "--profile", shared_data / PROFILE, *extra)
    assert r.exit_code == code
    assert "error" in r.stderr


def test_missing_profile(tmp_path: Path) -> None:
    r = run_cli("mocker", "serve", "--profile", tmp_path / "nope")
    assert r.exit_code == 1 and "nope" in r.stderr


def _argv(shared_data: Path, port: int, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "dynamo_plan", "mocker", "serve",
        "--profile", str(shared_data / PROFILE), "--port", str(port), *extra,
    ]  # fmt: skip


def test_serves_and_stops_on_sigterm(shared_data: Path, tmp_path: Path) -> None:
    port = free_port()
    server = start_process(
        "mocker", _argv(shared_data, port, "--model", "m1", "--speedup", "10"), port, tmp_path,
        max_lifetime_s=60,
    )  # fmt: skip
    try:
        body = {"model": "m1", "messages": [{"role": "user", "content": "a b"}], "max_tokens": 4}
        r = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=10)
        assert r.json()["usage"] == {"prompt_tokens": 2, "completion_tokens": 4, "total_tokens": 6}
        assert "dynamo_frontend_requests_total" in httpx.get(f"{server.url}/metrics").text
        assert server.proc is not None
        # signal the mocker itself (the child of the timeout(1) wrapper, which then exits
        # with the mocker's status)
        wrapper = server.proc.pid
        children = Path(f"/proc/{wrapper}/task/{wrapper}/children").read_text().split()
        assert len(children) == 1
        os.kill(int(children[0]), signal.SIGTERM)
        assert server.proc.wait(timeout=10) == 0
    finally:
        server.stop()
    log = (tmp_path / "mocker.log").read_text()
    assert f"at http://127.0.0.1:{port}" in log
    assert "Traceback" not in log


def test_follows_virtual_state_file(shared_data: Path, tmp_path: Path) -> None:
    from dynamo_plan.connectors.virtual_store import make_store

    state = tmp_path / "state.json"
    store = make_store(state, None)
    port = free_port()
    server = start_process(
        "mocker",
        _argv(shared_data, port, "--virtual-state", str(state), "--startup-s", "0.3"),
        port,
        tmp_path,
        max_lifetime_s=60,
    )
    try:
        store.write_decision(0, 2, 3)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            s = store.read()
            if s is not None and s.acknowledged:
                break
            time.sleep(0.05)
        assert s is not None and s.scaled_decision_id == 0
        health = httpx.get(f"{server.url}/health").json()
        assert health["workers"] == {"prefill": 2, "decode": 3}
    finally:
        server.stop()
