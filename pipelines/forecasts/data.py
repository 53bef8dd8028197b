"""Warehouse → inputs of the forecasting library: hourly bars and stress features.

The price series is picked by its coverage of the first ``min_train`` hours only (data known
before the first forecast), so changing or deleting prices after a forecast origin never changes
the forecasts made before it. Stress features are chosen the same way (coverage judged on data
known at the first forecast origin); their values enter as known at each bar's close (never
later values), and become missing once they stop being updated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import duckdb
import polars as pl

import forecasting as fcst

__all__ = [
    "HourlyBars",
    "StressFeatures",
    "HOUR",
    "series_coverage",
    "load_hourly_bars",
    "load_stress_features",
    "IntradayRV",
    "load_intraday_rv",
]

HOUR = 3600
#: A series covering at least this share of the selection span counts as complete.
COMPLETE = 0.95
_MARKET_RANK = {"spot": 0, "perp": 1, "index": 2, "mark": 3}
_LIQ_VENUE_SET = "binance+okx+bybit"
_OHLCV = ("ts", "open", "high", "low", "close", "volume")


@dataclass(frozen=True, kw_only=True)
class HourlyBars:
    """Hourly bars of one asset and where they came from.

    Attributes
    ----------
    asset : str
        Asset symbol.
    bars : polars.DataFrame
        ``ts`` (bar open, UTC), ``open``, ``high``, ``low``, ``close``, ``volume``; hourly, sorted
        (gaps are possible; the walk-forward engine fills them causally).
    market, venue : str
        Series chosen in ``prices``.
    bar_seconds : int
        Bar size of that series (3600, or finer bars aggregated to complete hours).
    coverage : float
        Share of the selection span covered by the chosen series.
    """

    asset: str
    bars: pl.DataFrame
    market: str
    venue: str
    bar_seconds: int
    coverage: float

    @property
    def label(self) -> str:
        """``spot/binance/3600s`` style description of the source series."""
        agg = "" if self.bar_seconds == HOUR else " → 1h"
        return f"{self.market}/{self.venue}/{self.bar_seconds}s{agg}"


@dataclass(frozen=True, kw_only=True)
class StressFeatures:
    """Exogenous features for the machine-learning models.

    Attributes
    ----------
    frames : dict of str to polars.DataFrame
        Per kept feature: ``ts`` = time at which each value became known, and the value column
        named after the feature.
    tolerance : dict of str to timedelta
        Staleness limit per feature (older values become missing).
    notes : tuple of str
        Why a feature was dropped (for the run log).
    """

    frames: dict[str, pl.DataFrame] = field(default_factory=dict)
    tolerance: dict[str, timedelta] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        """Names of the kept features."""
        return tuple(self.frames)

    def attach(self, bars: pl.DataFrame) -> pl.DataFrame:
        """Append every kept feature to hourly ``bars`` as known at each bar's close.

        Uses :func:`forecasting.align_features` (as-of *backward* on the bar close), one feature
        at a time so each keeps its own staleness limit.
        """
        out = bars
        for name, frame in self.frames.items():
            out = fcst.align_features(
                out,
                frame,
                columns=[name],
                bar_seconds=HOUR,
                tolerance=f"{int(self.tolerance[name].total_seconds())}s",
            )
        return out


def series_coverage(
    con: duckdb.DuckDBPyConnection, asset: str, start: datetime, end: datetime
) -> pl.DataFrame:
    """Coverage of ``[start, end)`` by each price series of ``asset`` that divides an hour.

    Returns
    -------
    polars.DataFrame
        ``market, venue, bar_seconds, bars, coverage`` (share of the span's hours), best first:
        spot Binance 1 h when complete, then complete series finest first (spot before perp,
        index, mark; Binance before other venues), then incomplete ones by coverage.
    """
    hours = max((end - start).total_seconds() / HOUR, 1.0)
    frame = con.sql(
        "SELECT market, venue, bar_seconds, count(*) AS bars FROM prices "
        "WHERE asset = ? AND ts >= ? AND ts < ? AND bar_seconds <= 3600 "
        "AND 3600 % bar_seconds = 0 GROUP BY ALL",
        params=[asset, start, end],
    ).pl()
    if frame.height == 0:
        return frame.with_columns(coverage=pl.lit(0.0))
    frame = frame.with_columns(
        coverage=pl.min_horizontal(pl.col("bars") * pl.col("bar_seconds") / HOUR / hours, 1.0)
    )
    complete = pl.col("coverage") >= COMPLETE
    preferred = (
        complete
        & (pl.col("market") == "spot")
        & (pl.col("venue") == "binance")
        & (pl.col("bar_seconds") == HOUR)
    )
    return (
        frame.with_columns(
            _pref=preferred.not_(),
            _complete=complete.not_(),
            _cov=pl.when(complete).then(1.0).otherwise(pl.col("coverage")),
            _market=pl.col("market").replace_strict(_MARKET_RANK, default=9),
            _venue=pl.col("venue") != "binance",
        )
        .sort(
            "_pref",
            "_complete",
            "_cov",
            "bar_seconds",
            "_market",
            "_venue",
            "venue",
            descending=[False, False, True, False, False, False, False],
        )
        .drop("_pref", "_complete", "_cov", "_market", "_venue")
    )


def load_hourly_bars(
    con: duckdb.DuckDBPyConnection,
    asset: str,
    start: datetime,
    end: datetime | None,
    *,
    select_until: datetime | None = None,
) -> HourlyBars | None:
    """Hourly bars of ``asset`` over ``[start, end)`` from the best series in ``prices``.

    Spot Binance 1 h bars are preferred; otherwise the finest complete series (any market and
    venue, e.g. a user's file loaded with ``cascade ingest-prices``) is aggregated to complete
    hours with :func:`forecasting.resample_bars`.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Warehouse connection.
    asset : str
        Asset symbol (as in ``prices``).
    start, end : datetime
        Bars with ``start <= ts < end`` (``end=None``: up to the last bar).
    select_until : datetime, optional
        The series is chosen on its coverage of ``[start, select_until)`` only (by default
        ``[start, end)``); pass the first forecast origin to keep the choice causal.

    Returns
    -------
    HourlyBars or None
        ``None`` when no series has a bar in the selection span.
    """
    asset = asset.upper()
    if end is None:
        rows = con.execute("SELECT max(ts) FROM raw_prices WHERE asset = ?", [asset]).fetchall()
        last = rows[0][0]
        if last is None:
            return None
        end = last + timedelta(hours=1)
    ranked = series_coverage(con, asset, start, select_until or end)
    if ranked.height == 0:
        return None
    best = ranked.row(0, named=True)
    bars = con.sql(
        "SELECT ts, open, high, low, close, coalesce(volume, 0.0) AS volume FROM prices "
        "WHERE asset = ? AND market = ? AND venue = ? AND bar_seconds = ? AND ts >= ? AND ts < ? "
        "ORDER BY ts",
        params=[asset, best["market"], best["venue"], best["bar_seconds"], start, end],
    ).pl()
    if best["bar_seconds"] != HOUR and bars.height:
        bars = fcst.resample_bars(bars, HOUR, sub_bar_seconds=int(best["bar_seconds"])).drop(
            "n_sub"
        )
    return HourlyBars(
        asset=asset,
        bars=bars.select(_OHLCV),
        market=best["market"],
        venue=best["venue"],
        bar_seconds=int(best["bar_seconds"]),
        coverage=float(best["coverage"]),
    )


# --- intraday realized variance -----------------------------------------------------------------

#: Sub-hour bar sizes used for realized variance, preferred first (5-minute bars: fine enough to
#: average out the noise of one squared return, coarse enough to avoid most microstructure noise).
RV_BAR_SECONDS = (300, 60)


@dataclass(frozen=True, kw_only=True)
class IntradayRV:
    """Hourly realized variance from sub-hour bars.

    Attributes
    ----------
    rv : polars.DataFrame
        ``ts`` (hour open), ``rv`` (sum of squared sub-bar log returns in the hour) and
        ``n_sub`` (sub-returns summed; 1 where the hour fell back to its squared hourly return).
    label : str
        Source series (``spot/binance/300s``).
    """

    rv: pl.DataFrame
    label: str


def load_intraday_rv(
    con: duckdb.DuckDBPyConnection,
    asset: str,
    start: datetime,
    end: datetime | None,
    hourly: pl.DataFrame,
    *,
    select_until: datetime,
) -> IntradayRV | None:
    """Hourly realized variance of ``asset`` from 5-minute (else 1-minute) bars, if complete.

    The series is chosen causally, on its coverage of ``[start, select_until)`` (the first
    forecast origin): it must cover :data:`COMPLETE` of that span. Hours whose sub-bars are
    incomplete fall back to the squared hourly return (:func:`forecasting.realized_variance`).

    Returns
    -------
    IntradayRV or None
        ``None`` when no sub-hour series covers the selection span.
    """
    ranked = series_coverage(con, asset.upper(), start, select_until).filter(
        pl.col("bar_seconds").is_in(list(RV_BAR_SECONDS)) & (pl.col("coverage") >= COMPLETE)
    )
    if ranked.height == 0:
        return None
    ranked = ranked.with_columns(
        _rank=pl.col("bar_seconds").replace_strict(
            {b: i for i, b in enumerate(RV_BAR_SECONDS)}, default=9
        ),
        _spot=pl.col("market") != "spot",
        _venue=pl.col("venue") != "binance",
    ).sort("_rank", "_spot", "_venue", "venue")
    best = ranked.row(0, named=True)
    params: list[object] = [asset.upper(), best["market"], best["venue"], best["bar_seconds"]]
    params += [start - timedelta(hours=1), end or datetime.max.replace(tzinfo=start.tzinfo)]
    fine = con.sql(
        "SELECT ts, open, high, low, close FROM prices WHERE asset = ? AND market = ? "
        "AND venue = ? AND bar_seconds = ? AND ts >= ? AND ts < ? ORDER BY ts",
        params=params,
    ).pl()
    if fine.height < 2:
        return None
    rv = fcst.realized_variance(fine, HOUR, bars=hourly, sub_bar_seconds=int(best["bar_seconds"]))
    label = f"{best['market']}/{best['venue']}/{best['bar_seconds']}s"
    return IntradayRV(rv=rv.select("ts", "rv", "n_sub"), label=label)


# --- stress features -----------------------------------------------------------------------------

_FEATURE_SQL = {
    # 8-hourly funding rate at settlement, Binance; the finest interval known before the first
    # forecast origin wins (a finer series that starts later cannot change the choice).
    "funding_rate": (
        "SELECT ts + to_seconds(interval_seconds) AS ts, interval_seconds, rate AS value "
        "FROM funding WHERE asset = ? AND venue = 'binance' AND interval_seconds = ("
        "  SELECT min(interval_seconds) FROM funding WHERE asset = ? AND venue = 'binance' "
        "  AND ts + to_seconds(interval_seconds) <= ?) "
        "ORDER BY ts"
    ),
    # daily change of aggregate open interest (log), known at the end of its day.
    "oi_change_1d": (
        "SELECT ts + to_seconds(interval_seconds) AS ts, interval_seconds, "
        "ln(oi_usd / lag(oi_usd) OVER (ORDER BY ts)) AS value "
        "FROM open_interest WHERE asset = ? AND venue_set = ? AND interval_seconds = 86400 "
        "AND oi_usd > 0 ORDER BY ts"
    ),
    # daily long liquidations on Binance+OKX+Bybit, log(1 + USD), known at the end of its day.
    "cex_long_liq_log": (
        "SELECT ts + to_seconds(interval_seconds) AS ts, interval_seconds, "
        "ln(1 + coalesce(long_usd, total_usd)) AS value "
        "FROM cex_liquidations WHERE asset = ? AND venue_set = ? AND interval_seconds = 86400 "
        "ORDER BY ts"
    ),
}


def _feature_params(name: str, asset: str, until: datetime) -> list[object]:
    return [asset, asset, until] if name == "funding_rate" else [asset, _LIQ_VENUE_SET]


def load_stress_features(
    con: duckdb.DuckDBPyConnection, asset: str, start: datetime, until: datetime
) -> StressFeatures:
    """Funding, open-interest and CEX-liquidation features of ``asset`` known before ``until``.

    Every row is stamped with the time its value became known: the **end** of its interval
    (``ts + interval_seconds``; for 8-hourly funding that is conservative by up to one interval).
    The choice of features is **causal**: a feature is kept only if the data known at ``until``
    (pass the first forecast origin) covers ``[start, until)`` — its first value is known by
    ``start + interval`` and it is still being updated at ``until``. Nothing after ``until``
    is looked at, so deleting or changing feature rows after a time *T* ≥ ``until`` can never
    change which features a window uses. A kept feature that stops later becomes missing
    (``NaN``) once its last value is older than its staleness limit (two intervals); the tree
    models route missing values natively (scikit-learn's missing-value support).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Warehouse connection.
    asset : str
        Asset symbol.
    start, until : datetime
        First bar, and the time up to which coverage is judged (the first forecast origin).

    Returns
    -------
    StressFeatures
        Kept features as of their availability time, and notes on the dropped ones.
    """
    asset = asset.upper()
    frames: dict[str, pl.DataFrame] = {}
    notes: list[str] = []
    tolerance: dict[str, timedelta] = {}
    for name, sql in _FEATURE_SQL.items():
        rows = (
            con.sql(sql, params=_feature_params(name, asset, until))
            .pl()
            .drop_nulls("value")
            .filter(pl.col("value").is_finite())
        )
        known = rows.filter(pl.col("ts") <= until)
        if known.height == 0:
            notes.append(f"{name}: no {asset} data known by {until:%Y-%m-%d}")
            continue
        step = timedelta(seconds=int(known["interval_seconds"].max()))
        first, last = known["ts"].min(), known["ts"].max()
        if first > start + step or last < until - 2 * step:
            notes.append(
                f"{name}: {asset} data known {first:%Y-%m-%d}..{last:%Y-%m-%d} "
                f"does not cover {start:%Y-%m-%d}..{until:%Y-%m-%d} (first forecast)"
            )
            continue
        tolerance[name] = 2 * step
        frames[name] = rows.select("ts", pl.col("value").alias(name))
    return StressFeatures(frames=frames, tolerance=tolerance, notes=tuple(notes))
