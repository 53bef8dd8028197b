"""Forecast scores on known inputs, and the long score frame on real forecasts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

import forecasting as fcst
from forecasting.errors import InvalidBarsError
from forecasting.scores import qlike_losses, var_quantile

pytestmark = pytest.mark.integration  # needs the real-data mirror

BTC = "Roshan7869__algotrading/user_data/data/binance/BTC_USDT-1h.feather"


def test_qlike_zero_at_perfect_forecast_and_positive_otherwise() -> None:
    rv = np.array([1e-4, 4e-4, 2.5e-5])
    assert fcst.qlike(rv, rv) == pytest.approx(0.0, abs=1e-15)
    assert fcst.qlike(rv, 2 * rv) == pytest.approx(0.5 - np.log(0.5) - 1)
    assert fcst.qlike(rv, 0.5 * rv) > fcst.qlike(rv, 2 * rv)  # under-prediction costs more
    losses = qlike_losses(np.array([0.0, 1e-4]), np.array([1e-4, 1e-4]))
    assert np.isnan(losses[0]) and losses[1] == 0.0
    assert fcst.mse(rv, rv) == 0.0
    assert fcst.mse([1.0, 2.0], [2.0, 2.0]) == 0.5


def test_mincer_zarnowitz() -> None:
    f = np.linspace(1.0, 2.0, 50)
    mz = fcst.mincer_zarnowitz(2.0 * f + 0.5, f)
    assert (mz.alpha, mz.beta, mz.r2, mz.n) == pytest.approx((0.5, 2.0, 1.0, 50))
    with pytest.raises(AttributeError):
        mz.beta = 1.0  # type: ignore[misc]  # frozen result


def test_diebold_mariano() -> None:
    rng = np.random.default_rng(0)
    base = rng.gamma(2.0, 1.0, 2000)
    better = base - 0.3 + rng.normal(0, 0.1, 2000)
    dm = fcst.diebold_mariano(better, base, horizon_bars=1)
    assert dm.stat < -10 and dm.pvalue < 1e-6
    flipped = fcst.diebold_mariano(base, better)
    assert flipped.stat == pytest.approx(-dm.stat)
    same = fcst.diebold_mariano(base + rng.normal(0, 1e-3, 2000), base)
    assert same.pvalue > 0.01
    assert fcst.diebold_mariano(base, better, horizon_bars=24).lags >= 23


def test_kupiec_exact_rate_has_pvalue_one() -> None:
    hits = np.zeros(1000, dtype=bool)
    hits[::20] = True  # exactly 5 %
    lr, p = fcst.kupiec_pof(hits, 0.05)
    assert lr == pytest.approx(0.0, abs=1e-9) and p == pytest.approx(1.0)
    lr_bad, p_bad = fcst.kupiec_pof(np.r_[np.ones(100, bool), np.zeros(900, bool)], 0.05)
    assert p_bad < 1e-6


def test_christoffersen_detects_clustering() -> None:
    spread = np.zeros(1000, dtype=bool)
    spread[::20] = True
    clustered = np.zeros(1000, dtype=bool)
    clustered[500:550] = True  # same 5 % rate, all in one run
    ok = fcst.christoffersen(spread, 0.05)
    bad = fcst.christoffersen(clustered, 0.05)
    assert ok.hit_rate == bad.hit_rate == 0.05
    assert ok.kupiec_pvalue == pytest.approx(1.0) and bad.kupiec_pvalue == pytest.approx(1.0)
    assert bad.independence_pvalue < 1e-10 < ok.independence_pvalue
    assert bad.cc_pvalue < 1e-10
    assert ok.level == pytest.approx(0.95)


def test_var_quantiles_documented() -> None:
    assert var_quantile(0.99) == pytest.approx(2.3263, abs=1e-4)
    assert var_quantile(0.95) == pytest.approx(1.6449, abs=1e-4)
    # unit-variance Student-t: thinner at 95 %, fatter at 99.9 %
    assert var_quantile(0.95, var_dist="t", t_df=4) < var_quantile(0.95)
    assert var_quantile(0.999, var_dist="t", t_df=4) > var_quantile(0.999)
    hits = fcst.var_hits([-0.03, -0.01, 0.02], [0.01, 0.01, 0.01], 0.99)
    assert hits.tolist() == [True, False, False]


def test_score_forecasts_long_frame(mirror_dir: Path) -> None:
    bars = pl.read_ipc(mirror_dir / BTC).rename({"date": "ts"})
    bars = bars.filter(pl.col("ts") < pl.datetime(2022, 11, 10, time_zone="UTC")).tail(1400)
    fc = pl.concat(
        [
            fcst.walk_forward(bars, name, horizon_bars=[1, 24], min_train=720)
            for name in ("garch", "ewma", "har")
        ]
    )
    realized = pl.concat([fcst.realized_targets(bars, h) for h in (1, 24)])
    scores = fcst.score_forecasts(fc, realized, benchmark="garch")
    assert scores.columns == ["model", "horizon_hours", "metric", "value"]
    wide = scores.pivot("metric", index=["model", "horizon_hours"], values="value")
    assert wide.height == 6
    assert {"qlike", "mse", "mz_r2", "var95_hit_rate", "var99_kupiec_p", "var99_cc_p"} <= set(
        wide.columns
    )
    ewma1 = wide.filter(pl.col("model") == "ewma", pl.col("horizon_hours") == 1.0).row(
        0, named=True
    )
    assert ewma1["n"] == 1400 - 720 - 1  # the last origin has no realized target yet
    assert np.isfinite(ewma1["dm_stat"]) and 0 <= ewma1["dm_pvalue"] <= 1
    garch = wide.filter(pl.col("model") == "garch")
    assert garch["dm_stat"].is_null().all()  # the benchmark is not tested against itself
    assert (wide["qlike"] > 0).all() and (wide["var95_hit_rate"] < 0.3).all()
    # 24 h VaR is evaluated on non-overlapping windows
    h24 = wide.filter(pl.col("horizon_hours") == 24.0)["var95_n"].to_list()
    assert all(n <= (1400 - 720) / 24 + 1 for n in h24)
    with pytest.raises(InvalidBarsError, match="realized_targets"):
        fcst.score_forecasts(fc, realized.drop("realized_var"))
