"""The rendered Planner's ``plan run`` arguments (``dynamo_plan.deploy.planner_args`` + render).

The decisive check runs the arguments a rendered DGD gives its Planner through the real CLI
(``plan run … --print-config``): every flag must exist and the settings must pass
``check_settings``, as they must for the container to start in the cluster.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from dynamo_plan.adapters.profile_files import load_profile
from dynamo_plan.adapters.prometheus import ENV_VAR, resolve_prometheus_url
from dynamo_plan.cli.plan import app as plan_app
from dynamo_plan.deploy.planner_args import RUN_FLAGS, flag_name, planner_flags
from dynamo_plan.deploy.render import PROFILE_MOUNT, render
from dynamo_plan.errors import InfeasibleSLAError, InputError
from tests.conftest import run_cli
from tests.deploy.test_render import (
    BACKEND_OF_TEMPLATE,
    DGDR_TEXT,
    PROFILE_META,
    dgdr_doc,
    make_profile_dir,
)

MODEL = "meta-llama/Llama-3.1-8B-Instruct"


@pytest.fixture
def profile_dir(shared_data: Path, tmp_path: Path) -> Path:
    return make_profile_dir(shared_data, tmp_path, PROFILE_META)


def parts(dgd: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, str], str | None]]:
    """(component type, main container, env, dynamoNamespace) of each component of a DGD in
    either shape: v1alpha1 ``spec.services`` or v1beta1 ``spec.components``."""
    spec = dgd["spec"]
    if "services" in spec:
        out = []
        for svc in spec["services"].values():
            container = svc["extraPodSpec"]["mainContainer"]
            env = {
                e["name"]: e.get("value", "")
                for e in [*svc.get("envs", []), *container.get("env", [])]
            }
            out.append((svc["componentType"], container, env, svc.get("dynamoNamespace")))
        return out
    return [
        (c["type"], (ct := c["podTemplate"]["spec"]["containers"][0]),
         {e["name"]: e.get("value", "") for e in ct.get("env", [])}, None)
        for c in spec["components"]
    ]  # fmt: skip


def planner_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = [c for t, c, _, _ in parts(objects[-1]) if t == "planner"]
    return container


def planner_env(objects: list[dict[str, Any]]) -> dict[str, str]:
    (env,) = [e for t, _, e, _ in parts(objects[-1]) if t == "planner"]
    return env


def planner_args(objects: list[dict[str, Any]]) -> list[str]:
    args: list[str] = planner_container(objects)["args"]
    return args


def operator_env(dgd: dict[str, Any], k8s_namespace: str = "serving") -> dict[str, str]:
    """What Dynamo's operator gives every pod of ``dgd``: the Dynamo namespace (a v1alpha1
    service's ``dynamoNamespace``, else ``<k8s namespace>-<dgd>``) and the parent DGD."""
    name = dgd["metadata"]["name"]
    namespace = dgd["metadata"].get("namespace") or k8s_namespace
    declared = {ns for _, _, _, ns in parts(dgd) if ns}
    return {
        "DYN_NAMESPACE": declared.pop() if declared else f"{namespace}-{name}",
        "DYN_PARENT_DGD_K8S_NAME": name,
        "DYN_PARENT_DGD_K8S_NAMESPACE": namespace,
    }


def print_config(
    args: list[str], profile_dir: Path, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """``plan run ARGS --print-config -o json`` with the ConfigMap mount replaced by a real
    profile directory (and ``env`` set, as the operator would); the merged settings."""
    assert args.count(PROFILE_MOUNT) == 1
    local = [str(profile_dir) if a == PROFILE_MOUNT else a for a in args]
    with pytest.MonkeyPatch.context() as mp:
        for var in ("DYN_NAMESPACE", "DYN_PARENT_DGD_K8S_NAME", "DYN_PARENT_DGD_K8S_NAMESPACE"):
            mp.delenv(var, raising=False)
        for var, value in (env or {}).items():
            mp.setenv(var, value)
        result = run_cli("plan", "run", *local, "--print-config", "-o", "json")
    assert result.exit_code == 0, result.stderr
    settings: dict[str, Any] = json.loads(result.stdout)
    return settings


@pytest.mark.parametrize("template", ["vllm", "sglang", "trtllm", "mocker"])
def test_rendered_planner_args_start_plan_run(template: str, profile_dir: Path) -> None:
    out = render(
        dgdr_doc(BACKEND_OF_TEMPLATE[template]),
        load_profile(profile_dir),
        mocker=template == "mocker",
    )
    dgd = out.objects[-1]
    settings = print_config(planner_args(out.objects), profile_dir)
    # the served model name: what the workers were given as --model/--model-path/--served-model-name
    served = {
        a[i + 1]
        for kind, container, _, _ in parts(dgd)
        if kind in ("worker", "prefill", "decode")
        for a in [container.get("args", [])]
        for i, x in enumerate(a[:-1])
        if x in ("--model", "--model-path", "--served-model-name")
    }
    assert served == {MODEL}
    assert settings["model"] == MODEL
    assert settings["connector"] == "kubernetes"
    assert settings["dgd"] == dgd["metadata"]["name"] == out.name
    assert settings["kube_namespace"] is None and settings["kubeconfig"] is None
    # the Dynamo namespace the frontend reports: the operator's DYN_NAMESPACE, unless rendered
    in_pod = print_config(planner_args(out.objects), profile_dir, operator_env(dgd))
    assert in_pod["namespace"] == operator_env(dgd)["DYN_NAMESPACE"]
    assert settings["namespace"] in (None, in_pod["namespace"])
    assert settings["metrics_addr"] == "0.0.0.0"
    assert settings["profile"] == str(profile_dir)
    assert (settings["interval"], settings["predictor"]) == (60, "arima")
    assert (settings["prefill_engine_num_gpu"], settings["decode_engine_num_gpu"]) == (1, 2)
    assert (settings["min_endpoint"], settings["no_correction"]) == (2, True)
    assert out.warnings == ()
    # /metrics is declared on the container at the port plan run listens on
    container = planner_container(out.objects)
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "metrics": settings["metrics_port"]
    }
    # no --prometheus-url: the template's PROMETHEUS_ENDPOINT is a usable URL
    assert settings["prometheus_url"] is None
    env = planner_env(out.objects)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ENV_VAR, env[ENV_VAR])
        assert resolve_prometheus_url(None).endswith(".svc.cluster.local:9090")


def test_no_operation_runs_without_connector_or_dgd(profile_dir: Path) -> None:
    out = render(dgdr_doc(noOperation=True, environment="kubernetes"), load_profile(profile_dir))
    args = planner_args(out.objects)
    assert "--dgd" not in args
    settings = print_config(args, profile_dir)
    assert (settings["connector"], settings["dgd"]) == ("none", None)


def test_dropped_keys_are_warnings_and_never_flags(profile_dir: Path) -> None:
    doc = dgdr_doc(
        metricPullingInterval=10, logDir="/tmp/logs", loadPredictionWindowSize=50,
        prometheusEndpoint="http://prom.monitoring:9090", maxGpuBudget=16, loadQuantile=0.9,
        bogusSetting=3, ttft=999, profile="/elsewhere",
    )  # fmt: skip
    out = render(doc, load_profile(profile_dir))
    args = planner_args(out.objects)
    settings = print_config(args, profile_dir)
    assert settings["prometheus_url"] == "http://prom.monitoring:9090"
    assert (settings["max_gpu_budget"], settings["load_quantile"]) == (16, 0.9)
    assert settings["ttft"] == 200  # from config.sla, not the planner key
    where = "spec.profilingConfig.config.planner"
    dropped = {w.split(" ")[0] for w in out.warnings}
    assert dropped == {
        f"{where}.{k}"
        for k in (
            "metricPullingInterval", "logDir", "loadPredictionWindowSize", "bogusSetting", "ttft",
            "profile",
        )
    }  # fmt: skip
    assert any("config.sla.ttft" in w for w in out.warnings)
    for flag in ("--metric-pulling-interval", "--log-dir", "--load-prediction-window-size"):
        assert flag not in args
    assert all(a in RUN_FLAGS for a in args if a.startswith("--"))


def test_metrics_port_key_moves_the_container_port(profile_dir: Path) -> None:
    out = render(dgdr_doc(metricsPort=9200), load_profile(profile_dir))
    assert print_config(planner_args(out.objects), profile_dir)["metrics_port"] == 9200
    container = planner_container(out.objects)
    assert container["ports"] == [{"name": "metrics", "containerPort": 9200, "protocol": "TCP"}]
    off = render(dgdr_doc(metricsPort=0), load_profile(profile_dir))
    assert "ports" not in planner_container(off.objects)


def test_default_budget_is_the_one_the_planner_runs_with(profile_dir: Path) -> None:
    """Without maxGpuBudget the floor is checked against plan run's default (8 GPUs): a render
    that passed would otherwise start a Planner that exits with InfeasibleSLAError."""
    profile = load_profile(profile_dir)
    with pytest.raises(InfeasibleSLAError, match="max_gpu_budget 8"):
        render(dgdr_doc(plannerMinEndpoint=3), profile)  # 3·(1+2) = 9 GPUs
    out = render(dgdr_doc(plannerMinEndpoint=3, maxGpuBudget=-1), profile)
    assert print_config(planner_args(out.objects), profile_dir)["max_gpu_budget"] == -1
    no_planner = render(dgdr_doc(plannerMinEndpoint=3), profile, planner=False)
    assert no_planner.replicas == {"prefill": 3, "decode": 3}  # no Planner: no default budget


def test_generate_dgd_prints_the_warnings(profile_dir: Path, tmp_path: Path) -> None:
    doc = yaml.safe_load(DGDR_TEXT.format(backend="vllm"))
    doc["spec"]["profilingConfig"]["config"]["planner"]["logDir"] = "/logs"
    path = tmp_path / "dgdr.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    result = run_cli("generate-dgd", "--dgdr", path, "--profile", profile_dir)
    assert result.exit_code == 0, result.stderr
    assert "warning:" in result.stderr and "planner.logDir is not used" in result.stderr
    assert "--log-dir" not in result.stdout


# --- the translation table ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("planner", "connector", "args"),
    [
        ({}, "kubernetes", []),
        ({"noOperation": True}, "none", []),
        ({"noOperation": False}, "kubernetes", []),
        ({"environment": "kubernetes"}, "kubernetes", []),
        ({"environment": "observe-only"}, "none", []),
        ({"environment": "virtual", "noOperation": True}, "none", []),
        ({"noOperation": True, "environment": "kubernetes"}, "none", []),
        ({"adjustmentInterval": 30}, "kubernetes", ["--interval", "30"]),
        ({"adjustmentInterval": 12.5}, "kubernetes", ["--interval", "12.5"]),
        ({"loadPredictor": "kalman"}, "kubernetes", ["--predictor", "kalman"]),
        ({"prometheusEndpoint": "http://p:9090"}, "kubernetes", ["--prometheus-url", "http://p:9090"]),
        ({"plannerMinEndpoint": 2}, "kubernetes", ["--min-endpoint", "2"]),
        ({"maxGpuBudget": 16.0}, "kubernetes", ["--max-gpu-budget", "16"]),
        ({"ttftQuantile": 0.95, "scaleDownPatience": 3}, "kubernetes",
         ["--ttft-quantile", "0.95", "--scale-down-patience", "3"]),
        ({"startupS": 90}, "kubernetes", ["--startup-s", "90"]),
        ({"noCorrection": True}, "kubernetes", ["--no-correction"]),
        ({"noCorrection": False}, "kubernetes", []),
    ],
)  # fmt: skip
def test_translation_table(planner: dict[str, Any], connector: str, args: list[str]) -> None:
    out = planner_flags(planner)
    assert (out.connector, out.args(), out.warnings) == (connector, args, [])


@pytest.mark.parametrize("key", ["metricPullingInterval", "logDir", "loadPredictionWindowSize"])
def test_not_applicable_keys_dropped_with_warning(key: str) -> None:
    out = planner_flags({key: 10}, "p")
    assert out.args() == []
    assert len(out.warnings) == 1 and out.warnings[0].startswith(f"p.{key} is not used: plan run")


def test_unknown_and_reserved_keys_dropped_with_warning() -> None:
    out = planner_flags(
        {"someDynamoKnob": 1, "model": "x", "connector": "virtual"}, "p", {"--model": "spec.model"}
    )
    assert out.args() == [] and out.connector == "kubernetes"
    assert out.warnings == [
        "p.someDynamoKnob is not used: plan run has no --some-dynamo-knob setting",
        "p.model is not used: --model is set from spec.model",
        "p.connector is not used: plan run has no --connector setting",
    ]


@pytest.mark.parametrize(
    ("planner", "message"),
    [
        ({"environment": "virtual"}, r"^p\.environment: 'virtual' needs a decision store"),
        ({"environment": "local"}, r"^p\.environment: expected one of kubernetes, observe-only"),
        ({"noOperation": "yes"}, r"^p\.noOperation: expected true or false"),
        ({"noCorrection": 1}, r"^p\.noCorrection: expected true or false"),
        ({"loadPredictor": "lstm"}, r"^p\.loadPredictor: expected one of constant, arima"),
        ({"maxGpuBudget": [1, 2]}, r"^p\.maxGpuBudget: expected a number or a string, got list"),
        ({"loadQuantile": None}, r"^p\.loadQuantile: expected a number or a string, got NoneType"),
        ({"adjustmentInterval": True}, r"^p\.adjustmentInterval: expected a number or a string"),
        ({"startupS": float("inf")}, r"^p\.startupS: must be a finite number"),
    ],
)
def test_translation_refusals(planner: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        planner_flags(planner, "p")


def test_virtual_environment_refused_by_render_naming_the_key(profile_dir: Path) -> None:
    with pytest.raises(InputError, match=r"config\.planner\.environment: 'virtual'"):
        render(dgdr_doc(environment="virtual"), load_profile(profile_dir))


def test_every_emittable_flag_is_a_plan_run_option() -> None:
    command = typer.main.get_command(plan_app)
    run = command.commands["run"]  # type: ignore[attr-defined]
    options = {o for p in run.params for o in p.opts}
    assert set(RUN_FLAGS) <= options
    assert set(RUN_FLAGS) >= {flag_name(k) for k in ("adjustmentInterval", "loadPredictor")}


@pytest.mark.parametrize(
    ("planner", "args", "warned"),
    [
        ({"kalmanQLevel": 2, "kalmanR": 5, "kalmanMinPoints": 4},
         ["--kalman-q-level", "2", "--kalman-r", "5", "--kalman-min-points", "4"], []),
        ({"loadPredictorLog1p": True, "prophetWindowSize": 80},
         ["--predictor-log1p", "--prophet-window-size", "80"], []),
        ({"throughputAdjustmentIntervalSeconds": 90}, ["--interval", "90"], []),
        ({"loadPredictorWarmupTrace": "/t.jsonl"}, ["--warmup-trace", "/t.jsonl"], []),
        ({"sizing": "dynamo"}, ["--sizing", "dynamo"], []),
        ({"backend": "vllm", "mode": "disagg", "optimizationTarget": "sla"}, [], []),
        ({"enableLoadScaling": True, "mode": "agg"}, [], ["enableLoadScaling", "mode"]),
    ],
)  # fmt: skip
def test_dynamo_aliases_from_the_settings_table(
    planner: dict[str, Any], args: list[str], warned: list[str]
) -> None:
    """A DGDR planner key names a setting by any of its Dynamo aliases (camelCase); Dynamo
    options with no counterpart are dropped, with a warning only when their value matters."""
    out = planner_flags(planner, "p")
    assert out.args() == args
    assert [w.split(" ")[0] for w in out.warnings] == [f"p.{k}" for k in warned]
    assert all(a in RUN_FLAGS for a in out.args() if a.startswith("--"))
