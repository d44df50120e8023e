"""Profiles that cover the traffic: ``simulate`` and ``plan decide`` extend a measured profile
beyond its range (with a warning), ``profile --offline --max-context N`` reaches N."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dynamo_plan.adapters.profile_files import load_profile
from tests.conftest import run_cli
from tests.profiler.test_extend import H200, recorded_copy


@pytest.fixture(scope="module")
def recorded(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return recorded_copy(shared_data, tmp_path_factory.mktemp("extcli") / "h200")


@pytest.fixture(scope="module")
def long_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two minutes at 1 req/s: ISL 500–4,000 tokens, every tenth request 18,000–26,000."""
    rng = np.random.default_rng(7)
    lines = ["TIMESTAMP,ContextTokens,GeneratedTokens"]
    for i in range(120):
        isl = int(rng.integers(18_000, 26_000)) if i % 10 == 3 else int(rng.integers(500, 4_000))
        osl = int(rng.integers(50, 400))
        lines.append(f"2023-11-16 18:{15 + i // 60:02d}:{i % 60:02d}.0000000,{isl},{osl}")
    path = tmp_path_factory.mktemp("trace") / "long.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _simulate(trace: Path, profile: Path) -> tuple[dict, str]:
    result = run_cli(
        "simulate", trace, "--profile", profile, "--ttft", "3000", "--itl", "30",
        "--interval", "30", "--startup-s", "30", "--policy", "static", "-o", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return result.json(), " ".join(result.stderr.split())


def test_simulate_extends_the_profile_and_warns(
    shared_data: Path, recorded: Path, long_trace: Path
) -> None:
    bare, bare_err = _simulate(long_trace, shared_data / H200)  # no profile.json: clamped
    assert bare["out_of_profile_requests"] == 12
    assert "records no model or system" in bare_err and "clamped" in bare_err
    doc, err = _simulate(long_trace, recorded)
    assert doc["out_of_profile_requests"] < bare["out_of_profile_requests"]
    assert doc["out_of_profile_requests"] == 0
    assert "extended the profile" in err and "calibrated on its measured points" in err
    assert "decode context 13,585 →" in err
    assert "beyond the profile's range" not in err
    # the profile on disk is left as measured
    assert "extended" not in load_profile(recorded).meta


def test_plan_decide_extends_for_a_long_isl(recorded: Path, shared_data: Path) -> None:
    args = ["--isl", "30000", "--osl", "200", "--ttft", "3000", "--itl", "30", "--rps", "1"]
    result = run_cli("plan", "decide", "--profile", recorded, *args, "-o", "json")
    assert result.exit_code == 0, result.stderr
    err = " ".join(result.stderr.split())
    assert "extended the profile" in err and "prefill ISL 16,372 → 30,000" in err
    doc = result.json()
    assert not any("clamped" in n for n in doc["notes"])
    bare = run_cli("plan", "decide", "--profile", shared_data / H200, *args, "-o", "json")
    assert bare.exit_code == 0, bare.stderr
    assert "records no model or system" in " ".join(bare.stderr.split())
    # the clamped lookups think a 30k prompt is as cheap as the longest measured one
    assert doc["expected_ttft_ms"] > bare.json()["expected_ttft_ms"]


def test_profile_offline_max_context(tmp_path: Path) -> None:
    out = tmp_path / "p"
    result = run_cli(
        "profile", "--offline", "--model", "llama-3.1-8b", "--system", "h200_sxm",
        "--backend", "vllm", "--isl", "3000", "--osl", "150", "--ttft", "200", "--itl", "20",
        "--max-context", "65536", "--no-plots", "--out", out, "-o", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert doc["decode_max_context"] == 65536 and doc["prefill_max_isl"] == 65536
    assert load_profile(out).decode.contexts[-1] == 65536


def test_profile_offline_max_context_32768(tmp_path: Path) -> None:
    out = tmp_path / "p"
    result = run_cli(
        "profile", "--offline", "--model", "llama-3.1-8b", "--system", "h200_sxm",
        "--backend", "vllm", "--isl", "3000", "--osl", "150", "--ttft", "200", "--itl", "20",
        "--max-context", "32768", "--no-plots", "--out", out, "-o", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert result.json()["decode_max_context"] == 32768
    assert load_profile(out).decode.contexts[-1] == 32768


def test_profile_offline_max_context_must_be_positive(tmp_path: Path) -> None:
    result = run_cli(
        "profile", "--offline", "--model", "llama-3.1-8b", "--system", "h200_sxm",
        "--backend", "vllm", "--isl", "3000", "--osl", "150", "--ttft", "200", "--itl", "20",
        "--max-context", "0", "--out", tmp_path / "p",
    )  # fmt: skip
    assert result.exit_code == 1 and "--max-context" in result.stderr


def test_plan_run_extends_at_start(recorded: Path, shared_data: Path, tmp_path: Path) -> None:
    args = [
        "--isl", "24000", "--osl", "2000", "--ttft", "3000", "--itl", "30",
        "--prometheus-url", "http://127.0.0.1:1", "--interval", "0.1", "--startup-s", "0",
        "--max-ticks", "1", "--metrics-port", "0", "--connector", "virtual", "-o", "json",
    ]  # fmt: skip
    r = run_cli("plan", "run", "--profile", recorded, *args, "--state", tmp_path / "a.json")
    assert r.exit_code == 0, r.stderr
    err = " ".join(r.stderr.split())
    assert "context up to 25,000 (measured to 13,585): extended the profile" in err
    bare = run_cli(
        "plan", "run", "--profile", shared_data / H200, "--model", "llama", *args,
        "--state", tmp_path / "b.json",
    )  # fmt: skip
    assert bare.exit_code == 0, bare.stderr
    assert "records no model or system" in " ".join(bare.stderr.split())


def test_profile_offline_extend_writes_a_marked_profile(recorded: Path, tmp_path: Path) -> None:
    out = tmp_path / "ext"
    r = run_cli(
        "profile", "--offline", "--extend", recorded, "--max-context", "32768", "--out", out,
        "-o", "json",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    doc = r.json()
    assert doc["extended"] is True
    assert doc["decode_max_context"] == 32768 and doc["prefill_max_isl"] == 32768
    assert sorted(Path(p).name for p in doc["plots"]) == ["decode_surface.png", "prefill.png"]
    for p in doc["plots"]:
        assert Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    written = load_profile(out)
    assert written.meta["extended"]["decode_context_from"] == 13585
    assert written.meta["model"] == "meta-llama/Llama-3.1-8B-Instruct"  # the rest is kept
    measured = load_profile(recorded)
    n = measured.decode.itl_ms.size
    assert np.array_equal(written.decode.itl_ms[:n], measured.decode.itl_ms)


def test_profile_offline_extend_needs_model_and_system(shared_data: Path, tmp_path: Path) -> None:
    r = run_cli(
        "profile", "--offline", "--extend", shared_data / H200, "--max-context", "32768",
        "--out", tmp_path / "x",
    )  # fmt: skip
    assert r.exit_code == 1 and "records no model or system" in " ".join(r.stderr.split())
    assert not (tmp_path / "x").exists()
    r = run_cli(
        "profile", "--offline", "--extend", shared_data / H200, "--model", "llama-3.1-8b",
        "--max-context", "32768", "--out", tmp_path / "x",
    )  # fmt: skip
    assert r.exit_code == 2 and "--model" in r.stderr
