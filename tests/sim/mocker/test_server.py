"""The mocker over HTTP: SSE and JSON answers, errors, /metrics, timing and disconnects.

Timing over HTTP is checked by causality, not by a tolerance (HTTP on loopback and the
machine's wake-up lag add anything from 1 to 25 ms, depending on the load): the server is never
early for the profile, and the client sees each token after the cluster made it, on the same
clock (the mocker runs in this process: ``loop.time()`` is ``time.monotonic()``). The cluster's
own timing is checked exactly on a virtual clock in test_cluster.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.sim.config import SimConfig
from dynamo_plan.sim.latency import DecodeLatency, PrefillLatency
from dynamo_plan.sim.mocker.cluster import MockRequest
from tests.sim.mocker.conftest import MODEL, ThreadedMocker

Mocker = Callable[..., ThreadedMocker]


def sse(client: httpx.Client, path: str, body: dict[str, Any]) -> tuple[list[Any], list[float]]:
    """POST a streaming request; the parsed data events (``[DONE]`` as a string) and the
    ``time.monotonic()`` at which each arrived."""
    events: list[Any] = []
    times: list[float] = []
    with client.stream("POST", path, json=body) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if not line:
                continue
            assert line.startswith("data: ")
            data = line[len("data: ") :]
            events.append(data if data == "[DONE]" else json.loads(data))
            times.append(time.monotonic())
    return events, times


def metrics(client: httpx.Client) -> dict[str, float]:
    """Every sample of /metrics, keyed ``name{label=value,...}`` (labels sorted)."""
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(client.get("/metrics").text):
        for s in fam.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()) if k != "le")
            if "le" not in s.labels:
                out[f"{s.name}{{{labels}}}"] = s.value
    return out


LBL = f"dynamo_namespace=dynamo,model={MODEL}"


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions"])
def test_stream_format_and_usage(mocker: Mocker, path: str) -> None:
    m = mocker(speedup=20.0)
    prompt: dict[str, Any] = (
        {"messages": [{"role": "user", "content": "one two three four"}]}
        if "chat" in path
        else {"prompt": "one two three four"}
    )
    body = {"model": MODEL, **prompt, "max_tokens": 7, "stream": True}
    with m.client() as c:
        events, _ = sse(c, path, {**body, "stream_options": {"include_usage": True}})
        assert events[-1] == "[DONE]"
        chunks, usage = events[:-2], events[-2]
        assert len(chunks) == 7
        assert usage["choices"] == [] and usage["usage"] == {
            "prompt_tokens": 4,
            "completion_tokens": 7,
            "total_tokens": 11,
        }
        assert [ch["choices"][0]["finish_reason"] for ch in chunks] == [None] * 6 + ["length"]
        assert len({ch["id"] for ch in chunks}) == 1
        plain, _ = sse(c, path, body)
        assert len(plain) == 8 and all("usage" not in e for e in plain[:-1])
        r = c.post(path, json={**body, "stream": False})
        assert r.status_code == 200
        out = r.json()
        assert out["usage"] == {"prompt_tokens": 4, "completion_tokens": 7, "total_tokens": 11}
        choice = out["choices"][0]
        text = choice["message"]["content"] if "chat" in path else choice["text"]
        assert len(text.split()) == 7


def test_models_health_and_errors(mocker: Mocker) -> None:
    m = mocker(prefill=2, decode=3)
    with m.client() as c:
        assert [d["id"] for d in c.get("/v1/models").json()["data"]] == [MODEL]
        assert c.get("/health").json()["workers"] == {"prefill": 2, "decode": 3}
        bad = [
            ("/v1/chat/completions", b"{not json"),
            ("/v1/chat/completions", json.dumps({"model": MODEL}).encode()),
            (
                "/v1/completions",
                json.dumps({"model": MODEL, "prompt": "x", "max_tokens": 0}).encode(),
            ),
        ]
        for path, content in bad:
            r = c.post(path, content=content, headers={"content-type": "application/json"})
            assert r.status_code == 400
            assert r.json()["error"]["type"] == "invalid_request_error"
        r = c.post("/v1/completions", json={"model": "nope", "prompt": "x"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
        assert metrics(c)[f"dynamo_frontend_inflight_requests{{{LBL}}}"] == 0


def test_metrics_match_requests(mocker: Mocker, profile: PerformanceProfile) -> None:
    speedup = 20.0
    m = mocker(speedup=speedup)
    reqs = [(10, 1), (50, 4), (300, 9), (1000, 3)]
    wall = 0.0  # s, the client's: every request's whole time on the server is inside it
    with m.client() as c:
        for isl, osl in reqs:
            body = {"model": MODEL, "prompt": "x", "input_length": isl, "max_tokens": osl}
            t0 = time.perf_counter()
            assert c.post("/v1/completions", json=body).status_code == 200
            wall += time.perf_counter() - t0
        got = metrics(c)
    n = len(reqs)
    h = "dynamo_frontend_{}{{" + LBL + "}}"
    assert got[h.format("input_sequence_tokens_count")] == n
    assert got[h.format("input_sequence_tokens_sum")] == sum(i for i, _ in reqs)
    assert got[h.format("output_sequence_tokens_count")] == n
    assert got[h.format("output_sequence_tokens_sum")] == sum(o for _, o in reqs)
    assert got[h.format("time_to_first_token_seconds_count")] == n
    assert got[h.format("request_duration_seconds_count")] == n
    assert got[h.format("inter_token_latency_seconds_count")] == sum(o > 1 for _, o in reqs)
    labels = [*LBL.split(","), "endpoint=completions", "request_type=unary", "status=success"]
    assert got["dynamo_frontend_requests_total{" + ",".join(sorted(labels)) + "}"] == n
    workers = {k: v for k, v in got.items() if k.startswith("dynamo_mocker_workers")}
    assert sorted(workers.values()) == [1.0, 1.0]
    # latencies are model seconds (wall x speedup): at least the profile's (a timer never fires
    # early, but for asyncio's 1 ns resolution), at most the client's wall time x speedup
    pre = PrefillLatency(profile)
    want = sum(pre.batch_s(i) for i, _ in reqs)
    ttft = got[h.format("time_to_first_token_seconds_sum")]
    duration = got[h.format("request_duration_seconds_sum")]
    assert want - 1e-6 <= ttft <= duration <= wall * speedup, (want, ttft, duration, wall)


def test_concurrency_one_follows_profile(mocker: Mocker, profile: PerformanceProfile) -> None:
    """One request at a time: the cluster takes at least the profile's TTFT and ITL, and the
    client, on the same clock, sends before the request arrives, sees the first token after it
    was made and before the last one was (tokens stream, ~170 ms apart) and the last after it."""
    m = mocker()
    cfg = SimConfig(startup_s=0.0)
    osl = 40
    pre, dec = PrefillLatency(profile), DecodeLatency(profile)
    made: list[MockRequest] = []
    submit = m.server.cluster.submit

    def recording_submit(isl: int, osl: int) -> MockRequest:  # runs on the server's loop
        made.append(submit(isl, osl))
        return made[-1]

    m.server.cluster.submit = recording_submit  # type: ignore[method-assign]
    with m.client() as c:
        c.get("/health")  # connect once: the first request should not pay for it
        for isl in (2000, 8000):
            body = {"model": MODEL, "prompt": "x", "input_length": isl, "max_tokens": osl}
            sent = time.monotonic()
            _, times = sse(c, "/v1/completions", {**body, "stream": True})
            r = made[-1]
            assert (r.isl, r.osl, r.made) == (isl, osl, osl)
            assert r.first_token is not None and r.finished is not None
            want_ttft = pre.batch_s(isl)
            want_itl = dec.step_s(isl + osl / 2, 1) + cfg.kv_transfer_s(isl) / (osl - 1)
            ttft, itl = r.first_token - r.arrival, (r.finished - r.first_token) / (osl - 1)
            assert ttft >= want_ttft - 1e-6 and itl >= want_itl - 1e-6, (isl, ttft, itl)
            client = (sent, times[0], times[osl - 1])
            assert sent <= r.arrival < r.first_token <= times[0] < r.finished <= times[osl - 1], (
                client,
                (r.arrival, r.first_token, r.finished),
            )


def test_disconnect_frees_the_slot(mocker: Mocker) -> None:
    m = mocker(config=SimConfig(startup_s=0.0, max_decode_batch=1), speedup=4.0)
    body = {"model": MODEL, "prompt": "x", "max_tokens": 100_000}
    with m.client() as c:
        with c.stream(
            "POST",
            "/v1/chat/completions",
            json={**body, "messages": [{"role": "user", "content": "hi"}], "stream": True},
        ) as r:
            lines = r.iter_lines()
            got = sum(1 for _, line in zip(range(5), lines, strict=False) if line)
            assert got >= 2
            assert m.call(m.server.cluster.decode_load)[0][0] == 1
        # non-streaming: the client gives up (timeout), the handler is cancelled
        with pytest.raises(httpx.ReadTimeout):
            c.post("/v1/completions", json=body, timeout=0.3)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and m.call(lambda: m.server.cluster.inflight):
            time.sleep(0.05)
        assert m.call(lambda: m.server.cluster.inflight) == 0
        assert m.call(m.server.cluster.decode_load) == [(0, 0.0)]
        got_metrics = metrics(c)
        assert got_metrics[f"dynamo_frontend_inflight_requests{{{LBL}}}"] == 0
        errors = sum(
            v for k, v in got_metrics.items() if "requests_total" in k and "status=error" in k
        )
        assert errors == 2
        # the freed slot serves the next request
        small = {"model": MODEL, "prompt": "x", "max_tokens": 5}
        assert (
            c.post("/v1/completions", json=small, timeout=5).json()["usage"]["completion_tokens"]
            == 5
        )


def test_advertises_kv_capacity_like_a_dynamo_frontend(
    mocker: Mocker, profile: PerformanceProfile
) -> None:
    from dynamo_plan.profiler.online import discover_max_kv_tokens
    from dynamo_plan.sim.mocker.frontend_metrics import KV_BLOCK_SIZE

    whole_blocks = profile.max_kv_tokens // KV_BLOCK_SIZE * KV_BLOCK_SIZE
    assert profile.max_kv_tokens - KV_BLOCK_SIZE < whole_blocks <= profile.max_kv_tokens
    m = mocker()
    assert discover_max_kv_tokens(m.url, MODEL) == whole_blocks
    with m.client() as c:
        (entry,) = c.get("/v1/models").json()["data"]
        text = c.get("/metrics").text
    assert entry["max_kv_tokens"] == whole_blocks
    gauges = {
        s.name: s
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name.startswith("dynamo_frontend_model_")
    }
    blocks = gauges["dynamo_frontend_model_total_kv_blocks"]
    size = gauges["dynamo_frontend_model_kv_cache_block_size"]
    assert blocks.labels == size.labels == {"model": MODEL, "dynamo_namespace": "dynamo"}
    assert size.value == KV_BLOCK_SIZE and blocks.value * size.value == whole_blocks
