"""The AI Configurator estimator against the real, installed ``aiconfigurator`` package (no
mocks of it): two configurations, its own public API as the reference, coverage and ``auto``.
Skipped only when the package is absent (``pip install -e '.[aiconfigurator]'``)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from dynamo_plan.errors import InputError
from dynamo_plan.estimator import Estimator, load_gpu, load_model, select_estimator
from dynamo_plan.estimator import aic as aic_module
from dynamo_plan.estimator.aic import (
    AiConfiguratorEstimator,
    aic_coverage,
    aic_model_path,
    aiconfigurator_available,
)
from tests.optional import missing, needs

needs_aic = needs(aiconfigurator_available(), "the aiconfigurator package is not installed")

#: (catalog model, system, backend, dtype): two configurations AIC 0.12 covers
CONFIGS = [
    ("llama-3.1-8b", "h200_sxm", "vllm", "bf16"),
    ("qwen3-32b", "h100_sxm", "trtllm", "fp8"),
]


@pytest.fixture(scope="module", params=CONFIGS, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}-{c[3]}")
def engine(request: pytest.FixtureRequest) -> AiConfiguratorEstimator:
    if not aiconfigurator_available():
        missing("the aiconfigurator package is not installed")
    name, system, backend, dtype = request.param
    return AiConfiguratorEstimator(load_model(name), load_gpu(system), backend, dtype)


@needs_aic
def test_points_equal_aiconfigurators_own_static_estimate(engine: AiConfiguratorEstimator) -> None:
    """Reusing one session per TP gives exactly what ``aiconfigurator.cli.api.cli_estimate``
    (AIC's public single-point API, building everything afresh) gives."""
    from aiconfigurator.cli.api import cli_estimate

    quant = {"fp8": "fp8", "bf16": "bfloat16"}
    logging.getLogger("aiconfigurator_core").setLevel(logging.ERROR)
    for tp, isl, batch in ((1, 2048, 1), (2, 512, 32)):
        common = {
            "backend_name": engine.backend, "backend_version": engine.backend_version,
            "tp_size": tp, "gemm_quant_mode": quant[engine.dtype],
            "kvcache_quant_mode": quant[engine.kv_dtype], "osl": 2,
        }  # fmt: skip
        ctx = cli_estimate(
            engine.model_path, engine.system, mode="static_ctx", isl=isl, batch_size=1, **common
        )
        gen = cli_estimate(
            engine.model_path, engine.system, mode="static_gen", isl=isl, batch_size=batch,
            **common,
        )  # fmt: skip
        assert engine.prefill(tp, isl).latency_ms == pytest.approx(ctx.ttft, rel=1e-9)
        assert engine.decode(tp, batch, isl).latency_ms == pytest.approx(gen.tpot, rel=1e-9)


@needs_aic
def test_latency_grows_with_work_and_shrinks_with_tp(engine: AiConfiguratorEstimator) -> None:
    assert isinstance(engine, Estimator)
    ttft = [engine.prefill(2, n).latency_ms for n in (256, 1024, 4096, 16384)]
    assert all(np.diff(ttft) > 0)
    itl = [engine.decode(2, b, 4096).latency_ms for b in (1, 16, 128)]
    assert all(np.diff(itl) > 0)
    assert engine.prefill(4, 8192).latency_ms < engine.prefill(2, 8192).latency_ms
    d = engine.decode(2, 16, 2048)
    assert d.thpt_per_gpu == pytest.approx(16 / (d.latency_ms / 1e3) / 2)
    assert engine.version.startswith(aic_module.aiconfigurator_version() or "?")
    assert engine.backend_version in engine.version
    assert engine.aic_record()["model_path"] == engine.model_path


@needs_aic
def test_memory_follows_the_roofline_accounting(engine: AiConfiguratorEstimator) -> None:
    from dynamo_plan.estimator import RooflineEstimator

    roof = RooflineEstimator(engine.model, load_gpu(engine.system), engine.backend, engine.dtype)
    assert [engine.max_kv_tokens(t) for t in (1, 2, 8)] == [
        roof.max_kv_tokens(t) for t in (1, 2, 8)
    ]


@needs_aic
def test_coverage_names_model_path_and_version_or_the_reason() -> None:
    llama = load_model("llama-3.1-8b")
    cov = aic_coverage(llama, "h200_sxm", "sglang")
    assert cov.covered and cov.model_path == "meta-llama/Meta-Llama-3.1-8B" and cov.version
    small = load_model("llama-3.2-1b")  # AIC ships no config for it
    assert aic_model_path(small) is None
    gap = aic_coverage(small, "h200_sxm", "vllm")
    assert not gap.covered and "ships no config" in gap.reason
    no_system = aic_coverage(llama, "tpu_v5", "vllm")
    assert not no_system.covered and "no database for system 'tpu_v5'" in no_system.reason
    bad_version = aic_coverage(llama, "h200_sxm", "vllm", version="0.0.1")
    assert not bad_version.covered and "0.0.1" in bad_version.reason


@needs_aic
def test_an_uncovered_request_is_one_input_error() -> None:
    with pytest.raises(InputError, match=r"ships no config for model 'llama-3\.2-1b'"):
        AiConfiguratorEstimator(load_model("llama-3.2-1b"), load_gpu("h200"), "vllm", "bf16")
    with pytest.raises(InputError, match=r"no vllm 0\.0\.1 database"):
        AiConfiguratorEstimator(
            load_model("llama-3.1-8b"), load_gpu("h200"), "vllm", "bf16", backend_version="0.0.1"
        )


@needs_aic
def test_auto_picks_aic_where_it_covers_and_the_roofline_elsewhere() -> None:
    gpu = load_gpu("h200_sxm")
    sel = select_estimator("auto", load_model("qwen3-32b"), gpu, "trtllm", "fp8")
    assert sel.estimator.name == "aiconfigurator"
    assert sel.reason.startswith("auto: aiconfigurator covers Qwen/Qwen3-32B on h200_sxm")
    fallback = select_estimator("auto", load_model("llama-3.2-1b"), gpu, "vllm", "bf16")
    assert fallback.estimator.name == "roofline"
    assert "aiconfigurator ships no config for llama-3.2-1b" in fallback.reason


def test_without_the_package_auto_falls_back_and_aiconfigurator_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The package's absence, as the adapter sees it (our check, not AIC, is replaced)."""
    monkeypatch.setattr(aic_module, "aiconfigurator_available", lambda: False)
    model, gpu = load_model("llama-3.1-8b"), load_gpu("h200")
    sel = select_estimator("auto", model, gpu, "vllm", "fp8")
    assert sel.estimator.name == "roofline"
    assert sel.reason == "auto: roofline, because the aiconfigurator package is not installed"
    with pytest.raises(InputError, match=r"pip install 'dynamo-plan\[aiconfigurator\]'") as e:
        select_estimator("aiconfigurator", model, gpu, "vllm", "fp8")
    assert "\n" not in str(e.value)
