"""The token histogram the attainment sizer's shapes are drawn from (Prometheus buckets)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamo_plan.core.token_histogram import TokenHistogram
from dynamo_plan.errors import InputError


def test_from_cumulative_takes_any_order_and_adds_the_inf_bucket() -> None:
    h = TokenHistogram.from_cumulative([1000.0, 100.0, math.inf], [7.0, 2.0, 10.0], 12_345.0)
    assert h.bounds.tolist() == [100.0, 1000.0]
    assert h.counts.tolist() == [2.0, 5.0, 3.0]
    assert h.requests == 10.0
    no_inf = TokenHistogram.from_cumulative([100.0, 1000.0], [2.0, 7.0], 0.0)
    assert no_inf.counts.tolist() == [2.0, 5.0, 0.0]


def test_a_counter_reset_does_not_give_negative_counts() -> None:
    h = TokenHistogram.from_cumulative([100.0, 1000.0, math.inf], [5.0, 3.0, 6.0], 0.0)
    assert h.counts.tolist() == [5.0, 0.0, 1.0]


@settings(max_examples=50, deadline=None)
@given(
    counts=st.lists(st.integers(0, 50), min_size=4, max_size=4).filter(lambda c: sum(c[:3]) > 0),
    seed=st.integers(0, 2**31),
)
def test_samples_fall_in_their_buckets_in_proportion(counts: list[int], seed: int) -> None:
    counts = [*counts[:3], 0]  # no overflow: every value within finite bounds
    h = TokenHistogram(np.array([10.0, 100.0, 1000.0]), np.array(counts, dtype=float), 0.0)
    x = h.sample(4000, np.random.default_rng(seed))
    assert x.dtype == np.int64 and x.min() >= 1 and x.max() <= 1000
    share = np.histogram(x, bins=[0.5, 10.5, 100.5, 1000.5])[0] / x.size
    expected = np.array(counts[:3]) / sum(counts[:3])
    assert np.all(np.abs(share - expected) < 0.05)


def test_overflow_bucket_gets_the_mean_the_sum_leaves() -> None:
    # 10 requests of ~50 tokens (bucket 1..100) and 2 beyond 100 whose sum is 2 x 5000
    h = TokenHistogram(np.array([100.0]), np.array([10.0, 2.0]), 10 * 50.5 + 2 * 5000.0)
    x = h.sample(2000, np.random.default_rng(1))
    big = x[x > 100]
    assert big.size > 0 and np.all(big == 5000)
    # a sum too small to place them keeps them at the last bound
    low = TokenHistogram(np.array([100.0]), np.array([10.0, 2.0]), 0.0)
    assert low.sample(500, np.random.default_rng(1)).max() == 100


def test_empty_histogram_gives_no_samples() -> None:
    h = TokenHistogram(np.array([100.0]), np.array([0.0, 0.0]), 0.0)
    assert h.sample(10, np.random.default_rng(0)).size == 0


@pytest.mark.parametrize(
    ("bounds", "counts", "total"),
    [
        ([100.0, 10.0], [1.0, 1.0, 0.0], 0.0),  # not increasing
        ([100.0], [1.0], 0.0),  # no +Inf count
        ([100.0], [-1.0, 0.0], 0.0),
        ([100.0], [1.0, 0.0], math.nan),
        ([0.0, 10.0], [1.0, 1.0, 0.0], 0.0),  # a bound of 0 tokens
    ],
)
def test_bad_histograms_are_refused(bounds: list[float], counts: list[float], total: float) -> None:
    with pytest.raises(InputError):
        TokenHistogram(np.array(bounds), np.array(counts), total)
