"""``dynamo-plan estimate --estimator aiconfigurator|auto``, ``--compare`` and ``--calibrate``
(the AI Configurator ones run the installed package; skipped only when it is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dynamo_plan.estimator import RooflineEstimator, load_gpu, load_model
from dynamo_plan.estimator import aic as aic_module
from dynamo_plan.estimator.aic import AiConfiguratorEstimator, aiconfigurator_available
from tests.conftest import run_cli
from tests.optional import needs

REAL = (
    Path(__file__).resolve().parent.parent / "data" / "profiles" / "h200_llama3.1-8b-fp8_tp1p_tp1d"
)
needs_aic = needs(aiconfigurator_available(), "the aiconfigurator package is not installed")
LLAMA = ["--model", "llama-3.1-8b", "--system", "h200_sxm", "--backend", "vllm"]


@needs_aic
def test_aiconfigurator_rows_are_aics_numbers() -> None:
    r = run_cli(
        "estimate", *LLAMA, "--dtype", "bf16", "--estimator", "aiconfigurator", "--tp", "1,2",
        "--batch", "8", "--context", "2048", "-o", "json",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    aic = AiConfiguratorEstimator(load_model("llama-3.1-8b"), load_gpu("h200_sxm"), "vllm", "bf16")
    rows = r.json()
    assert [(row["tp"], row["batch"], row["context"]) for row in rows] == [
        (1, 8, 2048),
        (2, 8, 2048),
    ]
    for row in rows:
        assert row["estimator"] == "aiconfigurator"
        want = aic.decode(row["tp"], 8, 2048).latency_ms
        assert row["latency_ms"] == pytest.approx(want, abs=1e-3)


@needs_aic
def test_auto_says_which_estimator_and_why() -> None:
    r = run_cli("estimate", *LLAMA, "--estimator", "auto", "--isl", "1024", "-o", "json")
    assert r.exit_code == 0, r.stderr
    assert r.json()[0]["estimator"] == "aiconfigurator"
    assert "auto: aiconfigurator covers meta-llama/Meta-Llama-3.1-8B on h200_sxm" in r.stderr
    r = run_cli(
        "estimate", "--model", "llama-3.2-1b", "--system", "h200", "--estimator", "auto",
        "--isl", "1024", "-o", "json",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert r.json()[0]["estimator"] == "roofline"
    assert "because aiconfigurator ships no config for llama-3.2-1b" in r.stderr


@needs_aic
def test_compare_prints_both_with_their_ratio() -> None:
    r = run_cli(
        "estimate", *LLAMA, "--dtype", "bf16", "--compare", "--tp", "1,4", "--isl", "512,8192",
        "-o", "json",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    rows = r.json()
    assert len(rows) == 4
    for row in rows:
        assert row["ratio"] == pytest.approx(
            row["roofline_ms"] / row["aiconfigurator_ms"], rel=1e-3
        )
        assert row["estimator"].startswith("roofline vs aiconfigurator")
    table = run_cli("estimate", *LLAMA, "--dtype", "bf16", "--compare", "--isl", "512")
    assert (
        table.exit_code == 0 and "ratio" in table.stdout and "aiconfigurator (ms)" in table.stdout
    )


def test_calibrate_fits_the_measured_profile_and_reports_the_fit() -> None:
    args = [*LLAMA, "--tp", "1,2", "--isl", "512,4096", "-o", "json"]
    plain = run_cli("estimate", *args)
    r = run_cli("estimate", *args, "--calibrate", REAL)
    assert r.exit_code == 0, r.stderr
    rows = r.json()
    assert all(row["estimator"] == "roofline (calibrated)" for row in rows)
    assert [row["latency_ms"] for row in rows] != [row["latency_ms"] for row in plain.json()]
    assert f"calibrated on {REAL}: prefill median" in r.stderr.replace("\n", " ")
    assert "TP all-reduce term keeps its defaults" in r.stderr.replace("\n", " ")


def test_calibrate_with_aiconfigurator_is_a_usage_error() -> None:
    r = run_cli(
        "estimate", *LLAMA, "--estimator", "aiconfigurator", "--calibrate", REAL, "--isl", "512"
    )
    assert r.exit_code == 2 and "cannot be combined with --estimator aiconfigurator" in r.stderr


def test_aiconfigurator_absent_is_one_line_and_auto_falls_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(aic_module, "aiconfigurator_available", lambda: False)
    r = run_cli("estimate", *LLAMA, "--estimator", "aiconfigurator", "--isl", "512")
    assert r.exit_code == 1
    assert r.stderr.strip().count("\n") == 0 and "pip install" in r.stderr
    r = run_cli("estimate", *LLAMA, "--estimator", "auto", "--isl", "512", "-o", "json")
    assert r.exit_code == 0 and r.json()[0]["estimator"] == "roofline"
    roof = RooflineEstimator(load_model("llama-3.1-8b"), load_gpu("h200_sxm"), "vllm", "fp8")
    assert r.json()[0]["latency_ms"] == pytest.approx(roof.prefill(1, 512).latency_ms, abs=1e-3)
    assert "aiconfigurator package is not installed" in r.stderr
