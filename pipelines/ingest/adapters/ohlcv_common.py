"""Shared pieces of the price adapters: series keys, output shaping and the common rules.

Every price adapter builds a frame with ``ts`` (any Datetime) and ``open, high, low, close,
volume`` in *file order*, plus a ``_row`` column holding each row's number in the file; it
applies its explicit cleaning rules (each recorded with :meth:`AdapterOutput.rule`) and hands
the frame to :func:`finish_prices`, which labels the series, runs the strict
:func:`pipelines.ingest.validate.validate_ohlcv` and adds the bars to the output.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl

from pipelines.errors import DataValidationError
from pipelines.ingest.adapters.base import AdapterOutput, SourceEntry
from pipelines.ingest.validate import MARKETS, validate_ohlcv

ROW = "_row"
"""Column carrying each row's number in the source file through the cleaning rules."""

PRICE_TABLE_COLUMNS: tuple[str, ...] = (
    "asset",
    "market",
    "venue",
    "bar_seconds",
    "ts",
    "open",
    "high",
    "low",
    "close",
    "volume",
)
"""Columns of ``raw_prices`` an adapter returns (the loader adds ``source``)."""

LUNA2_GENESIS = datetime(2022, 5, 28, tzinfo=UTC)
"""Terra 2.0 genesis. Binance ``LUNAUSDT`` bars from here on are the *new* LUNA."""

LUNA_CLASSIC_HALT = datetime(2022, 5, 14, tzinfo=UTC)
"""Binance halted the original LUNA on 2022-05-13; no ``LUNAUSDT`` bar may fall between this
and :data:`LUNA2_GENESIS` (such a bar could belong to either chain)."""


@dataclass(frozen=True, kw_only=True)
class SeriesKey:
    """What identifies one price series: ``(asset, market, venue, bar_seconds)``."""

    asset: str
    market: str
    venue: str
    bar_seconds: int

    @classmethod
    def from_entry(cls, entry: SourceEntry) -> SeriesKey:
        """Read the key from a registry entry's ``params``.

        Raises
        ------
        ValueError
            When a key is missing or malformed (a registry mistake, not a data problem).
        """
        params = entry.params
        missing = [k for k in ("asset", "market", "venue", "bar_seconds") if k not in params]
        if missing:
            raise ValueError(
                f"registry entry {entry.name!r} lacks params {missing}; price adapters need "
                "asset, market, venue and bar_seconds"
            )
        key = cls(
            asset=str(params["asset"]).upper(),
            market=str(params["market"]),
            venue=str(params["venue"]).lower(),
            bar_seconds=int(params["bar_seconds"]),
        )
        if key.market not in MARKETS or key.bar_seconds <= 0:
            raise ValueError(
                f"registry entry {entry.name!r}: market must be one of {sorted(MARKETS)} and "
                f"bar_seconds positive, got {key.market!r} / {key.bar_seconds}"
            )
        return key


def param(entry: SourceEntry, name: str, default: Any = None) -> Any:
    """One adapter parameter of a registry entry (``default`` when absent)."""
    return entry.params.get(name, default)


def with_row_numbers(frame: pl.DataFrame, *, first: int = 1) -> pl.DataFrame:
    """Add :data:`ROW`: ``first`` for the first row, counting up."""
    return frame.with_row_index(ROW, offset=first).with_columns(pl.col(ROW).cast(pl.Int64))


def utc_us(frame: pl.DataFrame, column: str) -> pl.Expr:
    """``column`` of ``frame`` as ``Datetime('us', 'UTC')``.

    Zone-aware times are converted to UTC; naive times are taken as UTC already.
    """
    dtype = frame.schema[column]
    expr = pl.col(column).dt.cast_time_unit("us")
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        return expr.dt.convert_time_zone("UTC")
    return expr.dt.replace_time_zone("UTC")


def from_epoch_ms(expr: pl.Expr) -> pl.Expr:
    """Epoch milliseconds (integer or float) to ``Datetime('us', 'UTC')``."""
    ts = pl.from_epoch(expr.cast(pl.Int64), time_unit="ms").dt.cast_time_unit("us")
    return ts.dt.replace_time_zone("UTC")


def finish_prices(
    out: AdapterOutput,
    frame: pl.DataFrame,
    entry: SourceEntry,
    key: SeriesKey,
    *,
    row_kind: str = "data row",
) -> pl.DataFrame:
    """Label, type-cast and validate cleaned bars, then add them to ``out['prices']``.

    Parameters
    ----------
    out : AdapterOutput
        Output being built.
    frame : polars.DataFrame
        ``ts, open, high, low, close`` (``volume`` and ``asset`` optional) and :data:`ROW`,
        in file order after the adapter's rules.
    entry : SourceEntry
        Registry entry (its ``file`` is named in errors).
    key : SeriesKey
        Series labels; an ``asset`` column already in ``frame`` (set by a rule) wins.
    row_kind : str
        What :data:`ROW` counts (``"data row"`` or ``"file line"``).

    Returns
    -------
    polars.DataFrame
        The bars as added, columns :data:`PRICE_TABLE_COLUMNS`.

    Raises
    ------
    DataValidationError
        When the bars fail :func:`pipelines.ingest.validate.validate_ohlcv`.
    """
    labels = {
        "asset": pl.lit(key.asset),
        "market": pl.lit(key.market),
        "venue": pl.lit(key.venue),
        "bar_seconds": pl.lit(key.bar_seconds, dtype=pl.Int64),
    }
    if "volume" not in frame.columns:
        frame = frame.with_columns(volume=pl.lit(None, dtype=pl.Float64))
    is_time = isinstance(frame.schema["ts"], pl.Datetime)
    shaped = frame.with_columns(
        **{k: v for k, v in labels.items() if k not in frame.columns}
    ).select(
        pl.col("asset").cast(pl.String),
        pl.col("market").cast(pl.String),
        pl.col("venue").cast(pl.String),
        pl.col("bar_seconds").cast(pl.Int64),
        utc_us(frame, "ts") if is_time else pl.col("ts"),  # else validation names the problem
        *(pl.col(c).cast(pl.Float64) for c in ("open", "high", "low", "close", "volume")),
        pl.col(ROW),
    )
    validate_ohlcv(shaped, file=entry.file, row_numbers=shaped.get_column(ROW), row_kind=row_kind)
    bars = shaped.drop(ROW)
    out.add("prices", bars)
    return bars


# --------------------------------------------------------------------------------------------
# Rules shared by several adapters
# --------------------------------------------------------------------------------------------


def drop_exact_duplicates(frame: pl.DataFrame, out: AdapterOutput) -> pl.DataFrame:
    """Rule ``drop_exact_duplicates``: drop rows identical (ts and every value) to an earlier one.

    Duplicated timestamps whose values differ are left for validation to reject.
    """
    if "ts" in frame.columns and not frame.select(pl.col("ts").is_duplicated().any()).item():
        return frame  # no repeated timestamp, so no repeated row: the common, cheap case
    values = [c for c in frame.columns if c != ROW]
    keep = pl.struct(values).is_first_distinct()
    dropped = frame.height - frame.select(keep.sum()).item()
    out.rule(
        "drop_exact_duplicates",
        dropped,
        f"{dropped} row(s) repeating an earlier row exactly (same timestamp and values) dropped",
        dropped=True,
    )
    return frame.filter(keep) if dropped else frame


def drop_last_bars(
    frame: pl.DataFrame, out: AdapterOutput, *, count: int = 1, why: str
) -> pl.DataFrame:
    """Rule ``drop_partial_last_bars``: drop the newest ``count`` bars, still open when saved.

    The frame must be in ascending time order. ``why`` says how the defect is known.
    """
    count = min(int(count), frame.height)
    if count <= 0:
        return frame
    dropped = frame.tail(count)
    first, last = dropped.row(0, named=True), dropped.row(count - 1, named=True)
    span = str(first["ts"]) if count == 1 else f"{first['ts']} .. {last['ts']}"
    out.rule(
        "drop_partial_last_bars",
        count,
        f"newest {count} bar(s) ({span}) dropped: {why}",
        dropped=True,
    )
    return frame.head(frame.height - count)


def drop_last_bars_from_params(
    frame: pl.DataFrame, out: AdapterOutput, entry: SourceEntry
) -> pl.DataFrame:
    """Apply :func:`drop_last_bars` when ``params.drop_last_bars`` (a count) is set."""
    count = int(param(entry, "drop_last_bars", 0))
    why = str(param(entry, "drop_last_bars_why", "the file was saved while they were open"))
    return drop_last_bars(frame, out, count=count, why=why)


def apply_luna_rule(frame: pl.DataFrame, out: AdapterOutput, entry: SourceEntry) -> pl.DataFrame:
    """Label the two Terra chains explicitly (rules ``luna2_relabel`` and ``lunc_label``).

    Binance's ``LUNAUSDT`` is the original LUNA until trading halted on 2022-05-13 and the
    *new* chain (Terra 2.0, genesis 2022-05-28, listed 2022-05-31) afterwards. Bars of a
    ``LUNA`` series from :data:`LUNA2_GENESIS` on get asset ``LUNA2`` so the crash series
    never splices into a different coin. The original chain relisted as ``LUNCUSDT`` on
    2022-09-09 stays asset ``LUNC`` (its own series, not appended to pre-crash ``LUNA``).

    Raises
    ------
    DataValidationError
        When a ``LUNA`` bar falls between the halt and the new genesis (chain ambiguous).
    """
    asset = str(entry.params.get("asset", "")).upper()
    ts = utc_us(frame, "ts")
    if asset == "LUNC":
        out.rule(
            "lunc_label",
            frame.height,
            "LUNCUSDT bars are the original Terra chain (pre-crash 'LUNA', relisted on Binance "
            "2022-09-09); loaded as asset LUNC, a series of its own",
        )
        return frame
    if asset != "LUNA":
        return frame
    ambiguous = frame.filter(ts.is_between(LUNA_CLASSIC_HALT, LUNA2_GENESIS, closed="left"))
    if ambiguous.height:
        row = ambiguous.row(0, named=True)
        raise DataValidationError(
            entry.file,
            "ts",
            int(row[ROW]),
            f"LUNA bar at {row['ts']} falls between the old chain's halt (2022-05-13) and the "
            "new chain's genesis (2022-05-28); cannot tell which LUNA it is",
        )
    new_chain = frame.select((ts >= LUNA2_GENESIS).sum()).item()
    out.rule(
        "luna2_relabel",
        new_chain,
        f"{new_chain} LUNAUSDT bar(s) from 2022-05-28 on are the new Terra 2.0 coin, not the "
        "LUNA that crashed in May 2022; relabelled asset LUNA2",
    )
    if not new_chain:
        return frame
    return frame.with_columns(
        asset=pl.when(ts >= LUNA2_GENESIS).then(pl.lit("LUNA2")).otherwise(pl.lit("LUNA"))
    )


def require_columns(frame: pl.DataFrame, columns: tuple[str, ...], entry: SourceEntry) -> None:
    """Raise :class:`DataValidationError` naming the first of ``columns`` missing in ``frame``."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataValidationError(
            entry.file,
            missing[0],
            None,
            f"required column {missing[0]!r} is missing (found: {', '.join(frame.columns)}); "
            f"the {entry.format!r} format has {', '.join(columns)}",
        )


def check_strictly_increasing(
    frame: pl.DataFrame, entry: SourceEntry, *, by: tuple[str, ...] = (), row_kind: str = "data row"
) -> None:
    """Raise unless ``ts`` is present, parsed and strictly increasing (within groups ``by``).

    Used for the non-OHLCV tables (funding, trades, depth); prices use ``validate_ohlcv``.
    """
    prev = pl.col("ts").shift(1)
    if by:
        prev = prev.over(list(by))
    bad = frame.with_columns(_prev=prev).filter(
        pl.col("ts").is_null() | (pl.col("ts") <= pl.col("_prev"))
    )
    if bad.height:
        row = bad.row(0, named=True)
        what = "missing or unparseable" if row["ts"] is None else "not after the previous row"
        raise DataValidationError(
            entry.file,
            "ts",
            int(row[ROW]),
            f"timestamp {row['ts']} is {what} ({row['_prev']}); rows must be unique and sorted",
            row_kind=row_kind,
        )


def check_finite_positive(
    frame: pl.DataFrame,
    entry: SourceEntry,
    columns: tuple[str, ...],
    *,
    allow_zero: bool = False,
    allow_negative: bool = False,
    row_kind: str = "data row",
) -> None:
    """Raise for the first null/NaN/infinite (or out-of-sign) value in ``columns``."""
    for column in columns:
        col = pl.col(column)
        bad = col.is_null() | col.is_nan() | col.is_infinite()
        if not allow_negative:
            bad = bad | (col < 0 if allow_zero else col <= 0)
        hit = frame.filter(bad).head(1)
        if hit.height:
            row = hit.row(0, named=True)
            raise DataValidationError(
                entry.file,
                column,
                int(row[ROW]),
                f"value {row[column]!r} is missing, not finite or out of range",
                row_kind=row_kind,
            )


def cast_numbers(
    frame: pl.DataFrame,
    columns: tuple[str, ...],
    entry: SourceEntry,
    *,
    dtype: pl.DataType = pl.Float64,
    row_kind: str = "file line",
) -> pl.DataFrame:
    """Cast text ``columns`` to ``dtype``; raise naming the first value that is not a number.

    Empty cells and ``NULL``/``NaN`` text become null (validation then rejects them where a
    value is required).
    """
    exprs = []
    for column in columns:
        text = pl.col(column).cast(pl.String).str.strip_chars()
        empty = text.is_null() | text.is_in(["", "NULL", "null", "NaN", "nan"])
        parsed = text.cast(dtype, strict=False)
        hit = frame.filter(~empty & parsed.is_null()).head(1)
        if hit.height:
            row = hit.row(0, named=True)
            raise DataValidationError(
                entry.file,
                column,
                int(row[ROW]),
                f"{row[column]!r} is not a number",
                row_kind=row_kind,
            )
        exprs.append(pl.when(empty).then(None).otherwise(parsed).alias(column))
    return frame.with_columns(exprs)


def parse_datetime_text(
    frame: pl.DataFrame,
    column: str,
    fmt: str,
    entry: SourceEntry,
    *,
    row_kind: str = "file line",
) -> pl.Series:
    """Parse naive-UTC datetime text with ``fmt``; raise naming the first unparseable value."""
    parsed = (
        frame.get_column(column)
        .str.strip_chars()
        .str.to_datetime(fmt, strict=False, time_unit="us", time_zone="UTC")
    )
    bad = parsed.is_null().arg_true()
    if bad.len():
        i = bad[0]
        raise DataValidationError(
            entry.file,
            column,
            int(frame.get_column(ROW)[i]),
            f"unparseable timestamp {frame.get_column(column)[i]!r} (expected {fmt})",
            row_kind=row_kind,
        )
    return parsed.alias("ts")


def epoch_to_ts(
    frame: pl.DataFrame, column: str, entry: SourceEntry, *, row_kind: str = "file line"
) -> pl.Series:
    """Integer epoch ``column`` (ms, or µs as in Binance spot dumps since 2025) → ``ts``.

    The unit is read from the magnitude and must be the same in every row.
    """
    values = frame.get_column(column)
    unit = pl.select(
        pl.when(values.abs() >= 10**14).then(pl.lit("us")).otherwise(pl.lit("ms"))
    ).to_series()
    mixed = (unit != unit[0]).arg_true()
    if mixed.len():
        i = mixed[0]
        raise DataValidationError(
            entry.file,
            column,
            int(frame.get_column(ROW)[i]),
            f"epoch {values[i]} is in {unit[i]} but the first row is in {unit[0]}",
            row_kind=row_kind,
        )
    return (
        pl.from_epoch(values, time_unit=unit[0])
        .dt.cast_time_unit("us")
        .dt.replace_time_zone("UTC")
        .alias("ts")
    )
