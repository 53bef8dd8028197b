"""Scheduled refits plus a drift test (walk_forward(drift_check_every=...)) on synthetic data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import ClassVar

import numpy as np
import polars as pl
from polars.testing import assert_frame_equal

import forecasting as fcst
from forecasting.models.garch import GARCH

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _bars(n: int, seed: int, shift_at: int | None = None) -> pl.DataFrame:
    """GARCH(1,1)-t returns; volatility ×4 from ``shift_at`` on."""
    rng = np.random.default_rng(seed)
    omega, alpha, beta = 2e-7, 0.08, 0.9
    var = omega / (1 - alpha - beta)
    r = np.empty(n)
    for i in range(n):
        r[i] = np.sqrt(var) * rng.standard_t(6) * np.sqrt(4 / 6)
        var = omega + alpha * r[i] ** 2 + beta * var
    if shift_at is not None:
        r[shift_at:] *= 4.0
    close = 100 * np.exp(np.concatenate([[0.0], np.cumsum(r)]))
    return pl.DataFrame(
        {
            "ts": [T0 + timedelta(hours=i) for i in range(n + 1)],
            "open": close,
            "high": close,
            "low": close,
            "close": close,
            "volume": 1.0,
        }
    )


class CountingGARCH(GARCH):
    """GARCH that records the sample size of every fit."""

    fits: ClassVar[list[int]] = []

    def fit(self, returns, exog=None, *, rv=None):  # type: ignore[no-untyped-def]
        CountingGARCH.fits.append(len(returns))
        return super().fit(returns, exog, rv=rv)


def _run(bars: pl.DataFrame, **kw: object) -> pl.DataFrame:
    return fcst.walk_forward(bars, CountingGARCH(), horizon_bars=[1, 24], min_train=500, **kw)


def test_schedule_plus_drift_refits_rarely_in_calm_data_and_early_after_a_break() -> None:
    calm = _bars(1700, seed=0)
    CountingGARCH.fits.clear()
    _run(calm, refit_every=168, drift_check_every=24)
    calm_fits = list(CountingGARCH.fits)
    assert len(calm_fits) <= 10  # 1201 origins: 8 scheduled refits (+ rare false alarms)
    broken = _bars(1700, seed=0, shift_at=900)
    CountingGARCH.fits.clear()
    _run(broken, refit_every=168, drift_check_every=24)
    fits = CountingGARCH.fits
    # the drift test refits before the weekly schedule at least once after the break
    early = [b for a, b in zip(fits, fits[1:], strict=False) if b - a < 168]
    assert early and min(early) > 900, fits
    CountingGARCH.fits.clear()
    _run(calm, refit_every=24)
    assert len(CountingGARCH.fits) == 51  # origins 500..1700


def test_drift_schedule_is_walk_forward_honest() -> None:
    bars = _bars(1500, seed=3, shift_at=1100)
    cut = 1033
    t = bars["ts"][cut]
    base = _run(bars, refit_every=168, drift_check_every=24)
    truncated = _run(bars.filter(pl.col("ts") < t), refit_every=168, drift_check_every=24)
    shocked = bars.with_columns(
        pl.when(pl.col("ts") >= t).then(pl.col("close") * 1.7).otherwise(pl.col("close"))
    )
    altered = _run(shocked, refit_every=168, drift_check_every=24)
    before = pl.col("origin_ts") < t
    for other in (truncated, altered):
        assert_frame_equal(other.filter(before), base.filter(before), check_exact=True)
    assert not altered.filter(~before).equals(base.filter(~before))
