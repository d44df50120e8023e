"""``profile --online --endpoint``: measure one engine behind an OpenAI-compatible endpoint.

The engine's TP is given (``tp``); nothing is chosen here (a cluster run measures every candidate
TP and picks with :mod:`dynamo_plan.profiler.measured`). Measurements (Dynamo profiler's
conventions, DESIGN.md §3):

* **prefill** — at concurrency 1, ``prefill_requests`` requests of ``osl = 1`` at each ISL of a
  grid (``prefill_points`` values up to ``max_isl``, plus the SLA's ISL): ``prefill_ttft`` =
  median TTFT (ms; robust to a request delayed by the client's own scheduling),
  ``prefill_thpt_per_gpu = isl / (ttft / 1000) / tp`` (tokens/s/GPU).
* **decode** — for context rows ``c = isl_row + osl / 2`` (``decode_rows`` ISLs up to ``max_isl``,
  plus the SLA's), a closed loop of ``n`` requests of ``isl_row`` / ``osl`` tokens for ``n`` in a
  geometric grid of ``decode_points`` values from 1 to ``max_kv_tokens // c`` (capped by
  ``max_concurrency``), ``decode_rounds · n`` requests each. The concurrency a point reports is
  the one the requests **experienced**: for each request, the time-mean number of requests
  decoding (first → last token) during its own decode, averaged over the requests — a closed
  loop of ``n`` clients decodes fewer than ``n`` at a time while some are in prefill. Then
  ``x_kv_usage = concurrency · c / max_kv_tokens``, ``z_itl`` = mean ITL (ms) and
  ``z_thpt_per_gpu = concurrency / (itl / 1000) / tp``.

``max_kv_tokens`` (the engine's KV-cache capacity, tokens): the option, else what the endpoint
advertises — a ``max_kv_tokens`` field of its ``/v1/models`` entry, or on ``/metrics`` a Dynamo
frontend's ``dynamo_frontend_model_total_kv_blocks × dynamo_frontend_model_kv_cache_block_size``
or vLLM's ``vllm:cache_config_info`` (``num_gpu_blocks × block_size``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
import numpy as np

from dynamo_plan import __version__
from dynamo_plan.adapters.profile_files import (
    decode_arrays,
    prefill_arrays,
    save_profile_parts,
    write_profile_dir,
)
from dynamo_plan.errors import InputError, UsageError
from dynamo_plan.estimator.arch import MAX_GPUS_PER_NODE
from dynamo_plan.profiler.loadgen import Api, EndpointError, LoadReport, RequestRecord, base_url
from dynamo_plan.profiler.loadgen import list_models as _list_models
from dynamo_plan.profiler.loadgen import run_concurrency as _run_concurrency

__all__ = [
    "DecodePoint",
    "OnlineOutcome",
    "OnlineRequest",
    "PrefillPoint",
    "Role",
    "check_endpoint_url",
    "concurrency_warnings",
    "discover_max_kv_tokens",
    "experienced_concurrency",
    "plan_size",
    "run_online",
]

Role = Literal["prefill", "decode", "both"]
Progress = Callable[[], None]
RunConcurrency = Callable[..., LoadReport]


@dataclass(frozen=True)
class OnlineRequest:
    """One online profiling run of the engine behind ``endpoint`` (lengths in tokens)."""

    endpoint: str
    out: Path
    isl: int
    osl: int
    model: str | None = None
    tp: int = 1
    role: Role = "both"
    max_kv_tokens: int | None = None
    max_isl: int | None = None  # default: max(isl, 8192), at most max_kv_tokens
    ttft_ms: float | None = None  # SLA targets: recorded, drawn on the plots
    itl_ms: float | None = None
    prefill_points: int = 8
    prefill_requests: int = 3
    decode_rows: int = 3
    decode_points: int = 4
    decode_rounds: int = 2
    max_concurrency: int = 256
    api: Api = "chat"
    timeout_s: float = 600.0
    plots: bool = True

    def check(self) -> None:
        """InputError for values that cannot make a profile: an endpoint that is not an
        ``http(s)://host[:port]`` URL, counts below 1, a TP above
        :data:`~dynamo_plan.estimator.arch.MAX_GPUS_PER_NODE`."""
        check_endpoint_url(self.endpoint)
        if self.tp > MAX_GPUS_PER_NODE:
            raise InputError(
                f"--tp must be <= {MAX_GPUS_PER_NODE} (the most GPUs one NVLink domain holds), "
                f"got {self.tp}"
            )
        counts = ("isl", "osl", "tp", "prefill_points", "prefill_requests", "decode_rows")
        for name in (*counts, "decode_points", "decode_rounds", "max_concurrency"):
            if getattr(self, name) < 1:
                raise InputError(
                    f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}"
                )
        if self.role != "prefill" and self.osl < 2:
            raise InputError(f"decode profiling needs --osl >= 2 to measure ITL, got {self.osl}")
        if self.max_kv_tokens is not None and self.max_kv_tokens < 1:
            raise InputError(f"--max-kv-tokens must be >= 1, got {self.max_kv_tokens}")
        if self.max_isl is not None and self.max_isl < 1:
            raise InputError(f"--max-isl must be >= 1, got {self.max_isl}")


def check_endpoint_url(url: str, flag: str = "--endpoint") -> None:
    """InputError (exit 1, not an endpoint failure) naming ``flag`` unless ``url`` is
    ``http(s)://host[:port]`` with an optional path."""
    parts = urlsplit(url)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # a port that is not a number or out of range
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise InputError(
            f"{flag} must be an http(s)://host[:port] URL, e.g. http://127.0.0.1:8000, got {url!r}"
        )


@dataclass(frozen=True)
class PrefillPoint:
    """TTFT (ms) and throughput (tokens/s/GPU) at one ISL; ``requests`` measured, ``errors``."""

    isl: int
    ttft_ms: float
    thpt_per_gpu: float
    requests: int
    errors: int


@dataclass(frozen=True)
class DecodePoint:
    """One decode point: context (tokens), clients asked for, concurrency experienced, ITL (ms)."""

    isl: int
    context: float
    clients: int
    concurrency: float
    kv_usage: float
    itl_ms: float
    thpt_per_gpu: float
    requests: int
    errors: int


@dataclass(frozen=True)
class OnlineOutcome:
    """What was measured and written (``plots`` empty with ``plots=False``); ``warnings``: the
    decode points that did not reach their target load (:func:`concurrency_warnings`), also in
    ``profile.json`` as ``obtained_by.warnings``."""

    request: OnlineRequest
    model: str
    max_kv_tokens: int | None
    prefill: tuple[PrefillPoint, ...]
    decode: tuple[DecodePoint, ...]
    out: Path
    plots: tuple[Path, ...] = field(default=())
    elapsed_s: float = 0.0
    warnings: tuple[str, ...] = ()


#: A decode point whose experienced concurrency is below this fraction of the clients asked for
#: did not reach its target load. A strong client keeps it above: its clients only leave decode
#: for their prefill, a small share of a request when OSL is not tiny (the stub's tests: ≥ 0.8).
REACHED_MIN = 0.8


def concurrency_warnings(points: list[DecodePoint]) -> list[str]:
    """One line per decode point whose experienced concurrency is below :data:`REACHED_MIN` of
    its clients, then, when the point with the most clients of some context row is among them,
    one line saying that the profile's decode capacity is a lower bound and what to do."""
    short = [p for p in points if p.concurrency < REACHED_MIN * p.clients]
    lines = [
        f"decode at ISL {p.isl} with {p.clients} clients: only {p.concurrency:.1f} requests "
        f"decoded at once ({p.concurrency / p.clients:.0%} of the target)"
        for p in short
    ]
    top: dict[float, DecodePoint] = {}
    for p in points:
        if p.context not in top or p.clients > top[p.context].clients:
            top[p.context] = p
    missed = [p for p in top.values() if p in short]
    if missed:
        where = ", ".join(f"ISL {p.isl}: {p.concurrency:.1f} of {p.clients}" for p in missed)
        fewer = max(1, math.floor(min(p.concurrency for p in missed)))
        lines.append(
            f"the highest decode concurrencies were not reached ({where}): the profile's decode "
            "capacity is a lower bound. The client could not keep its requests decoding (a "
            "client machine too weak for the load, or the endpoint held them in prefill); "
            f"profile with fewer clients (--max-concurrency {fewer}) or from a stronger client "
            "machine"
        )
    return lines


def discover_max_kv_tokens(endpoint: str, model: str, timeout_s: float = 10.0) -> int | None:
    """KV-cache capacity (tokens) the endpoint advertises, or None (see the module doc)."""
    base = base_url(endpoint)
    try:
        with httpx.Client(timeout=timeout_s) as client:
            r = client.get(base + "/v1/models")
            if r.status_code == 200:
                for m in r.json().get("data") or []:
                    v = m.get("max_kv_tokens") if isinstance(m, dict) else None
                    if m.get("id") == model and isinstance(v, int) and v > 0:
                        return v
            r = client.get(base + "/metrics")
            if r.status_code == 200:
                return _metrics_kv_tokens(r.text, model)
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    return None


def _metrics_kv_tokens(text: str, model: str) -> int | None:
    """KV tokens from Prometheus text: a Dynamo frontend's
    ``dynamo_frontend_model_total_kv_blocks × dynamo_frontend_model_kv_cache_block_size`` (the
    series of ``model`` when labelled), else vLLM's ``vllm:cache_config_info`` labels."""
    from prometheus_client.parser import text_string_to_metric_families

    found: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labelled = sample.labels.get("model")
                if labelled not in (None, model):
                    continue
                if sample.name == "vllm:cache_config_info":
                    try:
                        n_blocks = int(sample.labels["num_gpu_blocks"])
                        found["vllm"] = n_blocks * int(sample.labels["block_size"])
                    except (KeyError, ValueError):
                        continue
                else:
                    found.setdefault(sample.name, sample.value)
    except ValueError:  # not Prometheus text
        return None
    blocks = found.get("dynamo_frontend_model_total_kv_blocks")
    size = found.get("dynamo_frontend_model_kv_cache_block_size")
    if blocks and size and blocks > 0 and size > 0:
        return int(blocks * size)
    return int(found["vllm"]) if found.get("vllm", 0) > 0 else None


def _grid(top: int, must: int, points: int) -> list[int]:
    lo = max(1, min(100, top // points))
    grid = set(np.linspace(lo, top, points).round().astype(int).tolist())
    if must <= top:
        grid.add(must)
    return sorted(grid)


def _max_isl(req: OnlineRequest, max_kv: int | None) -> int:
    top = req.max_isl if req.max_isl is not None else max(req.isl, 8192)
    return min(top, max_kv) if max_kv is not None else top


def prefill_isls(req: OnlineRequest, max_kv: int | None) -> list[int]:
    """ISLs the prefill sweep measures."""
    return _grid(_max_isl(req, max_kv), req.isl, req.prefill_points)


def decode_plan(req: OnlineRequest, max_kv: int) -> list[tuple[int, int]]:
    """``(isl_row, clients)`` pairs the decode sweep measures (rows whose context fits the cache)."""
    top = max(1, min(_max_isl(req, max_kv), max_kv - req.osl))
    plan: list[tuple[int, int]] = []
    for isl in _grid(top, req.isl, req.decode_rows):
        most = min(req.max_concurrency, int(max_kv // (isl + req.osl / 2)))
        if most < 1:
            continue
        for n in sorted(set(np.geomspace(1, most, req.decode_points).round().astype(int).tolist())):
            plan.append((isl, n))
    return plan


def plan_size(req: OnlineRequest, max_kv: int | None) -> int:
    """Requests the run will send (for a progress bar)."""
    total = 0
    if req.role != "decode":
        total += len(prefill_isls(req, max_kv)) * req.prefill_requests
    if req.role != "prefill" and max_kv is not None:
        total += sum(n * req.decode_rounds for _, n in decode_plan(req, max_kv))
    return total


def experienced_concurrency(records: tuple[RequestRecord, ...] | list[RequestRecord]) -> float:
    """Mean over successful requests of the time-mean number of requests decoding during each
    one's own decode span (first token → last token, itself included); 0 when none decoded."""
    spans = []
    for r in records:
        if r.ok and r.ttft_ms is not None and r.itl_ms is not None and r.output_tokens > 1:
            start = r.sent_s + r.ttft_ms / 1000.0
            spans.append((start, start + r.itl_ms * (r.output_tokens - 1) / 1000.0))
    if not spans:
        return 0.0
    arr = np.array(spans)
    starts, ends = arr[:, 0], arr[:, 1]
    values = []
    for s, e in spans:
        if e <= s:
            continue
        overlap = np.clip(np.minimum(ends, e) - np.maximum(starts, s), 0.0, None)
        values.append(float(overlap.sum()) / (e - s))
    return float(np.mean(values)) if values else 1.0


def _prefill(
    req: OnlineRequest,
    model: str,
    max_kv: int | None,
    run: RunConcurrency,
    progress: Progress | None,
) -> list[PrefillPoint]:
    points = []
    for isl in prefill_isls(req, max_kv):
        rep = run(
            req.endpoint, model, isl, 1, 1, n_requests=req.prefill_requests, api=req.api,
            timeout_s=req.timeout_s, progress=progress,
        )  # fmt: skip
        ttft = rep.ttft_ms.p50
        if ttft is None:
            raise EndpointError(
                f"{req.endpoint}: every prefill request at ISL {isl} failed ({_errors(rep)})"
            )
        points.append(
            PrefillPoint(isl, ttft, isl / (ttft / 1000.0) / req.tp, rep.ok, rep.count - rep.ok)
        )
    return points


def _errors(rep: LoadReport) -> str:
    return ", ".join(f"{k}: {v}" for k, v in rep.errors.items()) or "no content"


def _decode(
    req: OnlineRequest, model: str, max_kv: int, run: RunConcurrency, progress: Progress | None
) -> tuple[list[DecodePoint], list[str]]:
    """The decode points (one per distinct KV usage of a row) and the warnings for those that
    missed their target load (judged on every point measured, duplicates included)."""
    plan = decode_plan(req, max_kv)
    if not plan:
        raise InputError(
            f"max_kv_tokens {max_kv} cannot hold one request of {req.osl} output tokens "
            "(ISL + OSL/2); nothing to measure for decode"
        )
    points: list[DecodePoint] = []
    for isl, n in plan:
        rep = run(
            req.endpoint, model, isl, req.osl, n, n_requests=n * req.decode_rounds, api=req.api,
            timeout_s=req.timeout_s, progress=progress,
        )  # fmt: skip
        itl = rep.itl_ms.mean
        if itl is None or itl <= 0:
            raise EndpointError(
                f"{req.endpoint}: no decode measurement at ISL {isl}, concurrency {n} "
                f"({_errors(rep)})"
            )
        conc = experienced_concurrency(rep.records)
        ctx = isl + req.osl / 2
        points.append(
            DecodePoint(
                isl, ctx, n, conc, conc * ctx / max_kv, itl, conc / (itl / 1000.0) / req.tp,
                rep.ok, rep.count - rep.ok,
            )
        )  # fmt: skip
    return _distinct_kv(points), concurrency_warnings(points)


def _distinct_kv(points: list[DecodePoint]) -> list[DecodePoint]:
    """Keep one point per (context, kv_usage) — the profile needs distinct kv per context row."""
    seen: set[tuple[float, float]] = set()
    out = []
    for p in points:
        key = (p.context, round(p.kv_usage, 12))
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _meta(
    req: OnlineRequest, model: str, max_kv: int | None, warnings: list[str]
) -> dict[str, Any]:
    roles = ("prefill", "decode") if req.role == "both" else (req.role,)
    return {
        "model": model,
        "endpoint": req.endpoint,
        "role": req.role,
        "parallelism": {r: {"tp": req.tp, "gpus_per_engine": req.tp} for r in roles},
        "sla": {"isl": req.isl, "osl": req.osl, "ttft": req.ttft_ms, "itl": req.itl_ms},
        "max_kv_tokens": max_kv,
        "obtained_by": {
            "method": "online-endpoint",
            "api": req.api,
            "prefill_requests_per_point": req.prefill_requests,
            "decode_rounds_per_point": req.decode_rounds,
            "warnings": warnings,
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
        "dynamo_plan_version": __version__,
    }


def _write(tmp: Path, outcome: OnlineOutcome, meta: dict[str, Any]) -> list[str]:
    """Write the measured roles (one or both) and ``profile.json`` with the one profile writer
    (:func:`~dynamo_plan.adapters.profile_files.save_profile_parts`), then the plots; the plots'
    file names."""
    pre = dec = None
    if outcome.prefill:
        pre = prefill_arrays(
            np.array([p.isl for p in outcome.prefill], dtype=np.int64),
            np.array([p.ttft_ms for p in outcome.prefill]),
            np.array([p.thpt_per_gpu for p in outcome.prefill]),
        )
    if outcome.decode:
        assert outcome.max_kv_tokens is not None
        dec = decode_arrays(
            np.array([p.kv_usage for p in outcome.decode]),
            np.array([p.context for p in outcome.decode]),
            np.array([p.itl_ms for p in outcome.decode]),
            np.array([p.thpt_per_gpu for p in outcome.decode]),
            outcome.max_kv_tokens,
        )
    save_profile_parts(tmp, pre, dec, meta)
    names: list[str] = []
    if outcome.request.plots:
        from dynamo_plan.profiler.online_plots import write_online_plots

        names += [p.name for p in write_online_plots(outcome, tmp)]
    return names


def resolve(req: OnlineRequest) -> tuple[str, int | None]:
    """The model (``req.model`` or the endpoint's first) and ``max_kv_tokens`` (option, else
    advertised; UsageError when decode needs it and nothing gives it). EndpointError when the
    endpoint cannot be reached."""
    models = _list_models(req.endpoint, timeout_s=min(req.timeout_s, 10.0))
    model = req.model or (models[0] if models else None)
    if model is None:
        raise EndpointError(f"{req.endpoint}/v1/models lists no model; give --model")
    max_kv = req.max_kv_tokens
    if max_kv is None and req.role != "prefill":
        max_kv = discover_max_kv_tokens(req.endpoint, model)
        if max_kv is None:
            raise UsageError(
                f"{req.endpoint} does not advertise its KV-cache capacity "
                "(/v1/models 'max_kv_tokens', or KV-block metrics on /metrics); give --max-kv-tokens"
            )
    return model, max_kv


def run_online(
    req: OnlineRequest,
    progress: Progress | None = None,
    resolved: tuple[str, int | None] | None = None,
    run: RunConcurrency = _run_concurrency,
) -> OnlineOutcome:
    """Measure (module doc) and write ``req.out`` all-or-nothing: the roles' npz and JSON in
    Dynamo's layout, ``profile.json`` (``obtained_by.method = "online-endpoint"``) and plots.

    ``resolved``: the result of :func:`resolve` when the caller already has it. Raises
    EndpointError (unreachable endpoint, a point where every request failed), UsageError
    (no ``max_kv_tokens`` for decode) and InputError (bad values, output directory).
    """
    started = time.perf_counter()
    req.check()
    model, max_kv = resolved if resolved is not None else resolve(req)
    prefill = _prefill(req, model, max_kv, run, progress) if req.role != "decode" else []
    decode: list[DecodePoint] = []
    warnings: list[str] = []
    if req.role != "prefill":
        assert max_kv is not None
        decode, warnings = _decode(req, model, max_kv, run, progress)
    outcome = OnlineOutcome(req, model, max_kv, tuple(prefill), tuple(decode), req.out)
    meta = _meta(req, model, max_kv, warnings)
    plot_names: list[str] = []
    if req.out.is_dir() and not any(req.out.iterdir()):
        # an existing empty directory (a Job's mounted /results cannot be renamed): write in it
        try:
            plot_names.extend(_write(req.out, outcome, meta))
        except OSError as e:
            raise InputError(f"{req.out}: cannot write the profile ({e.strerror or e})") from e
    else:
        write_profile_dir(req.out, lambda tmp: plot_names.extend(_write(tmp, outcome, meta)))
    return OnlineOutcome(
        req, model, max_kv, outcome.prefill, outcome.decode, req.out,
        tuple(req.out / n for n in plot_names), time.perf_counter() - started, tuple(warnings),
    )  # fmt: skip
