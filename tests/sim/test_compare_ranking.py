"""``simulate --compare`` ranking: SLA attainment (highest first), then GPU-hours (fewest)."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

from dynamo_plan.sim.compare import RANKING_RULE, ranks


def _result(policy: str, attainment: float, gpu_hours: float) -> Any:
    return SimpleNamespace(policy=policy, sla_attainment=attainment, gpu_hours=gpu_hours)


def test_attainment_first_then_fewest_gpu_hours() -> None:
    results = [
        _result("oracle", 1.0, 2.0),
        _result("planner", 0.995, 2.1),
        _result("reactive", 0.5, 1.9),
        _result("static", 1.0, 3.0),
    ]
    assert ranks(results) == [1, 3, 4, 2]


def test_nan_ranks_last_and_ties_keep_their_order() -> None:
    results = [
        _result("a", math.nan, 1.0),
        _result("b", 0.9, 2.0),
        _result("c", 0.9, 2.0),
        _result("d", 0.9, math.nan),
    ]
    assert ranks(results) == [4, 1, 2, 3]


def test_rule_is_stated_in_words() -> None:
    assert "SLA attainment" in RANKING_RULE and "GPU-hours" in RANKING_RULE
