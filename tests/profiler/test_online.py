"""``profile --online --endpoint`` against the streaming stub: what it measures matches the stub's
latency model, the files match ``--offline``'s layout, and every failure is one line + exit code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dynamo_plan.adapters.profile_files import load_profile
from dynamo_plan.profiler.loadgen import RequestRecord
from dynamo_plan.profiler.online import (
    DecodePoint,
    concurrency_warnings,
    discover_max_kv_tokens,
    experienced_concurrency,
)
from tests.conftest import run_cli
from tests.k8s_standin import StandIn
from tests.profiler.openai_stub import StubConfig, running_stub
from tests.profiler.virtual_stub import URL as VIRTUAL_URL
from tests.profiler.virtual_stub import Served, VirtualStub, virtual_endpoint
from tests.servers import free_port

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_KV = 100_000
OUTLIER_S = 0.03  # the first request of every load run waits this much longer for its 1st token


def _ttft_s(isl: int) -> float:
    return 0.02 + isl * 4e-6


def _itl_s(active: int, ctx: int) -> float:
    return 0.008 + 0.001 * active


STUB = StubConfig(ttft_s=_ttft_s, itl_s=_itl_s, max_kv_tokens=MAX_KV)
SMALL = [
    "--isl", "1000", "--osl", "30", "--max-isl", "3000", "--prefill-points", "3",
    "--prefill-requests", "3", "--decode-rows", "1", "--decode-points", "3",
    "--max-concurrency", "8", "-o", "json",
]  # fmt: skip


def _online(url: str, out: Path, *extra: str) -> Any:
    return run_cli("profile", "--online", "--endpoint", url, "--out", out, *SMALL, *extra)


@pytest.fixture(scope="module")
def virtual_stub() -> VirtualStub:
    """The stub the ``measured`` run profiled, with what it served (tests/profiler/virtual_stub.py:
    on a virtual clock the client sees each token the instant the stub makes it, so what the
    profiler measures must equal what the stub did exactly, however loaded the machine)."""
    return VirtualStub(STUB, extra_ttft_s=lambda index, osl: OUTLIER_S if index == 0 else 0.0)


@pytest.fixture(scope="module")
def measured(
    tmp_path_factory: pytest.TempPathFactory, virtual_stub: VirtualStub
) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("online") / "prof"
    with virtual_endpoint(virtual_stub):
        result = _online(VIRTUAL_URL, out, "--ttft", "100", "--itl", "20")
    assert result.exit_code == 0, result.stderr
    return out, result.json()


def _decoding_at_once(served: list[Served]) -> float:
    """Mean over requests of the time-mean number of requests decoding (first → last token)
    during each one's own decode, itself included: the concurrency they experienced."""
    spans = [(s.first, s.last) for s in served if s.first is not None and s.last is not None]
    return float(
        np.mean(
            [sum(max(0.0, min(e, e2) - max(s, s2)) for s2, e2 in spans) / (e - s) for s, e in spans]
        )
    )


def test_prefill_matches_the_server(measured: tuple[Path, dict], virtual_stub: VirtualStub) -> None:
    _, doc = measured
    isls = [p["isl"] for p in doc["prefill"]]
    assert isls == [100, 1000, 1550, 3000]  # 3 points from 100 up to --max-isl, + the SLA's ISL
    runs = [run for run in virtual_stub.runs() if run[0].osl == 1]
    assert [[(s.isl, s.osl) for s in run] for run in runs] == [[(isl, 1)] * 3 for isl in isls]
    for p, run in zip(doc["prefill"], runs, strict=True):
        want = _ttft_s(p["isl"]) * 1000
        # the stub made the first request of the point an outlier: the median is not moved
        served = [s.ttft_ms for s in run]
        assert served == pytest.approx([want + OUTLIER_S * 1000, want, want], rel=1e-9)
        assert p["ttft_ms"] == pytest.approx(want, rel=1e-9)  # the client's median, exactly
        assert p["thpt_per_gpu"] == pytest.approx(p["isl"] / p["ttft_ms"] * 1000)


def test_decode_matches_the_server(measured: tuple[Path, dict], virtual_stub: VirtualStub) -> None:
    _, doc = measured
    pts = doc["decode"]
    # one grid row (ISL 100) + the SLA's ISL; contexts are ISL + OSL/2; 1..8 clients
    assert [(p["context"], p["clients"]) for p in pts] == [
        (ctx, n) for ctx in (115, 1015) for n in (1, 3, 8)
    ]
    runs = [run for run in virtual_stub.runs() if run[0].osl > 1]
    rounds = 2  # requests per point: rounds × clients
    assert [[(s.isl, s.osl) for s in r] for r in runs] == [
        [(p["isl"], 30)] * rounds * p["clients"] for p in pts
    ]
    for p, run in zip(pts, runs, strict=True):
        # exactly what the stub did: its mean ITL over the point's requests, and the number of
        # requests it had decoding at once during each one's decode (the outlier's late start
        # keeps it below the clients from 3 clients on)
        assert p["itl_ms"] == pytest.approx(np.mean([s.itl_ms for s in run]), rel=1e-9)
        assert p["concurrency"] == pytest.approx(_decoding_at_once(run), rel=1e-9)
        assert 0.8 * p["clients"] <= p["concurrency"] <= p["clients"]
        assert (p["concurrency"] < p["clients"]) == (p["clients"] > 1)
        assert p["kv_usage"] == pytest.approx(p["concurrency"] * p["context"] / MAX_KV)
        # the stub's ITL at the concurrency the requests saw
        assert p["itl_ms"] == pytest.approx(_itl_s(p["concurrency"], 0) * 1000, rel=0.15)
        assert p["thpt_per_gpu"] == pytest.approx(p["concurrency"] / p["itl_ms"] * 1000)
    assert doc["max_kv_tokens"] == MAX_KV


def test_writes_the_offline_layout(measured: tuple[Path, dict]) -> None:
    out, doc = measured
    prof = load_profile(out)
    assert prof.max_kv_tokens == MAX_KV
    assert np.allclose(prof.prefill.ttft_ms, [p["ttft_ms"] for p in doc["prefill"]])
    assert np.allclose(sorted(prof.decode.itl_ms), sorted(p["itl_ms"] for p in doc["decode"]))
    meta = json.loads((out / "profile.json").read_text())
    assert meta["obtained_by"]["method"] == "online-endpoint"
    assert meta["parallelism"]["decode"]["tp"] == 1 and meta["model"] == "stub-model"
    assert meta["sla"] == {"isl": 1000, "osl": 30, "ttft": 100.0, "itl": 20.0}
    raw = json.loads((out / "decode_raw_data.json").read_text())
    assert raw["max_kv_tokens"] == MAX_KV and len(raw["z_itl"]) == 6
    for name in ("prefill.png", "decode.png", "decode_surface.png"):
        assert (out / name).read_bytes().startswith(PNG_MAGIC)


def test_one_role_and_tp(tmp_path: Path) -> None:
    out = tmp_path / "pre"
    with running_stub(STUB) as stub:
        result = _online(stub.url, out, "--role", "prefill", "--tp", "2", "--no-plots")
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert doc["decode"] == [] and len(doc["prefill"]) == 4
    p = doc["prefill"][0]
    assert p["thpt_per_gpu"] == pytest.approx(p["isl"] / p["ttft_ms"] * 1000 / 2)
    assert (out / "prefill_raw_data.json").is_file()
    assert not (out / "decode_raw_data.json").exists() and not (out / "prefill.png").exists()


def test_result_configmap(tmp_path: Path, standin: StandIn) -> None:
    kubeconfig = standin.kubeconfig(tmp_path / "kubeconfig")
    with running_stub(STUB) as stub:
        result = _online(
            stub.url, tmp_path / "out", "--role", "decode", "--result-configmap", "res",
            "--result-label", "dynamo-plan/profiling-run=r1", "--kubeconfig", str(kubeconfig),
        )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    cm = standin.get("configmaps", "default", "res")
    assert cm is not None
    assert cm["metadata"]["labels"]["dynamo-plan/profiling-run"] == "r1"
    decode = json.loads(cm["data"]["decode_raw_data.json"])
    assert decode["max_kv_tokens"] == MAX_KV and "prefill_raw_data.json" not in cm["data"]


def test_decode_needs_the_kv_capacity(tmp_path: Path) -> None:
    with running_stub(StubConfig()) as stub:  # advertises no max_kv_tokens
        result = _online(stub.url, tmp_path / "o")
        asked = len(stub.arrivals)
    assert result.exit_code == 2 and asked == 0
    assert "--max-kv-tokens" in result.stderr and len(result.stderr.strip().splitlines()) == 1


DYNAMO_METRICS = """\
# TYPE dynamo_frontend_model_total_kv_blocks gauge
dynamo_frontend_model_total_kv_blocks{model="other"} 5
dynamo_frontend_model_total_kv_blocks{model="stub-model"} 1000
# TYPE dynamo_frontend_model_kv_cache_block_size gauge
dynamo_frontend_model_kv_cache_block_size{model="stub-model"} 16
"""
VLLM_METRICS = """\
# TYPE vllm:cache_config_info gauge
vllm:cache_config_info{block_size="32",num_gpu_blocks="250"} 1.0
"""


@pytest.mark.parametrize(("metrics", "want"), [(DYNAMO_METRICS, 16_000), (VLLM_METRICS, 8_000)])
def test_kv_capacity_from_metrics(metrics: str, want: int) -> None:
    with running_stub(StubConfig(metrics=metrics)) as stub:
        assert discover_max_kv_tokens(stub.url, "stub-model") == want
    with running_stub(StubConfig(metrics="not prometheus {{")) as stub:
        assert discover_max_kv_tokens(stub.url, "stub-model") is None


def test_unreachable_endpoint_exits_3(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = _online(url, tmp_path / "o", "--max-kv-tokens", "1000")
    assert result.exit_code == 3 and "cannot reach" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "url", ["not a url", "localhost:8000", "ftp://host", "http://", "http://host:99999"]
)
def test_endpoint_that_is_not_a_url_exits_1(tmp_path: Path, url: str) -> None:
    """Issue 11: "not a url" exited 3 (as if an endpoint had failed): it is bad input."""
    result = _online(url, tmp_path / "o", "--max-kv-tokens", "1000")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("error: --endpoint must be an http(s)://host[:port] URL")
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_tp_above_one_nvlink_domain_exits_1(tmp_path: Path) -> None:
    result = _online("http://127.0.0.1:1", tmp_path / "o", "--tp", "128")
    assert result.exit_code == 1 and "--tp must be <= 72" in result.stderr


def test_a_run_that_reaches_its_load_has_no_warnings(measured: tuple[Path, dict]) -> None:
    out, doc = measured
    assert doc["warnings"] == []
    assert json.loads((out / "profile.json").read_text())["obtained_by"]["warnings"] == []


def _point(isl: int, clients: int, concurrency: float) -> DecodePoint:
    return DecodePoint(isl, isl + 10, clients, concurrency, 0.1, 10.0, 1.0, clients, 0)


def test_concurrency_warnings_name_the_points_below_target() -> None:
    reached = [_point(100, 1, 1.0), _point(100, 8, 7.0), _point(900, 8, 6.5)]
    assert concurrency_warnings(reached) == []  # 7/8 and 6.5/8 are >= 80 %
    # a middle point short of its target, the row's top point reached: no lower-bound line
    middle = [_point(100, 1, 1.0), _point(100, 16, 9.0), _point(100, 32, 30.0)]
    assert concurrency_warnings(middle) == [
        "decode at ISL 100 with 16 clients: only 9.0 requests decoded at once (56% of the target)"
    ]
    weak = [_point(100, 1, 1.0), _point(100, 256, 13.9), _point(900, 256, 250.0)]
    lines = concurrency_warnings(weak)
    assert lines[0] == (
        "decode at ISL 100 with 256 clients: only 13.9 requests decoded at once (5% of the target)"
    )
    assert len(lines) == 2 and "decode capacity is a lower bound" in lines[1]
    assert "(ISL 100: 13.9 of 256)" in lines[1]
    assert "--max-concurrency 13" in lines[1] and "stronger client machine" in lines[1]


def test_flags_that_do_not_go_together(tmp_path: Path) -> None:
    r = run_cli("profile", "--online", "--offline", "--endpoint", "http://x", "--out", tmp_path)
    assert r.exit_code == 2 and "cannot be combined" in r.stderr
    r = run_cli("profile", "--online", "--out", tmp_path, "--isl", "10", "--osl", "10")
    assert r.exit_code == 2 and "--endpoint" in r.stderr
    r = run_cli("profile", "--offline", "--endpoint", "http://x", "--out", tmp_path)
    assert r.exit_code == 2 and "need --online" in r.stderr


def _rec(i: int, start: float, end: float, tokens: int = 11) -> RequestRecord:
    itl = (end - start) * 1000 / (tokens - 1)
    return RequestRecord(i, 0, 0, end, 0, 10, tokens, ttft_ms=start * 1000, itl_ms=itl,
                         e2e_ms=end * 1000, output_tokens=tokens)  # fmt: skip


def test_experienced_concurrency() -> None:
    assert experienced_concurrency([_rec(i, 1.0, 2.0) for i in range(3)]) == pytest.approx(3)
    assert experienced_concurrency([_rec(0, 0.0, 1.0), _rec(1, 2.0, 3.0)]) == pytest.approx(1)
    # half overlap: each sees itself plus the other half of the time
    half = [_rec(0, 0.0, 2.0), _rec(1, 1.0, 3.0)]
    assert experienced_concurrency(half) == pytest.approx(1.5)
    assert experienced_concurrency([]) == 0.0
