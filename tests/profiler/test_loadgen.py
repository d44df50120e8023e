"""The load generator against a real streaming stub server: arrivals, rate scale, duration cut,
concurrency limit, measured TTFT/ITL, error counting, an unreachable endpoint."""

from __future__ import annotations

import time

import numpy as np
import pytest

from dynamo_plan.profiler.loadgen import EndpointError, replay, run_concurrency
from tests.profiler.openai_stub import StubConfig, running_stub
from tests.servers import free_port


def _offsets(arrivals: list[float]) -> np.ndarray:
    a = np.sort(np.array(arrivals))
    return a - a[0]


@pytest.mark.parametrize("rate_scale", [1.0, 2.0])
def test_open_loop_arrivals_follow_the_trace(rate_scale: float) -> None:
    # each request lasts ~0.35 s, longer than the gaps: an open loop does not wait for them
    cfg = StubConfig(ttft_s=lambda isl: 0.3, itl_s=lambda a, c: 0.01)
    trace = [(t, 10, 5) for t in (0.0, 0.2, 0.3, 0.6, 0.8)]
    with running_stub(cfg) as stub:
        report = replay(stub.url, "stub-model", trace, rate_scale=rate_scale)
        got = _offsets(stub.arrivals)
    want = np.array([t for t, _, _ in trace]) / rate_scale
    assert report.count == report.ok == len(trace)
    assert np.max(np.abs(got - want)) < 0.05
    sent = np.array([r.sent_s for r in report.records])
    assert np.max(np.abs((sent - sent[0]) - want)) < 0.05
    assert stub.max_active >= 2


def test_duration_cuts_later_arrivals() -> None:
    trace = [(0.1 * k, 5, 2) for k in range(10)]
    with running_stub(StubConfig(ttft_s=lambda isl: 0.01)) as stub:
        report = replay(stub.url, "stub-model", trace, rate_scale=2.0, duration_s=0.22)
        arrived = len(stub.arrivals)
    # scaled arrivals 0, .05, .10, .15, .20 fall before 0.22 s
    assert report.count == arrived == 5


def test_concurrency_limit_queues_the_excess() -> None:
    cfg = StubConfig(ttft_s=lambda isl: 0.1, itl_s=lambda a, c: 0.01)
    trace = [(0.0, 5, 3)] * 6
    with running_stub(cfg) as stub:
        report = replay(stub.url, "stub-model", trace, concurrency_limit=2)
        max_active = stub.max_active
    assert report.ok == 6
    assert max_active == 2
    # all six are due at once: the first two take the slots, the other four find none
    assert [r.queued for r in report.records] == [False, False, True, True, True, True]
    assert report.queued == 4
    # two waves behind the first: waits of about one and two request durations (~0.12 s each)
    waits = sorted(r.wait_s for r in report.records)
    assert waits[:2] == [0.0, 0.0]
    assert waits[-1] > waits[2] > 0.05
    assert report.total_wait_s == pytest.approx(sum(waits))


def test_a_late_start_with_a_free_slot_is_not_queued() -> None:
    """A request that starts late because the client's event loop was busy (here: ``progress``
    blocks it for 0.2 s after the first response) is not queued: a slot was free for each of
    the 5 (limit 5), whatever the timing."""
    cfg = StubConfig(ttft_s=lambda isl: 0.001, itl_s=lambda a, c: 0.001)
    trace = [(0.05 * k, 5, 3) for k in range(5)]
    blocked: list[bool] = []

    def busy_client() -> None:
        if not blocked:
            blocked.append(True)
            time.sleep(0.2)

    with running_stub(cfg) as stub:
        report = replay(stub.url, "stub-model", trace, concurrency_limit=5, progress=busy_client)
    assert report.ok == 5
    assert report.queued == 0 and report.total_wait_s == 0.0
    assert all(not r.queued and r.wait_s == 0.0 for r in report.records)


@pytest.mark.parametrize("api", ["chat", "completions"])
def test_ttft_and_itl_match_the_server(api: str) -> None:
    cfg = StubConfig(ttft_s=lambda isl: 0.06, itl_s=lambda a, c: 0.015)
    with running_stub(cfg) as stub:
        report = run_concurrency(stub.url, "stub-model", 50, 20, 2, n_requests=4, api=api)  # type: ignore[arg-type]
        body = stub.bodies[0]
    assert report.ok == 4 and not report.errors
    assert report.ttft_ms.mean is not None and report.itl_ms.mean is not None
    assert 57 <= report.ttft_ms.mean < 60 + 25  # the server starts its clock on arrival
    assert report.itl_ms.mean == pytest.approx(15, rel=0.15)
    assert report.output_tok_s > 0
    assert all(r.output_tokens == 20 for r in report.records)
    e2e = report.e2e_ms.mean
    assert e2e is not None and e2e >= 0.97 * (60 + 19 * 15)
    # the request asks for exactly osl tokens and names its input length
    assert body["max_tokens"] == body["min_tokens"] == 20 and body["ignore_eos"] is True
    assert body["input_length"] == 50 and body["stream"] is True
    prompt = body["messages"][0]["content"] if api == "chat" else body["prompt"]
    assert len(prompt.split()) == 50


def test_errors_are_counted_by_kind() -> None:
    cfg = StubConfig(ttft_s=lambda isl: 0.01, fail=lambda i: i % 3 == 0)
    trace = [(0.01 * k, 5, 3) for k in range(9)]
    with running_stub(cfg) as stub:
        report = replay(stub.url, "stub-model", trace)
    assert report.count == 9
    assert report.errors == {"HTTP 500": 3}
    assert report.ok == 6
    failed = [r for r in report.records if not r.ok]
    assert all(r.ttft_ms is None and r.output_tokens == 0 for r in failed)


def test_unreachable_endpoint_is_an_endpoint_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(EndpointError, match="cannot reach"):
        replay(url, "m", [(0.0, 5, 5)], timeout_s=2)
