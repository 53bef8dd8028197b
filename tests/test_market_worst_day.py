"""Fast tier: the worst-day diagnosis (book at a day's start, what the day's low liquidates)."""

from __future__ import annotations

import numpy as np

from backtest.market.cohorts import CohortParams, MarketSeries, PriceGrid
from backtest.market.fit import Selection
from pipelines.attribution.worst_day import book_at_day


def _series(low_day2: float) -> MarketSeries:
    n = 72  # three days of hourly bars at a constant price of 100
    close = np.full(n, 100.0)
    low = close.copy()
    low[48 + 5] = low_day2  # one hour of day 2 dips
    return MarketSeries(
        asset="BTC",
        ts=np.datetime64("2021-01-01T00:00") + np.arange(n) * np.timedelta64(1, "h"),
        low=low,
        high=close.copy(),
        close=close,
        oi_usd=np.full(n, 1e9),
        funding_8h=np.full(n, np.nan),
        step_days=1.0 / 24.0,
    )


def _selection(params: CohortParams, share: float) -> Selection:
    return Selection(params, 0, None, share, np.full(4, share), 0.0, 3)


def test_book_at_day_by_hand():
    # no turnover: the book stays the opening one, tier weights w of OI (in coins) per side
    params = CohortParams(
        lev_median=5.0, lev_spread=1.0, funding_k=0.0, turnover_per_day=0.0, tiers=(2.0, 10.0)
    )
    w = params.tier_weights()
    s = _series(85.0)
    grid = PriceGrid.covering(50.0, 120.0)
    out = book_at_day(s, _selection(params, 0.1), 2, grid)
    np.testing.assert_allclose(out["drawdown"], 0.15, rtol=1e-12)  # 1 − 85/100
    # levered long book = share × OI (the long half of 2·a·OI)
    np.testing.assert_allclose(out["book_long_usd"], 0.1 * 1e9, rtol=1e-9)
    # a fall to 85 liquidates the 10x tier (liquidation price e·(1 − 1/10 + 0.005) ≈ 90.5, e the
    # entry bin's price ≈ 100) and not the 2x tier (≈ 50.5): notional at the liquidation price
    e = float(grid.prices[grid.bin_of(100.0)])
    assert abs(e / 100.0 - 1.0) < 0.005
    np.testing.assert_allclose(
        out["liquidatable_at_low_usd"], 0.1 * w[1] * (1e9 / 100.0) * e * 0.905, rtol=1e-9
    )
    # the day's hourly run liquidates exactly that tier once (no turnover, the gap is refilled
    # at the hour's close and never meets a lower low)
    np.testing.assert_allclose(out["predicted_long_usd"], out["liquidatable_at_low_usd"], rtol=1e-9)
    assert out["levered_share"] == 0.1


def test_book_at_day_without_a_fall_liquidates_nothing():
    params = CohortParams(turnover_per_day=0.0, tiers=(2.0, 10.0))
    out = book_at_day(_series(100.0), _selection(params, 0.05), 1, PriceGrid.covering(50, 120))
    assert out["drawdown"] == 0.0
    assert out["liquidatable_at_low_usd"] == 0.0
    assert out["predicted_long_usd"] == 0.0
    np.testing.assert_allclose(out["book_long_usd"], 0.05 * 1e9, rtol=1e-9)
