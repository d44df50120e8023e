"""The Prometheus adapter against a real Prometheus scraping a real ``/metrics`` exporter.

The exporter (prometheus_client, in this process) exposes the Dynamo frontend's metric names.
Every series used by a test is created at zero before Prometheus starts, so the first sample in
a window is 0; ``increase()`` then starts exactly at that sample (its zero-point clamp), the
sums and counts of one target share scrape timestamps, and the count-weighted means come back
exactly. Request totals are extrapolated by ``increase()``: a factor in
``[1, 1 + 1.1·scrape/sampled span]``, at most 1.55 once three samples exist (see the fixture).
Answers a real Prometheus does not give (non-JSON, HTTP 502, timeouts, NaN, an unreachable
host) come from an ``httpx.MockTransport`` passed to the client, which also records the
``Authorization`` header; no socket is opened for them.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from dynamo_plan.adapters.frontend import FrontendMetricsSource, FrontendWindow
from dynamo_plan.adapters.prometheus import (
    ENV_VAR,
    HISTOGRAMS,
    STAT_LABEL,
    PrometheusClient,
    promql_duration,
    promql_string,
    quote_meta,
    resolve_prometheus_url,
    selector,
    token_histograms_query,
)
from dynamo_plan.errors import InputError, MetricsError, UsageError
from tests.servers import ServerProcess, free_port, start_prometheus

LLAMA = "meta-llama/Llama-3.1-8B"
DECOY = "meta-llama/Llama-3x1-8B"  # matches LLAMA's pattern if '.' were left unescaped
LONGER = "meta-llama/Llama-3.1-8B-Instruct"  # matches if the pattern were not anchored
WEIRD = 'we"ird\\model(v1)+[x]'
IDLE = "idle-model"
PAST = "past-model"
SHAPES = "shapes-model"
LABELS = [
    (LLAMA, "ns-a"),
    (LLAMA, "ns-b"),
    (DECOY, "ns-a"),
    (LONGER, "ns-a"),
    (WEIRD, "ns-a"),
    (IDLE, "ns-a"),
    (PAST, "ns-a"),
    (SHAPES, "ns-a"),
]
LONG_W = 120.0  # covers the zero baseline for the module's whole life
FIELDS = list(HISTOGRAMS)
BUCKETS = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)
POLL_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Req:
    """One served request's observations, keyed like FrontendWindow's fields."""

    ttft_s: float
    itl_s: float
    isl: float
    osl: float
    request_duration_s: float

    def get(self, name: str) -> float:
        return float(getattr(self, name))


@dataclass
class Exporter:
    registry: CollectorRegistry
    requests: Counter
    histograms: dict[str, Histogram]
    target: str

    def serve(self, model: str, ns: str, reqs: list[Req]) -> None:
        for r in reqs:
            for name, h in self.histograms.items():
                h.labels(model=model, dynamo_namespace=ns).observe(r.get(name))
            self.requests.labels(model=model, dynamo_namespace=ns).inc()


@dataclass
class Env:
    exporter: Exporter
    prometheus: ServerProcess
    served: dict[tuple[str, str], list[Req]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.prometheus.url

    def client(self, model: str, namespace: str | None = None, **kw: Any) -> PrometheusClient:
        return PrometheusClient(self.url, model, namespace, **kw)


def poll(fn: Callable[[], Any], ok: Callable[[Any], bool], what: str) -> Any:
    """Call ``fn`` until ``ok(result)``; fail naming ``what`` and the last result."""
    deadline = time.monotonic() + POLL_TIMEOUT_S
    last: Any = None
    while time.monotonic() < deadline:
        last = fn()
        if ok(last):
            return last
        time.sleep(0.25)
    pytest.fail(f"{what} not seen within {POLL_TIMEOUT_S:g} s; last: {last!r}")


def raw_total(env: Env, model: str) -> float:
    """Σ of the raw request counter and histogram counts for ``model`` (all namespaces)."""
    q = f'sum({{__name__=~"dynamo_frontend_.*(_count|_total)", model={promql_string(model)}}})'
    with PrometheusClient(env.url, model) as c:
        rows = c.query(q)
    return rows[0][1] if rows else 0.0


def wait_scraped(env: Env, model: str) -> None:
    """Until Prometheus holds every observation served for ``model`` (counter and 5 counts)."""
    n = sum(len(v) for (m, _), v in env.served.items() if m == model)
    want = float(n * (1 + len(FIELDS)))
    poll(lambda: raw_total(env, model), lambda v: v == want, f"{model} scraped ({want:g})")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    reg = CollectorRegistry()
    labels = ["model", "dynamo_namespace"]
    requests = Counter("dynamo_frontend_requests", "requests", labels, registry=reg)
    histograms = {
        name: Histogram(base, name, labels, registry=reg, buckets=BUCKETS)
        for name, base in HISTOGRAMS.items()
    }
    for model, ns in LABELS:  # zero baselines
        requests.labels(model=model, dynamo_namespace=ns)
        for h in histograms.values():
            h.labels(model=model, dynamo_namespace=ns)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=reg)
    exporter = Exporter(reg, requests, histograms, f"127.0.0.1:{port}")
    prom = start_prometheus(
        tmp_path_factory.mktemp("prom"), [exporter.target], 1.0, max_lifetime_s=300
    )
    e = Env(exporter, prom)
    try:
        with PrometheusClient(prom.url, IDLE) as c:
            poll(
                lambda: c.query("min(count_over_time(dynamo_frontend_requests_total[2m]))"),
                lambda rows: bool(rows) and rows[0][1] >= 3,
                "three zero samples",
            )
        # PAST serves one request now; test_idle_after_requests later waits for a quiet window.
        e.served[(PAST, "ns-a")] = [Req(0.5, 0.05, 100, 10, 1.0)]
        exporter.serve(PAST, "ns-a", e.served[(PAST, "ns-a")])
        yield e
    finally:
        prom.stop()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def expected_mean(reqs: list[Req], name: str) -> float:
    return statistics.fmean(r.get(name) for r in reqs)


def assert_means(w: FrontendWindow, reqs: list[Req]) -> None:
    assert w.status == "value", w.detail
    for name in FIELDS:
        assert getattr(w, name) == pytest.approx(expected_mean(reqs, name), rel=1e-9), name
    n = len(reqs)
    assert w.requests is not None
    assert n <= w.requests <= 1.6 * n  # increase() extrapolation, see the module docstring


# -- real Prometheus ------------------------------------------------------------------------------


def test_count_weighted_over_namespaces_case_insensitive(env: Env) -> None:
    a = [Req(0.1, 0.01, 100, 10, 1.0), Req(0.2, 0.02, 200, 20, 2.0), Req(0.3, 0.03, 300, 30, 3.0)]
    b = [Req(0.9, 0.09, 4000, 400, 9.0)]
    decoy = [Req(1000.0, 100.0, 99999, 9999, 999.0)]
    env.served.update({(LLAMA, "ns-a"): a, (LLAMA, "ns-b"): b, (DECOY, "ns-a"): decoy})
    env.served[(LONGER, "ns-a")] = decoy
    for (model, ns), reqs in env.served.items():
        if model in (LLAMA, DECOY, LONGER):
            env.exporter.serve(model, ns, reqs)
    for model in (LLAMA, DECOY, LONGER):
        wait_scraped(env, model)

    # a mean of the two namespaces' means would differ from the count-weighted mean
    assert statistics.fmean([expected_mean(a, "ttft_s"), expected_mean(b, "ttft_s")]) != (
        pytest.approx(expected_mean(a + b, "ttft_s"))
    )
    for spelled in (LLAMA, LLAMA.upper(), LLAMA.lower()):
        with env.client(spelled) as c:
            w = c.window(LONG_W)
        assert_means(w, a + b)
        assert "2 series" in w.detail

    with env.client(LLAMA.swapcase(), namespace="ns-b") as c:
        assert_means(c.window(LONG_W), b)
    with env.client(LLAMA, namespace="ns-a") as c:
        assert_means(c.window(LONG_W), a)


def test_model_with_quotes_backslash_and_regex_metacharacters(env: Env) -> None:
    reqs = [Req(0.4, 0.04, 40, 4, 4.0), Req(0.6, 0.06, 60, 6, 6.0)]
    env.served[(WEIRD, "ns-a")] = reqs
    env.exporter.serve(WEIRD, "ns-a", reqs)
    wait_scraped(env, WEIRD)
    with env.client(WEIRD.upper(), namespace="ns-a") as c:
        assert_means(c.window(LONG_W), reqs)


def test_token_histograms_from_real_buckets(env: Env) -> None:
    """ISL/OSL histograms summed over the buckets by ``le``; ISL beyond the last bucket
    (10,000) is placed by the ``_sum``."""
    reqs = [Req(0.1, 0.01, 50, 5, 1.0)] * 6 + [Req(0.1, 0.01, 500, 50, 1.0)] * 3
    reqs += [Req(0.1, 0.01, 40_000, 500, 1.0)]
    env.served[(SHAPES, "ns-a")] = reqs
    env.exporter.serve(SHAPES, "ns-a", reqs)
    wait_scraped(env, SHAPES)
    with env.client(SHAPES) as c:
        hists = c.token_histograms(LONG_W)
        assert c.token_histograms(1.0) is None  # a window with no requests: nothing to draw
    assert hists is not None
    isl, osl = hists["isl"], hists["osl"]
    assert list(isl.bounds) == list(BUCKETS)
    assert 10 <= isl.requests <= 16  # increase() extrapolation, as for the window's count
    share = isl.counts / isl.counts.sum()
    assert share[list(BUCKETS).index(100.0)] == pytest.approx(0.6)  # the six of 50 tokens
    assert share[list(BUCKETS).index(1000.0)] == pytest.approx(0.3)
    assert share[-1] == pytest.approx(0.1)  # +Inf
    big = isl.sample(2000, np.random.default_rng(0))
    assert big.max() > 10_000  # the overflow request is not clamped to the last bound
    assert osl.sample(2000, np.random.default_rng(0)).max() <= 1000
    with env.client("no-such-model") as c:
        assert c.token_histograms(LONG_W) is None


def test_token_histograms_query_tags_each_part() -> None:
    q = token_histograms_query(LLAMA, "ns-a", 300.0)
    for tag in ("isl:bucket", "isl:sum", "osl:bucket", "osl:sum"):
        assert f'"{STAT_LABEL}", "{tag}"' in q
    assert "sum by (le)(increase(dynamo_frontend_input_sequence_tokens_bucket{" in q
    assert "[300s]" in q


def test_idle_when_counter_never_grew(env: Env) -> None:
    with env.client(IDLE) as c:
        w = c.window(LONG_W)
    assert w.status == "idle", w.detail
    assert (w.requests, w.ttft_s, w.isl) == (None, None, None)
    assert w.to_observation(0.0).requests == 0.0


def test_idle_after_requests(env: Env) -> None:
    wait_scraped(env, PAST)
    with env.client(PAST) as c:
        assert_means(c.window(LONG_W), env.served[(PAST, "ns-a")])
        # a 3 s window holds 2+ scrapes; once the request is older than it, the window is idle
        w = poll(lambda: c.window(3.0), lambda w: w.status == "idle", "an idle 3 s window")
    assert isinstance(w, FrontendWindow) and w.requests is None


def test_unknown_model_and_namespace(env: Env) -> None:
    for model, ns in (("no-such-model", None), (LLAMA, "no-such-namespace")):
        with env.client(model, ns) as c:
            w = c.window(LONG_W)
        assert w.status == "unknown"
        assert "no dynamo_frontend_requests_total series" in w.detail
        assert repr(model) in w.detail
        assert w.to_observation(1.0).requests is None


def test_promql_error_carries_prometheus_message(env: Env) -> None:
    with env.client(LLAMA) as c:
        with pytest.raises(MetricsError, match=r"HTTP 400 bad_data: .*parse error") as ei:
            c.query("sum(")
        assert "\n" not in str(ei.value)
        assert c.query("1 + 1") == [({}, 2.0)]


def test_token_file(env: Env, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("secret\n")
    with env.client(LLAMA, token_file=token) as c:
        assert c.query("1") == [({}, 1.0)]
    missing = tmp_path / "missing-token"
    with env.client(LLAMA, token_file=missing) as c:
        with pytest.raises(MetricsError, match=re.escape(str(missing))):
            c.query("1")
        w = c.window(LONG_W)
    assert w.status == "unknown" and str(missing) in w.detail
    empty = tmp_path / "empty-token"
    empty.write_text(" \n")
    with env.client(LLAMA, token_file=empty) as c, pytest.raises(MetricsError, match="empty"):
        c.query("1")


def test_prometheus_stopped(tmp_path: Path) -> None:
    prom = start_prometheus(tmp_path, [], 1.0, max_lifetime_s=60)
    try:
        with PrometheusClient(prom.url, LLAMA, timeout_s=2.0) as c:
            assert c.query("1") == [({}, 1.0)]
            prom.stop()
            with pytest.raises(MetricsError, match=r"cannot reach Prometheus .*ConnectError"):
                c.query("1")
            w = c.window(60.0)
        assert w.status == "unknown" and "ConnectError" in w.detail
    finally:
        prom.stop()


# -- answers a real Prometheus does not give: httpx.MockTransport ----------------------------------

CANNED_URL = "http://prometheus.test/prom/"


@dataclass
class Canned:
    """One canned answer (``status``, ``body``) or ``error`` raised instead of answering; every
    request is recorded (``requests``) with its ``Authorization`` header (``auth``)."""

    status: int = 200
    body: bytes = b""
    error: Exception | None = None
    auth: list[str | None] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.auth.append(request.headers.get("Authorization"))
        if self.error is not None:
            raise self.error
        return httpx.Response(self.status, content=self.body)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)


@pytest.fixture
def canned() -> tuple[str, Canned]:
    return CANNED_URL, Canned()


def vector(rows: list[tuple[dict[str, str], str]]) -> bytes:
    result = [{"metric": m, "value": [0, v]} for m, v in rows]
    return json.dumps(
        {"status": "success", "data": {"resultType": "vector", "result": result}}
    ).encode()


def test_bearer_token_is_reread_at_each_query(canned: tuple[str, Canned], tmp_path: Path) -> None:
    url, state = canned
    state.body = vector([])
    token = tmp_path / "token"
    token.write_text("first\n")
    with PrometheusClient(url, LLAMA, token_file=token, transport=state.transport) as c:
        assert c.query("up") == []
        token.write_text("second")
        c.query("up")
    with PrometheusClient(url, LLAMA, transport=state.transport) as c:
        c.query("up")
    assert state.auth == ["Bearer first", "Bearer second", None]


@pytest.mark.parametrize(
    ("status", "body", "match"),
    [
        (200, b"<html>hello</html>", "expected the API's JSON"),
        (502, b"<html>Bad\n gateway</html>", "HTTP 502: <html>Bad gateway</html>"),
        (200, b'{"status": "success", "data": {"resultType": "matrix", "result": []}}', "matrix"),
        (200, b'{"status": "success", "data": {"resultType": "vector", "result": [1]}}', r"\[0\]"),
    ],
)
def test_unusable_answers(canned: tuple[str, Canned], status: int, body: bytes, match: str) -> None:
    url, state = canned
    state.status, state.body = status, body
    with PrometheusClient(url, LLAMA, transport=state.transport) as c:
        with pytest.raises(MetricsError, match=match) as ei:
            c.query("up")
        assert "\n" not in str(ei.value)
        w = c.window(10.0)
    assert w.status == "unknown" and "/prom/api/v1/query" in w.detail


def test_timeout(canned: tuple[str, Canned]) -> None:
    url, state = canned
    state.error = httpx.ReadTimeout("timed out")  # what httpx raises once timeout_s passed
    with (
        PrometheusClient(url, LLAMA, timeout_s=0.2, transport=state.transport) as c,
        pytest.raises(MetricsError, match=r"timed out after 0\.2 s"),
    ):
        c.query("up")


def test_window_combines_series_and_drops_nan_and_zero_counts(canned: tuple[str, Canned]) -> None:
    url, state = canned
    a = {"model": LLAMA, "dynamo_namespace": "a"}
    b = {"model": LLAMA, "dynamo_namespace": "b"}

    def row(labels: dict[str, str], stat: str, v: str) -> tuple[dict[str, str], str]:
        return ({**labels, STAT_LABEL: stat}, v)

    state.body = vector(
        [
            row(a, "requests", "3"),
            row(b, "requests", "1"),
            row(a, "ttft_s:sum", "0.6"),
            row(a, "ttft_s:count", "3"),
            row(b, "ttft_s:sum", "0.9"),
            row(b, "ttft_s:count", "1"),
            row(a, "itl_s:sum", "0"),  # 0/0: no tokens after the first
            row(a, "itl_s:count", "0"),
            row(a, "isl:sum", "NaN"),
            row(a, "isl:count", "3"),
            row(b, "isl:sum", "40"),
            row(b, "isl:count", "1"),
            # osl and request_duration_s absent
        ]
    )
    with PrometheusClient(url, LLAMA, transport=state.transport) as c:
        w = c.window(30.0)
    assert w.status == "value" and w.requests == 4.0
    assert w.ttft_s == pytest.approx((0.6 + 0.9) / 4)
    assert w.isl == 40.0  # the NaN series is left out, sum and count together
    assert (w.itl_s, w.osl, w.request_duration_s) == (None, None, None)
    assert "no data for itl_s, osl, request_duration_s" in w.detail


def test_window_idle_below_half_a_request(canned: tuple[str, Canned]) -> None:
    url, state = canned
    state.body = vector([({"model": LLAMA, STAT_LABEL: "requests"}, "0.2")])
    with PrometheusClient(url, LLAMA, transport=state.transport) as c:
        assert c.window(30.0).status == "idle"


def test_query_is_one_get_of_the_instant_query_endpoint(canned: tuple[str, Canned]) -> None:
    url, state = canned
    state.body = vector([])
    with PrometheusClient(url, LLAMA, transport=state.transport) as c:
        c.window(30.0)
    (request,) = state.requests
    assert request.method == "GET"
    assert str(request.url).startswith("http://prometheus.test/prom/api/v1/query?")
    assert request.url.params["query"].count(f'"{STAT_LABEL}"') == 1 + 2 * len(HISTOGRAMS)


def test_unreachable_prometheus(canned: tuple[str, Canned]) -> None:
    url, state = canned
    state.error = httpx.ConnectError("[Errno 111] Connection\nrefused")
    with PrometheusClient(url, LLAMA, transport=state.transport) as c:
        with pytest.raises(
            MetricsError,
            match=r"cannot reach Prometheus http://prometheus\.test/prom/api/v1/query: "
            r"ConnectError: \[Errno 111\] Connection refused$",
        ):
            c.query("up")
        w = c.window(60.0)
    assert w.status == "unknown" and "ConnectError" in w.detail


def test_promql_error_answer_is_one_line(canned: tuple[str, Canned]) -> None:
    url, state = canned
    state.status = 422
    state.body = json.dumps(
        {"status": "error", "errorType": "execution", "error": "many-to-many\nmatching"}
    ).encode()
    with PrometheusClient(url, LLAMA, transport=state.transport) as c:
        with pytest.raises(MetricsError, match=r"HTTP 422 execution: many-to-many matching$"):
            c.query("up")
        assert c.window(10.0).status == "unknown"


@pytest.mark.parametrize(
    ("status", "body", "match"),
    [
        (500, b"", r"HTTP 500: \(empty\)"),
        (200, b'{"status": "success", "data"', "expected the API's JSON"),  # cut short
        (200, b"[1, 2]", "expected the API's JSON"),
        (200, b'{"status": "success", "data": null}', "answer has no 'data' object"),
        (200, b'{"status": "success", "data": {"resultType": "scalar", "result": [0]}}', "scalar"),
    ],
)
def test_malformed_answers(
    canned: tuple[str, Canned], status: int, body: bytes, match: str
) -> None:
    url, state = canned
    state.status, state.body = status, body
    with PrometheusClient(url, LLAMA, transport=state.transport) as c:
        with pytest.raises(MetricsError, match=match) as ei:
            c.query("up")
        assert "\n" not in str(ei.value)
        assert c.window(10.0).status == "unknown"


def test_construction_and_check_send_nothing_and_close_allows_a_later_query(
    canned: tuple[str, Canned], tmp_path: Path
) -> None:
    url, state = canned
    state.body = vector([])
    token = tmp_path / "token"
    token.write_text("t")
    c = PrometheusClient(url, LLAMA, token_file=token, transport=state.transport)
    c.check()
    c.close()
    assert state.requests == []
    assert c.query("up") == []
    c.close()
    assert c.query("up") == []  # a new HTTP client over the same transport
    c.close()
    assert len(state.requests) == 2


# -- no server ------------------------------------------------------------------------------------


def test_client_is_a_frontend_source_and_constructs_without_io(tmp_path: Path) -> None:
    c = PrometheusClient(
        "http://127.0.0.1:1", LLAMA, token_file=tmp_path / "absent", ca_bundle=tmp_path / "absent"
    )
    assert isinstance(c, FrontendMetricsSource)
    c.close()


def test_a_source_without_close_is_not_a_frontend_source() -> None:
    class WindowOnly:
        def window(self, interval_s: float) -> FrontendWindow:
            return FrontendWindow("unknown", "x", interval_s)

    assert not isinstance(WindowOnly(), FrontendMetricsSource)


def test_missing_ca_bundle(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    with PrometheusClient("https://127.0.0.1:1", LLAMA, ca_bundle=ca) as c:
        with pytest.raises(MetricsError, match=re.escape(str(ca))):
            c.query("up")
        assert c.window(10.0).status == "unknown"


def test_check_refuses_settings_that_cannot_work(tmp_path: Path) -> None:
    """The preflight (``plan run`` before its first tick) turns a bad token file or CA bundle
    into one InputError (exit 1); at query time the same faults stay MetricsError (unknown)."""
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate\n")
    utf16 = tmp_path / "token16"
    utf16.write_bytes("secret".encode("utf-16"))
    empty = tmp_path / "empty"
    empty.write_text(" \n")
    cases = [
        ({"token_file": tmp_path / "absent"}, "cannot read Prometheus token file"),
        ({"token_file": utf16}, "not UTF-8 text"),
        ({"token_file": empty}, "is empty"),
        ({"ca_bundle": garbage}, f"Prometheus CA bundle {garbage}: not PEM CA certificates"),
        ({"ca_bundle": tmp_path}, "cannot read Prometheus CA bundle"),
    ]
    for kwargs, message in cases:
        client = PrometheusClient("https://127.0.0.1:1", LLAMA, **kwargs)  # type: ignore[arg-type]
        with pytest.raises(InputError, match=re.escape(message)):
            client.check()
        with pytest.raises(MetricsError, match=re.escape(message)):
            client.query("up")
        client.close()
    good = tmp_path / "token"
    good.write_text("secret\n")
    PrometheusClient("http://127.0.0.1:1", LLAMA, token_file=good).check()  # no network


def test_resolve_prometheus_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(UsageError, match="--prometheus-url"):
        resolve_prometheus_url(None)
    monkeypatch.setenv(ENV_VAR, "https://prom.example:9090/prometheus")
    assert resolve_prometheus_url(None) == "https://prom.example:9090/prometheus"
    assert resolve_prometheus_url("http://other:9090") == "http://other:9090"
    for bad in ("localhost:9090", "ftp://prom:21", "http://", "prom"):
        with pytest.raises(InputError, match=re.escape(repr(bad))):
            resolve_prometheus_url(bad)


@given(st.integers(min_value=1, max_value=10**10))
def test_duration_round_trips_milliseconds(ms: int) -> None:
    d = promql_duration(ms / 1000.0)
    if d.endswith("ms"):
        assert int(d[:-2]) == ms and ms % 1000 != 0
    else:
        assert d.endswith("s") and int(d[:-1]) * 1000 == ms


def test_duration_examples_and_rejects() -> None:
    assert promql_duration(180.0) == "180s"
    assert promql_duration(1.5) == "1500ms"
    for bad in (0.0, -1.0, 0.0004, math.nan, math.inf):
        with pytest.raises(InputError):
            promql_duration(bad)


@given(st.text())
def test_quote_meta_matches_exactly_that_text(text: str) -> None:
    pattern = quote_meta(text)
    assert re.fullmatch(pattern, text)
    assert not re.fullmatch(pattern, text + "x")
    assert re.fullmatch("(?i)" + pattern, text)


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_selector_is_case_insensitive_for_ascii(text: str) -> None:
    sel = selector(text)
    literal = sel.removeprefix("{model=~").removesuffix("}")
    pattern = json.loads(literal)
    assert "\n" not in sel
    for variant in (text, text.upper(), text.lower(), text.swapcase()):
        assert re.fullmatch(pattern, variant)


@given(st.text(), st.text())
def test_promql_string_round_trips(model: str, ns: str) -> None:
    lit = promql_string(ns)
    assert json.loads(lit) == ns and lit.startswith('"') and "\n" not in lit
    assert selector(model, ns).endswith(f", dynamo_namespace={lit}}}")
