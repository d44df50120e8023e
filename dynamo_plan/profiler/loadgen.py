"""Load generator for OpenAI-compatible endpoints (async httpx, streaming).

Two drivers share one request routine:

* :func:`replay` — an open loop: request ``i`` is sent at ``arrival_s[i] / rate_scale`` seconds
  after the start whatever happened to earlier ones (late responses never delay later arrivals);
  with ``concurrency_limit`` a request that finds no free slot when it is due (all taken, or
  others already waiting: the semaphore is fair) is queued (``RequestRecord.queued``) and its
  wait for a slot is recorded (``RequestRecord.wait_s``). Queueing is read from the semaphore at
  that moment, never inferred from timing, so a late start on a busy machine is not a queue.
* :func:`run_concurrency` — a closed loop of ``concurrency`` workers, each sending its next
  request when the previous one ends (the profiler's driver).

Every request streams (``stream: true``, ``stream_options.include_usage``) with a prompt of
``isl`` words, ``max_tokens = min_tokens = osl``, ``ignore_eos: true`` and the extension field
``input_length: isl`` (servers that tokenize differently, such as the mocker, read it).

Per request (ms): TTFT = request sent (the clock read just before the client starts the request,
as vLLM's ``benchmark_serving`` does) → first content chunk, so the client's own overhead (a few
ms on a busy machine) is included and a TTFT is never under-reported; ITL = (last content chunk −
first) / (tokens − 1), which is the mean gap between content chunks when each chunk carries one
token; end-to-end = request sent → end of stream. Tokens out: ``usage.completion_tokens`` when
the server sends usage, else the number of content chunks.

(Timing from httpx's ``send_request_body.complete`` trace event instead was tried: it reads
2–5 ms less on an idle machine, but on a loaded one the event is handled late and the TTFT came
out *below* the server's own.)
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import httpx
import numpy as np

from dynamo_plan.errors import EndpointError, InputError

__all__ = [
    "Api",
    "EndpointError",  # re-exported from dynamo_plan.errors (importers use this name)
    "LatencyStats",
    "LoadReport",
    "RequestRecord",
    "base_url",
    "check_replay_settings",
    "list_models",
    "replay",
    "run_concurrency",
]

Api = Literal["chat", "completions"]
Progress = Callable[[], None]

_PATHS: dict[str, str] = {"chat": "/v1/chat/completions", "completions": "/v1/completions"}


@dataclass(frozen=True)
class RequestRecord:
    """One request as sent and measured. Times in s from the run's start; latencies in ms.

    ``queued``: no concurrency slot was free when the request was due; ``wait_s``: how long it
    then waited for one (s; 0 when not queued).
    """

    index: int
    scheduled_s: float
    sent_s: float
    end_s: float
    wait_s: float
    isl: int
    osl: int
    ttft_ms: float | None
    itl_ms: float | None
    e2e_ms: float | None
    output_tokens: int
    error: str | None = None
    queued: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class LatencyStats:
    """Mean and percentiles (ms) over the successful requests that have the value; None if none."""

    mean: float | None
    p50: float | None
    p90: float | None
    p99: float | None

    @staticmethod
    def of(values: Iterable[float | None]) -> LatencyStats:
        arr = np.array([v for v in values if v is not None], dtype=np.float64)
        if arr.size == 0:
            return LatencyStats(None, None, None, None)
        p50, p90, p99 = np.percentile(arr, [50, 90, 99])
        return LatencyStats(float(arr.mean()), float(p50), float(p90), float(p99))


@dataclass(frozen=True)
class LoadReport:
    """Summary of one run plus every request's record.

    ``duration_s``: first send → last response; ``achieved_rps`` = count / duration_s;
    ``output_tok_s`` = output tokens of successful requests / duration_s; ``queued``: the
    requests that found no free concurrency slot (``RequestRecord.queued``), ``total_wait_s``:
    the sum of their ``wait_s`` (s).
    """

    url: str
    model: str
    count: int
    ok: int
    errors: dict[str, int]
    duration_s: float
    achieved_rps: float
    output_tok_s: float
    ttft_ms: LatencyStats
    itl_ms: LatencyStats
    e2e_ms: LatencyStats
    queued: int
    total_wait_s: float
    records: tuple[RequestRecord, ...]

    def summary(self) -> dict[str, Any]:
        """Everything but the per-request records, as plain data."""
        out = asdict(self)
        del out["records"]
        return out


def _prompt(isl: int) -> str:
    return " ".join(["hi"] * max(1, isl))


def _body(api: Api, model: str, isl: int, osl: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": osl,
        "min_tokens": osl,
        "ignore_eos": True,
        "input_length": isl,
    }
    if api == "chat":
        body["messages"] = [{"role": "user", "content": _prompt(isl)}]
    else:
        body["prompt"] = _prompt(isl)
    return body


def _content(chunk: dict[str, Any], api: Api) -> str:
    choices = chunk.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        return ""
    if api == "chat":
        delta = choices[0].get("delta") or {}
        text = delta.get("content") if isinstance(delta, dict) else None
    else:
        text = choices[0].get("text")
    return text if isinstance(text, str) else ""


def _error_kind(e: BaseException) -> str:
    return type(e).__name__


async def _one(
    client: httpx.AsyncClient,
    url: str,
    api: Api,
    model: str,
    index: int,
    isl: int,
    osl: int,
    t0: float,
    scheduled_s: float,
    wait_s: float,
    queued: bool = False,
) -> RequestRecord:
    """Send one streaming request and measure it; failures become ``error`` (never raised)."""
    sent = time.perf_counter()
    first: float | None = None
    last: float | None = None
    chunks = 0
    usage_tokens: int | None = None
    error: str | None = None
    done = False
    try:
        async with client.stream(
            "POST",
            url + _PATHS[api],
            json=_body(api, model, isl, osl),
        ) as r:
            if r.status_code != 200:
                await r.aread()
                error = f"HTTP {r.status_code}"
            else:
                # read to the end of the stream (not just [DONE]) so the connection is reused
                async for line in r.aiter_lines():
                    if done or not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        done = True
                        continue
                    now = time.perf_counter()
                    chunk = json.loads(data)
                    if not isinstance(chunk, dict):
                        continue
                    if "error" in chunk:
                        error = "stream error"
                        break
                    usage = chunk.get("usage")
                    if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
                        usage_tokens = usage["completion_tokens"]
                    if _content(chunk, api):
                        chunks += 1
                        first = now if first is None else first
                        last = now
    except (httpx.HTTPError, json.JSONDecodeError, OSError) as e:
        error = _error_kind(e)
    end = time.perf_counter()
    if error is None and first is None:
        error = "no content"
    tokens = usage_tokens if usage_tokens is not None else chunks
    ok = error is None and first is not None and last is not None
    itl = None
    if ok and first is not None and last is not None and tokens > 1:
        itl = (last - first) * 1000.0 / (tokens - 1)
    return RequestRecord(
        index=index,
        scheduled_s=scheduled_s,
        sent_s=sent - t0,
        end_s=end - t0,
        wait_s=wait_s,
        isl=isl,
        osl=osl,
        ttft_ms=(first - sent) * 1000.0 if ok and first is not None else None,
        itl_ms=itl,
        e2e_ms=(end - sent) * 1000.0 if ok else None,
        output_tokens=tokens if ok else 0,
        error=error,
        queued=queued,
    )


def _client(timeout_s: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
    )


def base_url(url: str) -> str:
    """The endpoint's root: ``http://h:8000/v1/`` → ``http://h:8000`` (routes are appended)."""
    return url.rstrip("/").removesuffix("/v1")


async def _probe(client: httpx.AsyncClient, url: str) -> list[str]:
    """Model ids of ``GET /v1/models`` (empty when the server has no such route);
    EndpointError when the endpoint cannot be reached."""
    try:
        r = await client.get(url + "/v1/models")
    except httpx.HTTPError as e:
        raise EndpointError(f"{url}: cannot reach the endpoint ({_error_kind(e)}: {e})") from e
    if r.status_code != 200:
        return []
    try:
        data = r.json().get("data") or []
        return [str(m["id"]) for m in data if isinstance(m, dict) and "id" in m]
    except (ValueError, AttributeError) as e:
        raise EndpointError(f"{url}/v1/models: expected a JSON model list") from e


def list_models(url: str, timeout_s: float = 10.0) -> list[str]:
    """Model ids the endpoint serves (``GET /v1/models``); EndpointError when unreachable."""

    async def go() -> list[str]:
        async with _client(timeout_s) as client:
            return await _probe(client, base_url(url))

    return asyncio.run(go())


def _report(url: str, model: str, records: list[RequestRecord]) -> LoadReport:
    records.sort(key=lambda r: r.index)
    ok = [r for r in records if r.ok]
    errors = Counter(r.error for r in records if r.error is not None)
    span = max(r.end_s for r in records) - min(r.sent_s for r in records) if records else 0.0
    duration = max(span, 1e-9)
    tokens = sum(r.output_tokens for r in ok)
    waits = [r.wait_s for r in records if r.queued]
    return LoadReport(
        url=url,
        model=model,
        count=len(records),
        ok=len(ok),
        errors=dict(sorted(errors.items())),
        duration_s=span,
        achieved_rps=len(records) / duration if records else 0.0,
        output_tok_s=tokens / duration if records else 0.0,
        ttft_ms=LatencyStats.of(r.ttft_ms for r in ok),
        itl_ms=LatencyStats.of(r.itl_ms for r in ok),
        e2e_ms=LatencyStats.of(r.e2e_ms for r in ok),
        queued=len(waits),
        total_wait_s=float(sum(waits)),
        records=tuple(records),
    )


def _check(timeout_s: float, rate_scale: float = 1.0) -> None:
    if not timeout_s > 0:
        raise InputError(f"--timeout must be > 0 s, got {timeout_s}")
    if not (rate_scale > 0 and np.isfinite(rate_scale)):
        raise InputError(f"--rate-scale must be a positive number, got {rate_scale}")


def check_replay_settings(
    timeout_s: float, rate_scale: float = 1.0, concurrency_limit: int | None = None
) -> None:
    """InputError for settings :func:`replay` cannot run with: ``timeout_s`` (s) and
    ``rate_scale`` must be finite numbers > 0, ``concurrency_limit`` >= 1 when given. Callers
    check before contacting the endpoint, so a bad flag is exit 1, not an endpoint failure."""
    _check(timeout_s, rate_scale)
    if concurrency_limit is not None and concurrency_limit < 1:
        raise InputError(f"--concurrency-limit must be >= 1, got {concurrency_limit}")


async def _replay(
    url: str,
    model: str,
    plan: list[tuple[float, int, int]],
    concurrency_limit: int | None,
    api: Api,
    timeout_s: float,
    progress: Progress | None,
) -> LoadReport:
    records: list[RequestRecord] = []
    slots = asyncio.Semaphore(concurrency_limit) if concurrency_limit else None
    async with _client(timeout_s) as client:
        await _probe(client, url)
        t0 = time.perf_counter()

        async def fire(i: int, at: float, isl: int, osl: int) -> None:
            if slots is None:
                rec = await _one(client, url, api, model, i, isl, osl, t0, at, 0.0)
            else:
                # no await between this check and acquire(): locked() is exactly "acquire
                # would wait" (no slot free, or earlier requests already waiting for one)
                queued = slots.locked()
                asked = time.perf_counter()
                async with slots:
                    wait = time.perf_counter() - asked if queued else 0.0
                    rec = await _one(client, url, api, model, i, isl, osl, t0, at, wait, queued)
            records.append(rec)
            if progress is not None:
                progress()

        tasks: list[asyncio.Task[None]] = []
        for i, (at, isl, osl) in enumerate(plan):
            delay = at - (time.perf_counter() - t0)
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(fire(i, at, isl, osl)))
        await asyncio.gather(*tasks)
    return _report(url, model, records)


def replay(
    url: str,
    model: str,
    requests: Iterable[tuple[float, int, int]],
    rate_scale: float = 1.0,
    duration_s: float | None = None,
    concurrency_limit: int | None = None,
    api: Api = "chat",
    timeout_s: float = 600.0,
    progress: Progress | None = None,
) -> LoadReport:
    """Send ``requests`` — ``(arrival_s, isl, osl)``, arrival in s from the trace's start — as an
    open loop at ``arrival_s / rate_scale``; only arrivals before ``duration_s`` (after scaling)
    are sent; in-flight requests are awaited. ``progress()`` is called once per finished request.

    Raises EndpointError when the endpoint cannot be reached at the start; failures of single
    requests are counted in ``LoadReport.errors`` by kind (``HTTP 500``, ``ReadTimeout``, ...).
    """
    check_replay_settings(timeout_s, rate_scale, concurrency_limit)
    plan = sorted(
        ((float(a) / rate_scale, int(i), int(o)) for a, i, o in requests), key=lambda p: p[0]
    )
    if duration_s is not None:
        plan = [p for p in plan if p[0] < duration_s]
    return asyncio.run(
        _replay(base_url(url), model, plan, concurrency_limit, api, timeout_s, progress)
    )


async def _closed(
    url: str,
    model: str,
    isl: int,
    osl: int,
    concurrency: int,
    n_requests: int | None,
    duration_s: float | None,
    api: Api,
    timeout_s: float,
    progress: Progress | None,
) -> LoadReport:
    records: list[RequestRecord] = []
    async with _client(timeout_s) as client:
        await _probe(client, url)
        t0 = time.perf_counter()
        counter = iter(range(n_requests if n_requests is not None else 2**62))

        async def worker() -> None:
            for i in counter:
                now = time.perf_counter() - t0
                if duration_s is not None and now >= duration_s:
                    return
                records.append(await _one(client, url, api, model, i, isl, osl, t0, now, 0.0))
                if progress is not None:
                    progress()

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return _report(url, model, records)


def run_concurrency(
    url: str,
    model: str,
    isl: int,
    osl: int,
    concurrency: int,
    n_requests: int | None = None,
    duration_s: float | None = None,
    api: Api = "chat",
    timeout_s: float = 600.0,
    progress: Progress | None = None,
) -> LoadReport:
    """Closed loop: ``concurrency`` workers send ``isl``/``osl`` requests back to back until
    ``n_requests`` were started or ``duration_s`` passed (at least one of the two is needed)."""
    _check(timeout_s)
    if concurrency < 1:
        raise InputError(f"concurrency must be >= 1, got {concurrency}")
    if n_requests is None and duration_s is None:
        raise InputError("run_concurrency needs n_requests or duration_s")
    return asyncio.run(
        _closed(
            base_url(url),
            model,
            isl,
            osl,
            concurrency,
            n_requests,
            duration_s,
            api,
            timeout_s,
            progress,
        )
    )
