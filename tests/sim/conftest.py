"""Fixtures for the simulator tests: the shared H200 profile, an SLA and scripted policies."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dynamo_plan.adapters.profile_files import load_profile
from dynamo_plan.core.planner import Observation
from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.sla import SLA

H200 = Path("profiles") / "h200_llama3.1-8b-fp8_tp1p_tp1d"


@pytest.fixture(scope="session")
def profile(shared_data: Path) -> PerformanceProfile:
    return load_profile(shared_data / H200)


@pytest.fixture(scope="session")
def sla() -> SLA:
    return SLA(ttft_ms=300.0, itl_ms=25.0)


@dataclass
class ScriptPolicy:
    """Replicas from a script: ``initial`` at t = 0, ``at[k]`` from the k-th boundary on."""

    initial_replicas: tuple[int, int]
    at: dict[int, tuple[int, int]] = field(default_factory=dict)
    name: str = "script"
    seen: list[Observation] = field(default_factory=list)

    def initial(self) -> tuple[int, int]:
        return self.initial_replicas

    def decide(self, obs: Observation) -> tuple[int, int, str]:
        self.seen.append(obs)
        k = len(self.seen)
        current = self.initial_replicas
        for step in sorted(self.at):
            if step <= k:
                current = self.at[step]
        return current[0], current[1], f"script@{k}"
