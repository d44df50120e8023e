"""The live planner loop: every ``interval_s`` seconds read the frontend's metrics, decide, scale.

One tick (:meth:`PlannerLoop.tick`)::

    window   = source.window(interval_s)            # value | idle | unknown, never raises
    serving  = connector.observe()                  # ExternalServiceError → logged, None
    before_decision()                               # e.g. the attainment sizer's shapes
    obs      = window.to_observation(t, serving)    # unknown stays None (never zero)
    decision = planner.tick(obs)                    # unknown → the core holds (hold_no_data)
    outcome  = connector.apply(ScaleTarget(...))    # ExternalServiceError → logged, retried
    exporter.record(record); log(record.log_line())

A connector failure never stops the loop: the next tick applies its own decision again, which is
the retry. :meth:`PlannerLoop.run` ticks on a monotonic schedule (tick ``k`` at
``start + k·interval_s``; a tick that overruns skips the slots it missed rather than bunching up)
and sleeps with ``stop.wait`` so that setting ``stop`` (the CLI does so on SIGTERM/SIGINT) ends
the loop after the current tick. Construction is pure (no I/O).
"""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

from dynamo_plan.adapters.frontend import FrontendMetricsSource, FrontendWindow
from dynamo_plan.connectors.base import Connector, ScaleTarget
from dynamo_plan.control import ForecastingPlanner
from dynamo_plan.errors import ExternalServiceError, InputError
from dynamo_plan.live.exporter import PlannerMetrics
from dynamo_plan.live.record import TickRecord

__all__ = ["PlannerLoop", "json_log_line"]

T = TypeVar("T")


def json_log_line(entry: dict[str, Any]) -> None:
    """Default log sink: one compact JSON object per line on stderr."""
    sys.stderr.write(json.dumps(entry, separators=(",", ":")) + "\n")
    sys.stderr.flush()


class PlannerLoop:
    """Drives ``planner`` from ``source`` and scales through ``connector`` (module docstring).

    ``clock``: monotonic seconds (injectable); ``log``: receives each tick's log object;
    ``wall_clock``: Unix seconds for the log's ``time``; ``before_decision``: called after the
    reads and before the decision (it must not raise for an outside failure). Counters for the final summary:
    ``ticks``, ``decisions`` (by reason), ``gpu_hours``, ``connector_errors``, ``unknown_ticks``,
    ``max_consecutive_unknown``, ``skipped_slots``.
    """

    def __init__(
        self,
        planner: ForecastingPlanner,
        source: FrontendMetricsSource,
        connector: Connector,
        interval_s: float,
        exporter: PlannerMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        log: Callable[[dict[str, Any]], None] = json_log_line,
        wall_clock: Callable[[], float] = time.time,
        before_decision: Callable[[], None] | None = None,
    ) -> None:
        if not (math.isfinite(interval_s) and interval_s > 0):
            raise InputError(f"loop interval must be > 0 seconds, got {interval_s!r}")
        planned = planner.config.interval_s
        if not math.isclose(interval_s, planned, rel_tol=1e-9):
            raise InputError(
                f"loop interval {interval_s:g} s differs from the planner's interval {planned:g} s"
            )
        self.planner = planner
        self.source = source
        self.connector = connector
        self.interval_s = float(interval_s)
        self.exporter = exporter
        self.clock = clock
        self.log = log
        self.wall_clock = wall_clock
        self.before_decision = before_decision
        self._t0: float | None = None
        self._prev_t: float | None = None
        self.ticks = 0
        self.decisions: Counter[str] = Counter()
        self.gpu_hours = 0.0
        self.connector_errors = 0
        self.unknown_ticks = 0
        self.consecutive_unknown = 0
        self.max_consecutive_unknown = 0
        self.skipped_slots = 0
        self.last: TickRecord | None = None

    # -- one tick ---------------------------------------------------------------------------------

    def _window(self) -> FrontendWindow:
        try:
            return self.source.window(self.interval_s)
        except ExternalServiceError as e:  # the protocol says never; a source may still
            return FrontendWindow("unknown", f"metrics source failed: {e}", self.interval_s)

    def _connector_call(self, call: Callable[[], T]) -> tuple[T | None, str | None]:
        """``call()``'s result, or ``None`` and the error when the outside service failed."""
        try:
            return call(), None
        except ExternalServiceError as e:
            self.connector_errors += 1
            return None, str(e)

    def tick(self) -> TickRecord:
        """Observe, decide, scale, record and log once (module docstring)."""
        clock = self.clock
        start = clock()
        if self._t0 is None:
            self._t0 = start
        t = start - self._t0
        wall = self.wall_clock()

        w0 = clock()
        window = self._window()
        serving, observe_error = self._connector_call(self.connector.observe)
        if self.before_decision is not None:  # reads outside services: waiting, not computing
            self.before_decision()
        waited = clock() - w0

        prev = self.planner.state
        obs = window.to_observation(
            t,
            None if serving is None else serving.prefill,
            None if serving is None else serving.decode,
        )
        decision = self.planner.tick(obs)
        forecast = self.planner.last_forecast

        a0 = clock()
        target = ScaleTarget(decision.prefill, decision.decode, decision.reason)
        outcome, connector_error = self._connector_call(lambda: self.connector.apply(target))
        waited += clock() - a0

        if window.status == "unknown":
            self.consecutive_unknown += 1
            self.unknown_ticks += 1
        else:
            self.consecutive_unknown = 0
        self.max_consecutive_unknown = max(self.max_consecutive_unknown, self.consecutive_unknown)
        current = (
            (serving.prefill, serving.decode)
            if serving is not None
            else (prev.prefill, prev.decode)
        )
        engines = self.planner.config.engines
        gpus = current[0] * engines.prefill + current[1] * engines.decode
        elapsed = 0.0 if self._prev_t is None else max(0.0, t - self._prev_t)
        self._prev_t = t
        added = gpus * elapsed / 3600.0
        self.gpu_hours += added
        self.ticks += 1
        self.decisions[decision.reason] += 1

        tick_s = clock() - start
        record = TickRecord(
            tick=self.ticks,
            t_s=t,
            wall_time=wall,
            window=window,
            serving=serving,
            observe_error=observe_error,
            observation=obs,
            forecast=forecast,
            decision=decision,
            outcome=outcome,
            connector_error=connector_error,
            current=current,
            gpus=gpus,
            elapsed_s=elapsed,
            gpu_hours=added,
            consecutive_unknown=self.consecutive_unknown,
            tick_s=tick_s,
            compute_s=max(0.0, tick_s - waited),
        )
        if self.exporter is not None:
            self.exporter.record(record)
        self.last = record
        self.log(record.log_line())
        return record

    # -- the schedule -----------------------------------------------------------------------------

    def run(
        self, max_ticks: int | None = None, stop: threading.Event | None = None
    ) -> dict[str, Any]:
        """Tick until ``max_ticks`` ticks ran or ``stop`` is set (checked after each tick and
        while sleeping); returns :meth:`summary` with ``stopped`` = ``max_ticks`` | ``stop``."""
        if max_ticks is not None and max_ticks < 1:
            raise InputError(f"max_ticks must be >= 1 or None, got {max_ticks!r}")
        stop = stop if stop is not None else threading.Event()
        stopped = "stop"
        next_at = self.clock()
        ran = 0
        while not stop.is_set():
            self.tick()
            ran += 1
            if max_ticks is not None and ran >= max_ticks:
                stopped = "max_ticks"
                break
            next_at += self.interval_s
            now = self.clock()
            if next_at < now:  # the tick overran whole slots: skip them, keep the phase
                missed = math.floor((now - next_at) / self.interval_s) + 1
                self.skipped_slots += missed
                next_at += missed * self.interval_s
            if stop.wait(max(0.0, next_at - self.clock())):
                break
        return self.summary(stopped)

    def summary(self, stopped: str | None = None) -> dict[str, Any]:
        """Ticks, decisions by reason, GPU hours and error counts so far."""
        last = self.last
        out: dict[str, Any] = {
            "ticks": self.ticks,
            "decisions": dict(sorted(self.decisions.items())),
            "gpu_hours": round(self.gpu_hours, 6),
            "connector_errors": self.connector_errors,
            "unknown_ticks": self.unknown_ticks,
            "max_consecutive_unknown": self.max_consecutive_unknown,
            "skipped_slots": self.skipped_slots,
            "last_decision": None
            if last is None
            else {
                "prefill": last.decision.prefill,
                "decode": last.decision.decode,
                "reason": last.decision.reason,
            },
        }
        if stopped is not None:
            out["stopped"] = stopped
        return out
