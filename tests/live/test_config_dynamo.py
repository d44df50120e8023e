"""Dynamo's planner arguments translated to ``plan run`` settings
(:mod:`dynamo_plan.live.dynamo_compat`): 1.x ``PlannerConfig`` keys, 0.6–0.9 flags, the
connector, what cannot be honoured, and telling Dynamo's ``--config`` from this project's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dynamo_plan.errors import InputError
from dynamo_plan.live.dynamo_compat import (
    DYNAMO_KEYS,
    DYNAMO_OPTIONS,
    is_dynamo_config,
    read_config_arg,
    translate,
    unhonoured_line,
)
from dynamo_plan.live.settings_spec import SETTINGS


def test_every_alias_names_one_setting_and_no_option() -> None:
    for key, name in DYNAMO_KEYS.items():
        assert name in SETTINGS
        assert key not in DYNAMO_OPTIONS, key


@pytest.mark.parametrize(
    ("config", "settings"),
    [
        ({"throughput_adjustment_interval_seconds": 60}, {"interval": 60.0}),
        ({"throughput_adjustment_interval": 30}, {"interval": 30.0}),
        ({"ttft_ms": 250, "itl_ms": 12.5}, {"ttft": 250.0, "itl": 12.5}),
        ({"ttft": 250}, {"ttft": 250.0}),
        ({"max_gpu_budget": 16, "min_endpoint": 2}, {"max_gpu_budget": 16, "min_endpoint": 2}),
        ({"prefill_engine_num_gpu": 2, "decode_engine_num_gpu": None}, {"prefill_engine_num_gpu": 2}),
        ({"load_predictor": "kalman", "load_predictor_log1p": True},
         {"predictor": "kalman", "predictor_log1p": True}),
        ({"kalman_q_level": 2, "kalman_q_trend": 0.5, "kalman_r": 3, "kalman_min_points": 7},
         {"kalman_q_level": 2.0, "kalman_q_trend": 0.5, "kalman_r": 3.0, "kalman_min_points": 7}),
        ({"prophet_window_size": 80}, {"prophet_window_size": 80}),
        ({"metric_pulling_prometheus_endpoint": "https://thanos:9091"},
         {"prometheus_url": "https://thanos:9091"}),
        ({"metric_pulling_prometheus_token_file": "/var/run/token"},
         {"prometheus_token_file": Path("/var/run/token")}),
        ({"metric_reporting_prometheus_port": 9085}, {"metrics_port": 9085}),
        ({"model_name": "llama", "namespace": "ns-dgd"}, {"model": "llama", "namespace": "ns-dgd"}),
        ({"profile_results_dir": "/data/prof"}, {"profile": Path("/data/prof")}),
        ({"environment": "kubernetes"}, {"connector": "kubernetes"}),
        ({"environment": "virtual"}, {"connector": "virtual"}),
        ({"environment": "kubernetes", "no_operation": True}, {"connector": "none"}),
        ({"environment": "kubernetes", "advisory": True}, {"connector": "none"}),
        ({"backend": "trtllm", "mode": "disagg", "optimization_target": "sla"}, {}),
    ],
)  # fmt: skip
def test_planner_config_keys_map_to_settings(
    config: dict[str, Any], settings: dict[str, Any]
) -> None:
    out = translate(config, "--config")
    assert out.settings == settings
    assert out.unhonoured == []
    assert set(out.given) == set(settings)


def test_what_cannot_be_honoured_is_named_in_one_line() -> None:
    out = translate(
        {"enable_load_scaling": True, "mode": "agg", "log_dir": "/logs", "bogus": 1,
         "enable_throughput_scaling": True, "metric_pulling_prometheus_token": "secret"},
        "--config",
    )  # fmt: skip
    names = [item.split("=")[0] for item in out.unhonoured]
    assert names == [
        "enable_load_scaling", "mode", "log_dir", "bogus", "metric_pulling_prometheus_token"
    ]  # fmt: skip
    assert "not a Dynamo planner option" in out.unhonoured[3]
    line = unhonoured_line(out.unhonoured)
    assert line is not None and "\n" not in line
    assert all(item in line for item in out.unhonoured)
    assert unhonoured_line([]) is None


def test_flags_are_named_as_flags() -> None:
    out = translate(
        {"adjustment_interval": 60, "environment": "kubernetes", "log_dir": "/l"},
        "Dynamo flags",
        flags=True,
    )
    assert out.settings == {"interval": 60.0, "connector": "kubernetes"}
    assert out.given == {"interval": "--adjustment-interval", "connector": "--environment"}
    assert out.unhonoured[0].startswith("--log-dir=/l (plan run logs")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"ttft_ms": 0}, r"^--config: ttft_ms must be a finite number > 0 \(ms\), got 0$"),
        ({"max_gpu_budget": "eight"}, r"^--config: max_gpu_budget: expected an integer"),
        ({"environment": "local"}, r"environment expected one of kubernetes, virtual"),
        ({"no_operation": "yes"}, r"no_operation expected true or false"),
        ({"metric_pulling_prometheus_endpoint": "prom:9090"}, r"must be an http:// or https://"),
    ],
)
def test_bad_values_are_errors(config: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        translate(config, "--config")


def test_global_planner_is_observe_only() -> None:
    out = translate({"environment": "global-planner", "global_planner_namespace": "gp"}, "c")
    assert out.settings == {"connector": "none"}
    assert "not supported" in out.given["connector"]
    assert out.unhonoured[0].startswith("global_planner_namespace=gp")


def test_config_argument_told_apart_by_content(tmp_path: Path) -> None:
    ours = tmp_path / "run.yaml"
    ours.write_text("interval: 60\nmax_gpu_budget: 4\n")
    assert read_config_arg(str(ours)) == (ours, None)
    theirs = tmp_path / "planner.json"
    data = {"environment": "kubernetes", "throughput_adjustment_interval_seconds": 60}
    theirs.write_text(json.dumps(data))
    assert read_config_arg(str(theirs)) == (theirs, data)
    yaml_file = tmp_path / "planner.yaml"
    yaml_file.write_text("ttft_ms: 300\nbackend: vllm\n")
    assert read_config_arg(str(yaml_file)) == (yaml_file, {"ttft_ms": 300, "backend": "vllm"})
    assert read_config_arg(json.dumps(data)) == (None, data)
    missing = tmp_path / "missing.yaml"
    assert read_config_arg(str(missing)) == (missing, None)  # the loader reports it
    with pytest.raises(InputError, match="neither a file nor valid JSON"):
        read_config_arg('{"ttft_ms": ')


def test_shared_names_are_this_projects_file() -> None:
    """Keys both know (same meaning) do not make a file Dynamo's; one Dynamo-only key does."""
    assert not is_dynamo_config({"max_gpu_budget": 4, "namespace": "n", "kalman_r": 2})
    assert is_dynamo_config({"max_gpu_budget": 4, "ttft_ms": 300})
    assert is_dynamo_config({"environment": "kubernetes"})
    assert not is_dynamo_config({"intervall": 60})  # a typo stays this project's error
