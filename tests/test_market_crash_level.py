"""Fast tier: the crash-day level of the cohort-model fit on synthetic series with known answers."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from backtest.market.cohorts import CohortParams, MarketSeries, PriceGrid, run_cohorts
from backtest.market.crash_level import CrashLevelRule, trailing_crash_mean
from backtest.market.errors import MarketConfigError
from backtest.market.fit import CohortFit, fit_cohorts, intraday_drop, trailing_level


def test_trailing_crash_mean_by_hand():
    x = np.array([1.0, 5.0, 2.0, 7.0, 4.0, 9.0])
    usable = np.array([True, False, True, True, False, True])
    m = trailing_crash_mean(x, usable, 2, 10)
    # usable days 0, 2, 3, 5; t needs 2 of them before it: t=3 -> (1+2)/2, t=4,5 -> (2+7)/2,
    # t=6 -> (7+9)/2; the unusable days' values (5, 4) never enter
    expected = [np.nan, np.nan, np.nan, 1.5, 4.5, 4.5, 8.0]
    np.testing.assert_allclose(m, expected, equal_nan=True)
    # look-back cap 2 days: the older of the two must be at most 2 days before t
    capped = trailing_crash_mean(x, usable, 2, 2)
    np.testing.assert_allclose(capped, [np.nan] * 4 + [4.5, np.nan, np.nan], equal_nan=True)
    with pytest.raises(MarketConfigError, match="k=0"):
        trailing_crash_mean(x, usable, 0, 10)
    with pytest.raises(MarketConfigError, match="max_lookback_days"):
        trailing_crash_mean(x, usable, 1, 0)


def test_crash_level_excess_and_level_forms_by_hand():
    unit = np.ones(5)
    rep = np.array([2.0, 8.0, 2.0, 32.0, 8.0])
    crash = np.array([False, True, False, True, True])
    calib = np.array([True, True, True, True, True])
    c = np.full(6, 2.0)  # the ordinary level, say
    # excess, k = 1: a crash day takes c_t times the last crash day's reported / (unit * c_s)
    ex = CrashLevelRule(crash, (0, 1), mode="excess").level(unit, rep, calib, c, 1)
    # day 1: no crash day before -> c; day 3: day 1's 8 / 2 = 4 -> 2 * 4; day 4: day 3's 16
    np.testing.assert_allclose(ex, [2.0, 2.0, 2.0, 8.0, 32.0, 2.0])
    # level, k = 2: the geometric mean of the last two crash days' reported / unit
    lv = CrashLevelRule(crash, (2,), mode="level").level(unit, rep, calib, c, 2)
    np.testing.assert_allclose(lv, [2.0, 2.0, 2.0, 2.0, 16.0, 2.0])
    # everywhere: the share a crash would get on every day (the replay's share)
    ev = CrashLevelRule(crash, (1,), mode="level").level(unit, rep, calib, c, 1, everywhere=True)
    np.testing.assert_allclose(ev, [2.0, 2.0, 8.0, 8.0, 32.0, 8.0])
    # an event day (not a calibration day) never calibrates
    no3 = calib.copy()
    no3[3] = False
    lv3 = CrashLevelRule(crash, (1,), mode="level").level(unit, rep, no3, c, 1)
    np.testing.assert_allclose(lv3, [2.0, 2.0, 2.0, 8.0, 8.0, 2.0])
    # k = 0: the ordinary level
    np.testing.assert_array_equal(CrashLevelRule(crash).level(unit, rep, calib, c, 0), c)
    with pytest.raises(MarketConfigError, match="mode"):
        CrashLevelRule(crash, mode="deep")


def _crash_truth(n: int = 600, seed: int = 11):
    """Reports 0.1 · unit on quiet days and 0.1 · unit · X_t on crash days (X_t regimes)."""
    rng = np.random.default_rng(seed)
    unit = rng.lognormal(18, 0.5, (2, n))
    crash = rng.random(n) < 0.2
    # the crash-day excess moves in slow regimes (the deep book's size): 4 then 1.5 then 6
    x = np.where(np.arange(n) < 200, 4.0, np.where(np.arange(n) < 400, 1.5, 6.0))
    mult = np.where(crash, x, 1.0)
    rep_l, rep_s = 0.1 * unit[1] * mult, 0.1 * unit[1] * 0.5 * mult
    cands = [CohortParams(lev_median=5.0), CohortParams(lev_median=20.0)]
    fit = CohortFit(cands, unit.copy(), unit * 0.5)
    return fit, crash, rep_l, rep_s


def test_select_with_the_crash_level_fits_a_crash_excess_a_constant_level_cannot():
    fit, crash, rep_l, rep_s = _crash_truth()
    mask = crash.copy()  # the loss on crash-like days, as the pipeline's base fit
    calib = np.ones(len(crash), bool)  # the level may use every day
    kw = {"calib_mask": calib, "windows": (None,)}
    plain = fit.select(rep_l, rep_s, mask, **kw)
    rule = CrashLevelRule(crash, (0, 1, 3, 10), mode="excess")
    sel = fit.select(rep_l, rep_s, mask, crash=rule, **kw)
    assert sel.crash_k == 1 and sel.candidate == 1
    assert sel.loss < plain.loss / 5
    pl_, _ = fit.predict(sel)
    # away from the regime switches a crash day is predicted exactly (the last crash day's
    # excess) times b; b is 1 but for the two crash days right after a switch
    assert sel.scale == pytest.approx(1.0, abs=0.05)
    inner = crash & (np.arange(len(crash)) > 250) & (np.arange(len(crash)) < 400)
    np.testing.assert_allclose(pl_[inner], sel.scale * rep_l[inner], rtol=1e-9)
    # the replay's share on a quiet day is the crash share: b times 0.1 times the middle
    # regime's excess 1.5 (the ordinary share there is b times 1)
    t = int(np.flatnonzero(~crash & (np.arange(len(crash)) > 300))[0])
    assert sel.crash_params_at(t).levered_share == pytest.approx(0.15 * sel.scale, rel=1e-9)
    assert sel.params_at(t).levered_share == pytest.approx(sel.scale, rel=1e-9)
    assert sel.params_at(t).levered_share == pytest.approx(sel.share[t], rel=1e-12)
    with pytest.raises(MarketConfigError, match="crash mask"):
        fit.select(rep_l, rep_s, mask, crash=CrashLevelRule(crash[:-1]), **kw)


def _series(n: int, seed: int = 5) -> MarketSeries:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.03, n)))
    low = close * np.exp(-np.abs(rng.normal(0, 0.04, n)))
    return MarketSeries(
        asset="BTC",
        ts=np.arange(n) * 86_400,
        low=np.minimum(low, close),
        high=close * np.exp(np.abs(rng.normal(0, 0.03, n))),
        close=close,
        oi_usd=1e9 * np.exp(np.cumsum(rng.normal(0, 0.02, n))),
        funding_8h=np.full(n, np.nan),
        step_days=1.0,
    )


def _walk_forward_predict(s: MarketSeries, rep_l, rep_s, t, mode, reentry):  # noqa: ANN001, ANN202
    """The fit on days before ``t`` (crash-day level unless ``mode="none"``); every day's
    predictions."""
    # a fixed entry-price grid (the default one's reach moves with later prices; its bins do
    # not: test_the_default_entry_grid_does_not_move_with_later_prices)
    grid = PriceGrid.covering(10.0, 1000.0)
    fit = fit_cohorts(s, grid={"lev_median": (5.0, 20.0), "reentry": reentry}, price_grid=grid)
    crash = intraday_drop(s.low, s.close) >= 0.05
    n = len(s)
    before = np.arange(n) < t
    # no k = 0: the rule always in use
    rule = None if mode == "none" else CrashLevelRule(crash, (2, 5), mode=mode)
    sel = fit.select(
        rep_l, rep_s, before, calib_mask=np.ones(n, bool), windows=(None, 14), crash=rule
    )
    return fit.predict(sel), sel


@pytest.mark.parametrize(
    ("mode", "reentry"), [("excess", (0.0,)), ("level", (0.0,)), ("none", (0.5,))]
)
def test_prediction_at_t_ignores_reports_from_t_on_and_prices_after_t(mode, reentry):  # noqa: ANN001
    # the crash-day level (both forms) and the intraday re-entry share (forced to 0.5)
    n, t = 160, 110
    s = _series(n)
    rng = np.random.default_rng(1)
    rep_l = 1e7 * rng.lognormal(0, 1, n)
    rep_s = 1e7 * rng.lognormal(0, 1, n)
    (pl0, ps0), sel = _walk_forward_predict(s, rep_l, rep_s, t, mode, reentry)
    # the rule is in use (else the test could not fail)
    assert sel.crash_k > 0 if mode != "none" else sel.params.reentry == 0.5
    # reported liquidations changed on and after day t (and the fit still ends before t)
    rep_l2, rep_s2 = rep_l.copy(), rep_s.copy()
    rep_l2[t:] *= 50.0
    rep_s2[t:] = 0.0
    (pl1, ps1), _ = _walk_forward_predict(s, rep_l2, rep_s2, t, mode, reentry)
    np.testing.assert_array_equal(pl1[: t + 1], pl0[: t + 1])
    np.testing.assert_array_equal(ps1[: t + 1], ps0[: t + 1])
    # prices after day t: a crash on every later day (more crash-like days, other books)
    low2 = s.low.copy()
    low2[t + 1 :] = s.close[t + 1 :] * 0.8
    s2 = replace(s, low=low2)
    (pl2, ps2), _ = _walk_forward_predict(s2, rep_l, rep_s, t, mode, reentry)
    np.testing.assert_array_equal(pl2[: t + 1], pl0[: t + 1])
    np.testing.assert_array_equal(ps2[: t + 1], ps0[: t + 1])
    # the changes do reach later days (reports only through a level that reads them)
    if sel.crash_k > 0 or sel.window_days is not None:
        assert not np.allclose(pl1[t + 1 :], pl0[t + 1 :])
    assert not np.allclose(pl2[t + 1 :], pl0[t + 1 :])


def test_trailing_level_is_what_a_zero_k_crash_rule_leaves():
    fit, crash, rep_l, rep_s = _crash_truth(n=200)
    mask = np.ones(200, bool)
    a = fit.select(rep_l, rep_s, mask, windows=(30,))
    b = fit.select(rep_l, rep_s, mask, windows=(30,), crash=CrashLevelRule(crash, (0,)))
    assert b.crash_k == 0 and b.crash_share is None
    np.testing.assert_array_equal(a.share, b.share)
    c = trailing_level(fit.pred_long[a.candidate] + fit.pred_short[a.candidate],
                       rep_l + rep_s, mask, 30)  # fmt: skip
    np.testing.assert_allclose(a.share, a.scale * c, rtol=1e-12)
    assert math.isclose(a.loss, b.loss)


@pytest.mark.parametrize("rho", [0.5, 1.0])
def test_intraday_reentry_is_liquidated_again_by_the_next_leg_by_hand(rho: float):
    # one tier (10x), no maintenance margin, no turnover, constant open interest: step 1 falls
    # to 89 and liquidates every long (entered at 100, liquidation price 90); a share rho of
    # them re-opens at once at 89 and step 2's fall to 80 liquidates it again (at 0.9 x the
    # entry bin's price) on top of what the open-interest refill put there
    step = 0.005
    grid = PriceGrid(g0=math.log(100.0) - 500 * step, step=step, n=1000)
    close = np.array([100.0, 89.0, 80.0])
    s = MarketSeries(
        asset="BTC", ts=np.arange(3) * 3600, low=close, high=close, close=close,
        oi_usd=np.full(3, 1e6), funding_8h=np.full(3, np.nan), step_days=1 / 24,
    )  # fmt: skip
    p0 = CohortParams(tiers=(10.0,), mmr=0.0, turnover_per_day=0.0, lev_spread=0.7)
    base = run_cohorts(s, p0, grid=grid)
    re = run_cohorts(s, replace(p0, reentry=rho), grid=grid)
    q0 = 1e6 / 100.0  # long coins at the start
    assert base.liq_long_usd[1] == pytest.approx(q0 * 90.0, rel=1e-9)
    assert re.liq_long_usd[1] == pytest.approx(q0 * 90.0, rel=1e-9)
    p_liq = 0.9 * grid.prices[grid.bin_of(89.0)]
    assert re.liq_long_usd[2] - base.liq_long_usd[2] == pytest.approx(rho * q0 * p_liq, rel=1e-9)
    # the re-entry is recorded as an opening (the replay's voluntary flow)
    assert re.open_long[1] - base.open_long[1] == pytest.approx(rho * q0, rel=1e-9)
    with pytest.raises(MarketConfigError, match="reentry"):
        CohortParams(reentry=1.5)


@pytest.mark.parametrize("reentry", [0.0, 0.25])
def test_the_default_entry_grid_does_not_move_with_later_prices(reentry: float) -> None:
    # the default grid covers the whole series; its bins sit at fixed log prices, so a later
    # price far outside the earlier range (which extends the grid) leaves every earlier step's
    # book and liquidations as they were
    n, t = 120, 70
    s = _series(n, seed=9)
    p = CohortParams(reentry=reentry)
    before = run_cohorts(s, p)
    low2, high2 = s.low.copy(), s.high.copy()
    low2[t + 1 :] = s.close[t + 1 :] * 0.2  # a far lower low → the grid reaches further down
    high2[t + 1 :] = s.close[t + 1 :] * 3.0
    after = run_cohorts(replace(s, low=low2, high=high2), p)
    assert (
        PriceGrid.covering(low2.min(), high2.max()).n
        > PriceGrid.covering(s.low.min(), s.high.max()).n
    )
    for name in ("liq_long_usd", "liq_short_usd", "long_usd", "short_usd"):
        a, b = getattr(before, name)[: t + 1], getattr(after, name)[: t + 1]
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=0.0, err_msg=name)
    assert not np.allclose(after.liq_long_usd[t + 1 :], before.liq_long_usd[t + 1 :])
