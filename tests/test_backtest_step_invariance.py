"""Step-size invariance (issue #9): auctions and square-root impact on minute vs hourly bars."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backtest import (
    Batch,
    Book,
    DutchAuction,
    Instant,
    NoImpact,
    PricePath,
    SqrtImpact,
    simulate,
    simulate_dense,
    synthetic_book,
    synthetic_crash_path,
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _crash_paths(seed: int) -> tuple[PricePath, PricePath]:
    """A one-minute crash (−35 % over 6 h, with noise, 12 h long) and the same path hourly."""
    minute = synthetic_crash_path(
        n_steps=12 * 60,
        seed=seed,
        crash_depth=0.35,
        crash_start=0.25,
        crash_steps=360,
        recovery=0.0,
        sigma_day=0.04,
    )
    hourly = PricePath(ts=minute.ts[::60], price=minute.price[::60])
    return minute, hourly


BOOK = synthetic_book(200, price=2_000.0, seed=3, total_debt=50e6, liquidation_threshold=0.77)


@pytest.mark.parametrize("seed", [7, 13])
@pytest.mark.parametrize("impact", ["none", "sqrt"])
def test_dutch_auction_hourly_bars_match_minute_bars(seed, impact):
    minute, hourly = _crash_paths(seed)
    out = {}
    for name, path in (("minute", minute), ("hourly", hourly)):
        if impact == "none":
            imp = NoImpact()
        else:
            imp = SqrtImpact.from_market(
                adv_usd=1e9, sigma_day=0.04, step_seconds=path.step_seconds
            )
        out[name] = simulate(BOOK, path, imp, DutchAuction(), record_steps=False).metrics
    m, h = out["minute"], out["hourly"]
    assert m.liquidated_usd > 10e6  # the crash does liquidate
    for field in ("bad_debt_usd", "borrower_loss_usd", "total_loss_usd"):
        a, b = getattr(m, field), getattr(h, field)
        assert abs(a - b) <= max(0.10 * abs(a), 50_000.0), (field, a, b)


def test_auction_take_inside_an_hourly_step_is_priced_where_the_curve_meets_the_market():
    # One vault, barked at 120 (top 144); the hourly bar then moves linearly 120 → 120. The
    # stair-step price reaches 120·0.99 = 118.8 after 20 minutes: the take is at 144·0.99^20,
    # in the first hour, not at the hour's stair 144·0.99^60.
    book = Book(
        position_id=np.arange(1),
        collateral=np.array([10.0]),
        debt=np.array([1000.0]),
        liquidation_threshold=np.array([0.8]),
        bonus=np.array([0.05]),
    )
    path = PricePath(ts=np.arange(4) * 3_600, price=np.array([130.0, 120.0, 120.0, 120.0]))
    res = simulate(book, path, NoImpact(), DutchAuction())
    dense = simulate_dense(book, path, NoImpact(), DutchAuction())
    assert res.steps.equals(dense.steps)
    price = 144 * 0.99**20
    units = 1130 / price
    assert np.flatnonzero(res.steps["sold_usd"].to_numpy()).tolist() == [2]
    assert res.metrics.sold_usd == pytest.approx(units * 120)
    assert res.metrics.bad_debt_usd == 0.0
    assert res.conservation.collateral_returned == pytest.approx(10 - units)


# --------------------------------------------------------------------------- sqrt propagator
@SETTINGS
@given(
    total=st.floats(1e3, 1e9),
    k=st.integers(1, 200),
    half_life=st.sampled_from([math.inf, 0.5, 3.0, 30.0]),
    weights=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=200),
)
def test_splitting_a_sale_never_raises_peak_sqrt_impact(total, k, half_life, weights):
    m = SqrtImpact(sigma_day=0.05, adv_usd=3e9, half_life_steps=half_life)
    once = m.impact_of(m.apply(0.0, total))
    w = np.asarray(weights[:k], dtype=np.float64)
    if w.sum() <= 0:
        w = np.ones(max(1, w.size))
    parts = total * w / w.sum()
    s, peak = 0.0, 0.0
    for q in parts:
        s = m.apply(s * m.decay, float(q))
        peak = max(peak, m.impact_of(s))
    assert peak <= once * (1 + 1e-12)


def test_sqrt_spreading_fifty_million_lowers_the_peak():
    m = SqrtImpact.from_market(adv_usd=3e9, sigma_day=0.05, step_seconds=60.0)
    once = 1 - math.exp(-m.impact_of(m.apply(0.0, 50e6)))
    s, peak = 0.0, 0.0
    for _ in range(60):
        s = m.apply(s * m.decay, 50e6 / 60)
        peak = max(peak, 1 - math.exp(-m.impact_of(s)))
    assert peak < once


@st.composite
def _unhealthy_books(draw) -> Book:
    n = draw(st.integers(1, 15))
    hf = np.array(draw(st.lists(st.floats(0.3, 0.99), min_size=n, max_size=n)))
    debt = np.array(draw(st.lists(st.floats(1.0, 500.0), min_size=n, max_size=n)))
    lt = np.array(draw(st.lists(st.sampled_from([0.5, 0.7, 0.8, 0.95]), min_size=n, max_size=n)))
    bonus = np.array(draw(st.lists(st.sampled_from([0.0, 0.05, 0.1]), min_size=n, max_size=n)))
    return Book(
        position_id=np.arange(n),
        collateral=hf * debt / (100.0 * lt),
        debt=debt,
        liquidation_threshold=lt,
        bonus=bonus,
    )


@SETTINGS
@given(
    book=_unhealthy_books(),
    k=st.integers(1, 8),
    half_life=st.sampled_from([math.inf, 1.0, 5.0]),
    adv=st.floats(100.0, 1e5),
)
def test_batch_sales_never_peak_above_instant_under_sqrt_impact(book, k, half_life, adv):
    # Every position is unhealthy at the (flat) price 100, so both policies liquidate the same
    # positions at the same price: instant sells everything at once, batch over k steps.
    path = PricePath(ts=np.arange(3 * k + 2) * 60, price=np.full(3 * k + 2, 100.0))
    impact = SqrtImpact(sigma_day=0.05, adv_usd=adv, half_life_steps=half_life)
    inst = simulate(book, path, impact, Instant(), record_steps=False).metrics
    batch = simulate(book, path, impact, Batch(interval_steps=k), record_steps=False).metrics
    assert batch.liquidated_usd == pytest.approx(inst.liquidated_usd)
    assert batch.peak_price_deviation <= inst.peak_price_deviation + 1e-12
