"""One reader and one timestamp rule for users' files (pipelines.user_files) in every command."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pipelines.backtests.books import read_book_file
from pipelines.backtests.calibration import read_prices_file
from pipelines.errors import DataValidationError, MissingFileError
from pipelines.ingest.validate import read_user_ohlcv
from pipelines.user_files import epoch_unit, parse_numbers, parse_timestamps, read_table

START_S = 1_652_054_400  # 2022-05-09T00:00:00Z
HOURS = [START_S + 3600 * i for i in range(4)]
EXPECTED = [datetime(2022, 5, 9, h, tzinfo=UTC) for h in range(4)]


def _bars_file(tmp_path: Path, ts: list, name: str) -> Path:
    """One file both ``ingest-prices`` (OHLCV) and ``backtest --prices`` (ts, price) accept."""
    frame = pl.DataFrame(
        {
            "ts": ts,
            "open": [100.0, 105, 111, 109],
            "high": [110.0, 112, 115, 111],
            "low": [90.0, 100, 108, 101],
            "close": [105.0, 111, 109, 102],
            "price": [105.0, 111, 109, 102],
        }
    )
    path = tmp_path / name
    if name.endswith(".parquet"):
        frame.write_parquet(path)
    else:
        frame.write_csv(path)
    return path


def _via_ohlcv(path: Path) -> list[datetime]:
    frame, _rules = read_user_ohlcv(path, asset="ETH")
    return frame["ts"].to_list()


def _via_prices(path: Path) -> list[datetime]:
    pp, _spec = read_prices_file(path)
    return [
        datetime.fromtimestamp(int(t) / 1000, tz=UTC)
        for t in np.asarray(pp.ts, dtype="datetime64[ms]").astype(np.int64)
    ]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize(
    "ts",
    [
        HOURS,  # seconds
        [t * 1_000 for t in HOURS],  # milliseconds
        [t * 1_000_000 for t in HOURS],  # microseconds
        [t * 1_000_000_000 for t in HOURS],  # nanoseconds
        [f"2022-05-09T0{h}:00:00Z" for h in range(4)],  # ISO-8601
        [f"2022-05-09 0{h}:00" for h in range(4)],  # ISO-8601 without offset: UTC
    ],
    ids=["s", "ms", "us", "ns", "iso", "iso-naive"],
)
def test_every_epoch_unit_gives_the_same_timestamps_in_both_readers(tmp_path, ts, suffix):
    path = _bars_file(tmp_path, ts, "bars" + suffix)
    assert _via_ohlcv(path) == EXPECTED
    assert _via_prices(path) == EXPECTED


def test_epoch_unit_is_decided_by_magnitude():
    assert epoch_unit(pl.Series([START_S])) == "s"
    assert epoch_unit(pl.Series([str(START_S * 1000)])) == "ms"
    assert epoch_unit(pl.Series([START_S * 10**6])) == "us"
    assert epoch_unit(pl.Series([START_S * 10**9])) == "ns"
    assert epoch_unit(pl.Series(["2022-05-09"])) is None
    assert parse_timestamps(pl.Series([1.6520544005e9]), "f", "ts")[0] == datetime(
        2022, 5, 9, 0, 0, 0, 500_000, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("ts", "needle"),
    [
        ([START_S, START_S + 3600, 42, START_S + 3 * 3600], "not a plausible time"),
        ([START_S * 1000, START_S + 3600, START_S + 7200, START_S + 3 * 3600], "is in s while"),
    ],
)
def test_bad_epochs_name_file_column_and_row_in_both_readers(tmp_path, ts, needle):
    path = _bars_file(tmp_path, ts, "bad.csv")
    bad_row = 3 if needle.startswith("not") else 2
    for reader in (read_user_ohlcv, read_prices_file):
        kwargs = {"asset": "ETH"} if reader is read_user_ohlcv else {}
        with pytest.raises(DataValidationError, match=needle) as err:
            reader(path, **kwargs)
        assert (err.value.file, err.value.column, err.value.row) == (str(path), "ts", bad_row)
        assert f"data row {bad_row}" in str(err.value) and str(path) in str(err.value)


def test_bad_number_names_file_column_and_row_in_all_three_readers(tmp_path):
    prices = tmp_path / "p.csv"
    prices.write_text(
        "ts,open,high,low,close,price\n"
        + "\n".join(
            f"{t},1,2,0.5,{'x1' if i == 2 else 1.5},{'x1' if i == 2 else 1.5}"
            for i, t in enumerate(HOURS)
        )
        + "\n"
    )
    for reader, column in ((read_user_ohlcv, "close"), (read_prices_file, "price")):
        kwargs = {"asset": "ETH"} if reader is read_user_ohlcv else {}
        with pytest.raises(DataValidationError, match="'x1' is not a number") as err:
            reader(prices, **kwargs)
        assert (err.value.file, err.value.column, err.value.row) == (str(prices), column, 3)
    book = tmp_path / "book.csv"
    book.write_text(
        "position_id,collateral_asset,collateral,debt,liquidation_threshold\n"
        "1,ETH,10,10000,0.8\n2,ETH,5,2000,0.8\n3,ETH,ten,2000,0.8\n"
    )
    with pytest.raises(DataValidationError, match="'ten' is not a number") as err:
        read_book_file(book)
    assert (err.value.file, err.value.column, err.value.row) == (str(book), "collateral", 3)
    assert "data row 3" in str(err.value)


def test_book_file_rows_are_data_rows_and_ids_stay_integers(tmp_path):
    book = tmp_path / "book.csv"
    book.write_text(
        "position_id,collateral_asset,collateral,debt,liquidation_threshold\n"
        "1,ETH,10,10000,0.8\n2,ETH,5,2000,83\n"
    )
    with pytest.raises(DataValidationError, match="looks like a percent; give 0.83") as err:
        read_book_file(book)
    assert (err.value.column, err.value.row) == ("liquidation_threshold", 2)
    book.write_text(
        "position_id,collateral_asset,collateral,debt,liquidation_threshold\n1,ETH,10,10000,0.8\n"
    )
    assert read_book_file(book).book.position_id.dtype.kind == "i"


def test_read_table_errors(tmp_path):
    with pytest.raises(MissingFileError, match="file does not exist") as err:
        read_table(tmp_path / "nope.csv")
    assert isinstance(err.value, FileNotFoundError)
    odd = tmp_path / "bars.xlsx"
    odd.write_bytes(b"")
    with pytest.raises(DataValidationError, match="unsupported file type; .* with columns ts"):
        read_table(odd, needs="columns ts, price")
    broken = tmp_path / "b.parquet"
    broken.write_bytes(b"not parquet")
    with pytest.raises(DataValidationError, match="cannot read the file"):
        read_table(broken)
    table = read_table(_bars_file(tmp_path, HOURS, "x.csv"))
    assert table.frame.schema["close"] == pl.String  # CSV cells are parsed here, not guessed
    assert parse_numbers(pl.Series(["1", "", None]), "f", "c").to_list() == [1.0, None, None]
    with pytest.raises(DataValidationError, match="unparseable empty value") as err:
        parse_timestamps(pl.Series(["2022-05-09", None]), "f", "ts")
    assert err.value.row == 2
