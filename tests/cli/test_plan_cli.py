"""``dynamo-plan plan decide``: JSON output, usage errors, exit codes."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.interpolate import PchipInterpolator

from tests.conftest import run_cli

PROFILE = "profiles/h200_llama3.1-8b-fp8_tp1p_tp1d"
BASE = ["--isl", "3000", "--osl", "150", "--interval", "60", "--ttft", "100", "--itl", "10"]


def decide(shared_data: Path, *args: str) -> list[str]:
    return ["plan", "decide", "--profile", str(shared_data / PROFILE), *BASE, *args]


def test_issue_example(shared_data: Path) -> None:
    """The issue's example is the classic sizing: prefill for the mean TTFT (``--ttft-quantile 0``;
    the default sizes for the p99 TTFT, see test_default_sizes_prefill_for_p99_ttft)."""
    res = run_cli(*decide(shared_data, "--rps", "20", "--ttft-quantile", "0", "-o", "json"))
    assert res.exit_code == 0, res.stderr
    out = res.json()
    with np.load(shared_data / PROFILE / "selected_prefill_interpolation/raw_data.npz") as p:
        thpt = float(PchipInterpolator(p["prefill_isl"], p["prefill_thpt_per_gpu"])(3000))
        ttft = float(PchipInterpolator(p["prefill_isl"], p["prefill_ttft"])(3000))
    assert out["prefill_replicas"] == math.ceil(20 * 3000 / thpt) == 2
    assert out["decode_replicas"] == 1
    assert out["prefill_thpt_per_gpu"] == pytest.approx(thpt, abs=0.06)
    assert out["expected_ttft_ms"] == pytest.approx(ttft, abs=0.006)
    assert out["expected_itl_ms"] <= 10.0
    assert out["p_correction"] == out["d_correction"] == 1.0
    assert out["reason"] == "scale_up"  # from min_endpoint (1, 1)
    assert out["gpus"] == 3
    for key in ("decode_thpt_per_gpu", "expected_ttft_queued_ms", "notes", "detail"):
        assert key in out


def test_default_sizes_prefill_for_p99_ttft(shared_data: Path) -> None:
    """By default prefill is sized so the p99 TTFT (M/D/c queueing) meets the target: more
    engines than the mean-TTFT sizing, never fewer, and the decode side is unchanged."""
    mean = run_cli(*decide(shared_data, "--rps", "20", "--ttft-quantile", "0", "-o", "json")).json()
    p99 = run_cli(*decide(shared_data, "--rps", "20", "-o", "json")).json()
    assert p99["prefill_replicas"] > mean["prefill_replicas"]
    assert p99["decode_replicas"] == mean["decode_replicas"]


def test_requests_and_rps_agree(shared_data: Path) -> None:
    a = run_cli(*decide(shared_data, "--rps", "20", "-o", "json")).json()
    b = run_cli(*decide(shared_data, "--requests", "1200", "-o", "json")).json()
    assert a == b


def test_observed_latencies_set_corrections_unless_disabled(shared_data: Path) -> None:
    observed = [
        "--rps", "20", "--current-prefill", "2", "--current-decode", "1",
        "--observed-ttft", "150", "--observed-itl", "14", "--observed-request-duration", "3",
        "-o", "json",
    ]  # fmt: skip
    on = run_cli(*decide(shared_data, *observed)).json()
    assert on["p_correction"] > 1.0 and on["d_correction"] > 1.0
    assert (
        on["decode_thpt_per_gpu"]
        < run_cli(*decide(shared_data, "--rps", "20", "-o", "json")).json()["decode_thpt_per_gpu"]
    )
    off = run_cli(*decide(shared_data, *observed, "--no-correction", "--ttft-quantile", "0")).json()
    assert off["p_correction"] == off["d_correction"] == 1.0
    assert (off["prefill_replicas"], off["decode_replicas"]) == (2, 1)
    assert off["reason"] == "no_change"


def test_budget_and_no_budget(shared_data: Path) -> None:
    capped = run_cli(*decide(shared_data, "--rps", "200", "--max-gpu-budget", "8", "-o", "json"))
    out = capped.json()
    assert out["gpus"] <= 8 and out["budget_clamped"] and out["reason"] == "hold_budget"
    free = run_cli(*decide(shared_data, "--rps", "200", "--max-gpu-budget", "-1", "-o", "json"))
    assert free.json()["gpus"] > 8


def test_classic_prefill_flag(shared_data: Path) -> None:
    heavy = ["--rps", "40", "-o", "json"]
    q = run_cli(*decide(shared_data, *heavy)).json()
    c = run_cli(*decide(shared_data, *heavy, "--no-prefill-queueing")).json()
    assert c["prefill_replicas"] == c["prefill_needed"] <= q["prefill_replicas"]


def test_table_output(shared_data: Path) -> None:
    res = run_cli(*decide(shared_data, "--rps", "20"))
    assert res.exit_code == 0
    assert "prefill_replicas" in res.stdout


@pytest.mark.parametrize(
    "extra",
    [["--rps", "20", "--requests", "1200"], []],
    ids=["both", "neither"],
)
def test_load_flags_are_exclusive_and_required(shared_data: Path, extra: list[str]) -> None:
    res = run_cli(*decide(shared_data, *extra))
    assert res.exit_code == 2
    assert "--requests" in res.stderr and res.stdout == ""


def test_missing_profile_dir_is_exit_1(tmp_path: Path) -> None:
    res = run_cli("plan", "decide", "--profile", str(tmp_path / "nope"), "--rps", "20", *BASE)
    assert res.exit_code == 1
    assert "not a directory" in res.stderr


def test_infeasible_itl_is_exit_4(shared_data: Path) -> None:
    res = run_cli(*decide(shared_data, "--rps", "20", "--itl", "3"))
    assert res.exit_code == 4
    assert "lowest achievable ITL" in res.stderr


def test_bad_budget_is_exit_1(shared_data: Path) -> None:
    res = run_cli(*decide(shared_data, "--rps", "20", "--max-gpu-budget", "0"))
    assert res.exit_code == 1
    assert "--max-gpu-budget" in res.stderr
