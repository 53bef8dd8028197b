"""Capital recovery (issue #15): debt repaid from proceeds by the window end / debt that fell due.

Hand-computable single-position cases on the real engine (no impact): deferral into an auction
or into the book's waiting positions is not recovery, whatever the final price.
"""

from __future__ import annotations

import pytest
from builders import book_of, path_of

from backtest import Book, DutchAuction, Instant, NoImpact, Staged, simulate
from backtest.search import capital_recovery, objectives_from_metrics


def recovery_of(book: Book, prices: list[float], policy: object) -> tuple[float, object]:
    res = simulate(book, path_of(prices), NoImpact(), policy)
    return objectives_from_metrics(res.metrics.as_dict()).capital_recovery, res.metrics


# One vault: 10 units, 1,000 USD debt, LT 0.8 → liquidation price 125; barked at 120 (step 1),
# first take at step 21 (144·0.99^20 <= 118.8; tests/test_backtest_policies.py).
VAULT = book_of([10.0], [1000.0])


def test_auction_that_sells_nothing_by_the_end_recovers_nothing() -> None:
    rec, m = recovery_of(VAULT, [130] + [120] * 5, DutchAuction())
    assert m.liquidated_usd == pytest.approx(1000.0) and m.in_flight_debt_usd == 1000.0
    assert m.sold_usd == 0.0
    # the lot (10 units at 120 = 1,200) covers the debt: no loss, yet nothing was repaid
    assert m.total_loss_usd == 0.0
    assert rec == 0.0


def test_auction_sold_by_the_end_covering_its_debt_recovers_all() -> None:
    rec, m = recovery_of(VAULT, [130] + [120] * 30, DutchAuction())
    assert m.cleared and m.bad_debt_usd == 0.0
    assert rec == pytest.approx(1.0)


def test_instant_liquidation_with_bad_debt_recovers_only_what_was_repaid() -> None:
    # c=1, d=76 at p=60: the collateral covers 60/1.05 of the debt, the rest is written off.
    rec, m = recovery_of(book_of([1.0], [76.0]), [100, 60], Instant())
    assert m.bad_debt_usd == pytest.approx(76 - 60 / 1.05)
    assert rec == pytest.approx((60 / 1.05) / 76)


def test_staged_leaving_unhealthy_debt_open_loses_exactly_that_share() -> None:
    # c=1, d=76 at p=94 (HF 0.989): the stage repays r = 19.8/0.41 (health 1.25), then waits
    # 5 steps; at 60 the rest d1 is unhealthy (HF < 1) but the window ends in the wait.
    rec, m = recovery_of(book_of([1.0], [76.0]), [100, 94, 60, 60], Staged())
    r = 19.8 / 0.41
    d1 = 76 - r
    c1 = 1 - r * 1.05 / 94
    assert c1 * 60 * 0.8 / d1 < 1
    assert m.liquidated_usd == pytest.approx(r)
    assert m.unhealthy_open_debt_usd == pytest.approx(d1)
    assert rec == pytest.approx(r / (r + d1))
    assert 1 - rec == pytest.approx(d1 / 76)
    # the same stage with the window ending at 94: nothing open, all recovered
    rec_94, _ = recovery_of(book_of([1.0], [76.0]), [100, 94, 94], Staged())
    assert rec_94 == pytest.approx(1.0)


def test_recovery_by_hand_and_its_bounds() -> None:
    # 100 liquidated (10 written off, 20 still in auctions) + 100 unhealthy open: 70 / 200
    assert capital_recovery(100.0, 10.0, 20.0, 100.0) == pytest.approx(0.35)
    assert capital_recovery(0.0, 0.0, 0.0, 0.0) == 1.0  # nothing fell due
    assert capital_recovery(0.0, 0.0, 0.0, 50.0) == 0.0  # all deferred
    # summation noise cannot push it out of [0, 1]
    assert capital_recovery(100.0, 0.0, 100.0 + 1e-9, 0.0) == 0.0
    assert capital_recovery(100.0, -1e-12, 0.0, 0.0) == 1.0
