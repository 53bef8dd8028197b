"""HGB of the correction to an EWMA base (model ``hgbc``) on synthetic returns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import forecasting as fcst
from forecasting.models.hgbc import ewma_base

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _returns(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_t(5, n) * 0.01 * np.sqrt(3 / 5)


def test_ewma_base_is_causal() -> None:
    v = _returns(500, 0) ** 2
    full = ewma_base(v, 0.94)
    np.testing.assert_array_equal(ewma_base(v[:300], 0.94), full[:300])


def test_hgbc_follows_a_spike_above_its_training_targets_where_hgb_cannot() -> None:
    r = _returns(2000, 1)
    spike = np.concatenate([r, _returns(48, 2) * 10.0])  # variance x100 after the sample
    hgb = fcst.make_model("hgb").fit(r)
    hgbc = fcst.make_model("hgbc").fit(r)
    top = np.sqrt(np.max(r**2))  # largest training target (1 h)
    s_hgb = hgb.predict_path(spike, horizon_bars=1, n_last=24)
    s_hgbc = hgbc.predict_path(spike, horizon_bars=1, n_last=24)
    assert s_hgb.max() <= top
    assert np.median(s_hgbc) > 3 * np.median(s_hgb)


def test_hgbc_walk_forward_is_honest() -> None:
    r = _returns(1400, 3)
    close = 100 * np.exp(np.concatenate([[0.0], np.cumsum(r)]))
    bars = pl.DataFrame(
        {
            "ts": [T0 + timedelta(hours=i) for i in range(close.size)],
            "open": close,
            "high": close,
            "low": close,
            "close": close,
            "volume": 1.0,
        }
    )
    bars = fcst.recent_drawdown(bars, window_bars=24)
    kw = {"horizon_bars": [1, 24], "min_train": 900, "exog_cols": ("drawdown_24",)}
    model = fcst.make_model("hgbc", max_iter=20)
    base = fcst.walk_forward(bars, model, **kw)
    t = bars["ts"][1111]
    cut = fcst.walk_forward(bars.filter(pl.col("ts") < t), model, **kw)
    before = pl.col("origin_ts") < t
    assert_frame_equal(cut.filter(before), base.filter(before), check_exact=True)
    assert base["sigma"].is_finite().all()


def test_hgbch_learns_intraday_seasonality_that_har_cannot() -> None:
    n = 3000
    bars = pl.DataFrame({"ts": [T0 + timedelta(hours=i) for i in range(n + 1)]})
    bars = fcst.next_bar_hour(bars.with_columns(close=pl.lit(1.0)))
    hour = bars["next_hour"].to_numpy()[:-1]  # hour of the bar of returns[m + 1]
    vol = np.where(np.r_[0.0, hour[:-1]] >= 12, 0.02, 0.005)  # returns[m]: its own bar's hour
    r = _returns(n, 4) / 0.01 * vol
    x = hour[:, None]
    train, test = slice(0, 2000), slice(0, n - 1)
    hgbch = fcst.make_model("hgbch", horizons=(1,)).fit(r[train], x[train])
    har = fcst.make_model("har", horizons=(1,)).fit(r[train])
    s = hgbch.predict_path(r[test], x[test], horizon_bars=1, n_last=900)
    s_har = har.predict_path(r[test], horizon_bars=1, n_last=900)
    realized = r[n - 900 :] ** 2
    assert fcst.qlike(realized, s**2) < fcst.qlike(realized, s_har**2) - 0.2
    # without the calendar there is nothing to correct: the forecast stays near the HAR base
    plain = fcst.make_model("hgbch", horizons=(24,)).fit(r[train])
    base = fcst.make_model("har", horizons=(24,)).fit(r[train])
    ratio = plain.predict_path(r, horizon_bars=24, n_last=500) / base.predict_path(
        r, horizon_bars=24, n_last=500
    )
    assert np.median(np.abs(np.log(ratio))) < 0.1


def test_hgbch_walk_forward_is_honest_with_the_calendar_feature() -> None:
    r = _returns(1400, 3)
    close = 100 * np.exp(np.concatenate([[0.0], np.cumsum(r)]))
    bars = pl.DataFrame(
        {"ts": [T0 + timedelta(hours=i) for i in range(close.size)], "close": close}
    )
    bars = fcst.next_bar_hour(fcst.recent_drawdown(bars, window_bars=24))
    assert bars["next_hour"][0] == 1.0 and bars["next_hour"][23] == 0.0
    kw = {"horizon_bars": [1, 24], "min_train": 900, "exog_cols": ("drawdown_24", "next_hour")}
    model = fcst.make_model("hgbch", max_iter=20)
    base = fcst.walk_forward(bars, model, **kw)
    t = bars["ts"][1111]
    cut = fcst.walk_forward(bars.filter(pl.col("ts") < t), model, **kw)
    before = pl.col("origin_ts") < t
    assert_frame_equal(cut.filter(before), base.filter(before), check_exact=True)
    assert base["sigma"].is_finite().all()


def test_correction_models_share_hgb_parameters_with_their_own_defaults() -> None:
    from sklearn.base import clone

    from forecasting.models.hgbc import CORRECTION_DEFAULTS

    hgb = fcst.make_model("hgb").get_params()
    for name, extra in (("hgbc", {"lam": 0.94}), ("hgbch", {})):
        params = fcst.make_model(name).get_params()
        assert params == {**hgb, **CORRECTION_DEFAULTS, **extra}
        custom = fcst.make_model(name, max_iter=7, min_samples_leaf=50)
        assert (custom.max_iter, custom.min_samples_leaf) == (7, 50)
        assert clone(custom).get_params() == custom.get_params()
        with pytest.raises(TypeError):
            fcst.make_model(name, no_such_parameter=1)
