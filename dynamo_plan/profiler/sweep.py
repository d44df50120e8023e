"""TP sweep: pick the prefill and decode parallelism that meet an SLA, then build the profile.

Driven by anything that answers the :class:`EngineModel` questions (the offline estimator today;
a harness measuring real engines later). Units: latencies in ms, throughputs in tokens/s/GPU,
lengths in tokens.

Selection (the Dynamo profiler's rule):

* candidates are the powers of two from the smallest TP whose weights fit up to
  ``max_gpus_per_engine``;
* prefill: among candidates whose TTFT at the SLA's ISL (batch 1) is ≤ the TTFT target, the
  highest prefill throughput/GPU (ties: the smaller TP);
* decode: among (TP, concurrency) whose ITL at context ``isl + osl/2`` is ≤ the ITL target, with
  concurrency up to what the engine's KV cache holds at that context, the highest decode
  throughput/GPU (ties: the smaller TP).

Then the interpolation sweeps on the chosen sizes produce exactly Dynamo's profile layout:
prefill over an ISL grid up to the maximum context, decode over context rows × concurrency
(reported as kv_usage = concurrency · context / max_kv_tokens).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from dynamo_plan.core.profile import DecodeSurface, PerformanceProfile, PrefillCurve
from dynamo_plan.errors import InfeasibleSLAError, InputError
from dynamo_plan.estimator.arch import MAX_GPUS_PER_NODE

__all__ = [
    "DEFAULT_CONTEXT_CAP",
    "DecodeCandidate",
    "EngineModel",
    "PrefillCandidate",
    "SweepGrid",
    "SweepResult",
    "SweepSLA",
    "candidate_tps",
    "chosen_points",
    "run_sweep",
    "sweep_meta",
    "write_sweep_profile",
]

#: Upper bound (tokens) of the interpolation sweeps unless the SLA needs more.
DEFAULT_CONTEXT_CAP = 32768


@dataclass(frozen=True)
class SweepGrid:
    """How many points the sweep asks for (fewer suit a measuring harness, where each costs).

    ``prefill_points`` ISLs up to the max context (plus the SLA's ISL); ``decode_rows`` contexts ×
    ``kv_points`` concurrencies each (plus the SLA's context row); ``selection_points``
    concurrencies per TP when choosing decode TP (geometric, then bisection at the ITL target);
    ``context_cap`` (tokens) bounds the sweeps below the model's window unless ISL + OSL needs more.
    """

    prefill_points: int = 16
    decode_rows: int = 6
    kv_points: int = 8
    selection_points: int = 40
    context_cap: int = DEFAULT_CONTEXT_CAP


#: (x, latency_ms, thpt_per_gpu) arrays of one candidate's sweep
Curve = tuple[np.ndarray, np.ndarray, np.ndarray]


class Point(Protocol):
    """One estimate: latency (ms: TTFT for prefill, ITL for decode) and throughput/GPU."""

    @property
    def latency_ms(self) -> float: ...

    @property
    def thpt_per_gpu(self) -> float: ...


class EngineModel(Protocol):
    """What the sweep asks of an estimator (or of a measuring harness)."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    def fits(self, tp: int) -> bool: ...

    def max_kv_tokens(self, tp: int) -> int: ...

    def prefill(self, tp: int, isl: int) -> Point: ...

    def decode(self, tp: int, batch: int, context: int) -> Point: ...


@dataclass(frozen=True)
class SweepSLA:
    """The SLA of one deployment: mean ISL/OSL (tokens), TTFT and ITL targets (ms)."""

    isl: int
    osl: int
    ttft_ms: float
    itl_ms: float

    def __post_init__(self) -> None:
        for name, v in (("isl", self.isl), ("osl", self.osl)):
            if not isinstance(v, int | np.integer) or isinstance(v, bool) or v <= 0:
                raise InputError(f"SLA '{name}' must be a positive integer (tokens), got {v!r}")
        for name, f in (("ttft", self.ttft_ms), ("itl", self.itl_ms)):
            if not np.isfinite(f) or f <= 0:
                raise InputError(f"SLA '{name}' must be a positive number of ms, got {f!r}")

    @property
    def decode_context(self) -> int:
        """Mean context of a decoding request, ``isl + osl/2`` (tokens, rounded down)."""
        return self.isl + self.osl // 2


@dataclass(frozen=True)
class PrefillCandidate:
    """One prefill TP at the SLA's ISL; ``curve`` = (isl, ttft_ms, thpt_per_gpu) over the grid."""

    tp: int
    ttft_ms: float
    thpt_per_gpu: float
    meets: bool
    curve: Curve = field(repr=False, compare=False)


@dataclass(frozen=True)
class DecodeCandidate:
    """One decode TP at the SLA's context: its best point under the ITL target (if any).

    ``curve`` = (concurrency, itl_ms, thpt_per_gpu) over the concurrencies tried. When no
    concurrency meets the target, the fields describe the lowest-ITL point and ``meets`` is False.
    """

    tp: int
    concurrency: int
    itl_ms: float
    thpt_per_gpu: float
    max_kv_tokens: int
    meets: bool
    curve: Curve = field(repr=False, compare=False)


@dataclass(frozen=True)
class SweepResult:
    """Chosen sizes, every candidate (for plots and reports) and the resulting profile."""

    sla: SweepSLA
    prefill: PrefillCandidate
    decode: DecodeCandidate
    prefill_candidates: tuple[PrefillCandidate, ...]
    decode_candidates: tuple[DecodeCandidate, ...]
    profile: PerformanceProfile


def candidate_tps(engine: EngineModel, max_gpus_per_engine: int) -> list[int]:
    """Powers of two from the smallest TP that fits the weights up to ``max_gpus_per_engine``
    (1 to :data:`~dynamo_plan.estimator.arch.MAX_GPUS_PER_NODE`, else InputError)."""
    if not 1 <= max_gpus_per_engine <= MAX_GPUS_PER_NODE:
        raise InputError(
            f"--max-gpus-per-engine must be in 1..{MAX_GPUS_PER_NODE} (TP stays inside one "
            f"NVLink domain), got {max_gpus_per_engine}"
        )
    tps = [1 << k for k in range(int(np.log2(max_gpus_per_engine)) + 1)]
    fitting = [tp for tp in tps if engine.fits(tp)]
    if not fitting:
        raise InputError(
            f"the model's weights do not fit TP{tps[-1]} "
            f"(--max-gpus-per-engine {max_gpus_per_engine}); allow more GPUs per engine"
        )
    return [tp for tp in tps if tp >= fitting[0]]


def _isl_grid(max_context: int, must_include: int, points: int) -> np.ndarray:
    lo = max(1, min(100, max_context // points))
    grid = np.linspace(lo, max_context, points).round().astype(np.int64)
    if must_include <= max_context:
        grid = np.append(grid, must_include)
    return np.unique(grid)


def _prefill_curve(engine: EngineModel, tp: int, isls: np.ndarray) -> Curve:
    pts = [engine.prefill(tp, int(isl)) for isl in isls]
    return (
        isls.copy(),
        np.array([p.latency_ms for p in pts], dtype=np.float64),
        np.array([p.thpt_per_gpu for p in pts], dtype=np.float64),
    )


def _select_prefill(
    engine: EngineModel, tps: list[int], sla: SweepSLA, isls: np.ndarray
) -> tuple[PrefillCandidate, tuple[PrefillCandidate, ...]]:
    cands = []
    for tp in tps:
        if engine.max_kv_tokens(tp) < sla.isl:
            continue  # cannot hold the prompt's KV cache
        pt = engine.prefill(tp, sla.isl)
        ttft, thpt = float(pt.latency_ms), float(pt.thpt_per_gpu)
        curve = _prefill_curve(engine, tp, isls)
        cands.append(PrefillCandidate(tp, ttft, thpt, ttft <= sla.ttft_ms, curve))
    if not cands:
        raise InfeasibleSLAError(
            f"no TP <= {tps[-1]} has KV cache for one prompt of {sla.isl} tokens (ISL)"
        )
    ok = [c for c in cands if c.meets]
    if not ok:
        best = min(cands, key=lambda c: (c.ttft_ms, c.tp))
        raise InfeasibleSLAError(
            f"no TP <= {tps[-1]} meets TTFT {sla.ttft_ms:g} ms at ISL {sla.isl}: "
            f"best is TP{best.tp} with TTFT {best.ttft_ms:.1f} ms"
        )
    return max(ok, key=lambda c: (c.thpt_per_gpu, -c.tp)), tuple(cands)


def _decode_candidate(
    engine: EngineModel, tp: int, sla: SweepSLA, points: int
) -> DecodeCandidate | None:
    ctx = sla.decode_context
    kv = int(engine.max_kv_tokens(tp))
    max_batch = kv // ctx
    if max_batch < 1:
        return None
    grid = np.unique(np.geomspace(1, max_batch, points).round().astype(int))
    seen: dict[int, tuple[float, float]] = {}

    def at(b: int) -> tuple[float, float]:
        if b not in seen:
            pt = engine.decode(tp, b, ctx)
            seen[b] = (float(pt.latency_ms), float(pt.thpt_per_gpu))
        return seen[b]

    for b in grid:
        at(int(b))
    feasible = [b for b in grid if at(int(b))[0] <= sla.itl_ms]
    if feasible:  # refine between the largest feasible batch and the next one tried (ITL rises)
        lo = int(max(feasible))
        above = grid[grid > lo]
        hi = int(above[0]) if above.size else lo
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if at(mid)[0] <= sla.itl_ms else (lo, mid)
    bs = np.array(sorted(seen))
    itl = np.array([seen[b][0] for b in bs])
    thpt = np.array([seen[b][1] for b in bs])
    ok = np.flatnonzero(itl <= sla.itl_ms)
    meets = ok.size > 0
    i = int(ok[np.argmax(thpt[ok])]) if meets else int(np.argmin(itl))
    return DecodeCandidate(
        tp, int(bs[i]), float(itl[i]), float(thpt[i]), kv, bool(meets), (bs, itl, thpt)
    )


def _select_decode(
    engine: EngineModel, tps: list[int], sla: SweepSLA, points: int
) -> tuple[DecodeCandidate, tuple[DecodeCandidate, ...]]:
    cands = [c for tp in tps if (c := _decode_candidate(engine, tp, sla, points)) is not None]
    if not cands:
        raise InfeasibleSLAError(
            f"no TP <= {tps[-1]} has KV cache for one request of {sla.decode_context} tokens "
            "(ISL + OSL/2)"
        )
    ok = [c for c in cands if c.meets]
    if not ok:
        best = min(cands, key=lambda c: (c.itl_ms, c.tp))
        raise InfeasibleSLAError(
            f"no TP <= {tps[-1]} meets ITL {sla.itl_ms:g} ms at context {sla.decode_context} "
            f"(ISL + OSL/2): best is TP{best.tp} at concurrency {best.concurrency} "
            f"with ITL {best.itl_ms:.2f} ms"
        )
    return max(ok, key=lambda c: (c.thpt_per_gpu, -c.tp)), tuple(cands)


def _decode_surface(
    engine: EngineModel, tp: int, max_kv: int, max_context: int, sla_context: int, grid: SweepGrid
) -> DecodeSurface:
    top = min(max_context, max_kv)
    lo = max(1, min(100, top // grid.decode_rows))
    rows = np.linspace(lo, top, grid.decode_rows).round().astype(np.int64)
    if sla_context <= top:
        rows = np.append(rows, sla_context)
    xs: list[float] = []
    ys: list[float] = []
    zi: list[float] = []
    zt: list[float] = []
    for ctx in np.unique(rows):
        max_batch = max_kv // int(ctx)
        for b in np.unique(np.linspace(1, max_batch, grid.kv_points).round().astype(int)):
            pt = engine.decode(tp, int(b), int(ctx))
            xs.append(int(b) * int(ctx) / max_kv)
            ys.append(float(ctx))
            zi.append(float(pt.latency_ms))
            zt.append(float(pt.thpt_per_gpu))
    return DecodeSurface(np.array(xs), np.array(ys), np.array(zi), np.array(zt))


def run_sweep(
    engine: EngineModel,
    sla: SweepSLA,
    max_position_embeddings: int,
    max_gpus_per_engine: int = 8,
    grid: SweepGrid | None = None,
    meta: dict[str, Any] | None = None,
) -> SweepResult:
    """Select prefill/decode TP for ``sla`` and sweep the chosen sizes into a profile.

    Raises InputError when the request cannot fit the model (ISL + OSL above its context window,
    weights too large) and InfeasibleSLAError naming the closest configuration when no candidate
    meets a target.
    """
    if sla.isl + sla.osl > max_position_embeddings:
        raise InputError(
            f"SLA ISL + OSL = {sla.isl + sla.osl} tokens exceeds the model's context window "
            f"(max_position_embeddings {max_position_embeddings})"
        )
    tps = candidate_tps(engine, max_gpus_per_engine)
    grid = grid or SweepGrid()
    max_context = min(max_position_embeddings, max(grid.context_cap, sla.isl + sla.osl))
    problems: list[str] = []
    try:
        isls = _isl_grid(max_context, sla.isl, grid.prefill_points)
        pre, pre_all = _select_prefill(engine, tps, sla, isls)
    except InfeasibleSLAError as e:
        problems.append(str(e))
    try:
        dec, dec_all = _select_decode(engine, tps, sla, grid.selection_points)
    except InfeasibleSLAError as e:
        problems.append(str(e))
    if problems:  # both roles reported when both fail
        raise InfeasibleSLAError("; ".join(problems))
    isl, ttft, thpt = pre.curve
    keep = isl <= engine.max_kv_tokens(pre.tp)
    prefill = PrefillCurve(isl[keep], ttft[keep], thpt[keep])
    surface = _decode_surface(
        engine, dec.tp, dec.max_kv_tokens, max_context, sla.decode_context, grid
    )
    profile = PerformanceProfile(prefill, surface, dec.max_kv_tokens, dict(meta or {}))
    return SweepResult(sla, pre, dec, pre_all, dec_all, profile)


def sweep_meta(
    result: SweepResult,
    *,
    model: str,
    system: str,
    backend: str,
    obtained_by: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``profile.json`` of a swept profile (offline or measured in a cluster): model, system,
    backend (then ``extra``), the chosen parallelism, the SLA (ms, tokens), KV capacity, what the
    chosen engines do at the SLA, and how the data was obtained."""
    from dynamo_plan import __version__

    sla = result.sla
    return {
        "model": model,
        "system": system,
        "backend": backend,
        **(extra or {}),
        "parallelism": {
            "prefill": {"tp": result.prefill.tp, "gpus_per_engine": result.prefill.tp},
            "decode": {"tp": result.decode.tp, "gpus_per_engine": result.decode.tp},
        },
        "sla": {"isl": sla.isl, "osl": sla.osl, "ttft": sla.ttft_ms, "itl": sla.itl_ms},
        "max_kv_tokens": result.decode.max_kv_tokens,
        "at_sla": {
            "prefill": {
                "ttft_ms": result.prefill.ttft_ms,
                "thpt_per_gpu": result.prefill.thpt_per_gpu,
            },
            "decode": {
                "context": sla.decode_context,
                "concurrency": result.decode.concurrency,
                "itl_ms": result.decode.itl_ms,
                "thpt_per_gpu": result.decode.thpt_per_gpu,
            },
        },
        "obtained_by": obtained_by,
        "dynamo_plan_version": __version__,
    }


def chosen_points(result: SweepResult) -> dict[str, Any]:
    """The chosen engines at the SLA as plain data: ``prefill`` (``tp``, ``ttft_ms``,
    ``thpt_per_gpu`` tokens/s/GPU) and ``decode`` (``tp``, ``concurrency``, ``itl_ms``,
    ``thpt_per_gpu``, ``max_kv_tokens`` tokens) — the commands' results report them."""
    pre, dec = result.prefill, result.decode
    return {
        "prefill": {"tp": pre.tp, "ttft_ms": pre.ttft_ms, "thpt_per_gpu": pre.thpt_per_gpu},
        "decode": {
            "tp": dec.tp,
            "concurrency": dec.concurrency,
            "itl_ms": dec.itl_ms,
            "thpt_per_gpu": dec.thpt_per_gpu,
            "max_kv_tokens": dec.max_kv_tokens,
        },
    }


def write_sweep_profile(out: Path, result: SweepResult, plots: bool) -> tuple[Path, ...]:
    """Write ``result.profile`` (its ``meta`` as ``profile.json``) to directory ``out``
    all-or-nothing, with the sweep's plots when ``plots`` — what ``profile --offline`` and a
    cluster run write (:func:`~dynamo_plan.adapters.profile_files.save_profile` inside
    :func:`~dynamo_plan.adapters.profile_files.write_profile_dir`). Returns the plots' paths."""
    from dynamo_plan.adapters.profile_files import save_profile, write_profile_dir

    names: list[str] = []

    def fill(tmp: Path) -> None:
        save_profile(result.profile, tmp)
        if plots:
            from dynamo_plan.profiler.plots import write_plots

            names.extend(p.name for p in write_plots(result, tmp))

    write_profile_dir(out, fill)
    return tuple(out / n for n in names)
