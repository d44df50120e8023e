"""Backtest benchmark: every installed predictor on the shared real traces (not a test).

    .venv/bin/python benchmarks/backtest.py [--quick]

Prints, per (trace, interval, series): each predictor's WAPE %, under-prediction rate, p90
coverage and median ms per step (update + forecast), with rolling-origin horizon 1 and the first
5 intervals as warm-up (scored t = 5 .. n-1, the same for every predictor). The last interval of
a trace ends at its last timestamp, i.e. it is partial (e.g. azure2023_conv @ 60 s: 37 requests
against ~250): it is dropped here, so ``n`` counts complete intervals only. Then:

- the default predictor against ``constant`` (target: WAPE <= constant on every series), with
  the share of scored intervals where default's forecast differs from constant's and, as an
  ablation, the guard-less blend (``DefaultPredictor(guard=False)``);
- p90 coverage per predictor (target 0.85-0.95), per series and pooled over every scored interval;
- ARIMA incremental (``arima_res_.extend``, the refit policy of dynamo_plan.predict.arima)
  against ``auto_arima`` refitted at every step, on mooncake_conversation @ 60 s only, both
  scored on the last ``REFIT_STEPS`` (15) intervals only (the refit-every-step baseline costs
  ~0.2-0.4 s per step; both see the full history; target: incremental <= 2 ms/step median);
- seeded synthetic series with trend / seasonality: default vs auto-ARIMA vs constant (three of
  120 intervals, one of 384 with a peaked period-48 profile).

Hyper-parameters of ``default`` were picked on mooncake_synthetic and synthetic series only;
the other three traces are held out. ``--quick`` skips the 10 s run and the refit baseline.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dynamo_plan.predict import (
    ArimaPredictor,
    BacktestResult,
    available_predictors,
    backtest_series,
    forecast_metrics,
    make_predictor,
)
from dynamo_plan.predict.ensemble import DefaultPredictor
from dynamo_plan.trace import IntervalSeries, bucket, load_trace

TRACES = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "traces"
RUNS = [
    ("mooncake_conversation.jsonl", 10.0),
    ("mooncake_conversation.jsonl", 60.0),
    ("mooncake_synthetic.jsonl", 60.0),
    ("azure2023_code.csv", 60.0),
    ("azure2023_conv.csv", 60.0),
    ("mooncake_conversation.jsonl", 180.0),
    ("mooncake_synthetic.jsonl", 180.0),
    ("azure2023_code.csv", 180.0),
    ("azure2023_conv.csv", 180.0),
]
SERIES = ("count", "isl", "osl")
WARMUP = 5
REFIT_STEPS = 15


def complete_series(buckets: IntervalSeries, series: str) -> np.ndarray:
    """The bucketed series without its last interval, which is cut at the last timestamp."""
    return buckets.series(series)[:-1]  # type: ignore[arg-type]


Row = tuple[str, float, int, BacktestResult]


def run_traces(
    predictors: list[str], quick: bool
) -> tuple[list[Row], dict[tuple[str, float, str], BacktestResult]]:
    """Every predictor on every run; also the guard-less blend (ablation, not in the table)."""
    out: list[Row] = []
    blends: dict[tuple[str, float, str], BacktestResult] = {}
    header = f"{'trace':28} {'int':>4} {'n':>4} {'series':6} {'predictor':9} {'wape%':>7} {'under':>6} {'p90cov':>6} {'ms/step':>8}"
    print(header)
    print("-" * len(header))
    for name, interval in RUNS:
        if quick and interval == 10.0:
            continue
        buckets = bucket(load_trace([TRACES / name]), interval)
        n = len(buckets) - 1  # complete intervals
        if n < WARMUP + 2:
            print(
                f"{name:28} {interval:4.0f} {n:4d} (skipped: {n} complete intervals < warm-up "
                f"{WARMUP} + 2)"
            )
            continue
        for series in SERIES:
            y = complete_series(buckets, series)
            for p in predictors:
                r = backtest_series(y, make_predictor(p), series_name=series, warmup=WARMUP)
                m = r.metrics
                print(
                    f"{name:28} {interval:4.0f} {n:4d} {series:6} {p:9} {m['wape']:7.2f} "
                    f"{m['under_rate']:6.2f} {m['p90_coverage']:6.2f} {r.ms_per_step:8.3f}",
                    flush=True,
                )
                out.append((name, interval, n, r))
            blends[(name, interval, series)] = backtest_series(
                y, DefaultPredictor(guard=False), series_name=series, warmup=WARMUP
            )
    return out, blends


def summary(
    rows: list[Row], blends: dict[tuple[str, float, str], BacktestResult], predictors: list[str]
) -> None:
    print(
        "\n== default vs constant (WAPE %; 'moved' = share of scored intervals where default's "
        "forecast differs from constant's; 'blend' = default without its guard) =="
    )
    by_key: dict[tuple[str, float, str], dict[str, BacktestResult]] = {}
    for name, interval, _, r in rows:
        by_key.setdefault((name, interval, r.series), {})[r.predictor] = r
    ok = 0
    for key, rs in by_key.items():
        name, interval, series = key
        d, c = rs["default"].metrics["wape"], rs["constant"].metrics["wape"]
        moved = np.mean(rs["default"].forecasts.mean != rs["constant"].forecasts.mean)
        b = blends[key].metrics["wape"]
        best = min(rs, key=lambda p: rs[p].metrics["wape"])
        flag = "ok" if d <= c + 1e-9 else "WORSE"
        ok += flag == "ok"
        print(
            f"{name:28} {interval:4.0f} {series:6} default {d:7.2f} constant {c:7.2f} "
            f"({(d / c - 1) * 100:+6.1f} %) {flag:5} moved {moved:4.0%}  blend {b:7.2f} "
            f"({(b / c - 1) * 100:+6.1f} %)  best: {best} {rs[best].metrics['wape']:.2f}"
        )
    print(f"default <= constant on {ok} of {len(by_key)} (trace, interval, series)")
    print("\n== p90 coverage per predictor (target 0.85-0.95) and median ms/step ==")
    for p in predictors:
        res = [r for *_, r in rows if r.predictor == p]
        cov = np.array([r.metrics["p90_coverage"] for r in res])
        ms = np.array([r.ms_per_step for r in res])
        hits = np.concatenate([r.forecasts.actual <= r.forecasts.p90 for r in res])
        inside = np.mean((cov >= 0.85) & (cov <= 0.95))
        print(
            f"{p:9} pooled {hits.mean():.3f} over {hits.size} intervals; per series mean "
            f"{cov.mean():.3f} min {cov.min():.2f} max {cov.max():.2f} in-target {inside:.0%}; "
            f"ms/step median {np.median(ms):.3f} max {ms.max():.3f}"
        )


class RefitEveryStep:
    """auto_arima refitted on the whole history at every step (the baseline to beat)."""

    def __init__(self) -> None:
        self.history: list[float] = []

    def step(self, y: float) -> float:
        import pmdarima
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

        self.history.append(y)
        data = np.array(self.history[-100:])
        if len(data) < 5 or np.ptp(data) == 0:
            return float(data[-1])
        # one BLAS thread, as ArimaPredictor: threaded BLAS on tiny matrices only adds contention
        with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
            warnings.simplefilter("ignore")
            model = pmdarima.auto_arima(data, suppress_warnings=True, error_action="ignore")
        return max(float(model.predict(n_periods=1)[0]), 0.0)


def arima_vs_refit() -> None:
    print(
        "\n== ARIMA incremental vs auto_arima refit every step (mooncake_conversation @ 60 s, "
        f"last {REFIT_STEPS} intervals scored) =="
    )
    buckets = bucket(load_trace([TRACES / "mooncake_conversation.jsonl"]), 60.0)
    for series in SERIES:
        y = complete_series(buckets, series)
        first = y.size - REFIT_STEPS  # first scored interval
        inc = ArimaPredictor()
        base = RefitEveryStep()
        f_inc, f_base, t_inc, t_base = [], [], [], []
        for i, v in enumerate(y[:-1]):
            start = time.perf_counter()
            inc.update(float(v))
            f_inc.append(inc.forecast(1).mean[0])
            t_inc.append(time.perf_counter() - start)
            if i + 1 < first:
                base.history.append(float(v))  # the baseline fits only where it is scored
                continue
            start = time.perf_counter()
            f_base.append(base.step(float(v)))
            t_base.append(time.perf_counter() - start)
        actual = y[first:]
        m_inc = forecast_metrics(actual, np.array(f_inc[first - 1 :]), actual)
        m_base = forecast_metrics(actual, np.array(f_base), actual)
        after_first = np.array(t_inc[WARMUP:]) * 1000
        print(
            f"{series:6} incremental: wape {m_inc['wape']:6.2f} %  ms/step median "
            f"{np.median(after_first):.3f} (after first fit; {inc.fits} auto_arima fits)   "
            f"refit-every-step: wape {m_base['wape']:6.2f} %  ms/step median "
            f"{np.median(np.array(t_base) * 1000):.1f}"
        )


def synthetic_trend_season() -> None:
    print("\n== synthetic series with trend / seasonality (seeded; WAPE %) ==")
    rng = np.random.default_rng(2024)
    t = np.arange(120)
    cases = {
        "ramp 100->700 + noise": 100 + 5 * t + rng.normal(0, 20, t.size),
        "season 12 + noise": 300 + 150 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 20, t.size),
        "ramp + season 24": 200
        + 3 * t
        + 120 * np.sin(2 * np.pi * t / 24)
        + rng.normal(0, 15, t.size),
    }
    # a longer series with a non-sinusoidal daily-like profile (period 48, 8 cycles): a sinusoid
    # is exactly an AR(2), which auto-ARIMA finds; a peaked load profile is not
    t_long = np.arange(384)
    phase = (t_long % 48) / 48
    profile = 200 + 150 * np.exp(-(((phase - 0.4) / 0.08) ** 2)) + 80 * (phase > 0.75)
    cases["peaked profile 48, n 384"] = profile + rng.normal(0, 15, t_long.size)
    for label, y in cases.items():
        y = np.maximum(y, 0.0)
        w = {
            p: backtest_series(y, make_predictor(p), warmup=WARMUP).metrics["wape"]
            for p in ("constant", "arima", "kalman", "default")
        }
        print(f"{label:26} " + "  ".join(f"{p} {v:6.2f}" for p, v in w.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="skip the 10 s run and the refit baseline"
    )
    args = parser.parse_args()
    predictors = [p for p, ok in available_predictors().items() if ok]
    start = time.perf_counter()
    rows, blends = run_traces(predictors, args.quick)
    summary(rows, blends, predictors)
    if not args.quick:
        arima_vs_refit()
    synthetic_trend_season()
    print(f"\ntotal {time.perf_counter() - start:.0f} s; predictors: {', '.join(predictors)}")


if __name__ == "__main__":
    main()
