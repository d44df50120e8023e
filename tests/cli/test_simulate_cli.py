"""``dynamo-plan simulate``: JSON shape, --compare, --plot, --requests-csv, static replicas, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from dynamo_plan.resources import shipped_file
from tests.conftest import CliResult, run_cli

H200 = Path("profiles") / "h200_llama3.1-8b-fp8_tp1p_tp1d"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
KEYS = {
    "policy",
    "requests",
    "completed",
    "sla_attainment",
    "ttft_ms",
    "itl_ms",
    "gpu_hours",
    "replica_timeline",
    "out_of_profile_requests",
    "unservable",
    "unforeseeable",
    "wall_s",
}


@pytest.fixture(scope="module")
def trace() -> Path:
    return shipped_file("sample_traces", "azure2023_conv_10min.csv")


@pytest.fixture(scope="module")
def n_requests(trace: Path) -> int:
    return sum(1 for _ in trace.open()) - 1  # header


def sim(shared_data: Path, trace: Path, *extra: str | Path) -> CliResult:
    """The Azure excerpt ×10 with intervals scaled with it (6 s = 60 s of trace time)."""
    return run_cli(
        "simulate",
        trace,
        "--profile",
        shared_data / H200,
        "--ttft",
        "300",
        "--itl",
        "20",
        "--rate-scale",
        "10",
        "--interval",
        "6",
        "--startup-s",
        "6",
        *extra,
    )


def one_error_line(result: CliResult, code: int) -> str:
    assert result.exit_code == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), lines
    assert "Traceback" not in result.stderr
    return lines[0]


def test_json_shape(shared_data: Path, trace: Path, n_requests: int) -> None:
    r = sim(shared_data, trace, "-o", "json")
    assert r.exit_code == 0, r.stderr
    doc = r.json()
    assert set(doc) == KEYS
    assert doc["policy"] == "planner"
    assert doc["requests"] == doc["completed"] == n_requests
    assert 0.0 <= doc["sla_attainment"] <= 1.0
    for key in ("ttft_ms", "itl_ms"):
        assert set(doc[key]) == {"p50", "p90", "p99"}
        assert doc[key]["p50"] <= doc[key]["p90"] <= doc[key]["p99"]
    assert doc["gpu_hours"] > 0
    timeline = doc["replica_timeline"]
    assert timeline[0]["t_s"] == 0
    assert all(set(e) == {"t_s", "prefill", "decode"} for e in timeline)
    assert all(e["prefill"] >= 1 and e["decode"] >= 1 for e in timeline)


def test_compare_plot_and_csv(
    shared_data: Path, trace: Path, n_requests: int, tmp_path: Path
) -> None:
    png, csv = tmp_path / "cmp.png", tmp_path / "req.csv"
    r = sim(shared_data, trace, "--compare", "--plot", png, "--requests-csv", csv, "-o", "json")
    assert r.exit_code == 0, r.stderr
    docs = r.json()
    assert [d["policy"] for d in docs] == [
        "optimal", "oracle-forecast", "planner", "dynamo", "reactive", "static"
    ]  # fmt: skip
    oracle = next(d for d in docs if d["policy"] == "oracle-forecast")
    optimal = next(d for d in docs if d["policy"] == "optimal")
    for d in docs:
        assert set(d) >= KEYS
        assert d["gpu_hours_vs_oracle"] == pytest.approx(d["gpu_hours"] / oracle["gpu_hours"])
        assert d["gpu_hours_vs_optimal"] == pytest.approx(d["gpu_hours"] / optimal["gpu_hours"])
    assert optimal["sla_attainment"] >= 0.99
    assert png.read_bytes()[:8] == PNG_MAGIC
    frame = pd.read_csv(csv)
    assert len(frame) == 6 * n_requests
    assert {"policy", "arrival_s", "ttft_ms", "itl_ms", "sla_met"} <= set(frame.columns)
    for d in docs:
        rows = frame[frame["policy"] == d["policy"]]
        assert rows["sla_met"].mean() == pytest.approx(d["sla_attainment"])


def test_single_plot_and_table(shared_data: Path, trace: Path, tmp_path: Path) -> None:
    png = tmp_path / "one.png"
    r = sim(shared_data, trace, "--policy", "reactive", "--plot", png)
    assert r.exit_code == 0, r.stderr
    assert "reactive" in r.stdout
    assert png.read_bytes()[:8] == PNG_MAGIC


def test_static_replicas(shared_data: Path, trace: Path) -> None:
    r = sim(
        shared_data,
        trace,
        "--policy",
        "static",
        "--prefill-replicas",
        "2",
        "--decode-replicas",
        "3",
        "-o",
        "json",
    )
    assert r.exit_code == 0, r.stderr
    assert {(e["prefill"], e["decode"]) for e in r.json()["replica_timeline"]} == {(2, 3)}


def test_yaml_output(shared_data: Path, trace: Path) -> None:
    r = sim(shared_data, trace, "--policy", "oracle", "-o", "yaml")  # the former name
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith("policy: oracle-forecast")


def test_infeasible_itl_exits_4(shared_data: Path, trace: Path) -> None:
    r = run_cli("simulate", trace, "--profile", shared_data / H200, "--ttft", "300", "--itl", "0.5")
    assert "itl" in one_error_line(r, 4).lower()


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        (["--predictor", "nope"], 1),
        (["--load-quantile", "1.5"], 1),
        (["--max-gpu-budget", "0"], 1),
        (["--prefill-replicas", "2"], 2),
        (["--interval", "0"], 1),
    ],
)
def test_bad_flags(shared_data: Path, trace: Path, extra: list[str], code: int) -> None:
    one_error_line(sim(shared_data, trace, *extra), code)


def test_bad_profile_and_trace(shared_data: Path, trace: Path, tmp_path: Path) -> None:
    r = run_cli("simulate", trace, "--profile", tmp_path, "--ttft", "300", "--itl", "20")
    one_error_line(r, 1)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"timestamp": 0, "input_length": -3, "output_length": 5}\n')
    r = run_cli("simulate", bad, "--profile", shared_data / H200, "--ttft", "300", "--itl", "20")
    one_error_line(r, 1)


def test_rate_series(shared_data: Path, tmp_path: Path) -> None:
    rate = tmp_path / "rate.csv"
    rate.write_text("timestamp,requests,isl,osl\n0,300,1000,100\n60,900,1200,120\n120,200,800,80\n")
    r = run_cli(
        "simulate", rate, "--profile", shared_data / H200, "--ttft", "300", "--itl", "20",
        "--compare", "-o", "json",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert all(d["requests"] == d["completed"] == 1400 for d in r.json())
    rate.write_text("timestamp,requests,isl,osl\n0,1000000000000,100,20\n60,4,100,20\n")
    r = run_cli("simulate", rate, "--profile", shared_data / H200, "--ttft", "300", "--itl", "20")
    assert "requests" in one_error_line(r, 1)


def _tp4_profile(shared_data: Path, tmp_path: Path) -> Path:
    """The H200 profile with a profile.json recording 4 GPUs per engine and a 200/20 ms SLA."""
    out = tmp_path / "tp4"
    shutil.copytree(shared_data / H200, out)
    par = {"tp": 4, "gpus_per_engine": 4}
    meta = {
        "model": "llama-3.1-8b",
        "parallelism": {"prefill": par, "decode": par},
        "sla": {"isl": 3000, "osl": 150, "ttft": 200, "itl": 20},
    }
    (out / "profile.json").write_text(json.dumps(meta), encoding="utf-8")
    return out


def _notes(result: CliResult) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("note:")]


def test_sla_and_gpus_per_engine_come_from_profile_json(
    shared_data: Path, trace: Path, tmp_path: Path
) -> None:
    """Without --ttft/--itl/--*-engine-num-gpu the recorded values are used: the same result as
    giving them, and GPU-hours 4× those of 1-GPU engines."""
    prof = _tp4_profile(shared_data, tmp_path)
    static = ["--policy", "static", "--prefill-replicas", "2", "--decode-replicas", "1"]
    base = ["simulate", trace, "--rate-scale", "10", "--interval", "6", "--startup-s", "6"]
    base += [*static, "-o", "json"]
    recorded = run_cli(*base, "--profile", prof)
    assert recorded.exit_code == 0, recorded.stderr
    assert _notes(recorded) == []
    sla = ["--ttft", "200", "--itl", "20"]
    gpus = ["--prefill-engine-num-gpu", "4", "--decode-engine-num-gpu", "4"]
    given = run_cli(*base, "--profile", shared_data / H200, *sla, *gpus)
    one_gpu = run_cli(*base, "--profile", shared_data / H200, *sla)

    def strip(r: CliResult) -> dict:
        return {k: v for k, v in r.json().items() if k != "wall_s"}

    assert strip(recorded) == strip(given)
    assert recorded.json()["gpu_hours"] == pytest.approx(4 * one_gpu.json()["gpu_hours"])


def test_flag_overriding_profile_json_says_so(
    shared_data: Path, trace: Path, tmp_path: Path
) -> None:
    prof = _tp4_profile(shared_data, tmp_path)
    r = run_cli(
        "simulate", trace, "--profile", prof, "--ttft", "300", "--rate-scale", "10",
        "--interval", "6", "--startup-s", "6", "--policy", "static",
        "--prefill-replicas", "1", "--decode-replicas", "1", "-o", "json",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert _notes(r) == [
        f"note: --ttft 300 ms overrides the profile's 200 ms ({prof / 'profile.json'})"
    ]


def test_profile_without_profile_json_needs_ttft_and_itl(shared_data: Path, trace: Path) -> None:
    r = run_cli("simulate", trace, "--profile", shared_data / H200, "--itl", "20")
    line = one_error_line(r, 2)
    assert "give --ttft:" in line and "has no profile.json" in line


def test_compare_table_is_ranked_with_units(shared_data: Path, trace: Path) -> None:
    """``--compare``'s table: best first (SLA attainment, then GPU-hours; the caption says so),
    units in the headers, plain numbers (no 1.234e+04)."""
    as_json = sim(shared_data, trace, "--compare", "-o", "json")
    table = sim(shared_data, trace, "--compare")
    assert as_json.exit_code == 0 and table.exit_code == 0, table.stderr
    docs = as_json.json()
    best_first = sorted(docs, key=lambda d: (-d["sla_attainment"], d["gpu_hours"]))
    assert [d["rank"] for d in best_first] == [1, 2, 3, 4, 5, 6]
    text = " ".join(table.stdout.split())
    for header in ("SLA met %", "GPU-hours", "TTFT p99 (ms)", "ITL p99 (ms)"):
        assert header.split()[0] in text
    assert "(ms)" in table.stdout and "%" in table.stdout
    assert "Ranked by SLA attainment (highest first), then GPU-hours (fewest first)." in text
    rows = [
        line.split()
        for line in table.stdout.splitlines()
        if line.split()[:1] in ([str(k)] for k in range(1, 7))
    ]
    assert [r[1] for r in rows] == [d["policy"] for d in best_first]
    for r, d in zip(rows, best_first, strict=True):  # each value under its own header
        assert float(r[5]) == pytest.approx(d["ttft_ms"]["p99"], rel=1e-3)
        assert float(r[6]) == pytest.approx(d["itl_ms"]["p99"], rel=1e-3)
        assert int(r[7]) == d["unservable"]
    assert "e+" not in table.stdout and "e-0" not in table.stdout


def test_sizing_dynamo_is_dynamos_formula(shared_data: Path, trace: Path) -> None:
    """`--sizing dynamo` sizes with Dynamo's throughput-only prefill formula on the mean TTFT:
    fed the true load (oracle-forecast) it asks for no more prefill than this project's
    queueing-aware default, and not for the same schedule."""
    ours = sim(shared_data, trace, "--policy", "oracle-forecast", "-o", "json")
    theirs = sim(
        shared_data, trace, "--policy", "oracle-forecast", "--sizing", "dynamo", "-o", "json"
    )
    assert ours.exit_code == 0 and theirs.exit_code == 0, theirs.stderr
    most = [max(e["prefill"] for e in r.json()["replica_timeline"]) for r in (ours, theirs)]
    assert most[1] <= most[0]
    assert ours.json()["replica_timeline"] != theirs.json()["replica_timeline"]
    bad = sim(shared_data, trace, "--sizing", "neither")
    assert bad.exit_code == 2


def test_compare_says_which_requests_no_load_following_planner_is_ready_for(
    shared_data: Path, tmp_path: Path
) -> None:
    """Requests after an idle interval: counted in every row and stated under the table."""
    rows = ["TIMESTAMP,ContextTokens,GeneratedTokens"]
    for second in [*range(0, 60, 2), *range(120, 180, 2)]:  # a busy minute, an idle one, busy
        rows.append(f"2023-11-16 18:{second // 60:02d}:{second % 60:02d}.0,800,40")
    trace = tmp_path / "gap.csv"
    trace.write_text("\n".join(rows) + "\n")
    args = ("--profile", shared_data / H200, "--ttft", "300", "--itl", "20", "--interval", "60")
    as_json = run_cli("simulate", trace, *args, "--startup-s", "0", "--compare", "-o", "json")
    assert as_json.exit_code == 0, as_json.stderr
    assert {d["unforeseeable"] for d in as_json.json()} == {30}  # the third minute's requests
    table = run_cli("simulate", trace, *args, "--startup-s", "0", "--compare")
    assert table.exit_code == 0, table.stderr
    text = " ".join(table.stdout.split())
    assert "30 of 60 requests (50.0 %) arrive in intervals whose engines are ordered" in text
    assert "more than the 0 misses an attainment of 0.99 allows" in text  # floor(0.6)
    lenient = run_cli(
        "simulate", trace, *args, "--startup-s", "0", "--compare", "--sla-attainment", "0.5"
    )
    assert lenient.exit_code == 0, lenient.stderr
    text = " ".join(lenient.stdout.split())
    assert "30 of 60 requests" in text and "misses an attainment" not in text  # 30 allowed
    quiet = run_cli("simulate", trace, *args, "--startup-s", "60", "--compare")
    assert quiet.exit_code == 0, quiet.stderr
    assert "arrive in intervals whose engines" not in quiet.stdout  # ordered at 60 s: busy seen
