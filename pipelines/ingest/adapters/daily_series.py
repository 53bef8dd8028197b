"""Daily series of lukmol/gamlss-btc-VaR: BTC close price and volume, and daily funding.

``btc_price_volume.csv`` (``date, price, volume``) is a daily close of an aggregated BTC-USD
index, volume in USD (the values match Yahoo Finance / CoinMarketCap's ``BTC-USD``; the
origin README names CoinGecko). ``funding_rates.csv`` (``date, funding_mean,
funding_abs``) is, row for row, the mean of that day's three 8-hourly Binance BTCUSDT
funding rates.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipelines.ingest.adapters.base import AdapterOutput, SourceEntry, register_adapter
from pipelines.ingest.adapters.ohlcv_common import (
    ROW,
    SeriesKey,
    cast_numbers,
    check_finite_positive,
    check_strictly_increasing,
    finish_prices,
    param,
    parse_datetime_text,
    require_columns,
    with_row_numbers,
)


def _read_daily(path: Path, entry: SourceEntry, columns: tuple[str, ...]) -> pl.DataFrame:
    frame = with_row_numbers(pl.read_csv(path, infer_schema=False), first=2)
    require_columns(frame, ("date", *columns), entry)
    frame = frame.with_columns(parse_datetime_text(frame, "date", "%Y-%m-%d", entry))
    return cast_numbers(frame, columns, entry)


@register_adapter("daily_close_csv")
def daily_close_csv(path: Path, entry: SourceEntry) -> AdapterOutput:
    """Daily ``date, price, volume`` CSV → ``prices`` bars of 86,400 s opening at 00:00 UTC.

    Rules: ``close_only_bar`` (the file has only the close, so open = high = low = close:
    such bars carry no intraday range) and, with ``params.volume_unit == "quote"``,
    ``volume_quote_to_base`` (USD volume divided by the close to give BTC, approximate).
    """
    out = AdapterOutput()
    key = SeriesKey.from_entry(entry)
    frame = _read_daily(path, entry, ("price", "volume"))
    out.rule(
        "close_only_bar",
        frame.height,
        "the file gives one close price per day; open, high and low are set to the close, "
        "so these bars have no intraday range",
    )
    volume = pl.col("volume")
    if param(entry, "volume_unit", "base") == "quote":
        out.rule(
            "volume_quote_to_base",
            frame.height,
            "volume is in USD; divided by the close to give base units (approximate)",
        )
        volume = volume / pl.col("price")
    bars = frame.select(
        ROW,
        "ts",
        *(pl.col("price").alias(c) for c in ("open", "high", "low", "close")),
        volume.alias("volume"),
    )
    finish_prices(out, bars, entry, key, row_kind="file line")
    return out


@register_adapter("daily_funding_csv")
def daily_funding_csv(path: Path, entry: SourceEntry) -> AdapterOutput:
    """Daily ``date, funding_mean[, funding_abs]`` CSV → ``funding`` (interval 86,400 s).

    ``rate`` is ``funding_mean``: the day's mean per-8-hour rate, not a daily total (rule
    ``daily_mean_funding`` records this). ``params``: ``asset``, ``venue``.
    """
    out = AdapterOutput()
    frame = _read_daily(path, entry, ("funding_mean",))
    check_strictly_increasing(frame, entry, row_kind="file line")
    check_finite_positive(
        frame, entry, ("funding_mean",), allow_negative=True, row_kind="file line"
    )
    out.rule(
        "daily_mean_funding",
        frame.height,
        "rate is the mean of the day's 8-hourly funding rates (a per-8h rate, not a daily "
        "total); stored with interval_seconds 86400",
    )
    funding = frame.select(
        pl.lit(str(param(entry, "asset")).upper()).alias("asset"),
        pl.lit(str(param(entry, "venue")).lower()).alias("venue"),
        "ts",
        pl.lit(86_400, dtype=pl.Int64).alias("interval_seconds"),
        pl.col("funding_mean").alias("rate"),
    )
    out.add("funding", funding)
    return out
