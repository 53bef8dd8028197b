"""Issue #14 on the real data: a corrupt mirror names *every* bad file, in one line, exit 2.

Before: a fresh ingest ended in ``RuntimeError: 3 source(s) failed`` with four tracebacks
(exit 1), and on an already loaded warehouse only the first of three bad files was named.
The test builds a mirror holding three real registered files, loads them, then corrupts all
three and runs ``cascade ingest`` against a loaded and a fresh warehouse.
"""

from __future__ import annotations

import shutil
from datetime import UTC, timedelta
from pathlib import Path

import duckdb
import pytest
from hardening_faults import flush, placeholder, record

from pipelines.catalog.registry import load_registry
from pipelines.cli.main import main

pytestmark = pytest.mark.integration  # real registered files from the mirror

SOURCES = (
    "mryamz__web3-analytics-tool/csvData/borrow-SUSHI.csv",
    "mryamz__web3-analytics-tool/csvData/borrow-AAVE.csv",
    "lukmol__gamlss-btc-VaR/data/funding_rates.csv",
)


@pytest.fixture(scope="module", autouse=True)
def _fault_table():
    yield
    flush()


def _ingest(db: Path, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    argv = ["ingest", "--db", str(db)]
    for name in SOURCES:
        argv += ["--source", name]
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_corrupt_mirror_names_every_bad_file(tmp_path, mirror_dir, monkeypatch, capsys):
    entries = {e.name: e for e in load_registry()}
    mirror = tmp_path / "mirror"
    for name in SOURCES:
        target = mirror / entries[name].file
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(mirror_dir / entries[name].file, target)
    monkeypatch.setenv("CASCADE_DATA_MIRROR", str(mirror))
    placeholder(mirror, "MIRROR")
    placeholder(tmp_path, "TMP")
    loaded = tmp_path / "loaded.duckdb"
    assert _ingest(loaded, capsys)[0] == 0
    for name in SOURCES:
        with open(mirror / entries[name].file, "ab") as handle:
            handle.write(b"\n# corrupted\n")

    code, _, err = _ingest(loaded, capsys)
    lines = err.strip().splitlines()
    record(
        "corrupt mirror (3 bad files), warehouse already loaded",
        "cascade ingest --db W --source S1 --source S2 --source S3",
        code,
        lines[0] if lines else "",
    )
    assert code == 2 and len(lines) == 1 and "3 source file(s) failed verification" in lines[0]
    assert all(name in lines[0] for name in SOURCES)

    code, _, err = _ingest(tmp_path / "fresh.duckdb", capsys)
    lines = [line for line in err.strip().splitlines() if line.startswith("error: ")]
    record(
        "corrupt mirror (3 bad files), fresh warehouse",
        "cascade ingest --db W --source S1 --source S2 --source S3",
        code,
        lines[0] if lines else err,
    )
    assert code == 2 and len(lines) == 1 and "3 source(s) failed to ingest" in lines[0]
    assert all(name in lines[0] for name in SOURCES)
    assert "Traceback" not in err


REAL_ETH = "Roshan7869__algotrading/user_data/data/binance/ETH_USDT-1h.feather"


def _eth_binance(db: Path) -> tuple:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            "SELECT count(*), sum(hash(close)), count(DISTINCT source) FROM prices "
            "WHERE asset = 'ETH' AND venue = 'binance' AND bar_seconds = 3600"
        ).fetchone()
    finally:
        con.close()


def test_user_bars_leave_the_real_binance_eth_bars_alone(tmp_path, mirror_dir, capsys):
    db = tmp_path / "w.duckdb"
    placeholder(db, "W")
    placeholder(tmp_path, "TMP")
    assert main(["ingest", "--db", str(db), "--source", REAL_ETH]) == 0
    real = _eth_binance(db)
    assert real[0] > 0
    con = duckdb.connect(str(db), read_only=True)
    first_ts = (
        con.execute(
            "SELECT min(ts) FROM prices "
            "WHERE asset = 'ETH' AND venue = 'binance' AND bar_seconds = 3600"
        )
        .fetchone()[0]
        .astimezone(UTC)
    )
    con.close()
    bars = tmp_path / "five.csv"
    rows = [
        f"{(first_ts + timedelta(hours=i)).strftime('%Y-%m-%dT%H:%M:%SZ')},101,102,100,101,1"
        for i in range(5)
    ]
    bars.write_text("ts,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    placeholder(bars, "F")
    argv = ["ingest-prices", "--db", str(db), "--file", str(bars), "--asset", "ETH"]
    capsys.readouterr()
    assert main([*argv, "--venue", "binance"]) == 0
    out = capsys.readouterr().out
    record(
        "5 user bars as ETH/binance on the real Binance ETH hourly bars",
        "cascade ingest-prices --db W --file F --asset ETH --venue binance",
        0,
        out.strip().splitlines()[-1],
    )
    assert _eth_binance(db) == real  # the registry's bars in `prices` are untouched
    assert main([*argv, "--venue", "binance", "--override"]) == 0
    overridden = _eth_binance(db)
    assert overridden[0] == real[0] and overridden[1] != real[1] and overridden[2] == 2
