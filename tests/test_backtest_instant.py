"""Hand-computed runs of the baseline ``instant`` policy and the engine's round semantics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from builders import book_of, path_of

from backtest import (
    Instant,
    LinearImpact,
    NoImpact,
    simulate,
    simulate_dense,
)

# Four positions with 1 unit of collateral each, LT 0.8, bonus 5 %:
#   A: d=76 → L = 76/0.8 = 95;  B: d=72 → L = 90;  C: d=68 → L = 85;  D: d=40 → L = 50.
CASCADE = book_of([1, 1, 1, 1], [76, 72, 68, 40])


def test_three_position_cascade_under_permanent_linear_impact():
    # Step 0 at p=100: nothing. Step 1 at p_exo=94, permanent linear impact, depth 1000:
    #   round 1, p=94 < 95: A liquidated; seizes 76·1.05/94 = 0.8489 units (< 1, no bad debt),
    #            sold 0.8489·94 = 79.8 USD → I = 79.8/1000 = 0.0798 → p = 94·e^-0.0798 = 86.79
    #   round 2, p=86.79 < 90: B liquidated; sold 72·1.05 = 75.6 → I = 0.1554 → p = 80.47
    #   round 3, p=80.47 < 85: C liquidated; sold 68·1.05 = 71.4 → I = 0.2268 → p = 74.93
    #   round 4, p=74.93 > 50 (D): nothing → fixed point. Cascade depth 3.
    # Without impact only A is liquidated: induced = 72 + 68 = 140, amplification 216/76.
    res = simulate(CASCADE, path_of([100, 94, 94]), LinearImpact(depth_usd=1000.0), Instant())
    m = res.metrics
    i_end = 0.0798 + 0.0756 + 0.0714
    assert m.n_liquidations == 3
    assert m.liquidated_usd == pytest.approx(216.0)
    assert m.induced_usd == pytest.approx(140.0)
    assert m.n_induced == 2
    assert m.amplification == pytest.approx(216.0 / 76.0)
    assert m.max_cascade_depth == 3
    assert m.cascade_episodes == 1
    assert m.bad_debt_usd == 0.0
    assert m.borrower_loss_usd == pytest.approx(0.05 * 216.0)
    assert m.liquidator_profit_usd == pytest.approx(0.05 * 216.0)
    assert m.sold_usd == pytest.approx(1.05 * 216.0)
    assert m.peak_price_deviation == pytest.approx(1 - math.exp(-i_end))
    assert m.final_price == pytest.approx(94 * math.exp(-i_end))
    assert m.time_to_clear_steps == 1 and m.cleared
    cf = res.counterfactual
    assert cf.liquidated_usd == pytest.approx(76.0) and cf.max_cascade_depth == 1
    assert cf.induced_usd == 0.0 and cf.amplification == 1.0
    steps = res.steps
    assert steps["cascade_depth"].to_list() == [0, 3, 0]
    assert steps["rounds"].to_list() == [0, 3, 0]
    assert steps["impact"][1] == pytest.approx(i_end)
    assert steps["p_open"][2] == pytest.approx(94 * math.exp(-i_end))  # permanent
    np.testing.assert_allclose(res.position_induced_usd, [0, 72, 68, 0])
    np.testing.assert_allclose(res.position_liquidated_usd, [76, 72, 68, 0])


def test_impact_half_life_decays_between_steps():
    # Half-life 1 step: I halves at the start of the next step.
    impact = LinearImpact(depth_usd=1000.0, half_life_steps=1)
    res = simulate(CASCADE, path_of([100, 94, 94]), impact, Instant())
    i_end = 0.0798 + 0.0756 + 0.0714
    assert res.steps["impact"][2] == pytest.approx(i_end / 2)
    assert res.metrics.final_price == pytest.approx(94 * math.exp(-i_end / 2))


def test_bad_debt_when_collateral_worth_less_than_debt_plus_bonus():
    # c=1, d=95, LT=1 → L=95. At p=90: wants 95·1.05/90 = 1.108 units > 1 → seizes all 1 unit,
    # covers 90/1.05 = 85.714 of debt; the other 9.286 is bad debt.
    book = book_of([1.0], [95.0], lt=1.0)
    res = simulate(book, path_of([100, 90]), NoImpact(), Instant())
    m = res.metrics
    assert m.bad_debt_usd == pytest.approx(95 - 90 / 1.05)
    assert m.liquidated_usd == pytest.approx(95.0)
    assert m.borrower_loss_usd == pytest.approx(90 - 90 / 1.05)  # bonus on the covered part
    c = res.conservation
    assert c.collateral_left == 0.0 and c.debt_outstanding == 0.0
    assert c.debt_repaid + c.debt_bad == pytest.approx(95.0)


def test_close_factor_half_liquidates_in_rounds():
    # Aave-style close factor 0.5: c=1, d=76, LT 0.8, p=94 (HF 0.989). Round 1 repays 38,
    # seizes 38·1.05/94 = 0.42447 → c=0.57553, d=38, HF = 0.57553·94·0.8/38 = 1.139 > 1: done.
    book = book_of([1.0], [76.0])
    res = simulate(book, path_of([100, 94]), NoImpact(), Instant(close_factor=0.5))
    m = res.metrics
    assert m.n_liquidations == 1
    assert m.liquidated_usd == pytest.approx(38.0)
    c = res.conservation
    assert c.debt_outstanding == pytest.approx(38.0)
    assert c.collateral_left == pytest.approx(1 - 38 * 1.05 / 94)
    # below HF 0.95 the whole debt goes (Aave v3): at p=80, HF = 0.842
    res = simulate(
        book, path_of([100, 80]), NoImpact(), Instant(close_factor=0.5, full_close_below_hf=0.95)
    )
    assert res.metrics.liquidated_usd == pytest.approx(76.0)


def test_protocol_fee_splits_the_bonus():
    res = simulate(CASCADE, path_of([100, 94]), NoImpact(), Instant(protocol_fee=0.1))
    bonus = 76 * 0.05
    assert res.metrics.protocol_revenue_usd == pytest.approx(0.1 * bonus)
    assert res.metrics.liquidator_profit_usd == pytest.approx(0.9 * bonus)


def test_positions_unhealthy_at_start_and_degenerate_positions():
    # no collateral but debt → L = inf, liquidated at once with full bad debt;
    # no debt → never liquidated
    book = book_of([0.0, 5.0, 0.0], [10.0, 0.0, 0.0])
    res = simulate(book, path_of([100, 100]), NoImpact(), Instant())
    assert res.metrics.bad_debt_usd == pytest.approx(10.0)
    assert res.metrics.n_liquidations == 1
    assert res.steps["n_liquidations"].to_list() == [1, 0]


def test_dense_engine_agrees_on_the_cascade():
    args = (CASCADE, path_of([100, 94, 94]), LinearImpact(depth_usd=1000.0), Instant())
    fast, dense = simulate(*args), simulate_dense(*args)
    assert fast.steps.equals(dense.steps)
    assert fast.metrics == dense.metrics
    assert fast.engine == "fast" and dense.engine == "dense"
