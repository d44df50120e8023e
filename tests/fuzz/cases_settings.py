"""Case table, settings and servers (tests/fuzz/harness.py).

``settings``: flags and setting files that cannot work. A long-running command (``plan run``,
``mocker serve``) must refuse them before its first tick or first request (exit 1), not start and
log an error every tick; a value out of range is refused (1, or 2 where Click's own range check
answers); ``plan decide --rps 1e15`` must answer within seconds (the hang check).

``servers``: endpoints that accept and never answer, answer bytes that are not HTTP, close the
connection at once, answer HTTP 500 or JSON that does not parse. Every client command must give up
within its timeout with exit 3 (an outside service failed) — never hang, never a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.fuzz.harness import Case, Ctx, Run, within, write

# --- settings ------------------------------------------------------------------------------------


def _plan_run(
    ctx: Ctx, *extra: str, state: str = "state.json", prom: str | None = None
) -> list[str]:
    """``plan run`` with the virtual connector against a Prometheus with no series (or ``prom``):
    two 1-second ticks, no /metrics port."""
    return [
        "plan", "run", "--profile", str(ctx.world.profile), "--model", "llama-3.1-8b",
        "--connector", "virtual", "--state", state,
        "--prometheus-url", prom or ctx.world.bad_server("prom_empty"),
        "--interval", "1", "--startup-s", "0", "--max-ticks", "1", "--metrics-port", "0", *extra,
    ]  # fmt: skip


def _mocker(ctx: Ctx, *extra: str) -> list[str]:
    return ["mocker", "serve", "--profile", str(ctx.world.profile), "--port", "0", *extra]


def _decide(ctx: Ctx, **flags: str) -> list[str]:
    values = {"rps": "10", "isl": "1000", "osl": "100", "ttft": "300", "itl": "20", **flags}
    args = ["plan", "decide", "--profile", str(ctx.world.profile), "-o", "json"]
    for name, value in values.items():
        args += [f"--{name.replace('_', '-')}", value]
    return args


def _estimate(*extra: str) -> Callable[[Ctx], list[str]]:
    return lambda ctx: ["estimate", "-m", "llama-3.1-8b", "-o", "json", *extra]


def _sim(ctx: Ctx, *extra: str) -> list[str]:
    return [
        "simulate", str(ctx.world.trace), "--profile", str(ctx.world.profile), "--ttft", "3000",
        "--itl", "100", "--policy", "static", "-o", "json", *extra,
    ]  # fmt: skip


def _no_fp8_claim(ctx: Ctx, run: Run) -> str | None:
    """A100 has no FP8: an answer (exit 0) must not present fp8 numbers."""
    if run.exit_code != 0:
        return None
    if "fp8" in run.stdout.lower():
        return "A100 answer still labelled fp8"
    return None


def _clamped_to(budget: int) -> Callable[[Ctx, Run], str | None]:
    """An answer (exit 0) under a GPU budget says it was clamped and stays within it."""

    def check(ctx: Ctx, run: Run) -> str | None:
        if run.exit_code != 0:
            return None
        out = json.loads(run.stdout)
        if not out.get("budget_clamped") or out["gpus"] > budget:
            return (
                f"gpus {out['gpus']}, budget_clamped {out.get('budget_clamped')} (budget {budget})"
            )
        return None

    return check


GARBAGE = bytes(range(256)) * 4
STATE = json.dumps({"decision_id": 1, "num_prefill_workers": 1, "num_decode_workers": 1})


PLAN_RUN_S = 20.0
MOCKER_S = 10.0  # a mocker that starts serving is killed after this long: a hang


def _settings_cases() -> list[Case]:
    s = "settings"
    return [
        # plan run: settings that cannot work fail before the first tick
        Case(s, "control: plan run, 1 tick", lambda c: _plan_run(c), (0,), timeout_s=PLAN_RUN_S),
        Case(s, "plan run --state under a regular file", lambda c: _plan_run(c, state="blocker/state.json"), (1,), setup=write("blocker", "x"), timeout_s=PLAN_RUN_S),
        Case(s, "plan run --state a directory", lambda c: _plan_run(c, state="statedir"), (1,), setup=lambda c: (c / "statedir").mkdir(), timeout_s=PLAN_RUN_S),
        Case(s, "plan run --state binary", lambda c: _plan_run(c, state="bin.json"), (1,), setup=write("bin.json", GARBAGE), timeout_s=PLAN_RUN_S),
        Case(s, "plan run --prometheus-token-file missing", lambda c: _plan_run(c, "--prometheus-token-file", "missing.txt"), (1,), timeout_s=PLAN_RUN_S),
        Case(s, "plan run --prometheus-token-file a directory", lambda c: _plan_run(c, "--prometheus-token-file", "."), (1,), timeout_s=PLAN_RUN_S),
        Case(s, "plan run --prometheus-token-file binary", lambda c: _plan_run(c, "--prometheus-token-file", "tok"), (1,), setup=write("tok", GARBAGE), timeout_s=PLAN_RUN_S),
        Case(s, "plan run --prometheus-ca-bundle garbage", lambda c: _plan_run(c, "--prometheus-ca-bundle", "ca.pem", prom=_https(c)), (1,), setup=write("ca.pem", GARBAGE), timeout_s=PLAN_RUN_S),
        Case(s, "plan run --warmup-trace binary", lambda c: _plan_run(c, "--warmup-trace", "w.jsonl"), (1,), setup=write("w.jsonl", GARBAGE), timeout_s=PLAN_RUN_S),
        Case(s, "plan run --config binary", lambda c: ["plan", "run", "--config", "c.yaml"], (1,), setup=write("c.yaml", GARBAGE), timeout_s=PLAN_RUN_S),
        # mocker serve: refuses before serving
        Case(s, "mocker serve --prefill-replicas 0", lambda c: _mocker(c, "--prefill-replicas", "0"), (1, 2), timeout_s=MOCKER_S),
        Case(s, "mocker serve --decode-replicas -1", lambda c: _mocker(c, "--decode-replicas", "-1"), (1, 2), timeout_s=MOCKER_S),
        Case(s, "mocker serve --virtual-state a directory", lambda c: _mocker(c, "--virtual-state", "vs"), (1,), setup=lambda c: (c / "vs").mkdir(), timeout_s=MOCKER_S),
        Case(s, "mocker serve --virtual-state binary", lambda c: _mocker(c, "--virtual-state", "vs.json"), (1,), setup=write("vs.json", GARBAGE), timeout_s=MOCKER_S),
        Case(s, "mocker serve --speedup 0", lambda c: _mocker(c, "--speedup", "0"), (1, 2), timeout_s=MOCKER_S),
        Case(s, "mocker serve --speedup nan", lambda c: _mocker(c, "--speedup", "nan"), (1, 2), timeout_s=MOCKER_S),
        Case(s, "mocker serve --port 70000", lambda c: _mocker(c, "--port", "70000"), (1, 2), timeout_s=MOCKER_S),
        # estimate
        Case(s, "estimate with no flags", lambda c: ["estimate"], (2,)),
        Case(s, "estimate --tp 1024", _estimate("-s", "h200_sxm", "--isl", "1000", "--tp", "1024"), (1, 2)),
        Case(s, "estimate --tp 0", _estimate("-s", "h200_sxm", "--isl", "1000", "--tp", "0"), (1, 2)),
        Case(s, "estimate --isl 0", _estimate("-s", "h200_sxm", "--isl", "0"), (1, 2)),
        Case(s, "estimate --batch 0 --context 100", _estimate("-s", "h200_sxm", "--batch", "0", "--context", "100"), (1, 2)),
        Case(s, "estimate --system a100_sxm --dtype fp8", _estimate("-s", "a100_sxm", "--dtype", "fp8", "--isl", "1000"), (0, 1), checks=(_no_fp8_claim,)),
        Case(s, "estimate --gpu-spec binary", _estimate("--gpu-spec", "g.yaml", "--isl", "1000"), (1,), setup=write("g.yaml", GARBAGE)),
        Case(s, "estimate --gpu-spec utf-16", _estimate("--gpu-spec", "g.yaml", "--isl", "1000"), (1,), setup=write("g.yaml", "bf16_tflops: 1000\nfp8_tflops: 2000\nhbm_gbps: 4800\nhbm_gib: 141\nnvlink_gbps: 900\n".encode("utf-16"))),
        Case(s, "estimate --model-config binary", lambda c: ["estimate", "--model-config", "cfg.json", "-s", "h200_sxm", "--isl", "1000"], (1,), setup=write("cfg.json", GARBAGE)),
        # plan decide: bounded inputs, O(log n) in the load
        Case(s, "control: plan decide", lambda c: _decide(c), (0,)),
        Case(s, "plan decide --isl 0", lambda c: _decide(c, isl="0"), (1, 2)),
        Case(s, "plan decide --osl 0", lambda c: _decide(c, osl="0"), (1, 2)),
        Case(s, "plan decide --rps -1", lambda c: _decide(c, rps="-1"), (1, 2)),
        Case(s, "plan decide --rps nan", lambda c: _decide(c, rps="nan"), (1, 2)),
        Case(s, "plan decide --rps inf", lambda c: _decide(c, rps="inf"), (1, 2)),
        Case(s, "plan decide --ttft 0", lambda c: _decide(c, ttft="0"), (1, 2)),
        Case(s, "plan decide --interval 0", lambda c: _decide(c, interval="0"), (1, 2)),
        Case(s, "plan decide --rps 1e15 (budget 8)", lambda c: _decide(c, rps="1e15"), (0, 1, 4), timeout_s=10.0, checks=(within(5.0), _clamped_to(8))),
        Case(s, "plan decide --rps 1e15 --max-gpu-budget -1", lambda c: _decide(c, rps="1e15", max_gpu_budget="-1"), (0, 1), timeout_s=10.0, checks=(within(5.0),)),
        Case(s, "plan decide --rps 1e9 --max-gpu-budget -1", lambda c: _decide(c, rps="1e9", max_gpu_budget="-1"), (0, 1), timeout_s=10.0, checks=(within(5.0),)),
        # exit codes the issue names
        Case(s, "doctor, cluster unreachable", lambda c: ["doctor", "--kubeconfig", "kc"], (3,), setup=_unreachable_kc, timeout_s=30.0),
        Case(s, "doctor, Prometheus unreachable", lambda c: ["doctor", "--kubeconfig", "kc", "--prometheus-url", "http://127.0.0.1:1"], (3,), setup=_standin_kc, timeout_s=30.0),
        Case(s, "virtual get --state binary", lambda c: ["virtual", "get", "--state", "s.json", "-o", "json"], (1,), setup=write("s.json", GARBAGE)),
        Case(s, "virtual get --state utf-16", lambda c: ["virtual", "get", "--state", "s.json", "-o", "json"], (1,), setup=write("s.json", STATE.encode("utf-16"))),
        Case(s, "virtual get --state a directory", lambda c: ["virtual", "get", "--state", "sd", "-o", "json"], (1,), setup=lambda c: (c / "sd").mkdir()),
        Case(s, "virtual complete --state binary", lambda c: ["virtual", "complete", "--state", "s.json", "-o", "json"], (1,), setup=write("s.json", GARBAGE)),
        Case(s, "profile --online --endpoint 'not a url'", lambda c: ["profile", "--online", "--endpoint", "not a url", "--out", "p", "--isl", "100", "--osl", "10", "--ttft", "300", "--itl", "20"], (1,)),
        Case(s, "profile --online --endpoint 'http://'", lambda c: ["profile", "--online", "--endpoint", "http://", "--out", "p", "--isl", "100", "--osl", "10", "--ttft", "300", "--itl", "20"], (1,)),
        Case(s, "load replay --url 'not a url'", lambda c: ["load", "replay", str(c.world.trace), "--url", "not a url"], (1,)),
        Case(s, "load replay --rate-scale 0", lambda c: ["load", "replay", str(c.world.trace), "--url", "http://127.0.0.1:1", "--rate-scale", "0"], (1, 2)),
        Case(s, "load replay --concurrency-limit 0", lambda c: ["load", "replay", str(c.world.trace), "--url", "http://127.0.0.1:1", "--concurrency-limit", "0"], (1, 2)),
        Case(s, "load replay --timeout 0", lambda c: ["load", "replay", str(c.world.trace), "--url", "http://127.0.0.1:1", "--timeout", "0"], (1, 2)),
        Case(s, "simulate --interval 0", lambda c: _sim(c, "--interval", "0"), (1, 2)),
        Case(s, "simulate --rate-scale 0", lambda c: _sim(c, "--rate-scale", "0"), (1, 2)),
        Case(s, "simulate --max-gpu-budget 0", lambda c: _sim(c, "--max-gpu-budget", "0"), (1, 2)),
        Case(s, "simulate --prefill-engine-num-gpu 0", lambda c: _sim(c, "--prefill-engine-num-gpu", "0"), (1, 2)),
        Case(s, "trace stats --interval 0", lambda c: ["trace", "stats", str(c.world.trace), "--interval", "0"], (1, 2)),
        Case(s, "trace stats --interval nan", lambda c: ["trace", "stats", str(c.world.trace), "--interval", "nan"], (1, 2)),
        Case(s, "predict backtest --interval 0", lambda c: ["predict", "backtest", str(c.world.trace), "--interval", "0"], (1, 2)),
        Case(s, "predict backtest --predictors nonesuch", lambda c: ["predict", "backtest", str(c.world.trace), "--predictors", "nonesuch"], (1, 2)),
        Case(s, "dgdr create --isl 0", lambda c: _dgdr_create("--isl", "0"), (1, 2)),
        Case(s, "dgdr create --backend foo", lambda c: _dgdr_create("--backend", "foo"), (1, 2)),
        Case(s, "dgdr create --ttft -1", lambda c: _dgdr_create("--ttft", "-1"), (1, 2)),
        Case(s, "profile --offline --isl 0", lambda c: _offline("--isl", "0"), (1, 2)),
        Case(s, "profile --offline --max-gpus-per-engine 1024", lambda c: _offline("--max-gpus-per-engine", "1024"), (1, 2)),
        Case(s, "profile --offline --system nonesuch", lambda c: _offline("--system", "nonesuch"), (1, 2)),
        Case(s, "profile --offline --gpu-spec binary", lambda c: [*_offline(), "--gpu-spec", "g.yaml"], (1, 2), setup=write("g.yaml", GARBAGE)),
    ]  # fmt: skip


def _dgdr_create(*extra: str) -> list[str]:
    values = {
        "--name": "x", "--model": "meta-llama/Llama-3.1-8B-Instruct", "--backend": "vllm",
        "--isl": "1000", "--osl": "100", "--ttft": "300", "--itl": "20",
        "--profiler-image": "img:1",
    }  # fmt: skip
    values.update(dict(zip(extra[::2], extra[1::2], strict=True)))
    return ["dgdr", "create", *[x for kv in values.items() for x in kv]]


def _offline(*extra: str) -> list[str]:
    values = {
        "--model": "llama-3.1-8b", "--system": "h200_sxm", "--backend": "vllm", "--isl": "1000",
        "--osl": "100", "--ttft": "300", "--itl": "20", "--out": "p",
    }  # fmt: skip
    values.update(dict(zip(extra[::2], extra[1::2], strict=True)))
    return ["profile", "--offline", "--no-plots", *[x for kv in values.items() for x in kv]]


def _https(ctx: Ctx) -> str:
    """The no-series Prometheus's address with https (it speaks no TLS)."""
    return ctx.world.bad_server("prom_empty").replace("http://", "https://")


def _standin_kc(ctx: Ctx) -> None:
    ctx.world.kubeconfig(ctx / "kc")


def _unreachable_kc(ctx: Ctx) -> None:
    (ctx / "kc").write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: x\n  cluster: {server: 'http://127.0.0.1:1'}\n"
        "users:\n- name: x\n  user: {}\ncontexts:\n- name: x\n  context: {cluster: x, user: x}\n"
        "current-context: x\n"
    )


# --- servers -------------------------------------------------------------------------------------

MODES = ("silent", "garbage", "close", "http500", "junkjson")


def _server_cases() -> list[Case]:
    cases = []
    for mode in MODES:

        def url(ctx: Ctx, m: str = mode) -> str:
            return ctx.world.bad_server(m)

        commands: list[tuple[str, Callable[[Ctx], list[str]], tuple[int, ...], dict]] = [
            (
                "load replay",
                lambda c, u=url: ["load", "replay", str(c.world.trace), "--url", u(c), "--timeout", "1", "--duration", "5", "-o", "json"],  # type: ignore[misc]
                (3,),
                {},
            ),
            (
                "profile --online --endpoint",
                lambda c, u=url: ["profile", "--online", "--endpoint", u(c), "--timeout", "1", "--out", "p", "--isl", "100", "--osl", "10", "--ttft", "300", "--itl", "20", "--no-plots"],  # type: ignore[misc]
                (3,),
                {},
            ),
            (
                # unknown is not zero: a Prometheus that gives nothing usable is refused at start
                # (3) or held through (0) — within the ticks' time, never a hang
                "plan run --prometheus-url",
                lambda c, u=url: _plan_run(c, prom=u(c)),  # type: ignore[misc]
                (0, 3),
                {"may_write": ("state.json",)},
            ),
            (
                "doctor --prometheus-url",
                lambda c, u=url: ["doctor", "--kubeconfig", "kc", "--prometheus-url", u(c)],  # type: ignore[misc]
                (3,),
                {"setup": _standin_kc},
            ),
            (
                "virtual get --etcd",
                lambda c, u=url: ["virtual", "get", "--etcd", u(c), "-o", "json"],  # type: ignore[misc]
                (3,),
                {},
            ),
        ]  # fmt: skip
        for name, argv, expect, extra in commands:
            if name.startswith("doctor") and mode == "junkjson":
                continue  # doctor probes GET /-/ready: any 200 is a ready Prometheus
            cases.append(
                Case("servers", f"{name} <- {mode} server", argv, expect, timeout_s=30.0, **extra)
            )
    return cases


def cases() -> list[Case]:
    return [*_settings_cases(), *_server_cases()]
