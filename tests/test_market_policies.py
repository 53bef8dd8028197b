"""Fast tier: market-level policies, bad debt, DeFi vaults and ADL rules on hand-built books."""

from __future__ import annotations

import math

import numpy as np
import pytest

from backtest.impact import SqrtImpact
from backtest.market.cohorts import BookState, CohortParams, CohortRun, PriceGrid, run_cohorts
from backtest.market.errors import MarketConfigError
from backtest.market.policies import (
    MarketPolicy,
    adl,
    forecast_mmr,
    realized_sigma,
    sigma_ratio,
)
from backtest.market.policy_replay import VaultBook, replay_policy
from backtest.market.replay import replay

STEP = 0.005
TEN_X = CohortParams(levered_share=1.0, funding_k=0.0, turnover_per_day=0.0, tiers=(10.0,))


def _grid(n_below: int = 400, n: int = 600) -> PriceGrid:
    return PriceGrid(g0=math.log(100.0) - n_below * STEP, step=STEP, n=n)


def _one_cohort(coins: float = 1.0, params: CohortParams = TEN_X) -> BookState:
    """``coins`` longs of every tier entered at 100 (bin 400 of :func:`_grid`)."""
    book = BookState.empty(_grid(), len(params.tiers))
    book.long[:, 400] = coins
    return book


def _quiet(n: int, params: CohortParams = TEN_X) -> CohortRun:
    """Voluntary flows of a window where nobody trades."""
    z = np.zeros(n)
    return CohortRun(params, z, z, z, z, np.ones((n, len(params.tiers))), z, z)


def _path(lows: list[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    low = np.asarray(lows, dtype=float)
    return low.copy(), low, low.copy()  # close = low = high


def _cascade_setup():
    """A book of 10x/20x longs under a 12 % fundamental decline, with strong impact."""
    n = 24
    f_close = 100 * np.exp(np.linspace(0, math.log(0.88), n))
    f_low, f_high = f_close * 0.999, f_close * 1.001
    p = CohortParams(
        levered_share=0.5, funding_k=0.0, turnover_per_day=0.0, tiers=(10.0, 20.0), lev_median=14
    )
    ts = np.arange(n, dtype=np.int64) * 86_400
    from backtest.market.cohorts import MarketSeries

    def series(c):
        c = np.asarray(c, float)
        k = len(c)
        return MarketSeries(
            asset="BTC", ts=ts[:k], low=c, high=c, close=c, oi_usd=np.full(k, 2e9),
            funding_8h=np.full(k, np.nan), step_days=1.0,
        )  # fmt: skip

    grid = _grid()
    book = run_cohorts(series([100.0]), p, grid=grid).final
    vol = run_cohorts(series(f_close), p, grid=grid, initial=book)
    imp = SqrtImpact(sigma_day=0.04, adv_usd=2e9, half_life_steps=math.inf)
    return book, p, vol, f_close, f_low, f_high, imp


def test_status_quo_policy_is_the_replay():
    book, p, vol, c, lo, hi, imp = _cascade_setup()
    ref = replay(book, p, vol, c, lo, hi, imp)
    got = replay_policy(book, p, vol, c, lo, hi, imp, MarketPolicy())
    np.testing.assert_allclose(got.close, ref.close, rtol=1e-12)
    np.testing.assert_allclose(got.liq_long_usd, ref.liq_long_usd, rtol=1e-9, atol=1e-6)
    np.testing.assert_array_equal(got.rounds, ref.rounds)
    assert ref.rounds.max() >= 2  # a real cascade
    assert np.all(got.deferred_usd == 0) and not got.halted.any()
    again = replay_policy(book, p, vol, c, lo, hi, imp, MarketPolicy())
    assert got.close.tobytes() == again.close.tobytes()  # deterministic


def test_breaker_halts_exactly_the_cooldown_steps_after_the_drop():
    # 10x long at 100: liquidation 100·(1 − 0.1 + 0.005) = 90.5, bankruptcy 90
    c, lo, hi = _path([100, 100, 100, 85, 85, 85, 80, 80])
    book, vol = _one_cohort(), _quiet(8)
    pol = MarketPolicy(name="cb", breaker_drop=0.10, breaker_lookback=2, breaker_cooldown=3)
    sq = replay_policy(book, TEN_X, vol, c, lo, hi, None)
    cb = replay_policy(book, TEN_X, vol, c, lo, hi, None, pol)
    assert sq.halted.tolist() == [False] * 8
    assert cb.halted.tolist() == [False, False, False, True, True, True, False, False]
    assert np.flatnonzero(sq.liq_long_usd).tolist() == [3]
    assert np.flatnonzero(cb.liq_long_usd).tolist() == [6]
    assert sq.liq_long_usd[3] == pytest.approx(90.5) and cb.liq_long_usd[6] == pytest.approx(90.5)
    # status quo: filled at the liquidation price (no impact); after the halt: at the low, 80,
    # 10 below the bankruptcy price 90
    assert sq.bad_debt_usd.sum() == 0.0
    assert cb.bad_debt_usd.sum() == pytest.approx(10.0)
    # the halted position is deferred (at its liquidation price), not dropped
    assert cb.deferred_usd.tolist() == pytest.approx([0, 0, 0, 90.5, 90.5, 90.5, 0, 0])


def test_staged_liquidation_takes_the_larger_of_fraction_and_floor_per_step():
    c, lo, hi = _path([100, 90, 90, 90, 90])
    book, vol = _one_cohort(), _quiet(5)
    n0 = 90.5  # notional at the liquidation price
    pol = MarketPolicy(name="staged", staged_fraction=0.25, staged_min_usd=0.4 * n0)
    got = replay_policy(book, TEN_X, vol, c, lo, hi, None, pol)
    # 0.4·N0 (floor > 25 %), then 0.4·N0 of the remaining 0.6·N0, then the last 0.2·N0
    assert got.liq_long_usd.tolist() == pytest.approx([0, 0.4 * n0, 0.4 * n0, 0.2 * n0, 0])
    assert got.deferred_usd.tolist() == pytest.approx([0, 0.6 * n0, 0.2 * n0, 0, 0])
    assert got.liq_long_usd.sum() == pytest.approx(n0)


def test_insurance_fund_conserves_what_it_absorbs():
    c, lo, hi = _path([100, 88, 88, 88, 88, 88, 88])
    book, vol = _one_cohort(coins=10.0), _quiet(7)
    imp = SqrtImpact(sigma_day=0.05, adv_usd=1e4, half_life_steps=2.0)
    pol = MarketPolicy(
        name="fund", fund_capacity_usd=600.0, fund_unwind_usd_per_step=100.0, fund_unwind_delay=2
    )
    sq = replay_policy(book, TEN_X, vol, c, lo, hi, imp)
    got = replay_policy(book, TEN_X, vol, c, lo, hi, imp, pol)
    assert got.fund_absorbed_usd.sum() == pytest.approx(600.0)  # capacity binds (905 liquidated)
    assert got.liq_long_usd.sum() == pytest.approx(905.0)
    assert got.fund_absorbed_coins == pytest.approx(600.0 / 90.5)
    assert got.fund_absorbed_coins == pytest.approx(got.fund_unwound_coins + got.fund_held_coins)
    # unwinding starts 2 steps after the absorption (step 1), 100 USD a step
    assert np.flatnonzero(got.fund_unwound_usd).tolist() == [3, 4, 5, 6]
    assert got.fund_unwound_usd[3:].tolist() == pytest.approx([100.0] * 4)
    assert got.deferred_usd[-1] == pytest.approx(got.fund_held_coins * got.close[-1])
    # less sold at the crash hour: a smaller impact then
    assert got.impact[1] < sq.impact[1]
    # the fund's P&L is its proceeds plus inventory at market minus its cost
    value = got.fund_unwound_usd.sum() + got.fund_held_coins * got.close[-1]
    assert got.fund_pnl_usd == pytest.approx(value - 600.0)


def test_forecast_margin_raises_liquidation_prices_and_caps_at_half_the_margin():
    p = CohortParams(levered_share=1.0, funding_k=0.0, turnover_per_day=0.0, tiers=(10.0, 100.0))
    mmr = forecast_mmr(np.array([0.5, 1.0, 4.0, 40.0]), p)
    assert mmr[:, 0].tolist() == pytest.approx([0.005, 0.005, 0.02, 0.05])  # cap 0.5/10
    assert mmr[:, 1].tolist() == pytest.approx([0.005, 0.005, 0.005, 0.005])  # cap 0.5/100
    c, lo, hi = _path([100, 91.5, 91.5])
    book, vol = _one_cohort(), _quiet(3)
    path = forecast_mmr(np.array([1.0, 4.0, 4.0]), TEN_X)  # mmr 2 %: liquidation at 92
    sq = replay_policy(book, TEN_X, vol, c, lo, hi, None)
    mm = replay_policy(book, TEN_X, vol, c, lo, hi, None, MarketPolicy(name="mm", mmr_path=path))
    assert sq.liq_long_usd.sum() == 0.0
    assert mm.liq_long_usd.tolist() == pytest.approx([0.0, 92.0, 0.0])
    assert mm.bad_debt_usd.sum() == 0.0


def test_lagged_volatility_uses_nothing_at_or_after_the_step():
    close = 100 * np.exp(np.cumsum(np.r_[0, np.tile([0.01, -0.02], 20)]))
    lag = realized_sigma(close, 4)
    later = close.copy()
    later[20:] *= 1.5
    lag2 = realized_sigma(later, 4)
    np.testing.assert_array_equal(lag[:20], lag2[:20])  # a change at close 20 is seen from step 21
    assert lag[5] == pytest.approx(math.sqrt(2 * 0.01**2 + 2 * 0.02**2))
    fut = realized_sigma(close, 4, future=True)
    assert fut[1] == pytest.approx(lag[5])
    assert sigma_ratio(np.array([1.0, 2.0, np.nan]), np.array([0.5, 1.0, 1.5])).tolist() == [
        1.0,
        2.0,
        1.0,
    ]


def test_vault_book_liquidates_an_hour_late_and_respects_owner_top_ups():
    c, lo, hi = _path([100, 100, 88, 88, 88])
    book, vol = _one_cohort(coins=0.0), _quiet(5)
    vaults = VaultBook(collateral=np.array([1.0]), debt=np.array([60.0]), threshold=1 / 1.5)
    got = replay_policy(book, TEN_X, vol, c, lo, hi, None, vaults=vaults)
    # unsafe below 90; the oracle is the previous close: 88 is seen at step 3
    assert got.defi_liq_usd.tolist() == pytest.approx([0, 0, 0, 88.0, 0])
    assert got.defi_bad_debt_usd.sum() == 0.0
    topped = VaultBook(
        collateral=np.array([1.0]), debt=np.array([60.0]), threshold=1 / 1.5,
        event_step=np.array([3]), event_vault=np.array([0]), event_coll=np.array([0.5]),
        event_debt=np.array([0.0]),
    )  # fmt: skip
    assert replay_policy(book, TEN_X, vol, c, lo, hi, None, vaults=topped).defi_liq_usd.sum() == 0


def test_adl_queue_and_pro_rata_on_a_three_position_book():
    p = CohortParams(
        levered_share=1.0, funding_k=0.0, turnover_per_day=0.0, tiers=(2.0, 10.0, 20.0)
    )
    grid = PriceGrid(g0=math.log(80.0), step=math.log(1.25), n=2)  # entries 80 and 100
    book = BookState.empty(grid, 3)
    book.short[:, 1] = 1.0  # three shorts entered at 100: 2x, 10x, 20x
    book.short[0, 0] = 5.0  # a short entered at 80: at a loss at 90, not eligible
    book.long[:, 1] = 3.0  # longs are the other side
    # at 90: profit on margin 0.2, 1, 2; effective leverage 1.5, 4.5, 6 → ranks 0.3, 4.5, 12
    q = adl(book, p, 90.0, 120.0, "queue")
    assert q.closed[:, 1].tolist() == pytest.approx([0.0, 30.0, 90.0])
    assert q.closed[:, 0].sum() == 0.0
    assert q.eligible_usd == pytest.approx(270.0) and q.amount_usd == pytest.approx(120.0)
    assert q.cohorts_hit == 2 and q.high_lev_share == pytest.approx(0.75)
    assert q.mean_leverage == pytest.approx((30 * 10 + 90 * 20) / 120)
    assert q.max_cohort_fraction == pytest.approx(1.0)
    r = adl(book, p, 90.0, 120.0, "pro_rata")
    assert r.closed[:, 1].tolist() == pytest.approx([40.0, 40.0, 40.0])
    assert r.cohorts_hit == 3 and r.max_cohort_fraction == pytest.approx(4 / 9)
    assert r.mean_profit == pytest.approx((0.2 + 1 + 2) / 3)
    assert adl(book, p, 90.0, 1e6, "queue").amount_usd == pytest.approx(270.0)  # capped


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"breaker_drop": 1.5}, r"market policy 'bad': breaker_drop=1.5 must be in \(0, 1\)"),
        ({"staged_fraction": 0.0}, r"staged_fraction=0.0"),
        ({"fund_capacity_usd": -1.0}, r"fund_capacity_usd must be >= 0"),
    ],
)
def test_impossible_policies_are_named_errors(kwargs, match):
    with pytest.raises(MarketConfigError, match=match):
        MarketPolicy(name="bad", **kwargs)


def test_mmr_path_of_the_wrong_shape_or_beyond_the_margin_is_an_error():
    c, lo, hi = _path([100, 99])
    book, vol = _one_cohort(), _quiet(2)
    with pytest.raises(MarketConfigError, match=r"mmr_path has shape \(3, 1\), expected \(2, 1\)"):
        replay_policy(book, TEN_X, vol, c, lo, hi, None, MarketPolicy(mmr_path=np.zeros((3, 1))))
    with pytest.raises(MarketConfigError, match=r"in \[0, 1/L\)"):
        replay_policy(
            book, TEN_X, vol, c, lo, hi, None, MarketPolicy(mmr_path=np.full((2, 1), 0.2))
        )
    with pytest.raises(MarketConfigError, match="unknown ADL rule 'fifo'"):
        adl(book, TEN_X, 90.0, 1.0, "fifo")


def test_bad_debt_is_the_fill_beyond_bankruptcy_moved_by_the_rounds_own_impact():
    c, lo, hi = _path([100, 90])
    book, vol = _one_cohort(), _quiet(2)
    imp = SqrtImpact(sigma_day=0.02, adv_usd=90.5, half_life_steps=math.inf)  # I = 0.02 after
    got = replay_policy(book, TEN_X, vol, c, lo, hi, imp)
    assert got.impact[1] == pytest.approx(0.02)
    assert got.bad_debt_usd.tolist() == pytest.approx([0.0, 90.0 - 90.5 * math.exp(-0.02)])


def test_a_vault_opened_in_the_window_joins_the_book_and_a_liquidated_one_leaves_it():
    c, lo, hi = _path([100, 100, 88, 88, 88])
    book, vol = _one_cohort(coins=0.0), _quiet(5)
    vaults = VaultBook(
        collateral=np.array([0.0]), debt=np.array([0.0]), threshold=1 / 1.5,
        event_step=np.array([0, 0, 4]), event_vault=np.array([0, 0, 0]),
        event_coll=np.array([1.0, 0.0, 5.0]), event_debt=np.array([0.0, 60.0, 0.0]),
    )  # fmt: skip
    got = replay_policy(book, TEN_X, vol, c, lo, hi, None, vaults=vaults)
    # deposit + draw at step 0; unsafe at the oracle 88 (step 3); the top-up at step 4 comes late
    assert got.defi_liq_usd.tolist() == pytest.approx([0, 0, 0, 88.0, 0])


def test_forecast_ratio_is_walk_forward_and_scaled_by_the_lead_in_median():
    from pipelines.attribution.policies import asof_ratio

    hour = np.timedelta64(1, "h")
    start = np.datetime64("2022-06-13T00:00", "us")
    origins = start + np.arange(-24 * 40, 48) * hour
    sigma = np.where(origins < start, 0.02, 0.04)
    steps = start + np.arange(48) * hour
    full = asof_ratio(origins, sigma, steps, start)
    # step 0 reads the forecast made at the close of the bar before it (lead-in level): ratio 1
    assert full[0] == pytest.approx(1.0) and full[1:].tolist() == pytest.approx([2.0] * 47)
    cut = origins < start + 10 * hour  # delete every forecast from 10:00 on
    part = asof_ratio(origins[cut], sigma[cut], steps, start)
    np.testing.assert_array_equal(part[:11], full[:11])  # nothing later was read


def test_voluntary_closes_spare_a_halted_position():
    c, lo, hi = _path([100, 100, 100, 85, 85, 85, 80, 80])
    book, vol = _one_cohort(), _quiet(8)
    vol = CohortRun(TEN_X, *([np.zeros(8)] * 4), np.full((8, 1), 0.5), np.zeros(8), np.zeros(8))
    pol = MarketPolicy(name="cb", breaker_drop=0.10, breaker_lookback=2, breaker_cooldown=3)
    sq = replay_policy(book, TEN_X, vol, c, lo, hi, None)
    cb = replay_policy(book, TEN_X, vol, c, lo, hi, None, pol)
    # three quiet steps halve the cohort three times; the halted steps do not
    assert sq.liq_long_usd.sum() == pytest.approx(90.5 / 8)
    assert cb.liq_long_usd[6] == pytest.approx(90.5 / 8) and cb.liq_long_usd.sum() == pytest.approx(
        90.5 / 8
    )
