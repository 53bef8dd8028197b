"""Returns, resampling, realized variance, gap filling and as-of feature alignment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import forecasting as fcst
from forecasting.errors import InvalidBarsError

pytestmark = pytest.mark.integration  # needs the real-data mirror

T0 = datetime(2024, 8, 5, tzinfo=UTC)


def _bars(closes: list[float], step_min: int = 5, **extra: list[float]) -> pl.DataFrame:
    ts = [T0 + timedelta(minutes=step_min * i) for i in range(len(closes))]
    return pl.DataFrame({"ts": ts, "close": closes, **extra})


def test_log_returns() -> None:
    out = fcst.log_returns(_bars([100.0, 110.0, 99.0]))
    assert out.columns == ["ts", "ret"]
    np.testing.assert_allclose(out["ret"].to_numpy(), np.log([1.1, 0.9]))
    assert out["ts"][0] == T0 + timedelta(minutes=5)


def test_check_bars_messages() -> None:
    with pytest.raises(InvalidBarsError, match="rename"):
        fcst.log_returns(_bars([1.0, 2.0]).rename({"ts": "date"}))
    with pytest.raises(InvalidBarsError, match="non-positive"):
        fcst.log_returns(_bars([1.0, 0.0]))
    dup = pl.concat([_bars([1.0, 2.0]), _bars([1.0])])
    with pytest.raises(InvalidBarsError, match="deduplicate"):
        fcst.log_returns(dup)


def test_resample_bars_only_complete_buckets() -> None:
    n = 30  # 2.5 hours of 5-minute bars starting on the hour
    closes = list(np.linspace(100, 129, n))
    bars = _bars(
        closes,
        open=[c - 0.5 for c in closes],
        high=[c + 1 for c in closes],
        low=[c - 1 for c in closes],
        volume=[1.0] * n,
    )
    out = fcst.resample_bars(bars, 3600)
    assert out.height == 2  # the last half hour is incomplete
    first = out.row(0, named=True)
    assert first["ts"] == T0
    assert first["open"] == closes[0] - 0.5
    assert first["close"] == closes[11]
    assert first["high"] == max(closes[:12]) + 1 and first["low"] == min(closes[:12]) - 1
    assert first["volume"] == 12.0 and first["n_sub"] == 12
    holed = bars.filter(pl.col("ts") != T0 + timedelta(minutes=20))
    assert fcst.resample_bars(holed, 3600, sub_bar_seconds=300)["ts"].to_list() == [
        T0 + timedelta(hours=1)
    ]
    with pytest.raises(InvalidBarsError, match="multiple"):
        fcst.resample_bars(bars, 1000)


def test_realized_variance_sums_sub_returns_and_falls_back() -> None:
    rng = np.random.default_rng(1)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, 36)))
    fine = _bars(list(closes))
    rv = fcst.realized_variance(fine, 3600)
    r = np.diff(np.log(closes))
    # hour 1 = sub-bars 12..23; its first sub-return starts at the close of sub-bar 11
    assert rv["ts"].to_list() == [T0 + timedelta(hours=1), T0 + timedelta(hours=2)]
    np.testing.assert_allclose(rv["rv"].to_numpy(), [np.sum(r[11:23] ** 2), np.sum(r[23:35] ** 2)])
    assert rv["n_sub"].to_list() == [12, 12]
    # one sub-bar per target bar: squared return
    hourly = _bars([100.0, 101.0, 99.0], step_min=60)
    one = fcst.realized_variance(hourly, 3600)
    np.testing.assert_allclose(one["rv"].to_numpy(), np.log([1.01, 99 / 101]) ** 2)
    assert one["n_sub"].to_list() == [1, 1]
    # a missing sub-bar → fallback to the squared hourly return
    holed = fine.filter(pl.col("ts") != T0 + timedelta(minutes=90))
    fb = fcst.realized_variance(holed, 3600, bars=fcst.resample_bars(fine, 3600))
    hourly_r = np.log(closes[23] / closes[11])
    assert fb["rv"][0] == pytest.approx(hourly_r**2)
    assert fb["n_sub"][0] == 1


def test_realized_variance_on_real_5m(mirror_dir: Path) -> None:
    path = mirror_dir / "imsatoshi__GeneTrader"
    files = sorted(path.rglob("BTC*5m*.feather"))
    if not files:
        pytest.skip("no BTC 5m feather in this mirror")
    fine = pl.read_ipc(files[0]).rename({"date": "ts"}).head(24 * 12 * 10)
    hourly = fcst.resample_bars(fine, 3600)
    rv = fcst.realized_variance(fine, 3600)
    assert rv.height == hourly.height - 1
    assert (rv["rv"] > 0).all()
    # 5-minute RV is of the same order as the squared hourly return on average
    r2 = np.diff(np.log(hourly["close"].to_numpy())) ** 2
    assert 0.3 < rv["rv"].mean() / r2.mean() < 3


def test_regularize_bars_is_causal() -> None:
    bars = _bars([100.0, 101.0, 103.0], step_min=60, volume=[1.0, 2.0, 3.0])
    holed = bars.filter(pl.col("close") != 101.0)
    out = fcst.regularize_bars(holed, bar_seconds=3600)
    assert out.height == 3
    assert out["close"].to_list() == [100.0, 100.0, 103.0]  # filled from the past only
    assert out["filled"].to_list() == [False, True, False]
    assert out["volume"].to_list() == [1.0, 0.0, 3.0]


def test_realized_targets() -> None:
    bars = _bars([100.0, 101.0, 99.0, 102.0], step_min=60)
    out = fcst.realized_targets(bars, 2)
    r = np.diff(np.log([100.0, 101.0, 99.0, 102.0]))
    assert out["origin_ts"].to_list() == [T0, T0 + timedelta(hours=1)]
    np.testing.assert_allclose(out["realized_return"].to_numpy(), [r[0] + r[1], r[1] + r[2]])
    np.testing.assert_allclose(
        out["realized_var"].to_numpy(), [r[0] ** 2 + r[1] ** 2, r[1] ** 2 + r[2] ** 2]
    )
    assert (out["horizon_hours"] == 2.0).all()


def test_align_features_never_looks_forward() -> None:
    bars = _bars([100.0, 101.0, 102.0, 103.0], step_min=60)
    feats = pl.DataFrame(
        {
            "ts": [
                T0 + timedelta(minutes=30),
                T0 + timedelta(hours=2),
                T0 + timedelta(hours=2, minutes=1),
            ],
            "funding": [0.1, 0.2, 0.3],
        }
    )
    out = fcst.align_features(bars, feats)
    # bar 0 closes at 01:00 → sees 00:30; bar 1 closes at 02:00 → sees 02:00 (equal is known);
    # bar 2 closes at 03:00 → 02:01; the value at 02:01 is never given to bar 1.
    assert out["funding"].to_list() == [0.1, 0.2, 0.3, 0.3]
    late = fcst.align_features(bars, feats.with_columns(pl.col("ts") + timedelta(hours=5)))
    assert late["funding"].null_count() == 4
    with pytest.raises(InvalidBarsError, match="rename"):
        fcst.align_features(bars, feats.rename({"funding": "close"}))
    stale = fcst.align_features(bars, feats.head(1), tolerance="1h")
    assert stale["funding"].to_list() == [0.1, None, None, None]


def test_recent_drawdown() -> None:
    out = fcst.recent_drawdown(_bars([100.0, 110.0, 99.0, 120.0], step_min=60), window_bars=2)
    np.testing.assert_allclose(out["drawdown_2"].to_numpy(), [0.0, 0.0, 99 / 110 - 1, 0.0])


@pytest.mark.parametrize("unit", ["ns", "us", "ms"])
def test_align_features_keeps_the_time_unit_of_the_bars(unit: str) -> None:
    """Nanosecond bars (freqtrade feather files) used to raise a SchemaError in the join."""
    bars = _bars([100.0, 101.0, 102.0, 103.0], step_min=60).with_columns(
        pl.col("ts").dt.cast_time_unit(unit)
    )
    feats = pl.DataFrame(
        {
            "ts": [T0 + timedelta(minutes=30), T0 + timedelta(hours=2)],
            "funding": [0.1, 0.2],
        }
    ).with_columns(pl.col("ts").dt.cast_time_unit("ns"))
    out = fcst.align_features(bars, feats, bar_seconds=3600, tolerance="2h")
    assert out.schema["ts"] == bars.schema["ts"]
    assert out["funding"].to_list() == [0.1, 0.2, 0.2, 0.2]
    inferred = fcst.align_features(bars, feats)
    assert inferred["funding"].to_list() == [0.1, 0.2, 0.2, 0.2]
