"""Binance kline CSVs and the bar CSVs third parties saved from the Binance API.

- ``binance_kline_csv``: the 12-column Binance kline layout (``open_time, open, high, low,
  close, volume, close_time, quote_volume, count, taker_buy_volume, taker_buy_quote_volume,
  ignore``), with or without a header line, plain or as the single member of a ``.zip``
  (data.binance.vision dumps).
- ``ohlcv_csv``: ``<ts>, open, high, low, close, volume`` plus an optional symbol column
  (misrori: ``date,...,ticker``) or epoch-millisecond column (soneyjohnt: ``time,...,
  timestamp``).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import polars as pl

from pipelines.errors import DataValidationError
from pipelines.ingest.adapters.base import AdapterOutput, SourceEntry, register_adapter
from pipelines.ingest.adapters.ohlcv_common import (
    ROW,
    SeriesKey,
    apply_luna_rule,
    cast_numbers,
    drop_exact_duplicates,
    drop_last_bars_from_params,
    epoch_to_ts,
    finish_prices,
    param,
    parse_datetime_text,
    require_columns,
    with_row_numbers,
)

KLINE_COLUMNS: tuple[str, ...] = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
)
_PRICES = ("open", "high", "low", "close", "volume")


def _read_bytes(path: Path, entry: SourceEntry) -> bytes:
    """File content; a ``.zip`` must hold exactly one CSV member, which is returned."""
    if path.suffix.lower() != ".zip":
        return path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        members = [m for m in archive.namelist() if not m.endswith("/")]
        if len(members) != 1:
            raise DataValidationError(
                entry.file, None, None, f"expected one CSV inside the zip, found {members}"
            )
        return archive.read(members[0])


def read_kline_csv(path: Path, entry: SourceEntry) -> pl.DataFrame:
    """Read a Binance kline CSV (header optional) as text columns plus ``_row`` (file line)."""
    data = _read_bytes(path, entry)
    first_field = data.split(b",", 1)[0].strip()
    has_header = not first_field.isdigit()
    frame = pl.read_csv(
        io.BytesIO(data),
        has_header=has_header,
        new_columns=list(KLINE_COLUMNS),
        infer_schema=False,
    )
    if frame.width != len(KLINE_COLUMNS):
        raise DataValidationError(
            entry.file, None, None, f"expected 12 kline columns, found {frame.width}"
        )
    return with_row_numbers(frame, first=2 if has_header else 1)


@register_adapter("binance_kline_csv")
def binance_kline_csv(path: Path, entry: SourceEntry) -> AdapterOutput:
    """Binance kline CSV / zip → ``prices``.

    Every bar's ``close_time`` must be ``open_time + bar − 1 ms`` (checked, not fixed): it
    proves the file's bar size matches ``bar_seconds``. Rules: ``drop_exact_duplicates``,
    ``luna2_relabel`` (LUNA series: the 2022-05 dump continues with the new LUNA from
    2022-05-31).
    """
    out = AdapterOutput()
    key = SeriesKey.from_entry(entry)
    frame = read_kline_csv(path, entry)
    frame = cast_numbers(frame, ("open_time", "close_time"), entry, dtype=pl.Int64)
    frame = cast_numbers(frame, _PRICES, entry)
    scale = 1000 if frame.height and frame.get_column("open_time")[0] >= 10**14 else 1
    span = pl.col("close_time") - pl.col("open_time") + scale
    wrong = frame.filter(span != key.bar_seconds * 1000 * scale).head(1)
    if wrong.height:
        row = wrong.row(0, named=True)
        raise DataValidationError(
            entry.file,
            "close_time",
            int(row[ROW]),
            f"close_time {row['close_time']} does not end a {key.bar_seconds} s bar opened at "
            f"{row['open_time']}; check bar_seconds",
            row_kind="file line",
        )
    frame = frame.with_columns(epoch_to_ts(frame, "open_time", entry)).select(ROW, "ts", *_PRICES)
    frame = drop_exact_duplicates(frame, out)
    frame = apply_luna_rule(frame, out, entry)
    finish_prices(out, frame, entry, key, row_kind="file line")
    return out


@register_adapter("ohlcv_csv")
def ohlcv_csv(path: Path, entry: SourceEntry) -> AdapterOutput:
    """Headered bar CSV → ``prices``.

    ``params`` beyond the series key:

    - ``ts_column`` (default ``"date"``) and ``ts_format`` (default ``%Y-%m-%d %H:%M:%S``,
      UTC bar open time);
    - ``epoch_column``: a column of epoch milliseconds that must equal ``ts`` in every row;
    - ``symbol_column`` + ``symbol``: every row must carry that symbol;
    - ``drop_last_bars`` (count) + ``drop_last_bars_why``: rule ``drop_partial_last_bars``,
      for files saved from the API while their newest bar(s) were still open.

    Rules: ``drop_exact_duplicates``, ``drop_partial_last_bars``, ``luna2_relabel`` /
    ``lunc_label``.
    """
    out = AdapterOutput()
    key = SeriesKey.from_entry(entry)
    ts_column = str(param(entry, "ts_column", "date"))
    frame = with_row_numbers(pl.read_csv(path, infer_schema=False), first=2)
    require_columns(frame, (ts_column, *_PRICES), entry)
    _check_symbol(frame, entry)
    fmt = str(param(entry, "ts_format", "%Y-%m-%d %H:%M:%S"))
    frame = frame.with_columns(parse_datetime_text(frame, ts_column, fmt, entry))
    _check_epoch_column(frame, entry)
    frame = cast_numbers(frame.select(ROW, "ts", *_PRICES), _PRICES, entry)
    frame = drop_exact_duplicates(frame, out)
    frame = drop_last_bars_from_params(frame, out, entry)
    frame = apply_luna_rule(frame, out, entry)
    finish_prices(out, frame, entry, key, row_kind="file line")
    return out


def _check_symbol(frame: pl.DataFrame, entry: SourceEntry) -> None:
    column = param(entry, "symbol_column")
    if column is None:
        return
    require_columns(frame, (column,), entry)
    expected = str(param(entry, "symbol"))
    wrong = frame.filter((pl.col(column) != expected) | pl.col(column).is_null()).head(1)
    if wrong.height:
        row = wrong.row(0, named=True)
        raise DataValidationError(
            entry.file,
            column,
            int(row[ROW]),
            f"symbol {row[column]!r} where the registry expects {expected!r}",
            row_kind="file line",
        )


def _check_epoch_column(frame: pl.DataFrame, entry: SourceEntry) -> None:
    column = param(entry, "epoch_column")
    if column is None:
        return
    require_columns(frame, (column,), entry)
    ms = cast_numbers(frame.select(ROW, column), (column,), entry, dtype=pl.Int64)
    epoch = epoch_to_ts(ms, column, entry)
    wrong = frame.filter(epoch != frame.get_column("ts")).head(1)
    if wrong.height:
        row = wrong.row(0, named=True)
        raise DataValidationError(
            entry.file,
            column,
            int(row[ROW]),
            f"epoch {row[column]} disagrees with {row['ts']} in the date column",
            row_kind="file line",
        )
