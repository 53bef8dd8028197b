"""`cascade remove-asset`: removes a user's own bars (and only those), atomically, after asking.

Fast tier: each test builds a tiny warehouse in a temporary folder from synthetic CSVs loaded with
``cascade ingest-prices`` (plus, where needed, one registry-like source loaded through
``load_source``); no data mirror.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

import pipelines.ingest.user_prices as user_prices
from pipelines.cli.main import main
from pipelines.ingest.adapters.base import AdapterOutput, SourceEntry
from pipelines.ingest.load import load_source
from pipelines.warehouse.connection import connect

REGISTRY = "registry/binance-eth-1h"


def _bars(n: int) -> pl.DataFrame:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    ts = [(t0 + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(n)]
    c = [100.0 + i for i in range(n)]
    return pl.DataFrame(
        {"ts": ts, "open": c, "high": [x + 1 for x in c], "low": [x - 1 for x in c], "close": c}
    ).with_columns(volume=pl.lit(1.0))


def run(argv: list, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _load(db: Path, tmp: Path, asset: str, n: int, *extra: str) -> None:
    csv = tmp / f"{asset}-{n}-{'-'.join(extra) or 'plain'}.csv"
    _bars(n).write_csv(csv)
    assert (
        main(["ingest-prices", "--db", str(db), "--file", str(csv), "--asset", asset, *extra]) == 0
    )


def _registry_eth(db: Path, n: int = 6) -> None:
    frame = (
        _bars(n)
        .with_columns(pl.col("ts").str.to_datetime(time_zone="UTC", time_unit="us"))
        .with_columns(
            asset=pl.lit("ETH"),
            market=pl.lit("spot"),
            venue=pl.lit("binance"),
            bar_seconds=pl.lit(3600),
        )
    )
    entry = SourceEntry(
        name=REGISTRY, file="x", origin_repo="o", commit="c", path="p", url="u",
        sha256="0" * 64, bytes=1, format="csv", adapter="ohlcv", params={}, priority=50,
    )  # fmt: skip
    con = connect(db)
    try:
        load_source(
            con, entry, AdapterOutput(tables={"prices": frame}), sha256="0", adapter_version="t"
        )
    finally:
        con.close()


def _state(db: Path) -> tuple:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return (
            con.execute(
                "SELECT source, count(*), sum(hash(t)) FROM raw_prices t GROUP BY source "
                "ORDER BY source"
            ).fetchall(),
            con.execute("SELECT source FROM ingest_log ORDER BY source").fetchall(),
            con.execute("SELECT source FROM sources ORDER BY source").fetchall(),
        )
    finally:
        con.close()


@pytest.fixture()
def wh(tmp_path: Path) -> Path:
    """A warehouse with registry ETH bars, user ZZZ bars at three venues and user ETH bars."""
    db = tmp_path / "w.duckdb"
    _registry_eth(db)
    _load(db, tmp_path, "ZZZ", 24)
    _load(db, tmp_path, "ZZZ", 12, "--venue", "binance")
    _load(db, tmp_path, "ZZZ", 8, "--venue", "binance", "--override")
    _load(db, tmp_path, "ETH", 5, "--venue", "binance", "--override")
    return db


def _sources(db: Path) -> list[str]:
    return [row[0] for row in _state(db)[2]]


def test_remove_asset_lists_sources_and_removes_them_with_yes(wh, capsys):
    code, out, err = run(["remove-asset", "--db", wh, "zzz", "--yes"], capsys)
    assert code == 0, err
    assert out.splitlines() == [
        "source 'user-override/ZZZ/spot/binance/3600s': 8 bars",
        "source 'user/ZZZ/spot/user/3600s': 24 bars",
        "source 'user/ZZZ/spot/user:binance/3600s': 12 bars",
        "removed 3 sources (44 bars) of ZZZ",
    ]
    rows, log, sources = _state(wh)
    assert [r[0] for r in rows] == [REGISTRY, "user-override/ETH/spot/binance/3600s"]
    assert [r[0] for r in log] == [REGISTRY, "user-override/ETH/spot/binance/3600s"]
    assert [r[0] for r in sources] == [REGISTRY, "user-override/ETH/spot/binance/3600s"]


def test_remove_asset_venue_selects_user_and_override_sources(wh, capsys):
    code, out, err = run(["remove-asset", "--db", wh, "ZZZ", "--venue", "binance", "--yes"], capsys)
    assert code == 0, err
    assert out.splitlines()[-1] == "removed 2 sources (20 bars) of ZZZ"
    assert [s for s in _sources(wh) if "/ZZZ/" in s] == ["user/ZZZ/spot/user/3600s"]


def test_remove_asset_never_removes_registry_data(wh, capsys):
    before = _state(wh)
    code, out, err = run(["remove-asset", "--db", wh, "ETH", "--yes"], capsys)
    assert code == 0, err
    assert out.splitlines() == [
        "source 'user-override/ETH/spot/binance/3600s': 5 bars",
        "removed 1 source (5 bars) of ETH",
    ]
    assert _state(wh)[0] == [r for r in before[0] if r[0] != "user-override/ETH/spot/binance/3600s"]
    # now ETH has only registry data: refused, exit 2, saying so; nothing changes
    after = _state(wh)
    code, out, err = run(["remove-asset", "--db", wh, "ETH", "--yes"], capsys)
    assert code == 2 and out == ""
    assert "only registry data (6 bars)" in err and "never removes" in err, err
    assert _state(wh) == after


def test_remove_asset_unknown_asset_lists_user_assets(wh, capsys):
    before = _state(wh)
    code, out, err = run(["remove-asset", "--db", wh, "ABC", "--yes"], capsys)
    assert code == 2 and out == ""
    assert err.strip() == "error: unknown asset 'ABC'; user assets present: ETH, ZZZ"
    code, _, err = run(["remove-asset", "--db", wh, "ZZZ", "--venue", "kraken", "--yes"], capsys)
    assert code == 2 and "user venues: binance, user, user:binance" in err, err
    assert _state(wh) == before


def test_remove_asset_without_yes_and_no_tty_exits_2(wh, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # not a TTY
    before = _state(wh)
    code, out, err = run(["remove-asset", "--db", wh, "ZZZ"], capsys)
    assert code == 2
    assert len(out.splitlines()) == 3  # what would be removed is still shown
    assert "pass --yes" in err and "not a terminal" in err, err
    assert _state(wh) == before


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("answer", "code"), [("y\n", 0), ("n\n", 2), ("\n", 2)])
def test_remove_asset_asks_on_a_tty(wh, capsys, monkeypatch, answer, code):
    monkeypatch.setattr("sys.stdin", _Tty(answer))
    before = _state(wh)
    got, out, err = run(["remove-asset", "--db", wh, "ZZZ"], capsys)
    assert got == code, (out, err)
    assert "remove these 3 sources (44 bars)? [y/N]" in out
    if code == 0:
        assert not [s for s in _sources(wh) if "/ZZZ/" in s]
    else:
        assert "nothing was removed" in err
        assert _state(wh) == before


def test_remove_asset_is_one_transaction(wh, capsys, monkeypatch):
    real = user_prices._delete_source
    calls = []

    def failing(con, name):
        calls.append(name)
        if len(calls) == 2:  # the first source's rows are already deleted in the transaction
            raise duckdb.IOException("disk went away")
        return real(con, name)

    monkeypatch.setattr(user_prices, "_delete_source", failing)
    before = _state(wh)
    code, _, err = run(["remove-asset", "--db", wh, "ZZZ", "--yes"], capsys)
    assert code != 0 and len(calls) == 2, err
    assert _state(wh) == before


def test_remove_user_sources_refuses_registry_sources(wh):
    from pipelines.errors import ParameterError

    before = _state(wh)
    with pytest.raises(ParameterError, match="registry/binance-eth-1h"):
        user_prices.remove_user_sources(wh, ["user/ZZZ/spot/user/3600s", REGISTRY])
    assert _state(wh) == before
