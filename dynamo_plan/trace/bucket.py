"""Bucketing a trace into fixed intervals: request count and mean ISL/OSL per interval."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from dynamo_plan.errors import InputError
from dynamo_plan.trace.model import Trace

if TYPE_CHECKING:  # pandas is imported when a trace is bucketed, not on every CLI start
    import pandas as pd

__all__ = ["MAX_INTERVALS", "STEP_TOLERANCE", "IntervalSeries", "bucket", "interval_index"]

MAX_INTERVALS = 4_000_000
"""Most intervals one bucketing may produce (46 days at 1 s); beyond it, choose a wider interval."""

STEP_TOLERANCE = 0.01
"""Relative slack when comparing an interval with a rate series' measured step (scrape jitter)."""


@dataclass(frozen=True, eq=False)
class IntervalSeries:
    """A trace bucketed into intervals of ``interval_s`` seconds.

    ``frame`` columns: ``start_s`` (float, ``k·interval_s``, seconds since the first timestamp),
    ``count`` (requests in the interval, the sum of record weights), ``isl``/``osl`` (count-weighted
    mean tokens), ``filled`` (True for an interval with no requests, whose isl/osl were carried
    forward from the previous non-empty interval, or back from the first one at the start).
    """

    interval_s: float
    frame: pd.DataFrame

    def series(self, name: Literal["count", "isl", "osl"]) -> np.ndarray:
        """One column as a float64 array (one value per interval)."""
        if name not in ("count", "isl", "osl"):
            raise ValueError(f"unknown series {name!r}; expected count, isl or osl")
        return self.frame[name].to_numpy(dtype=np.float64)

    def __len__(self) -> int:
        return len(self.frame)


def interval_index(timestamp_ms: np.ndarray, interval_s: float) -> np.ndarray:
    """Interval of each timestamp: ``floor((ts - ts0) / (interval_s·1000))`` as int64, with
    float rounding corrected so that ``k·(interval_s·1000) <= ts - ts0 < (k+1)·(interval_s·1000)``
    holds exactly for the returned ``k``. ``timestamp_ms`` must be sorted, non-empty."""
    width_ms = interval_s * 1000.0
    rel = timestamp_ms - timestamp_ms[0]
    idx: np.ndarray = np.floor(rel / width_ms).astype(np.int64)
    idx -= idx * width_ms > rel
    idx += (idx + 1) * width_ms <= rel
    return idx


def _weighted_mean(idx: np.ndarray, values: np.ndarray, weight: np.ndarray, n: int) -> np.ndarray:
    known = np.isfinite(values) & (weight > 0)
    w = np.where(known, weight, 0.0)
    total = np.bincount(idx, weights=np.where(known, values, 0.0) * w, minlength=n)
    mass = np.bincount(idx, weights=w, minlength=n)
    mean: np.ndarray = np.where(mass > 0, total / np.where(mass > 0, mass, 1.0), np.nan)
    return mean


def bucket(trace: Trace, interval_s: float) -> IntervalSeries:
    """Bucket ``trace`` into intervals of ``interval_s`` seconds from its first timestamp.

    Interval of a record: ``floor((ts - ts0) / (interval_s·1000))`` (see :func:`interval_index`);
    count = sum of weights; isl/osl = weight-weighted means (records with unknown lengths are
    left out of the mean). Every interval from the first to the one holding the last timestamp is
    emitted; empty ones have count 0 and ``filled=True``. A rate series cannot be split finer
    than its step: InputError when ``interval_s < trace.step_s`` (1 % slack); its row times are
    first rounded to the nearest multiple of the step from its first row (absorbs scrape jitter).
    """
    try:
        interval_s = float(interval_s)
    except (TypeError, ValueError):
        raise InputError(f"interval must be a number of seconds, got {interval_s!r}") from None
    if not (math.isfinite(interval_s) and interval_s > 0):
        raise InputError(f"interval must be a positive number of seconds, got {interval_s:g}")
    if len(trace) == 0:
        raise InputError("cannot bucket an empty trace")
    if trace.step_s is not None and interval_s < trace.step_s * (1.0 - STEP_TOLERANCE):
        raise InputError(
            f"interval {interval_s:g} s is finer than the rate series step {trace.step_s:g} s; "
            f"a coarser series cannot be split: use an interval >= {trace.step_s:g} s"
        )
    ts = trace.timestamp_ms
    n_est = math.floor(float(ts[-1] - ts[0]) / (interval_s * 1000.0)) + 1
    if n_est > MAX_INTERVALS:
        raise InputError(
            f"the trace spans {trace.span_s:.6g} s: {n_est} intervals of {interval_s:g} s exceed "
            f"the limit of {MAX_INTERVALS}; choose a wider interval"
        )
    if trace.step_s is not None:  # a rate series: snap scrape jitter to its step grid
        step_ms = trace.step_s * 1000.0
        ts = ts[0] + np.round((ts - ts[0]) / step_ms) * step_ms
    idx = interval_index(ts, interval_s)
    import pandas as pd

    n = int(idx[-1]) + 1
    weight = trace.weight
    count = np.bincount(idx, weights=weight, minlength=n)
    filled = ~(count > 0)
    means = {}
    for name, values in (("isl", trace.input_length), ("osl", trace.output_length)):
        mean = pd.Series(_weighted_mean(idx, values, weight, n))
        carried = mean.where(~filled).ffill().bfill()
        means[name] = np.where(filled, carried.to_numpy(), mean.to_numpy())
    frame = pd.DataFrame(
        {
            "start_s": np.arange(n, dtype=np.float64) * interval_s,
            "count": count,
            "isl": means["isl"],
            "osl": means["osl"],
            "filled": filled,
        }
    )
    return IntervalSeries(interval_s=interval_s, frame=frame)
