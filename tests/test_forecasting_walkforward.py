"""Walk-forward engine: schema, refit semantics and THE honesty test (no look-ahead)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from arch import arch_model
from polars.testing import assert_frame_equal

import forecasting as fcst
from forecasting.errors import InvalidBarsError, NotEnoughHistoryError

pytestmark = pytest.mark.integration  # needs the real-data mirror

BTC = "Roshan7869__algotrading/user_data/data/binance/BTC_USDT-1h.feather"
# 1,000 hourly BTC bars ending inside the Celsius / 3AC crash (W4, 2022-06-13).
END = datetime(2022, 6, 14, 16, tzinfo=UTC)
N_BARS = 1000
MIN_TRAIN = 500


@pytest.fixture(scope="module")
def bars(mirror_dir: Path) -> pl.DataFrame:
    raw = pl.read_ipc(mirror_dir / BTC).rename({"date": "ts"})
    out = raw.filter(pl.col("ts") < END).tail(N_BARS)
    assert out.height == N_BARS
    return fcst.recent_drawdown(out, window_bars=24)


# smaller ensembles keep the suite fast; the engine and the code paths are the same
_LIGHT = {"hgb": {"max_iter": 30}, "rf": {"n_estimators": 12}}


def _run(bars: pl.DataFrame, name: str, **kw) -> pl.DataFrame:
    exog = ("drawdown_24",) if fcst.MODELS[name].uses_exog else ()
    model = fcst.make_model(name, **_LIGHT.get(name, {}))
    return fcst.walk_forward(
        bars, model, horizon_bars=[1, 24], refit_every=24, min_train=MIN_TRAIN, exog_cols=exog, **kw
    )


def test_output_schema_and_origins(bars: pl.DataFrame) -> None:
    fc = _run(bars, "garch")
    assert fc.columns == ["model", "origin_ts", "horizon_hours", "sigma"]
    assert fc.schema["origin_ts"] == bars.schema["ts"]
    assert sorted(fc["horizon_hours"].unique().to_list()) == [1.0, 24.0]
    one = fc.filter(pl.col("horizon_hours") == 1.0)
    # first origin has exactly MIN_TRAIN returns before it; the last bar is an origin too
    assert one["origin_ts"][0] == bars["ts"][MIN_TRAIN]
    assert one["origin_ts"][-1] == bars["ts"][-1]
    assert one.height == N_BARS - MIN_TRAIN
    assert (fc["sigma"] > 0).all() and fc["sigma"].is_finite().all()
    assert (fc["model"] == "garch").all()


@pytest.mark.parametrize("name", sorted(fcst.MODELS))
def test_walk_forward_is_honest(bars: pl.DataFrame, name: str) -> None:
    """Altering or deleting bars after t leaves every forecast with origin_ts < t identical."""
    cut = 777  # not on a refit boundary (refits at 500, 524, ...)
    t = bars["ts"][cut]
    base = _run(bars, name)

    truncated = bars.filter(pl.col("ts") < t)
    rng = np.random.default_rng(42)
    shock = np.ones(bars.height)
    shock[cut:] = np.exp(np.cumsum(rng.normal(0.0, 0.05, bars.height - cut)))
    altered = fcst.recent_drawdown(
        bars.drop("drawdown_24").with_columns(
            (pl.col(c) * shock).alias(c) for c in ("open", "high", "low", "close")
        ),
        window_bars=24,
    )
    before = pl.col("origin_ts") < t
    ref = base.filter(before)
    assert ref.height == 2 * (cut - MIN_TRAIN)
    alt = _run(altered, name)
    for other in (_run(truncated, name), alt):
        got = other.filter(before)
        assert_frame_equal(got, ref, check_exact=True)
        assert got["sigma"].to_numpy().tobytes() == ref["sigma"].to_numpy().tobytes()
    # the test has teeth: the altered future does change forecasts from t on
    after_alt = alt.filter(~before)["sigma"].to_numpy()
    after_base = base.filter(~before)["sigma"].to_numpy()
    assert not np.array_equal(after_alt, after_base)


def test_between_refits_equals_arch_fix(bars: pl.DataFrame) -> None:
    """Between refits, GARCH forecasts equal arch's own forecast with the parameters fixed."""
    fc = fcst.walk_forward(bars, "garch", horizon_bars=[1, 24], refit_every=24, min_train=MIN_TRAIN)
    r = np.diff(np.log(bars["close"].to_numpy()))
    refit = MIN_TRAIN + 48
    chain = fcst.GARCH()  # replay walk_forward's warm-started refit chain: 500, 524, 548
    for b in range(MIN_TRAIN, refit + 1, 24):
        chain.fit(r[:b])
    assert chain.n_obs_ == refit
    y = r * chain.scale_
    for h in (1, 24):
        for i in range(refit, refit + 24):
            fixed = arch_model(y[:i], mean="Constant", vol="GARCH", p=1, q=1, dist="t").fix(
                chain.params_
            )
            var = fixed.forecast(horizon=h, reindex=False).variance.to_numpy()[-1].sum()
            expect = np.sqrt(var) / chain.scale_
            got = fc.filter(
                (pl.col("horizon_hours") == h) & (pl.col("origin_ts") == bars["ts"][i])
            )["sigma"].item()
            assert got == pytest.approx(expect, rel=1e-10)


def test_ewma_refit_schedule_irrelevant(bars: pl.DataFrame) -> None:
    """EWMA has no estimated parameters: updating between refits == refitting every bar."""
    a = fcst.walk_forward(bars, "ewma", refit_every=24, min_train=MIN_TRAIN)
    b = fcst.walk_forward(bars, "ewma", refit_every=1, min_train=MIN_TRAIN)
    assert_frame_equal(a, b, check_exact=False, rel_tol=1e-12)


def test_rolling_window_and_start_end(bars: pl.DataFrame) -> None:
    start = bars["ts"][600]
    end = bars["ts"][700]
    fc = fcst.walk_forward(
        bars,
        fcst.GJRGARCH(dist="skewt"),
        window="rolling",
        window_bars=400,
        min_train=MIN_TRAIN,
        start=start,
        end=end,
        model_name="gjr-skewt",
    )
    assert fc.height == 100
    assert fc["origin_ts"].min() == start and fc["origin_ts"].max() < end
    assert (fc["model"] == "gjr-skewt").all()
    with pytest.raises(ValueError, match="window_bars"):
        fcst.walk_forward(bars, "garch", window="rolling", min_train=MIN_TRAIN)


def test_not_enough_history_says_how_to_fix(bars: pl.DataFrame) -> None:
    with pytest.raises(NotEnoughHistoryError, match="lower min_train"):
        fcst.walk_forward(bars, "har", min_train=720, start=bars["ts"][100])
    with pytest.raises(NotEnoughHistoryError, match="Load more bars"):
        fcst.walk_forward(bars.head(300), "garch", min_train=720)


def test_gaps_are_filled_causally_or_rejected(bars: pl.DataFrame) -> None:
    holed = bars.filter(~pl.col("ts").is_between(bars["ts"][850], bars["ts"][852]))
    with pytest.raises(InvalidBarsError, match="regularize_bars"):
        fcst.walk_forward(holed, "ewma", min_train=MIN_TRAIN, fill_gaps=False)
    fc = fcst.walk_forward(holed, "ewma", min_train=MIN_TRAIN)
    assert fc.height == N_BARS - MIN_TRAIN  # the grid is restored
    full = fcst.walk_forward(bars, "ewma", min_train=MIN_TRAIN)
    t = bars["ts"][850]
    assert_frame_equal(fc.filter(pl.col("origin_ts") < t), full.filter(pl.col("origin_ts") < t))


def test_model_is_not_mutated(bars: pl.DataFrame) -> None:
    model = fcst.HAR(horizons=(1,))
    fcst.walk_forward(bars, model, horizon_bars=24, min_train=MIN_TRAIN)
    assert model.horizons == (1,)
    assert not hasattr(model, "n_obs_")


def test_start_accepts_naive_datetime(bars: pl.DataFrame) -> None:
    start = bars["ts"][900].replace(tzinfo=None)
    fc = fcst.walk_forward(bars, "ewma", min_train=MIN_TRAIN, start=start)
    assert fc.height == 100
    assert fc["origin_ts"][0] == bars["ts"][900]
    assert fc["origin_ts"][0] - start.replace(tzinfo=UTC) == timedelta(0)


def test_rv_column_feeds_har(bars: pl.DataFrame) -> None:
    """A per-bar RV column equal to squared returns reproduces the default HAR exactly."""
    with_rv = bars.with_columns(rv=(pl.col("close").log().diff() ** 2).fill_null(0.0))
    a = fcst.walk_forward(bars, "har", min_train=MIN_TRAIN, horizon_bars=24)
    b = fcst.walk_forward(with_rv, "har", min_train=MIN_TRAIN, horizon_bars=24, rv_col="rv")
    assert_frame_equal(a, b, check_exact=False, rel_tol=1e-12)
    doubled = with_rv.with_columns(pl.col("rv") * 2.0)
    c = fcst.walk_forward(doubled, "har", min_train=MIN_TRAIN, horizon_bars=24, rv_col="rv")
    np.testing.assert_allclose(c["sigma"].to_numpy(), a["sigma"].to_numpy() * np.sqrt(2.0))
    with pytest.raises(InvalidBarsError, match="not in bars"):
        fcst.walk_forward(bars, "har", min_train=MIN_TRAIN, rv_col="nope")
