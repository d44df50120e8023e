"""The load generator against a real streaming stub server: duration cut, concurrency limit,
error counting, an unreachable endpoint; and on a virtual clock, where what it measures must be
exactly what the stub did (tests/profiler/virtual_stub.py): arrivals, rate scale, TTFT/ITL."""

from __future__ import annotations

import time

import pytest

from dynamo_plan.profiler.loadgen import EndpointError, replay, run_concurrency
from tests.profiler.openai_stub import StubConfig, running_stub
from tests.profiler.virtual_stub import URL, VirtualStub, virtual_endpoint
from tests.servers import free_port


@pytest.mark.parametrize("rate_scale", [1.0, 2.0])
def test_open_loop_arrivals_follow_the_trace(rate_scale: float) -> None:
    """On a virtual clock (tests/profiler/virtual_stub.py): each request is sent, and reaches
    the stub, exactly at its scaled arrival, although each lasts 0.34 s, longer than the gaps —
    an open loop does not wait for earlier responses."""
    stub = VirtualStub(StubConfig(ttft_s=lambda isl: 0.3, itl_s=lambda a, c: 0.01))
    trace = [(t, 10, 5) for t in (0.0, 0.2, 0.3, 0.6, 0.8)]
    with virtual_endpoint(stub):
        report = replay(URL, "stub-model", trace, rate_scale=rate_scale)
    want = [t / rate_scale for t, _, _ in trace]
    assert report.count == report.ok == len(trace)
    assert [s.arrival for s in stub.served] == pytest.approx(want, abs=1e-12)
    assert [r.sent_s for r in report.records] == pytest.approx(want, abs=1e-12)
    assert [r.e2e_ms for r in report.records] == pytest.approx([340.0] * 5, rel=1e-9)
    # as many at once as the trace overlaps 0.34 s requests: 3 (at 1×), 4 (at 2×)
    overlap = max(sum(b <= a < b + 0.34 for b in want) for a in want)
    assert stub.max_active == overlap == {1.0: 3, 2.0: 4}[rate_scale]


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
    """On a virtual clock (tests/profiler/virtual_stub.py) the client sees each token the
    instant the stub makes it, so what it measures equals the stub's timing exactly: TTFT from
    the request sent to the first token (not to the response headers, sent at once), ITL over
    tokens − 1 gaps, end-to-end to the end of the stream, and the statistics of those."""
    cfg = StubConfig(ttft_s=lambda isl: 0.06, itl_s=lambda a, c: 0.015)
    # the first request of the run is an outlier (+40 ms to its first token): mean ≠ median
    stub = VirtualStub(cfg, extra_ttft_s=lambda index, osl: 0.04 if index == 0 else 0.0)
    with virtual_endpoint(stub):
        report = run_concurrency(URL, "stub-model", 50, 20, 2, n_requests=4, api=api)  # type: ignore[arg-type]
    assert report.ok == 4 and not report.errors and len(stub.served) == 4
    served_ttft = [s.ttft_ms for s in stub.served]
    assert served_ttft == pytest.approx([100, 60, 60, 60], rel=1e-9)  # as the stub was told
    assert [r.ttft_ms for r in report.records] == pytest.approx(served_ttft, rel=1e-9)
    assert report.ttft_ms.mean == pytest.approx(70, rel=1e-9)
    assert report.ttft_ms.p50 == pytest.approx(60, rel=1e-9)
    assert [r.itl_ms for r in report.records] == pytest.approx([15] * 4, rel=1e-9)
    assert report.itl_ms.mean == pytest.approx(15, rel=1e-9)
    assert all(r.output_tokens == 20 for r in report.records)
    e2e = [r.e2e_ms for r in report.records]
    assert e2e == pytest.approx([t + 19 * 15 for t in served_ttft], rel=1e-9)
    # two clients back to back: the outlier's client ends last, at 100 + 285 + 60 + 285 ms
    assert report.duration_s == pytest.approx(0.730, rel=1e-9)
    assert report.output_tok_s == pytest.approx(80 / 0.730, rel=1e-9)
    # the request asks for exactly osl tokens and names its input length
    body = stub.served[0].body
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
