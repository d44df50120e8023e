"""The one table of ``plan run`` settings and everything derived from it: the checked-in JSON
Schema, the ``plan run`` options, the per-setting checks, the environment fallbacks."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import typer
from jsonschema import Draft202012Validator

from dynamo_plan.cli.plan import app as plan_app
from dynamo_plan.errors import InputError
from dynamo_plan.live.config import (
    check_settings,
    environment_values,
    resolve_run_settings,
    run_config_schema,
)
from dynamo_plan.live.settings_spec import (
    SETTINGS,
    RunSettings,
    config_schema,
    schema_text,
)
from tests.conftest import REPO_ROOT

SCHEMA_FILE = REPO_ROOT / "schemas" / "planner-config.schema.json"


def run_options() -> dict[str, Any]:
    """``plan run``'s click parameters by name."""
    command = typer.main.get_command(plan_app)
    run = command.commands["run"]  # type: ignore[attr-defined]
    return {p.name: p for p in run.params}


def test_checked_in_schema_is_the_generated_one() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_text()
    assert json.loads(SCHEMA_FILE.read_text(encoding="utf-8")) == config_schema()
    assert run_config_schema() == config_schema()
    Draft202012Validator.check_schema(config_schema())


def test_regeneration_entry_point_checks_the_file() -> None:
    check = [sys.executable, "-m", "dynamo_plan.live.settings_spec", "--check"]
    r = subprocess.run(check, capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    printed = subprocess.run(
        [sys.executable, "-m", "dynamo_plan.live.settings_spec"],
        capture_output=True, text=True, timeout=60, cwd=REPO_ROOT,
    )  # fmt: skip
    assert printed.returncode == 0 and printed.stdout == schema_text()


def test_every_setting_is_a_dataclass_field_a_schema_property_and_an_option() -> None:
    names = [f.name for f in fields(RunSettings)]
    assert list(SETTINGS) == names
    assert list(config_schema()["properties"]) == names
    options = run_options()
    for name, info in SETTINGS.items():
        option = options[name]
        assert set(option.opts) == {info.flag, *info.spec.flags}
        assert option.help == info.help_text()
        assert RunSettings().as_dict()[name] == config_schema()["properties"][name]["default"]
        for spelling in info.spec.dynamo_flags:  # Dynamo's spelling: its own option, same type
            dynamo = options[f"dynamo__{spelling[2:].replace('-', '_')}"]
            assert dynamo.opts == [spelling]


@pytest.mark.parametrize("name", list(SETTINGS))
def test_schema_and_check_agree_on_each_bound(name: str) -> None:
    """Each setting's schema property and its check accept and refuse the same edge values."""
    info = SETTINGS[name]
    validator = Draft202012Validator({"type": "object", "properties": {name: info.schema()}})
    spec = info.spec
    candidates: list[Any] = []
    for bound in (spec.ge, spec.gt, spec.le, spec.lt, *spec.not_values):
        if bound is not None:
            candidates += [bound, bound - 1, bound + 1, bound - 0.5, bound + 0.5]
    if info.kind is int:
        candidates = [int(c) for c in candidates if float(c).is_integer()]
    if spec.choices:
        candidates += [*spec.choices, "other"]
    for value in candidates:
        schema_ok = validator.is_valid({name: value})
        check_ok = info.problem(info.coerce(value, name)) is None
        assert schema_ok == check_ok, (name, value)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"interval": -1.0}, r"^--interval must be a finite number > 0 \(s\), got -1$"),
        ({"isl": 0.5}, r"^--isl must be a finite number >= 1 \(tokens\), got 0.5$"),
        ({"max_gpu_budget": 0}, r"^--max-gpu-budget must be >= 1 or -1 \(no budget\), got 0$"),
        ({"ttft_quantile": 1.0}, r"^--ttft-quantile must be in \[0, 1\) \(0: the mean\), got 1$"),
        ({"metrics_port": 70000}, r"^--metrics-port must be in \[0, 65535\], got 70000$"),
        ({"sizing": "fast"}, r"^--sizing must be one of project, dynamo, got 'fast'$"),
        ({"kalman_r": 0.0}, r"^--kalman-r must be a finite number > 0, got 0$"),
        ({"predictor": "lstm"}, r"^--predictor must be one of constant, arima"),
        ({"prometheus_url": "prom:9090"}, r"^--prometheus-url must be an http:// or https://"),
    ],
)
def test_check_messages_come_from_the_table(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        check_settings(RunSettings(profile=Path("p"), model="m", **changes))


def test_environment_fallbacks_and_their_sources(tmp_path: Path) -> None:
    env = {
        "DYN_NAMESPACE": "serving-llama",
        "PROMETHEUS_ENDPOINT": "http://prom:9090",
        "PLANNER_PROMETHEUS_PORT": "9200",
        "DYN_PARENT_DGD_K8S_NAME": "llama",
    }
    values = environment_values(env)
    assert values["namespace"] == ("serving-llama", "$DYN_NAMESPACE")
    assert values["metrics_port"] == (9200, "$PLANNER_PROMETHEUS_PORT")
    cli = {**RunSettings().as_dict(), "profile": tmp_path, "namespace": "flagged"}
    s, sources, _ = resolve_run_settings(cli, {"profile"}, None, environ=env)
    assert (s.namespace, sources["namespace"]) == ("serving-llama", "$DYN_NAMESPACE")
    assert (s.prometheus_url, s.metrics_port) == ("http://prom:9090", 9200)
    assert s.dgd is None  # the connector is none: the operator's DGD name does not count
    s, sources, _ = resolve_run_settings(cli, {"profile", "namespace"}, None, environ=env)
    assert (s.namespace, sources["namespace"]) == ("flagged", "flag")  # the flag wins
    s, sources, _ = resolve_run_settings(cli, {"profile"}, None, environ={})
    assert (s.namespace, sources["namespace"]) == (None, "default")
    with pytest.raises(InputError, match=r"\$PLANNER_PROMETHEUS_PORT: expected an integer"):
        environment_values({"PLANNER_PROMETHEUS_PORT": "metrics"})


def test_dynamo_defaults_apply_only_when_started_with_dynamos_arguments(tmp_path: Path) -> None:
    cli = {**RunSettings().as_dict(), "profile": tmp_path}
    ours, _, _ = resolve_run_settings(cli, {"profile"}, None, environ={})
    theirs, sources, _ = resolve_run_settings(
        cli, {"profile"}, None, dynamo_defaults=True, environ={}
    )
    for name, info in SETTINGS.items():
        if info.spec.dynamo_default is not None and name != "profile":
            assert getattr(ours, name) == info.default
            assert (getattr(theirs, name), sources[name]) == (
                info.spec.dynamo_default,
                "Dynamo default",
            )


def test_the_operators_dgd_variables_count_only_for_the_kubernetes_connector(
    tmp_path: Path,
) -> None:
    """Dynamo's operator sets DYN_PARENT_DGD_K8S_NAME in every pod: an observe-only planner
    there must not be refused for a --dgd it was never given."""
    env = {"DYN_PARENT_DGD_K8S_NAME": "llama", "DYN_PARENT_DGD_K8S_NAMESPACE": "serving"}
    cli = {**RunSettings().as_dict(), "profile": tmp_path, "model": "m"}
    s, sources, _ = resolve_run_settings(cli, {"profile", "model"}, None, environ=env)
    assert (s.connector, s.dgd, s.kube_namespace, sources["dgd"]) == ("none", None, None, "default")
    check_settings(s)
    k8s = {**cli, "connector": "kubernetes"}
    s, sources, _ = resolve_run_settings(k8s, {"profile", "model", "connector"}, None, environ=env)
    assert (s.dgd, s.kube_namespace) == ("llama", "serving")
    assert sources["dgd"] == "$DYN_PARENT_DGD_K8S_NAME"
    check_settings(s)
