"""`cascade ingest-prices`: strict loading; bad input leaves the DB as it was."""

import duckdb
import polars as pl
import pytest

from pipelines.cli.main import main

pytestmark = pytest.mark.integration  # needs the real-data mirror


@pytest.fixture()
def real_bars(mirror_dir) -> pl.DataFrame:
    """48 real hourly ETH bars from the mirror, as a user would export them."""
    raw = pl.read_ipc(
        mirror_dir / "Roshan7869__algotrading/user_data/data/binance/ETH_USDT-1h.feather"
    )
    return (
        raw.rename({"date": "ts"})
        .filter(pl.col("ts") >= pl.datetime(2022, 6, 12, time_zone="UTC"))
        .head(48)
        .with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    )


def _snapshot(db):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return (
            con.execute("SELECT count(*), sum(hash(t)) FROM raw_prices t").fetchone(),
            con.execute("SELECT count(*) FROM ingest_log").fetchone(),
        )
    finally:
        con.close()


def test_user_file_loads_with_inferred_bar_size(tmp_path, real_bars, capsys):
    csv = tmp_path / "eth_user.csv"
    real_bars.write_csv(csv)
    db = tmp_path / "w.duckdb"
    assert main(["ingest-prices", "--db", str(db), "--file", str(csv), "--asset", "eth"]) == 0
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute(
        "SELECT count(*), min(bar_seconds), max(bar_seconds), min(venue) FROM prices "
        "WHERE asset = 'ETH'"
    ).fetchone()
    con.close()
    assert rows == (48, 3600, 3600, "user")
    # loading the same file again replaces, never duplicates
    assert main(["ingest-prices", "--db", str(db), "--file", str(csv), "--asset", "ETH"]) == 0
    assert _snapshot(db)[0][0] == 48


@pytest.mark.parametrize(
    ("mutate", "column", "row"),
    [
        (
            lambda f: f.with_columns(
                close=pl.when(pl.int_range(pl.len()) == 4)
                .then(float("nan"))
                .otherwise(pl.col("close"))
            ),
            "close",
            5,
        ),
        (
            lambda f: f.with_columns(
                low=pl.when(pl.int_range(pl.len()) == 9).then(-1.0).otherwise(pl.col("low"))
            ),
            "low",
            10,
        ),
        (
            lambda f: f.with_columns(
                ts=pl.when(pl.int_range(pl.len()) == 2)
                .then(pl.lit("yesterday"))
                .otherwise(pl.col("ts"))
            ),
            "ts",
            3,
        ),
        (lambda f: f.drop("high"), "high", None),
    ],
    ids=["nan-close", "negative-low", "bad-timestamp", "missing-column"],
)
def test_bad_user_file_is_rejected_and_db_unchanged(
    tmp_path, real_bars, capsys, mutate, column, row
):
    db = tmp_path / "w.duckdb"
    good = tmp_path / "good.csv"
    real_bars.write_csv(good)
    assert main(["ingest-prices", "--db", str(db), "--file", str(good), "--asset", "ETH"]) == 0
    before = _snapshot(db)
    bad = tmp_path / "bad.csv"
    mutate(real_bars).write_csv(bad)
    capsys.readouterr()
    assert main(["ingest-prices", "--db", str(db), "--file", str(bad), "--asset", "ETH"]) == 2
    err = capsys.readouterr().err
    assert "bad.csv" in err and repr(column) in err, err
    if row is not None:
        assert f"file line {row + 1}" in err, err  # header is line 1
    assert _snapshot(db) == before
