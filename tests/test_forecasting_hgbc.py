"""HGB of the correction to an EWMA base (model ``hgbc``) on synthetic returns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
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
