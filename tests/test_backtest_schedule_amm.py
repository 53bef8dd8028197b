"""Issue #15: Almgren–Chriss ``schedule``, ``amm_bands`` soft liquidation, batch sale rate.

Synthetic inputs with answers computed by hand (fast tier).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backtest import (
    Batch,
    Book,
    LinearImpact,
    NoImpact,
    PricePath,
    SqrtImpact,
    StepTooCoarseError,
    build_policy,
    simulate,
    simulate_dense,
    synthetic_book,
    synthetic_crash_path,
)
from backtest.errors import PolicyConfigError
from backtest.optimal_execution import (
    ac_holdings,
    ac_kappa,
    execution_objective,
    numeric_holdings,
    step_sigma,
)
from backtest.policies.amm_bands import AmmBands, converted_fraction
from backtest.policies.schedule import Schedule, schedule_holdings, schedule_impact_params
from backtest.search import SPACES, Scenario, build, library_params

SIG = step_sigma(0.05, 60.0)


def one_position(c: float = 1.0, d: float = 80.0, lt: float = 0.8, bonus: float = 0.05) -> Book:
    return Book(
        position_id=np.array([0]),
        collateral=np.array([c]),
        debt=np.array([d]),
        liquidation_threshold=np.array([lt]),
        bonus=np.array([bonus]),
    )


def path_of(prices: list[float], step: int = 60) -> PricePath:
    return PricePath(ts=np.arange(len(prices)) * int(step), price=np.array(prices, dtype=float))


# --------------------------------------------------------------------------- theory
@pytest.mark.parametrize("m", [5, 20, 60])
@pytest.mark.parametrize(("lam", "gamma"), [(1e-6, 0.0), (2e-5, 0.0), (1e-3, 0.0), (2e-5, 5e-9)])
def test_closed_form_equals_numeric_optimum_on_linear_impact(m, lam, gamma):
    eta = 1e-8
    closed = ac_holdings(m, ac_kappa(lam, SIG, eta, gamma))
    numeric = numeric_holdings(
        m, 1e7, risk_aversion=lam, sigma=SIG, impact="linear", eta=eta, gamma=gamma
    )
    np.testing.assert_allclose(numeric, closed, atol=1e-6)
    # and the closed form is the minimum: any perturbation that keeps the sum costs more
    n = -np.diff(closed) * 1e7
    best = execution_objective(
        n, 1e7, risk_aversion=lam, sigma=SIG, impact="linear", eta=eta, gamma=gamma
    )
    for j in range(m - 1):
        bumped = n.copy()
        bumped[j] += 1e4
        bumped[j + 1] -= 1e4
        assert (
            execution_objective(
                bumped, 1e7, risk_aversion=lam, sigma=SIG, impact="linear", eta=eta, gamma=gamma
            )
            > best
        )


def test_zero_risk_aversion_is_the_straight_line():
    assert ac_kappa(0.0, SIG, 1e-8) == 0.0
    np.testing.assert_allclose(ac_holdings(8, 0.0), np.linspace(1.0, 0.0, 9))
    np.testing.assert_allclose(ac_holdings(8, 1e-12), np.linspace(1.0, 0.0, 9), atol=1e-9)
    for impact in ("linear", "sqrt"):
        x = numeric_holdings(
            8, 1e7, risk_aversion=0.0, sigma=SIG, impact=impact, eta=1e-8, sqrt_coef=1e-6
        )
        np.testing.assert_allclose(x, np.linspace(1.0, 0.0, 9), atol=1e-6)


def test_closed_form_hand_values():
    # κ from 2(cosh κ − 1) = λσ²/η: λσ²/η = 2(cosh 0.5 − 1) gives κ = 0.5 exactly
    eta, sigma = 1e-8, 1e-3
    lam = 2.0 * (math.cosh(0.5) - 1.0) * eta / sigma**2
    assert ac_kappa(lam, sigma, eta) == pytest.approx(0.5, rel=1e-12)
    x = ac_holdings(4, 0.5)
    assert x[1] == pytest.approx(math.sinh(1.5) / math.sinh(2.0), rel=1e-12)
    assert x[2] == pytest.approx(math.sinh(1.0) / math.sinh(2.0), rel=1e-12)
    # permanent impact: η̃ = η − γ/2
    assert ac_kappa(lam, sigma, 2 * eta, gamma=2 * eta) == pytest.approx(0.5, rel=1e-12)
    with pytest.raises(ValueError, match="must be > 0"):
        ac_kappa(lam, sigma, eta, gamma=2 * eta)


def test_sqrt_schedule_is_more_urgent_with_risk_aversion_and_beats_the_line():
    c = 1.0 * 0.05 / math.sqrt(3e8)
    xs = [
        numeric_holdings(12, 5e6, risk_aversion=lam, sigma=SIG, impact="sqrt", sqrt_coef=c)
        for lam in (0.0, 1e-6, 1e-5, 1e-4)
    ]
    first = [x[1] for x in xs]
    assert all(a > b for a, b in zip(first, first[1:], strict=False))  # sells faster
    for lam, x in zip((1e-6, 1e-5, 1e-4), xs[1:], strict=True):
        opt = execution_objective(
            -np.diff(x) * 5e6, 5e6, risk_aversion=lam, sigma=SIG, impact="sqrt", sqrt_coef=c
        )
        line = execution_objective(
            np.full(12, 5e6 / 12), 5e6, risk_aversion=lam, sigma=SIG, impact="sqrt", sqrt_coef=c
        )
        assert opt < line


def test_sqrt_schedule_longer_than_the_numeric_grid_is_interpolated():
    cfg = Schedule(horizon_steps=100, risk_aversion=1e-5, impact_model="sqrt", adv_usd=3e8)
    x = schedule_holdings(cfg, 60.0, 5e6)
    assert x.shape == (101,) and x[0] == 1.0 and x[-1] == 0.0
    assert np.all(np.diff(x) <= 1e-12)
    assert not x.flags.writeable


# --------------------------------------------------------------------------- schedule policy
def test_schedule_replays_the_trajectory_on_a_flat_price():
    book = one_position()  # L = 80 / (1 · 0.8) = 100
    prices = [110.0, 99.0] + [99.0] * 6
    cfg = Schedule(horizon_steps=4, risk_aversion=0.0)
    res = simulate(book, path_of(prices), NoImpact(), cfg)
    sold = res.steps["sold_usd"].to_numpy()
    # seized 80·1.05/99 units at step 1, sold a quarter at each of steps 2..5
    units = 80.0 * 1.05 / 99.0
    np.testing.assert_allclose(sold[2:6], units * 99.0 / 4.0)
    assert sold[1] == 0.0 and sold[6:].sum() == 0.0
    # with risk aversion, the holdings follow sinh(κ(M−k))/sinh(κM)
    lam = 1e-3
    cfg2 = Schedule(horizon_steps=4, risk_aversion=lam, depth_usd=1e6)
    res2 = simulate(book, path_of(prices), NoImpact(), cfg2)
    x = ac_holdings(4, ac_kappa(lam, SIG, 1e-6))
    np.testing.assert_allclose(
        res2.steps["sold_usd"].to_numpy()[2:6], units * 99.0 * -np.diff(x), rtol=1e-12
    )
    assert x[1] < 0.75  # front-loaded


def test_schedule_factory_horizon_in_seconds_and_bar_check():
    p = build_policy("schedule", {"horizon_seconds": 7_200.0}, step_seconds=60.0)
    assert p.horizon_steps == 120
    hourly = build_policy("schedule", step_seconds=3_600.0)
    assert hourly.horizon_steps == 1 and hourly.clamped_to_bar == ()
    with pytest.raises(StepTooCoarseError):
        build_policy("schedule", {"horizon_seconds": 600.0}, step_seconds=3_600.0)
    with pytest.raises(PolicyConfigError, match="impact_model"):
        Schedule(impact_model="cubic")
    with pytest.raises(PolicyConfigError, match="permanent_depth_usd"):
        Schedule(depth_usd=1e8, permanent_depth_usd=4e7)


def test_schedule_takes_the_scenario_impact():
    sq = SqrtImpact(sigma_day=0.07, adv_usd=2e9, Y=0.8)
    assert schedule_impact_params(sq) == {
        "impact_model": "sqrt",
        "sigma_day": 0.07,
        "adv_usd": 2e9,
        "impact_y": 0.8,
    }
    assert schedule_impact_params(LinearImpact(depth_usd=5e7)) == {
        "impact_model": "linear",
        "depth_usd": 5e7,
    }
    assert schedule_impact_params(NoImpact()) == {}
    book = synthetic_book(50, price=2000.0, seed=1, total_debt=1e6)
    sc = Scenario(
        event_id="e", book=book, path=synthetic_crash_path(100, seed=1), impact=sq, base={}
    )
    pol = build(sc, "schedule", {"horizon_seconds": 1_200.0, "risk_aversion": 1e-7})
    assert isinstance(pol, Schedule)
    assert (pol.impact_model, pol.sigma_day, pol.horizon_steps) == ("sqrt", 0.07, 20)


# --------------------------------------------------------------------------- amm_bands
def test_converted_fraction_by_hand():
    top = np.array([100.0])
    # one band [99, 100]: half way through at 99.5
    assert converted_fraction(np.array([99.5]), top, 100.0, 1)[0] == pytest.approx(0.5)
    assert converted_fraction(np.array([100.0]), top, 100.0, 1)[0] == 0.0
    assert converted_fraction(np.array([98.0]), top, 100.0, 1)[0] == 1.0
    # two bands [99, 100], [98.01, 99]: one full band and half of the second
    mid2 = (99.0 + 98.01) / 2
    assert converted_fraction(np.array([mid2]), top, 100.0, 2)[0] == pytest.approx(0.75)
    assert converted_fraction(np.array([99.0]), top, 100.0, 2)[0] == pytest.approx(0.5)


def test_single_band_partial_conversion_by_hand():
    # c = 1, d = 80, LT 0.8: bands start at L = 100; one band [99, 100]; fee 1 %
    res = simulate(
        one_position(), path_of([110.0, 99.5]), NoImpact(), AmmBands(n_bands=1, fee=0.01)
    )
    s = res.steps
    x = 0.5 * 99.5 * 0.99  # half the collateral converted at the market less the fee
    assert s["sold_usd"][1] == pytest.approx(0.5 * 99.5)
    assert s["borrower_loss_usd"][1] == pytest.approx(0.01 * 0.5 * 99.5)
    assert s["liquidator_profit_usd"][1] == pytest.approx(0.01 * 0.5 * 99.5)
    m = res.metrics
    assert m.bad_debt_usd == 0.0
    # at the end the bands' debt asset repays debt: 80 − x left
    assert m.liquidated_usd == pytest.approx(x)
    c = res.conservation
    assert c.collateral_left == pytest.approx(0.5) and c.collateral_sold == pytest.approx(0.5)
    assert c.debt_outstanding == pytest.approx(80.0 - x)
    assert abs(c.debt_error) < 1e-9 and abs(c.collateral_error) < 1e-12


def test_single_band_recovery_converts_back_by_hand():
    res = simulate(
        one_position(), path_of([110.0, 99.5, 100.5]), NoImpact(), AmmBands(n_bands=1, fee=0.01)
    )
    x = 0.5 * 99.5 * 0.99
    back = x / (100.5 * 1.01)  # all the band's debt asset buys collateral back at p·(1 + fee)
    c = res.conservation
    assert c.collateral_left == pytest.approx(0.5 + back, rel=1e-12)
    assert c.collateral_sold == pytest.approx(0.5 - back, rel=1e-12)
    assert c.debt_outstanding == pytest.approx(80.0)  # the debt never grew
    assert res.metrics.liquidated_usd == pytest.approx(0.0, abs=1e-9)
    assert res.metrics.borrower_loss_usd == pytest.approx(0.01 * (0.5 * 99.5 + back * 100.5))
    assert res.steps["sold_usd"][2] == 0.0  # buy-backs do not feed the (sell-side) impact


def test_crossing_all_bands_then_netting_closes_the_debt():
    # two bands down to 98.01; the market at 97 converts everything at 97 · (1 − fee)
    res = simulate(
        one_position(), path_of([110.0, 97.0]), NoImpact(), AmmBands(n_bands=2, fee=0.01)
    )
    c = res.conservation
    assert c.collateral_left == 0.0 and c.collateral_sold == pytest.approx(1.0)
    # health c·p + x = 96.03 ≥ 80 · 1.05: no hard liquidation; x repays the 80 at the end
    assert res.metrics.bad_debt_usd == 0.0
    assert c.debt_outstanding == pytest.approx(0.0) and res.metrics.liquidated_usd == 80.0


def test_gap_below_zero_health_is_a_hard_liquidation_by_hand():
    res = simulate(
        one_position(), path_of([110.0, 50.0]), NoImpact(), AmmBands(n_bands=1, fee=0.01)
    )
    # all collateral converted at 50 · 0.99 = 49.5 < 80 · 1.05: x repays 49.5, the rest is bad
    m = res.metrics
    assert m.bad_debt_usd == pytest.approx(80.0 - 49.5)
    assert m.liquidated_usd == pytest.approx(80.0)
    assert res.steps["sold_usd"][1] == pytest.approx(50.0)
    assert res.conservation.debt_outstanding == 0.0


def test_amm_defaults_and_checks():
    p = build_policy("amm_bands", step_seconds=60.0)
    assert (p.A, p.n_bands, p.fee) == (100.0, 10, 0.006)
    with pytest.raises(PolicyConfigError, match="A=1"):
        AmmBands(A=1.0)
    with pytest.raises(PolicyConfigError, match="n_bands"):
        AmmBands(n_bands=0)
    assert library_params("amm_bands", {"n_bands": 9.6}, step_seconds=60.0, total_debt=1.0) == {
        "n_bands": 10
    }


# --------------------------------------------------------------------------- batch sale rate
def test_batch_sale_share_liquidates_a_share_of_the_queue():
    n = 10
    book = Book(
        position_id=np.arange(n),
        collateral=np.ones(n),
        debt=np.full(n, 80.0),
        liquidation_threshold=np.full(n, 0.8),
        bonus=np.full(n, 0.05),
    )
    prices = [110.0] + [95.0] * 6
    full = simulate(book, path_of(prices), NoImpact(), Batch(interval_steps=2))
    part = simulate(book, path_of(prices), NoImpact(), Batch(interval_steps=2, sale_share=0.3))
    # clearings at steps 1, 3, 5: all 10 at once; or 30 % of the queue, in priority order up to
    # and including the position that reaches the budget: 240 of 800 → 3; 168 of 560 → 3;
    # 96 of 320 → 2
    assert full.steps["n_liquidations"].to_list() == [0, 10, 0, 0, 0, 0, 0]
    assert part.steps["n_liquidations"].to_list() == [0, 3, 0, 3, 0, 2, 0]
    # deferred positions stay in the book: unhealthy at the end
    assert part.metrics.unhealthy_open_debt_usd == pytest.approx(2 * 80.0)
    assert Batch(sale_share=1.0).params() != Batch().params()
    assert "sale_share" not in Batch().params()  # run ids of the old configurations unchanged
    with pytest.raises(PolicyConfigError):
        Batch(sale_share=0.0)
    assert {d.name for d in SPACES["batch"]} == {"interval_seconds", "sale_share"}


# --------------------------------------------------------------------------- properties
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def cases(draw):
    n = draw(st.integers(1, 15))
    hf = np.array(draw(st.lists(st.floats(0.3, 2.0), min_size=n, max_size=n)))
    debt = np.array(draw(st.lists(st.floats(1.0, 200.0), min_size=n, max_size=n)))
    book = Book(
        position_id=np.arange(n),
        collateral=hf * debt / (100.0 * 0.8),
        debt=debt,
        liquidation_threshold=np.full(n, 0.8),
        bonus=np.full(n, 0.05),
    )
    rets = draw(st.lists(st.floats(-0.1, 0.08), min_size=1, max_size=30))
    path = path_of(list(100.0 * np.exp(np.concatenate([[0.0], np.cumsum(rets)]))))
    impact = draw(
        st.sampled_from(
            [
                NoImpact(),
                LinearImpact(depth_usd=500.0, half_life_steps=3.0),
                SqrtImpact(sigma_day=0.05, adv_usd=1e3),
            ]
        )
    )
    policy = draw(
        st.one_of(
            st.builds(
                AmmBands,
                A=st.floats(2.0, 200.0),
                n_bands=st.integers(1, 20),
                fee=st.floats(0.0, 0.05),
            ),
            st.builds(
                Schedule,
                horizon_steps=st.integers(1, 10),
                risk_aversion=st.sampled_from([0.0, 1e-4, 1e-2]),
                impact_model=st.sampled_from(["linear", "sqrt"]),
                depth_usd=st.just(500.0),
                adv_usd=st.just(1e3),
            ),
            st.builds(Batch, interval_steps=st.integers(1, 5), sale_share=st.floats(0.05, 1.0)),
        )
    )
    return book, path, impact, policy


@SETTINGS
@given(cases())
def test_new_policies_conserve_and_fast_equals_dense(case):
    book, path, impact, policy = case
    fast = simulate(book, path, impact, policy)
    dense = simulate_dense(book, path, impact, policy)
    assert fast.steps.equals(dense.steps) and fast.metrics == dense.metrics
    c = fast.conservation
    scale = max(c.collateral_initial, 1.0)
    assert abs(c.collateral_error) <= 1e-9 * scale
    assert abs(c.seized_error) <= 1e-9 * scale
    assert abs(c.debt_error) <= 1e-9 * max(c.debt_initial, 1.0)
    assert c.collateral_left >= -1e-12 and c.debt_outstanding >= -1e-9
    assert np.all(fast.position_liquidated_usd <= book.debt + 1e-6)
    assert np.all(fast.position_liquidated_usd >= -1e-9)
