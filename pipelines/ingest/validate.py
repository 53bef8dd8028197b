"""Strict validation of OHLCV price bars, and the reader for users' own price files.

Every price adapter calls :func:`validate_ohlcv` on what it returns, and ``cascade
ingest-prices`` reads a user's file with :func:`read_user_ohlcv`. Both are strict: a bad
value raises :class:`~pipelines.errors.DataValidationError` naming the file, the column and
the row; nothing is fixed silently. Adapters fix known defects of registered files *before*
validation, each with an explicit logged rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from pipelines.errors import DataValidationError, ParameterError
from pipelines.user_files import (
    ROW_KIND,
    epoch_unit,
    parse_numbers,
    parse_timestamps,
    read_table,
)

if TYPE_CHECKING:  # imported lazily at run time: pipelines.ingest.adapters imports this module
    from pipelines.ingest.adapters.base import RuleApplied

REQUIRED_COLUMNS: tuple[str, ...] = ("ts", "open", "high", "low", "close")
"""Columns every OHLCV frame must have (``volume`` is optional)."""

PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
"""Price columns: finite and strictly positive in every row."""

SERIES_KEY: tuple[str, ...] = ("asset", "market", "venue", "bar_seconds")
"""Columns that identify one price series; order checks run within each series."""

MARKETS: frozenset[str] = frozenset({"spot", "perp", "mark", "index"})
"""Allowed values of ``market``."""

_ROW = "__row_no"
_USER_COLUMNS: tuple[str, ...] = (*REQUIRED_COLUMNS, "volume")


# --------------------------------------------------------------------------------------------
# validate_ohlcv
# --------------------------------------------------------------------------------------------


def validate_ohlcv(
    df: pl.DataFrame,
    *,
    file: str | Path,
    row_numbers: Sequence[int] | pl.Series | None = None,
    row_kind: str = "data row",
) -> pl.DataFrame:
    """Check OHLCV bars strictly and return them unchanged.

    Parameters
    ----------
    df : polars.DataFrame
        Bars with columns ``ts`` (``Datetime`` in UTC, bar open time), ``open``, ``high``,
        ``low``, ``close`` and optionally ``volume``. When the series key columns
        (``asset``, ``market``, ``venue``, ``bar_seconds``) are present, order checks run
        within each series and consecutive bars must be at least ``bar_seconds`` apart.
    file : str or Path
        File named in error messages.
    row_numbers : sequence of int or polars.Series, optional
        Row number in the file of each row of ``df`` (after an adapter dropped rows);
        default ``1..len(df)``.
    row_kind : str
        What ``row_numbers`` count: ``"data row"`` or ``"file line"``.

    Returns
    -------
    polars.DataFrame
        ``df`` itself, so the call can be chained.

    Raises
    ------
    DataValidationError
        On a missing column, a missing or unparseable timestamp, a missing, NaN or
        non-positive price, a negative or NaN volume, a bar whose high/low do not bound its
        open/close, a duplicated timestamp (exact or conflicting), timestamps out of order,
        or bars closer together than ``bar_seconds``.
    """
    file = str(file)
    _check_columns(df, file)
    rows = _row_number_series(df, row_numbers)
    check = _Checker(df.with_columns(rows.alias(_ROW)), file, row_kind)
    _check_dtypes(check)
    check.run([*_value_checks(check.frame), *_bar_shape_checks()])
    _check_order(check)
    return df


_Check = tuple[str | None, pl.Expr, str]
"""(column, mask of bad rows, message template filled from the first bad row)."""


@dataclass(frozen=True)
class _Checker:
    """A frame under validation (with its file row numbers) and how to report a bad row."""

    frame: pl.DataFrame
    file: str
    row_kind: str

    def error(self, column: str | None, message: str) -> DataValidationError:
        """An error about the whole column (no row)."""
        return DataValidationError(self.file, column, None, message, row_kind=self.row_kind)

    def run(self, checks: Sequence[_Check]) -> None:
        """Evaluate every mask in one pass; raise for the first check (in order) that fails."""
        if not checks or self.frame.height == 0:
            return
        flags = self.frame.select(
            mask.fill_null(False).any().alias(str(i)) for i, (_, mask, _) in enumerate(checks)
        ).row(0)
        for (column, mask, message), flagged in zip(checks, flags):
            if flagged:
                self.fail(column, mask, message)

    def fail(
        self, column: str | None, mask: pl.Expr, message: str, frame: pl.DataFrame | None = None
    ) -> None:
        """Raise for the first row where ``mask`` holds; ``{name}`` fills from that row."""
        source = self.frame if frame is None else frame
        hit = source.filter(mask.fill_null(False)).head(1)
        if hit.height:
            values = hit.row(0, named=True)
            raise DataValidationError(
                self.file,
                column,
                int(values[_ROW]),
                message.format(**values),
                row_kind=self.row_kind,
            )


def _check_columns(df: pl.DataFrame, file: str) -> None:
    """Raise for the first missing required column."""
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DataValidationError(
            file,
            missing[0],
            None,
            f"required column {missing[0]!r} is missing (found columns: "
            f"{', '.join(df.columns) or 'none'}); OHLCV data needs "
            f"{', '.join(REQUIRED_COLUMNS)} and optionally volume",
        )


def _row_number_series(
    df: pl.DataFrame, row_numbers: Sequence[int] | pl.Series | None
) -> pl.Series:
    if row_numbers is None:
        return pl.int_range(1, df.height + 1, eager=True, dtype=pl.Int64)
    rows = pl.Series(row_numbers, dtype=pl.Int64)
    if rows.len() != df.height:
        raise ValueError(f"row_numbers has {rows.len()} entries for {df.height} rows")
    return rows


def _check_dtypes(check: _Checker) -> None:
    dtype = check.frame.schema["ts"]
    if not isinstance(dtype, pl.Datetime):
        raise check.error(
            "ts", f"timestamps must be parsed to Datetime (UTC) before validation, got {dtype}"
        )
    if dtype.time_zone != "UTC":
        raise check.error(
            "ts",
            f"timestamps must be UTC-aware, got time zone {dtype.time_zone!r}; convert with "
            ".dt.convert_time_zone('UTC') (or .dt.replace_time_zone('UTC') for naive UTC)",
        )
    for column in (*PRICE_COLUMNS, "volume"):
        if column in check.frame.columns and not check.frame.schema[column].is_numeric():
            raise check.error(column, f"{column} must be numeric, got {check.frame.schema[column]}")


def _value_checks(frame: pl.DataFrame) -> list[_Check]:
    checks: list[_Check] = [("ts", pl.col("ts").is_null(), "missing or unparseable timestamp")]
    for column in PRICE_COLUMNS:
        col = pl.col(column)
        checks += [
            (column, col.is_null(), "missing price; fix or remove the row"),
            (column, col.is_nan(), "price is NaN; fix or remove the row"),
            (column, col.is_infinite(), "price is infinite; fix or remove the row"),
            (column, col <= 0, f"price {{{column}}} is not positive; fix or remove the row"),
        ]
    if "volume" in frame.columns:
        vol = pl.col("volume")
        checks += [
            ("volume", vol.is_nan(), "volume is NaN; leave it empty when unknown"),
            ("volume", vol < 0, "volume {volume} is negative; fix or remove the row"),
        ]
    return checks


def _bar_shape_checks() -> list[_Check]:
    o, h, lo, c = (pl.col(x) for x in PRICE_COLUMNS)
    return [
        ("high", h < lo, "high {high} is below low {low}; the bar is corrupt"),
        (
            "high",
            h < pl.max_horizontal(o, c),
            "high {high} is below open {open} or close {close}; the bar is corrupt",
        ),
        (
            "low",
            lo > pl.min_horizontal(o, c),
            "low {low} is above open {open} or close {close}; the bar is corrupt",
        ),
    ]


def _check_order(check: _Checker) -> None:
    """Timestamps strictly increase within each series (and by ``bar_seconds`` when known).

    The common, valid case costs one pass; the diagnosis runs only when it fails.
    """
    frame = check.frame
    key = [c for c in SERIES_KEY if c in frame.columns]
    several = bool(key) and any(frame.select(pl.col(k).n_unique() > 1 for k in key).row(0))
    step = pl.col("ts").diff().dt.total_microseconds()
    if several:
        step = step.over(key)
    min_step = pl.lit(1)
    if "bar_seconds" in frame.columns:
        min_step = pl.col("bar_seconds").cast(pl.Int64) * 1_000_000
    if frame.select((step >= min_step).fill_null(True).all()).item():
        return
    _explain_order(check, key)


def _explain_order(check: _Checker, key: list[str]) -> None:
    frame = check.frame
    values = [c for c in (*PRICE_COLUMNS, "volume") if c in frame.columns]
    at_ts = [*key, "ts"]
    prev_row, prev_ts = pl.col(_ROW).shift(1), pl.col("ts").shift(1)
    if key:
        prev_row, prev_ts = prev_row.over(key), prev_ts.over(key)
    same = pl.all_horizontal(pl.col(v).eq_missing(pl.col(v).first().over(at_ts)) for v in values)
    checked = frame.with_columns(
        _first=pl.col(_ROW).first().over(at_ts),
        _same=same,
        _prev_row=prev_row,
        _prev_ts=prev_ts,
        _dup=~pl.struct(at_ts).is_first_distinct(),
    )
    kind = check.row_kind
    check.fail(
        "ts",
        pl.col("_dup") & pl.col("_same"),
        f"timestamp {{ts}} is an exact duplicate of {kind} {{_first}}; drop exact duplicates "
        "with a logged rule",
        checked,
    )
    check.fail(
        "ts",
        pl.col("_dup"),
        f"timestamp {{ts}} is duplicated (first at {kind} {{_first}}) with conflicting values; "
        "keep one bar per timestamp",
        checked,
    )
    check.fail(
        "ts",
        pl.col("ts") < pl.col("_prev_ts"),
        f"timestamp {{ts}} comes before {{_prev_ts}} ({kind} {{_prev_row}}); timestamps are "
        "unsorted, sort the bars by time",
        checked,
    )
    if "bar_seconds" in frame.columns:
        gap = (pl.col("ts") - pl.col("_prev_ts")).dt.total_microseconds()
        check.fail(
            "ts",
            gap < pl.col("bar_seconds").cast(pl.Int64) * 1_000_000,
            "bar at {ts} starts less than bar_seconds={bar_seconds} after the bar at "
            "{_prev_ts}; bars overlap (wrong bar size?)",
            checked,
        )


# --------------------------------------------------------------------------------------------
# read_user_ohlcv
# --------------------------------------------------------------------------------------------


def read_user_ohlcv(
    path: str | Path,
    *,
    asset: str,
    market: str = "spot",
    venue: str = "user",
    bar_seconds: int | None = None,
) -> tuple[pl.DataFrame, list[RuleApplied]]:
    """Read a user's own OHLCV file strictly, for ``cascade ingest-prices``.

    Parameters
    ----------
    path : str or Path
        CSV (``.csv``, ``.csv.gz``, ``.txt``) or Parquet (``.parquet``, ``.pq``) file with
        columns ``ts, open, high, low, close`` and optionally ``volume``. ``ts`` is the bar
        open time, read with :func:`pipelines.user_files.parse_timestamps` (ISO-8601 text,
        UTC when without an offset, or epoch s/ms/us/ns decided by magnitude, one unit per
        file). Errors name the data row (1-based, header excluded) as every user file does.
    asset : str
        Base asset symbol, upper-cased (e.g. ``"BTC"``).
    market : str
        ``spot``, ``perp``, ``mark`` or ``index``.
    venue : str
        Venue label, lower-cased.
    bar_seconds : int, optional
        Bar length; inferred from the median spacing of ``ts`` when not given.

    Returns
    -------
    polars.DataFrame
        Columns ``asset, market, venue, bar_seconds, ts, open, high, low, close, volume``
        sorted by ``ts`` (as the file must already be).
    list of RuleApplied
        How the file was interpreted (epoch unit, inferred bar size); never a data fix.

    Raises
    ------
    DataValidationError
        When a column is missing, a value does not parse, or :func:`validate_ohlcv` fails.
    MissingFileError
        When ``path`` does not exist (also a ``FileNotFoundError``).
    ParameterError
        A bad ``market`` or ``bar_seconds`` (also a ``ValueError``).
    """
    from pipelines.ingest.adapters.base import RuleApplied

    if market not in MARKETS:
        raise ParameterError("market", f"must be one of {sorted(MARKETS)}, got {market!r}")
    if bar_seconds is not None and int(bar_seconds) <= 0:
        raise ParameterError("bar_seconds", f"must be positive, got {bar_seconds}")
    table = read_table(path, needs="columns ts, open, high, low, close[, volume]")
    file, raw = table.file, table.frame
    _check_columns(raw, file)
    rows = table.rows
    frame, rules = _user_frame(raw, file)
    validate_ohlcv(frame, file=file, row_numbers=rows, row_kind=ROW_KIND)
    if bar_seconds is None:
        bar_seconds = _infer_bar_seconds(frame, file)
        rules.append(
            RuleApplied(
                "infer_bar_seconds",
                frame.height,
                f"bar size {bar_seconds} s inferred from the median spacing of ts",
            )
        )
    frame = frame.select(
        pl.lit(asset.upper()).alias("asset"),
        pl.lit(market).alias("market"),
        pl.lit(venue.lower()).alias("venue"),
        pl.lit(int(bar_seconds), dtype=pl.Int64).alias("bar_seconds"),
        "ts",
        *PRICE_COLUMNS,
        "volume",
    )
    validate_ohlcv(frame, file=file, row_numbers=rows, row_kind=ROW_KIND)
    return frame, rules


def _user_frame(raw: pl.DataFrame, file: str) -> tuple[pl.DataFrame, list[RuleApplied]]:
    """Parse ``ts`` and the numeric columns of a user's table (``volume`` null when absent)."""
    from pipelines.ingest.adapters.base import RuleApplied

    ts = parse_timestamps(raw.get_column("ts"), file, "ts")
    frame = pl.DataFrame({"ts": ts}).with_columns(
        parse_numbers(raw.get_column(column), file, column)
        for column in _USER_COLUMNS[1:]
        if column in raw.columns
    )
    if "volume" not in frame.columns:
        frame = frame.with_columns(volume=pl.lit(None, dtype=pl.Float64))
    unit = epoch_unit(raw.get_column("ts"))
    if unit is None:
        return frame, []
    return frame, [RuleApplied("ts_epoch_unit", frame.height, f"ts read as epoch {unit}")]


def _infer_bar_seconds(frame: pl.DataFrame, file: str) -> int:
    if frame.height < 2:
        raise DataValidationError(
            file, "ts", None, "cannot infer the bar size from fewer than 2 rows; pass bar_seconds"
        )
    spacing = frame.get_column("ts").diff().dt.total_seconds().drop_nulls()
    median = float(spacing.median())  # type: ignore[arg-type]
    if median <= 0 or median != int(median):
        raise DataValidationError(
            file, "ts", None, f"median bar spacing {median} s is not usable; pass bar_seconds"
        )
    return int(median)
