"""Keeper agents and LIQ 1.2 flip auctions on hand-computable cases (synthetic, fast)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from backtest.flip import FlipParams, Kick, run_flips
from backtest.flip_replay import FlipBook, bite_kicks, osm_price, replay, step_price
from backtest.keepers import GasSeries, Keeper, KeeperMarket, KeeperRules, draw_keepers

# every window: p30 10, p60 20, p90 30, p100 40 gwei; keepers target the median (q = 0.6)
FLAT = GasSeries(t=np.array([0.0]), gwei=np.array([[10.0, 20.0, 30.0, 40.0]]))
MEDIAN = KeeperRules(q_low=0.6, q_high=0.6)
P = 200.0
GAS = 150_000 * 20e-9 * P  # 0.6 DAI per transaction at 20 gwei and 200 DAI/ETH
DELAY = 13.0 * 0.4 / 0.6  # rank 0.6 -> 8.667 s


def price(_t: float) -> float:
    return P


def market(*keepers: Keeper, gas: GasSeries = FLAT, rules: KeeperRules = MEDIAN) -> KeeperMarket:
    return KeeperMarket(keepers, gas, rules, seed=0)


def test_gas_rank_and_price_interpolate_percentiles() -> None:
    assert FLAT.price(0, 0.6) == pytest.approx(20.0)
    assert FLAT.price(0, 0.45) == pytest.approx(15.0)
    assert FLAT.rank(0, 15.0) == pytest.approx(0.45)
    assert FLAT.rank(0, 5.0) == pytest.approx(0.15)
    assert FLAT.rank(0, 99.0) == 1.0


def test_one_bidder_wins_with_zero_bid_at_ttl_expiry() -> None:
    m = market(Keeper("a", capital_dai=1e6, margin=0.1, poll_seconds=60))
    res = run_flips([Kick(t=0, lot=10, tab=1500, debt=1500 / 1.13)], price, m)
    (a,) = res.auctions
    assert a.guy == 0 and a.bid == 0.0 and a.zero_bid
    assert a.settled_t == pytest.approx(60 + DELAY + 600)  # mined, then ttl
    assert res.zero_bid_share() == 1.0
    assert res.deficit_dai() == pytest.approx(1500 / 1.13)
    assert m.gas_spent[0] == pytest.approx(GAS)
    assert m.free[0] == pytest.approx(1e6 + 10 * P)  # resold the lot it got for nothing


def test_two_bidders_beg_blocks_a_small_raise() -> None:
    # a values the lot at 2000*0.90 - 0.6, b at 2000*0.88 - 0.6; b bids first, and a's value
    # is less than 3 % above b's bid: b wins at its own value although a values more
    a = Keeper("a", capital_dai=1e6, margin=0.10, poll_seconds=60)
    b = Keeper("b", capital_dai=1e6, margin=0.12, poll_seconds=90)
    res = run_flips([Kick(t=0, lot=10, tab=5000, debt=4000)], price, market(a, b))
    (au,) = res.auctions
    assert au.guy == 1
    assert au.bid == pytest.approx(2000 * 0.88 - GAS)
    assert not au.zero_bid
    assert [h[2] for h in au.history] == pytest.approx([0.0, 2000 * 0.88 - GAS])


def test_two_bidders_outbid_by_more_than_beg() -> None:
    a = Keeper("a", capital_dai=1e6, margin=0.10, poll_seconds=60)
    b = Keeper("b", capital_dai=1e6, margin=0.20, poll_seconds=90)
    res = run_flips([Kick(t=0, lot=10, tab=5000, debt=4000)], price, market(a, b))
    (au,) = res.auctions
    assert au.guy == 0
    assert au.bid == pytest.approx(2000 * 0.90 - GAS)  # above 1.03 x b's 1599.4
    assert au.settled_t == pytest.approx(au.history[-1][0] + 600)
    assert res.deficit_dai() == pytest.approx(4000 - (2000 * 0.90 - GAS))


def test_dent_phase_lowers_the_lot() -> None:
    # b reaches tab (1500 <= 2000*0.8 - gas); a then asks for the smallest lot worth tab + gas
    a = Keeper("a", capital_dai=1e6, margin=0.10, poll_seconds=60)
    b = Keeper("b", capital_dai=1e6, margin=0.20, poll_seconds=90)
    res = run_flips([Kick(t=0, lot=10, tab=1500, debt=1500 / 1.13)], price, market(a, b))
    (au,) = res.auctions
    assert au.bid == 1500
    assert au.guy == 0
    assert au.lot == pytest.approx((1500 + GAS) / (P * 0.9))
    assert au.lot0 - au.lot == pytest.approx(10 - (1500 + GAS) / 180)  # back to the owner
    assert res.deficit_dai() == pytest.approx(1500 / 1.13 - 1500)  # negative: penalty income


def test_tau_ends_the_auction_even_if_bids_keep_it_alive() -> None:
    p = FlipParams(ttl_seconds=10_000, tau_seconds=1_000)
    m = market(Keeper("a", capital_dai=1e6, margin=0.1, poll_seconds=60))
    res = run_flips([Kick(t=0, lot=10, tab=1500, debt=1000)], price, m, p)
    assert res.auctions[0].settled_t == pytest.approx(1_000)


def test_keeper_does_not_bid_when_gas_exceeds_profit() -> None:
    # the lot is worth 0.2 DAI, a bid costs 0.6 DAI of gas: nobody bids, nothing settles
    m = market(Keeper("a", capital_dai=1e6, margin=0.0, poll_seconds=60))
    res = run_flips([Kick(t=0, lot=0.001, tab=10, debt=9)], price, m, horizon=50_000)
    assert res.settled == ()
    assert res.auctions[0].restarts >= 1
    assert m.txs[0] == 0
    assert not KeeperMarket.worth_acting(0.2, 0.0, 0.0, GAS)
    assert KeeperMarket.worth_acting(0.7, 0.0, 0.0, GAS)


def test_keeper_without_capital_cannot_raise() -> None:
    a = Keeper("a", capital_dai=1e6, margin=0.10, poll_seconds=60)
    poor = Keeper("b", capital_dai=100.0, margin=0.0, poll_seconds=90)
    m = market(a, poor)
    res = run_flips([Kick(t=0, lot=10, tab=5000, debt=4000)], price, m)
    (au,) = res.auctions
    # a opens at 0; b can raise only to its 100 DAI of capital; a answers with its value
    assert [h[2] for h in au.history] == pytest.approx([0.0, 100.0, 2000 * 0.9 - GAS])
    assert au.guy == 0
    assert m.free[1] == 100.0  # refunded when outbid


def test_congestion_delays_inclusion() -> None:
    # the gas distribution jumps ten-fold at t = 600: a keeper pricing from the previous
    # window ranks at 20 gwei in (100, 200, 300, 400) -> 0.06 -> 13 * 0.94 / 0.06 s
    gas = GasSeries(
        t=np.array([0.0, 600.0]),
        gwei=np.array([[10.0, 20.0, 30.0, 40.0], [100.0, 200.0, 300.0, 400.0]]),
    )
    m = market(Keeper("a", capital_dai=1e6, margin=0.1), gas=gas)
    calm = m.action(0, 100.0, P)
    assert calm.delay_seconds == pytest.approx(DELAY)
    jam = m.action(0, 700.0, P)
    assert jam.rank == pytest.approx(0.06)
    assert jam.delay_seconds == pytest.approx(13 * 0.94 / 0.06)
    assert jam.delay_seconds > 10 * calm.delay_seconds
    # a gas cap below the market lowers the rank even in a calm window
    capped = market(Keeper("c", capital_dai=1e6, margin=0.1, gas_cap_gwei=15.0))
    act = capped.action(0, 100.0, P)
    assert act.gwei == 15.0 and act.rank == pytest.approx(0.45)
    assert act.delay_seconds == pytest.approx(13 * 0.55 / 0.45)


def test_late_bid_reverts_and_zero_wins_under_congestion() -> None:
    # b answers a's 0 bid, but its bid is mined after ttl: a keeps the lot for 0 DAI
    gas = GasSeries(t=np.array([0.0]), gwei=np.array([[10.0, 20.0, 30.0, 4000.0]]))
    a = Keeper("a", capital_dai=1e6, margin=0.1, poll_seconds=10)
    b = Keeper("b", capital_dai=1e6, margin=0.1, poll_seconds=30, gas_cap_gwei=0.05)
    m = market(a, b, gas=gas)
    res = run_flips([Kick(t=0, lot=10, tab=5000, debt=4000)], price, m)
    (au,) = res.auctions
    assert au.zero_bid and au.guy == 0
    assert m.reverted[1] >= 1  # b's bid came too late and still paid gas
    assert m.gas_spent[1] > 0


def test_osm_delay_and_bites_in_lumps() -> None:
    t = np.array([0.0, 3600.0, 7200.0])
    pr = step_price(t, np.array([200.0, 100.0, 100.0]))
    assert osm_price(pr, 3600.0) == 200.0  # the hour before the poke
    assert osm_price(pr, 7200.0) == 100.0
    book = FlipBook(collateral=np.array([120.0, 10.0]), debt=np.array([9_000.0, 100.0]))
    kicks, bitten = bite_kicks(book, pr, 0.0, 10_800.0)
    # vault 0: 120*100 = 12,000 < 9,000*1.5 -> bitten at 7200 in lots 50, 50, 20
    assert [k.lot for k in kicks] == [50.0, 50.0, 20.0]
    assert all(k.t == 7200.0 for k in kicks)
    assert sum(k.debt for k in kicks) == pytest.approx(9_000.0)
    assert kicks[0].tab == pytest.approx(9_000.0 * 50 / 120 * 1.13)
    assert bitten[0] == 7200.0 and math.isnan(bitten[1])


def _bt_like(seed: int):
    t = np.arange(0, 86_400 + 1, 600.0)
    p = 200.0 * np.exp(-np.linspace(0, 0.7, t.size))
    gas_t = np.arange(0, 86_400, 600.0)
    level = np.linspace(10, 150, gas_t.size)[:, None] * np.array([0.5, 1.0, 1.5, 5.0])
    rng = np.random.default_rng(7)
    book = FlipBook(
        collateral=rng.uniform(5, 200, size=60), debt=rng.uniform(1_000, 20_000, size=60)
    )
    m = KeeperMarket(draw_keepers(4, seed=seed), GasSeries(t=gas_t, gwei=level), seed=seed)
    return replay(book, step_price(t, p), m, start=0.0, end=86_400.0)


def test_replay_is_deterministic_for_a_seed() -> None:
    s1, r1 = _bt_like(3)
    s2, r2 = _bt_like(3)
    assert s1 == s2
    assert [(a.bid, a.lot, a.guy, a.settled_t) for a in r1.auctions] == [
        (a.bid, a.lot, a.guy, a.settled_t) for a in r2.auctions
    ]
    s3, _ = _bt_like(4)
    assert s3 != s1
    assert s1.auctions > 0 and s1.settled == s1.auctions


def test_conservation_of_collateral_and_dai() -> None:
    s, res = _bt_like(1)
    # every settled auction's lot is at most what was kicked; DAI raised <= tab
    for a in res.settled:
        assert 0 < a.lot <= a.lot0 + 1e-12
        assert 0 <= a.bid <= a.tab + 1e-9
    assert s.dai_raised == pytest.approx(sum(a.bid for a in res.settled))
    assert s.deficit_dai == pytest.approx(s.debt_liquidated_dai - s.dai_raised)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="margin"):
        Keeper("x", capital_dai=1.0, margin=1.5)
    with pytest.raises(ValueError, match="increasing"):
        GasSeries(t=np.array([0.0, 0.0]), gwei=np.ones((2, 4)))
    with pytest.raises(ValueError, match="at least one keeper"):
        KeeperMarket((), FLAT)


def test_gas_after_the_auctions_does_not_change_them() -> None:
    # walk-forward: a keeper prices gas from past windows and is ranked in the current one,
    # so rewriting the gas series after every auction ended changes nothing
    t = np.arange(0.0, 20 * 600.0, 600.0)
    base = np.linspace(10, 60, t.size)[:, None] * np.array([0.5, 1.0, 1.5, 5.0])
    later = base.copy()
    later[10:] *= 50.0  # from t = 6000 s on
    kicks = [Kick(t=0.0, lot=10.0, tab=5_000.0, debt=4_000.0)]
    params = FlipParams(ttl_seconds=600.0, tau_seconds=3_000.0)
    out = []
    for g in (base, later):
        m = KeeperMarket(draw_keepers(3, seed=5), GasSeries(t=t, gwei=g), seed=5)
        res = run_flips(kicks, price, m, params, horizon=5_000.0)
        out.append([(h, a.settled_t) for a in res.auctions for h in a.history])
    assert out[0] == out[1]
    assert out[0] and out[0][-1][1] < 6_000.0


def test_nonce_order_holds_later_transactions_behind_a_stuck_one() -> None:
    busy = [1000.0, 2000.0, 3000.0, 4000.0]
    gas = GasSeries(
        t=np.array([0.0, 600.0, 1200.0]), gwei=np.array([[10.0, 20.0, 30.0, 40.0], busy, busy])
    )
    for ordered in (True, False):
        m = market(
            Keeper("a", capital_dai=1e6, margin=0.1),
            gas=gas,
            rules=KeeperRules(q_low=0.6, q_high=0.6, nonce_order=ordered),
        )
        # priced at 20 gwei from the calm window: rank 0.006, delay 13 s x 0.994 / 0.01
        stuck = m.submit(0, 700.0, m.action(0, 700.0, P))
        assert stuck == pytest.approx(700.0 + 13 * (1 - 0.006) / 0.01)
        # priced from the busy window: the median, one block -- unless held behind the first
        fast = m.submit(0, 1250.0, m.action(0, 1250.0, P))
        assert fast == pytest.approx(stuck if ordered else 1250.0 + DELAY)
