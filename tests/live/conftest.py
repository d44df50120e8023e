"""Fixtures of the live-planner tests: the shared H200 profile and a planner factory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dynamo_plan.adapters.profile_files import load_profile
from dynamo_plan.control import ForecastingPlanner
from dynamo_plan.core.correction import CorrectionConfig
from dynamo_plan.core.planner import PlannerConfig
from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.sla import SLA, Limits

H200 = "profiles/h200_llama3.1-8b-fp8_tp1p_tp1d"


@pytest.fixture(scope="session")
def profile_dir(shared_data: Path) -> Path:
    return shared_data / H200


@pytest.fixture(scope="session")
def profile(profile_dir: Path) -> PerformanceProfile:
    return load_profile(profile_dir)


@pytest.fixture
def make_planner(profile: PerformanceProfile) -> Callable[..., ForecastingPlanner]:
    """A planner with a 60 s interval, no look-ahead, the constant predictor by default."""

    def make(
        interval_s: float = 60.0,
        predictor: str = "constant",
        patience: int = 0,
        budget: int | None = None,
        **kw: Any,
    ) -> ForecastingPlanner:
        config = PlannerConfig(
            interval_s=interval_s,
            sla=SLA(500.0, 50.0),
            limits=Limits(1, budget),
            scale_down_patience=patience,
            correction=CorrectionConfig(enabled=False),
        )
        return ForecastingPlanner(config, profile, predictor, **kw)

    return make
