"""``dynamo-plan predict backtest`` and ``predict list``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from dynamo_plan.predict import available_predictors
from tests.conftest import run_cli

SAMPLE = Path(__file__).resolve().parents[2] / "sample_traces" / "mooncake_conversation_10min.jsonl"
METRICS = {
    "mape", "smape", "wape", "rmse", "mae", "bias", "under_rate", "p90_coverage", "ms_per_step",
    "ms_per_step_mean", "ms_per_step_max",
}  # fmt: skip
FAST = "constant,kalman,default"


def test_backtest_json_shape() -> None:
    result = run_cli("predict", "backtest", SAMPLE, "--interval", "30", "-o", "json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert set(data) == {"interval_s", "traces", "intervals", "results", "best"}
    assert data["interval_s"] == 30
    assert data["traces"] == [str(SAMPLE)]
    assert data["intervals"] == 20
    installed = [n for n, ok in available_predictors().items() if ok]
    assert {(r["series"], r["predictor"]) for r in data["results"]} == {
        (s, p) for s in ("count", "isl", "osl") for p in installed
    }
    for r in data["results"]:
        assert set(r) == {"series", "predictor"} | METRICS
        assert 0 <= r["under_rate"] <= 1 and 0 <= r["p90_coverage"] <= 1
        assert r["wape"] >= 0 and r["ms_per_step"] > 0
        assert r["ms_per_step_max"] >= max(r["ms_per_step"], r["ms_per_step_mean"])
    for series, best in data["best"].items():
        wapes = {r["predictor"]: r["wape"] for r in data["results"] if r["series"] == series}
        assert wapes[best] == min(wapes.values())


def test_backtest_csv_and_plot(tmp_path: Path) -> None:
    csv, png = tmp_path / "f.csv", tmp_path / "f.png"
    result = run_cli(
        "predict", "backtest", SAMPLE, "--interval", "30", "--predictors", FAST,
        "--series", "count,osl", "--csv", csv, "--plot", png, "-o", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    frame = pd.read_csv(csv)
    assert set(frame["series"]) == {"count", "osl"}
    assert set(frame["predictor"]) == set(FAST.split(","))
    assert len(frame) == 2 * 3 * (20 - 5)
    assert (frame["p90"] >= frame["p50"] - 1e-9).all()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 1000


def test_backtest_default_trace_and_table() -> None:
    result = run_cli("predict", "backtest", "--predictors", FAST)
    assert result.exit_code == 0, result.stderr
    assert "bundled sample trace" in result.stderr
    assert "mooncake_conversation_10min.jsonl" in result.stderr
    assert "ranked by WAPE" in result.stdout
    for name in FAST.split(","):
        assert name in result.stdout


def test_backtest_horizon_yaml() -> None:
    result = run_cli(
        "predict", "backtest", SAMPLE, "--interval", "20", "--horizon", "3",
        "--predictors", "constant", "--series", "count", "-o", "yaml",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "best:" in result.stdout and "count: constant" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--predictors", "kalmn"], "unknown predictor 'kalmn' (did you mean 'kalman'?)"),
        (["--series", "count,tokens"], "unknown series 'tokens'; valid: count, isl, osl"),
        (["--interval", "120", "--horizon", "2"], "5 intervals are too few for horizon 2"),
        (["--interval", "0"], "--interval must be > 0"),
    ],
)
def test_backtest_bad_input_exits_1(args: list[str], message: str) -> None:
    result = run_cli("predict", "backtest", SAMPLE, *args, "-o", "json")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_backtest_missing_file_exits_1(tmp_path: Path) -> None:
    result = run_cli("predict", "backtest", tmp_path / "nope.jsonl")
    assert result.exit_code == 1
    assert "nope.jsonl" in result.stderr


def test_predict_list_json() -> None:
    result = run_cli("predict", "list", "-o", "json")
    assert result.exit_code == 0, result.stderr
    predictors = {p["name"]: p for p in result.json()["predictors"]}
    assert set(predictors) == {"constant", "arima", "kalman", "prophet", "default"}
    assert predictors["kalman"]["params"]["r"] == 10.0
    assert predictors["prophet"]["params"]["window"] == 50
    assert predictors["prophet"]["installed"] == available_predictors()["prophet"]
    assert all(p["installed"] for n, p in predictors.items() if n != "prophet")


def test_backtest_score_gpu_hours(shared_data: Path) -> None:
    profile = shared_data / "profiles" / "h200_llama3.1-8b-fp8_tp1p_tp1d"
    args = ["predict", "backtest", SAMPLE, "--interval", "30", "--predictors", "constant,kalman"]
    plain = run_cli(*args, "-o", "json")
    scored = run_cli(
        *args, "--score-gpu-hours", "--profile", profile, "--ttft", "2000", "--itl", "25",
        "-o", "json",
    )  # fmt: skip
    assert scored.exit_code == 0, scored.stderr
    base = {(r["series"], r["predictor"]): r for r in plain.json()["results"]}
    for r in scored.json()["results"]:
        extra = set(r) - set(base[(r["series"], r["predictor"])])
        if r["series"] == "count":
            assert extra == {"gpu_hours", "sla_attainment"}
            assert r["gpu_hours"] > 0 and 0 <= r["sla_attainment"] <= 1
        else:
            assert not extra
    assert set(scored.json()) == set(plain.json())


def test_backtest_score_gpu_hours_needs_profile_and_sla() -> None:
    result = run_cli("predict", "backtest", SAMPLE, "--score-gpu-hours", "--ttft", "300")
    assert result.exit_code == 2
    assert "--profile" in result.stderr
