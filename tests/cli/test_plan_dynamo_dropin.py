"""``plan run`` as a drop-in for Dynamo's planner: the Planner service of each of Dynamo's own
example DGDs (0.6.1, 0.9.0, 1.5.0; every backend), with only its image and command replaced by
``dynamo-plan plan run``, shows the interval, SLA, budget, predictor, namespace and Prometheus
endpoint Dynamo's planner would use.

The expected values are read from the example itself, the way Dynamo's planner reads them: its
0.6–0.9 flags through an argparse parser with Dynamo's flag names and defaults, its 1.x
``--config`` JSON with ``PlannerConfig``'s keys and defaults (Dynamo's
``components/src/dynamo/planner`` ``defaults.py``: interval 180 s, TTFT 500 ms, ITL 50 ms, budget
8 GPUs, min endpoint 1, predictor arima), plus what Dynamo's operator gives the pod
(``DYN_NAMESPACE``: a v1alpha1 service's ``dynamoNamespace``, else ``<k8s namespace>-<dgd>``;
``DYN_PARENT_DGD_K8S_NAME``; ``PROMETHEUS_ENDPOINT``). The profile volume is emulated: its mount
path (or Dynamo's default ``profiling_results`` in the working directory) holds a copy of the
test profile, with a ``profile.json`` naming the model the example's workers serve.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import run_cli

EXAMPLES = Path(__file__).resolve().parent.parent / "data" / "dynamo"
PROFILE = "profiles/h200_llama3.1-8b-fp8_tp1p_tp1d"
K8S_NAMESPACE = "serving"
PROMETHEUS = "http://prometheus-operated.monitoring.svc.cluster.local:9090"
#: Dynamo's planner defaults (SLAPlannerDefaults) for what the example does not set.
DYNAMO_DEFAULTS = {
    "interval": 180,
    "ttft": 500.0,
    "itl": 50.0,
    "max_gpu_budget": 8,
    "min_endpoint": 1,
    "predictor": "arima",
    "profile": "profiling_results",
}
CASES = sorted(
    (p.parent.parent.name, p.name) for p in EXAMPLES.glob("*/examples/*_disagg_planner.yaml")
)


def planner_and_model(dgd: dict[str, Any]) -> tuple[list[str], str | None, str]:
    """(the Planner container's args, its dynamoNamespace (v1alpha1), the served model)."""
    spec = dgd["spec"]
    models = set()
    if "services" in spec:
        planner = None
        for svc in spec["services"].values():
            container = svc.get("extraPodSpec", {}).get("mainContainer", {})
            if svc.get("componentType") == "planner":
                planner = (container.get("args", []), svc.get("dynamoNamespace"))
            models |= served_models(container.get("args", []))
        assert planner is not None
        args, namespace = planner
    else:
        (component,) = [c for c in spec["components"] if c["type"] == "planner"]
        args, namespace = component["podTemplate"]["spec"]["containers"][0]["args"], None
        for c in spec["components"]:
            for container in c.get("podTemplate", {}).get("spec", {}).get("containers", []):
                models |= served_models(container.get("args", []))
    assert len(models) == 1, models
    return list(args), namespace, models.pop()


def served_models(args: list[str]) -> set[str]:
    words = [w for a in args for w in str(a).split()]
    return {
        words[i + 1]
        for i, w in enumerate(words[:-1])
        if w in ("--model", "--model-path", "--served-model-name")
    }


def dynamo_parser() -> argparse.ArgumentParser:
    """The flags of Dynamo's 0.6–0.9 planner that the comparison needs, with its defaults."""
    p = argparse.ArgumentParser()
    p.add_argument("--adjustment-interval", type=int, default=DYNAMO_DEFAULTS["interval"])
    p.add_argument("--ttft", type=float, default=DYNAMO_DEFAULTS["ttft"])
    p.add_argument("--itl", type=float, default=DYNAMO_DEFAULTS["itl"])
    p.add_argument("--max-gpu-budget", type=int, default=DYNAMO_DEFAULTS["max_gpu_budget"])
    p.add_argument("--min-endpoint", type=int, default=DYNAMO_DEFAULTS["min_endpoint"])
    p.add_argument("--load-predictor", default=DYNAMO_DEFAULTS["predictor"])
    p.add_argument("--namespace", default=None)
    p.add_argument("--metric-pulling-prometheus-endpoint", default=None)
    p.add_argument("--profile-results-dir", default=DYNAMO_DEFAULTS["profile"])
    p.add_argument("--config", default=None)
    return p


def expected(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """What Dynamo's planner would use, from its arguments and the pod's environment."""
    parsed, _ = dynamo_parser().parse_known_args(args)
    if parsed.config is not None:  # 1.x: PlannerConfig JSON
        cfg = json.loads(parsed.config)
        return {
            "interval": cfg.get("throughput_adjustment_interval_seconds",
                                cfg.get("throughput_adjustment_interval",
                                        DYNAMO_DEFAULTS["interval"])),
            "ttft": cfg.get("ttft_ms", cfg.get("ttft", DYNAMO_DEFAULTS["ttft"])),
            "itl": cfg.get("itl_ms", cfg.get("itl", DYNAMO_DEFAULTS["itl"])),
            "max_gpu_budget": cfg.get("max_gpu_budget", DYNAMO_DEFAULTS["max_gpu_budget"]),
            "min_endpoint": cfg.get("min_endpoint", DYNAMO_DEFAULTS["min_endpoint"]),
            "predictor": cfg.get("load_predictor", DYNAMO_DEFAULTS["predictor"]),
            "namespace": cfg.get("namespace", env["DYN_NAMESPACE"]),
            "prometheus_url": cfg.get("metric_pulling_prometheus_endpoint",
                                      env["PROMETHEUS_ENDPOINT"]),
            "profile": cfg.get("profile_results_dir", DYNAMO_DEFAULTS["profile"]),
        }  # fmt: skip
    return {
        "interval": parsed.adjustment_interval,
        "ttft": parsed.ttft,
        "itl": parsed.itl,
        "max_gpu_budget": parsed.max_gpu_budget,
        "min_endpoint": parsed.min_endpoint,
        "predictor": parsed.load_predictor,
        "namespace": parsed.namespace or env["DYN_NAMESPACE"],
        "prometheus_url": parsed.metric_pulling_prometheus_endpoint or env["PROMETHEUS_ENDPOINT"],
        "profile": parsed.profile_results_dir,
    }


@pytest.mark.parametrize(("version", "example"), CASES)
def test_example_planner_args_start_plan_run_with_dynamos_settings(
    version: str,
    example: str,
    shared_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (dgd,) = [
        d for d in yaml.safe_load_all((EXAMPLES / version / "examples" / example).read_text())
        if d and d["kind"] == "DynamoGraphDeployment"
    ]  # fmt: skip
    args, dynamo_namespace, model = planner_and_model(dgd)
    name = dgd["metadata"]["name"]
    env = {  # what Dynamo's operator gives the Planner pod
        "DYN_NAMESPACE": dynamo_namespace or f"{K8S_NAMESPACE}-{name}",
        "DYN_PARENT_DGD_K8S_NAME": name,
        "DYN_PARENT_DGD_K8S_NAMESPACE": K8S_NAMESPACE,
        "PROMETHEUS_ENDPOINT": PROMETHEUS,
    }
    want = expected(args, env)
    # the profile volume: mounted where the arguments say (under tmp_path), or Dynamo's
    # default folder in the working directory
    mount = tmp_path / str(want["profile"]).lstrip("/")
    shutil.copytree(shared_data / PROFILE, mount)
    (mount / "profile.json").write_text(json.dumps({"model": model}))
    local = [a.replace(str(want["profile"]), str(mount)) if want["profile"].startswith("/")
             else a for a in args]  # fmt: skip
    monkeypatch.chdir(tmp_path)
    for var in ("PLANNER_PROMETHEUS_PORT", "PROMETHEUS_TOKEN_FILE", "PROMETHEUS_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)

    # command: ["dynamo-plan", "plan", "run"]; args: the example's, unchanged
    r = run_cli("plan", "run", *local, "--print-config", "-o", "json")
    assert r.exit_code == 0, r.stderr
    got = r.json()
    for key in ("interval", "ttft", "itl", "max_gpu_budget", "min_endpoint", "predictor"):
        assert got[key] == want[key], key
    assert (got["namespace"], got["prometheus_url"]) == (want["namespace"], want["prometheus_url"])
    assert Path(got["profile"]).resolve() == mount.resolve()
    assert (got["connector"], got["dgd"], got["model"]) == ("kubernetes", name, model)
    # at most one warning line, naming what cannot be honoured
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) <= 1
    if "--config" in args:
        cfg = json.loads(args[args.index("--config") + 1])
        if cfg.get("enable_load_scaling"):
            assert warnings and "enable_load_scaling=true" in warnings[0]


def test_every_release_and_backend_is_covered() -> None:
    versions = {v for v, _ in CASES}
    assert versions == {"0.6.1", "0.9.0", "1.5.0"}
    for version in versions:
        backends = {e.split("_")[0] for v, e in CASES if v == version}
        assert {"vllm", "sglang", "trtllm"} <= backends


# --- the namespace watched, --sizing, Dynamo's --config as a file -------------------------------

CLOSED = "http://127.0.0.1:1"  # nothing listens on port 1: every query fails at once


@pytest.mark.parametrize(
    ("flags", "env", "line"),
    [
        ([], {"DYN_NAMESPACE": "serving-llama"},
         "watching Dynamo namespace 'serving-llama' (from $DYN_NAMESPACE)"),
        (["--namespace", "mine"], {"DYN_NAMESPACE": "serving-llama"},
         "watching Dynamo namespace 'mine' (from --namespace)"),
        ([], {}, "watching every Dynamo namespace (no --namespace, $DYN_NAMESPACE unset)"),
        (["--config", '{"environment": "kubernetes", "no_operation": true}'], {},
         "watching Dynamo namespace 'dynamo' (from Dynamo's default)"),
    ],
)  # fmt: skip
def test_start_up_says_which_namespace_is_watched_and_why(
    flags: list[str],
    env: dict[str, str],
    line: str,
    shared_data: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DYN_NAMESPACE", raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    r = run_cli(
        "plan", "run", "--profile", shared_data / PROFILE, "--model", "llama", *flags,
        "--prometheus-url", CLOSED, "--interval", "0.1", "--startup-s", "0", "--max-ticks", "1",
        "--metrics-port", "0", "-o", "json",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert f"note: {line}" in r.stderr.splitlines()


def test_sizing_dynamo_is_dynamos_formula(shared_data: Path) -> None:
    from dynamo_plan.live.config import RunSettings, sizing_knobs
    from dynamo_plan.live.service import planner_config

    base: list[str | Path] = [
        "plan",
        "run",
        "--profile",
        shared_data / PROFILE,
        "--model",
        "m",
        "--print-config",
    ]
    assert run_cli(*base, "-o", "json").json()["sizing"] == "project"  # the default stays ours
    assert run_cli(*base, "--sizing", "dynamo", "-o", "json").json()["sizing"] == "dynamo"
    assert run_cli(*base, "--sizing", "fast").exit_code == 2
    s = RunSettings(profile=shared_data / PROFILE, model="m", sizing="dynamo")
    config = planner_config(s)
    assert (config.prefill_queueing, config.ttft_quantile) == (False, None)
    assert sizing_knobs(RunSettings()) == {
        "prefill_queueing": True,
        "ttft_quantile": RunSettings().ttft_quantile,
    }


def test_decide_sizing_dynamo_equals_the_no_queueing_mean_ttft_flags(shared_data: Path) -> None:
    load: list[str | Path] = ["plan", "decide", "--profile", shared_data / PROFILE, "--rps", "20", "--isl", "3000",
            "--osl", "150", "--ttft", "200", "--itl", "20", "-o", "json"]  # fmt: skip
    dynamo = run_cli(*load, "--sizing", "dynamo").json()
    flags = run_cli(*load, "--no-prefill-queueing", "--ttft-quantile", "0").json()
    ours = run_cli(*load).json()
    assert dynamo == flags
    # queueing-aware sizing never orders fewer prefill engines than the throughput formula
    assert ours["prefill_replicas"] >= dynamo["prefill_replicas"]
    assert ours["expected_ttft_queued_ms"] <= dynamo["expected_ttft_queued_ms"]


def test_dynamo_config_file_and_flags_override_it(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DYN_NAMESPACE", raising=False)
    cfg = tmp_path / "planner.yaml"
    cfg.write_text(
        f"environment: kubernetes\nno_operation: true\nprofile_results_dir: {shared_data / PROFILE}\n"
        "model_name: llama\nttft_ms: 300\nload_predictor: kalman\nkalman_r: 4\nlog_dir: /logs\n"
    )
    r = run_cli("plan", "run", "--config", cfg, "--ttft", "250", "--print-config", "-o", "json")
    assert r.exit_code == 0, r.stderr
    s = r.json()
    assert (s["connector"], s["model"], s["predictor"], s["kalman_r"]) == (
        "none",
        "llama",
        "kalman",
        4.0,
    )
    assert s["ttft"] == 250.0  # the flag wins over Dynamo's config
    assert s["profile"] == str(shared_data / PROFILE)
    (warning,) = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert "log_dir=/logs" in warning
