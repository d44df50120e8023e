"""What one tick of the live planner loop saw, decided and did (:class:`TickRecord`), and its
structured log line (one JSON object per tick)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dynamo_plan.adapters.frontend import FrontendWindow
from dynamo_plan.connectors.base import ScaleOutcome, ServingReplicas
from dynamo_plan.core.planner import Decision, LoadForecast, Observation

__all__ = ["TickRecord"]


def _num(value: float | None, digits: int = 6) -> float | None:
    """A JSON-safe rounded number (``None`` for unknown or non-finite)."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


@dataclass(frozen=True)
class TickRecord:
    """One tick.

    ``tick``: 1-based tick number; ``t_s``: monotonic seconds since the loop's first tick;
    ``wall_time``: Unix time (s) of the tick; ``window``: the frontend's metrics over the last
    interval; ``serving``: replicas the connector reported (``None``: it did not say, or
    ``observe_error``); ``observation``/``forecast``/``decision``: the planner's input, forecast
    (``None`` when it held without data) and output; ``outcome``: what the connector did with the
    target (``None`` when ``apply`` failed with ``connector_error``); ``current``: replicas
    serving (the connector's, else the planner's previous decision — what the core assumes);
    ``gpus``: GPUs of ``current``; ``elapsed_s``: seconds since the previous tick (0 for the
    first); ``gpu_hours``: ``gpus · elapsed_s / 3600`` added by this tick;
    ``consecutive_unknown``: ticks in a row, this one included, whose window was ``unknown``;
    ``tick_s``: the tick's wall duration (s); ``compute_s``: the same without the time spent in
    the metrics source and the connector (network waits).
    """

    tick: int
    t_s: float
    wall_time: float
    window: FrontendWindow
    serving: ServingReplicas | None
    observe_error: str | None
    observation: Observation
    forecast: LoadForecast | None
    decision: Decision
    outcome: ScaleOutcome | None
    connector_error: str | None
    current: tuple[int, int]
    gpus: int
    elapsed_s: float
    gpu_hours: float
    consecutive_unknown: int
    tick_s: float
    compute_s: float

    def forecast_next(self) -> dict[str, float | None] | None:
        """Forecast of the next interval: requests (per interval), mean ISL and OSL (tokens)."""
        if self.forecast is None:
            return None
        f = self.forecast
        return {
            "requests": _num(float(f.requests[0]), 3),
            "isl": _num(float(f.isl[0]), 1),
            "osl": _num(float(f.osl[0]), 1),
        }

    def log_line(self) -> dict[str, Any]:
        """The tick as one JSON-ready object (the loop's structured log)."""
        obs = self.observation
        d = self.decision
        if self.connector_error is not None:
            connector: dict[str, Any] = {"status": "error", "error": self.connector_error}
        else:
            assert self.outcome is not None
            connector = {
                "status": self.outcome.status,
                "detail": self.outcome.detail,
                "decision_id": self.outcome.decision_id,
            }
        if self.observe_error is not None:
            connector["observe_error"] = self.observe_error
        return {
            "t": round(self.t_s, 3),
            "time": datetime.fromtimestamp(self.wall_time, UTC).isoformat(timespec="milliseconds"),
            "tick": self.tick,
            "window": {"status": self.window.status, "detail": self.window.detail},
            "observation": {
                "requests": _num(obs.requests, 3),
                "isl": _num(obs.isl, 1),
                "osl": _num(obs.osl, 1),
                "ttft_ms": _num(obs.ttft_ms, 3),
                "itl_ms": _num(obs.itl_ms, 3),
                "request_duration_s": _num(obs.request_duration_s, 3),
                "current_prefill": obs.current_prefill,
                "current_decode": obs.current_decode,
            },
            "forecast": self.forecast_next(),
            "decision": {
                "prefill": d.prefill,
                "decode": d.decode,
                "reason": d.reason,
                "detail": d.detail,
                "notes": [] if d.plan is None else list(d.plan.notes),
            },
            "corrections": {
                "prefill": _num(d.corrections.prefill, 4),
                "decode": _num(d.corrections.decode, 4),
            },
            "connector": connector,
            "gpus": self.gpus,
            "consecutive_unknown": self.consecutive_unknown,
            "tick_ms": round(self.tick_s * 1000.0, 3),
            "compute_ms": round(self.compute_s * 1000.0, 3),
        }
