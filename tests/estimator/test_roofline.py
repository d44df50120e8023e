"""Roofline estimator: memory accounting, invariants (hypothesis) and the Estimator interface."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamo_plan.core.backends import BACKENDS
from dynamo_plan.errors import InputError
from dynamo_plan.estimator import (
    EstimatePoint,
    Estimator,
    RooflineEstimator,
    known_models,
    load_gpu,
    load_model,
    make_estimator,
)
from dynamo_plan.estimator import aic as aic_module
from dynamo_plan.estimator import counts as c
from dynamo_plan.estimator.aic import aiconfigurator_available
from tests.optional import needs

MODELS = [
    "llama-3.1-8b",
    "qwen3-32b",
    "qwen3-30b-a3b",
    "mixtral-8x7b",
    "deepseek-v3",
    "gpt-oss-20b",
]
TPS = [1, 2, 4, 8]

settings.register_profile("estimator", max_examples=60, deadline=None)
cases = st.tuples(
    st.sampled_from(MODELS), st.sampled_from(BACKENDS), st.sampled_from(["bf16", "fp8"])
)


def _est(model: str, backend: str = "trtllm", dtype: str = "fp8") -> RooflineEstimator:
    return RooflineEstimator(load_model(model), load_gpu("b200_sxm"), backend, dtype)  # type: ignore[arg-type]


def test_h200_llama8b_fp8_max_kv_tokens_matches_the_measured_profile(shared_data) -> None:  # type: ignore[no-untyped-def]
    measured = int(
        np.load(
            shared_data
            / "profiles/h200_llama3.1-8b-fp8_tp1p_tp1d/selected_decode_interpolation/raw_data.npz"
        )["max_kv_tokens"][0]
    )
    # FP8 weights, BF16 KV (the engine's default for this checkpoint), mem_util 0.9
    est = RooflineEstimator(load_model("llama-3.1-8b"), load_gpu("h200"), "vllm", "fp8", "bf16")
    assert est.max_kv_tokens(1) == pytest.approx(measured, rel=0.02)
    # FP8 KV halves the bytes per token: twice the tokens
    fp8kv = RooflineEstimator(load_model("llama-3.1-8b"), load_gpu("h200"), "vllm", "fp8", "fp8")
    assert fp8kv.max_kv_tokens(1) == pytest.approx(2 * est.max_kv_tokens(1), rel=1e-6)


def test_max_kv_tokens_formula_is_per_engine() -> None:
    est = _est("llama-3.1-70b")
    m = est.model
    for tp in TPS:
        per_gpu = est.gpu.hbm_gib * 2**30 * 0.9 - c.weight_storage_bytes(m, "fp8") / tp
        per_gpu -= est.reserve_bytes(tp)
        assert est.max_kv_tokens(tp) == int(per_gpu // c.kv_bytes_per_token(m, "fp8", tp))


def test_fits_and_zero_capacity() -> None:
    est = RooflineEstimator(load_model("deepseek-v3"), load_gpu("h100"), "trtllm", "fp8")
    assert not est.fits(1) and est.max_kv_tokens(1) == 0
    assert not est.fits(8)  # 671 GB of FP8 weights > 8 × 80 GB × 0.9
    assert RooflineEstimator(load_model("deepseek-v3"), load_gpu("h200"), "trtllm", "fp8").fits(8)


@settings(settings.get_profile("estimator"))
@given(cases, st.sampled_from(TPS), st.integers(1, 60_000), st.integers(1, 60_000))
def test_prefill_latency_monotone_in_isl(
    case: tuple[str, str, str], tp: int, a: int, b: int
) -> None:
    est = _est(*case)
    lo, hi = sorted((a, b))
    assert est.prefill(tp, lo).latency_ms <= est.prefill(tp, hi).latency_ms


@settings(settings.get_profile("estimator"))
@given(
    cases, st.sampled_from(TPS), st.integers(1, 2048), st.integers(1, 2048), st.integers(1, 100_000)
)
def test_decode_latency_monotone_and_throughput_nondecreasing_in_batch(
    case: tuple[str, str, str], tp: int, a: int, b: int, ctx: int
) -> None:
    est = _est(*case)
    lo, hi = sorted((a, b))
    p_lo, p_hi = est.decode(tp, lo, ctx), est.decode(tp, hi, ctx)
    assert p_lo.latency_ms <= p_hi.latency_ms
    assert p_lo.thpt_per_gpu <= p_hi.thpt_per_gpu * (1 + 1e-12)


@settings(settings.get_profile("estimator"))
@given(
    cases,
    st.sampled_from(TPS),
    st.integers(1, 1024),
    st.integers(1, 200_000),
    st.integers(1, 200_000),
)
def test_decode_latency_monotone_in_context(
    case: tuple[str, str, str], tp: int, batch: int, a: int, b: int
) -> None:
    est = _est(*case)
    lo, hi = sorted((a, b))
    assert est.decode(tp, batch, lo).latency_ms <= est.decode(tp, batch, hi).latency_ms


def test_decode_throughput_saturates_when_compute_bound() -> None:
    est = _est("llama-3.1-8b")
    b = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096], dtype=float)
    _, thpt = est.decode_many(1, b, 128)
    gain = thpt[1:] / thpt[:-1]
    assert np.all(gain >= 1.0)
    assert gain[0] > 1.8 and gain[-1] < 1.1  # ~linear at batch 1, flat at large batch


@pytest.mark.parametrize("model", known_models())
def test_more_tp_never_more_weight_bytes_per_gpu_and_more_kv(model: str) -> None:
    est = _est(model)
    m = est.model
    for tokens in (1, 64, 4096):
        per_gpu = [float(c.weight_read_bytes(m, "fp8", tokens)) / tp for tp in TPS]
        assert per_gpu == sorted(per_gpu, reverse=True)
    kv = [est.max_kv_tokens(tp) for tp in TPS]
    assert kv == sorted(kv)
    fitting = [k for k in kv if k > 0]
    assert all(b > a for a, b in itertools.pairwise(fitting))


def test_throughput_definitions() -> None:
    est = _est("qwen3-8b")
    p = est.prefill(2, 4096)
    assert p.thpt_per_gpu == pytest.approx(4096 / (p.latency_ms / 1e3) / 2)
    d = est.decode(4, 64, 2048)
    assert d.thpt_per_gpu == pytest.approx(64 / (d.latency_ms / 1e3) / 4)


def test_vectorised_equals_scalar() -> None:
    est = _est("mixtral-8x7b", "vllm")
    isl = np.array([10, 1000, 20_000])
    t, thpt = est.prefill_many(2, isl)
    for i, n in enumerate(isl):
        assert est.prefill(2, int(n)) == EstimatePoint(float(t[i]), float(thpt[i]))
    t, _ = est.decode_many(2, np.array([1, 32]), np.array([100, 8000]))
    assert est.decode(2, 32, 8000).latency_ms == pytest.approx(float(t[1]))


def test_backend_overheads_are_ordered() -> None:
    lat = {b: _est("llama-3.1-8b", b).decode(1, 64, 1024).latency_ms for b in BACKENDS}
    assert lat["trtllm"] < lat["sglang"] < lat["vllm"]


def test_tp_adds_allreduce_but_splits_work() -> None:
    est = _est("llama-3.1-70b")
    assert est.prefill(8, 8192).latency_ms < est.prefill(1, 8192).latency_ms
    # per-GPU throughput drops with TP (communication + fixed overheads are not split)
    assert est.decode(8, 64, 4096).thpt_per_gpu < est.decode(1, 64, 4096).thpt_per_gpu


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda e: e.prefill(0, 10), "tp must be a positive integer"),
        (lambda e: e.prefill(1, 0), "isl must be > 0"),
        (lambda e: e.decode(1, -1, 10), "batch must be > 0"),
        (lambda e: e.decode(1, 1, 0), "context must be > 0"),
    ],
)
def test_bad_points_raise_input_error(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match=message):
        call(_est("llama-3.2-1b"))


def test_bad_constructor_arguments() -> None:
    m, g = load_model("llama-3.2-1b"), load_gpu("l40s")
    with pytest.raises(InputError, match="unknown backend 'tgi'"):
        RooflineEstimator(m, g, "tgi")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="unknown kv_dtype 'int4'"):
        RooflineEstimator(m, g, kv_dtype="int4")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="mem_util"):
        RooflineEstimator(m, g, mem_util=1.5)
    with pytest.raises(InputError, match="unknown estimator"):
        make_estimator("magic", m, g)  # type: ignore[arg-type]


def test_make_estimator_roofline_implements_protocol() -> None:
    est = make_estimator("roofline", load_model("qwen3-0.6b"), load_gpu("l40s"), "sglang", "bf16")
    assert isinstance(est, Estimator) and est.name == "roofline" and est.version


def test_aiconfigurator_absent_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the package (made absent here, whether installed or not) the error says how to
    install it."""
    monkeypatch.setattr(aic_module, "aiconfigurator_available", lambda: False)
    with pytest.raises(InputError, match="pip install aiconfigurator"):
        make_estimator("aiconfigurator", load_model("qwen3-32b"), load_gpu("h200"))


@needs(aiconfigurator_available(), "the aiconfigurator package is not installed")
def test_aiconfigurator_gives_points_like_roofline() -> None:
    est = make_estimator("aiconfigurator", load_model("qwen3-32b"), load_gpu("h200"))
    p = est.prefill(2, 4096)
    d = est.decode(2, 16, 4096)
    assert p.latency_ms > 0 and d.latency_ms > 0
    assert d.thpt_per_gpu == pytest.approx(16 / (d.latency_ms / 1e3) / 2)


def test_a_dtype_the_gpu_has_no_tensor_cores_for_is_refused() -> None:
    """Issue 11: A100 fp8 gave bf16-rate numbers labelled fp8."""
    a100 = load_gpu("a100_sxm")
    with pytest.raises(InputError, match="a100_sxm has no FP8 tensor cores"):
        RooflineEstimator(load_model("llama-3.1-8b"), a100, "vllm", dtype="fp8")
    est = RooflineEstimator(load_model("llama-3.1-8b"), a100, "vllm", dtype="bf16")
    assert est.prefill(1, 1000).latency_ms > 0
