"""The in-memory trace: one record per request (request logs) or per step (rate series)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["TRACE_FORMATS", "Trace", "TraceFormat"]

TraceFormat = Literal["mooncake", "azure", "rate"]
"""``mooncake``: JSON Lines, one request a line (``timestamp`` ms, ``input_length``,
``output_length``); ``azure``: the Azure LLM inference CSV (``TIMESTAMP`` wall-clock,
``ContextTokens``, ``GeneratedTokens``); ``rate``: a CSV time series (``timestamp`` s,
``requests`` per step, optional mean ``isl``/``osl``), the shape of a Prometheus export."""

TRACE_FORMATS: tuple[TraceFormat, ...] = ("mooncake", "azure", "rate")


def _frozen_array(values: object, name: str) -> np.ndarray:
    arr = np.array(values, dtype=np.float64, copy=True)
    if arr.ndim != 1:
        raise ValueError(f"Trace.{name} must be one-dimensional, got shape {arr.shape}")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class Trace:
    """Requests (or per-step request counts) read from one or more trace files.

    Arrays are float64, equally long, read-only, ordered by ``timestamp_ms`` (ascending; a stable
    sort keeps file order among equal timestamps). ``timestamp_ms`` is in milliseconds, relative
    (Mooncake) or since the Unix epoch, UTC (Azure wall-clock; rate series in epoch seconds).
    ``input_length``/``output_length`` are tokens; for a rate series they are the mean ISL/OSL of
    the step, NaN where the step has no requests or the series has no ``isl``/``osl`` column.
    ``weight`` is the number of requests a record stands for: 1.0 for request logs, the step's
    ``requests`` for a rate series.
    """

    timestamp_ms: np.ndarray
    input_length: np.ndarray
    output_length: np.ndarray
    weight: np.ndarray
    sources: tuple[str, ...]
    fmt: TraceFormat
    skipped_lines: int = 0
    step_s: float | None = None
    was_unsorted: bool = False

    def __post_init__(self) -> None:
        names = ("timestamp_ms", "input_length", "output_length", "weight")
        arrays = {name: _frozen_array(getattr(self, name), name) for name in names}
        sizes = {name: arr.size for name, arr in arrays.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"Trace arrays must have equal lengths, got {sizes}")
        ts, w = arrays["timestamp_ms"], arrays["weight"]
        if not np.all(np.isfinite(ts)):
            raise ValueError("Trace.timestamp_ms must be finite")
        if ts.size > 1 and np.any(np.diff(ts) < 0):
            raise ValueError("Trace.timestamp_ms must be sorted ascending")
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError("Trace.weight must be finite and >= 0")
        for name, arr in arrays.items():
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "sources", tuple(str(s) for s in self.sources))

    def __len__(self) -> int:
        """Number of records (rows), not requests: see :attr:`num_requests`."""
        return int(self.timestamp_ms.size)

    @property
    def num_requests(self) -> int:
        """Requests in the trace: the sum of the weights, rounded to an integer."""
        return round(float(self.weight.sum()))

    @property
    def span_s(self) -> float:
        """Seconds from the first to the last timestamp (0 for a single record)."""
        if self.timestamp_ms.size == 0:
            return 0.0
        return float(self.timestamp_ms[-1] - self.timestamp_ms[0]) / 1000.0
