"""Extending the shared measured H200 profile with the calibrated roofline (profiler/extend.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from dynamo_plan.adapters.profile_files import load_profile, save_profile
from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.profiler.extend import (
    EXTENDED_BY,
    estimated_from,
    extend_for_traffic,
    extend_profile,
    measured_part,
    traffic_range,
)

H200 = Path("profiles") / "h200_llama3.1-8b-fp8_tp1p_tp1d"
#: what the shared measurement was (tests/data/README.md): Llama-3.1-8B FP8 on one H200, vLLM
RECORDED = {
    "model": "meta-llama/Llama-3.1-8B-Instruct",
    "system": "h200_sxm",
    "backend": "vllm",
    "dtype": "fp8",
    "parallelism": {"prefill": {"tp": 1}, "decode": {"tp": 1}},
}


def recorded_copy(shared_data: Path, dest: Path) -> Path:
    """The shared profile with a profile.json naming its model and system."""
    shutil.copytree(shared_data / H200, dest)
    (dest / "profile.json").write_text(json.dumps(RECORDED), encoding="utf-8")
    return dest


@pytest.fixture(scope="module")
def measured_dir(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return recorded_copy(shared_data, tmp_path_factory.mktemp("ext") / "h200")


@pytest.fixture(scope="module")
def measured(measured_dir: Path) -> PerformanceProfile:
    return load_profile(measured_dir)


@pytest.fixture(scope="module")
def extended(measured: PerformanceProfile, measured_dir: Path) -> PerformanceProfile:
    ext = extend_profile(measured, measured_dir, isl_to=32768, context_to=32768)
    assert ext.extended
    return ext.profile


def test_measured_points_are_kept_exactly(
    measured: PerformanceProfile, extended: PerformanceProfile
) -> None:
    n_p, n_d = measured.prefill.isl.size, measured.decode.kv_usage.size
    for name in ("isl", "ttft_ms", "thpt_per_gpu"):
        assert np.array_equal(
            getattr(extended.prefill, name)[:n_p], getattr(measured.prefill, name)
        )
    for name in ("kv_usage", "context", "itl_ms", "thpt_per_gpu"):
        assert np.array_equal(getattr(extended.decode, name)[:n_d], getattr(measured.decode, name))
    assert extended.max_kv_tokens == measured.max_kv_tokens
    assert extended.prefill.isl.size > n_p and extended.decode.kv_usage.size > n_d


def test_reaches_the_asked_range(extended: PerformanceProfile) -> None:
    assert extended.prefill.isl[-1] == 32768
    assert extended.decode.contexts[-1] == 32768


def test_new_rows_are_monotone(measured: PerformanceProfile, extended: PerformanceProfile) -> None:
    dec = extended.decode
    last = measured.decode.contexts[-1]
    new = [c for c in dec.contexts if c > last]
    assert new
    # every row keeps the measured row's shape: as many points, kv_usage up to ~ its top
    top = measured.decode.kv_usage[measured.decode.context == last].max()
    for c in new:
        sel = dec.context == c
        kv, itl = dec.kv_usage[sel], dec.itl_ms[sel]
        order = np.argsort(kv)
        assert np.all(np.diff(itl[order]) >= 0)  # monotone in batch, no lifting needed
        assert kv.max() <= top + 1e-9 and kv.max() > 0.9 * top
    # the surface lifts nothing more than the measured points it already lifted
    assert dec.lifted_points == measured.decode.lifted_points
    # ITL at an equal batch is non-decreasing in context across the boundary and beyond
    for batch in (1, 8, 24):
        lookups = [extended.expected_itl(batch, c) for c in (last, *new)]
        itl = [x.value for x in lookups if not x.clamped]  # the batch fits the KV cache
        assert len(itl) > 2 and np.all(np.diff(itl) >= -1e-9), (batch, itl)
    ttft = extended.prefill.ttft_ms
    assert np.all(np.diff(ttft[extended.prefill.isl >= measured.prefill.isl[-1]]) >= 0)


def test_capacity_is_non_increasing_past_the_measured_rows(extended: PerformanceProfile) -> None:
    caps = [extended.best_decode_throughput(20.0, c) for c in (13585, 16000, 24000, 32768)]
    values = [b.thpt_per_gpu for b in caps if b is not None]
    assert len(values) == 4
    assert all(b >= a * 0.999 for a, b in zip(values[1:], values[:-1], strict=True))
    assert not any(b.clamped for b in caps if b is not None)


def test_profile_json_marks_the_extension(
    extended: PerformanceProfile, measured: PerformanceProfile, tmp_path: Path
) -> None:
    rec = extended.meta["extended"]
    assert rec["by"] == EXTENDED_BY
    assert rec["prefill_isl_from"] == measured.prefill.isl[-1]
    assert rec["decode_context_from"] == measured.decode.contexts[-1]
    assert set(rec["residuals"]) == {"prefill", "decode"}
    assert rec["calibration"]["fitted"]
    save_profile(extended, tmp_path / "out")
    again = load_profile(tmp_path / "out")
    assert (
        json.loads((tmp_path / "out" / "profile.json").read_text())["extended"]["by"] == EXTENDED_BY
    )
    assert estimated_from(again) == (rec["prefill_isl_from"], rec["decode_context_from"])
    # the measured part comes back exactly; extending again starts from it
    back = measured_part(again)
    assert np.array_equal(back.decode.itl_ms, measured.decode.itl_ms)
    assert np.array_equal(back.prefill.ttft_ms, measured.prefill.ttft_ms)
    assert extend_profile(again, tmp_path / "out", context_to=20000).profile is again
    twice = extend_profile(again, tmp_path / "out", context_to=40000)
    assert twice.extended and twice.profile.decode.contexts[-1] == 40000
    assert twice.profile.prefill.isl[-1] == 32768  # an earlier reach is kept
    assert twice.record is not None and twice.record["decode_context_from"] == 13585
    n = measured.decode.itl_ms.size
    assert np.array_equal(twice.profile.decode.itl_ms[:n], measured.decode.itl_ms)


def test_nothing_to_do_within_the_measured_range(
    measured: PerformanceProfile, measured_dir: Path
) -> None:
    ext = extend_profile(measured, measured_dir, isl_to=4000, context_to=5000)
    assert not ext.extended and ext.message == "" and ext.profile is measured


def test_without_model_or_system_lookups_stay_clamped(shared_data: Path) -> None:
    bare = load_profile(shared_data / H200)  # no profile.json
    ext = extend_profile(bare, shared_data / H200, context_to=32768)
    assert not ext.extended and ext.profile is bare
    assert "records no model or system" in ext.message and "clamped" in ext.message


def test_traffic_range_and_extend_for_traffic(
    measured: PerformanceProfile, measured_dir: Path
) -> None:
    isl = np.array([100, 20000, 3000])
    osl = np.array([10, 1001, 60000])
    assert traffic_range(isl, osl) == (20000, 33000)
    ext = extend_for_traffic(measured, measured_dir, isl, osl)
    assert ext.extended
    assert ext.profile.prefill.isl[-1] == 20000
    assert ext.profile.decode.contexts[-1] == 33000
    assert "decode context 13,585 → 33,000" in ext.message


def test_reach_is_bounded_by_the_model_window(
    measured: PerformanceProfile, measured_dir: Path
) -> None:
    ext = extend_profile(measured, measured_dir, isl_to=500_000, context_to=500_000)
    assert ext.extended
    assert ext.profile.prefill.isl[-1] <= 131072
    assert ext.profile.decode.contexts[-1] == 131072  # Llama-3.1's max_position_embeddings
    assert any("window" in n for n in ext.notes)


def test_plots_mark_the_estimated_part(extended: PerformanceProfile) -> None:
    from dynamo_plan.profiler.plots import EXTENDED_PLOT_FILES, draw_profile_plots

    figs = draw_profile_plots(extended)
    assert tuple(figs) == EXTENDED_PLOT_FILES
    assert "estimated" in figs["decode_surface.png"].axes[0].get_title()
    for fig in figs.values():
        labels = {
            t.get_text()
            for ax in fig.axes
            for leg in [ax.get_legend()]
            if leg
            for t in leg.get_texts()
        }
        labels |= {line.get_label() for ax in fig.axes for line in ax.get_lines()}
        assert {"measured", "estimated"} <= labels
