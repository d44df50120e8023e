"""What the frontend's metrics said about one adjustment window, with unknown kept apart.

A :class:`FrontendWindow` has one of three statuses, never confused:

* ``value`` — requests were served; means are filled where the series exist;
* ``idle`` — the request counter exists and did not grow: a known idle window (0 requests, all
  means ``None`` because there was nothing to measure);
* ``unknown`` — the metrics could not be read (unreachable, an HTTP or PromQL error, no series
  for this model and namespace); ``detail`` says which.

A metrics source (the Prometheus adapter, a fake in tests) implements
:class:`FrontendMetricsSource`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from dynamo_plan.core.planner import Observation

__all__ = ["FrontendMetricsSource", "FrontendWindow", "WindowStatus"]

WindowStatus = Literal["value", "idle", "unknown"]


@dataclass(frozen=True)
class FrontendWindow:
    """Frontend metrics over the last ``interval_s`` seconds.

    ``requests``: requests finished in the window (``increase(requests_total)``); ``isl``/``osl``
    mean tokens; ``ttft_s``/``itl_s``/``request_duration_s`` mean seconds (count-weighted over
    the histograms' ``_sum``/``_count``).
    """

    status: WindowStatus
    detail: str
    interval_s: float
    requests: float | None = None
    isl: float | None = None
    osl: float | None = None
    ttft_s: float | None = None
    itl_s: float | None = None
    request_duration_s: float | None = None

    def to_observation(
        self, t_s: float, current_prefill: int | None = None, current_decode: int | None = None
    ) -> Observation:
        """The planner's :class:`Observation` (ms for latencies; unknown stays ``None``)."""
        if self.status == "unknown":
            return Observation(
                t_s, None, None, None, None, None, None, current_prefill, current_decode
            )
        if self.status == "idle":
            return Observation(
                t_s, 0.0, None, None, None, None, None, current_prefill, current_decode
            )
        return Observation(
            t_s,
            self.requests,
            self.isl,
            self.osl,
            None if self.ttft_s is None else self.ttft_s * 1000.0,
            None if self.itl_s is None else self.itl_s * 1000.0,
            self.request_duration_s,
            current_prefill,
            current_decode,
        )


@runtime_checkable
class FrontendMetricsSource(Protocol):
    """Reads the frontend's metrics for one model (and namespace) over a window."""

    def window(self, interval_s: float) -> FrontendWindow:
        """Metrics over the last ``interval_s`` seconds; never raises for an outside failure
        (that is ``status='unknown'`` with the reason in ``detail``)."""
        ...

    def check(self) -> None:
        """Preflight before the first query, from local files only (a token file, a CA bundle):
        :class:`~dynamo_plan.errors.InputError` for settings that cannot work. Never I/O on the
        network (an unreachable source is an ``unknown`` window, not a setting error)."""
        ...

    def close(self) -> None:
        """Release what the source holds (connections); a no-op for a source holding nothing.
        ``plan run`` calls it once, when the loop ends."""
        ...
