"""``profile --online --endpoint`` against the mocker serving a known profile, and the KV
capacity the mocker advertises is enough for a decode run.

The accuracy test profiles the mocker (its own process, over HTTP) serving the shared H200
profile slowed ×4 (a slower GPU: every latency ×4, every throughput ÷4), and compares every
load run of the profiler with the mocker's own /metrics for the same requests:

* prefill — what was asked is exact (requests, ISL, OSL 1) and the profile's TTFT is the median
  of the client's; each run's TTFTs are bracketed by causality, not by a tolerance:
  profile TTFT ≤ the mocker's (a timer never fires early) ≤ the client's (a token is seen after
  it is made) ≤ the run's wall time. The space between is the machine's — HTTP on loopback and
  wake-up lag, 10–25 ms a request on a loaded 2-core machine, a quarter of the shortest TTFT —
  so no tolerance on it could both hold there and mean something; the mocker's timing itself is
  checked exactly on a virtual clock (tests/sim/mocker/test_cluster.py);
* decode — ITL is a mean gap over 47 tokens, where a lag counts once per request: the client's
  matches the mocker's for the same requests and the served profile at the measured point
  within 15 %.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dynamo_plan.adapters.profile_files import load_profile, save_profile
from dynamo_plan.core.profile import DecodeSurface, PerformanceProfile, PrefillCurve
from dynamo_plan.profiler.loadgen import LoadReport, run_concurrency
from dynamo_plan.profiler.online import OnlineRequest, run_online
from dynamo_plan.sim.mocker.frontend_metrics import KV_BLOCK_SIZE
from dynamo_plan.sim.mocker.server import MockerServer
from tests.conftest import run_cli
from tests.servers import free_port, start_process
from tests.sim.mocker.conftest import ThreadedMocker

PROFILE = "profiles/h200_llama3.1-8b-fp8_tp1p_tp1d"
SLOWDOWN = 4.0


def slowed(profile: PerformanceProfile, k: float) -> PerformanceProfile:
    """``profile`` on a GPU ``k`` times slower: latencies ×k, throughputs ÷k."""
    p, d = profile.prefill, profile.decode
    return dataclasses.replace(
        profile,
        prefill=PrefillCurve(p.isl, p.ttft_ms * k, p.thpt_per_gpu / k),
        decode=DecodeSurface(d.kv_usage, d.context, d.itl_ms * k, d.thpt_per_gpu / k),
    )


#: /metrics series read around each load run (the mocker's model seconds; speedup 1 here)
SERIES = (
    "dynamo_frontend_time_to_first_token_seconds_count",
    "dynamo_frontend_time_to_first_token_seconds_sum",
    "dynamo_frontend_input_sequence_tokens_sum",
    "dynamo_frontend_output_sequence_tokens_sum",
    "dynamo_frontend_inter_token_latency_seconds_count",
    "dynamo_frontend_inter_token_latency_seconds_sum",
)


def _series(url: str) -> dict[str, float]:
    """Each of :data:`SERIES` on the mocker's /metrics, summed over labels."""
    out = dict.fromkeys(SERIES, 0.0)
    text = httpx.get(url + "/metrics", timeout=10.0).text
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name in out:
                out[s.name] += s.value
    return out


@dataclasses.dataclass(frozen=True)
class Run:
    """One load run of the profiler: the client's report, what /metrics counted meanwhile, and
    the run's wall time (s) seen from outside ``run_concurrency``."""

    isl: int
    osl: int
    clients: int
    report: LoadReport
    served: dict[str, float]
    wall_s: float


class RecordingRun:
    """``run_online``'s ``run``: :func:`run_concurrency`, with the mocker's /metrics read around
    it (nothing else sends completions meanwhile, so the difference is exactly this run's)."""

    def __init__(self, metrics_url: str) -> None:
        self.metrics_url = metrics_url
        self.runs: list[Run] = []

    def __call__(self, url: str, model: str, isl: int, osl: int, n: int, **kw: Any) -> LoadReport:
        before = _series(self.metrics_url)
        t0 = time.perf_counter()
        rep = run_concurrency(url, model, isl, osl, n, **kw)
        wall = time.perf_counter() - t0
        after = _series(self.metrics_url)
        served = {k.removeprefix("dynamo_frontend_"): after[k] - before[k] for k in SERIES}
        self.runs.append(Run(isl, osl, n, rep, served, wall))
        return rep


def test_measures_the_served_profile(tmp_path: Path, shared_data: Path) -> None:
    served = slowed(load_profile(shared_data / PROFILE), SLOWDOWN)
    save_profile(served, tmp_path / "served")
    port = free_port()
    argv = [
        ".venv/bin/dynamo-plan", "mocker", "serve", "--profile", str(tmp_path / "served"),
        "--port", str(port), "--prefill-replicas", "2",  # prefill keeps 48 decoders fed
    ]  # fmt: skip
    mocker = start_process("mocker", argv, port, tmp_path, max_lifetime_s=120)
    record = RecordingRun(mocker.url)
    req = OnlineRequest(
        endpoint=mocker.url, out=tmp_path / "measured", isl=1000, osl=48, max_isl=6000,
        prefill_points=3, prefill_requests=3, decode_rows=1, decode_points=3,
        max_concurrency=48, max_kv_tokens=served.max_kv_tokens, plots=False,
    )  # fmt: skip
    try:
        outcome = run_online(req, run=record)
    finally:
        mocker.stop()
    measured = load_profile(tmp_path / "measured")
    assert measured.max_kv_tokens == served.max_kv_tokens
    meta = json.loads((tmp_path / "measured" / "profile.json").read_text())
    assert meta["obtained_by"]["method"] == "online-endpoint"
    for run in record.runs:  # the mocker served exactly what the profiler asked for
        n = run.report.count
        assert run.report.ok == n and run.served["time_to_first_token_seconds_count"] == n
        assert run.served["input_sequence_tokens_sum"] == n * run.isl
        assert run.served["output_sequence_tokens_sum"] == n * run.osl

    prefill = [r for r in record.runs if r.osl == 1]
    assert [r.isl for r in prefill] == list(measured.prefill.isl) and len(prefill) == 4
    assert measured.prefill.isl.max() == 6000
    for run, ttft_ms in zip(prefill, measured.prefill.ttft_ms, strict=True):
        rep, n = run.report, run.report.count
        assert run.clients == 1 and n == req.prefill_requests
        assert ttft_ms == pytest.approx(rep.ttft_ms.p50, rel=1e-12)  # the client's median
        want_s = n * served.expected_ttft(run.isl).value / 1000.0
        mocker_s = run.served["time_to_first_token_seconds_sum"]
        assert rep.ttft_ms.mean is not None
        client_s = n * rep.ttft_ms.mean / 1000.0
        timings = (run.isl, want_s, mocker_s, client_s, run.wall_s)
        # (asyncio may fire a timer up to its clock's resolution, 1 ns, early)
        assert want_s - 1e-6 <= mocker_s <= client_s <= run.wall_s, timings

    decode = {(r.isl, r.clients): r for r in record.runs if r.osl > 1}
    pts = outcome.decode
    assert len(pts) == 6 and len(decode) == 6
    for p in pts:
        run = decode[p.isl, p.clients]
        assert p.itl_ms == run.report.itl_ms.mean  # the client's mean over requests
        mocker_ms = (
            run.served["inter_token_latency_seconds_sum"]
            / run.served["inter_token_latency_seconds_count"]
            * 1000.0
        )
        want = served.decode.itl(p.kv_usage, p.context).value
        assert p.itl_ms == pytest.approx(mocker_ms, rel=0.15), (p, mocker_ms)
        assert p.itl_ms == pytest.approx(want, rel=0.15), (p, want)
    itl = np.array([p.itl_ms for p in pts])
    # the grid reaches where ITL depends on the load, not only the idle floor
    # (48 requests at context ~1,000 decode ~1.4× slower than one: the surface blends rows at
    # an equal batch, see DecodeSurface)
    assert itl.max() > 1.3 * itl.min()


def test_decode_without_max_kv_tokens_uses_what_the_mocker_advertises(
    tmp_path: Path, shared_data: Path
) -> None:
    served = load_profile(shared_data / PROFILE)
    with ThreadedMocker(MockerServer(served, model="m")) as mocker:
        result = run_cli(
            "profile", "--online", "--endpoint", mocker.url, "--role", "decode", "--isl", "500",
            "--osl", "8", "--out", tmp_path / "dec", "--decode-rows", "1", "--decode-points", "2",
            "--decode-rounds", "1", "--max-concurrency", "4", "--no-plots", "-o", "json",
        )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    whole_blocks = served.max_kv_tokens // KV_BLOCK_SIZE * KV_BLOCK_SIZE
    assert doc["max_kv_tokens"] == whole_blocks and doc["prefill"] == []
    assert [p["concurrency"] for p in doc["decode"]] and all(
        p["errors"] == 0 for p in doc["decode"]
    )
    written = json.loads((tmp_path / "dec" / "decode_raw_data.json").read_text())
    assert written["max_kv_tokens"] == whole_blocks


def _decode_run(endpoint: str, out: Path, isl: int, clients: int) -> OnlineRequest:
    return OnlineRequest(
        endpoint=endpoint, out=out, isl=isl, osl=8, role="decode", decode_rows=1,
        decode_points=2, decode_rounds=1, max_concurrency=clients, plots=False,
    )  # fmt: skip


def test_a_client_that_cannot_reach_the_load_is_warned_and_recorded(
    tmp_path: Path, shared_data: Path
) -> None:
    """Issue 11 (a weak client machine: 13.9 of 256 clients decoding, profile 2.8× short): the
    load generator is capped at 2 requests in flight, so 16 clients cannot be reached."""
    served = load_profile(shared_data / PROFILE)

    def capped(url: str, model: str, isl: int, osl: int, n: int, **kw: Any) -> LoadReport:
        return run_concurrency(url, model, isl, osl, min(n, 2), **kw)

    with ThreadedMocker(MockerServer(served, model="m", decode=2)) as mocker:
        outcome = run_online(_decode_run(mocker.url, tmp_path / "weak", 500, 16), run=capped)
    tops = [p for p in outcome.decode if p.clients == 16]
    assert tops and all(p.concurrency <= 2.05 for p in tops)  # what the client could do
    assert len(outcome.warnings) == len(tops) + 1
    assert all("with 16 clients: only" in w for w in outcome.warnings[:-1])
    assert "decode capacity is a lower bound" in outcome.warnings[-1]
    assert re.search(r"--max-concurrency [12]\)", outcome.warnings[-1])  # what was reached
    meta = json.loads((tmp_path / "weak" / "profile.json").read_text())
    assert meta["obtained_by"]["warnings"] == list(outcome.warnings)


def test_cli_warns_on_stderr_when_the_target_concurrency_is_not_reached(
    tmp_path: Path, shared_data: Path
) -> None:
    """Through the command: one prefill engine cannot feed 16 decoders 6000-token prompts, so
    the top point decodes far fewer requests at once than asked; stderr, the JSON result and
    profile.json say so."""
    served = load_profile(shared_data / PROFILE)
    with ThreadedMocker(MockerServer(served, model="m")) as mocker:
        result = run_cli(
            "profile", "--online", "--endpoint", mocker.url, "--role", "decode", "--isl", "6000",
            "--osl", "8", "--out", tmp_path / "dec", "--decode-rows", "1", "--decode-points", "2",
            "--decode-rounds", "1", "--max-concurrency", "16", "--no-plots", "-o", "json",
        )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    short = [p for p in doc["decode"] if p["concurrency"] < 0.8 * p["clients"]]
    assert any(p["isl"] == 6000 and p["clients"] == 16 for p in short)
    warned = [x for x in result.stderr.splitlines() if x.startswith("warning: ")]
    assert warned == [f"warning: {w}" for w in doc["warnings"]]
    assert len(doc["warnings"]) == len(short) + 1
    assert "decode at ISL 6000 with 16 clients: only" in result.stderr
    assert "the profile's decode capacity is a lower bound" in doc["warnings"][-1]
    meta = json.loads((tmp_path / "dec" / "profile.json").read_text())
    assert meta["obtained_by"]["warnings"] == doc["warnings"]
