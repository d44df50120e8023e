"""``dynamo-plan load replay`` against a real streaming stub server."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from tests.conftest import run_cli
from tests.profiler.openai_stub import StubConfig, running_stub
from tests.servers import free_port


def _trace(path: Path, n: int, gap_ms: float = 50.0) -> Path:
    lines = [
        json.dumps({"timestamp": 1000 + k * gap_ms, "input_length": 20 + k, "output_length": 4})
        for k in range(n)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_replay_json_and_csv(tmp_path: Path) -> None:
    trace = _trace(tmp_path / "t.jsonl", 6)
    csv = tmp_path / "req.csv"
    cfg = StubConfig(ttft_s=lambda isl: 0.03, itl_s=lambda a, c: 0.01, fail=lambda i: i == 2)
    with running_stub(cfg) as stub:
        result = run_cli(
            "load",
            "replay",
            trace,
            "--url",
            stub.url,
            "--rate-scale",
            "2",
            "--csv",
            csv,
            "-o",
            "json",
        )
        models = {b["model"] for b in stub.bodies}
        isls = sorted(int(b["input_length"]) for b in stub.bodies)
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert doc["count"] == 6 and doc["ok"] == 5 and doc["errors"] == {"HTTP 500": 1}
    assert models == {"stub-model"}  # the default model is the first of /v1/models
    assert isls == list(range(20, 26))
    assert doc["ttft_ms"]["mean"] >= 28
    assert set(doc["itl_ms"]) == {"mean", "p50", "p90", "p99"}
    rows = pd.read_csv(csv)
    assert len(rows) == 6
    assert rows["error"].notna().sum() == 1
    assert "1 of 6 requests failed" in result.stderr


def test_duration_and_table(tmp_path: Path) -> None:
    trace = _trace(tmp_path / "t.jsonl", 10, gap_ms=100)
    with running_stub(StubConfig(ttft_s=lambda isl: 0.01)) as stub:
        result = run_cli(
            "load",
            "replay",
            trace,
            "--url",
            stub.url + "/v1",
            "--model",
            "stub-model",
            "--duration",
            "0.35",
            "--concurrency-limit",
            "1",
        )
        sent = len(stub.arrivals)
    assert result.exit_code == 0, result.stderr
    assert sent == 4
    assert "TTFT" in result.stdout and "achieved req/s" in result.stdout


def test_unreachable_url_exits_3_with_one_line(tmp_path: Path) -> None:
    trace = _trace(tmp_path / "t.jsonl", 2)
    url = f"http://127.0.0.1:{free_port()}"
    result = run_cli("load", "replay", trace, "--url", url, "--model", "m", "-o", "json")
    assert result.exit_code == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach" in lines[0] and url in lines[0]
    assert result.stdout == ""


def test_url_that_is_not_a_url_exits_1_with_one_line(tmp_path: Path) -> None:
    """Bad input (1), not an endpoint that failed (3); checked before anything is sent."""
    trace = _trace(tmp_path / "t.jsonl", 2)
    for url in ("not a url", "127.0.0.1:8000", "http://"):
        result = run_cli("load", "replay", trace, "--url", url, "-o", "json")
        assert result.exit_code == 1, url
        assert result.stderr == (
            f"error: --url must be an http(s)://host[:port] URL, e.g. http://127.0.0.1:8000, "
            f"got {url!r}\n"
        )
        assert result.stdout == ""


def test_bad_settings_exit_1_before_the_endpoint_is_asked(tmp_path: Path) -> None:
    """They exited 3 (the endpoint was probed first and could not be reached)."""
    trace = _trace(tmp_path / "t.jsonl", 2)
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens: reaching it would be exit 3
    for flag, value, message in [
        ("--rate-scale", "0", "--rate-scale must be a positive number"),
        ("--concurrency-limit", "0", "--concurrency-limit must be >= 1"),
        ("--timeout", "0", "--timeout must be > 0 s"),
    ]:
        result = run_cli("load", "replay", trace, "--url", url, flag, value, "-o", "json")
        assert result.exit_code == 1, (flag, result.stderr)
        assert result.stderr.startswith(f"error: {message}")
        assert result.stderr.count("\n") == 1 and result.stdout == ""


def test_rate_series_is_refused(tmp_path: Path) -> None:
    series = tmp_path / "r.csv"
    series.write_text("timestamp,requests\n0,3\n60,4\n")
    result = run_cli("load", "replay", series, "--url", "http://127.0.0.1:9", "--model", "m")
    assert result.exit_code == 1
    assert "rate series" in result.stderr
