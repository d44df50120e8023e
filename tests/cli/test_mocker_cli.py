"""``dynamo-plan mocker serve``: flag validation in-process; a real server as a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO_ROOT, run_cli
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


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--prefill-replicas", "0"], "--prefill-replicas must be >= 1"),
        (["--decode-replicas", "0"], "--decode-replicas must be >= 1"),
        (["--virtual-state", "{tmp}"], "refusing to write over"),
        (["--virtual-state", "{tmp}/absent/state.json"], "does not exist"),
    ],
    ids=["no-prefill", "no-decode", "state-is-a-directory", "state-folder-missing"],
)
def test_settings_that_cannot_serve_are_refused_before_serving(
    shared_data: Path, tmp_path: Path, extra: list[str], message: str
) -> None:
    """Issue 11: these used to start serving (and never answer, or never follow the planner).
    A subprocess with a time limit: before the fix the command would serve until killed."""
    argv = _argv(shared_data, free_port(), *(x.format(tmp=tmp_path) for x in extra))
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout == ""
    assert done.stderr.startswith("error: ") and message in done.stderr
    assert done.stderr.strip().count("\n") == 0


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({"parallelism": {"decode": {"gpus_per_engine": "x"}}}, "gpus_per_engine' must be"),
        ({"parallelism": {"decode": {"gpus_per_engine": 0}}}, "gpus_per_engine' must be"),
        ({"parallelism": {"prefill": {"gpus_per_engine": -4}}}, "gpus_per_engine' must be"),
        ({"parallelism": {"prefill": {"gpus_per_engine": 10**30}}}, "gpus_per_engine' must be"),
        ({"sla": {"ttft": "fast"}}, "'sla.ttft' must be a number"),
        ({"parallelism": "tp4"}, "'parallelism' must be an object"),
    ],
    ids=["gpus-x", "gpus-0", "gpus-negative", "gpus-10^30", "ttft-fast", "parallelism-string"],
)
def test_corrupt_profile_json_is_refused_before_serving(
    shared_data: Path, tmp_path: Path, meta: dict[str, object], message: str
) -> None:
    """Issue 11: ``mocker serve`` ignored profile.json and served forever where plan decide,
    simulate and generate-dgd refuse it (exit 1). A subprocess with a time limit: before the fix
    it would serve until killed (TimeoutExpired)."""
    import json
    import shutil

    profile = tmp_path / "prof"
    shutil.copytree(shared_data / PROFILE, profile)
    (profile / "profile.json").write_text(json.dumps({"model": "m", **meta}), encoding="utf-8")
    argv = [sys.executable, "-m", "dynamo_plan", "mocker", "serve", "--profile", str(profile),
            "--port", str(free_port())]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=REPO_ROOT)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {profile / 'profile.json'}: ") and message in line, line


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
