"""LIQ 2.0 Dutch auctions taken by keeper agents (hand-computable, synthetic)."""

from __future__ import annotations

import numpy as np
import pytest

from backtest import Book, DutchAuction, NoImpact, PricePath, simulate, simulate_dense
from backtest.errors import PolicyConfigError
from backtest.keepers import GasSeries, Keeper, KeeperRules
from backtest.policies.keeper_dutch import KeeperDutchAuction

# one vault: 10 units, 1,000 USD debt, LT 0.8 (liquidation price 125); 130 then 120 flat
VAULT = Book(
    position_id=np.arange(1),
    collateral=np.array([10.0]),
    debt=np.array([1000.0]),
    liquidation_threshold=np.array([0.8]),
    bonus=np.array([0.05]),
)
FREE_GAS = GasSeries(t=np.array([0.0]), gwei=np.zeros((1, 4)))
BUSY_GAS = GasSeries(t=np.array([0.0]), gwei=np.array([[100.0, 200.0, 300.0, 400.0]]))
MEDIAN = KeeperRules(q_low=0.6, q_high=0.6)


def path_of(n: int) -> PricePath:
    return PricePath(ts=np.arange(n + 1) * 60, price=np.array([130.0] + [120.0] * n))


def both(policy, n: int = 60):
    fast = simulate(VAULT, path_of(n), NoImpact(), policy)
    dense = simulate_dense(VAULT, path_of(n), NoImpact(), policy)
    assert fast.steps.equals(dense.steps) and fast.metrics == dense.metrics
    c = fast.conservation
    assert abs(c.collateral_error) < 1e-9 and abs(c.seized_error) < 1e-9
    assert abs(c.debt_error) < 1e-9
    return fast


def take_step(res) -> list[int]:
    return np.flatnonzero(res.steps["sold_usd"].to_numpy()).tolist()


def test_free_gas_and_capital_equal_a_fixed_taker_margin() -> None:
    k = Keeper("a", capital_dai=1e9, margin=0.01)
    res = both(KeeperDutchAuction(keepers=(k,), gas=FREE_GAS))
    ref = both(DutchAuction(taker_margin=0.01))
    assert take_step(res) == take_step(ref) == [21]  # 144 * 0.99^20 <= 120 * 0.99
    assert res.metrics.sold_usd == pytest.approx(ref.metrics.sold_usd)
    assert res.metrics.borrower_loss_usd == pytest.approx(ref.metrics.borrower_loss_usd)


def test_congestion_delays_the_take_and_costs_the_borrower() -> None:
    # a keeper capped at 2 gwei ranks 0.006 -> floor 0.01 -> delay 13 * 0.99 / 0.01 = 1287 s;
    # the stair-step falls 0.99^(1287/60) meanwhile: effective discount 1 - 0.99 * 0.99^21.45
    calm = both(KeeperDutchAuction(keepers=(Keeper("a", capital_dai=1e9, margin=0.01),),
                                   gas=BUSY_GAS, rules=MEDIAN))  # fmt: skip
    capped = Keeper("a", capital_dai=1e9, margin=0.01, gas_cap_gwei=2.0)
    jam = both(KeeperDutchAuction(keepers=(capped,), gas=BUSY_GAS, rules=MEDIAN))
    disc = 1 - (0.99 - 150_000 * 2e-9 * 120 / 50_000) * 0.99 ** (1287 / 60)
    k = int(np.ceil(np.log(120 * (1 - disc) / 144) / np.log(0.99)))
    assert take_step(jam) == [k + 1]
    assert take_step(jam)[0] > take_step(calm)[0]
    assert jam.metrics.borrower_loss_usd > calm.metrics.borrower_loss_usd


def test_no_capital_no_take() -> None:
    broke = Keeper("a", capital_dai=0.0, margin=0.01)
    res = both(KeeperDutchAuction(keepers=(broke,), gas=FREE_GAS, tail_seconds=1e9, cusp=0.0))
    assert take_step(res) == []
    assert not res.metrics.cleared and res.metrics.in_flight_debt_usd == 1000.0


def test_needs_keepers_and_gas() -> None:
    with pytest.raises(PolicyConfigError, match="keepers and a gas series"):
        KeeperDutchAuction()
