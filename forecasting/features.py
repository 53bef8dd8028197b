"""Exogenous stress features: as-of alignment to bars (never forward) and a drawdown feature.

The library does not know where features come from (funding, open interest, CEX liquidations...).
It only needs each feature row stamped with the time at which its value became *known*. For an
aggregate over an interval (e.g. daily liquidations) that is the **end** of the interval: stamp the
2021-05-19 daily total at 2021-05-20 00:00 UTC, not at 2021-05-19 00:00.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from forecasting.errors import InvalidBarsError
from forecasting.returns import TS, check_bars, infer_bar_seconds

__all__ = ["align_features", "next_bar_hour", "recent_drawdown"]


def align_features(
    bars: pl.DataFrame,
    features: pl.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    bar_seconds: int | None = None,
    ts_col: str = TS,
    feature_ts_col: str = TS,
    tolerance: str | None = None,
) -> pl.DataFrame:
    """Attach feature columns to bars as of each bar's close, never looking forward.

    Bar ``i`` (open ``ts_i``) closes at ``ts_i + bar_seconds``; a forecast made at that close may
    use a feature row stamped at or before that instant. The join is a polars ``join_asof`` with
    ``strategy="backward"`` on the bar close time, so the value attached to a bar is the latest
    one known at its close.

    Parameters
    ----------
    bars : polars.DataFrame
        Bars with ``ts`` (bar open, UTC).
    features : polars.DataFrame
        Feature rows with a ``Datetime`` availability time ``feature_ts_col`` and value columns.
    columns : sequence of str, optional
        Feature columns to attach; all non-time columns by default.
    bar_seconds : int, optional
        Bar length; inferred from ``bars`` when omitted.
    ts_col, feature_ts_col : str
        Time columns of ``bars`` and ``features``.
    tolerance : str, optional
        Maximum staleness (polars duration string such as ``"1d"``); older values become null.

    Returns
    -------
    polars.DataFrame
        ``bars`` (sorted) with the feature columns appended; null before the first feature row.

    Raises
    ------
    InvalidBarsError
        If a feature column name collides with a bar column or the time column is missing.
    """
    bars = check_bars(bars, ts_col=ts_col)
    if feature_ts_col not in features.columns:
        raise InvalidBarsError(
            f"features have no {feature_ts_col!r} column; pass feature_ts_col=... naming the time "
            "at which each value became known"
        )
    step = bar_seconds or infer_bar_seconds(bars[ts_col])
    cols = (
        list(columns)
        if columns is not None
        else [c for c in features.columns if c != feature_ts_col]
    )
    clash = sorted(set(cols) & set(bars.columns))
    if clash:
        raise InvalidBarsError(
            f"feature columns {clash} already exist in bars; rename them in `features` first"
        )
    feats = (
        features.select(pl.col(feature_ts_col).cast(bars.schema[ts_col]).alias("_avail"), *cols)
        .drop_nulls("_avail")
        .sort("_avail")
    )
    # ``ts + duration`` is microseconds in polars whatever the unit of ``ts``: cast back so the
    # join keys keep the bars' unit (nanosecond freqtrade bars, millisecond files...).
    left = bars.with_columns(
        (pl.col(ts_col) + pl.duration(seconds=step)).cast(bars.schema[ts_col]).alias("_close_ts")
    )
    out = left.join_asof(
        feats,
        left_on="_close_ts",
        right_on="_avail",
        strategy="backward",
        tolerance=tolerance,
        coalesce=True,
    )
    return out.drop([c for c in ("_close_ts", "_avail") if c in out.columns])


def recent_drawdown(
    bars: pl.DataFrame, *, window_bars: int = 24, name: str | None = None, ts_col: str = TS
) -> pl.DataFrame:
    """Drawdown of the close from its running maximum over the last ``window_bars`` bars.

    ``drawdown_i = close_i / max(close_{i-w+1..i}) - 1`` (≤ 0); causal: it uses closes up to the
    bar's own close only.

    Parameters
    ----------
    bars : polars.DataFrame
        Bars with ``close``.
    window_bars : int
        Look-back window, in bars.
    name : str, optional
        Column name; ``drawdown_{window_bars}`` by default.
    ts_col : str
        Timestamp column.

    Returns
    -------
    polars.DataFrame
        ``bars`` with the drawdown column appended.
    """
    bars = check_bars(bars, ts_col=ts_col)
    col = name or f"drawdown_{window_bars}"
    close = pl.col("close").cast(pl.Float64)
    return bars.with_columns(
        (close / close.rolling_max(window_bars, min_samples=1) - 1.0).alias(col)
    )


def next_bar_hour(
    bars: pl.DataFrame, *, name: str = "next_hour", bar_seconds: int | None = None, ts_col: str = TS
) -> pl.DataFrame:
    """Hour of day (UTC, 0–23) of the bar *after* each bar: a calendar feature.

    The forecast made at bar ``i``'s close targets the bar that opens at that close,
    ``ts_i + bar_seconds``; its hour of day is known in advance (intraday seasonality of
    volatility), so the feature uses no data at all.

    Parameters
    ----------
    bars : polars.DataFrame
        Bars with ``ts`` (bar open, UTC).
    name : str
        Column name.
    bar_seconds : int, optional
        Bar length; inferred when omitted.
    ts_col : str
        Timestamp column.

    Returns
    -------
    polars.DataFrame
        ``bars`` with the hour column (Float64) appended.
    """
    bars = check_bars(bars, ts_col=ts_col)
    step = bar_seconds or infer_bar_seconds(bars[ts_col])
    return bars.with_columns(
        (pl.col(ts_col) + pl.duration(seconds=step)).dt.hour().cast(pl.Float64).alias(name)
    )
