"""Forecast accuracy metrics over aligned arrays (pure functions, no state, no clock).

With actuals ``y``, point forecasts ``f``, errors ``e = f - y`` over the ``n`` scored intervals:

- ``mape``  = 100 * mean(|e| / |y|) over intervals with ``y != 0`` (NaN when none);
- ``smape`` = 100 * mean(2 |e| / (|y| + |f|)), a 0/0 term counting as 0;
- ``wape``  = 100 * sum|e| / sum|y| (NaN when every actual is 0);
- ``rmse``  = sqrt(mean(e^2)); ``mae`` = mean|e|; ``bias`` = mean(e) (forecast minus actual);
- ``under_rate``   = fraction of intervals with ``f < y`` (under-provisioning risk);
- ``p90_coverage`` = fraction of intervals with ``y <= p90`` (target 0.9).
"""

from __future__ import annotations

import numpy as np

from dynamo_plan.errors import InputError

METRIC_NAMES: tuple[str, ...] = (
    "mape",
    "smape",
    "wape",
    "rmse",
    "mae",
    "bias",
    "under_rate",
    "p90_coverage",
)


def forecast_metrics(actual: np.ndarray, forecast: np.ndarray, p90: np.ndarray) -> dict[str, float]:
    """The metrics above for one (series, predictor); arrays of equal length >= 1."""
    y = np.asarray(actual, dtype=float)
    f = np.asarray(forecast, dtype=float)
    q = np.asarray(p90, dtype=float)
    if y.ndim != 1 or y.shape != f.shape or y.shape != q.shape or y.size == 0:
        raise InputError(
            f"metrics need three 1-D arrays of one non-zero length, got shapes "
            f"{y.shape}, {f.shape}, {q.shape}"
        )
    e = f - y
    ae = np.abs(e)
    nonzero = y != 0
    denom = np.abs(y) + np.abs(f)
    smape_terms = np.divide(2.0 * ae, denom, out=np.zeros_like(ae), where=denom > 0)
    total = float(np.abs(y).sum())
    return {
        "mape": float(100.0 * np.mean(ae[nonzero] / np.abs(y[nonzero])))
        if nonzero.any()
        else float("nan"),
        "smape": float(100.0 * smape_terms.mean()),
        "wape": float(100.0 * ae.sum() / total) if total > 0 else float("nan"),
        "rmse": float(np.sqrt(np.mean(e * e))),
        "mae": float(ae.mean()),
        "bias": float(e.mean()),
        "under_rate": float(np.mean(f < y)),
        "p90_coverage": float(np.mean(y <= q)),
    }
