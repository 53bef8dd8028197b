"""Fast tier: the level and crowding rules of the cohort-model fit on synthetic series with known
answers."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from backtest.market.cohorts import BookState, CohortParams, MarketSeries, PriceGrid, run_cohorts
from backtest.market.errors import MarketConfigError
from backtest.market.fit import (
    CohortFit,
    CrowdingRule,
    fit_cohorts,
    funding_crowding,
    intraday_drop,
    oi_growth_crowding,
    select_pooled,
    trailing_level,
    trailing_mean,
)


def test_trailing_level_is_the_geometric_mean_of_the_previous_window_by_hand():
    unit = np.ones(6)
    rep = np.array([2.0, 8.0, 4.0, 1.0, 16.0, 2.0])
    c = trailing_level(unit, rep, np.ones(6, bool), 2, min_days=1)
    # c_t = geometric mean of rep/unit over days t-2, t-1 (fewer at the start: c_0 has no day
    # before it and takes the first min_days = 1 day's ratio, 2)
    expected = [2.0, 2.0, 4.0, math.sqrt(32), 2.0, 4.0, math.sqrt(32)]
    c3 = trailing_level(unit, rep, np.ones(6, bool), 2, min_days=3)
    # with min_days = 3 every window of 2 days is short: the level of the first 3 days throughout
    np.testing.assert_allclose(c3, np.full(7, 64 ** (1 / 3)), rtol=1e-12)
    np.testing.assert_allclose(c, expected, rtol=1e-12)
    assert len(c) == 7  # c_n: the level after the last day
    # no window: constant share
    np.testing.assert_array_equal(trailing_level(unit, rep, np.ones(6, bool), None), np.ones(7))


def test_trailing_level_uses_only_calibration_days_and_nothing_from_day_t_on():
    rng = np.random.default_rng(1)
    unit = rng.uniform(1, 2, 200)
    rep = unit * np.exp(rng.normal(0, 0.3, 200))
    calib = np.ones(200, bool)
    calib[100:105] = False  # an "event": never used by the level
    c = trailing_level(unit, rep, calib, 30)
    rep2 = rep.copy()
    rep2[100:105] *= 1e6  # the event's figures do not move any level
    np.testing.assert_array_equal(trailing_level(unit, rep2, calib, 30), c)
    rep3 = rep.copy()
    rep3[150:] *= 50.0  # later data never changes an earlier level (walk-forward)
    c3 = trailing_level(unit, rep3, calib, 30)
    np.testing.assert_array_equal(c3[:151], c[:151])
    assert c3[151] > c[151]


def test_trailing_level_rejects_a_bad_window_and_no_data():
    with pytest.raises(MarketConfigError, match="window_days"):
        trailing_level(np.ones(3), np.ones(3), np.ones(3, bool), 0)
    with pytest.raises(MarketConfigError, match="no calibration day"):
        trailing_level(np.ones(3), np.ones(3), np.zeros(3, bool), 5)


def test_select_recovers_a_regime_shift_in_the_levered_share():
    # unit-scale predictions of two candidates; the truth is candidate 1 with a share that is
    # 0.2 for 300 days and 0.02 afterwards: the trailing level fits it, the constant share not
    rng = np.random.default_rng(7)
    n = 600
    base = rng.lognormal(18, 1.0, (2, n))
    share = np.where(np.arange(n) < 300, 0.2, 0.02)
    rep_l = share * base[1]
    rep_s = share * base[1] * 0.5
    fit = CohortFit([CohortParams(lev_median=5.0), CohortParams(lev_median=20.0)], base, base * 0.5)
    mask = np.ones(n, bool)
    const = fit.select(rep_l, rep_s, mask)
    sel = fit.select(rep_l, rep_s, mask, windows=(None, 10, 100))
    assert sel.candidate == 1 and sel.window_days == 10
    assert sel.loss < const.loss / 10
    assert sel.params.lev_median == 20.0
    # b < 1 only because the 10 days after the switch are over-predicted
    assert sel.scale == pytest.approx(1.0, rel=0.05)
    # the share in force at a day of the first regime and after the last day
    assert sel.params_at(200).levered_share == pytest.approx(0.2 * sel.scale, rel=1e-9)
    assert sel.params.levered_share == pytest.approx(0.02 * sel.scale, rel=1e-9)
    pl_, ps_ = fit.predict(sel)
    np.testing.assert_allclose(pl_[320:], rep_l[320:] * sel.scale, rtol=1e-9)
    np.testing.assert_allclose(ps_[:290], rep_s[:290] * sel.scale, rtol=1e-9)


def test_constant_share_selection_matches_the_cohort_run_at_that_share():
    n = 120
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.03, n)))
    s = MarketSeries(
        asset="ETH",
        ts=np.arange(n) * 86_400,
        low=close * np.exp(-np.abs(rng.normal(0, 0.03, n))),
        high=close * np.exp(np.abs(rng.normal(0, 0.03, n))),
        close=close,
        oi_usd=np.full(n, 1e9),
        funding_8h=np.full(n, np.nan),
        step_days=1.0,
    )
    truth = run_cohorts(s, CohortParams(levered_share=0.08, lev_median=20.0))
    fit = fit_cohorts(s, grid={"lev_median": (5.0, 20.0)})
    sel = fit.select(truth.liq_long_usd, truth.liq_short_usd, np.ones(n, bool))
    assert sel.window_days is None and sel.params.lev_median == 20.0
    pl_, _ = fit.predict(sel)
    np.testing.assert_allclose(pl_, truth.liq_long_usd, rtol=1e-6)


def test_intraday_rule_liquidates_a_cohort_opened_and_crossed_within_the_day():
    # day 0 flat at 100 with 1,000 coins of OI; day 1: at hour 24 the price is 105 and OI grows
    # to 1,100 coins (100 new levered coins a side at 105); hour 30's low of 95 crosses the new
    # 10x longs (105.127 · 0.905 = 95.14 on the 0.5 % grid) but not the old ones (90.5)
    one = CohortParams(
        levered_share=0.25, lev_median=10.0, funding_k=0.0, turnover_per_day=0.0, tiers=(10.0,)
    )
    close = np.full(48, 100.0)
    close[24] = 105.0
    low, high = close.copy(), close.copy()
    low[30] = 95.0
    coins = np.where(np.arange(48) < 24, 1_000.0, 1_100.0)
    grid = PriceGrid(g0=math.log(100.0) - 400 * 0.005, step=0.005, n=600)
    hourly = MarketSeries(
        asset="BTC", ts=np.arange(48) * 3_600, low=low, high=high, close=close,
        oi_usd=coins * close, funding_8h=np.full(48, np.nan), step_days=1 / 24,
    )  # fmt: skip
    run = run_cohorts(hourly, one, grid=grid)
    day = run.liq_long_usd.reshape(2, 24).sum(axis=1)
    entry = 100.0 * math.exp(10 * 0.005)  # the grid bin nearest 105
    assert day[0] == 0.0
    assert day[1] == pytest.approx(0.25 * 100 * entry * 0.905, rel=1e-9)
    # the same two days as daily bars: the day-1 openings sit at the close and nothing crosses
    daily = MarketSeries(
        asset="BTC", ts=np.arange(2) * 86_400, low=np.array([100.0, 95.0]),
        high=np.array([100.0, 105.0]), close=np.array([100.0, 100.0]),
        oi_usd=np.array([100_000.0, 110_000.0]), funding_8h=np.full(2, np.nan), step_days=1.0,
    )  # fmt: skip
    assert run_cohorts(daily, one, grid=grid).liq_long_usd.sum() == 0.0


def test_intraday_drop_by_hand():
    low = np.array([90.0, 95.0, 70.0, 110.0])
    close = np.array([100.0, 100.0, 80.0, 120.0])
    # day 0 has no previous close; day 1: 1 − 95/100; day 2: 1 − 70/100; day 3 stays above 80
    np.testing.assert_allclose(intraday_drop(low, close), [0.0, 0.05, 0.30, 0.0], atol=1e-15)
    assert intraday_drop(np.array([5.0]), np.array([6.0])).tolist() == [0.0]


# --- the crowding rule (a share that responds to funding observed before day t) -------------


def test_trailing_mean_by_hand_skips_missing_days_and_uses_only_earlier_days():
    x = np.array([1.0, np.nan, 3.0, 5.0])
    out = trailing_mean(x, 2, default=-1.0)
    # out[t] = mean of the finite x[s], t-2 <= s < t; none at t = 0, and x[1] is missing
    np.testing.assert_allclose(out, [-1.0, 1.0, 1.0, 3.0, 4.0])
    with pytest.raises(MarketConfigError, match="window_days"):
        trailing_mean(x, 0)


def test_funding_crowding_is_sign_aware_by_hand():
    # 8-hour funding 5 bp, 5 bp, -3 bp, -3 bp; baseline 1 bp; 2-day window
    f = np.array([5e-4, 5e-4, -3e-4, -3e-4])
    rule = funding_crowding(f, 2, (0.0, 0.1))
    # F_t - f0: t=0 none (baseline: 0), t=1: 4, t=2: 4, t=3: (5-3)/2-1 = 0, t=4: -4
    np.testing.assert_allclose(rule.x_long, [0.0, 4.0, 4.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(rule.x_short, [0.0, 0.0, 0.0, 0.0, 4.0], atol=1e-12)
    ml, ms = rule.multipliers(0.1)
    # positive funding: longs crowded, more long liquidations; negative: more short ones
    np.testing.assert_allclose(ml, np.exp(0.1 * np.array([0, 4, 4, 0, 0])), rtol=1e-12)
    np.testing.assert_allclose(ms, np.exp(0.1 * np.array([0, 0, 0, 0, 4])), rtol=1e-12)
    assert not rule.symmetric
    with pytest.raises(MarketConfigError, match="at least one beta"):
        CrowdingRule("x", np.zeros(3), np.zeros(3), ())


def _crowded_truth(beta: float, n: int = 400, seed: int = 3):
    """Unit predictions, daily funding and reports ``0.1 · unit · exp(β · x)`` (known answer)."""
    rng = np.random.default_rng(seed)
    unit = rng.lognormal(18, 1.0, (2, n))
    # funding regimes: quiet (~1 bp), crowded longs (~6 bp), crowded shorts (~-3 bp)
    f = np.repeat(rng.choice([1e-4, 6e-4, -3e-4], n // 20), 20) + rng.normal(0, 2e-5, n)
    rule = funding_crowding(f, 14, (0.0, 0.1, 0.2, 0.3))
    ml, ms = rule.multipliers(beta)
    rep_l = 0.1 * unit[0] * ml[:-1]
    rep_s = 0.1 * unit[1] * ms[:-1]
    # the truth is candidate 1; candidate 0 has the sides swapped
    cands = [CohortParams(lev_median=5.0), CohortParams(lev_median=20.0)]
    fit = CohortFit(cands, unit[::-1].copy(), unit.copy())
    return fit, f, rule, rep_l, rep_s


def test_select_recovers_the_crowding_beta_and_its_side_multipliers():
    fit, _, rule, rep_l, rep_s = _crowded_truth(0.2)
    mask = np.ones(len(rep_l), bool)
    sel = fit.select(rep_l, rep_s, mask, crowding=rule)
    assert sel.crowding_beta == 0.2 and sel.window_days is None and sel.candidate == 1
    assert sel.scale == pytest.approx(0.1, rel=1e-6)
    assert sel.loss < 1e-12
    pl_, ps_ = fit.predict(sel)
    np.testing.assert_allclose(pl_, rep_l, rtol=1e-6)
    np.testing.assert_allclose(ps_, rep_s, rtol=1e-6)
    # without the rule the same days are not fitted
    assert fit.select(rep_l, rep_s, mask).loss > 0.01
    # the share in force excludes the multipliers; they come per side
    day = int(np.argmax(rule.x_long))
    assert sel.params_at(day).levered_share == pytest.approx(0.1, rel=1e-6)
    m_long, m_short = sel.multipliers_at(day)
    assert m_long == pytest.approx(math.exp(0.2 * rule.x_long[day]), rel=1e-12)
    assert m_short == 1.0 and m_long > 2.0
    with pytest.raises(MarketConfigError, match="crowding feature"):
        fit.select(rep_l, rep_s, mask, crowding=CrowdingRule("x", np.zeros(5), np.zeros(5), (0,)))


def test_crowding_prediction_at_t_ignores_funding_from_t_on():
    fit, f, _, rep_l, rep_s = _crowded_truth(0.2)
    t = 250
    mask = np.arange(len(f)) < t  # fitted on days before t only
    kw = {"windows": (None, 30)}
    rule = funding_crowding(f, 14, (0.0, 0.1, 0.2, 0.3))
    f2 = f.copy()
    f2[t:] = 3e-3  # 30 bp from day t on: only later predictions may change
    rule2 = funding_crowding(f2, 14, (0.0, 0.1, 0.2, 0.3))
    np.testing.assert_array_equal(rule2.x_long[: t + 1], rule.x_long[: t + 1])
    a = fit.predict(fit.select(rep_l, rep_s, mask, crowding=rule, **kw))
    b = fit.predict(fit.select(rep_l, rep_s, mask, crowding=rule2, **kw))
    for side in (0, 1):
        np.testing.assert_array_equal(a[side][: t + 1], b[side][: t + 1])
    assert b[0][t + 1] > 1.01 * a[0][t + 1]  # the changed funding does reach day t + 1
    assert b[0][t + 14] > 10.0 * a[0][t + 14]


def test_tilted_book_scales_each_side():
    grid = PriceGrid.covering(90.0, 110.0)
    book = BookState.empty(grid, 2)
    book.long[0, 3], book.short[1, 4] = 2.0, 5.0
    t = book.tilted(3.0, 0.5)
    assert t.long[0, 3] == 6.0 and t.short[1, 4] == 2.5 and book.long[0, 3] == 2.0
    with pytest.raises(MarketConfigError, match="must be > 0"):
        book.tilted(0.0, 1.0)


def test_share_forms_of_the_crowding_rule_by_hand():
    f = np.array([5e-4, -1e-4, np.nan])
    share = funding_crowding(f, 1, (0.1,), sign_aware=False)
    # one multiplier of the share: F_t - f0 with its sign (t=3 has no funding: baseline)
    np.testing.assert_allclose(share.x_long, [0.0, 4.0, -2.0, 0.0], atol=1e-12)
    assert share.symmetric
    oi = np.array([100.0, 200.0, 400.0, 400.0])
    g = oi_growth_crowding(oi, 2, (1.0,))
    # mean daily log growth over the 2 days before t, ending at day t-1's close
    ln2 = math.log(2.0)
    np.testing.assert_allclose(g.x_long, [0.0, 0.0, ln2, ln2, ln2 / 2], atol=1e-12)


def test_select_pooled_finds_the_common_beta_and_weights_assets_by_their_days():
    # asset A's truth is beta 0.2, asset B's 0.3 with three times the fit days: alone each
    # recovers its own; pooled, the common beta is the one of the larger asset (by days)
    fa, _, rule_a, rl_a, rs_a = _crowded_truth(0.2, n=200, seed=3)
    fb, _, rule_b, rl_b, rs_b = _crowded_truth(0.3, n=600, seed=4)
    args = [
        (rl_a, rs_a, np.ones(200, bool), {"crowding": rule_a}),
        (rl_b, rs_b, np.ones(600, bool), {"crowding": rule_b}),
    ]
    alone = [f.select(rl, rs, m, **kw) for f, (rl, rs, m, kw) in zip((fa, fb), args)]
    assert [s.crowding_beta for s in alone] == [0.2, 0.3]
    pooled = select_pooled([fa, fb], args)
    assert [s.crowding_beta for s in pooled] == [0.3, 0.3]
    assert pooled[1].loss < 1e-12 < pooled[0].loss

    # the pooled loss (day-weighted) is the smallest over the grid: beta 0.2 for both is worse
    def pooled_loss(sels):  # noqa: ANN001, ANN202
        return sum(s.loss * s.n_days for s in sels) / sum(s.n_days for s in sels)

    at_02 = [
        f.select(rl, rs, m, crowding=replace(kw["crowding"], betas=(0.2,)))
        for f, (rl, rs, m, kw) in zip((fa, fb), args)
    ]
    assert pooled_loss(pooled) < pooled_loss(at_02)
    # one candidate for both: the truth is candidate 1 for both, so it is kept
    both = select_pooled([fa, fb], args, pool_candidate=True)
    assert [s.candidate for s in both] == [1, 1]
    pl_, _ = fb.predict(both[1])
    np.testing.assert_allclose(pl_, rl_b, rtol=1e-6)
    with pytest.raises(MarketConfigError, match="crowding rule"):
        select_pooled([fa], [(rl_a, rs_a, np.ones(200, bool), {})])
    with pytest.raises(MarketConfigError, match="beta grid"):
        select_pooled(
            [fa, fb], [args[0], (*args[1][:3], {"crowding": replace(rule_b, betas=(0.0,))})]
        )
