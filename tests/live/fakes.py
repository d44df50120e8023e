"""Fakes of the loop's interfaces: a scripted frontend metrics source, a recording connector and
a manual clock."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from dynamo_plan.adapters.frontend import FrontendWindow
from dynamo_plan.connectors.base import ScaleOutcome, ScaleTarget, ServingReplicas
from dynamo_plan.errors import ExternalServiceError


def busy(rps: float, interval_s: float, isl: float = 3000.0, osl: float = 150.0) -> FrontendWindow:
    """A window with ``rps`` requests/s of the given shape, latencies unknown."""
    return FrontendWindow("value", "ok", interval_s, requests=rps * interval_s, isl=isl, osl=osl)


def idle(interval_s: float) -> FrontendWindow:
    return FrontendWindow("idle", "no requests", interval_s)


def unknown(interval_s: float) -> FrontendWindow:
    return FrontendWindow("unknown", "prometheus unreachable", interval_s)


@dataclass
class ScriptedSource:
    """Returns the scripted windows in order (the last one repeats); ``on_window`` runs first."""

    script: Sequence[FrontendWindow]
    on_window: Callable[[int], None] | None = None
    calls: int = 0

    def window(self, interval_s: float) -> FrontendWindow:
        if self.on_window is not None:
            self.on_window(self.calls)
        w = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        return w

    def check(self) -> None:
        return None

    def close(self) -> None:
        return None


@dataclass
class RecordingConnector:
    """Records every target; raises ``fail_apply[k]`` on the k-th apply (0-based) when set, and
    ``fail_observe`` on observe while set. ``serving`` is what observe reports."""

    name: str = "fake"
    serving: ServingReplicas | None = None
    fail_apply: dict[int, ExternalServiceError] = field(default_factory=dict)
    fail_observe: ExternalServiceError | None = None
    targets: list[ScaleTarget] = field(default_factory=list)
    applied: list[ScaleTarget] = field(default_factory=list)

    def observe(self) -> ServingReplicas | None:
        if self.fail_observe is not None:
            raise self.fail_observe
        return self.serving

    def check(self) -> None:
        return None

    def engine_gpus(self) -> tuple[int, int] | None:
        return None

    def apply(self, target: ScaleTarget) -> ScaleOutcome:
        k = len(self.targets)
        self.targets.append(target)
        if k in self.fail_apply:
            raise self.fail_apply[k]
        self.applied.append(target)
        return ScaleOutcome("applied", f"prefill={target.prefill} decode={target.decode}", k)


@dataclass
class ManualClock:
    """A monotonic clock the test moves (``advance``); ``step`` is added at every read."""

    now: float = 1000.0
    step: float = 0.0

    def __call__(self) -> float:
        self.now += self.step
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
