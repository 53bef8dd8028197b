"""`cascade ingest-prices`: strict loading; bad input leaves the DB as it was.

The tests marked ``integration`` use real bars from the data mirror; the others use a synthetic
file and run in the fast tier.
"""

from datetime import UTC, datetime, timedelta

import duckdb
import polars as pl
import pytest

from pipelines.cli.main import main
from pipelines.ingest.user_prices import ingest_user_prices


def _synthetic_csv(path, n: int = 24, step_s: int = 3600):
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    ts = [(t0 + timedelta(seconds=i * step_s)).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(n)]
    c = [100.0 + i for i in range(n)]
    pl.DataFrame(
        {"ts": ts, "open": c, "high": [x + 1 for x in c], "low": [x - 1 for x in c], "close": c}
    ).with_columns(volume=pl.lit(1.0)).write_csv(path)
    return path


@pytest.mark.parametrize(
    ("flags", "how"),
    [([], "inferred from the timestamps"), (["--bar-seconds", "900"], "from --bar-seconds")],
    ids=["inferred", "given"],
)
def test_ingest_prices_prints_bar_size_and_whether_inferred(tmp_path, capsys, flags, how):
    csv = _synthetic_csv(tmp_path / "zzz.csv", step_s=900)
    db = tmp_path / "w.duckdb"
    capsys.readouterr()
    argv = ["ingest-prices", "--db", str(db), "--file", str(csv), "--asset", "zzz", *flags]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "loaded 24 bars of ZZZ at venue 'user' as source 'user/ZZZ/spot/user/900s'",
        f"bar size 900 s ({how})",
    ]


def test_ingest_user_prices_returns_bar_size(tmp_path):
    csv = _synthetic_csv(tmp_path / "zzz.csv")
    db = tmp_path / "w.duckdb"
    done = ingest_user_prices(db, csv, asset="zzz")
    assert (done.rows, done.bar_seconds, done.inferred) == (24, 3600, True)
    done = ingest_user_prices(db, csv, asset="zzz", bar_seconds=3600)
    assert (done.replaced, done.bar_seconds, done.inferred) == (24, 3600, False)


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


@pytest.mark.integration
def test_user_file_loads_with_inferred_bar_size(tmp_path, real_bars, capsys):
    csv = tmp_path / "eth_user.csv"
    real_bars.write_csv(csv)
    db = tmp_path / "w.duckdb"
    assert main(["ingest-prices", "--db", str(db), "--file", str(csv), "--asset", "eth"]) == 0
    assert "bar size 3600 s (inferred from the timestamps)" in capsys.readouterr().out
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


@pytest.mark.integration
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
        assert f"data row {row}" in err, err  # 1-based, header excluded
    assert _snapshot(db) == before
