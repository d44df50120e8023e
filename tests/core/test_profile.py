"""PerformanceProfile lookups on the real H200 profile: exact at measured points, monotone where
the data is, clamping reported, best decode throughput meets the target and is maximal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamo_plan.core.profile import DecodeSurface, PerformanceProfile, PrefillCurve
from dynamo_plan.errors import InputError

H200 = Path("profiles") / "h200_llama3.1-8b-fp8_tp1p_tp1d"


@pytest.fixture(scope="module")
def raw(shared_data: Path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for role in ("prefill", "decode"):
        with np.load(shared_data / H200 / f"selected_{role}_interpolation" / "raw_data.npz") as d:
            out.update({k: d[k] for k in d.files})
    return out


@pytest.fixture(scope="module")
def profile(raw: dict[str, np.ndarray]) -> PerformanceProfile:
    return PerformanceProfile(
        PrefillCurve(raw["prefill_isl"], raw["prefill_ttft"], raw["prefill_thpt_per_gpu"]),
        DecodeSurface(
            raw["x_kv_usage"], raw["y_context_length"], raw["z_itl"], raw["z_thpt_per_gpu"]
        ),
        int(raw["max_kv_tokens"][0]),
    )


def test_prefill_exact_at_measured_points(profile: PerformanceProfile, raw: dict) -> None:
    for isl, ttft, thpt in zip(
        raw["prefill_isl"], raw["prefill_ttft"], raw["prefill_thpt_per_gpu"], strict=True
    ):
        got = profile.expected_ttft(float(isl))
        assert got.value == ttft and not got.clamped
        assert profile.prefill_thpt_per_gpu(float(isl)).value == thpt


def test_decode_exact_at_measured_points(profile: PerformanceProfile, raw: dict) -> None:
    """Exact wherever the measurement needed no lifting. Where a larger batch of the same row,
    or an equal batch at a shorter context, measured slower, ITL is that slower value."""
    lifted = 0
    contexts = np.unique(raw["y_context_length"])
    for kv, ctx, itl, thpt in zip(
        raw["x_kv_usage"], raw["y_context_length"], raw["z_itl"], raw["z_thpt_per_gpu"], strict=True
    ):
        got = profile.decode.itl(kv, ctx)
        assert not got.clamped
        row = raw["y_context_length"] == ctx
        slower = [float(raw["z_itl"][row & (raw["x_kv_usage"] <= kv)].max())]
        # the same batch (kv/context) on each shorter-context row
        slower += [profile.decode.itl(kv * c / ctx, c).value for c in contexts[contexts < ctx]]
        if max(slower) <= itl:
            assert got.value == itl
            # throughput = C·m/ITL with C interpolated exactly: equal up to rounding.
            assert profile.decode.thpt(kv, ctx).value == pytest.approx(thpt, rel=1e-12)
        else:
            lifted += 1
            assert got.value == pytest.approx(max(slower), rel=1e-12)
            assert profile.decode.thpt(kv, ctx).value == pytest.approx(
                thpt * itl / got.value, rel=1e-12
            )
    assert lifted == profile.decode.lifted_points
    assert lifted <= 5  # a few noisy points of 41, not a different surface


def test_decode_throughput_between_rows_is_concurrency_over_itl(
    profile: PerformanceProfile,
) -> None:
    """Between context rows throughput stays consistent with ITL: thpt ≈ concurrency / ITL.

    Blending the throughput column at equal kv_usage overstated it 2× at context 1,260 (the
    shared profile's rows are 350 and 2,997; TP1, so per-GPU = per-engine).
    """
    for ctx in (700.0, 1260.0, 2000.0, 4000.0):
        for concurrency in (10.0, 50.0, 110.0):
            itl = profile.expected_itl(concurrency, ctx)
            if itl.clamped:
                continue
            thpt = profile.decode_thpt_per_gpu(concurrency, ctx).value
            assert thpt == pytest.approx(concurrency / (itl.value / 1000.0), rel=0.08)


def test_expected_itl_uses_kv_usage(profile: PerformanceProfile, raw: dict) -> None:
    kv, ctx = raw["x_kv_usage"][9], raw["y_context_length"][9]
    concurrency = kv * profile.max_kv_tokens / ctx
    assert profile.expected_itl(concurrency, ctx).value == pytest.approx(raw["z_itl"][9])
    assert profile.decode_thpt_per_gpu(concurrency, ctx).value == pytest.approx(
        raw["z_thpt_per_gpu"][9]
    )


@settings(deadline=None)
@given(st.floats(100, 16372), st.floats(100, 16372))
def test_prefill_ttft_monotone_like_the_data(
    profile: PerformanceProfile, a: float, b: float
) -> None:
    # the measured TTFT rises strictly with ISL, so the interpolant must too
    assert np.all(np.diff(profile.prefill.ttft_ms) > 0)
    lo, hi = sorted((a, b))
    assert profile.expected_ttft(lo).value <= profile.expected_ttft(hi).value


@settings(max_examples=50, deadline=None)
@given(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(2997, 13585))
def test_decode_itl_monotone_in_kv_where_rows_are(
    profile: PerformanceProfile, a: float, b: float, ctx: float
) -> None:
    # rows from context 2997 up have ITL rising with kv_usage (the 350 row does not)
    lo_kv, hi_kv = profile.decode.kv_range(ctx)
    x, y = sorted((lo_kv + a * (hi_kv - lo_kv), lo_kv + b * (hi_kv - lo_kv)))
    assert profile.decode.itl(x, ctx).value <= profile.decode.itl(y, ctx).value + 1e-9


def test_clamping_is_reported(profile: PerformanceProfile) -> None:
    low = profile.expected_ttft(10)
    assert low.clamped and "below" in low.note and low.value == profile.prefill.ttft_ms[0]
    high = profile.expected_itl(10_000, 13585)
    assert high.clamped and "kv_usage" in high.note
    far = profile.decode.itl(0.1, 50_000)
    assert far.clamped and "context 50000" in far.note
    inside = profile.expected_itl(10, 5000)
    assert not inside.clamped and inside.note == ""


@settings(max_examples=40, deadline=None)
@given(st.floats(5.0, 45.0), st.floats(350, 13585))
def test_best_decode_meets_target_and_is_maximal(
    profile: PerformanceProfile, target: float, ctx: float
) -> None:
    best = profile.best_decode_throughput(target, ctx, points=257)
    lo, hi = profile.decode.kv_range(ctx)
    grid = np.linspace(lo, hi, 257)
    itl = profile.decode.values("itl", grid, ctx)
    thpt = profile.decode.values("thpt", grid, ctx)
    feasible = itl <= target
    if best is None:
        assert not feasible.any()
        return
    assert best.itl_ms <= target
    assert lo <= best.kv_usage <= hi
    assert profile.decode.itl(best.kv_usage, ctx).value == pytest.approx(best.itl_ms)
    assert best.thpt_per_gpu >= thpt[feasible].max()
    assert best.concurrency == pytest.approx(best.kv_usage * profile.max_kv_tokens / ctx)


def test_best_decode_none_when_target_unreachable(profile: PerformanceProfile) -> None:
    assert profile.best_decode_throughput(1.0, 3000) is None


def test_best_decode_reports_clamped_context(profile: PerformanceProfile) -> None:
    best = profile.best_decode_throughput(30.0, 100_000)
    assert best is not None and best.clamped and "context" in best.note


def test_scattered_input_groups_rows() -> None:
    surface = DecodeSurface(
        kv_usage=[0.5, 0.1, 0.2, 0.9],
        context=[200, 100, 200, 100],
        itl_ms=[4, 1, 3, 2],
        thpt_per_gpu=[40, 10, 30, 20],
    )
    assert surface.contexts.tolist() == [100.0, 200.0]
    assert surface.itl(0.5, 200).value == 4.0
    # halfway between the rows: the blend of both rows at the same batch (kv_usage/context)
    mid = surface.itl(0.3, 150).value
    assert mid == pytest.approx(
        0.5 * surface.itl(0.2, 100).value + 0.5 * surface.itl(0.4, 200).value
    )


def test_single_point_rows_are_constant() -> None:
    surface = DecodeSurface([0.3], [1000], [5.0], [100.0])
    assert surface.itl(0.3, 1000).value == 5.0
    assert surface.itl(0.9, 1000).clamped


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"isl": [1, 2], "ttft_ms": [1.0], "thpt_per_gpu": [1.0, 2.0]}, "lengths differ"),
        ({"isl": [1, 1], "ttft_ms": [1.0, 2.0], "thpt_per_gpu": [1.0, 2.0]}, "repeats"),
        ({"isl": [1, 2], "ttft_ms": [1.0, -2.0], "thpt_per_gpu": [1.0, 2.0]}, "'prefill_ttft'[1]"),
        ({"isl": [], "ttft_ms": [], "thpt_per_gpu": []}, "empty"),
        ({"isl": [1, 2], "ttft_ms": [1.0, np.nan], "thpt_per_gpu": [1.0, 2.0]}, "finite"),
    ],
)
def test_prefill_validation(kwargs: dict, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        PrefillCurve(**kwargs)


def test_decode_validation() -> None:
    with pytest.raises(InputError, match="repeats a value within context 100"):
        DecodeSurface([0.1, 0.1], [100, 100], [1.0, 2.0], [1.0, 2.0])
    with pytest.raises(InputError, match="max_kv_tokens"):
        PerformanceProfile(
            PrefillCurve([1], [1.0], [1.0]), DecodeSurface([0.1], [1], [1.0], [1.0]), 0
        )
