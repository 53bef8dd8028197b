"""OHLCV bars stored as Parquet (yagokhan/Varanus-Neo-Flow-Hybrid-Extended ``*_30m.parquet``).

Columns ``open, high, low, close, volume`` and a UTC datetime column (``params.ts_column``,
default ``"timestamp"``) holding the bar open time.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipelines.errors import DataValidationError
from pipelines.ingest.adapters.base import AdapterOutput, SourceEntry, register_adapter
from pipelines.ingest.adapters.ohlcv_common import (
    SeriesKey,
    apply_luna_rule,
    drop_exact_duplicates,
    drop_last_bars_from_params,
    finish_prices,
    param,
    require_columns,
    utc_us,
    with_row_numbers,
)

_PRICES = ("open", "high", "low", "close", "volume")


@register_adapter("parquet_ohlcv")
def parquet_ohlcv(path: Path, entry: SourceEntry) -> AdapterOutput:
    """Parquet OHLCV → ``prices``.

    ``params``: the series key, ``ts_column`` and ``drop_last_bars`` (a count, with
    ``drop_last_bars_why``) for files saved while their newest bars were still open.
    Rules: ``drop_exact_duplicates``, ``drop_partial_last_bars``, ``luna2_relabel`` /
    ``lunc_label``.
    """
    out = AdapterOutput()
    key = SeriesKey.from_entry(entry)
    ts_column = str(param(entry, "ts_column", "timestamp"))
    frame = pl.read_parquet(path)
    require_columns(frame, (ts_column, *_PRICES), entry)
    if not isinstance(frame.schema[ts_column], pl.Datetime):
        raise DataValidationError(
            entry.file,
            ts_column,
            None,
            f"{ts_column!r} must be a datetime column, got {frame.schema[ts_column]}",
        )
    frame = with_row_numbers(frame.select(utc_us(frame, ts_column).alias("ts"), *_PRICES))
    frame = drop_exact_duplicates(frame, out)
    frame = drop_last_bars_from_params(frame, out, entry)
    frame = apply_luna_rule(frame, out, entry)
    finish_prices(out, frame, entry, key)
    return out
