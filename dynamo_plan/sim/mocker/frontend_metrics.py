"""Prometheus metrics of the mocker, named as a Dynamo frontend's (``dynamo_frontend_*``).

All series carry ``model`` and ``dynamo_namespace`` labels, so the planner's queries
(``sum by (model, dynamo_namespace)(increase(X_sum[I])) / … X_count …``) read them as they read
a real frontend. Latencies are **model seconds**: wall seconds × ``speedup`` (with speedup 1 the
two agree), so they compare with the profile and the SLA whatever the speedup.

When each series is observed:

* ``time_to_first_token_seconds`` and ``input_sequence_tokens`` — at the request's first token
  (as Dynamo does);
* ``requests_started_total`` (by endpoint and request type) — when the request is accepted (what
  Dynamo 1.x's planner reads as the offered load, falling back to ``requests_total`` with a
  warning when it is missing); ``queued_requests`` counts the accepted ones without a first
  token yet;
* ``output_sequence_tokens``, ``request_duration_seconds``, ``inter_token_latency_seconds`` and
  ``requests_total{status="success"}`` — when the request finishes; a request whose client went
  away counts once in ``requests_total{status="error"}`` and in nothing else finished.
* ``inter_token_latency_seconds`` — **one observation per request** (osl > 1), its mean gap
  ``(last token - first token) / (osl - 1)``, so ``_sum / _count`` is the request-weighted
  mean ITL. Dynamo's frontend observes every token gap instead (token-weighted); the two agree
  when requests have similar lengths, and per-request observations keep ``_count`` equal to the
  finished requests, which the tests and load tools check.

Every series exists at 0 from the start (endpoint ``chat_completions`` / ``completions``,
``request_type`` ``stream`` / ``unary``, ``status`` ``success`` / ``error``), so an idle window
reads as 0 requests, not as missing metrics. Also: ``dynamo_frontend_inflight_requests`` (gauge) and ``dynamo_mocker_workers{role}`` (serving
engines per role, read from the cluster at scrape time).

Per worker, as Dynamo's KV router exports them for the 1.x load-based planner (labels
``worker_id``, ``dp_rank`` = ``0``, ``worker_type`` = ``prefill``/``decode``; read from the
cluster at scrape time, :meth:`MockCluster.workers`): ``dynamo_frontend_worker_active_prefill_tokens``,
``dynamo_frontend_worker_active_decode_blocks`` (reserved KV tokens / block size, rounded up), and
once known ``dynamo_frontend_worker_last_time_to_first_token_seconds``,
``dynamo_frontend_worker_last_input_sequence_tokens`` (prefill workers) and
``dynamo_frontend_worker_last_inter_token_latency_seconds`` (decode workers).

KV capacity, as a Dynamo frontend reports its model's runtime config (gauges, names as in
Dynamo's ``prometheus_names.rs``): ``dynamo_frontend_model_kv_cache_block_size`` (tokens per KV
block, :data:`KV_BLOCK_SIZE` = 16 unless given) and ``dynamo_frontend_model_total_kv_blocks``
(KV blocks of one engine = ``max_kv_tokens // block size``, the profile's capacity rounded down
to whole blocks). :attr:`FrontendMetrics.kv_tokens` is their product, what a client reads
(``profile --online`` multiplies them).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dynamo_plan.sim.mocker.cluster import WorkerLoad

__all__ = ["CONTENT_TYPE", "KV_BLOCK_SIZE", "FrontendMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
KV_BLOCK_SIZE = 16  # tokens per KV block (vLLM's default)

_LABELS = ("model", "dynamo_namespace")
_WORKER_LABELS = ("worker_id", "dp_rank", "worker_type")
_LATENCY_BUCKETS = (
    0.001, 0.002, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3,
    0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
_ITL_BUCKETS = (
    0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.0125, 0.015, 0.02, 0.025, 0.03, 0.04,
    0.05, 0.075, 0.1, 0.25, 0.5, 1.0,
)  # fmt: skip
_DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
_TOKEN_BUCKETS = tuple(float(2**k) for k in range(17))  # 1 … 65536


class FrontendMetrics:
    """The mocker's metrics in their own :class:`CollectorRegistry` (``render()`` for /metrics)."""

    def __init__(
        self,
        model: str,
        namespace: str,
        speedup: float = 1.0,
        max_kv_tokens: int | None = None,
        kv_block_size: int = KV_BLOCK_SIZE,
    ) -> None:
        if kv_block_size < 1:
            raise ValueError(f"kv_block_size must be >= 1, got {kv_block_size}")
        self.registry = CollectorRegistry()
        self.speedup = float(speedup)
        self.kv_block_size = int(kv_block_size)
        self.kv_blocks = int(max_kv_tokens) // self.kv_block_size if max_kv_tokens else 0
        self._labels = {"model": model, "dynamo_namespace": namespace}
        r = self.registry
        self.ttft = Histogram(
            "dynamo_frontend_time_to_first_token_seconds",
            "Time to first token (model seconds).",
            _LABELS,
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.itl = Histogram(
            "dynamo_frontend_inter_token_latency_seconds",
            "Mean inter-token latency of each finished request (model seconds).",
            _LABELS,
            buckets=_ITL_BUCKETS,
            registry=r,
        )
        self.isl = Histogram(
            "dynamo_frontend_input_sequence_tokens",
            "Input sequence length (tokens).",
            _LABELS,
            buckets=_TOKEN_BUCKETS,
            registry=r,
        )
        self.osl = Histogram(
            "dynamo_frontend_output_sequence_tokens",
            "Output sequence length (tokens).",
            _LABELS,
            buckets=_TOKEN_BUCKETS,
            registry=r,
        )
        self.duration = Histogram(
            "dynamo_frontend_request_duration_seconds",
            "Request duration, arrival to last token (model seconds).",
            _LABELS,
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.requests = Counter(
            "dynamo_frontend_requests",
            "Requests finished, by endpoint, request type and status.",
            (*_LABELS, "endpoint", "request_type", "status"),
            registry=r,
        )
        self.started = Counter(
            "dynamo_frontend_requests_started",
            "Requests accepted, by endpoint and request type.",
            (*_LABELS, "endpoint", "request_type"),
            registry=r,
        )
        self.inflight = Gauge(
            "dynamo_frontend_inflight_requests",
            "Requests being served.",
            _LABELS,
            registry=r,
        )
        self.queued = Gauge(
            "dynamo_frontend_queued_requests",
            "Requests accepted that have no first token yet.",
            _LABELS,
            registry=r,
        )
        self.workers = Gauge(
            "dynamo_mocker_workers",
            "Serving mock engines per role.",
            (*_LABELS, "role"),
            registry=r,
        )
        if max_kv_tokens:
            Gauge(
                "dynamo_frontend_model_total_kv_blocks",
                "Total KV blocks available for a worker serving the model.",
                _LABELS,
                registry=r,
            ).labels(**self._labels).set(self.kv_blocks)
            Gauge(
                "dynamo_frontend_model_kv_cache_block_size",
                "KV cache block size (tokens) for a worker serving the model.",
                _LABELS,
                registry=r,
            ).labels(**self._labels).set(self.kv_block_size)
        # every series exists from the start (at 0): a planner tells a known idle window (the
        # counter exists and did not grow) from missing metrics
        self.inflight.labels(**self._labels).set(0)
        self.queued.labels(**self._labels).set(0)
        for h in (self.ttft, self.itl, self.isl, self.osl, self.duration):
            h.labels(**self._labels)
        for endpoint in ("chat_completions", "completions"):
            for stream in (False, True):
                self._started(endpoint, stream)
                for status in ("success", "error"):
                    self._child(endpoint, stream, status)

    @property
    def kv_tokens(self) -> int:
        """KV capacity advertised (tokens): total blocks × block size (0 when not given)."""
        return self.kv_blocks * self.kv_block_size

    def bind_workers(self, serving: Callable[[], tuple[int, int]]) -> None:
        """Read ``dynamo_mocker_workers{role}`` from ``serving()`` = (prefill, decode) at scrape."""
        self.workers.labels(**self._labels, role="prefill").set_function(lambda: serving()[0])
        self.workers.labels(**self._labels, role="decode").set_function(lambda: serving()[1])

    def bind_worker_loads(self, workers: Callable[[], list[WorkerLoad]]) -> None:
        """Export the per-worker gauges (module docstring) from ``workers()`` at scrape."""
        self.registry.register(_WorkerGauges(workers, self.kv_block_size, self.speedup))

    def request_started(self, *, endpoint: str = "chat_completions", stream: bool = False) -> None:
        """A request accepted (parsed and handed to the cluster)."""
        self._started(endpoint, stream).inc()
        self.inflight.labels(**self._labels).inc()
        self.queued.labels(**self._labels).inc()

    def first_token(self, isl: int, ttft_wall_s: float) -> None:
        """The first token of a request with ``isl`` prompt tokens, ``ttft_wall_s`` after arrival."""
        self.queued.labels(**self._labels).dec()
        self.ttft.labels(**self._labels).observe(ttft_wall_s * self.speedup)
        self.isl.labels(**self._labels).observe(isl)

    def request_finished(
        self,
        *,
        endpoint: str,
        stream: bool,
        osl: int,
        duration_wall_s: float,
        itl_wall_s: float | None,
    ) -> None:
        """A request that made all ``osl`` tokens (``itl_wall_s``: its mean gap; None if osl 1)."""
        self.inflight.labels(**self._labels).dec()
        self.osl.labels(**self._labels).observe(osl)
        self.duration.labels(**self._labels).observe(duration_wall_s * self.speedup)
        if itl_wall_s is not None:
            self.itl.labels(**self._labels).observe(itl_wall_s * self.speedup)
        self._count(endpoint, stream, "success")

    def request_failed(self, *, endpoint: str, stream: bool, queued: bool = False) -> None:
        """A started request that did not finish (client disconnected); ``queued``: it had no
        first token yet."""
        self.inflight.labels(**self._labels).dec()
        if queued:
            self.queued.labels(**self._labels).dec()
        self._count(endpoint, stream, "error")

    def _started(self, endpoint: str, stream: bool) -> Counter:
        return self.started.labels(
            **self._labels, endpoint=endpoint, request_type="stream" if stream else "unary"
        )

    def _child(self, endpoint: str, stream: bool, status: str) -> Counter:
        return self.requests.labels(
            **self._labels,
            endpoint=endpoint,
            request_type="stream" if stream else "unary",
            status=status,
        )

    def _count(self, endpoint: str, stream: bool, status: str) -> None:
        self._child(endpoint, stream, status).inc()

    def render(self) -> bytes:
        """The exposition text of every series."""
        return generate_latest(self.registry)


class _WorkerGauges(Collector):
    """Dynamo's per-worker gauges, read from the cluster at each scrape (model seconds)."""

    def __init__(
        self, workers: Callable[[], list[WorkerLoad]], block_size: int, speedup: float
    ) -> None:
        self.workers = workers
        self.block_size = block_size
        self.speedup = speedup

    def collect(self) -> Iterable[Metric]:
        def family(name: str, doc: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"dynamo_frontend_worker_{name}", doc, labels=_WORKER_LABELS)

        prefill = family("active_prefill_tokens", "Active prefill tokens per worker.")
        blocks = family("active_decode_blocks", "Active KV cache decode blocks per worker.")
        ttft = family(
            "last_time_to_first_token_seconds", "Last observed time to first token per worker."
        )
        isl = family(
            "last_input_sequence_tokens", "Input tokens of the request of the last TTFT per worker."
        )
        itl = family(
            "last_inter_token_latency_seconds", "Last observed inter-token latency per worker."
        )
        for w in self.workers():
            labels = [str(w.worker_id), "0", w.role]
            prefill.add_metric(labels, w.active_prefill_tokens)
            blocks.add_metric(labels, math.ceil(w.active_kv_tokens / self.block_size))
            if w.last_ttft_s is not None:
                ttft.add_metric(labels, w.last_ttft_s * self.speedup)
            if w.last_isl is not None:
                isl.add_metric(labels, w.last_isl)
            if w.last_itl_s is not None:
                itl.add_metric(labels, w.last_itl_s * self.speedup)
        return [prefill, blocks, ttft, isl, itl]
