"""Extend a measured profile beyond its range with the roofline calibrated on it.

A measured profile covers prefill ISLs up to its last ``prefill_isl`` and decode contexts up to
its last ``y_context_length`` row; traffic beyond that (see
:func:`~dynamo_plan.sim.result.out_of_profile`) is otherwise served with clamped lookups. Here
the roofline estimator is calibrated on the measured points
(:func:`~dynamo_plan.estimator.calibration.fit`, the same fit as ``--calibrate DIR``) and asked
for the missing part:

* **prefill**: extra ISLs (tokens) above the last measured one, spaced like the measured ones
  (at most :data:`MAX_NEW_POINTS`), up to the ISL needed. TTFT (ms) is the calibrated estimate
  times the ratio measured/estimated at the last measured ISL (so the curve continues without a
  step), held at least at the last measured TTFT and non-decreasing; throughput (tokens/s/GPU)
  follows the TTFT.
* **decode**: extra context rows (tokens) above the last measured row, spaced like the measured
  rows (at most :data:`MAX_NEW_POINTS`), up to the context needed. Each row has as many points as
  the last measured row, over the same kv_usage span (batch 1 up to the last row's top
  kv_usage). ITL (ms) is the calibrated estimate times the measured/estimated ratio of the last
  measured row at an equal batch, then **lifted** to the ITL of every lower row at an equal
  batch and to its running maximum over the batch, so the :class:`DecodeSurface` invariants
  hold (ITL monotone in batch and in context; no new point needs the surface's own lifting);
  throughput follows the ITL.

Measured points are kept exactly as they were. ``profile.json`` records the extension under
``extended`` (:func:`extension_record`): estimated points are those with ISL above
``prefill_isl_from`` and context above ``decode_context_from``; the plots shade that region.
A profile whose ``profile.json`` lacks the model or system (or names ones the estimator does not
catalogue) is not extended: :attr:`Extension.message` says why, and lookups keep clamping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from dynamo_plan.core.backends import BACKENDS, BackendName
from dynamo_plan.core.profile import DecodeSurface, PerformanceProfile, PrefillCurve
from dynamo_plan.errors import InputError

if TYPE_CHECKING:
    from dynamo_plan.estimator.calibration import Fit
    from dynamo_plan.estimator.roofline import RooflineEstimator

__all__ = [
    "EXTENDED_BY",
    "MAX_NEW_POINTS",
    "Extension",
    "estimated_from",
    "extend_for_traffic",
    "extend_profile",
    "measured_part",
    "traffic_range",
]

#: ``profile.json``'s ``extended.by``
EXTENDED_BY = "roofline calibrated on measured"
#: Most ISL points / context rows added per role (the spacing widens beyond that).
MAX_NEW_POINTS = 32
#: Backend assumed when ``profile.json`` records none (the shared measurement is vLLM's).
DEFAULT_BACKEND: BackendName = "vllm"

F = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Extension:
    """Result of :func:`extend_profile`.

    ``profile``: the extended profile (the input unchanged when nothing was added);
    ``extended``: whether points were added; ``message``: one line for the warning (empty when
    the profile already covered the range); ``record``: ``profile.json``'s ``extended`` entry
    (None when not extended); ``notes``: what was assumed or limited (one line each)."""

    profile: PerformanceProfile
    extended: bool
    message: str
    record: dict[str, Any] | None = None
    notes: tuple[str, ...] = field(default=())


def traffic_range(isl: npt.ArrayLike, osl: npt.ArrayLike) -> tuple[int, int]:
    """``(largest ISL, largest mid-life context isl + osl/2)`` of requests (tokens; 0, 0 for
    none) — the range a profile must cover (:func:`~dynamo_plan.sim.result.out_of_profile`)."""
    i = np.asarray(isl, dtype=np.float64).reshape(-1)
    o = np.asarray(osl, dtype=np.float64).reshape(-1)
    if i.size == 0:
        return 0, 0
    return int(np.max(i)), math.ceil(float(np.max(i + o / 2.0)))


def estimated_from(profile: PerformanceProfile) -> tuple[float | None, float | None]:
    """``(prefill_isl_from, decode_context_from)`` of an extended profile (estimated points lie
    above them); ``(None, None)`` for a profile that was not extended."""
    rec = profile.meta.get("extended")
    if not isinstance(rec, dict):
        return None, None
    p, d = rec.get("prefill_isl_from"), rec.get("decode_context_from")
    return (
        float(p) if isinstance(p, int | float) else None,
        float(d) if isinstance(d, int | float) else None,
    )


def measured_part(profile: PerformanceProfile) -> PerformanceProfile:
    """``profile`` without the points an earlier extension estimated (itself when none);
    ``extended`` is dropped from its meta."""
    p_from, d_from = estimated_from(profile)
    if p_from is None and d_from is None:
        return profile
    pre, dec = profile.prefill, profile.decode
    keep_p = pre.isl <= (p_from if p_from is not None else math.inf)
    keep_d = dec.context <= (d_from if d_from is not None else math.inf)
    meta = {k: v for k, v in profile.meta.items() if k != "extended"}
    return PerformanceProfile(
        PrefillCurve(pre.isl[keep_p], pre.ttft_ms[keep_p], pre.thpt_per_gpu[keep_p]),
        DecodeSurface(
            dec.kv_usage[keep_d], dec.context[keep_d], dec.itl_ms[keep_d], dec.thpt_per_gpu[keep_d]
        ),
        profile.max_kv_tokens,
        meta,
    )


def _new_points(last: float, target: float, spacing: float) -> F:
    """Points above ``last`` up to ``target`` (included), ``spacing`` apart (wider when that
    would take more than :data:`MAX_NEW_POINTS`), rounded to whole tokens."""
    target = math.ceil(target)
    if target <= last:
        return np.zeros(0)
    n = max(1, min(MAX_NEW_POINTS, math.ceil((target - last) / max(spacing, 1.0))))
    pts = np.unique(np.round(np.linspace(last, target, n + 1)[1:]))
    return pts[pts > last].astype(np.float64)


def _spacing(values: F) -> float:
    return float(np.median(np.diff(values))) if values.size > 1 else float(values[-1])


def _calibrated(
    profile: PerformanceProfile, directory: Path
) -> tuple[RooflineEstimator, Fit, int, int, list[str]] | str:
    """The roofline calibrated on ``profile`` (its measured part), with the TPs per role and
    notes; or why it cannot be built (one phrase)."""
    from dynamo_plan.adapters.profile_files import parse_profile_meta
    from dynamo_plan.estimator import load_gpu, load_model
    from dynamo_plan.estimator.calibration import fit, measurement_from_profile
    from dynamo_plan.estimator.roofline import RooflineEstimator
    from dynamo_plan.profiler.offline import _profile_tp

    meta = parse_profile_meta(profile.meta, directory / "profile.json")
    missing = [k for k in ("model", "system") if not getattr(meta, k)]
    if missing:
        return f"{directory}/profile.json records no {' or '.join(missing)} to estimate with"
    try:
        model = load_model(str(meta.model))
        gpu = load_gpu(str(meta.system))
    except InputError as e:
        return f"the estimator cannot model it ({e})"
    notes: list[str] = []
    backend: BackendName = DEFAULT_BACKEND
    if meta.backend in BACKENDS:
        backend = meta.backend  # type: ignore[assignment]
    else:
        notes.append(f"profile.json records no known backend: {DEFAULT_BACKEND} assumed")
    recorded = profile.meta.get("dtype")
    dtype: Literal["bf16", "fp8"] = "bf16" if recorded == "bf16" else "fp8"
    tp_p = _profile_tp(meta.tp.get("prefill"), directory, "prefill", notes)
    tp_d = _profile_tp(meta.tp.get("decode"), directory, "decode", notes)
    try:
        result = fit(
            measurement_from_profile(profile, tp_p, tp_d, str(directory)),
            model, gpu, backend, dtype,
        )  # fmt: skip
        est = RooflineEstimator(
            model, gpu, backend, dtype, calibration=result.calibration, overhead=result.overhead
        )
    except InputError as e:
        return f"the estimator cannot model it ({e})"
    est.version = f"{est.version}+calibrated"
    return est, result, tp_p, tp_d, notes


def _extend_prefill(
    pre: PrefillCurve, est: RooflineEstimator, tp: int, target: float
) -> tuple[F, F, F, float]:
    """New (isl, ttft_ms, thpt_per_gpu) above the curve's last ISL and the anchor ratio."""
    isl = _new_points(float(pre.isl[-1]), target, _spacing(pre.isl))
    if isl.size == 0:
        return isl, isl, isl, 1.0
    est_last = float(est.prefill_many(tp, np.array([pre.isl[-1]]))[0][0])
    ratio = float(pre.ttft_ms[-1]) / est_last
    e_ttft, e_thpt = est.prefill_many(tp, isl)
    ttft = np.maximum.accumulate(np.maximum(e_ttft * ratio, float(pre.ttft_ms[-1])))
    return isl, ttft, e_thpt * e_ttft / ttft, ratio


def _envelope(surface: DecodeSurface, m: F) -> F:
    """``R(m)``: the highest of ``surface``'s rows' own ITL curves at batch-per-KV-token ``m``
    (ms) — what the surface itself lifts a new row to."""
    out = surface.rows[0].own_itl(m)
    for row in surface.rows[1:]:
        out = np.maximum(out, row.own_itl(m))
    return out


def _extend_decode(
    profile: PerformanceProfile, est: RooflineEstimator, tp: int, target: float
) -> tuple[F, F, F, F, tuple[float, float], int]:
    """New decode points (kv_usage, context, itl_ms, thpt_per_gpu) in rows above the last
    measured row, the range of the anchor ratios and how many points were lifted."""
    dec, max_kv = profile.decode, float(profile.max_kv_tokens)
    ctxs = dec.contexts
    new_ctx = _new_points(float(ctxs[-1]), target, _spacing(ctxs))
    empty = np.zeros(0)
    if new_ctx.size == 0:
        return empty, empty, empty, empty, (1.0, 1.0), 0
    last = dec.rows[-1]
    m_last = last.itl.x  # the surface's row axis: batch / max_kv
    est_last = est.decode_many(
        tp, np.maximum(1.0, m_last * max_kv), np.full(m_last.shape, ctxs[-1])
    )[0]
    ratio = _envelope(dec, m_last) / est_last
    cols = [dec.kv_usage, dec.context, dec.itl_ms, dec.thpt_per_gpu]
    n0 = dec.kv_usage.size
    surface, lifted = dec, 0
    for c in new_ctx:
        top_batch = max(1.0, math.floor(last.kv_hi * max_kv / c))
        batch = np.unique(np.round(np.linspace(1.0, top_batch, m_last.size)))
        m: F = np.asarray(batch / max_kv, dtype=np.float64)
        e_itl, e_thpt = est.decode_many(tp, batch, np.full(batch.shape, c))
        anchored = e_itl * np.interp(m, m_last, ratio)
        itl = np.maximum.accumulate(np.maximum(anchored, _envelope(surface, m)))
        lifted += int(np.count_nonzero(itl > anchored))
        row = (batch * c / max_kv, np.full(batch.shape, c), itl, e_thpt * e_itl / itl)
        cols = [np.concatenate([a, b]) for a, b in zip(cols, row, strict=True)]
        surface = DecodeSurface(*cols)
    kv, ctx, itl, thpt = (a[n0:] for a in cols)
    return kv, ctx, itl, thpt, (float(np.min(ratio)), float(np.max(ratio))), lifted


def extend_profile(
    profile: PerformanceProfile,
    directory: Path,
    *,
    isl_to: float | None = None,
    context_to: float | None = None,
) -> Extension:
    """``profile`` (loaded from ``directory``) extended to prefill ISL ``isl_to`` and decode
    context ``context_to`` (tokens; None or within the measured range: that role is left as it
    is) with the roofline calibrated on its measured points (see the module docstring).

    Reach is bounded by the model's context window (``max_position_embeddings``), the prefill
    engine's KV capacity (ISL) and ``max_kv_tokens`` (context); ``notes`` say where it was. An
    already extended profile is re-extended from its measured part. When the estimator cannot be
    built (no model/system recorded, not catalogued) the profile comes back unchanged with
    ``extended=False`` and a ``message`` saying why lookups stay clamped."""
    base = measured_part(profile)
    p_from, d_from = estimated_from(profile)
    last_isl = float(base.prefill.isl[-1])
    last_ctx = float(base.decode.contexts[-1])
    # an earlier extension's reach is kept
    want_isl = max(isl_to or 0.0, float(profile.prefill.isl[-1]) if p_from is not None else 0.0)
    want_ctx = max(
        context_to or 0.0, float(profile.decode.contexts[-1]) if d_from is not None else 0.0
    )
    if want_isl <= float(profile.prefill.isl[-1]) and want_ctx <= float(
        profile.decode.contexts[-1]
    ):
        return Extension(profile, False, "")
    beyond = _beyond(last_isl, want_isl, last_ctx, want_ctx)
    built = _calibrated(base, directory)
    if isinstance(built, str):
        return Extension(
            profile, False, f"{beyond}, but {built}: lookups there are clamped to the profile"
        )
    est, result, tp_p, tp_d, notes = built
    window = float(est.model.max_position_embeddings)
    isl_cap = min(window, float(est.max_kv_tokens(tp_p)))
    ctx_cap = min(window, float(profile.max_kv_tokens))
    if want_isl > isl_cap:
        notes.append(
            f"ISL {want_isl:,.0f} is beyond what one prefill engine takes; estimated up to {isl_cap:,.0f}"
        )
    if want_ctx > ctx_cap:
        notes.append(
            f"context {want_ctx:,.0f} is beyond the model's window or the KV cache; estimated up to {ctx_cap:,.0f}"
        )
    isl, ttft, thpt, p_ratio = _extend_prefill(base.prefill, est, tp_p, min(want_isl, isl_cap))
    kv, ctx, itl, d_thpt, d_ratio, lifted = _extend_decode(base, est, tp_d, min(want_ctx, ctx_cap))
    if isl.size == 0 and ctx.size == 0:
        return Extension(profile, False, f"{beyond}, but {'; '.join(notes)}", notes=tuple(notes))
    pre, dec = base.prefill, base.decode
    record: dict[str, Any] = {
        "by": EXTENDED_BY,
        "estimator": est.name,
        "estimator_version": est.version,
        "prefill_isl_from": last_isl,
        "prefill_isl_to": float(isl[-1]) if isl.size else last_isl,
        "decode_context_from": last_ctx,
        "decode_context_to": float(ctx[-1]) if ctx.size else last_ctx,
        "residuals": result.residuals,
        "anchor": {
            "prefill_ttft_ratio": round(p_ratio, 4),
            "decode_itl_ratio": [round(d_ratio[0], 4), round(d_ratio[1], 4)],
        },
        "lifted_points": lifted,
        "calibration": result.record(),
        "notes": notes,
    }
    extended = PerformanceProfile(
        PrefillCurve(
            np.concatenate([pre.isl, isl]),
            np.concatenate([pre.ttft_ms, ttft]),
            np.concatenate([pre.thpt_per_gpu, thpt]),
        ),
        DecodeSurface(
            np.concatenate([dec.kv_usage, kv]),
            np.concatenate([dec.context, ctx]),
            np.concatenate([dec.itl_ms, itl]),
            np.concatenate([dec.thpt_per_gpu, d_thpt]),
        ),
        profile.max_kv_tokens,
        {**base.meta, "extended": record},
    )
    err = ", ".join(
        f"{phase} {100 * r['median_abs_error']:.1f} %" for phase, r in result.residuals.items()
    )
    reach = []
    if isl.size:
        reach.append(f"prefill ISL {last_isl:,.0f} → {isl[-1]:,.0f}")
    if ctx.size:
        reach.append(f"decode context {last_ctx:,.0f} → {ctx[-1]:,.0f}")
    message = (
        f"{beyond}: extended the profile ({', '.join(reach)}) with the roofline calibrated on "
        f"its measured points (median error {err}); points beyond the measured range are "
        "estimates" + (f" ({'; '.join(notes)})" if notes else "")
    )
    return Extension(extended, True, message, record, tuple(notes))


def _beyond(last_isl: float, want_isl: float, last_ctx: float, want_ctx: float) -> str:
    parts = []
    if want_isl > last_isl:
        parts.append(f"ISL up to {want_isl:,.0f} (measured to {last_isl:,.0f})")
    if want_ctx > last_ctx:
        parts.append(f"context up to {want_ctx:,.0f} (measured to {last_ctx:,.0f})")
    return "traffic needs " + " and ".join(parts)


def extend_for_traffic(
    profile: PerformanceProfile, directory: Path, isl: npt.ArrayLike, osl: npt.ArrayLike
) -> Extension:
    """:func:`extend_profile` to the range of requests with lengths ``isl``/``osl`` (tokens;
    :func:`traffic_range`)."""
    top_isl, top_ctx = traffic_range(isl, osl)
    return extend_profile(profile, directory, isl_to=top_isl, context_to=top_ctx)
