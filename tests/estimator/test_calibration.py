"""Fitting the roofline's free constants to a measurement (dynamo_plan.estimator.calibration):
recovery of known constants, the real H200 profile, what one TP cannot tell, and the structure
test across TP against AI Configurator (slow; needs the package)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from dynamo_plan.adapters.profile_files import load_profile
from dynamo_plan.estimator import RooflineEstimator, load_gpu, load_model
from dynamo_plan.estimator.aic import AiConfiguratorEstimator, aiconfigurator_available
from dynamo_plan.estimator.calibration import (
    BACKEND_OVERHEADS,
    DEFAULT,
    Measurement,
    carry_across_tp,
    fit,
    measure,
    measurement_from_profile,
)
from tests.optional import needs

REAL = (
    Path(__file__).resolve().parent.parent / "data" / "profiles" / "h200_llama3.1-8b-fp8_tp1p_tp1d"
)
ISL = (128, 512, 2048, 8192, 16384)
BATCH = (1, 8, 64, 256)
CONTEXT = (512, 4096)


def _concat(a: Measurement, b: Measurement) -> Measurement:
    cat = {
        f.name: np.concatenate([getattr(a, f.name), getattr(b, f.name)])
        for f in dataclasses.fields(Measurement)
        if f.name != "source"
    }
    return Measurement(source="both", **cat)


def test_recovers_the_constants_it_was_generated_with() -> None:
    """Points from a roofline with other constants, at TP 1 and 4: the fit finds the
    efficiencies again (the weight-streaming one too: two TPs) and reproduces every point.
    (Per-step and per-request time are nearly collinear for single-step prefills; the weak
    pull towards the defaults splits them, so they are not checked one by one.)"""
    model, gpu = load_model("qwen3-32b"), load_gpu("h100_sxm")
    truth_cal = dataclasses.replace(
        DEFAULT, gemm_efficiency=0.62, hbm_efficiency=0.8, weight_hbm_efficiency=0.75,
        allreduce_latency_us=6.0,
    )  # fmt: skip
    truth_ovh = dataclasses.replace(BACKEND_OVERHEADS["sglang"], step_ms=2.0, request_ms=5.0)
    truth = RooflineEstimator(
        model, gpu, "sglang", "bf16", calibration=truth_cal, overhead=truth_ovh
    )
    data = _concat(*(measure(truth, tp, ISL, BATCH, CONTEXT, "synthetic") for tp in (1, 4)))
    result = fit(data, model, gpu, "sglang", "bf16")
    assert set(result.fitted) >= {"weight_hbm_efficiency", "nvlink_efficiency", "step_ms"}
    for name, want in (
        ("gemm_efficiency", 0.62), ("hbm_efficiency", 0.8), ("weight_hbm_efficiency", 0.75),
    ):  # fmt: skip
        assert result.fitted[name] == pytest.approx(want, rel=0.05), name
    for phase in ("prefill", "decode"):
        assert result.residuals[phase]["max_abs_error"] < 0.01
    assert not any("cannot be told apart" in n for n in result.notes)


def test_one_tp_keeps_the_tp_terms_and_says_so() -> None:
    model, gpu = load_model("llama-3.1-8b"), load_gpu("h200_sxm")
    data = measure(RooflineEstimator(model, gpu, "vllm", "fp8"), 1, ISL, BATCH, CONTEXT, "tp1")
    result = fit(data, model, gpu, "vllm", "fp8")
    assert "nvlink_efficiency" in result.fixed and "weight_hbm_efficiency" in result.fixed
    assert result.fixed["allreduce_latency_us"] == DEFAULT.allreduce_latency_us
    assert any("TP all-reduce term keeps its defaults" in n for n in result.notes)
    assert result.residuals["decode"]["max_abs_error"] < 0.01  # its own points: a perfect fit
    record = result.record()
    assert record["source"] == "tp1" and set(record["residuals"]) == {"prefill", "decode"}


def test_moe_is_fitted_with_a_warning_about_expert_parallelism() -> None:
    model, gpu = load_model("qwen3-30b-a3b"), load_gpu("h200_sxm")
    data = measure(RooflineEstimator(model, gpu, "trtllm", "fp8"), 1, ISL, BATCH, CONTEXT, "moe")
    notes = fit(data, model, gpu, "trtllm", "fp8").notes
    assert any("expert parallelism (EP) is not modelled" in n for n in notes)


def test_the_real_h200_profile_is_fitted_within_its_noise() -> None:
    profile = load_profile(REAL)
    data = measurement_from_profile(profile, 1, 1, str(REAL))
    # batch = kv_usage · max_kv_tokens / context, the concurrency Dynamo's profiler ran at
    dec = profile.decode
    want = np.maximum(1.0, dec.kv_usage * profile.max_kv_tokens / dec.context)
    np.testing.assert_allclose(data.batch, want)
    result = fit(data, load_model("llama-3.1-8b"), load_gpu("h200_sxm"), "vllm", "fp8")
    assert result.residuals["prefill"]["median_abs_error"] < 0.03
    assert result.residuals["decode"]["median_abs_error"] < 0.06
    assert result.residuals["prefill"]["points"] == len(profile.prefill.isl)
    for name, value in result.fitted.items():
        assert np.isfinite(value) and value >= 0, name


@needs(aiconfigurator_available(), "the aiconfigurator package is not installed")
@pytest.mark.parametrize(("name", "backend"), [("llama-3.1-8b", "vllm"), ("qwen3-32b", "trtllm")])
def test_calibrated_at_tp1_on_aic_carries_to_tp8_within_ten_percent(
    name: str, backend: str
) -> None:
    """Issue 16's structure test: calibrated on AI Configurator's TP1 points (produced now by
    the installed package), the medians at TP 2, 4, 8 are within 10 % of AIC's."""
    model, gpu = load_model(name), load_gpu("h200_sxm")
    aic = AiConfiguratorEstimator(model, gpu, backend, "bf16")  # type: ignore[arg-type]
    result, ratios = carry_across_tp(aic, model, gpu, backend, "bf16")  # type: ignore[arg-type]
    assert sorted(ratios) == [1, 2, 4, 8]
    for tp, (pre, dec) in ratios.items():
        assert abs(pre - 1) <= 0.10 and abs(dec - 1) <= 0.10, (tp, pre, dec)
    raw = RooflineEstimator(model, gpu, backend, "bf16")  # type: ignore[arg-type]
    assert raw.prefill(8, 1024).latency_ms / aic.prefill(8, 1024).latency_ms > 1.2
    assert result.residuals["prefill"]["median_abs_error"] < 0.05
