"""Engine semantics of issue #9: cascade depth, losses still open at the end of the window."""

from __future__ import annotations

import numpy as np
import pytest
from builders import book_of, path_of

from backtest import (
    CircuitBreaker,
    DutchAuction,
    Instant,
    LinearImpact,
    NoImpact,
    simulate,
    simulate_dense,
)


def both(*args, **kw):
    fast = simulate(*args, **kw)
    dense = simulate_dense(*args, **kw)
    assert fast.steps.equals(dense.steps)
    assert fast.metrics == dense.metrics
    return fast


# --------------------------------------------------------------------------- cascade depth
def test_repeat_partial_liquidations_are_not_cascade_depth():
    # HF 0.85 at p=100 (L = 117.6): close factor 0.5 liquidates the same position in 4 rounds
    # (earlier engines reported a cascade depth of 4 for this one position).
    hf = 0.85
    book = book_of([hf * 1000 / (100 * 0.8)], [1000.0])
    res = both(book, path_of([200, 100, 100]), NoImpact(), Instant(close_factor=0.5))
    steps = res.steps
    assert steps["cascade_depth"].to_list() == [0, 1, 0]
    assert steps["repeat_rounds"].to_list() == [0, 3, 0]
    assert steps["rounds"][1] == 4
    m = res.metrics
    assert m.max_cascade_depth == 1
    assert m.repeat_liquidation_rounds == 3


def test_new_positions_in_later_rounds_still_count():
    # A: L=95, B: L=90, C: L=85, D: L=50; permanent linear impact walks A → B → C.
    book = book_of([1, 1, 1, 1], [76, 72, 68, 40])
    res = both(book, path_of([100, 94, 94]), LinearImpact(depth_usd=1000.0), Instant())
    assert res.steps["cascade_depth"].to_list() == [0, 3, 0]
    assert res.steps["repeat_rounds"].to_list() == [0, 0, 0]


# --------------------------------------------------------------------------- deferred losses
def test_breaker_halt_at_the_end_leaves_unhealthy_debt_counted_in_the_loss():
    # 20 positions with L from 60 to 98; flat at 100 for 95 steps, then a crash to 50 over the
    # last 5 steps. The breaker trips on the first 10 % drop and halts to the end.
    n = 20
    liq_price = np.linspace(60.0, 98.0, n)
    debt = np.full(n, 1_000.0)
    coll = debt / (liq_price * 0.8)
    book = book_of(coll, debt)
    prices = [100.0] * 95 + [88.0, 75.0, 65.0, 55.0, 50.0]
    pol = CircuitBreaker(base=Instant(), drop_threshold=0.10, lookback_steps=10, cooldown_steps=60)
    res = both(book, path_of(prices), NoImpact(), pol)
    m = res.metrics
    assert m.liquidated_usd == 0.0 and m.bad_debt_usd == 0.0
    p = 50.0
    open_debt = debt[liq_price > p].sum()
    under = coll * p < debt
    assert m.unhealthy_open_debt_usd == pytest.approx(open_debt)
    assert m.underwater_debt_usd == pytest.approx(debt[under].sum())
    shortfall = (debt[under] - coll[under] * p).sum()
    assert shortfall > 0
    assert m.underwater_shortfall_usd == pytest.approx(shortfall)
    assert m.total_loss_usd == pytest.approx(shortfall)
    assert m.total_loss_usd > m.bad_debt_usd
    # the instant baseline realises the loss instead
    inst = both(book, path_of(prices), NoImpact(), Instant())
    assert inst.metrics.unhealthy_open_debt_usd == 0.0
    assert inst.metrics.total_loss_usd == pytest.approx(inst.metrics.bad_debt_usd)


def test_auction_in_flight_at_the_end_reports_its_shortfall():
    # One vault (10 units, 1,000 debt, L = 125); takers want 70 % off, so nothing is taken.
    # The price ends at 80: the lot is worth 800 against 1,000 of debt in flight.
    vault = book_of([10.0], [1000.0])
    res = both(
        vault, path_of([130] + [120] * 10 + [80]), NoImpact(), DutchAuction(taker_margin=0.7)
    )
    m = res.metrics
    assert m.in_flight_debt_usd == 1000.0 and not m.cleared
    assert m.in_flight_shortfall_usd == pytest.approx(200.0)
    assert m.unhealthy_open_debt_usd == 0.0 and m.underwater_debt_usd == 0.0
    assert m.total_loss_usd == pytest.approx(m.bad_debt_usd + 200.0)
    assert set(m.as_dict()) >= {
        "repeat_liquidation_rounds",
        "unhealthy_open_debt_usd",
        "in_flight_debt_usd",
        "in_flight_shortfall_usd",
        "underwater_debt_usd",
        "underwater_shortfall_usd",
        "total_loss_usd",
    }
