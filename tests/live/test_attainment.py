"""``plan run --sla-attainment``: the shape feed from the frontend's token histograms, its
prior, and the loop sizing with the attainment sizer (scripted sources, recording connector)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.token_histogram import TokenHistogram
from dynamo_plan.errors import InputError, MetricsError
from dynamo_plan.live.attainment import SAMPLES, ShapeFeed
from dynamo_plan.live.loop import PlannerLoop
from dynamo_plan.live.service import (
    SHAPE_WINDOW_INTERVALS,
    build_planner,
    make_shape_feed,
    planner_config,
)
from tests.live.fakes import ManualClock, RecordingConnector, ScriptedSource, busy
from tests.live.test_service import SAMPLE, settings


def _hist(isl: float, osl: float, n: float = 100.0) -> dict[str, TokenHistogram]:
    """All ``n`` requests in the bucket just above ``isl`` / ``osl`` (bounds ×2 apart)."""
    bounds = [2.0**k for k in range(1, 17)]

    def one(x: float) -> TokenHistogram:
        le = [*bounds, math.inf]
        return TokenHistogram.from_cumulative(le, [n if b >= x else 0.0 for b in le], n * x)

    return {"isl": one(isl), "osl": one(osl)}


@dataclass
class ScriptedHistograms:
    """Token histograms in order (the last repeats); an exception in the script is raised."""

    script: list[dict[str, TokenHistogram] | Exception | None]
    windows: list[float] = field(default_factory=list)

    def token_histograms(self, window_s: float) -> dict[str, TokenHistogram] | None:
        self.windows.append(window_s)
        item = self.script[min(len(self.windows) - 1, len(self.script) - 1)]
        if isinstance(item, Exception):
            raise item
        return item

    def window(self, interval_s: float) -> object:  # unused here
        raise AssertionError

    def check(self) -> None:
        return None

    def close(self) -> None:
        return None


def test_prior_is_the_sla_shape_then_the_histograms_take_over(profile_dir: Path) -> None:
    s = settings(profile_dir, sla_attainment=0.99, isl=2000.0, osl=200.0)
    source = ScriptedHistograms([_hist(5000, 40), None, MetricsError("prometheus down")])
    feed = make_shape_feed(s, planner_config(s), source)
    assert feed is not None and feed.window_s == SHAPE_WINDOW_INTERVALS * s.interval
    assert set(feed.sizer.isl.tolist()) == {2000} and "SLA shape" in feed.origin
    feed.refresh()
    assert feed.sizer.isl.size == SAMPLES
    assert feed.sizer.isl.min() >= 4096 and feed.sizer.isl.max() <= 8192  # bucket (4096, 8192]
    assert feed.sizer.osl.min() >= 32 and feed.sizer.osl.max() <= 64
    assert feed.origin.startswith("frontend histograms of the last 300 s (100 requests)")
    before = feed.sizer.isl
    feed.refresh()  # an idle window keeps the last shapes
    assert feed.sizer.isl is before and "kept: no requests" in feed.origin
    feed.refresh()  # so does a failed query
    assert feed.sizer.isl is before and "prometheus down" in feed.origin
    assert source.windows == [300.0] * 3


def test_warmup_trace_is_the_prior(profile_dir: Path) -> None:
    s = settings(profile_dir, sla_attainment=0.95, warmup_trace=SAMPLE)
    feed = make_shape_feed(s, planner_config(s), ScriptedHistograms([None]))
    assert feed is not None and feed.sizer.isl.size > 10 and "warm-up trace" in feed.origin
    assert feed.sizer.attainment == 0.95


def test_no_attainment_no_feed_and_a_source_without_histograms_is_refused(
    profile_dir: Path,
) -> None:
    assert make_shape_feed(settings(profile_dir), planner_config(settings(profile_dir)), 0) is None
    s = settings(profile_dir, sla_attainment=0.99)
    with pytest.raises(InputError, match="token histograms"):
        make_shape_feed(s, planner_config(s), ScriptedSource([busy(1.0, 60.0)]))


def test_loop_sizes_from_the_fed_shapes(profile_dir: Path, profile: PerformanceProfile) -> None:
    """Longer prompts in the histograms ask for more prefill at the same request count."""
    prefill = []
    for isl in (500, 8000):
        s = settings(profile_dir, sla_attainment=0.99, ttft=500.0, itl=50.0, max_gpu_budget=-1)
        config = planner_config(s)
        feed = make_shape_feed(s, config, ScriptedHistograms([_hist(isl, 100)]))
        assert isinstance(feed, ShapeFeed)
        planner = build_planner(s, config, profile, (1, 1), sizer=feed.sizer)
        logs: list[dict[str, object]] = []
        loop = PlannerLoop(
            planner, ScriptedSource([busy(20.0, 60.0, isl=isl, osl=100)]), RecordingConnector(),
            60.0, clock=ManualClock(), log=logs.append, before_decision=feed.refresh,
        )  # fmt: skip
        record = loop.tick()
        plan = record.decision.plan
        assert plan is not None and "attainment 0.99" in plan.notes[-1]
        assert "frontend histograms" in plan.notes[-1]
        prefill.append(record.decision.prefill)
    assert prefill[0] < prefill[1]
    assert np.all(np.diff(prefill) > 0)
