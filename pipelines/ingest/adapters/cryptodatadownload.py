"""CryptoDataDownload hourly exports, as saved by andrewsiah/crypto-historical-data.

Columns: ``unix, date, symbol, open, high, low, close, Volume <BASE>, Volume <QUOTE>,
tradecount``.

These files are messy, and every defect is fixed by a named, logged rule:

``cdd_epoch_seconds``
    ``unix`` mixes epoch seconds (``1502942400.0``, older rows) and milliseconds; seconds
    are scaled to milliseconds.
``cdd_drop_seconds_duplicates``
    Where the seconds-era and milliseconds-era exports overlap, a timestamp appears twice
    (2,649 times in each file). The milliseconds row (full precision, matching Binance) is
    kept, the seconds row (rounded, sometimes a different snapshot) dropped. A pair whose
    closes differ by more than :data:`MAX_PAIR_CLOSE_GAP` is an error, not a duplicate.
``cdd_date_text_ignored``
    ``date`` mixes ``2021-06-10 00:00:00`` and ``2017-08-17 06-AM`` and disagrees with
    ``unix`` on some rows; ``ts`` comes from ``unix`` and the rows whose text disagrees are
    counted. Text that parses in neither format is an error.
``cdd_sort_ascending``
    Rows are newest first; they are sorted by time.
``cdd_drop_filler_bars``
    While Binance was down (e.g. 23 hours on 2018-02-08) the export carries placeholder bars
    with zero volume and open = high = low = close = the last close; they hold no price
    information and would fill real exchange gaps with a fake flat price; dropped.
``cdd_drop_bogus_first_bar``
    The oldest bar opens far from its own close (BTC: open 16,199.91, close 4,308.83); it is
    dropped when ``open/close`` is beyond :data:`BOGUS_OPEN_RATIO` either way.
``drop_partial_last_bars``
    The newest bar is the hour still in progress when the file was exported; dropped.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipelines.errors import DataValidationError
from pipelines.ingest.adapters.base import AdapterOutput, SourceEntry, register_adapter
from pipelines.ingest.adapters.ohlcv_common import (
    ROW,
    SeriesKey,
    cast_numbers,
    drop_last_bars,
    finish_prices,
    param,
    require_columns,
    with_row_numbers,
)

MAX_PAIR_CLOSE_GAP = 0.02
"""Largest relative close difference between the two rows of one duplicated timestamp."""

BOGUS_OPEN_RATIO = 1.5
"""The oldest bar is bogus when open/close exceeds this ratio (or falls below its inverse)."""

_PRICES = ("open", "high", "low", "close")
_SECONDS_BELOW = 1e11


@register_adapter("cryptodatadownload_csv")
def cryptodatadownload_csv(path: Path, entry: SourceEntry) -> AdapterOutput:
    """CryptoDataDownload hourly CSV → ``prices`` with the rules in the module docstring.

    ``params``: the series key, plus ``symbol`` (e.g. ``"BTC/USDT"``) checked on every row.
    """
    out = AdapterOutput()
    key = SeriesKey.from_entry(entry)
    volume_column = f"Volume {key.asset}"
    frame = with_row_numbers(pl.read_csv(path, infer_schema=False), first=2)
    require_columns(frame, ("unix", "date", "symbol", *_PRICES, volume_column), entry)
    _check_symbol(frame, entry)
    frame = cast_numbers(frame, ("unix", *_PRICES, volume_column), entry)
    frame = frame.rename({volume_column: "volume"})
    frame = _epoch_to_ts(frame, out, entry)
    frame = _drop_seconds_duplicates(frame, out, entry)
    frame = _cross_check_date_text(frame, out, entry)
    frame = _sort_ascending(frame, out)
    frame = _drop_filler_bars(frame, out)
    frame = _drop_bogus_first_bar(frame, out)
    frame = drop_last_bars(
        frame, out, why="CryptoDataDownload exports include the hour still in progress"
    )
    finish_prices(out, frame, entry, key, row_kind="file line")
    return out


def _check_symbol(frame: pl.DataFrame, entry: SourceEntry) -> None:
    expected = param(entry, "symbol")
    if expected is None:
        return
    wrong = frame.filter((pl.col("symbol") != expected) | pl.col("symbol").is_null()).head(1)
    if wrong.height:
        row = wrong.row(0, named=True)
        raise DataValidationError(
            entry.file,
            "symbol",
            int(row[ROW]),
            f"symbol {row['symbol']!r} where the registry expects {expected!r}",
            row_kind="file line",
        )


def _epoch_to_ts(frame: pl.DataFrame, out: AdapterOutput, entry: SourceEntry) -> pl.DataFrame:
    seconds = pl.col("unix") < _SECONDS_BELOW
    missing = frame.filter(pl.col("unix").is_null()).head(1)
    if missing.height:
        raise DataValidationError(
            entry.file, "unix", int(missing[ROW][0]), "missing epoch", row_kind="file line"
        )
    n_seconds = frame.select(seconds.sum()).item()
    out.rule(
        "cdd_epoch_seconds",
        n_seconds,
        f"{n_seconds} rows give 'unix' in epoch seconds (the rest in milliseconds); scaled "
        "to milliseconds",
    )
    ms = pl.when(seconds).then(pl.col("unix") * 1000).otherwise(pl.col("unix")).round(0)
    ts = pl.from_epoch(ms.cast(pl.Int64), time_unit="ms").dt.cast_time_unit("us")
    return frame.with_columns(ts=ts.dt.replace_time_zone("UTC"), _seconds=seconds)


def _drop_seconds_duplicates(
    frame: pl.DataFrame, out: AdapterOutput, entry: SourceEntry
) -> pl.DataFrame:
    dup = pl.col("ts").is_duplicated()
    pairs = frame.filter(dup)
    if not pairs.height:
        return frame
    per_ts = pairs.group_by("ts").agg(
        n=pl.len(),
        n_ms=(~pl.col("_seconds")).sum(),
        gap=(pl.col("close").max() - pl.col("close").min()) / pl.col("close").min(),
        off=((pl.col("open").max() - pl.col("open").min()) > 0.01)
        | ((pl.col("close").max() - pl.col("close").min()) > 0.01),
        row=pl.col(ROW).max(),
    )
    bad = per_ts.filter(
        (pl.col("n") != 2) | (pl.col("n_ms") != 1) | (pl.col("gap") > MAX_PAIR_CLOSE_GAP)
    ).sort("row")
    if bad.height:
        row = bad.row(0, named=True)
        raise DataValidationError(
            entry.file,
            "unix",
            int(row["row"]),
            f"timestamp {row['ts']} is duplicated with conflicting values (not one seconds row "
            "and one milliseconds row that agree)",
            row_kind="file line",
        )
    differing = per_ts.get_column("off").sum()
    out.rule(
        "cdd_drop_seconds_duplicates",
        per_ts.height,
        f"{per_ts.height} timestamps appear twice (an epoch-seconds row and an epoch-"
        f"milliseconds row); the seconds row was dropped, keeping the full-precision "
        f"milliseconds row ({differing} pairs differed by more than 0.01 in open or close)",
        dropped=True,
    )
    return frame.filter(~(dup & pl.col("_seconds")))


def _cross_check_date_text(
    frame: pl.DataFrame, out: AdapterOutput, entry: SourceEntry
) -> pl.DataFrame:
    text = pl.col("date").str.strip_chars()
    iso = text.str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False, time_unit="us")
    ampm = text.str.replace(r" (\d{2})-(AM|PM)$", " ${1}:00 ${2}").str.to_datetime(
        "%Y-%m-%d %I:%M %p", strict=False, time_unit="us"
    )
    parsed = frame.with_columns(_text_ts=pl.coalesce(iso, ampm).dt.replace_time_zone("UTC"))
    bad = parsed.filter(pl.col("_text_ts").is_null()).head(1)
    if bad.height:
        row = bad.row(0, named=True)
        raise DataValidationError(
            entry.file,
            "date",
            int(row[ROW]),
            f"date {row['date']!r} is in neither known format",
            row_kind="file line",
        )
    n_ampm = parsed.select(text.str.contains(r"-(AM|PM)$").sum()).item()
    disagree = parsed.select((pl.col("_text_ts") != pl.col("ts")).sum()).item()
    out.rule(
        "cdd_date_text_ignored",
        disagree,
        f"'date' mixes 'YYYY-MM-DD HH:MM:SS' and 'YYYY-MM-DD HH-AM/PM' ({n_ampm} rows); ts is "
        f"taken from 'unix', and the {disagree} rows whose date text disagrees with it keep "
        "the unix time",
    )
    return frame


def _sort_ascending(frame: pl.DataFrame, out: AdapterOutput) -> pl.DataFrame:
    if frame.get_column("ts").is_sorted():
        return frame
    out.rule(
        "cdd_sort_ascending",
        frame.height,
        "rows are stored newest first; sorted by time",
    )
    return frame.sort("ts", ROW)


def _drop_filler_bars(frame: pl.DataFrame, out: AdapterOutput) -> pl.DataFrame:
    o, h, lo, c = (pl.col(x) for x in _PRICES)
    filler = (pl.col("volume") == 0) & (o == h) & (h == lo) & (lo == c)
    n = frame.select(filler.sum()).item()
    out.rule(
        "cdd_drop_filler_bars",
        n,
        f"{n} zero-volume bars with open = high = low = close (placeholders the export writes "
        "while the exchange was down, repeating the last close) dropped",
        dropped=True,
    )
    return frame.filter(~filler) if n else frame


def _drop_bogus_first_bar(frame: pl.DataFrame, out: AdapterOutput) -> pl.DataFrame:
    if not frame.height:
        return frame
    first = frame.row(0, named=True)
    ratio = first["open"] / first["close"]
    if 1 / BOGUS_OPEN_RATIO <= ratio <= BOGUS_OPEN_RATIO:
        return frame
    out.rule(
        "cdd_drop_bogus_first_bar",
        1,
        f"oldest bar ({first['ts']}) opens at {first['open']} but closes at {first['close']} "
        f"(open/close {ratio:.2f}): not a real first trade; dropped",
        dropped=True,
    )
    return frame.slice(1)
