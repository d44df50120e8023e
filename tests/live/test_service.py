"""Assembling a run from its settings: budget check, SLA-shape prior, warm start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dynamo_plan.adapters.frontend import FrontendWindow
from dynamo_plan.connectors.base import ServingReplicas
from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.errors import InfeasibleSLAError, StateStoreError
from dynamo_plan.live.config import RunSettings
from dynamo_plan.live.service import (
    build_planner,
    initial_replicas,
    planner_config,
    startup_notes,
    warmup_series,
)
from tests.live.fakes import RecordingConnector

SAMPLE = Path(__file__).resolve().parents[2] / "sample_traces" / "mooncake_conversation_10min.jsonl"


def settings(profile_dir: Path, **kw: Any) -> RunSettings:
    return RunSettings(
        **{"profile": profile_dir, "model": "m", "interval": 60.0, "startup_s": 0.0, **kw}
    )


def test_infeasible_budget_is_an_error_at_start(profile_dir: Path) -> None:
    with pytest.raises(InfeasibleSLAError, match="they need 3 GPUs"):
        planner_config(settings(profile_dir, max_gpu_budget=2, prefill_engine_num_gpu=2))
    assert planner_config(settings(profile_dir, max_gpu_budget=-1)).limits.max_gpu_budget is None


def test_sla_shape_is_the_prior_until_measured(
    profile_dir: Path, profile: PerformanceProfile
) -> None:
    s = settings(profile_dir, isl=2000.0, osl=300.0)
    config = planner_config(s)
    planner = build_planner(s, config, profile, (1, 1))
    f = planner.forecast()
    assert f.isl[0] == 2000.0 and f.osl[0] == 300.0 and f.requests[0] == 0.0
    # a busy window without ISL/OSL series still gets a decision (not hold_no_data)
    w = FrontendWindow("value", "no isl/osl series", 60.0, requests=600.0)
    d = planner.tick(w.to_observation(0.0))
    assert d.reason != "hold_no_data" and d.plan is not None
    # the measured shape takes over
    planner.tick(FrontendWindow("value", "", 60.0, 600.0, 800.0, 90.0).to_observation(60.0))
    assert planner.forecast().isl[0] == 800.0


def test_warm_start_from_a_trace(profile_dir: Path, profile: PerformanceProfile) -> None:
    s = settings(profile_dir, warmup_trace=SAMPLE, isl=1.0, osl=1.0)
    series, shaped = warmup_series(SAMPLE, 60.0)
    assert shaped and len(series) >= 10
    planner = build_planner(s, planner_config(s), profile, (1, 1))
    f = planner.forecast()
    assert f.requests[0] > 0  # the trace's load is forecast before any live window
    assert f.isl[0] > 1.0  # the trace's shape, not the prior


def test_startup_notes_report_an_sla_the_profile_cannot_meet(
    profile_dir: Path, profile: PerformanceProfile
) -> None:
    ok = settings(profile_dir)
    assert startup_notes(ok, planner_config(ok), profile) == []
    bad = settings(profile_dir, ttft=1.0)
    (note,) = startup_notes(bad, planner_config(bad), profile)
    assert "isl=3000" in note and "TTFT target 1 ms" in note
    fast = settings(profile_dir, interval=0.5, startup_s=120.0)
    (note,) = startup_notes(fast, planner_config(fast), profile)
    assert "241 look-ahead steps" in note


def test_initial_replicas_from_the_connector() -> None:
    assert initial_replicas(RecordingConnector(serving=ServingReplicas(3, 4)), 1) == (3, 4)
    assert initial_replicas(RecordingConnector(), 2) == (2, 2)
    warnings: list[str] = []
    failing = RecordingConnector(fail_observe=StateStoreError("etcd down"))
    assert initial_replicas(failing, 1, warnings.append) == (1, 1)
    assert "etcd down" in warnings[0]
