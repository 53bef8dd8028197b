"""aaronwu2017/TheGlory files of the 2025-10-10 crash: Gemini trades and Binance book depth.

Gemini tick trades of BTC, ETH and SOL, and Binance USDT-M BTCUSDT order-book depth.

(The ``BTCUSD_PERP-1m-*.zip`` mark-price klines of the same repository go through
:func:`pipelines.ingest.adapters.binance_csv.binance_kline_csv`.)
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import polars as pl

from pipelines.errors import DataValidationError
from pipelines.ingest.adapters.base import AdapterOutput, SourceEntry, register_adapter
from pipelines.ingest.adapters.ohlcv_common import (
    ROW,
    cast_numbers,
    check_finite_positive,
    drop_exact_duplicates,
    param,
    parse_datetime_text,
    require_columns,
    with_row_numbers,
)

TRADE_COLUMNS: tuple[str, ...] = (
    "exchange",
    "symbol",
    "timestamp",
    "local_timestamp",
    "id",
    "side",
    "price",
    "amount",
)
DEPTH_COLUMNS: tuple[str, ...] = ("timestamp", "percentage", "depth", "notional")
SIDES: frozenset[str] = frozenset({"buy", "sell"})


@register_adapter("gemini_trades_csv")
def gemini_trades_csv(path: Path, entry: SourceEntry) -> AdapterOutput:
    """Gemini tick trades (Tardis layout, ``timestamp`` in epoch µs) → ``trades``.

    ``params``: ``asset``, ``venue`` (``gemini``), ``symbol`` checked on every row. Trades
    must be in time order with unique ids, positive price and amount, side buy/sell. Rule:
    ``drop_exact_duplicates``.
    """
    out = AdapterOutput()
    frame = with_row_numbers(pl.read_csv(path, infer_schema=False), first=2)
    require_columns(frame, TRADE_COLUMNS, entry)
    _check_text(frame, entry, "symbol", {str(param(entry, "symbol"))})
    _check_text(frame, entry, "side", SIDES)
    frame = cast_numbers(frame, ("timestamp",), entry, dtype=pl.Int64)
    frame = cast_numbers(frame, ("price", "amount"), entry)
    check_finite_positive(frame, entry, ("price", "amount"), row_kind="file line")
    frame = drop_exact_duplicates(frame.drop("local_timestamp"), out)
    _check_trade_order(frame, entry)
    trades = frame.select(
        pl.lit(str(param(entry, "asset")).upper()).alias("asset"),
        pl.lit(str(param(entry, "venue", "gemini")).lower()).alias("venue"),
        pl.from_epoch(pl.col("timestamp"), time_unit="us").dt.replace_time_zone("UTC").alias("ts"),
        "price",
        "amount",
        "side",
        pl.col("id").alias("trade_id"),
    )
    out.add("trades", trades)
    return out


def _check_text(
    frame: pl.DataFrame, entry: SourceEntry, column: str, allowed: Collection[str]
) -> None:
    wrong = frame.filter(~pl.col(column).is_in(list(allowed)) | pl.col(column).is_null()).head(1)
    if wrong.height:
        row = wrong.row(0, named=True)
        raise DataValidationError(
            entry.file,
            column,
            int(row[ROW]),
            f"{row[column]!r} is not one of {sorted(allowed)}",
            row_kind="file line",
        )


def _check_trade_order(frame: pl.DataFrame, entry: SourceEntry) -> None:
    checks = frame.with_columns(
        _back=(pl.col("timestamp") < pl.col("timestamp").shift(1)) | pl.col("timestamp").is_null(),
        _dup=pl.col("id").is_duplicated(),
    )
    for flag, column, what in (
        (
            "_back",
            "timestamp",
            "is missing or earlier than the previous trade; trades must be in time order",
        ),
        ("_dup", "id", "repeats a trade id with different values"),
    ):
        hit = checks.filter(pl.col(flag)).head(1)
        if hit.height:
            row = hit.row(0, named=True)
            raise DataValidationError(
                entry.file,
                column,
                int(row[ROW]),
                f"{row[column]} {what}",
                row_kind="file line",
            )


@register_adapter("binance_book_depth_csv")
def binance_book_depth_csv(path: Path, entry: SourceEntry) -> AdapterOutput:
    """Binance ``bookDepth`` CSV (snapshots every ~30 s) → ``orderbook_depth``.

    ``percentage`` is signed as in the file (−5..−1: bids within that % below mid, 1..5:
    asks above); ``depth`` is the cumulative base quantity and ``notional`` its USD value.
    ``params``: ``asset``, ``market`` (``perp``), ``venue`` (``binance``). Each
    (snapshot, percentage) must be unique; depth and notional positive. Rule:
    ``drop_exact_duplicates``.
    """
    out = AdapterOutput()
    frame = with_row_numbers(pl.read_csv(path, infer_schema=False), first=2)
    require_columns(frame, DEPTH_COLUMNS, entry)
    frame = frame.with_columns(parse_datetime_text(frame, "timestamp", "%Y-%m-%d %H:%M:%S", entry))
    frame = cast_numbers(frame, ("percentage", "depth", "notional"), entry)
    check_finite_positive(frame, entry, ("depth", "notional"), row_kind="file line")
    frame = drop_exact_duplicates(frame.select(ROW, "ts", "percentage", "depth", "notional"), out)
    _check_depth_keys(frame, entry)
    depth = frame.select(
        pl.lit(str(param(entry, "asset")).upper()).alias("asset"),
        pl.lit(str(param(entry, "market", "perp"))).alias("market"),
        pl.lit(str(param(entry, "venue", "binance")).lower()).alias("venue"),
        "ts",
        pl.col("percentage").alias("pct"),
        pl.col("depth").alias("depth_qty"),
        pl.col("notional").alias("notional_usd"),
    )
    out.add("orderbook_depth", depth)
    return out


def _check_depth_keys(frame: pl.DataFrame, entry: SourceEntry) -> None:
    checks = frame.with_columns(
        _bad_pct=(pl.col("percentage") == 0) | (pl.col("percentage").abs() > 100),
        _dup=pl.struct("ts", "percentage").is_duplicated(),
        _back=pl.col("ts") < pl.col("ts").shift(1),
    )
    for flag, column, what in (
        ("_bad_pct", "percentage", "is not a signed percentage in [-100, 100] \\ {0}"),
        ("_dup", "timestamp", "repeats a (timestamp, percentage) with different depth"),
        ("_back", "timestamp", "is earlier than the previous snapshot; rows must be sorted"),
    ):
        hit = checks.filter(pl.col(flag)).head(1)
        if hit.height:
            row = hit.row(0, named=True)
            value = row["percentage"] if column == "percentage" else row["ts"]
            raise DataValidationError(
                entry.file, column, int(row[ROW]), f"{value} {what}", row_kind="file line"
            )
