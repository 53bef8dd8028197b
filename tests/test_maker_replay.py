"""backtest.maker on synthetic vaults: fee accrual, OSM, keepers' dust rule, owners, causality."""

from __future__ import annotations

import math

import numpy as np
import pytest

from backtest.maker import (
    SECONDS_PER_YEAR,
    KeeperRule,
    OsmModel,
    OwnerRule,
    RateAccumulator,
    VaultEvents,
    fit_owner_rule,
    replay_day,
    score,
    vault_state,
    warm_up,
)

DAY = 1_650_000_000 - (1_650_000_000 % 86_400)  # a UTC midnight
HOUR = 3600


def _events(rows: list[tuple[str, int, float, float]]) -> VaultEvents:
    return VaultEvents(
        vault=np.array([r[0] for r in rows]),
        ts=np.array([r[1] for r in rows]),
        collateral_delta=np.array([r[2] for r in rows]),
        dai_delta=np.array([r[3] for r in rows]),
    )


def test_rate_accumulator_hand_computed_vault() -> None:
    # 4 %/year for 100 days, then 10 %/year for 50 days
    t0 = DAY
    t1 = t0 + 100 * 86_400
    rates = RateAccumulator(change_ts=np.array([t0, t1]), annual=np.array([0.04, 0.10]))
    # draw 10,000 DAI on day 10, repay 3,000 DAI on day 120, look at day 150
    draw_t, repay_t, at = t0 + 10 * 86_400, t0 + 120 * 86_400, t0 + 150 * 86_400
    ev = _events([("1", draw_t, 5.0, 10_000.0), ("1", repay_t, 0.0, -3_000.0)])
    state = vault_state(ev, rates, at + 1)
    debt = float(state.debt(rates, at)[0])
    g = lambda a, s: (1 + a) ** (s / SECONDS_PER_YEAR)  # noqa: E731
    by_hand = 10_000 * g(0.04, 90 * 86_400) * g(0.10, 50 * 86_400) - 3_000 * g(0.10, 30 * 86_400)
    assert debt == pytest.approx(by_hand, rel=1e-12)
    assert float(state.ink[0]) == 5.0
    # one full year at 4 % compounds to exactly 1.04
    r = RateAccumulator(change_ts=np.array([0]), annual=np.array([0.04]))
    assert float(r.rate(SECONDS_PER_YEAR)) == pytest.approx(1.04, rel=1e-12)


def test_osm_current_is_the_previous_read_and_next_is_public() -> None:
    price_ts = DAY - HOUR + np.arange(0, 26 * HOUR, 300)
    price = 1000.0 + np.arange(price_ts.size)
    osm = OsmModel(poke_minute=0)
    poke, cur, nxt = osm.pokes(DAY, DAY + 86_400, price_ts, price)
    assert poke.size == 24 and poke[0] == DAY and poke[7] == DAY + 7 * HOUR
    # current at 07:00 = read at 06:00, next = read at 07:00
    at = lambda t: price[np.searchsorted(price_ts, t, side="right") - 1]  # noqa: E731
    assert cur[7] == at(DAY + 6 * HOUR) and nxt[7] == at(DAY + 7 * HOUR)
    assert np.array_equal(cur[1:], nxt[:-1])
    shifted, _, _ = OsmModel(poke_minute=5).pokes(DAY, DAY + 86_400, price_ts, price)
    assert shifted[0] == DAY + 300


def _prices(values: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Hourly price steps from 23:00 the day before (values[0]) on."""
    ts = DAY - HOUR + HOUR * np.arange(len(values))
    return ts, np.array(values, dtype=float)


FLAT = RateAccumulator(change_ts=np.array([0]), annual=np.array([0.0]))


def _replay(history, intraday, prices, *, dust=0.0, margin=0.0, mat=1.5, attention=0.0, last=None):
    rates = FLAT
    state = vault_state(_events(history), rates, DAY)
    poke = OsmModel().pokes(DAY, DAY + 86_400, *_prices(prices))
    return replay_day(
        state,
        _events(intraday),
        rates,
        *poke,
        mat=mat,
        keeper=KeeperRule(dust=dust),
        owner=OwnerRule(margin=margin, attention_hours=attention),
        last_action=last,
    )


# vault "a": 10 ETH, 6,000 DAI at mat 1.5 → liquidation price 900
HISTORY = [("a", DAY - 86_400, 10.0, 6_000.0), ("b", DAY - 86_400, 10.0, 3_000.0)]
CRASH = [1000.0] * 6 + [850.0] * 20  # read at 05:00 is 850 → current from 06:00


def test_crash_barks_the_vault_at_the_delayed_price() -> None:
    rep = _replay(HISTORY, [], CRASH)
    assert rep.barked == {"a"}
    (bark,) = rep.barks
    assert bark.ts == DAY + 6 * HOUR  # 05:00 read becomes current at the 06:00 poke
    assert bark.price == 850.0 and bark.debt == pytest.approx(6_000.0)
    assert bark.health == pytest.approx(10 * 850 / 1.5 / 6_000)


def test_intraday_top_up_is_not_flagged() -> None:
    top_up = [("a", DAY + 5 * HOUR + 1_800, 2.0, 0.0)]  # 05:30: +2 ETH → liq. price 750
    rep = _replay(HISTORY, top_up, CRASH)
    assert rep.barked == frozenset()
    # a top-up after the bark changes nothing
    late = [("a", DAY + 6 * HOUR + 60, 2.0, 0.0)]
    assert _replay(HISTORY, late, CRASH).barked == {"a"}


def test_dust_vault_is_not_barked() -> None:
    history = [("d", DAY - 86_400, 0.2, 150.0)]  # liq. price 1125, debt below dust
    rep = _replay(history, [], [1000.0] * 26, dust=500.0)
    assert rep.barked == frozenset() and rep.dusty == {"d"}
    assert _replay(history, [], [1000.0] * 26, dust=100.0).barked == {"d"}


def test_gap_vault_without_collateral_is_not_barked() -> None:
    history = [("g", DAY - 86_400, 1.0, 500.0), ("g", DAY - 3_600, -1.0, 0.0)]
    rep = _replay(history, [], [1000.0] * 26)
    assert rep.barked == frozenset() and rep.gaps == {"g"}


def test_owner_rule_defends_a_vault_barely_unsafe_at_the_next_price() -> None:
    prices = [1000.0] * 6 + [895.0] * 20  # health at 895 = 0.9944
    assert _replay(HISTORY, [], prices).barked == {"a"}
    rep = _replay(HISTORY, [], prices, margin=0.01)
    assert rep.barked == frozenset() and rep.defended["a"] == DAY + 5 * HOUR
    # a deep drop is beyond the margin: barked
    assert _replay(HISTORY, [], CRASH, margin=0.01).barked == {"a"}


def test_attentive_owner_defends_against_the_next_price() -> None:
    # 05:00 poke reads 850 (next price): an owner who acted 2 h before tops up in time
    last = {"a": DAY + 3 * HOUR}
    rep = _replay(HISTORY, [], CRASH, attention=4.0, last=last)
    assert rep.barked == frozenset() and rep.defended["a"] == DAY + 5 * HOUR
    # a dormant owner (last action 2 days ago) does not
    dormant = {"a": DAY - 2 * 86_400}
    assert _replay(HISTORY, [], CRASH, attention=4.0, last=dormant).barked == {"a"}
    # an intraday action makes a dormant owner attentive
    poke_day = [("a", DAY + 4 * HOUR, 0.01, 0.0)]
    assert _replay(HISTORY, poke_day, CRASH, attention=4.0, last=dormant).barked == frozenset()


def test_owner_transaction_just_after_the_poke_beats_the_keepers() -> None:
    top_up = [("a", DAY + 6 * HOUR + 30, 2.0, 0.0)]  # 30 s after the 06:00 poke
    rates = FLAT
    state = vault_state(_events(HISTORY), rates, DAY)
    poke = OsmModel().pokes(DAY, DAY + 86_400, *_prices(CRASH))
    run = lambda delay: replay_day(  # noqa: E731
        state, _events(top_up), rates, *poke, mat=1.5,
        keeper=KeeperRule(delay_seconds=delay), owner=OwnerRule(),
    )  # fmt: skip
    assert run(0).barked == {"a"} and run(60).barked == frozenset()


def test_warm_up_corrects_a_vault_the_chain_did_not_bark() -> None:
    # "a" is unsafe at 850 from the 06:00 poke of the previous day, yet the chain never barked
    # it: its collateral is raised to health 1 at that price; "b" is safe and untouched
    start = DAY - 86_400
    state = vault_state(_events(HISTORY), FLAT, start + 1)
    ts, px = _prices(CRASH)
    poke, cur, _ = OsmModel().pokes(start, DAY, ts - 86_400, px)
    no_barks = _events([])
    fixed, corrections = warm_up(state, _events([]), FLAT, poke, cur, mat=1.5, barked=no_barks)
    a = list(fixed.vault).index("a")
    assert corrections == {"a": 1}
    assert fixed.ink[a] == pytest.approx(6_000 * 1.5 / 850)
    assert fixed.ink[list(fixed.vault).index("b")] == 10.0
    # a real bark within the hour: no correction
    barked = _events([("a", start + 6 * HOUR + 24, -10.0, -6_000.0)])
    _, none = warm_up(state, barked, FLAT, poke, cur, mat=1.5, barked=barked)
    assert none == {}


def test_events_after_t_leave_earlier_output_unchanged() -> None:
    rng = np.random.default_rng(0)
    history = [(str(i), DAY - 86_400, 10.0, float(rng.uniform(4_000, 6_500))) for i in range(40)]
    prices = list(1000.0 * np.exp(np.cumsum(rng.normal(0, 0.02, 26))))
    base = [
        (str(rng.integers(40)), int(DAY + rng.integers(0, 86_400)), float(rng.normal(0, 1)), 0.0)
        for _ in range(60)
    ]
    cut = DAY + 12 * HOUR
    changed = [e for e in base if e[1] < cut] + [
        (str(i), cut + 10 * i, 5.0, -1_000.0) for i in range(40)
    ]
    last = {str(i): DAY - 3600 * i for i in range(40)}
    a = _replay(history, base, prices, margin=0.01, attention=6.0, last=last)
    b = _replay(history, changed, prices, margin=0.01, attention=6.0, last=last)
    early = lambda rep: [x for x in rep.barks if x.ts <= cut]  # noqa: E731
    assert early(a) == early(b)
    assert {v: t for v, t in a.defended.items() if t < cut} == {
        v: t for v, t in b.defended.items() if t < cut
    }


def test_score_and_fit_margin() -> None:
    s = score(frozenset({"a", "b"}), ["b", "c"])
    assert (s["tp"], s["fp"], s["fn"]) == (1, 1, 1) and s["precision"] == 0.5
    assert score(frozenset(), [])["precision"] == 1.0

    # margin 0.02 removes the false vault and keeps the real one
    def replay(m: float):
        pred = {"real"} | ({"false"} if m < 0.02 else set())
        if m > 0.04:
            pred.discard("real")
        return [(frozenset(pred), ["real"])]

    assert fit_owner_rule(replay, [0.0, 0.01, 0.02, 0.03, 0.05]) == 0.02
    assert math.isfinite(fit_owner_rule(replay, [0.05]))
    # any parameter type: pairs (attention, margin)
    pairs = [(0.0, 0.0), (1.0, 0.02), (2.0, 0.05)]
    assert fit_owner_rule(lambda p: replay(p[1]), pairs) == (1.0, 0.02)
