"""SLA sizing against replicas computed independently here from the raw npz (numpy + scipy)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.interpolate import PchipInterpolator

from dynamo_plan.adapters.profile_files import load_profile
from dynamo_plan.core import sla as sla_module
from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.sla import (
    MAX_RATE_RPS,
    SLA,
    EngineGpus,
    Limits,
    Load,
    apply_limits,
    check_budget,
    erlang_c,
    expected_prefill_ttft_ms,
    prefill_slowdown,
    size_replicas,
)
from dynamo_plan.errors import InfeasibleSLAError, InputError
from tests.core.reference_sla import linear_erlang_c, linear_prefill_engines

PROFILE = "profiles/h200_llama3.1-8b-fp8_tp1p_tp1d"


@pytest.fixture(scope="module")
def profile(shared_data: Path) -> PerformanceProfile:
    return load_profile(shared_data / PROFILE)


@dataclass
class Reference:
    """The raw npz and independent interpolants (scipy PCHIP; rows blended linearly in context)."""

    p: dict[str, np.ndarray]
    d: dict[str, np.ndarray]

    def prefill_thpt(self, isl: float) -> float:
        return float(PchipInterpolator(self.p["prefill_isl"], self.p["prefill_thpt_per_gpu"])(isl))

    def prefill_ttft(self, isl: float) -> float:
        return float(PchipInterpolator(self.p["prefill_isl"], self.p["prefill_ttft"])(isl))

    def _row_itl(self, ctx: float) -> tuple[object, float, float]:
        """Row ``ctx``'s own ITL over the batch per KV token ``m = kv/ctx``: the measured ITL
        lifted to its running maximum, PCHIP inside, held below, its last secant beyond."""
        sel = self.d["y_context_length"] == ctx
        order = np.argsort(self.d["x_kv_usage"][sel])
        kv = self.d["x_kv_usage"][sel][order]
        m = kv / ctx
        y = np.maximum.accumulate(self.d["z_itl"][sel][order])
        inner = PchipInterpolator(m, y, extrapolate=False)
        slope = max(0.0, (y[-1] - y[-2]) / (m[-1] - m[-2]))

        def own(q: np.ndarray) -> np.ndarray:
            out = inner(np.clip(q, m[0], m[-1]))
            return np.where(q > m[-1], y[-1] + slope * (q - m[-1]), out)

        return own, float(kv[0]), float(kv[-1])

    def decode_best(self, itl: float, ctx: float) -> float | None:
        """Max throughput/GPU with ITL <= itl at ctx, from first principles: on a fine kv grid,
        ITL at an equal batch (``m = kv/ctx``) from the rows — each the highest of its own and
        the shorter-context rows' curves — blended linearly in context, and throughput = requests
        in flight / ITL = ``kv·max_kv_tokens/ctx / (ITL/1000)`` (TP1: per engine = per GPU). The
        profile's measured throughput column agrees with this within ~2.5 %."""
        ctxs = np.unique(self.d["y_context_length"])
        j = int(np.searchsorted(ctxs, ctx, side="right") - 1)
        k = min(j + 1, len(ctxs) - 1)
        a, b = ctxs[j], ctxs[k]
        w = 0.0 if a == b else (ctx - a) / (b - a)
        rows = [self._row_itl(c) for c in ctxs]
        (_, la, ha), (_, lb, hb) = rows[j], rows[k]
        kv = np.linspace((1 - w) * la + w * lb, (1 - w) * ha + w * hb, 20001)
        m = kv / ctx

        def envelope(i: int) -> np.ndarray:
            return np.max([own(m) for own, _, _ in rows[: i + 1]], axis=0)

        itl_v = (1 - w) * envelope(j) + w * envelope(k)
        thpt_v = kv * float(self.d["max_kv_tokens"][0]) / ctx / (itl_v / 1000.0)
        ok = itl_v <= itl
        return float(thpt_v[ok].max()) if ok.any() else None


@pytest.fixture(scope="module")
def ref(shared_data: Path) -> Reference:
    base = shared_data / PROFILE
    with np.load(base / "selected_prefill_interpolation/raw_data.npz") as p:
        pp = {k: p[k] for k in p.files}
    with np.load(base / "selected_decode_interpolation/raw_data.npz") as d:
        dd = {k: d[k] for k in d.files}
    return Reference(pp, dd)


def erlang_c_explicit(c: int, a: float) -> float:
    """Erlang C from its textbook sum (independent of the recursion under test)."""
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


CASES = [
    # rps, isl, osl, ttft, itl, gpus prefill, gpus decode
    (20.0, 3000.0, 150.0, 100.0, 10.0, 1, 1),
    (50.0, 1000.0, 300.0, 200.0, 15.0, 1, 1),
    (5.0, 8000.0, 500.0, 400.0, 20.0, 2, 1),
    (12.0, 2000.0, 800.0, 150.0, 12.0, 1, 2),
]


@pytest.mark.parametrize(("rps", "isl", "osl", "ttft", "itl", "gp", "gd"), CASES)
def test_classic_replicas_match_independent_computation(
    profile: PerformanceProfile,
    ref: Reference,
    rps: float,
    isl: float,
    osl: float,
    ttft: float,
    itl: float,
    gp: int,
    gd: int,
) -> None:
    interval = 60.0
    plan = size_replicas(
        Load(rps * interval, isl, osl, interval),
        profile,
        SLA(ttft, itl),
        EngineGpus(gp, gd),
        Limits(1, None),
        prefill_queueing=False,
    )
    thpt_p = ref.prefill_thpt(isl)
    thpt_d = ref.decode_best(itl, isl + osl / 2)
    assert thpt_d is not None
    assert plan.prefill_thpt_per_gpu == pytest.approx(thpt_p, rel=1e-9)
    assert plan.decode_thpt_per_gpu == pytest.approx(thpt_d, rel=0.04)
    assert plan.prefill == max(1, math.ceil(rps * isl / thpt_p / gp))
    assert plan.decode == max(1, math.ceil(rps * osl / thpt_d / gd))
    assert plan.expected_ttft_ms == pytest.approx(ref.prefill_ttft(isl), rel=1e-9)
    assert plan.expected_itl_ms <= itl


def test_issue_example_is_two_prefill_one_decode(profile: PerformanceProfile) -> None:
    # the issue's example (classic and queueing-aware agree here: M/D/2 mean TTFT is ~78 ms)
    for queueing in (False, True):
        plan = size_replicas(
            Load(1200, 3000, 150, 60),
            profile,
            SLA(100, 10),
            EngineGpus(),
            Limits(1, 8),
            prefill_queueing=queueing,
        )
        assert (plan.prefill, plan.decode) == (2, 1)


@pytest.mark.parametrize(("rps", "isl", "osl", "ttft", "itl", "gp", "gd"), CASES)
@pytest.mark.parametrize("quantile", [None, 0.9])
def test_queueing_prefill_matches_independent_mdc(
    profile: PerformanceProfile,
    ref: Reference,
    rps: float,
    isl: float,
    osl: float,
    ttft: float,
    itl: float,
    gp: int,
    gd: int,
    quantile: float | None,
) -> None:
    plan = size_replicas(
        Load(rps * 60, isl, osl, 60),
        profile,
        SLA(ttft, itl),
        EngineGpus(gp, gd),
        Limits(1, None),
        ttft_quantile=quantile,
    )
    a = rps * isl / (ref.prefill_thpt(isl) * gp)
    s = ref.prefill_ttft(isl)
    c = math.ceil(a)
    while True:
        if c > a:
            pc = erlang_c_explicit(c, a)
            if quantile is None:
                ok = s + 0.5 * pc * s / (c - a) <= ttft
            else:
                ok = pc * math.exp(-2 * (c - a) * (ttft - s) / s) <= 1 - quantile
            if ok:
                break
        c += 1
    assert plan.prefill == max(1, c)
    assert plan.prefill >= max(1, math.ceil(a))
    if quantile is None:
        assert plan.expected_ttft_queued_ms <= ttft


def test_p_correction_above_one_grows_prefill_only_with_queueing_model(
    profile: PerformanceProfile,
) -> None:
    load = Load(3000, 3000, 150, 60)
    kw = {"engines": EngineGpus(), "limits": Limits(1, None)}
    base = size_replicas(load, profile, SLA(200, 10), **kw)
    slow = size_replicas(load, profile, SLA(200, 10), p_correction=1.5, **kw)
    assert slow.prefill > base.prefill
    classic = size_replicas(load, profile, SLA(200, 10), prefill_queueing=False, **kw)
    classic_slow = size_replicas(
        load, profile, SLA(200, 10), p_correction=1.5, prefill_queueing=False, **kw
    )
    assert classic_slow.prefill == classic.prefill  # Dynamo's min(1, p_cf)
    fast = size_replicas(
        load, profile, SLA(200, 10), p_correction=0.5, prefill_queueing=False, **kw
    )
    assert fast.prefill <= classic.prefill


def test_d_correction_above_one_grows_decode(profile: PerformanceProfile) -> None:
    load = Load(6000, 3000, 300, 60)
    base = size_replicas(load, profile, SLA(200, 15), EngineGpus(), Limits(1, None))
    slow = size_replicas(load, profile, SLA(200, 15), EngineGpus(), Limits(1, None), 1.0, 1.4)
    assert slow.decode > base.decode
    assert slow.expected_itl_ms <= 15.0 + 1e-9


def test_infeasible_itl_names_nearest_achievable(
    profile: PerformanceProfile, ref: Reference
) -> None:
    with pytest.raises(InfeasibleSLAError, match=r"lowest achievable ITL there is 4\.4\d ms"):
        size_replicas(Load(1200, 3000, 150, 60), profile, SLA(100, 3), EngineGpus(), Limits())
    assert ref.decode_best(3, 3075) is None
    plan = size_replicas(
        Load(1200, 3000, 150, 60), profile, SLA(100, 3), EngineGpus(), Limits(), best_effort=True
    )
    assert plan.decode >= 1
    assert any("lowest ITL" in n for n in plan.notes)


def test_corrected_itl_below_surface_is_best_effort_not_error(profile: PerformanceProfile) -> None:
    plan = size_replicas(
        Load(1200, 3000, 150, 60), profile, SLA(100, 5), EngineGpus(), Limits(), 1.0, 3.0
    )
    assert any("lowest ITL" in n for n in plan.notes)


def test_infeasible_ttft(profile: PerformanceProfile) -> None:
    with pytest.raises(InfeasibleSLAError, match="TTFT target 30 ms"):
        size_replicas(Load(1200, 3000, 150, 60), profile, SLA(30, 10), EngineGpus(), Limits())
    plan = size_replicas(
        Load(1200, 3000, 150, 60), profile, SLA(30, 10), EngineGpus(), Limits(), best_effort=True
    )
    assert plan.prefill >= 2
    assert plan.notes


def test_clamped_lookups_are_reported(profile: PerformanceProfile) -> None:
    plan = size_replicas(Load(60, 50_000, 100, 60), profile, SLA(2000, 50), EngineGpus(), Limits())
    assert any("prefill: ISL 50000 above the measured range" in n for n in plan.notes)
    assert any(n.startswith("decode: context") for n in plan.notes)


def test_idle_load_needs_nothing(profile: PerformanceProfile) -> None:
    plan = size_replicas(
        Load(0, 3000, 150, 60), profile, SLA(100, 10), EngineGpus(), Limits(2, None)
    )
    assert (plan.prefill_needed, plan.decode_needed) == (0, 0)
    assert (plan.prefill, plan.decode) == (2, 2)


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: SLA(0, 10), "ttft_ms"),
        (lambda: SLA(100, float("nan")), "itl_ms"),
        (lambda: Load(-1, 1, 1, 60), "requests"),
        (lambda: Load(1, 1, 1, 0), "interval_s"),
        (lambda: Load(60, 0, 150, 60), "isl"),
        (lambda: Load(60, 3000, 0.5, 60), "osl"),
        (lambda: Load(60, 2e9, 150, 60), "isl"),
        (lambda: Load(60 * MAX_RATE_RPS * 1.01, 3000, 150, 60), "MAX_RATE_RPS"),
        (lambda: Load(1, 3000, 150, 1e-300), "MAX_RATE_RPS"),
        (lambda: EngineGpus(0, 1), "prefill"),
        (lambda: Limits(0, None), "min_endpoint"),
        (lambda: Limits(1, 0), "max_gpu_budget"),
    ],
)
def test_bad_values_are_input_errors(make: object, field: str) -> None:
    with pytest.raises(InputError, match=field):
        make()  # type: ignore[operator]


def test_check_budget() -> None:
    check_budget(EngineGpus(2, 1), Limits(2, 6))
    with pytest.raises(InfeasibleSLAError, match="need 6 GPUs"):
        check_budget(EngineGpus(2, 1), Limits(2, 5))
    check_budget(EngineGpus(8, 8), Limits(5, None))


needs = st.integers(0, 200)
gpus = st.integers(1, 8)


@given(needs, needs, gpus, gpus, st.integers(1, 4), st.integers(1, 400))
def test_limits_invariants(p: int, d: int, gp: int, gd: int, floor: int, budget: int) -> None:
    assume(floor * (gp + gd) <= budget)
    limits = Limits(floor, budget)
    pp, dd, clamped = apply_limits(p, d, EngineGpus(gp, gd), limits)
    assert pp >= floor and dd >= floor
    assert pp * gp + dd * gd <= budget
    assert pp <= max(p, floor) and dd <= max(d, floor)  # the clamp never grows a role
    assert clamped == (max(p, floor) * gp + max(d, floor) * gd > budget)
    if not clamped:
        assert (pp, dd) == (max(p, floor), max(d, floor))
    else:  # no spare room left that a role below its need could use
        spare = budget - pp * gp - dd * gd
        assert not (pp < max(p, floor) and spare >= gp)
        assert not (dd < max(d, floor) and spare >= gd)


@given(needs, needs, st.integers(1, 20), gpus, gpus, st.integers(1, 2), st.integers(1, 400))
def test_budget_split_is_monotone_in_the_need(
    p: int, d: int, more: int, gp: int, gd: int, floor: int, budget: int
) -> None:
    # the clamp depends on the need alone: more need for a role never gives it fewer engines,
    # nor the other role more
    assume(floor * (gp + gd) <= budget)
    engines, limits = EngineGpus(gp, gd), Limits(floor, budget)
    pp, dd, _ = apply_limits(p, d, engines, limits)
    p2, d2, _ = apply_limits(p + more, d, engines, limits)
    assert p2 >= pp and d2 <= dd
    p3, d3, _ = apply_limits(p, d + more, engines, limits)
    assert d3 >= dd and p3 <= pp


@settings(max_examples=40, deadline=None)
@given(
    st.floats(0, 200),
    st.floats(1.0, 3.0),
    st.floats(100, 12_000),
    st.floats(10, 2000),
    st.booleans(),
)
def test_replicas_monotone_in_load(
    profile: PerformanceProfile, rps: float, factor: float, isl: float, osl: float, queue: bool
) -> None:
    sla, eng, lim = SLA(500, 30), EngineGpus(), Limits(1, None)
    lo = size_replicas(Load(rps * 60, isl, osl, 60), profile, sla, eng, lim, prefill_queueing=queue)
    hi = size_replicas(
        Load(rps * factor * 60, isl, osl, 60), profile, sla, eng, lim, prefill_queueing=queue
    )
    assert hi.prefill >= lo.prefill and hi.decode >= lo.decode


@given(st.integers(1, 40), st.floats(0.01, 0.999))
def test_erlang_c_matches_textbook_formula(c: int, rho: float) -> None:
    a = rho * c
    assert erlang_c(c, a) == pytest.approx(erlang_c_explicit(c, a), rel=1e-9, abs=1e-12)
    if c == 1:
        assert erlang_c(1, a) == pytest.approx(rho)


def test_md1_mean_ttft_is_pollaczek_khinchine() -> None:
    s, rho = 50.0, 0.6
    assert expected_prefill_ttft_ms(1, rho, s) == pytest.approx(s + rho * s / (2 * (1 - rho)))
    assert math.isinf(expected_prefill_ttft_ms(2, 2.0, s))


@given(st.integers(1, 16), st.floats(0.05, 0.95), st.floats(0.5, 3.0), st.floats(10, 500))
def test_prefill_slowdown_recovers_the_factor(servers: int, rho: float, c: float, s: float) -> None:
    load = rho * servers / 3.0  # at profile speed, so c*load stays below saturation
    observed = expected_prefill_ttft_ms(servers, c * load, c * s)
    got = prefill_slowdown(observed, servers, load, s, 0.5, 3.0)
    assert got == pytest.approx(c, rel=1e-6)


def test_prefill_slowdown_edges() -> None:
    assert prefill_slowdown(80, 1, 0.0, 40, 0.5, 3.0) == pytest.approx(2.0)
    assert prefill_slowdown(80, 2, 2.5, 40, 0.5, 3.0) is None  # saturated at profile speed
    assert prefill_slowdown(1, 2, 0.5, 40, 0.5, 3.0) == 0.5
    assert prefill_slowdown(1e9, 2, 0.5, 40, 0.5, 3.0) == 3.0
    assert prefill_slowdown(80, 2, 1.5, 40, 0.5, 3.0, queueing=False) == pytest.approx(2.0)


# --- O(log load) sizing -------------------------------------------------------------------------


quantiles = st.one_of(st.none(), st.floats(0.5, 0.999))


@settings(max_examples=150, deadline=None)
@given(st.floats(1e-3, 1e4), st.floats(1.0, 1000.0), st.floats(1.01, 10.0), quantiles)
def test_prefill_engines_match_the_linear_search(
    load: float, s: float, ratio: float, q: float | None
) -> None:
    got = sla_module._prefill_engines(load, s, s * ratio, q)
    assert got == linear_prefill_engines(load, s, s * ratio, q)


@settings(max_examples=100, deadline=None)
@given(st.floats(1e-3, 1e12), st.floats(1.0, 1e3), st.floats(1.01, 10.0), quantiles)
def test_prefill_engines_monotone_in_load(
    load: float, factor: float, ratio: float, q: float | None
) -> None:
    lo = sla_module._prefill_engines(load, 100.0, 100.0 * ratio, q)
    hi = sla_module._prefill_engines(load * factor, 100.0, 100.0 * ratio, q)
    assert load < lo <= hi


@settings(max_examples=200, deadline=None)
@given(st.integers(1001, 20_000), st.floats(0.3, 0.99999))
def test_erlang_c_large_pools_match_the_recursion(c: int, rho: float) -> None:
    # above 1000 servers Erlang B comes from the Poisson pmf/cdf ratio, not the recursion
    assert erlang_c(c, rho * c) == pytest.approx(linear_erlang_c(c, rho * c), rel=1e-9)


@pytest.mark.parametrize("a", [1e6, 1e9, 1e12, 1e15, 1e18])
@pytest.mark.parametrize("beta", [0.25, 1.0, 3.0])
def test_erlang_c_at_huge_loads_is_the_halfin_whitt_limit(a: float, beta: float) -> None:
    # c = a + beta·sqrt(a) servers: C -> 1 / (1 + beta·Phi(beta)/phi(beta)) as a -> inf
    # (Halfin & Whitt 1981); finite and exact to O(1/sqrt(a)) where the O(c) loop never ends
    c = math.ceil(a + beta * math.sqrt(a))
    phi = math.exp(-beta * beta / 2) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + math.erf(beta / math.sqrt(2)))
    limit = 1 / (1 + beta * cdf / phi)
    got = erlang_c(c, a)
    assert math.isfinite(got)
    assert got == pytest.approx(limit, rel=10 / math.sqrt(a))


@pytest.mark.parametrize("exponent", range(1, 16))
@pytest.mark.parametrize("q", [None, 0.99])
def test_prefill_engine_search_is_logarithmic(
    monkeypatch: pytest.MonkeyPatch, exponent: int, q: float | None
) -> None:
    calls = []
    real = sla_module.erlang_c

    def counting(servers: int, load: float) -> float:
        calls.append(servers)
        return real(servers, load)

    monkeypatch.setattr(sla_module, "erlang_c", counting)
    load = 10.0**exponent + 0.5
    s, target = 100.0, 100.1  # tight slack: the answer is far above the load, a wide search
    got = sla_module._prefill_engines(load, s, target, q)
    excess = got - math.floor(load)
    assert excess >= 2
    assert 1 <= len(calls) <= 2 * math.log2(excess) + 3

    def ok(k: int) -> bool:  # the criterion, from its definition
        c, gap = real(k, load), k - load
        if q is None:
            return s + 0.5 * c * s / gap <= target
        return c * math.exp(-2 * gap * (target - s) / s) <= 1 - q

    assert ok(got) and not ok(got - 1)  # the smallest pool that meets it


def test_decision_at_the_maximum_rate(profile: PerformanceProfile) -> None:
    load = Load(MAX_RATE_RPS * 60, 3000, 150, 60)
    plan = size_replicas(load, profile, SLA(200, 10), EngineGpus(4, 4), Limits(1, None))
    work = MAX_RATE_RPS * 3000 / (plan.prefill_thpt_per_gpu * 4)
    assert work < plan.prefill <= work * (1 + 1e-6)
    assert plan.decode == math.ceil(MAX_RATE_RPS * 150 / (plan.decode_thpt_per_gpu * 4) - 1e-9)
    assert math.isfinite(plan.expected_ttft_queued_ms)
    assert plan.expected_ttft_ms < plan.expected_ttft_queued_ms <= 200.0
