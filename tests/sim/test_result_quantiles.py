"""StreamQuantiles: exact while the values are kept, then within the documented relative error
of numpy's percentiles; the streaming run summary's interval rows."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamo_plan.core.sla import SLA
from dynamo_plan.sim.quantiles import DEFAULT_RELATIVE_ERROR, StreamQuantiles
from dynamo_plan.sim.summary import RunSummary

QS = (0, 1, 50, 90, 99, 99.9, 100)


def test_exact_below_the_limit() -> None:
    rng = np.random.default_rng(0)
    values = rng.lognormal(3.0, 1.5, 5000)
    sq = StreamQuantiles(exact_limit=10_000)
    for part in np.array_split(values, 7):
        sq.add(part)
    assert sq.exact and sq.count == values.size
    assert sq.percentiles(QS) == [float(x) for x in np.percentile(values, QS)]


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 20_000),
    sigma=st.floats(0.01, 4.0),
    alpha=st.sampled_from([0.001, 0.005, 0.02]),
)
def test_histogram_within_relative_error(seed: int, n: int, sigma: float, alpha: float) -> None:
    rng = np.random.default_rng(seed)
    values = rng.lognormal(2.0, sigma, n)
    sq = StreamQuantiles(relative_error=alpha, exact_limit=0)
    for part in np.array_split(values, 3):
        sq.add(part)
    assert not sq.exact
    for got, want in zip(sq.percentiles(QS), np.percentile(values, QS), strict=True):
        assert abs(got - want) <= alpha * want * (1 + 1e-9)


def test_switch_to_histogram_keeps_earlier_values() -> None:
    rng = np.random.default_rng(3)
    values = rng.exponential(50.0, 30_000) + 1.0
    sq = StreamQuantiles(exact_limit=1000)
    for part in np.array_split(values, 30):
        sq.add(part)
    assert not sq.exact and sq.count == values.size
    want = np.percentile(values, QS)
    got = np.array(sq.percentiles(QS))
    assert np.all(np.abs(got - want) <= DEFAULT_RELATIVE_ERROR * want * (1 + 1e-9))
    assert got[0] == values.min() and got[-1] == values.max()


def test_empty_and_non_finite() -> None:
    sq = StreamQuantiles()
    sq.add([math.nan, math.inf])
    assert sq.count == 0 and all(math.isnan(v) for v in sq.percentiles((50, 99)))
    with pytest.raises(ValueError, match="relative_error"):
        StreamQuantiles(relative_error=0.0)


def test_summary_closes_an_interval_once_its_requests_finish() -> None:
    summ = RunSummary(SLA(100.0, 10.0), interval_s=10.0)
    arrival = np.array([1.0, 2.0, 12.0])
    k = summ.arrivals(
        arrival, np.array([10, 30]).repeat([2, 1]), np.array([4, 4, 4]),
        np.zeros(3, dtype=bool), np.zeros(3, dtype=bool),
    )  # fmt: skip
    assert k.tolist() == [0, 0, 1] and summ.requests == 3
    summ.open[0].ttft.extend([50.0, 150.0])
    summ.open[0].done = 2
    summ.open[0].met = 1
    summ.arrivals_reached(1)
    assert 0 not in summ.open and 1 in summ.open
    summ.finalize()
    table = summ.interval_table(
        [{"prefill": 1, "decode": 1, "ready_prefill": 1, "ready_decode": 1}] * 2
    )
    assert table["requests"].tolist() == [2, 1]
    assert table["isl"].tolist() == [10.0, 30.0]
    assert table["ttft_p50"].iloc[0] == 100.0 and table["sla_attainment"].iloc[0] == 0.5
    assert math.isnan(table["ttft_p50"].iloc[1]) and table["sla_attainment"].iloc[1] == 0.0
