"""Measured profiles (one role at one TP each) → the shared sweep's pick → a profile.

Each online measurement returns Dynamo's JSON form of one role: ``prefill_raw_data.json``
(``prefill_isl``, ``prefill_ttft`` ms, ``prefill_thpt_per_gpu`` tokens/s/GPU) or
``decode_raw_data.json`` (``x_kv_usage``, ``y_context_length``, ``z_itl`` ms,
``z_thpt_per_gpu``, ``max_kv_tokens``). :class:`MeasuredEngine` answers the sweep's
:class:`~dynamo_plan.profiler.sweep.EngineModel` questions from those measurements by the
profile's own interpolation (PCHIP along ISL / kv usage, linear between context rows;
clamped at the measured edges), so :func:`~dynamo_plan.profiler.sweep.run_sweep` picks the
TPs with exactly the offline rule. The written profile is then the chosen TPs' measured data,
not a resampling of it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import numpy as np

from dynamo_plan.adapters.profile_files import DECODE_KEYS, PREFILL_KEYS, json_arrays
from dynamo_plan.core.profile import DecodeSurface, PerformanceProfile, PrefillCurve
from dynamo_plan.errors import InputError
from dynamo_plan.profiler.sweep import SweepGrid, SweepResult, SweepSLA, run_sweep

__all__ = ["DecodeMeasurement", "MeasuredEngine", "parse_decode", "parse_prefill", "pick"]


@dataclass(frozen=True)
class DecodeMeasurement:
    """The decode surface of one TP and its engine's KV-cache capacity (tokens)."""

    surface: DecodeSurface
    max_kv_tokens: int


@dataclass(frozen=True)
class _Point:
    latency_ms: float
    thpt_per_gpu: float


def _arrays(text: str, keys: tuple[str, ...], where: str) -> dict[str, np.ndarray]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{where}:{e.lineno}: invalid JSON ({e.msg})") from e
    return json_arrays(doc, keys, where)


def parse_prefill(text: str, where: str) -> PrefillCurve:
    """A ``prefill_raw_data.json`` document; InputError naming ``where`` and the key."""
    a = _arrays(text, PREFILL_KEYS, where)
    try:
        return PrefillCurve(a["prefill_isl"], a["prefill_ttft"], a["prefill_thpt_per_gpu"])
    except InputError as e:
        raise InputError(f"{where}: {e}") from e


def parse_decode(text: str, where: str) -> DecodeMeasurement:
    """A ``decode_raw_data.json`` document; InputError naming ``where`` and the key."""
    a = _arrays(text, DECODE_KEYS, where)
    kv = np.asarray(a["max_kv_tokens"]).reshape(-1)
    if kv.size != 1 or not np.isfinite(kv[0]) or kv[0] != np.floor(kv[0]) or kv[0] <= 0:
        raise InputError(f"{where}: key 'max_kv_tokens' must be one positive integer")
    try:
        surface = DecodeSurface(
            a["x_kv_usage"], a["y_context_length"], a["z_itl"], a["z_thpt_per_gpu"]
        )
    except InputError as e:
        raise InputError(f"{where}: {e}") from e
    return DecodeMeasurement(surface, int(kv[0]))


class MeasuredEngine:
    """The sweep's EngineModel over measured curves (TPs without a measurement do not fit)."""

    name = "measured"
    version = "online"

    def __init__(
        self, prefill: dict[int, PrefillCurve], decode: dict[int, DecodeMeasurement]
    ) -> None:
        self._prefill = dict(prefill)
        self._decode = dict(decode)

    def fits(self, tp: int) -> bool:
        return tp in self._prefill and tp in self._decode

    def max_kv_tokens(self, tp: int) -> int:
        return self._decode[tp].max_kv_tokens

    def prefill(self, tp: int, isl: int) -> _Point:
        curve = self._prefill[tp]
        return _Point(curve.ttft(isl).value, curve.thpt(isl).value)

    def decode(self, tp: int, batch: int, context: int) -> _Point:
        m = self._decode[tp]
        kv = batch * context / m.max_kv_tokens
        return _Point(m.surface.itl(kv, context).value, m.surface.thpt(kv, context).value)


def pick(
    prefill: dict[int, PrefillCurve],
    decode: dict[int, DecodeMeasurement],
    sla: SweepSLA,
    max_context: int | None = None,
) -> SweepResult:
    """Choose prefill and decode TP from the measurements with the shared sweep rule.

    ``max_context`` (tokens) defaults to the widest measured range (at least ISL + OSL).
    Raises InfeasibleSLAError naming the closest TP when no measured TP meets a target, and
    InputError when no TP was measured for both roles.
    """
    engine = MeasuredEngine(prefill, decode)
    tps = sorted(tp for tp in prefill if engine.fits(tp))
    if not tps:
        raise InputError("online profiling: no TP was measured for both prefill and decode")
    expected = [t for t in (1 << k for k in range(max(tps).bit_length())) if t >= tps[0]]
    if tps != expected:
        raise InputError(
            f"online profiling: measured TPs {tps} must be consecutive powers of two ({expected})"
        )
    if max_context is None:
        widest = max(
            [float(np.max(c.isl)) for c in prefill.values()]
            + [float(np.max(m.surface.context)) for m in decode.values()]
        )
        max_context = max(int(widest), sla.isl + sla.osl)
    result = run_sweep(
        engine,
        sla,
        max_position_embeddings=max_context,
        max_gpus_per_engine=max(tps),
        grid=SweepGrid(decode_rows=2, kv_points=2, context_cap=max_context),
    )
    chosen = decode[result.decode.tp]
    profile = PerformanceProfile(prefill[result.prefill.tp], chosen.surface, chosen.max_kv_tokens)
    return dataclasses.replace(result, profile=profile)
