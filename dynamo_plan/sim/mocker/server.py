"""The mocker's HTTP server (aiohttp): OpenAI-compatible endpoints over a :class:`MockCluster`.

Routes: ``POST /v1/chat/completions``, ``POST /v1/completions`` (``stream: true`` → server-sent
events, one ``data: {chunk}`` per token, an optional usage chunk, ``data: [DONE]``; otherwise one
JSON body with ``usage``), ``GET /v1/models`` (its entry also gives ``max_kv_tokens``: one
engine's KV capacity in whole blocks, as on /metrics), ``GET /health``, ``GET /metrics`` (Prometheus text,
:mod:`~dynamo_plan.sim.mocker.frontend_metrics`). Bad bodies get 400 and another model 404, with
an OpenAI-style ``{"error": {...}}`` body. A client that disconnects (the handler is cancelled,
or a write fails) has its request cancelled in the cluster, which frees its KV and batch slot.

TTFT is measured from the request's arrival at the handler to the loop time at which the cluster
made its first token; ITL as ``(last token - first token) / (osl - 1)``.

A request with ``n`` > 1 choices is ``n`` sequences in the cluster, each with the whole prompt
and ``osl`` tokens (no prefix sharing: as ``n`` requests of the same prompt); the stream carries
each choice's tokens as they are made (``index`` = the choice). Its metrics count one request:
TTFT = the first token of any choice, OSL = ``n × osl`` tokens, ITL = the choices' mean gap,
duration = until the last choice's last token. A request without ``max_tokens`` makes
``default_osl`` tokens per choice (``mocker serve --default-osl``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from dynamo_plan.adapters.virtual_state import StateStore
from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.sim.config import SimConfig
from dynamo_plan.sim.mocker.cluster import MockCluster, MockRequest
from dynamo_plan.sim.mocker.follow import StoreFollower
from dynamo_plan.sim.mocker.frontend_metrics import CONTENT_TYPE, FrontendMetrics
from dynamo_plan.sim.mocker.openai_api import (
    DEFAULT_OSL,
    ApiError,
    Completion,
    Endpoint,
    error_body,
    final_body,
    parse_request,
    stream_chunk,
    usage_chunk,
)

__all__ = ["MockerServer"]

_ENDPOINT_LABEL = {"chat": "chat_completions", "completion": "completions"}


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(
        data, status=status, dumps=lambda d: json.dumps(d, separators=(",", ":"))
    )


class MockerServer:
    """An OpenAI-compatible mock frontend and its cluster; :meth:`start` opens the socket.

    ``store``: follow a virtual connector's state (:class:`StoreFollower`, polled every
    ``poll_s`` s) instead of keeping ``prefill`` / ``decode`` fixed. ``default_osl``: output
    tokens of a request without ``max_tokens``.
    """

    def __init__(
        self,
        profile: PerformanceProfile,
        *,
        model: str = "mock-model",
        namespace: str = "dynamo",
        prefill: int = 1,
        decode: int = 1,
        config: SimConfig | None = None,
        speedup: float = 1.0,
        store: StateStore | None = None,
        poll_s: float = 0.2,
        default_osl: int = DEFAULT_OSL,
    ) -> None:
        if default_osl < 1:
            raise ValueError(f"default_osl must be >= 1, got {default_osl}")
        self.model = model
        self.default_osl = default_osl
        self.cluster = MockCluster(profile, config, prefill, decode, speedup)
        self.metrics = FrontendMetrics(model, namespace, speedup, profile.max_kv_tokens)
        self.metrics.bind_workers(self.cluster.serving)
        self.metrics.bind_worker_loads(self.cluster.workers)
        self.follower = StoreFollower(store, self.cluster, poll_s) if store is not None else None
        self._runner: web.AppRunner | None = None
        self._follow_task: asyncio.Task[None] | None = None
        self.url = ""

    # ------------------------------------------------------------------ lifecycle
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 8000) -> str:
        """Start the cluster (and follower) and listen; returns the base URL."""
        self.cluster.start()
        if self.follower is not None:
            self._follow_task = asyncio.get_running_loop().create_task(self.follower.run())
        runner = web.AppRunner(self.app(), handler_cancellation=True, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        bound = runner.addresses[0]
        shown = f"[{bound[0]}]" if ":" in str(bound[0]) else str(bound[0])
        self.url = f"http://{shown}:{bound[1]}"
        return self.url

    async def stop(self) -> None:
        """Stop listening, the follower and the cluster."""
        if self._follow_task is not None:
            self._follow_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follow_task
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.cluster.close()

    # ------------------------------------------------------------------ handlers
    async def _models(self, request: web.Request) -> web.Response:
        model = {
            "id": self.model,
            "object": "model",
            "created": 0,
            "owned_by": "dynamo-plan",
            "max_kv_tokens": self.metrics.kv_tokens,  # one engine's, whole KV blocks
        }
        return _json({"object": "list", "data": [model]})

    async def _health(self, request: web.Request) -> web.Response:
        p, d = self.cluster.serving()
        return _json({"status": "healthy", "workers": {"prefill": p, "decode": d}})

    async def _metrics(self, request: web.Request) -> web.Response:
        resp = web.Response(body=self.metrics.render())
        resp.headers["Content-Type"] = CONTENT_TYPE
        return resp

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "chat")

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "completion")

    async def _serve(self, request: web.Request, endpoint: Endpoint) -> web.StreamResponse:
        try:
            try:
                body = await request.json()
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise ApiError(400, f"the request body is not valid JSON: {e}") from e
            c = parse_request(body, endpoint, self.model, self.default_osl)
        except ApiError as e:
            return _json(error_body(e), e.status)
        arrival = asyncio.get_running_loop().time()
        rs = [self.cluster.submit(c.isl, c.osl) for _ in range(c.n)]
        label = _ENDPOINT_LABEL[endpoint]
        self.metrics.request_started(endpoint=label, stream=c.stream)
        first: float | None = None
        firsts: list[float | None] = [None] * c.n
        lasts = [arrival] * c.n
        made = [0] * c.n
        resp: web.StreamResponse | None = None
        try:
            if c.stream:
                resp = web.StreamResponse(
                    headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
                )
                await resp.prepare(request)
            chunks = _ChunkCache(c)
            async for i, times in _merged(rs):
                if first is None:
                    first = times[0]
                    self.metrics.first_token(c.isl, first - arrival)
                if firsts[i] is None:
                    firsts[i] = times[0]
                if resp is not None:
                    await resp.write(
                        b"".join(chunks.get(made[i] + k, i) for k in range(len(times)))
                    )
                made[i] += len(times)
                lasts[i] = times[-1]
        except BaseException:  # client gone: cancelled handler or a failed write
            for r in rs:
                r.cancel()
            self.metrics.request_failed(endpoint=label, stream=c.stream, queued=first is None)
            raise
        if min(made) < c.osl or first is None:  # the cluster shut down under the request
            for r in rs:
                r.cancel()
            self.metrics.request_failed(endpoint=label, stream=c.stream, queued=first is None)
            if resp is None:
                return _json(error_body(ApiError(503, "the mocker is shutting down")), 503)
            return resp
        gaps = [lasts[i] - f for i, f in enumerate(firsts) if f is not None]
        self.metrics.request_finished(
            endpoint=label,
            stream=c.stream,
            osl=c.n * c.osl,
            duration_wall_s=max(lasts) - arrival,
            itl_wall_s=sum(gaps) / len(gaps) / (c.osl - 1) if c.osl > 1 and gaps else None,
        )
        if resp is None:
            return _json(final_body(c))
        return await self._end_stream(resp, c)

    async def _end_stream(self, resp: web.StreamResponse, c: Completion) -> web.StreamResponse:
        with contextlib.suppress(ConnectionError):
            if c.include_usage:
                await resp.write(_sse(usage_chunk(c)))
            await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
        return resp


async def _merged(rs: list[MockRequest]) -> AsyncIterator[tuple[int, list[float]]]:
    """``(choice, token times)`` batches of every request in ``rs`` as they are made (one
    request: its own batches, no extra hop)."""
    if len(rs) == 1:
        async for times in rs[0].token_batches():
            yield 0, times
        return
    q: asyncio.Queue[tuple[int, list[float] | None]] = asyncio.Queue()

    async def pump(i: int, r: MockRequest) -> None:
        try:
            async for times in r.token_batches():
                q.put_nowait((i, times))
        finally:
            q.put_nowait((i, None))

    tasks = [asyncio.ensure_future(pump(i, r)) for i, r in enumerate(rs)]
    try:
        open_ = len(rs)
        while open_:
            i, got = await q.get()
            if got is None:
                open_ -= 1
            else:
                yield i, got
    finally:
        for t in tasks:
            t.cancel()


class _ChunkCache:
    """The SSE bytes of each token of one request: per choice, the first, the middle and the
    last differ."""

    def __init__(self, c: Completion) -> None:
        self.c = c
        self.cache: dict[tuple[int, int], bytes] = {}

    def get(self, index: int, choice: int = 0) -> bytes:
        key = (choice, 0 if index == 0 else (2 if index == self.c.osl - 1 else 1))
        b = self.cache.get(key)
        if b is None:
            b = self.cache[key] = _sse(stream_chunk(self.c, index, choice))
        return b


def _sse(chunk: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"
