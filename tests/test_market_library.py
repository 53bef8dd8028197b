"""Fast tier: the market-wide replay library on synthetic books with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from backtest.errors import BacktestError
from backtest.impact import SqrtImpact
from backtest.market.cohorts import CohortParams, MarketSeries, PriceGrid, run_cohorts
from backtest.market.errors import MarketInputError
from backtest.market.fit import fit_cohorts, fit_scale
from backtest.market.replay import cascade_share, decascade, drawdown, replay

STEP = 0.005


def _grid_at(price: float, n_below: int = 400, n: int = 600) -> PriceGrid:
    return PriceGrid(g0=math.log(price) - n_below * STEP, step=STEP, n=n)


def _series(low, high, close, oi_usd, funding=None, asset="BTC"):
    n = len(close)
    return MarketSeries(
        asset=asset,
        ts=np.arange(n, dtype=np.int64) * 86_400,
        low=np.asarray(low, float),
        high=np.asarray(high, float),
        close=np.asarray(close, float),
        oi_usd=np.asarray(oi_usd, float),
        funding_8h=np.full(n, np.nan) if funding is None else np.asarray(funding, float),
        step_days=1.0,
    )


ONE_TIER = CohortParams(
    levered_share=0.25, lev_median=10.0, funding_k=0.0, turnover_per_day=0.0, tiers=(10.0,)
)


def test_known_cohort_is_liquidated_at_its_price_and_size():
    # 1,000 coins of OI opened at 100; 10x longs liquidate at 100·(1 − 0.1 + 0.005) = 90.5.
    s = _series(
        low=[100, 95, 91, 90, 99],
        high=[100, 100, 100, 100, 112],
        close=[100, 96, 92, 95, 100],
        oi_usd=[100_000, 96_000, 92_000, 95_000, 100_000],
    )
    run = run_cohorts(s, ONE_TIER, grid=_grid_at(100.0))
    expected_long = 0.25 * 1_000 * 100 * 0.905
    assert run.liq_long_usd[:3].sum() == 0
    assert run.liq_long_usd[3] == pytest.approx(expected_long, rel=1e-9)
    # shorts opened at 100 liquidate at 100·(1 + 0.1 − 0.005) = 109.5 (shorts opened later at
    # lower prices are liquidated too: step 4's high 112 crosses every short's price).
    assert run.liq_short_usd[:4].sum() == 0
    assert run.liq_short_usd[4] > 0.25 * 1_000 * 100 * 1.095 * 0.9


def test_book_tracks_open_interest_and_funding_split():
    n = 30
    close = np.full(n, 100.0)
    oi = np.linspace(1e6, 2e6, n)
    p = CohortParams(levered_share=0.1, funding_k=1.0, turnover_per_day=0.0)
    run = run_cohorts(_series(close, close, close, oi, funding=np.full(n, 3e-4)), p)
    # levered notional both sides = 2 · share · OI
    np.testing.assert_allclose(run.long_usd + run.short_usd, 2 * 0.1 * oi, rtol=1e-9)
    # 3 bp funding (2 bp above the 1 bp baseline): new OI goes long 0.5 + 0.45·tanh(2)
    s = 0.5 + 0.45 * math.tanh(2.0)
    added_long = run.long_usd[-1] - run.long_usd[0]
    added = (run.long_usd + run.short_usd)[-1] - (run.long_usd + run.short_usd)[0]
    assert added_long / added == pytest.approx(s, rel=1e-9)


def test_predictions_are_proportional_to_levered_share_and_scale_is_recovered():
    rng = np.random.default_rng(0)
    n = 300
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.03, n)))
    low = close * np.exp(-np.abs(rng.normal(0, 0.02, n)))
    high = close * np.exp(np.abs(rng.normal(0, 0.02, n)))
    oi = 1e9 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    s = _series(low, high, close, oi)
    unit = run_cohorts(s, CohortParams(levered_share=1.0))
    scaled = run_cohorts(s, CohortParams(levered_share=0.07))
    np.testing.assert_allclose(scaled.liq_long_usd, 0.07 * unit.liq_long_usd, rtol=1e-9)
    pu = np.concatenate([unit.liq_long_usd, unit.liq_short_usd])
    assert fit_scale(pu, 0.07 * pu) == pytest.approx(0.07, rel=1e-6)
    # the grid search finds the generating candidate and scale among others
    truth = CohortParams(levered_share=0.05, lev_median=10.0, turnover_per_day=0.1)
    rep = run_cohorts(s, truth)
    fit = fit_cohorts(s, grid={"lev_median": (3.0, 10.0, 30.0), "turnover_per_day": (0.1, 1.0)})
    sel = fit.select(rep.liq_long_usd, rep.liq_short_usd, np.ones(n, bool))
    assert sel.params.lev_median == 10.0 and sel.params.turnover_per_day == 0.1
    assert sel.params.levered_share == pytest.approx(0.05, rel=1e-4)


def _cascade_setup():
    """A book of 10x/20x longs under a 12 % fundamental decline, with strong impact."""
    n = 24
    f_close = 100 * np.exp(np.linspace(0, math.log(0.88), n))
    f_low, f_high = f_close * 0.999, f_close * 1.001
    oi = np.full(n, 2e9)
    p = CohortParams(
        levered_share=0.5, funding_k=0.0, turnover_per_day=0.0, tiers=(10.0, 20.0), lev_median=14
    )
    s = _series(f_close, f_close, f_close, oi)  # voluntary flows of a quiet window
    grid = _grid_at(100.0)
    s0 = _series([100.0], [100.0], [100.0], [2e9])
    book = run_cohorts(s0, p, grid=grid).final
    vol = run_cohorts(s, p, grid=grid, initial=book)
    imp = SqrtImpact(sigma_day=0.04, adv_usd=2e9, half_life_steps=math.inf)
    return book, p, vol, f_close, f_low, f_high, imp


def test_decascade_of_a_synthetic_cascade_recovers_the_injected_share():
    book, p, vol, f_close, f_low, f_high, imp = _cascade_setup()
    rep = replay(book, p, vol, f_close, f_low, f_high, imp)
    no_fb = replay(book, p, vol, f_close, f_low, f_high, None)
    assert rep.liq_long_usd.sum() > no_fb.liq_long_usd.sum() * 0.99
    assert rep.rounds.max() >= 2  # a cascade: liquidations triggering liquidations
    injected = cascade_share(drawdown(rep.close, rep.low), drawdown(f_close, f_low))
    assert 0.1 < injected < 0.9
    # observed = the replayed path; the observed flow = the replay's net forced sales
    flow = rep.liq_long_usd - rep.liq_short_usd
    obs_high = f_high * np.exp(-rep.impact)
    dc = decascade(rep.close, rep.low, obs_high, flow, imp)
    np.testing.assert_allclose(dc.close, f_close, rtol=1e-9)
    recovered = cascade_share(drawdown(rep.close, rep.low), drawdown(dc.close, dc.low))
    assert recovered == pytest.approx(injected, abs=1e-9)
    # the replay on the recovered fundamental path regenerates the observed one
    again = replay(book, p, vol, dc.close, dc.low, dc.high, imp)
    np.testing.assert_allclose(again.close, rep.close, rtol=1e-9)


def test_no_impact_replay_on_the_observed_path_is_the_estimator():
    book, p, vol, f_close, f_low, f_high, _ = _cascade_setup()
    rep = replay(book, p, vol, f_close, f_low, f_high, None)
    np.testing.assert_allclose(rep.close, f_close)
    assert np.all(rep.impact == 0)


def test_drawdown_uses_lows_against_the_running_peak():
    assert drawdown(np.array([100, 120, 90, 110]), np.array([99, 110, 60, 100])) == 0.5
    assert cascade_share(0.5, 0.4) == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("oi_usd", -5.0, r"open_interest, asset BTC, at 172800: negative open interest"),
        ("oi_usd", np.nan, r"open_interest, asset BTC, at 172800: open interest is missing"),
        ("close", np.nan, r"prices, asset BTC, at 172800: close price is missing"),
    ],
)
def test_bad_input_names_table_asset_and_timestamp(field, value, match):
    cols = {k: np.full(5, 100.0) for k in ("low", "high", "close", "oi_usd")}
    cols[field][2] = value
    with pytest.raises(MarketInputError, match=match) as err:
        _series(**cols)
    assert isinstance(err.value, BacktestError)


def test_gap_in_steps_is_an_error():
    n = 5
    with pytest.raises(MarketInputError, match=r"prices, asset ETH, at 345601: steps are not"):
        MarketSeries(
            asset="ETH",
            ts=np.array([0, 86_400, 172_800, 259_200, 345_600]) + np.array([0, 0, 0, 0, 1]),
            low=np.ones(n),
            high=np.ones(n),
            close=np.ones(n),
            oi_usd=np.ones(n),
            funding_8h=np.zeros(n),
            step_days=1.0,
        )


def test_impact_slope_recovers_a_known_multiplier():
    from backtest.market.check import impact_slope, predicted_returns

    rng = np.random.default_rng(3)
    flow = rng.normal(0, 2e8, 2_000)
    pred = predicted_returns(flow, np.full(2_000, 0.04), np.full(2_000, 5e9))
    obs = 2.0 * pred + rng.normal(0, 0.002, 2_000)
    s = impact_slope(obs, pred)
    assert s.slope_lo < 2.0 < s.slope_hi
    assert s.slope_lo > 1 and "understates" in s.verdict
    assert s.r2 > 0.5 and s.n == 2_000
