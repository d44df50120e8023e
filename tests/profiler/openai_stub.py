"""A small real OpenAI-compatible streaming server (aiohttp) for load-generator and profiler tests.

Runs in a background thread on a free loopback port. Latencies come from functions of the request
(``ttft_s(isl)``) and of the load (``itl_s(active, context)``); tokens are scheduled at absolute
times (first at ``ttft``, then every ``itl``), so the mean gap does not drift with sleep jitter.
Every request's arrival time (``time.perf_counter``) and body are recorded.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.servers import free_port


@dataclass
class StubConfig:
    ttft_s: Callable[[int], float] = lambda isl: 0.05
    itl_s: Callable[[int, int], float] = lambda active, ctx: 0.02
    fail: Callable[[int], bool] = lambda index: False  # answer HTTP 500 to request #index
    model: str = "stub-model"
    max_kv_tokens: int | None = None  # advertised in /v1/models when set
    metrics: str | None = None  # Prometheus text served on /metrics when set


@dataclass
class Stub:
    url: str
    config: StubConfig
    arrivals: list[float] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    active: int = 0
    max_active: int = 0


def _app(stub: Stub) -> web.Application:
    cfg = stub.config

    async def models(_: web.Request) -> web.Response:
        entry: dict[str, Any] = {"id": cfg.model, "object": "model"}
        if cfg.max_kv_tokens is not None:
            entry["max_kv_tokens"] = cfg.max_kv_tokens
        return web.json_response({"object": "list", "data": [entry]})

    async def metrics(_: web.Request) -> web.Response:
        if cfg.metrics is None:
            return web.Response(status=404)
        return web.Response(text=cfg.metrics, content_type="text/plain")

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def generate(request: web.Request) -> web.StreamResponse:
        t0 = time.perf_counter()
        index = len(stub.arrivals)
        stub.arrivals.append(t0)
        body = await request.json()
        stub.bodies.append(body)
        if cfg.fail(index):
            return web.json_response({"error": "boom"}, status=500)
        chat = request.path.endswith("chat/completions")
        isl, osl = int(body["input_length"]), int(body["max_tokens"])
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        stub.active += 1
        stub.max_active = max(stub.max_active, stub.active)
        try:
            due = t0 + cfg.ttft_s(isl)
            for k in range(osl):
                if k:
                    due += cfg.itl_s(stub.active, isl + k)
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                choice = (
                    {"index": 0, "delta": {"content": "x "}} if chat else {"index": 0, "text": "x "}
                )
                await resp.write(f"data: {json.dumps({'choices': [choice]})}\n\n".encode())
            usage = {"prompt_tokens": isl, "completion_tokens": osl, "total_tokens": isl + osl}
            await resp.write(f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n".encode())
            await resp.write(b"data: [DONE]\n\n")
        finally:
            stub.active -= 1
        return resp

    app = web.Application()
    app.router.add_get("/v1/models", models)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/v1/chat/completions", generate)
    app.router.add_post("/v1/completions", generate)
    return app


@contextmanager
def running_stub(config: StubConfig | None = None) -> Iterator[Stub]:
    """Start the stub in a thread; stop it on exit."""
    port = free_port()
    stub = Stub(f"http://127.0.0.1:{port}", config or StubConfig())
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runner = web.AppRunner(_app(stub), access_log=None)

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("stub server did not start")
    try:
        yield stub
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
