"""``profile --online --endpoint`` against the mocker serving the shared H200 profile: the
measured profile matches the served one within 15% (TTFT over ISL, ITL at every decode point
measured)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dynamo_plan.adapters.profile_files import load_profile
from tests.conftest import run_cli
from tests.servers import free_port, start_process

PROFILE = "profiles/h200_llama3.1-8b-fp8_tp1p_tp1d"


def test_measures_the_served_profile(tmp_path: Path, shared_data: Path) -> None:
    served = load_profile(shared_data / PROFILE)
    port = free_port()
    argv = [
        ".venv/bin/dynamo-plan", "mocker", "serve", "--profile", str(shared_data / PROFILE),
        "--port", str(port), "--prefill-replicas", "2",  # prefill keeps 48 decoders fed
    ]  # fmt: skip
    mocker = start_process("mocker", argv, port, tmp_path, max_lifetime_s=120)
    try:
        result = run_cli(
            "profile", "--online", "--endpoint", mocker.url, "--isl", "1000", "--osl", "128",
            "--out", tmp_path / "measured", "--max-isl", "6000", "--prefill-points", "3",
            "--prefill-requests", "3", "--decode-rows", "1", "--decode-points", "3",
            "--max-concurrency", "48", "--max-kv-tokens", str(served.max_kv_tokens),
            "--no-plots", "-o", "json",
        )  # fmt: skip
    finally:
        mocker.stop()
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    measured = load_profile(tmp_path / "measured")
    assert measured.max_kv_tokens == served.max_kv_tokens
    meta = json.loads((tmp_path / "measured" / "profile.json").read_text())
    assert meta["obtained_by"]["method"] == "online-endpoint"

    isl, ttft = measured.prefill.isl, measured.prefill.ttft_ms
    want_ttft = np.array([served.expected_ttft(x).value for x in isl])
    assert len(isl) == 4 and isl.max() == 6000
    assert np.all(np.abs(ttft / want_ttft - 1) < 0.15), list(zip(isl, ttft, want_ttft, strict=True))

    pts = doc["decode"]
    itl = np.array([p["itl_ms"] for p in pts])
    want_itl = np.array([served.decode.itl(p["kv_usage"], p["context"]).value for p in pts])
    assert len(pts) == 6
    assert np.all(np.abs(itl / want_itl - 1) < 0.15), list(zip(itl, want_itl, strict=True))
    # the grid reaches where ITL depends on the load, not only the idle floor
    assert itl.max() > 1.5 * itl.min()
