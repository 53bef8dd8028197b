"""The one reader of users' own tables, and the one timestamp parser.

``cascade ingest-prices`` (:func:`pipelines.ingest.validate.read_user_ohlcv`), ``cascade
backtest --prices`` (:func:`pipelines.backtests.calibration.read_prices_file`) and ``cascade
backtest --book FILE`` (:func:`pipelines.backtests.books.read_book_file`) read files with
:func:`read_table` and parse them with :func:`parse_numbers` and :func:`parse_timestamps`, so a
file means the same thing, and a bad value is reported the same way, in every command.

Rules
-----
* **Files**: CSV (``.csv``, ``.csv.gz``, ``.txt``) or Parquet (``.parquet``, ``.pq``). CSV
  columns are read as text and parsed here, so a bad cell is named instead of being guessed
  into another type; Parquet columns keep their stored types. Column names are stripped and
  lower-cased.
* **Rows**: every error names the file, the column and the *data row*: 1-based, the header
  excluded (the first value under the header is data row 1), for CSV and Parquet alike.
* **Timestamps** (UTC): a datetime column (naive means UTC); ISO-8601 text
  (``2022-05-09T00:00:00Z``, ``2022-05-09 00:00``, ``2022-05-09``; text without an offset is
  UTC); or epoch numbers whose unit is decided by magnitude, one unit per column:

  =====================  ============
  ``|value|`` in         unit
  =====================  ============
  ``[1e8, 1e11)``        seconds
  ``[1e11, 1e14)``       milliseconds
  ``[1e14, 1e17)``       microseconds
  ``[1e17, 1e20)``       nanoseconds
  =====================  ============

  (seconds cover 1973-03 to 5138; milliseconds from 1973-03 on, and so on). A value outside
  every band, or in a different band than the first row, is an error — never a guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipelines.errors import DataValidationError, MissingFileError

__all__ = [
    "EPOCH_UNITS",
    "ROW_KIND",
    "UserTable",
    "epoch_unit",
    "parse_numbers",
    "parse_timestamps",
    "read_table",
]

ROW_KIND = "data row"
"""What the row numbers of users' files count: 1-based data rows, header excluded."""

EPOCH_UNITS: tuple[tuple[str, float, float, int], ...] = (
    ("s", 1e8, 1e11, 1_000_000),
    ("ms", 1e11, 1e14, 1_000),
    ("us", 1e14, 1e17, 1),
    ("ns", 1e17, 1e20, -1_000),  # negative: divide
)
"""(unit, lowest |value|, highest |value| (exclusive), microseconds per unit) of epoch numbers."""

_CSV_SUFFIXES = (".csv", ".csv.gz", ".txt")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_ISO_FORMATS: tuple[tuple[str, bool], ...] = (
    ("%Y-%m-%dT%H:%M:%S%.f%:z", True),
    ("%Y-%m-%dT%H:%M:%S%.f%z", True),
    ("%Y-%m-%dT%H:%M%:z", True),
    ("%Y-%m-%dT%H:%M:%S%.f", False),
    ("%Y-%m-%dT%H:%M", False),
    ("%Y-%m-%d", False),
)


@dataclass(frozen=True)
class UserTable:
    """A user's table as read by :func:`read_table`.

    Attributes
    ----------
    file : str
        The path as given, for messages.
    frame : polars.DataFrame
        CSV: every column as text; Parquet: stored types. Names stripped and lower-cased.
    """

    file: str
    frame: pl.DataFrame

    @property
    def rows(self) -> pl.Series:
        """1-based data-row number of each row."""
        return pl.int_range(1, self.frame.height + 1, eager=True, dtype=pl.Int64)

    def require(self, columns: Sequence[str], what: str) -> None:
        """Raise naming the first missing column; ``what`` says which columns the file needs."""
        for column in columns:
            if column not in self.frame.columns:
                raise DataValidationError(self.file, column, None, f"missing; {what}")

    def numbers(self, column: str) -> pl.Series:
        """Column ``column`` as Float64 (see :func:`parse_numbers`)."""
        return parse_numbers(self.frame.get_column(column), self.file, column)

    def timestamps(self, column: str = "ts") -> pl.Series:
        """Column ``column`` as UTC datetimes (see :func:`parse_timestamps`)."""
        return parse_timestamps(self.frame.get_column(column), self.file, column)


def read_table(path: str | Path, *, needs: str = "") -> UserTable:
    """Read a user's CSV or Parquet file.

    Parameters
    ----------
    path : str or Path
        The file.
    needs : str, optional
        What the file must hold (``"columns ts, price"``), appended to file-type errors.

    Raises
    ------
    MissingFileError
        The file does not exist (a :class:`DataValidationError` and a ``FileNotFoundError``).
    DataValidationError
        Unsupported file type, or the file cannot be read; names the file.
    """
    file = str(path)
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(file, None, None, "file does not exist")
    name = path.name.lower()
    try:
        if name.endswith(_PARQUET_SUFFIXES):
            frame = pl.read_parquet(path)
        elif name.endswith(_CSV_SUFFIXES):
            frame = pl.read_csv(path, infer_schema=False)
        else:
            hint = f" with {needs}" if needs else ""
            raise DataValidationError(
                file,
                None,
                None,
                f"unsupported file type; give a .csv, .csv.gz or .parquet file{hint}",
            )
    except (pl.exceptions.PolarsError, OSError) as exc:
        line = _first_non_utf8_line(path)
        if line is not None:
            raise DataValidationError(
                file,
                None,
                line,
                "not UTF-8 text (re-save the file as UTF-8)",
                row_kind="file line",
            ) from None
        detail = " ".join(str(exc).split())
        raise DataValidationError(file, None, None, f"cannot read the file: {detail}") from None
    names = [c.strip().lower() for c in frame.columns]
    seen: dict[str, str] = {}
    for original, norm in zip(frame.columns, names):
        if norm in seen:
            raise DataValidationError(
                file,
                norm,
                None,
                f"appears twice in the header ({seen[norm]!r} and {original!r}; names are "
                "compared stripped and lower-cased); keep one",
            )
        seen[norm] = original
    return UserTable(file, frame.rename(dict(zip(frame.columns, names))))


def _first_non_utf8_line(path: Path) -> int | None:
    """1-based line of the first bytes that are not UTF-8 in a plain CSV file, else ``None``."""
    if not path.name.lower().endswith((".csv", ".txt")):
        return None
    try:
        with open(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError:
                    return number
    except OSError:
        return None
    return None


def _rows(n: int, rows: Sequence[int] | pl.Series | None) -> list[int]:
    return list(range(1, n + 1)) if rows is None else [int(r) for r in rows]


def parse_numbers(
    values: pl.Series,
    file: str,
    column: str,
    *,
    rows: Sequence[int] | pl.Series | None = None,
    row_kind: str = ROW_KIND,
) -> pl.Series:
    """Parse a column to Float64; empty cells become null, any other non-number is an error.

    Raises
    ------
    DataValidationError
        Names the file, the column and the row of the first value that is not a number.
    """
    if values.dtype.is_numeric():
        return values.cast(pl.Float64).alias(column)
    text = values.cast(pl.String).str.strip_chars()
    parsed = text.cast(pl.Float64, strict=False)
    bad = (parsed.is_null() & text.is_not_null() & (text != "")).arg_true()
    if bad.len():
        i = int(bad[0])
        raise DataValidationError(
            file,
            column,
            _rows(values.len(), rows)[i],
            f"{text[i]!r} is not a number; give a plain number (0.83)",
            row_kind=row_kind,
        )
    return parsed.alias(column)


def _band(number: pl.Series) -> pl.Series:
    magnitude = number.abs()
    unit = pl.lit(None, dtype=pl.String)
    for name, lo, hi, _scale in reversed(EPOCH_UNITS):
        unit = pl.when((magnitude >= lo) & (magnitude < hi)).then(pl.lit(name)).otherwise(unit)
    return pl.select(unit).to_series()


def _as_number(values: pl.Series) -> pl.Series | None:
    """The column as numbers when every value is one (numeric dtype or numeric text)."""
    if values.dtype.is_numeric():
        return values
    if values.dtype != pl.String:
        return None
    text = values.str.strip_chars()
    as_int = text.cast(pl.Int64, strict=False)
    if text.len() and as_int.is_not_null().all():
        return as_int
    as_float = text.cast(pl.Float64, strict=False)
    if text.len() and as_float.is_not_null().all():
        return as_float
    return None


def epoch_unit(values: pl.Series) -> str | None:
    """The epoch unit :func:`parse_timestamps` reads ``values`` in, ``None`` if not epochs."""
    number = _as_number(values)
    if number is None or number.len() == 0:
        return None
    return _band(number.cast(pl.Float64))[0]


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def parse_timestamps(
    values: pl.Series,
    file: str,
    column: str,
    *,
    rows: Sequence[int] | pl.Series | None = None,
    row_kind: str = ROW_KIND,
) -> pl.Series:
    """Parse a timestamp column to ``Datetime('us', 'UTC')`` with the module's one rule.

    Parameters
    ----------
    values : polars.Series
        Datetime, date, epoch numbers (numeric or text) or ISO-8601 text.
    file, column : str
        Named in errors.
    rows : sequence of int, optional
        Row number of each value (default ``1, 2, ...``), counted as ``row_kind``.
    row_kind : str, optional
        What ``rows`` count (default :data:`ROW_KIND`).

    Raises
    ------
    DataValidationError
        Names the file, the column and the row of the first missing, unparseable or
        implausible value, or of the first epoch in another unit than the first row's.
    """
    if values.dtype == pl.Date:
        values = values.cast(pl.Datetime("us"))
    if isinstance(values.dtype, pl.Datetime):
        ts = values.dt.cast_time_unit("us")
        ts = ts.dt.replace_time_zone("UTC") if values.dtype.time_zone is None else ts
        ts = ts.dt.convert_time_zone("UTC").alias(column)
        missing = ts.is_null().arg_true()
        if missing.len():
            row = _rows(values.len(), rows)[int(missing[0])]
            raise DataValidationError(file, column, row, "is empty", row_kind=row_kind)
        return ts
    number = _as_number(values)
    if number is not None:
        return _parse_epoch(number, file, column, _rows(values.len(), rows), row_kind)
    return _parse_iso(values.cast(pl.String), file, column, _rows(values.len(), rows), row_kind)


def _parse_epoch(
    number: pl.Series, file: str, column: str, rows: list[int], row_kind: str
) -> pl.Series:
    unit = _band(number.cast(pl.Float64))
    unknown = unit.is_null().arg_true()
    if unknown.len():
        i = int(unknown[0])
        value = number[i]
        raise DataValidationError(
            file,
            column,
            rows[i],
            f"epoch value {'empty' if value is None else _number_text(value)} is not a "
            "plausible time in seconds, milliseconds, microseconds or nanoseconds",
            row_kind=row_kind,
        )
    first = unit[0]
    mixed = (unit != first).arg_true()
    if mixed.len():
        i = int(mixed[0])
        raise DataValidationError(
            file,
            column,
            rows[i],
            f"epoch value {_number_text(number[i])} is in {unit[i]} while the first row is in "
            f"{first}; re-export the file with one epoch unit",
            row_kind=row_kind,
        )
    scale = next(s for name, _lo, _hi, s in EPOCH_UNITS if name == first)
    if number.dtype.is_integer():
        micros = number.cast(pl.Int64) * scale if scale > 0 else number.cast(pl.Int64) // -scale
    else:
        factor = scale if scale > 0 else 1 / -scale
        micros = (number.cast(pl.Float64) * factor).round(0).cast(pl.Int64)
    return pl.from_epoch(micros, time_unit="us").dt.replace_time_zone("UTC").alias(column)


def _parse_iso(
    text: pl.Series, file: str, column: str, rows: list[int], row_kind: str
) -> pl.Series:
    text = text.str.strip_chars()
    norm = text.str.replace(r"^(\d{4}-\d{2}-\d{2})[ ]", "${1}T").str.replace(r"Z$", "+00:00")
    candidates = []
    for fmt, aware in _ISO_FORMATS:
        parsed = norm.str.to_datetime(fmt, strict=False, time_unit="us")
        parsed = parsed.dt.convert_time_zone("UTC") if aware else parsed.dt.replace_time_zone("UTC")
        candidates.append(parsed)
    ts = pl.select(pl.coalesce(candidates)).to_series().alias(column)
    bad = ts.is_null().arg_true()
    if bad.len():
        i = int(bad[0])
        shown = "empty value" if text[i] in (None, "") else f"timestamp {text[i]!r}"
        raise DataValidationError(
            file,
            column,
            rows[i],
            f"unparseable {shown}; use ISO-8601 (2022-05-09T00:00:00Z) or epoch seconds, "
            "milliseconds, microseconds or nanoseconds",
            row_kind=row_kind,
        )
    return ts
