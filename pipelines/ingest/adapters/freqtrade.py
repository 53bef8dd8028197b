"""Freqtrade data files: OHLCV feather, OHLCV JSON and funding-rate feather.

Freqtrade stores candles as ``date, open, high, low, close, volume`` (feather, ``date`` a
UTC datetime) or as a JSON array of ``[ts_ms, open, high, low, close, volume]``; funding
rates use the same feather layout with the rate in ``open`` (the other columns are 0).
Timestamps are bar open times in UTC. Freqtrade drops the still-open candle when it saves.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import polars as pl

from pipelines.errors import DataValidationError
from pipelines.ingest.adapters.base import AdapterOutput, SourceEntry, register_adapter
from pipelines.ingest.adapters.ohlcv_common import (
    ROW,
    SeriesKey,
    apply_luna_rule,
    check_finite_positive,
    check_strictly_increasing,
    drop_exact_duplicates,
    finish_prices,
    from_epoch_ms,
    param,
    require_columns,
    utc_us,
    with_row_numbers,
)

FEATHER_COLUMNS: tuple[str, ...] = ("date", "open", "high", "low", "close", "volume")
_OHLCV = ("open", "high", "low", "close", "volume")


def read_freqtrade_feather(path: Path, entry: SourceEntry) -> pl.DataFrame:
    """Read a freqtrade feather file as ``_row, ts, open, high, low, close, volume``."""
    frame = pl.read_ipc(path)
    require_columns(frame, FEATHER_COLUMNS, entry)
    if not isinstance(frame.schema["date"], pl.Datetime):
        raise DataValidationError(
            entry.file, "date", None, f"'date' must be a datetime, got {frame.schema['date']}"
        )
    frame = frame.select(utc_us(frame, "date").alias("ts"), *_OHLCV)
    return with_row_numbers(frame)


def read_freqtrade_json(path: Path, entry: SourceEntry) -> pl.DataFrame:
    """Read a freqtrade JSON candle file as ``_row, ts, open, high, low, close, volume``.

    The array of arrays is read as CSV text (fast); anything unusual falls back to the JSON
    parser, which names the offending candle.
    """
    data = path.read_bytes()
    values = _candles_as_csv(data)
    if values is None:
        values = _candles_from_json(data, entry)
    ms = values.get_column("ts_ms")
    fractional = (~ms.is_finite() | (ms != ms.round(0))).arg_true()
    if fractional.len():
        i = fractional[0]
        raise DataValidationError(
            entry.file, "ts", i + 1, f"timestamp {ms[i]!r} is not whole epoch milliseconds"
        )
    frame = values.select(from_epoch_ms(pl.col("ts_ms")).alias("ts"), *_OHLCV)
    return with_row_numbers(frame)


def _candles_as_csv(data: bytes) -> pl.DataFrame | None:
    """``[[t,o,h,l,c,v],...]`` → frame via the CSV reader; ``None`` when the text is unusual."""
    text = data.strip()
    if not (text.startswith(b"[[") and text.endswith(b"]]")):
        return None
    body = re.sub(rb"\]\s*,\s*\[", b"\n", text[2:-2])
    try:
        frame = pl.read_csv(
            io.BytesIO(body),
            has_header=False,
            new_columns=["ts_ms", *_OHLCV],
            schema_overrides=dict.fromkeys(["ts_ms", *_OHLCV], pl.Float64),
        )
    except pl.exceptions.PolarsError:
        return None
    if frame.width != 6 or sum(frame.null_count().row(0)):
        return None
    return frame


def _candles_from_json(data: bytes, entry: SourceEntry) -> pl.DataFrame:
    rows = json.loads(data)
    try:
        values = np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError):
        values = None
    if values is None or values.ndim != 2 or values.shape[1] != 6:
        raise DataValidationError(
            entry.file, None, _first_bad_candle(rows), "expected [ts_ms, o, h, l, c, v] arrays"
        )
    return pl.DataFrame({c: values[:, i] for i, c in enumerate(["ts_ms", *_OHLCV])})


def _first_bad_candle(rows: object) -> int | None:
    if not isinstance(rows, list):
        return None
    for i, row in enumerate(rows):
        ok = isinstance(row, list) and len(row) == 6
        if not ok or not all(isinstance(v, int | float) for v in row):
            return i + 1
    return None


def _finish_candles(frame: pl.DataFrame, entry: SourceEntry, out: AdapterOutput) -> AdapterOutput:
    key = SeriesKey.from_entry(entry)
    frame = drop_exact_duplicates(frame, out)
    frame = apply_luna_rule(frame, out, entry)
    finish_prices(out, frame, entry, key)
    return out


@register_adapter("freqtrade_feather")
def freqtrade_feather(path: Path, entry: SourceEntry) -> AdapterOutput:
    """Freqtrade OHLCV feather → ``prices`` (series from ``params``).

    Rules: ``drop_exact_duplicates``, ``luna2_relabel`` / ``lunc_label`` (LUNA series only).
    """
    out = AdapterOutput()
    return _finish_candles(read_freqtrade_feather(path, entry), entry, out)


@register_adapter("freqtrade_json")
def freqtrade_json(path: Path, entry: SourceEntry) -> AdapterOutput:
    """Freqtrade OHLCV JSON ``[[ts_ms, o, h, l, c, v], ...]`` → ``prices``.

    Rules: ``drop_exact_duplicates`` (cryofrost BTC 5m repeats 2020-03-08 10:40 once),
    ``luna2_relabel`` / ``lunc_label`` (LUNA series only).
    """
    out = AdapterOutput()
    return _finish_candles(read_freqtrade_json(path, entry), entry, out)


@register_adapter("freqtrade_funding_feather")
def freqtrade_funding_feather(path: Path, entry: SourceEntry) -> AdapterOutput:
    """Freqtrade funding-rate feather (rate in ``open``) → ``funding``.

    ``params``: ``asset``, ``venue``, ``interval_seconds`` (Binance USDT-M: 28800). Every
    timestamp must be a whole multiple of the interval after the first one.
    """
    out = AdapterOutput()
    frame = read_freqtrade_feather(path, entry)
    frame = drop_exact_duplicates(frame, out)
    check_strictly_increasing(frame, entry)
    check_finite_positive(frame, entry, ("open",), allow_negative=True)
    interval = int(param(entry, "interval_seconds", 28_800))
    offset = (pl.col("ts") - pl.col("ts").first()).dt.total_seconds() % interval
    off_grid = frame.filter(offset != 0).head(1)
    if off_grid.height:
        row = off_grid.row(0, named=True)
        raise DataValidationError(
            entry.file,
            "date",
            int(row[ROW]),
            f"funding time {row['ts']} is off the {interval} s grid; check interval_seconds",
        )
    funding = frame.select(
        pl.lit(str(param(entry, "asset")).upper()).alias("asset"),
        pl.lit(str(param(entry, "venue", "binance")).lower()).alias("venue"),
        "ts",
        pl.lit(interval, dtype=pl.Int64).alias("interval_seconds"),
        pl.col("open").cast(pl.Float64).alias("rate"),
    )
    out.add("funding", funding)
    return out
