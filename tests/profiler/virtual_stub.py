"""The streaming stub's latency model (:class:`tests.profiler.openai_stub.StubConfig`) served in
memory on a virtual clock: load-generator timing tests that do not depend on the machine.

Over real HTTP the client sees each token later than the stub makes it — loopback, parsing and,
on a loaded 2-core machine, 10–25 ms of wake-up lag a request — so a test comparing what the
client measured with the stub's model needs a tolerance that either fails there or means
little. :func:`virtual_endpoint` removes the machine instead: every HTTP request of
:mod:`dynamo_plan.profiler.loadgen` and :mod:`dynamo_plan.profiler.online` goes to a
:class:`VirtualStub` (an httpx transport, no socket), each of loadgen's ``asyncio.run`` runs on a
:class:`~tests.sim.mocker.virtual_time.VirtualTimeLoop` and loadgen's clock
(``time.perf_counter``) is that loop's. A request then reaches the stub at the instant the client
sends it and every chunk reaches the client at the instant the stub makes it, so what the load
generator measures must equal what the stub did, exactly, however busy the machine — and a
client that measured from the response headers, divided by the wrong token count or took the
wrong statistic is off by a whole latency, not by a tolerance. The real-HTTP path is exercised by
the other tests (``running_stub``, the mocker).

The stub answers ``GET /v1/models`` (``max_kv_tokens`` when configured), ``GET /metrics``
(when configured) and streaming ``POST /v1/chat/completions`` / ``/v1/completions`` like
``openai_stub``: the first token ``ttft_s(isl)`` (+ ``extra_ttft_s``) after arrival, then one
every ``itl_s(active, context)``, at absolute times; ``active`` counts the requests streaming.
"""

from __future__ import annotations

import asyncio
import json
import time
import types
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx
import pytest

import dynamo_plan.profiler.loadgen as loadgen
import dynamo_plan.profiler.online as online
from tests.profiler.openai_stub import StubConfig
from tests.sim.mocker.virtual_time import run_virtual

__all__ = ["URL", "Served", "VirtualStub", "virtual_endpoint"]

#: the endpoint to give the load generator (never resolved: no socket is opened)
URL = "http://virtual-stub:8000"


@dataclass
class Served:
    """One completion request as the stub served it. ``run``: which event loop (one per
    load-generator call, numbered from 0) and ``index``: its arrival order in that run; times
    (s) on that run's virtual clock: ``arrival``, ``first`` and ``last`` content chunk made
    (None until made)."""

    run: int
    index: int
    isl: int
    osl: int
    body: dict[str, Any]
    arrival: float
    first: float | None = None
    last: float | None = None

    @property
    def ttft_ms(self) -> float:
        assert self.first is not None
        return (self.first - self.arrival) * 1000.0

    @property
    def itl_ms(self) -> float:
        """Mean gap between content chunks (ms)."""
        assert self.first is not None and self.last is not None and self.osl > 1
        return (self.last - self.first) * 1000.0 / (self.osl - 1)


@dataclass
class VirtualStub(httpx.AsyncBaseTransport, httpx.BaseTransport):
    """An httpx transport serving ``config`` on the running loop's clock; ``extra_ttft_s(index,
    osl)``: seconds added to the first-token time of request ``index`` of a run (an outlier)."""

    config: StubConfig
    extra_ttft_s: Callable[[int, int], float] = lambda index, osl: 0.0
    served: list[Served] = field(default_factory=list)
    active: int = 0
    max_active: int = 0
    _loop: asyncio.AbstractEventLoop | None = None  # held, so a new loop never reuses its id
    _runs: int = 0
    _in_run: int = 0  # requests served in the current run

    def runs(self) -> list[list[Served]]:
        """The served requests grouped by run, in run order."""
        out: list[list[Served]] = [[] for _ in range(self._runs)]
        for s in self.served:
            out[s.run].append(s)
        return out

    def _control(self, request: httpx.Request) -> httpx.Response:
        cfg = self.config
        if request.method == "GET" and request.url.path == "/v1/models":
            entry: dict[str, Any] = {"id": cfg.model, "object": "model"}
            if cfg.max_kv_tokens is not None:
                entry["max_kv_tokens"] = cfg.max_kv_tokens
            return httpx.Response(200, json={"object": "list", "data": [entry]})
        if request.method == "GET" and request.url.path == "/metrics" and cfg.metrics is not None:
            return httpx.Response(200, text=cfg.metrics)
        return httpx.Response(404)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._control(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        paths = ("/v1/chat/completions", "/v1/completions")
        if request.method != "POST" or request.url.path not in paths:
            return self._control(request)
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._runs, self._in_run = loop, self._runs + 1, 0
        arrival = loop.time()
        body = json.loads(await request.aread())
        isl, osl = int(body["input_length"]), int(body["max_tokens"])
        rec = Served(self._runs - 1, self._in_run, isl, osl, body, arrival)
        self._in_run += 1
        self.served.append(rec)
        chat = request.url.path.endswith("chat/completions")
        stream = self._stream(loop, rec, chat)
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=stream)

    async def _stream(
        self, loop: asyncio.AbstractEventLoop, rec: Served, chat: bool
    ) -> AsyncIterator[bytes]:
        cfg = self.config
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            due = rec.arrival + cfg.ttft_s(rec.isl) + self.extra_ttft_s(rec.index, rec.osl)
            for k in range(rec.osl):
                if k:
                    due += cfg.itl_s(self.active, rec.isl + k)
                await asyncio.sleep(due - loop.time())
                rec.first = loop.time() if rec.first is None else rec.first
                rec.last = loop.time()
                choice: dict[str, Any] = (
                    {"index": 0, "delta": {"content": "x "}} if chat else {"index": 0, "text": "x "}
                )
                yield f"data: {json.dumps({'choices': [choice]})}\n\n".encode()
            usage = {
                "prompt_tokens": rec.isl,
                "completion_tokens": rec.osl,
                "total_tokens": rec.isl + rec.osl,
            }
            yield f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n".encode()
            yield b"data: [DONE]\n\n"
        finally:
            self.active -= 1


def _with(module: types.ModuleType, **replace: Any) -> types.ModuleType:
    """A copy of ``module``'s namespace with ``replace`` in it."""
    shim = types.ModuleType(module.__name__)
    shim.__dict__.update(vars(module))
    shim.__dict__.update(replace)
    return shim


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


@contextmanager
def virtual_endpoint(stub: VirtualStub) -> Iterator[VirtualStub]:
    """Within: loadgen and online talk to ``stub`` (at any URL, e.g. :data:`URL`), loadgen's
    event loops are virtual-time loops and its clock is theirs (module doc)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(loadgen, "asyncio", _with(asyncio, run=run_virtual))
        mp.setattr(loadgen, "time", _with(time, perf_counter=_loop_time))
        mp.setattr(
            loadgen, "httpx", _with(httpx, AsyncClient=partial(httpx.AsyncClient, transport=stub))
        )
        mp.setattr(online, "httpx", _with(httpx, Client=partial(httpx.Client, transport=stub)))
        yield stub
