"""Impact models: formulas, decay, constant-product derivation, calibration helpers."""

from __future__ import annotations

import math

import pytest

from backtest import CpmmImpact, ImpactConfigError, LinearImpact, NoImpact, SqrtImpact


def test_linear():
    m = LinearImpact(depth_usd=1000.0)
    assert m.apply(0.1, 50.0) == pytest.approx(0.15)
    assert m.state_is_impact and m.impact_of(0.15) == 0.15
    assert m.decay == 1.0
    assert LinearImpact(depth_usd=1.0, half_life_steps=10).decay ** 10 == pytest.approx(0.5)
    # $35M of ETH ≈ 4 % on-chain slippage (Maker, 2021)
    cal = LinearImpact.from_slippage(35e6, 0.04)
    assert 1 - math.exp(-cal.apply(0.0, 35e6)) == pytest.approx(0.04)
    assert cal.params()["model"] == "linear" and cal.params()["half_life_steps"] == "inf"


def test_sqrt_is_a_decaying_cumulative_metaorder():
    m = SqrtImpact(sigma_day=0.05, adv_usd=1e9, Y=0.8, half_life_steps=10.0)
    assert not m.state_is_impact
    q = 4e7
    one = m.impact_of(m.apply(0.0, q))
    assert one == pytest.approx(0.8 * 0.05 * math.sqrt(q / 1e9))
    # rounds add to the running metaorder: splitting a step's sales does not change the step
    assert m.impact_of(m.apply(m.apply(0.0, q / 4), 3 * q / 4)) == pytest.approx(one)
    # across steps the metaorder decays: Q̃ ← Q̃·decay + q
    s = m.apply(0.0, q / 2) * m.decay
    s = m.apply(s, q / 2)
    assert s == pytest.approx(q / 2 * (1 + 0.5**0.1))
    assert m.impact_of(s) < one
    assert m.impact_of(0.0) == 0.0


def test_cpmm_matches_an_explicit_constant_product_pool():
    r0 = 5e6
    m = CpmmImpact(pool_depth_usd=r0)
    # explicit pool at price 2000: y = R, x = R / p
    p0 = 2000.0
    x, y = r0 / p0, r0
    k = x * y
    i = 0.0
    for q in (3e5, 1e6, 2.5e6):  # three rounds of sales, each valued at the pre-trade price
        p = y / x
        assert p == pytest.approx(p0 * math.exp(-i), rel=1e-12)
        x += q / p
        y = k / x
        i = m.apply(i, q)
        assert math.exp(-i) == pytest.approx((y / x) / p0, rel=1e-12)
    # Risk DAO's one-point calibration: the sale that moves the price 10 %
    cal = CpmmImpact.from_slippage(1e6, 0.10)
    assert 1 - math.exp(-cal.apply(0.0, 1e6)) == pytest.approx(0.10)
    assert cal.apply(0.3, 0.0) == 0.3


def test_no_impact_and_validation():
    assert NoImpact().is_zero and NoImpact().apply(0.0, 1e12) == 0.0
    with pytest.raises(ImpactConfigError, match="depth_usd"):
        LinearImpact(depth_usd=0.0)
    with pytest.raises(ImpactConfigError, match="half_life_steps"):
        CpmmImpact(pool_depth_usd=1.0, half_life_steps=0.0)
    with pytest.raises(ImpactConfigError, match="fraction"):
        LinearImpact.from_slippage(1e6, 4.0)
