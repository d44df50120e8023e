"""The fast evaluation of the decode surface gives bit-for-bit the values of the plain one.

``Pchip.__call__``, ``PchipStack`` (all rows in one pass, capacity sharing the ITL's Hermite
basis), ``DecodeSurface._envelope`` (lower rows evaluated only where ``_near_rows`` says they may
reach the row's own curve) and ``best_under_itl`` (a context between rows searched together with
both rows) are checked here against the straightforward formulas written out below: PCHIP with
``np.clip`` and one gather per array, the envelope as the maximum over every row, and the search
one context at a time. Equality is exact (``tobytes``), not approximate: the simulator's scalar
``ScalarPchip`` and other tests rely on the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamo_plan.adapters.profile_files import load_profile
from dynamo_plan.core.profile import DecodeBest, DecodeRow, DecodeSurface, _near_rows
from dynamo_plan.core.profile_interp import Pchip, PchipStack
from tests.core.test_decode_surface import _estimated

MEASURED = "profiles/h200_llama3.1-8b-fp8_tp1p_tp1d"

#: ``draw`` of ``st.data()`` or of a composite strategy
Draw = Callable[[st.SearchStrategy[Any]], Any]


def _same(got: object, want: object) -> bool:
    a, b = np.asarray(got), np.asarray(want)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


# --- the plain formulas -------------------------------------------------------------------------


def plain_pchip(p: Pchip, q: object) -> np.ndarray:
    """PCHIP at ``q``: clamp, find the interval, cubic Hermite form, exact at the knots."""
    qa = np.clip(np.asarray(q, dtype=np.float64), p.x[0], p.x[-1])
    if p.x.size == 1:
        return np.full(qa.shape, p.y[0])
    i = np.clip(np.searchsorted(p.x, qa, side="right") - 1, 0, p.x.size - 2)
    x0 = p.x[i]
    h = p.x[i + 1] - x0
    t = (qa - x0) / h
    y0, y1, d0, d1 = p.y[i], p.y[i + 1], p.d[i], p.d[i + 1]
    t2 = t * t
    t3 = t2 * t
    h00 = 2.0 * t3 - 3.0 * t2 + 1.0
    h10 = t3 - 2.0 * t2 + t
    h01 = -2.0 * t3 + 3.0 * t2
    h11 = t3 - t2
    out = h00 * y0 + h10 * h * d0 + h01 * y1 + h11 * h * d1
    out = np.where(qa == x0, y0, out)
    return np.where(qa == p.x[-1], p.y[-1], out)


def plain_own(row: DecodeRow, m: np.ndarray) -> np.ndarray:
    out = plain_pchip(row.itl, m)
    return np.where(m > row.itl.hi, row.itl.y[-1] + row.slope * (m - row.itl.hi), out)


def plain_envelope(s: DecodeSurface, j: int, m: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.maximum.reduce([plain_own(row, m) for row in s.rows[: j + 1]])
    return out


def plain_bracket(s: DecodeSurface, context: float) -> tuple[int, int, float]:
    ctxs = s.contexts
    c = min(max(float(context), float(ctxs[0])), float(ctxs[-1]))
    j = int(np.clip(np.searchsorted(ctxs, c, side="right") - 1, 0, len(ctxs) - 1))
    if j == len(ctxs) - 1 or ctxs[j] == c:
        return j, j, 0.0
    return j, j + 1, float((c - ctxs[j]) / (ctxs[j + 1] - ctxs[j]))


def plain_eval(s: DecodeSurface, which: str, kv: np.ndarray, context: float) -> np.ndarray:
    i, k, w = plain_bracket(s, context)
    a, b = s.rows[i], s.rows[k]
    m = kv / ((1 - w) * a.context + w * b.context)
    itl = plain_envelope(s, i, m)
    if w != 0.0:
        itl = (1 - w) * itl + w * plain_envelope(s, k, m)
    if which == "itl":
        return itl
    ca = plain_pchip(a.capacity, m)
    cap = ca if w == 0.0 else (1 - w) * ca + w * plain_pchip(b.capacity, m)
    out: np.ndarray = cap * m / itl
    return out


def plain_best(s: DecodeSurface, target: float, context: float, points: int) -> DecodeBest | None:
    """The search of ``best_under_itl``, one context at a time, every point evaluated plainly."""
    i, k, w = plain_bracket(s, context)
    a, b = s.rows[i], s.rows[k]
    lo, hi = (1 - w) * a.kv_lo + w * b.kv_lo, (1 - w) * a.kv_hi + w * b.kv_hi
    c = min(max(float(context), a.context), b.context) if w else a.context
    knots = np.concatenate([a.itl.x, b.itl.x]) * c
    grid = np.unique(np.concatenate([np.linspace(lo, hi, max(2, points)), knots]))
    grid = grid[(grid >= lo) & (grid <= hi)]
    itl = plain_eval(s, "itl", grid, context)
    ok = np.flatnonzero(itl <= target)
    if ok.size == 0:
        return None
    last = int(ok[-1])
    if last + 1 < grid.size:
        ok_kv, bad_kv = grid[last], grid[last + 1]
        for _ in range(3):
            probe = np.linspace(ok_kv, bad_kv, 33)
            good = int(np.flatnonzero(plain_eval(s, "itl", probe, context) <= target)[-1])
            ok_kv, bad_kv = float(probe[good]), float(probe[min(good + 1, 32)])
        grid = np.append(grid[: last + 1], ok_kv)
        itl = np.append(itl[: last + 1], plain_eval(s, "itl", np.array([ok_kv]), context))
    m = grid / ((1 - w) * a.context + w * b.context)
    ca = plain_pchip(a.capacity, m)
    cap = ca if w == 0.0 else (1 - w) * ca + w * plain_pchip(b.capacity, m)
    thpt = cap * m / itl
    ok = np.flatnonzero(itl <= target)
    j = ok[int(np.argmax(thpt[ok]))]
    best = float(thpt[j])
    if w != 0.0:
        low, high = (plain_best(s, target, s.rows[r].context, points) for r in (i, k))
        best = min(best, low.thpt_per_gpu) if low is not None else best
        best = max(best, high.thpt_per_gpu) if high is not None else best
    clamped = not s.rows[0].context <= float(context) <= s.rows[-1].context
    return DecodeBest(best, float(itl[j]), float(grid[j]), clamped=clamped)


def _same_best(got: DecodeBest | None, want: DecodeBest | None) -> bool:
    if got is None or want is None:
        return got is want
    return (
        _same(got.thpt_per_gpu, want.thpt_per_gpu)
        and _same(got.itl_ms, want.itl_ms)
        and _same(got.kv_usage, want.kv_usage)
        and got.clamped == want.clamped
    )


# --- inputs --------------------------------------------------------------------------------------


finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)


@st.composite
def curves(draw: st.DrawFn, min_size: int = 1, knots: np.ndarray | None = None) -> Pchip:
    if knots is None:
        n = draw(st.integers(min_size, 10))
        steps = draw(st.lists(st.floats(0.01, 100.0), min_size=n - 1, max_size=n - 1))
        x0 = draw(finite)
        knots = np.concatenate([[x0], x0 + np.cumsum(steps)])
    y = np.array(draw(st.lists(finite, min_size=knots.size, max_size=knots.size)))
    if draw(st.booleans()):
        y = np.sort(y)
    return Pchip.fit(knots, y)


def _queries(draw: Draw, xs: list[np.ndarray]) -> np.ndarray:
    lo = min(float(x[0]) for x in xs)
    hi = max(float(x[-1]) for x in xs)
    span = hi - lo + 1.0
    inside = draw(st.lists(st.floats(lo - span, hi + span), min_size=0, max_size=40))
    extra = [np.inf, -np.inf] if draw(st.booleans()) else []
    return np.concatenate([np.array(inside + extra), *xs])


@st.composite
def surfaces(draw: st.DrawFn) -> DecodeSurface:
    """Small random surfaces: rows that cross, single-point rows, dips lifted by the envelope."""
    n_rows = draw(st.integers(1, 4))
    ctxs = sorted(
        draw(st.lists(st.integers(100, 20000), min_size=n_rows, max_size=n_rows, unique=True))
    )
    kv, ctx, itl, thpt = [], [], [], []
    single = draw(st.booleans())
    for c in ctxs:
        n = draw(st.integers(1 if single else 2, 6))
        ks = draw(st.lists(st.integers(1, 1000), min_size=n, max_size=n, unique=True))
        for value in sorted(k / 1000 for k in ks):
            kv.append(value)
            ctx.append(c)
            itl.append(draw(st.floats(1.0, 100.0)))
            thpt.append(draw(st.floats(0.0, 1e4)))
    return DecodeSurface(np.array(kv), np.array(ctx, dtype=float), np.array(itl), np.array(thpt))


@pytest.fixture(scope="module", params=["measured", "estimated"])
def surface(request: pytest.FixtureRequest, shared_data: Path) -> DecodeSurface:
    if request.param == "measured":
        return load_profile(shared_data / MEASURED).decode
    return _estimated().decode


def _m_values(s: DecodeSurface, draw: Draw) -> np.ndarray:
    """Batches per token of KV capacity across every row's range, its knots and beyond."""
    knots = np.concatenate([r.itl.x for r in s.rows])
    top = float(knots.max())
    rand = draw(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=60))
    return np.concatenate([np.array(rand) ** 4 * 3 * top, knots, [0.0, 2 * top, 10.0]])


# --- Pchip and PchipStack ------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(data=st.data(), p=curves())
def test_pchip_is_the_plain_formula(data: st.DataObject, p: Pchip) -> None:
    q = _queries(data.draw, [p.x])
    assert _same(p(q), plain_pchip(p, q))
    assert _same(p(q.reshape(1, -1)), plain_pchip(p, q.reshape(1, -1)))
    for value in q:
        assert _same(p(float(value)), plain_pchip(p, float(value)))
    assert _same(p(list(q[:3])), plain_pchip(p, list(q[:3])))


@settings(max_examples=150, deadline=None)
@given(data=st.data(), n=st.integers(1, 5))
def test_stack_is_each_curve(data: st.DataObject, n: int) -> None:
    stack_of = [data.draw(curves(min_size=2)) for _ in range(n)]
    twins = [data.draw(curves(knots=c.x)) for c in stack_of]
    q = _queries(data.draw, [c.x for c in stack_of])
    r0 = data.draw(st.integers(0, n - 1))
    r1 = data.draw(st.integers(r0 + 1, n))
    plain = PchipStack(stack_of)
    paired = PchipStack(stack_of, twins=twins)
    got, (both, twin) = plain(q, r0, r1), paired.both(q, r0, r1)
    assert got.shape == both.shape == twin.shape == (r1 - r0, q.size)
    for r in range(r0, r1):
        assert _same(got[r - r0], plain_pchip(stack_of[r], q))
        assert _same(both[r - r0], plain_pchip(stack_of[r], q))
        assert _same(twin[r - r0], plain_pchip(twins[r], q))
    alone, same = plain.both(q, r0, r1)
    assert _same(alone, got) and _same(same, got)


def test_stack_needs_two_knots_and_matching_twins() -> None:
    a, b = Pchip.fit([0.0, 1.0, 2.0], [0.0, 1.0, 4.0]), Pchip.fit([0.0, 1.5, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="two knots"):
        PchipStack([a, Pchip.fit([1.0], [2.0])])
    with pytest.raises(ValueError, match="same knots"):
        PchipStack([a], twins=[b])
    with pytest.raises(ValueError, match="same knots"):
        PchipStack([a, b], twins=[b])


# --- the decode surface --------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_envelope_is_the_max_over_rows(surface: DecodeSurface, data: st.DataObject) -> None:
    m = _m_values(surface, data.draw)
    for j in range(len(surface.rows)):
        assert _same(surface._envelope(j, m), plain_envelope(surface, j, m))


@settings(max_examples=60, deadline=None)
@given(s=surfaces(), data=st.data())
def test_envelope_and_lookups_on_random_surfaces(s: DecodeSurface, data: st.DataObject) -> None:
    m = _m_values(s, data.draw)
    for j in range(len(s.rows)):
        assert _same(s._envelope(j, m), plain_envelope(s, j, m))
    kv = np.array(data.draw(st.lists(st.floats(0.0, 1.2), min_size=1, max_size=30)))
    for context in [*s.contexts, data.draw(st.floats(50.0, 25000.0))]:
        for which in ("itl", "thpt"):
            with np.errstate(divide="ignore", invalid="ignore"):
                assert _same(s._eval(which, kv, context)[0], plain_eval(s, which, kv, context))


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_lookups_are_the_plain_formula(surface: DecodeSurface, data: st.DataObject) -> None:
    context = data.draw(st.floats(50.0, 150000.0))
    kv = np.array(data.draw(st.lists(st.floats(-0.1, 1.1), min_size=1, max_size=50)))
    lo, hi = surface.kv_range(context)
    for which in ("itl", "thpt"):
        want = plain_eval(surface, which, kv, context)
        assert _same(surface._eval(which, kv, context)[0], want)
        assert _same(
            surface.values(which, kv, context), np.where((kv >= lo) & (kv <= hi), want, np.nan)
        )
    one = float(np.clip(kv[0], lo, hi))
    assert _same(
        surface.itl(float(kv[0]), context).value,
        plain_eval(surface, "itl", np.array([one]), context)[0],
    )
    assert _same(
        surface.thpt(float(kv[0]), context).value,
        plain_eval(surface, "thpt", np.array([one]), context)[0],
    )


@settings(max_examples=12, deadline=None)
@given(target=st.floats(3.0, 200.0), context=st.floats(50.0, 150000.0), warm=st.booleans())
def test_best_under_itl_is_the_plain_search(
    surface: DecodeSurface, target: float, context: float, warm: bool
) -> None:
    """Also with the neighbouring rows' optima already memoised (``warm``) or not."""
    surface._best_memo.clear()
    if warm:
        i, k, _ = plain_bracket(surface, context)
        for r in {i, k}:
            surface.best_under_itl(target, surface.rows[r].context)
    got = surface.best_under_itl(target, context)
    assert _same_best(got, plain_best(surface, target, context, 1024))
    assert surface.best_under_itl(target, context) is got  # memoised


@settings(max_examples=40, deadline=None)
@given(
    s=surfaces(),
    target=st.floats(1.0, 120.0),
    context=st.floats(50.0, 25000.0),
    points=st.integers(1, 64),
)
def test_best_under_itl_on_random_surfaces(
    s: DecodeSurface, target: float, context: float, points: int
) -> None:
    with np.errstate(divide="ignore", invalid="ignore"):
        assert _same_best(
            s.best_under_itl(target, context, points), plain_best(s, target, context, points)
        )


@settings(max_examples=60, deadline=None)
@given(s=surfaces(), data=st.data())
def test_near_rows_bound_where_a_lower_row_may_reach(s: DecodeSurface, data: st.DataObject) -> None:
    """Outside the intervals :func:`_near_rows` returns, the lower row is strictly below."""
    m = _m_values(s, data.draw)
    for j, upper in enumerate(s.rows):
        for r in range(j):
            spans = _near_rows(s.rows[r], upper, 1.0)
            outside = ~np.any([(m >= a) & (m <= b) for a, b in spans], axis=0)
            assert np.all(plain_own(s.rows[r], m[outside]) < plain_own(upper, m[outside]))
            assert spans[-1][0] <= 1.0 and spans[-1][1] == np.inf  # nothing claimed above


def test_near_rows_find_the_measured_crossing(shared_data: Path) -> None:
    """On the shared H200 profile the context-8,291 row lies above the 10,938 one at small
    batches (one of the lifted points): that stretch, and only about it, is returned."""
    rows = load_profile(shared_data / MEASURED).decode.rows
    spans = _near_rows(rows[3], rows[4], 1.0)
    assert len(spans) == 2 and spans[-1] == (1.0, np.inf)
    lo, hi = spans[0]
    m = np.geomspace(1e-7, 1e-3, 20001)
    above = m[plain_own(rows[3], m) >= plain_own(rows[4], m)]
    assert lo <= above.min() and above.max() <= hi
    assert hi < 2 * above.max()  # tight: not the whole row
    assert _near_rows(rows[0], rows[5], 1.0) == [(1.0, np.inf)]
