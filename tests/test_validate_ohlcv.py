"""Strict OHLCV validation (pipelines.ingest.validate): users' files and frames from adapters."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from pipelines.errors import DataValidationError
from pipelines.ingest.validate import read_user_ohlcv, validate_ohlcv

HEADER = "ts,open,high,low,close,volume"
GOOD_ROWS = [
    "2022-05-09T00:00:00Z,100,110,90,105,10",
    "2022-05-09T01:00:00Z,105,112,100,111,12",
    "2022-05-09T02:00:00Z,111,115,108,109,8",
    "2022-05-09T03:00:00Z,109,111,101,102,9",
]


def write_csv(tmp_path: Path, rows: list[str], *, header: str = HEADER, name: str = "bars.csv"):
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def replace(rows: list[str], index: int, line: str) -> list[str]:
    out = list(rows)
    out[index] = line
    return out


def assert_names(err: DataValidationError, path: Path, column: str, row: int | None) -> None:
    """The error names the file, the column and the data row (1-based, header excluded)."""
    assert err.file == str(path)
    assert err.column == column
    assert err.row == row
    text = str(err)
    assert str(path) in text
    assert repr(column) in text
    if row is not None:
        assert err.row_kind == "data row"
        assert f"data row {row}" in text


# ---------------------------------------------------------------------------------------------
# read_user_ohlcv: the happy paths
# ---------------------------------------------------------------------------------------------


def test_reads_iso_csv_and_infers_hourly_bars(tmp_path: Path) -> None:
    path = write_csv(tmp_path, GOOD_ROWS)
    frame, rules = read_user_ohlcv(path, asset="btc")
    assert frame.columns == [
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
    ]
    assert frame.schema["ts"] == pl.Datetime("us", "UTC")
    assert frame["asset"].unique().to_list() == ["BTC"]
    assert frame["market"][0] == "spot" and frame["venue"][0] == "user"
    assert frame["bar_seconds"].unique().to_list() == [3600]
    assert frame["ts"][0] == datetime(2022, 5, 9, tzinfo=UTC)
    assert [r.rule for r in rules] == ["infer_bar_seconds"]


def test_reads_epoch_milliseconds_and_seconds(tmp_path: Path) -> None:
    ms = write_csv(tmp_path, ["1652054400000,1,2,0.5,1.5,3", "1652054700000,1.5,2,1,1.2,4"])
    sec = write_csv(
        tmp_path, ["1652054400,1,2,0.5,1.5,3", "1652054700,1.5,2,1,1.2,4"], name="s.csv"
    )
    for path, unit in ((ms, "ms"), (sec, "s")):
        frame, rules = read_user_ohlcv(path, asset="ETH", market="perp", venue="Binance")
        assert frame["ts"].to_list() == [
            datetime(2022, 5, 9, 0, 0, tzinfo=UTC),
            datetime(2022, 5, 9, 0, 5, tzinfo=UTC),
        ]
        assert frame["bar_seconds"][0] == 300
        assert frame["venue"][0] == "binance"
        assert rules[0].rule == "ts_epoch_unit" and rules[0].detail.endswith(unit)


def test_iso_offsets_are_converted_to_utc_and_volume_is_optional(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        ["2022-05-09T02:00:00+02:00,1,2,0.5,1.5", "2022-05-09 01:00,1.5,2,1,1.2"],
        header="ts,open,high,low,close",
    )
    frame, _ = read_user_ohlcv(path, asset="SOL", bar_seconds=3600)
    assert frame["ts"].to_list() == [
        datetime(2022, 5, 9, 0, 0, tzinfo=UTC),
        datetime(2022, 5, 9, 1, 0, tzinfo=UTC),
    ]
    assert frame["volume"].null_count() == 2


def test_reads_parquet(tmp_path: Path) -> None:
    csv_frame, _ = read_user_ohlcv(write_csv(tmp_path, GOOD_ROWS), asset="BTC")
    path = tmp_path / "bars.parquet"
    csv_frame.select("ts", "open", "high", "low", "close", "volume").write_parquet(path)
    frame, rules = read_user_ohlcv(path, asset="BTC", bar_seconds=3600)
    assert frame.equals(csv_frame)
    assert rules == []


# ---------------------------------------------------------------------------------------------
# read_user_ohlcv: each kind of bad input names file, column and row
# ---------------------------------------------------------------------------------------------


def test_missing_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path, ["2022-05-09T00:00:00Z,1,2,1.5"], header="ts,open,high,close")
    with pytest.raises(DataValidationError, match="required column 'low' is missing") as err:
        read_user_ohlcv(path, asset="BTC")
    assert_names(err.value, path, "low", None)  # the header: no data row


def test_nan_price(tmp_path: Path) -> None:
    path = write_csv(tmp_path, replace(GOOD_ROWS, 2, "2022-05-09T02:00:00Z,111,NaN,108,109,8"))
    with pytest.raises(DataValidationError, match="NaN") as err:
        read_user_ohlcv(path, asset="BTC")
    assert_names(err.value, path, "high", 3)


def test_missing_price(tmp_path: Path) -> None:
    path = write_csv(tmp_path, replace(GOOD_ROWS, 1, "2022-05-09T01:00:00Z,105,112,100,,12"))
    with pytest.raises(DataValidationError, match="missing price") as err:
        read_user_ohlcv(path, asset="BTC")
    assert_names(err.value, path, "close", 2)


@pytest.mark.parametrize("value", ["0", "-5"])
def test_non_positive_price(tmp_path: Path, value: str) -> None:
    path = write_csv(tmp_path, replace(GOOD_ROWS, 3, f"2022-05-09T03:00:00Z,109,111,{value},102,9"))
    with pytest.raises(DataValidationError, match="not positive") as err:
        read_user_ohlcv(path, asset="BTC")
    assert_names(err.value, path, "low", 4)


def test_non_numeric_price(tmp_path: Path) -> None:
    path = write_csv(tmp_path, replace(GOOD_ROWS, 0, "2022-05-09T00:00:00Z,1o0,110,90,105,10"))
    with pytest.raises(DataValidationError, match="not a number") as err:
        read_user_ohlcv(path, asset="BTC")
    assert_names(err.value, path, "open", 1)


def test_high_below_low(tmp_path: Path) -> None:
    path = write_csv(tmp_path, replace(GOOD_ROWS, 1, "2022-05-09T01:00:00Z,105,99,100,99.5,12"))
    with pytest.raises(DataValidationError, match="high 99.0 is below low 100.0") as err:
        read_user_ohlcv(path, asset="BTC")
    assert_names(err.value, path, "high", 2)


def test_high_below_close_and_low_above_open(tmp_path: Path) -> None:
    high = write_csv(tmp_path, replace(GOOD_ROWS, 1, "2022-05-09T01:00:00Z,105,110,100,111,12"))
    with pytest.raises(DataValidationError, match="below open 105.0 or close 111.0") as err:
        read_user_ohlcv(high, asset="BTC")
    assert_names(err.value, high, "high", 2)
    low = write_csv(
        tmp_path, replace(GOOD_ROWS, 2, "2022-05-09T02:00:00Z,107,115,108,109,8"), name="l.csv"
    )
    with pytest.raises(DataValidationError, match="low 108.0 is above open 107.0") as err:
        read_user_ohlcv(low, asset="BTC")
    assert_names(err.value, low, "low", 3)


def test_unsorted_timestamps(tmp_path: Path) -> None:
    rows = [GOOD_ROWS[0], GOOD_ROWS[2], GOOD_ROWS[1], GOOD_ROWS[3]]
    path = write_csv(tmp_path, rows)
    with pytest.raises(DataValidationError, match="unsorted") as err:
        read_user_ohlcv(path, asset="BTC")
    assert_names(err.value, path, "ts", 3)
    assert "data row 2" in err.value.reason  # the row it should come after


def test_duplicate_timestamp_with_conflicting_values(tmp_path: Path) -> None:
    rows = [*GOOD_ROWS[:2], "2022-05-09T01:00:00Z,105,113,100,111,12", *GOOD_ROWS[2:]]
    path = write_csv(tmp_path, rows)
    with pytest.raises(DataValidationError, match="conflicting values") as err:
        read_user_ohlcv(path, asset="BTC")
    assert_names(err.value, path, "ts", 3)
    assert "first at data row 2" in err.value.reason


def test_exact_duplicate_is_an_error_for_user_files(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [*GOOD_ROWS[:2], GOOD_ROWS[1], *GOOD_ROWS[2:]])
    with pytest.raises(DataValidationError, match="exact duplicate of data row 2") as err:
        read_user_ohlcv(path, asset="BTC")
    assert_names(err.value, path, "ts", 3)


def test_unparseable_timestamp(tmp_path: Path) -> None:
    path = write_csv(tmp_path, replace(GOOD_ROWS, 2, "09/05/2022 02:00,111,115,108,109,8"))
    with pytest.raises(DataValidationError, match="unparseable timestamp '09/05/2022 02:00'") as e:
        read_user_ohlcv(path, asset="BTC")
    assert_names(e.value, path, "ts", 3)


def test_mixed_epoch_units(tmp_path: Path) -> None:
    path = write_csv(tmp_path, ["1652054400000,1,2,0.5,1.5,3", "1652054700,1.5,2,1,1.2,4"])
    with pytest.raises(DataValidationError, match="is in s while the first row is in ms") as err:
        read_user_ohlcv(path, asset="BTC")
    assert_names(err.value, path, "ts", 2)


def test_bars_closer_than_bar_seconds(tmp_path: Path) -> None:
    path = write_csv(tmp_path, GOOD_ROWS)
    with pytest.raises(DataValidationError, match="bars overlap") as err:
        read_user_ohlcv(path, asset="BTC", bar_seconds=86_400)
    assert_names(err.value, path, "ts", 2)


def test_unsupported_file_type_and_bad_arguments(tmp_path: Path) -> None:
    path = tmp_path / "bars.xlsx"
    path.write_bytes(b"")
    with pytest.raises(DataValidationError, match="unsupported file type"):
        read_user_ohlcv(path, asset="BTC")
    with pytest.raises(ValueError, match="market must be one of"):
        read_user_ohlcv(write_csv(tmp_path, GOOD_ROWS), asset="BTC", market="futures")
    with pytest.raises(FileNotFoundError):
        read_user_ohlcv(tmp_path / "nope.csv", asset="BTC")


def test_single_row_needs_bar_seconds(tmp_path: Path) -> None:
    path = write_csv(tmp_path, GOOD_ROWS[:1])
    with pytest.raises(DataValidationError, match="pass bar_seconds"):
        read_user_ohlcv(path, asset="BTC")
    frame, _ = read_user_ohlcv(path, asset="BTC", bar_seconds=60)
    assert frame.height == 1


# ---------------------------------------------------------------------------------------------
# validate_ohlcv on frames (as adapters call it)
# ---------------------------------------------------------------------------------------------


def bars(n: int = 4) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "asset": ["BTC"] * n,
            "market": ["spot"] * n,
            "venue": ["binance"] * n,
            "bar_seconds": [3600] * n,
            "ts": [datetime(2022, 5, 9, h, tzinfo=UTC) for h in range(n)],
            "open": [100.0] * n,
            "high": [101.0] * n,
            "low": [99.0] * n,
            "close": [100.5] * n,
            "volume": [1.0] * n,
        }
    ).with_columns(pl.col("ts").dt.cast_time_unit("us"))


def test_validate_returns_the_frame_and_uses_row_numbers() -> None:
    frame = bars()
    assert validate_ohlcv(frame, file="f") is frame
    bad = frame.with_columns(
        close=pl.when(pl.int_range(pl.len()) == 2).then(float("nan")).otherwise("close")
    )
    with pytest.raises(DataValidationError) as err:
        validate_ohlcv(bad, file="src.json", row_numbers=[10, 11, 13, 14])
    assert (err.value.file, err.value.column, err.value.row) == ("src.json", "close", 13)
    assert err.value.row_kind == "data row"


def test_validate_checks_order_within_each_series() -> None:
    other = bars().with_columns(asset=pl.lit("ETH"))
    validate_ohlcv(pl.concat([bars(), other]), file="f")  # same ts in two series is fine
    with pytest.raises(DataValidationError, match="exact duplicate of data row 1"):
        validate_ohlcv(pl.concat([bars(), bars(1)]), file="f")


def test_validate_rejects_naive_or_text_timestamps_and_negative_volume() -> None:
    with pytest.raises(DataValidationError, match="UTC-aware"):
        validate_ohlcv(bars().with_columns(pl.col("ts").dt.replace_time_zone(None)), file="f")
    with pytest.raises(DataValidationError, match="parsed to Datetime"):
        validate_ohlcv(bars().with_columns(pl.col("ts").dt.to_string()), file="f")
    with pytest.raises(DataValidationError, match="volume -1.0 is negative") as err:
        validate_ohlcv(bars().with_columns(volume=pl.lit(-1.0)), file="f")
    assert (err.value.column, err.value.row) == ("volume", 1)


def test_validate_missing_column_and_null_timestamp() -> None:
    with pytest.raises(DataValidationError, match="required column 'open'") as err:
        validate_ohlcv(bars().drop("open"), file="f")
    assert err.value.column == "open"
    null_ts = bars().with_columns(
        ts=pl.when(pl.int_range(pl.len()) == 1).then(None).otherwise("ts")
    )
    with pytest.raises(DataValidationError, match="unparseable timestamp") as err:
        validate_ohlcv(null_ts, file="f", row_kind="file line", row_numbers=[2, 3, 4, 5])
    assert (err.value.column, err.value.row, err.value.row_kind) == ("ts", 3, "file line")


def test_gzipped_csv_and_unreadable_parquet(tmp_path: Path) -> None:
    gz = tmp_path / "bars.csv.gz"
    gz.write_bytes(gzip.compress(("\n".join([HEADER, *GOOD_ROWS]) + "\n").encode()))
    frame, _ = read_user_ohlcv(gz, asset="BTC")
    assert frame.height == 4
    broken = tmp_path / "bars.parquet"
    broken.write_bytes(b"not a parquet file")
    with pytest.raises(DataValidationError, match="cannot read the file") as err:
        read_user_ohlcv(broken, asset="BTC")
    assert err.value.file == str(broken)
