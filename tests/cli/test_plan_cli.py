"""``dynamo-plan plan decide``: JSON output, usage errors, exit codes."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.interpolate import PchipInterpolator

from dynamo_plan.sim.attainment import MARGIN
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
    # labels carry their units; the raw field names are for -o json
    for label in ("prefill replicas", "expected TTFT, ms (queued)", "TTFT target, ms"):
        assert label in res.stdout
    assert "prefill_thpt_per_gpu" not in res.stdout and "e+0" not in res.stdout


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


# --- profile.json: GPUs per engine, SLA -----------------------------------------------------------

TP4_META = {
    "model": "meta-llama/Llama-3.1-70B",
    "system": "h200_sxm",
    "backend": "trtllm",
    "parallelism": {
        "prefill": {"tp": 4, "gpus_per_engine": 4},
        "decode": {"tp": 4, "gpus_per_engine": 4},
    },
    "sla": {"isl": 3000, "osl": 150, "ttft": 200, "itl": 20},
}
TP4_SLA = ["--isl", "3000", "--osl", "150", "--ttft", "200", "--itl", "20"]


def tp4_profile(shared_data: Path, tmp_path: Path) -> Path:
    """The H200 profile with a profile.json recording 4 GPUs per engine and a 200/20 ms SLA."""
    out = tmp_path / "tp4"
    shutil.copytree(shared_data / PROFILE, out)
    (out / "profile.json").write_text(json.dumps(TP4_META), encoding="utf-8")
    return out


def test_gpus_per_engine_and_sla_come_from_profile_json(shared_data: Path, tmp_path: Path) -> None:
    """No SLA or GPU flags: the recorded ones are used (the same decision as giving them), GPUs
    = 4·(P+D), and nothing is noted."""
    prof = tp4_profile(shared_data, tmp_path)
    load = ["--rps", "10", "--max-gpu-budget", "-1", "-o", "json"]
    res = run_cli("plan", "decide", "--profile", prof, *load)
    assert res.exit_code == 0, res.stderr
    assert res.stderr == ""
    out = res.json()
    assert out["gpus"] == 4 * (out["prefill_replicas"] + out["decode_replicas"])
    assert {k: v["from"] for k, v in out["inputs"].items()} == dict.fromkeys(
        ["isl", "osl", "ttft", "itl", "prefill_engine_num_gpu", "decode_engine_num_gpu"],
        "profile.json",
    )
    assert (out["inputs"]["ttft"]["value"], out["inputs"]["itl"]["value"]) == (200.0, 20.0)
    gpus = ["--prefill-engine-num-gpu", "4", "--decode-engine-num-gpu", "4"]
    plain = ["plan", "decide", "--profile", shared_data / PROFILE, *TP4_SLA, *gpus, *load]
    given = run_cli(*plain).json()
    assert {k: v for k, v in out.items() if k != "inputs"} == {
        k: v for k, v in given.items() if k != "inputs"
    }


def test_budget_check_counts_the_profiles_gpus_per_engine(
    shared_data: Path, tmp_path: Path
) -> None:
    """With 4 GPUs per engine a budget of 8 holds 1 prefill + 1 decode engine, not 7 + 1."""
    prof = tp4_profile(shared_data, tmp_path)
    args = ["--rps", "40", *TP4_SLA, "--max-gpu-budget", "8", "-o", "json"]
    out = run_cli("plan", "decide", "--profile", prof, *args).json()
    assert (out["prefill_replicas"], out["decode_replicas"]) == (1, 1)
    assert out["gpus"] == 8 and out["budget_clamped"]
    assert out["prefill_needed"] > 1
    res = run_cli("plan", "decide", "--profile", prof, *args[:-2], "--max-gpu-budget", "4")
    assert res.exit_code == 4  # one engine of each role needs 8 GPUs
    assert "engine(s) of 4 GPU(s)" in res.stderr and "they need 8 GPUs" in res.stderr


def test_flag_overriding_the_profile_says_so(shared_data: Path, tmp_path: Path) -> None:
    prof = tp4_profile(shared_data, tmp_path)
    args = ["--rps", "10", "--ttft", "500", "--itl", "20", "--decode-engine-num-gpu", "2"]
    res = run_cli("plan", "decide", "--profile", prof, *args, "-o", "json")
    assert res.exit_code == 0, res.stderr
    assert res.stderr.splitlines() == [
        f"note: --ttft 500 ms overrides the profile's 200 ms ({prof / 'profile.json'})",
        f"note: --decode-engine-num-gpu 2 overrides the profile's 4 ({prof / 'profile.json'})",
    ]
    out = res.json()
    assert out["inputs"]["ttft"] == {"value": 500.0, "from": "flag"}
    assert out["inputs"]["itl"] == {"value": 20.0, "from": "flag"}  # same as recorded: no note
    assert out["inputs"]["decode_engine_num_gpu"] == {"value": 2, "from": "flag"}
    assert out["gpus"] == 4 * out["prefill_replicas"] + 2 * out["decode_replicas"]


def test_profile_without_profile_json_needs_the_sla_flags(shared_data: Path) -> None:
    res = run_cli(
        "plan", "decide", "--profile", shared_data / PROFILE, "--rps", "10", "--isl", "3000"
    )
    assert res.exit_code == 2
    assert res.stderr.strip().splitlines() == [
        f"error: give --osl, --ttft, --itl: the profile {shared_data / PROFILE} has no "
        "profile.json to take them from"
    ]


def test_malformed_profile_json_is_exit_1(shared_data: Path, tmp_path: Path) -> None:
    prof = tp4_profile(shared_data, tmp_path)
    (prof / "profile.json").write_text(json.dumps({**TP4_META, "sla": {"ttft": "fast"}}))
    res = run_cli("plan", "decide", "--profile", prof, "--rps", "10")
    assert res.exit_code == 1
    assert "'sla.ttft' must be a number > 0 ms" in res.stderr


def test_sla_attainment_sizes_by_replaying_a_sample(shared_data: Path) -> None:
    """``--sla-attainment``: the simulator replays a sample; the replicas meet the target on it
    (stated in the notes), the shapes are said, and the long prompts of ``--shapes`` ask for
    more prefill than the fixed --isl."""
    fixed = run_cli(
        *decide(shared_data, "--rps", "20", "--sla-attainment", "0.99", "--max-gpu-budget", "-1",
                "-o", "json")
    )  # fmt: skip
    assert fixed.exit_code == 0, fixed.stderr
    out = fixed.json()
    assert out["sla_attainment"] == 0.99
    assert out["shapes"] == "every request at ISL 3000 / OSL 150"
    note = next(n for n in out["notes"] if n.startswith("attainment 0.99: a sample of"))
    met = float(note.split(" meets the SLA for ")[1].split("%")[0])
    assert met >= 100.0 * (1.0 - 0.01 * (1.0 - MARGIN)) - 0.05  # some misses kept in reserve
    trace = (
        Path(__file__).resolve().parents[2] / "sample_traces" / "mooncake_conversation_10min.jsonl"
    )
    shaped = run_cli(
        *decide(shared_data, "--rps", "20", "--sla-attainment", "0.99", "--shapes", str(trace),
                "--ttft", "2000", "--itl", "30", "--max-gpu-budget", "-1", "-o", "json")
    ).json()  # fmt: skip
    assert str(trace) in shaped["shapes"]
    assert shaped["prefill_replicas"] > out["prefill_replicas"]  # Mooncake's prompts: ~12k


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (["--shapes", "x.csv"], 2, "--shapes goes with --sla-attainment"),
        (["--sla-attainment", "1.5"], 1, "fraction in (0, 1)"),
    ],
)
def test_sla_attainment_usage(shared_data: Path, extra: list[str], code: int, message: str) -> None:
    res = run_cli(*decide(shared_data, "--rps", "20", *extra))
    assert res.exit_code == code
    assert message in res.stderr
