"""The former O(load) prefill sizing, kept as the reference: the exact results the O(log load)
search in :mod:`dynamo_plan.core.sla` must reproduce (tests/core/test_sla.py) and the baseline it
is timed against (benchmarks/sizing.py)."""

from __future__ import annotations

import math


def linear_erlang_c(c: int, a: float) -> float:
    """The former O(c) Erlang C (recursion through Erlang B), the reference for small pools."""
    if a <= 0.0:
        return 0.0
    if a >= c:
        return 1.0
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return c * b / (c - a * (1.0 - b))


def linear_prefill_engines(load: float, s: float, target: float, q: float | None) -> int:
    """The former O(answer) search: Erlang B carried along k = 1, 2, ... (a verbatim copy)."""
    if load <= 0.0:
        return 0
    slack = target - s
    b = 1.0
    k = 0
    while True:
        k += 1
        b = load * b / (k + load * b)
        if k <= load:
            continue
        c = k * b / (k - load * (1.0 - b))
        if q is None:
            ok = 0.5 * c * s / (k - load) <= slack
        else:
            ok = c * math.exp(-2.0 * (k - load) * slack / s) <= 1.0 - q
        if ok:
            return k
