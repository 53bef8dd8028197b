"""Bars → log returns, resampled bars and realized variance.

Conventions (shared by the whole library):

* a *bar* frame has a ``ts`` column (``Datetime`` in UTC) holding the bar **open** time, and a
  ``close`` column; ``open``/``high``/``low``/``volume`` are optional;
* the log return of bar ``i`` is ``log(close_i / close_{i-1})``: it is known at the close of bar
  ``i``, i.e. at ``ts_i + bar_seconds``;
* realized variance (RV) of a target bar is the sum of squared log returns of the finer bars inside
  it; with a single sub-bar it falls back to the squared return of the target bar.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from forecasting.errors import InvalidBarsError

__all__ = [
    "TS",
    "check_bars",
    "infer_bar_seconds",
    "regularize_bars",
    "log_returns",
    "resample_bars",
    "realized_variance",
    "realized_targets",
]

TS = "ts"
_OHLCV = ("open", "high", "low", "close", "volume")


def check_bars(bars: pl.DataFrame, *, ts_col: str = TS, price_col: str = "close") -> pl.DataFrame:
    """Validate a bar frame and return it sorted by time.

    Parameters
    ----------
    bars : polars.DataFrame
        Bars with a ``Datetime`` column ``ts_col`` (bar open) and a price column ``price_col``.
    ts_col, price_col : str
        Column names.

    Returns
    -------
    polars.DataFrame
        The same frame, sorted by ``ts_col``.

    Raises
    ------
    InvalidBarsError
        If a column is missing, timestamps repeat, or prices are not finite and positive.
    """
    if ts_col not in bars.columns:
        hint = " (rename it: bars.rename({'date': 'ts'}))" if "date" in bars.columns else ""
        raise InvalidBarsError(f"bars have no {ts_col!r} column{hint}; columns: {bars.columns}")
    if price_col not in bars.columns:
        raise InvalidBarsError(f"bars have no {price_col!r} column; columns: {bars.columns}")
    if not isinstance(bars.schema[ts_col], pl.Datetime):
        raise InvalidBarsError(
            f"column {ts_col!r} must be a polars Datetime (UTC), got {bars.schema[ts_col]}; "
            "convert it with pl.col(...).str.to_datetime() or pl.from_epoch(...)"
        )
    if bars.height == 0:
        raise InvalidBarsError("bars are empty; pass at least two bars")
    out = bars.sort(ts_col)
    if out[ts_col].is_duplicated().any():
        raise InvalidBarsError(
            f"duplicate {ts_col!r} values; deduplicate first, e.g. bars.unique({ts_col!r}, "
            "keep='last')"
        )
    price = out[price_col].cast(pl.Float64).to_numpy()
    if not np.all(np.isfinite(price)) or np.any(price <= 0):
        raise InvalidBarsError(
            f"column {price_col!r} has null, non-finite or non-positive prices; drop or repair "
            "those bars before computing log returns"
        )
    return out


def infer_bar_seconds(ts: pl.Series) -> int:
    """Most common spacing of a timestamp column, in whole seconds.

    Parameters
    ----------
    ts : polars.Series
        Sorted ``Datetime`` series.

    Returns
    -------
    int
        The modal difference between consecutive timestamps, in seconds.
    """
    if ts.len() < 2:
        raise InvalidBarsError("need at least two bars to infer the bar length; pass bar_seconds")
    diffs = ts.diff().drop_nulls().dt.total_seconds()
    mode = diffs.mode().sort()
    seconds = int(mode[0])
    if seconds <= 0:
        raise InvalidBarsError("timestamps are not strictly increasing; sort and deduplicate")
    return seconds


def regularize_bars(
    bars: pl.DataFrame, *, bar_seconds: int | None = None, ts_col: str = TS
) -> pl.DataFrame:
    """Put bars on a regular grid, filling missing bars with a flat bar.

    A missing bar gets ``close`` (and ``open``/``high``/``low``) equal to the previous close and
    ``volume`` 0, so its log return is 0 and nothing after the gap is used to fill it (filling is
    causal). A boolean column ``filled`` marks the inserted bars. Other columns are forward-filled.

    Parameters
    ----------
    bars : polars.DataFrame
        Bars (see :func:`check_bars`).
    bar_seconds : int, optional
        Grid spacing; inferred with :func:`infer_bar_seconds` when omitted.
    ts_col : str
        Timestamp column.

    Returns
    -------
    polars.DataFrame
        Bars on a gap-free grid from the first to the last bar.
    """
    bars = check_bars(bars, ts_col=ts_col)
    step = bar_seconds or infer_bar_seconds(bars[ts_col])
    if bars.height < 2:
        return bars.with_columns(filled=pl.lit(False))
    grid = pl.DataFrame(
        {
            ts_col: pl.datetime_range(
                bars[ts_col][0], bars[ts_col][-1], interval=f"{step}s", eager=True
            ).cast(bars.schema[ts_col])
        }
    )
    out = grid.join(bars.with_columns(filled=pl.lit(False)), on=ts_col, how="left")
    missing = pl.col("filled").is_null()
    out = out.with_columns(pl.col("close").forward_fill())
    fills = [
        pl.when(missing).then(pl.col("close")).otherwise(pl.col(c)).alias(c)
        for c in ("open", "high", "low")
        if c in out.columns
    ]
    if "volume" in out.columns:
        fills.append(pl.when(missing).then(0.0).otherwise(pl.col("volume")).alias("volume"))
    out = out.with_columns(*fills)
    rest = [c for c in out.columns if c not in (ts_col, "filled", *_OHLCV)]
    if rest:
        out = out.with_columns(pl.col(rest).forward_fill())
    return out.with_columns(pl.col("filled").fill_null(True))


def log_returns(bars: pl.DataFrame, *, ts_col: str = TS, price_col: str = "close") -> pl.DataFrame:
    """Close-to-close log returns.

    Parameters
    ----------
    bars : polars.DataFrame
        Bars (see :func:`check_bars`).
    ts_col, price_col : str
        Column names.

    Returns
    -------
    polars.DataFrame
        Columns ``ts`` (open time of the bar whose close ends the return) and ``ret``; one row
        fewer than ``bars`` (the first bar has no previous close).
    """
    bars = check_bars(bars, ts_col=ts_col, price_col=price_col)
    return bars.select(
        pl.col(ts_col).alias(TS),
        pl.col(price_col).cast(pl.Float64).log().diff().alias("ret"),
    ).slice(1)


def resample_bars(
    bars: pl.DataFrame,
    bar_seconds: int,
    *,
    ts_col: str = TS,
    sub_bar_seconds: int | None = None,
) -> pl.DataFrame:
    """Aggregate finer bars to a coarser bar length, keeping only complete buckets.

    ``open`` is the first open, ``high`` the max, ``low`` the min, ``close`` the last close and
    ``volume`` the sum; buckets are aligned on the UTC epoch (e.g. hourly buckets start on the
    hour). A bucket is kept only if it holds all ``bar_seconds / sub_bar_seconds`` sub-bars.

    Parameters
    ----------
    bars : polars.DataFrame
        Fine bars (see :func:`check_bars`).
    bar_seconds : int
        Target bar length in seconds; a multiple of the fine bar length.
    ts_col : str
        Timestamp column (bar open).
    sub_bar_seconds : int, optional
        Fine bar length; inferred when omitted.

    Returns
    -------
    polars.DataFrame
        ``ts`` (bucket open) plus the aggregated OHLCV columns present in ``bars`` and
        ``n_sub`` (number of sub-bars).
    """
    bars = check_bars(bars, ts_col=ts_col)
    sub = sub_bar_seconds or infer_bar_seconds(bars[ts_col])
    if bar_seconds % sub != 0 or bar_seconds < sub:
        raise InvalidBarsError(
            f"bar_seconds={bar_seconds} is not a multiple of the fine bar length {sub}s; pick a "
            "multiple (e.g. 3600 for 5-minute bars)"
        )
    aggs = {
        "open": pl.col("open").first(),
        "high": pl.col("high").max(),
        "low": pl.col("low").min(),
        "close": pl.col("close").last(),
        "volume": pl.col("volume").sum(),
    }
    exprs = [e.alias(c) for c, e in aggs.items() if c in bars.columns]
    out = (
        bars.group_by_dynamic(ts_col, every=f"{bar_seconds}s", closed="left", label="left")
        .agg(*exprs, pl.len().alias("n_sub"))
        .filter(pl.col("n_sub") == bar_seconds // sub)
    )
    return out.rename({ts_col: TS}) if ts_col != TS else out


def realized_variance(
    fine_bars: pl.DataFrame,
    bar_seconds: int,
    *,
    bars: pl.DataFrame | None = None,
    ts_col: str = TS,
    sub_bar_seconds: int | None = None,
) -> pl.DataFrame:
    """Realized variance per target bar from finer intraday returns.

    ``rv = sum of squared log returns of the sub-bars inside the target bar``. The first sub-return
    of a bucket runs from the previous bucket's last close, so the sub-returns of a bucket add up
    to its close-to-close return. Buckets with a missing sub-bar are not summed (that would bias RV
    down); for those, and whenever a bucket has a single sub-bar, RV falls back to the squared
    close-to-close return of the target bar (``n_sub`` then reports 1).

    Parameters
    ----------
    fine_bars : polars.DataFrame
        Fine bars with ``ts`` and ``close``.
    bar_seconds : int
        Target bar length in seconds.
    bars : polars.DataFrame, optional
        Target-frequency bars used for the fallback; by default they are resampled from
        ``fine_bars``.
    ts_col : str
        Timestamp column of both frames.
    sub_bar_seconds : int, optional
        Fine bar length; inferred when omitted.

    Returns
    -------
    polars.DataFrame
        ``ts`` (target bar open), ``rv`` and ``n_sub``; the first target bar (no previous close)
        is dropped.
    """
    fine = check_bars(fine_bars, ts_col=ts_col)
    sub = sub_bar_seconds or infer_bar_seconds(fine[ts_col])
    per_bucket = bar_seconds // sub
    bucket = pl.col(ts_col).dt.truncate(f"{bar_seconds}s")
    fine = fine.with_columns(
        bucket.alias("_bucket"),
        (pl.col("close").log().diff() ** 2).alias("_r2"),
        (pl.col(ts_col).diff().dt.total_seconds() == sub).alias("_contiguous"),
    )
    sums = (
        fine.group_by("_bucket")
        .agg(
            pl.col("_r2").sum().alias("rv_sum"),
            pl.len().alias("n_sub"),
            pl.col("_contiguous").all().alias("_ok"),
            pl.col("_r2").is_null().any().alias("_first"),
        )
        .with_columns(
            (pl.col("_ok") & ~pl.col("_first") & (pl.col("n_sub") == per_bucket)).alias("_ok")
        )
        .rename({"_bucket": TS})
    )
    target = (
        resample_bars(fine, bar_seconds, ts_col=ts_col, sub_bar_seconds=sub)
        if bars is None
        else check_bars(bars, ts_col=ts_col).rename({ts_col: TS} if ts_col != TS else {})
    )
    target = target.select(TS, (pl.col("close").log().diff() ** 2).alias("r2_target")).slice(1)
    out = target.join(sums.cast({TS: target.schema[TS]}), on=TS, how="left").with_columns(
        pl.col("_ok").fill_null(False)
    )
    use_sum = pl.col("_ok") & (pl.col("n_sub") >= 2)
    return out.select(
        TS,
        pl.when(use_sum).then(pl.col("rv_sum")).otherwise(pl.col("r2_target")).alias("rv"),
        pl.when(use_sum).then(pl.col("n_sub")).otherwise(1).cast(pl.Int64).alias("n_sub"),
    ).sort(TS)


def realized_targets(
    bars: pl.DataFrame,
    horizon_bars: int,
    *,
    rv_col: str | None = None,
    bar_seconds: int | None = None,
    ts_col: str = TS,
) -> pl.DataFrame:
    """What actually happened after every origin: the realized return and variance.

    For the origin bar ``i`` (its close is the last price the forecast may use), the target is the
    log return from ``close_i`` to ``close_{i+h}`` and the realized variance
    ``sum_{j=i+1}^{i+h} rv_j`` (``rv_j = r_j**2`` unless ``rv_col`` gives a finer RV per bar).

    Parameters
    ----------
    bars : polars.DataFrame
        Regular bars (see :func:`regularize_bars`).
    horizon_bars : int
        Horizon ``h`` in bars.
    rv_col : str, optional
        Column with a per-bar realized variance (e.g. joined from :func:`realized_variance`).
    bar_seconds : int, optional
        Bar length, inferred when omitted; used for ``horizon_hours``.
    ts_col : str
        Timestamp column.

    Returns
    -------
    polars.DataFrame
        ``origin_ts``, ``horizon_hours``, ``realized_return``, ``realized_var``; origins whose
        horizon runs past the data are dropped.
    """
    bars = check_bars(bars, ts_col=ts_col)
    step = bar_seconds or infer_bar_seconds(bars[ts_col])
    h = int(horizon_bars)
    if h < 1:
        raise ValueError(f"horizon_bars must be >= 1, got {horizon_bars}")
    logc = pl.col("close").cast(pl.Float64).log()
    r2 = logc.diff() ** 2 if rv_col is None else pl.col(rv_col).cast(pl.Float64)
    return bars.select(
        pl.col(ts_col).alias("origin_ts"),
        pl.lit(h * step / 3600.0).alias("horizon_hours"),
        (logc.shift(-h) - logc).alias("realized_return"),
        r2.rolling_sum(h).shift(-h).alias("realized_var"),
    ).drop_nulls(["realized_return", "realized_var"])
