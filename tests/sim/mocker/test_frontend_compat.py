"""Issue 14, item 7: the mocker as a drop-in frontend for Dynamo's 0.6–1.x planners.

* every frontend metric those planners query is on /metrics (names and labels as Dynamo's):
  the histograms and ``requests_total`` (0.6+), ``requests_started_total`` (1.x's offered load;
  its absence made the 1.x planner warn and fall back at every tick) and the per-worker gauges
  the 1.x load-based planner reads from the frontend;
* ``n > 1`` answers ``n`` choices (unary and streamed);
* a request without ``max_tokens`` makes ``default_osl`` tokens, not 16.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dynamo_plan.sim.mocker.cluster import MockRequest
from tests.sim.mocker.conftest import MODEL, ThreadedMocker
from tests.sim.mocker.test_server import LBL, metrics, sse

Mocker = Callable[..., ThreadedMocker]

#: What Dynamo's planners query of the frontend (dynamo_frontend_*): 0.6 … 1.x.
PLANNER_HISTOGRAMS = (
    "time_to_first_token_seconds", "inter_token_latency_seconds", "input_sequence_tokens",
    "output_sequence_tokens", "request_duration_seconds",
)  # fmt: skip
PLANNER_COUNTERS = ("requests_total", "requests_started_total")
#: Dynamo 1.x's per-worker gauges (labels worker_id, dp_rank, worker_type).
WORKER_GAUGES = (
    "worker_active_prefill_tokens", "worker_active_decode_blocks",
    "worker_last_time_to_first_token_seconds", "worker_last_input_sequence_tokens",
    "worker_last_inter_token_latency_seconds",
)  # fmt: skip


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (s.name, s.labels, s.value)
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    ]


def test_every_metric_the_planners_query_is_served(mocker: Mocker) -> None:
    m = mocker(speedup=20.0)
    with m.client() as c:
        body = {"model": MODEL, "prompt": "x", "input_length": 200, "max_tokens": 5}
        assert c.post("/v1/completions", json=body).status_code == 200
        text = c.get("/metrics").text
    got = samples(text)
    names = {n for n, _, _ in got}
    for h in PLANNER_HISTOGRAMS:
        for suffix in ("_sum", "_count", "_bucket"):
            assert f"dynamo_frontend_{h}{suffix}" in names, h
    for name in PLANNER_COUNTERS:
        series = [(lb, v) for n, lb, v in got if n == f"dynamo_frontend_{name}"]
        assert series, name
        # the planners select on model and dynamo_namespace
        assert all(lb["model"] == MODEL and lb["dynamo_namespace"] == "dynamo" for lb, _ in series)
    started = sum(v for n, _, v in got if n == "dynamo_frontend_requests_started_total")
    assert started == 1
    for g in WORKER_GAUGES:
        series = [lb for n, lb, _ in got if n == f"dynamo_frontend_{g}"]
        assert series, g
        assert all(set(lb) == {"worker_id", "dp_rank", "worker_type"} for lb in series), series
    by = {(n, lb["worker_type"]): v for n, lb, v in got if n.startswith("dynamo_frontend_worker_")}
    assert by[("dynamo_frontend_worker_last_input_sequence_tokens", "prefill")] == 200
    assert by[("dynamo_frontend_worker_last_time_to_first_token_seconds", "prefill")] > 0
    assert by[("dynamo_frontend_worker_last_inter_token_latency_seconds", "decode")] > 0
    assert by[("dynamo_frontend_worker_active_decode_blocks", "decode")] == 0  # all finished
    assert by[("dynamo_frontend_worker_active_prefill_tokens", "prefill")] == 0


def test_started_and_queued_count_requests_before_their_first_token(mocker: Mocker) -> None:
    m = mocker(decode=1, prefill=1)
    cluster = m.server.cluster
    held: list[MockRequest] = []

    def queued() -> None:  # on the server's loop: requests waiting for prefill
        held.append(cluster.submit(100_000, 4))  # seconds of prefill
        held.append(cluster.submit(3000, 4))

    m.call(queued)
    with m.client() as c:
        got = metrics(c)
        workers = samples(c.get("/metrics").text)
    # requests submitted straight to the cluster are not the frontend's: 0 started
    assert got["dynamo_frontend_queued_requests{" + LBL + "}"] == 0
    started = [v for k, v in got.items() if k.startswith("dynamo_frontend_requests_started_total")]
    assert len(started) == 4 and sum(started) == 0  # every endpoint × request type, at 0
    # in the prefill batch or queued: the only prefill engine's active prefill tokens count both
    (active,) = [v for n, lb, v in workers if n == "dynamo_frontend_worker_active_prefill_tokens"
                 and lb["worker_type"] == "prefill"]  # fmt: skip
    assert active == 103_000
    for r in held:
        m.call(r.cancel)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions"])
def test_n_choices(mocker: Mocker, path: str, stream: bool) -> None:
    m = mocker(speedup=20.0)
    prompt: dict[str, Any] = (
        {"messages": [{"role": "user", "content": "a b c"}]}
        if "chat" in path
        else {"prompt": "a b c"}
    )
    body = {"model": MODEL, **prompt, "max_tokens": 4, "n": 3, "stream": stream}
    with m.client() as c:
        if stream:
            events, _ = sse(c, path, {**body, "stream_options": {"include_usage": True}})
            assert events[-1] == "[DONE]"
            chunks, usage = events[:-2], events[-2]
            per_choice: dict[int, list[Any]] = {}
            for ch in chunks:
                (choice,) = ch["choices"]
                per_choice.setdefault(choice["index"], []).append(choice["finish_reason"])
            assert sorted(per_choice) == [0, 1, 2]
            assert all(f == [None, None, None, "length"] for f in per_choice.values())
            assert usage["usage"]["completion_tokens"] == 12
        else:
            r = c.post(path, json=body)
            assert r.status_code == 200
            doc = r.json()
            assert [ch["index"] for ch in doc["choices"]] == [0, 1, 2]
            assert doc["usage"] == {"prompt_tokens": 3, "completion_tokens": 12, "total_tokens": 15}
        got = metrics(c)
    h = "dynamo_frontend_{}{{" + LBL + "}}"
    assert got[h.format("output_sequence_tokens_count")] == 1  # one request …
    assert got[h.format("output_sequence_tokens_sum")] == 12  # … of n × osl tokens
    assert got[h.format("inter_token_latency_seconds_count")] == 1
    assert got[h.format("queued_requests")] == 0
    assert got[h.format("inflight_requests")] == 0
    assert m.server.cluster.inflight == 0


def test_without_max_tokens_the_default_osl(mocker: Mocker) -> None:
    m = mocker(speedup=50.0, default_osl=37)
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    with m.client() as c:
        doc = c.post("/v1/chat/completions", json=body).json()
        got = metrics(c)
    assert doc["usage"]["completion_tokens"] == 37
    assert got["dynamo_frontend_output_sequence_tokens_sum{" + LBL + "}"] == 37


def test_default_osl_must_be_positive(mocker: Mocker) -> None:
    with pytest.raises(ValueError, match="default_osl"):
        mocker(default_osl=0)
