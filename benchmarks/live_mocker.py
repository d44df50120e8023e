"""Benchmark of the live mocker: sustained requests/s with TTFT/ITL within 10 % of the model.

The mocker (``dynamo-plan mocker serve``, shared H200 profile, 8 prefill + 8 decode engines,
speedup 1) runs as a subprocess; ``--clients`` load-generator processes (default 2) drive it
with httpx (async, streaming ``/v1/completions``) at Poisson arrivals of the offered rate for
``--duration`` seconds, ISL uniform in [500, 3000] and OSL uniform in [50, 150]
(``input_length`` / ``max_tokens``), after opening about as many keep-alive connections as the
run needs (TCP set-up is not counted).

Reference: the discrete-event simulator (:func:`dynamo_plan.sim.engine.simulate`, the same engine
model) replaying the *actual* send times, ISLs and OSLs with the same static replicas, so it
includes the queueing and batching that the load causes and the error is only what the live
mocker adds. Columns: ``achieved`` completed requests / ``--duration`` (the arrival window); ``ttft ms`` / ``itl ms``
measured on the client (HTTP and the httpx client's own cost included: several ms on a busy
2-core machine); ``srv`` the mocker's own means (its /metrics ``_sum``/``_count`` over the run,
what a planner reads); ``srv cpu`` / ``cli cpu`` CPU share of the mocker / all load generators
(near 100 % per process = that event loop is saturated); ``lag95ms`` the 95th percentile of how
late the clients sent. A rate passes when every request completed, ``lag95ms`` <= 20 ms (the
clients kept to the schedule) and the mocker's mean TTFT and ITL are within 10 % of the reference.

    .venv/bin/python benchmarks/live_mocker.py [--data ../shared/data] [--rates 20,40,80,120,160]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from dynamo_plan.adapters.profile_files import load_profile
from dynamo_plan.core.sla import SLA
from dynamo_plan.sim import RequestArrays, SimConfig
from dynamo_plan.sim.engine import simulate
from dynamo_plan.sim.policies import StaticPolicy

PROFILE = Path("profiles") / "h200_llama3.1-8b-fp8_tp1p_tp1d"
REPLICAS = (8, 8)
MODEL = "bench"


@dataclass(frozen=True)
class Sample:
    lag: float  # seconds the send started after its scheduled arrival
    sent: float
    isl: int
    osl: int
    ttft: float
    itl: float
    done: bool
    end: float  # last token, seconds after the run's start


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_mocker(profile: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable, "-m", "dynamo_plan", "mocker", "serve", "--profile", str(profile),
        "--port", str(port), "--model", MODEL,
        "--prefill-replicas", str(REPLICAS[0]), "--decode-replicas", str(REPLICAS[1]),
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"mocker did not start:\n{log.read_text()[-2000:]}")


async def one(client: httpx.AsyncClient, isl: int, osl: int, t0: float, due: float) -> Sample:
    body = {
        "model": MODEL, "prompt": "x", "input_length": isl, "max_tokens": osl, "stream": True,
    }  # fmt: skip
    sent = time.monotonic()
    first = last = float("nan")
    made = 0
    tail = b""
    async with client.stream("POST", "/v1/completions", json=body) as r:
        # count SSE token events in the raw bytes: far cheaper than parsing every line, so
        # the load generator keeps up (a marker split across reads is caught via ``tail``)
        async for raw in r.aiter_raw():
            buf = tail + raw
            k = buf.count(b"data: {")
            tail = buf[-6:]
            if k:
                last = time.monotonic()
                if made == 0:
                    first = last
                made += k
    done = made == osl
    ttft = first - sent
    itl = (last - first) / (osl - 1) if done and osl > 1 else float("nan")
    return Sample(sent - due, sent - t0, isl, osl, ttft, itl, done, last - t0)


async def drive(url: str, rate: float, duration: float, seed: int, start: float) -> list[Sample]:
    """Poisson arrivals at ``rate`` from ``time.monotonic() == start`` (after a warm-up)."""
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / rate, int(rate * duration * 1.5) + 10))
    arrivals = arrivals[arrivals < duration]
    n = arrivals.size
    isl = rng.integers(500, 3001, n)
    osl = rng.integers(50, 151, n)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        # open about as many keep-alive connections as the run will use (rate x ~0.6 s)
        warm = {"model": MODEL, "prompt": "x", "input_length": 1, "max_tokens": 1}
        await asyncio.gather(
            *(client.post("/v1/completions", json=warm) for _ in range(int(rate * 0.6) + 2))
        )
        tasks = []
        for a, i, o in zip(arrivals, isl, osl, strict=True):
            delay = start + a - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(client, int(i), int(o), start, start + a)))
        return list(await asyncio.gather(*tasks))


def client_worker(
    url: str, rate: float, duration: float, seed: int, start: float
) -> tuple[list[Sample], float]:
    """One load-generator process: its samples and the CPU seconds it used."""
    cpu0 = time.process_time()
    samples = asyncio.run(drive(url, rate, duration, seed, start))
    return samples, time.process_time() - cpu0


def server_sums(url: str) -> tuple[float, float, float, float]:
    """(TTFT _sum, _count, ITL _sum, _count) of the mocker's /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    got: dict[str, float] = {}
    for fam in text_string_to_metric_families(httpx.get(f"{url}/metrics").text):
        for smp in fam.samples:
            if smp.name.endswith(("_sum", "_count")):
                got[smp.name] = got.get(smp.name, 0.0) + smp.value
    t, i = (
        "dynamo_frontend_time_to_first_token_seconds",
        "dynamo_frontend_inter_token_latency_seconds",
    )
    return got[f"{t}_sum"], got[f"{t}_count"], got[f"{i}_sum"], got[f"{i}_count"]


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reference(samples: list[Sample], profile_dir: Path) -> tuple[float, float]:
    """Mean TTFT and ITL (s) the simulator gives for the same sends and replicas."""
    order = np.argsort([s.sent for s in samples], kind="stable")
    sent = np.array([samples[i].sent for i in order])
    reqs = RequestArrays(
        sent - sent[0],
        np.array([samples[i].isl for i in order]),
        np.array([samples[i].osl for i in order]),
    )
    cfg = SimConfig(startup_s=0.0, interval_s=3600.0)
    res = simulate(
        reqs,
        load_profile(profile_dir),
        SLA(1000, 100),
        cfg,
        StaticPolicy(*REPLICAS),
        per_request=True,
    )
    pr = res.per_request
    return float(pr["ttft_ms"].mean()) / 1000, float(pr["itl_ms"].mean()) / 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    ap.add_argument("--rates", default="20,40,80,120,160")
    ap.add_argument("--duration", type=float, default=12.0)
    ap.add_argument("--clients", type=int, default=2, help="load-generator processes")
    args = ap.parse_args()
    profile_dir = args.data / PROFILE
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc = start_mocker(profile_dir, port, Path(tmp) / "mocker.log")
        try:
            print(
                f"mocker {REPLICAS[0]}P+{REPLICAS[1]}D, speedup 1, {os.cpu_count()} CPUs, "
                f"{args.clients} load-generator processes, {args.duration:g} s per rate"
            )
            head = (
                f"{'offered':>8} {'achieved':>9} {'done':>6} {'ttft ms':>8} {'ref':>7} "
                f"{'err':>7} {'itl ms':>7} {'ref':>6} {'err':>7} {'srv ttft':>8} {'err':>7} "
                f"{'srv itl':>7} {'err':>7} {'srv cpu':>7} {'cli cpu':>7} {'lag95ms':>7}  pass"
            )
            print(head)
            best, failed = 0.0, False
            for k, rate in enumerate(float(r) for r in args.rates.split(",")):
                url = f"http://127.0.0.1:{port}"
                n = args.clients
                start = time.monotonic() + 1.5  # after every client's warm-up
                with ProcessPoolExecutor(n, mp_context=mp.get_context("fork")) as pool:
                    futs = [
                        pool.submit(client_worker, url, rate / n, args.duration, 100 * k + j, start)
                        for j in range(n)
                    ]
                    time.sleep(max(0.0, start - 0.1 - time.monotonic()))
                    before = server_sums(url)
                    cpu0, wall0 = cpu_s(proc.pid), time.monotonic()
                    results = [f.result() for f in futs]
                wall = time.monotonic() - wall0
                srv_cpu = (cpu_s(proc.pid) - cpu0) / wall
                cli_cpu = sum(c for _, c in results) / wall
                samples = [smp for res, _ in results for smp in res]
                after = server_sums(url)
                srv_ttft = (after[0] - before[0]) / max(after[1] - before[1], 1)
                srv_itl = (after[2] - before[2]) / max(after[3] - before[3], 1)
                done = [s for s in samples if s.done]
                achieved = len(done) / args.duration  # over the arrival window
                lag95 = float(np.percentile([s.lag for s in samples], 95))
                ttft = float(np.mean([s.ttft for s in done]))
                itl = float(np.nanmean([s.itl for s in done]))
                ref_ttft, ref_itl = reference(samples, profile_dir)
                e1, e2 = ttft / ref_ttft - 1, itl / ref_itl - 1
                s1, s2 = srv_ttft / ref_ttft - 1, srv_itl / ref_itl - 1
                ok = (
                    len(done) == len(samples)
                    and lag95 <= 0.020
                    and abs(s1) <= 0.1
                    and abs(s2) <= 0.1
                )
                failed = failed or not ok
                best = achieved if ok and not failed else best  # every lower rate passed too
                print(
                    f"{rate:8.1f} {achieved:9.1f} {len(done):6d} {ttft * 1e3:8.1f} "
                    f"{ref_ttft * 1e3:7.1f} {e1:+7.1%} {itl * 1e3:7.2f} {ref_itl * 1e3:6.2f} "
                    f"{e2:+7.1%} {srv_ttft * 1e3:8.1f} {s1:+7.1%} {srv_itl * 1e3:7.2f} "
                    f"{s2:+7.1%} {srv_cpu:7.0%} {cli_cpu:7.0%} {lag95 * 1e3:7.1f}  {'yes' if ok else 'NO'}"
                )
            print(
                f"sustained: {best:.1f} requests/s with the mocker's TTFT and ITL within 10 % of "
                f"the model (client-side columns add the HTTP client's own overhead)"
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)


if __name__ == "__main__":
    main()
