"""Summary statistics of a trace (JSON-able): volume, rate, token lengths, burstiness."""

from __future__ import annotations

import numpy as np

from dynamo_plan.errors import InputError
from dynamo_plan.trace.bucket import bucket
from dynamo_plan.trace.model import Trace

__all__ = ["DISPERSION_WINDOWS_S", "index_of_dispersion", "length_summary", "trace_stats"]

DISPERSION_WINDOWS_S: tuple[int, ...] = (1, 10, 60)


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def length_summary(values: np.ndarray, weight: np.ndarray) -> dict[str, float | None]:
    """Weighted mean and p50/p90/p99 (inverted-CDF percentiles, weights = requests per record)
    of token lengths; records with weight 0 or unknown (NaN) length are left out; None if none."""
    keep = (weight > 0) & np.isfinite(values)
    if not np.any(keep):
        return {"mean": None, "p50": None, "p90": None, "p99": None}
    v, w = values[keep], weight[keep]
    p50, p90, p99 = np.percentile(v, [50, 90, 99], weights=w, method="inverted_cdf")
    return {
        "mean": _finite_or_none(np.average(v, weights=w)),
        "p50": _finite_or_none(p50),
        "p90": _finite_or_none(p90),
        "p99": _finite_or_none(p99),
    }


def index_of_dispersion(trace: Trace, window_s: float) -> float | None:
    """Variance / mean of the request counts per window of ``window_s`` seconds (population
    variance over every window from the first request to the last, empty ones included;
    1 for Poisson arrivals, > 1 bursty). None when undefined: fewer than 2 windows, no requests,
    a rate series coarser than the window, or too many windows."""
    try:
        counts = bucket(trace, window_s).series("count")
    except InputError:
        return None
    mean = counts.mean()
    if counts.size < 2 or mean <= 0:
        return None
    return float(counts.var() / mean)


def trace_stats(trace: Trace, interval_s: float = 60.0) -> dict[str, object]:
    """Statistics of ``trace`` as plain JSON-able values.

    ``requests`` (sum of weights), ``records``, ``span_s`` (first to last timestamp),
    ``rate_rps.mean``/``.peak`` (requests/s: mean and maximum over intervals of ``interval_s``,
    i.e. count/interval_s), ``isl``/``osl`` (weighted mean, p50, p90, p99 tokens),
    ``index_of_dispersion`` at 1, 10 and 60 s windows, plus where the data came from.
    """
    series = bucket(trace, interval_s)
    rates = series.series("count") / series.interval_s
    return {
        "files": list(trace.sources),
        "format": trace.fmt,
        "requests": trace.num_requests,
        "records": len(trace),
        "skipped_lines": trace.skipped_lines,
        "was_unsorted": trace.was_unsorted,
        "step_s": trace.step_s,
        "span_s": trace.span_s,
        "interval_s": series.interval_s,
        "intervals": len(series),
        "empty_intervals": int(series.frame["filled"].sum()),
        "rate_rps": {"mean": float(rates.mean()), "peak": float(rates.max())},
        "isl": length_summary(trace.input_length, trace.weight),
        "osl": length_summary(trace.output_length, trace.weight),
        "index_of_dispersion": {
            f"{w}s": index_of_dispersion(trace, float(w)) for w in DISPERSION_WINDOWS_S
        },
    }
