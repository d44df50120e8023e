"""Default knobs the CLI shows in ``--help``, in a module that imports nothing (so ``--help``
starts without numpy): the planner's (re-exported by :mod:`dynamo_plan.core.planner`, chosen
by simulation: benchmarks/planner_defaults.py, benchmarks/simulate.py) and the backtest's
warm-up (re-exported by :mod:`dynamo_plan.predict.backtest`).
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_LOAD_QUANTILE",
    "DEFAULT_SCALE_DOWN_PATIENCE",
    "DEFAULT_TTFT_QUANTILE",
    "DEFAULT_WARMUP",
]

DEFAULT_LOAD_QUANTILE: float | None = None  # size for the mean request-count forecast
DEFAULT_SCALE_DOWN_PATIENCE = 3
# The SLA counts requests (attainment = share whose TTFT meets the target), so prefill is sized
# for a high TTFT quantile, not the mean (benchmarks/simulate.py, Azure conv ×10: 98.83% →
# 99.50% attainment at 1.052× → 1.088× the oracle's GPU-hours).
DEFAULT_TTFT_QUANTILE: float | None = 0.99

#: Intervals every predictor is fed before its first scored forecast in a backtest (Dynamo's
#: ``min_points``).
DEFAULT_WARMUP = 5
