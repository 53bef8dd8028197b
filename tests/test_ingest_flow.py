"""End-to-end ingest on the real mirror: the Prefect flow, the warehouse, the CLI."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import duckdb
import pytest

from pipelines.catalog.registry import load_registry
from pipelines.cli.main import main
from pipelines.warehouse.connection import source_tables

pytestmark = pytest.mark.integration  # needs the real-data mirror


def fingerprint(db_path) -> dict:
    """Row count and an order-independent content hash of every raw table."""
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        out = {}
        for table in source_tables(con):
            out[table] = con.execute(f"SELECT count(*), sum(hash(t)) FROM {table} t").fetchone()
        out["ingest_log"] = con.execute(
            "SELECT list(source ORDER BY source), list(sha256 ORDER BY source), "
            "list(rows ORDER BY source) FROM ingest_log"
        ).fetchone()
        return out
    finally:
        con.close()


def query(db_path, sql):
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_every_registered_source_is_loaded(ingested_db):
    loaded = dict(query(ingested_db, "SELECT source, rows FROM ingest_log"))
    names = {e.name for e in load_registry()}
    assert set(loaded) == names
    assert all(rows > 0 for rows in loaded.values()), {k: v for k, v in loaded.items() if not v}


def test_btc_and_eth_hourly_or_finer_in_all_seven_windows(ingested_db):
    from pipelines.warehouse.data_report import best_resolution, coverage

    con = duckdb.connect(str(ingested_db), read_only=True)
    try:
        best = best_resolution(coverage(con))
    finally:
        con.close()
    for asset in ("BTC", "ETH"):
        rows = best.filter(best["asset"] == asset)
        assert rows.height == 7, rows
        assert (rows["finest_complete_bar_seconds"] <= 3600).all(), rows


def test_aave_v2_collateral_liquidated_on_2021_05_19(ingested_db):
    (total,) = query(
        ingested_db,
        "SELECT sum(collateral_usd) FROM defi_liquidations WHERE protocol LIKE '%aave%' "
        "AND ts >= '2021-05-19' AND ts < '2021-05-20'",
    )[0]
    assert 160e6 < total < 176e6  # data README: ≈ $168M (published: $170M)


def test_maker_ethb_has_seven_liquidations_on_2022_06_13(ingested_db):
    (n,) = query(
        ingested_db,
        "SELECT count(*) FROM defi_liquidations WHERE protocol LIKE '%maker%' "
        "AND ts >= '2022-06-13' AND ts < '2022-06-14'",
    )[0]
    assert n == 7


def test_prices_view_is_unique_on_its_key(ingested_db):
    dupes = query(
        ingested_db,
        "SELECT count(*) FROM (SELECT asset, market, venue, bar_seconds, ts FROM prices "
        "GROUP BY ALL HAVING count(*) > 1)",
    )[0][0]
    assert dupes == 0


def test_rerun_loads_nothing_and_keeps_identical_rows(ingested_db, tmp_path, prefect_harness):
    from pipelines.ingest.flow import ingest_flow

    db = tmp_path / "copy.duckdb"
    shutil.copy(ingested_db, db)
    before = fingerprint(db)
    summary = ingest_flow(db_path=str(db))
    assert summary.loaded == {}
    assert len(summary.skipped) == len(load_registry())
    assert fingerprint(db) == before


def test_cli_rerun_short_circuits_without_prefect(ingested_db, tmp_path, capsys):
    db = tmp_path / "copy.duckdb"
    shutil.copy(ingested_db, db)
    assert main(["ingest", "--db", str(db)]) == 0
    assert "unchanged" in capsys.readouterr().out


def test_cli_sql_is_read_only_and_formats(ingested_db, capsys):
    assert (
        main(
            [
                "sql",
                "--db",
                str(ingested_db),
                "--format",
                "json",
                "SELECT event_id FROM events ORDER BY start_ts LIMIT 2",
            ]
        )
        == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["event_id"] == "2020-03-12-black-thursday"
    assert main(["sql", "--db", str(ingested_db), "DELETE FROM events"]) == 2
    assert "read-only" in capsys.readouterr().err.lower()
    assert query(ingested_db, "SELECT count(*) FROM events")[0][0] == 7


def test_cli_data_report_names_windows_and_dropped_rows(ingested_db, capsys):
    assert main(["data-report", "--db", str(ingested_db)]) == 0
    out = capsys.readouterr().out
    assert "2025-10-10-tariff-crash" in out and "BTC" in out
    assert "dropped" in out


@pytest.mark.slow
def test_sigkill_mid_ingest_then_rerun_equals_clean_run(ingested_db, tmp_path, mirror_dir):
    db = tmp_path / "killed.duckdb"
    env = dict(
        os.environ,
        CASCADE_DATA_MIRROR=str(mirror_dir),
        PREFECT_LOGGING_LEVEL="INFO",
        PREFECT_HOME=str(tmp_path / "prefect"),
    )
    env.pop("PREFECT_API_URL", None)
    cmd = [sys.executable, "-m", "pipelines.cli", "--verbose", "ingest", "--db", str(db)]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 240
    seen = ""
    for line in proc.stdout:
        seen += line
        if "[8/" in line or time.monotonic() > deadline:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert "[8/" in seen, seen[-2000:]
    loaded_before_rerun = query(db, "SELECT count(*) FROM ingest_log")[0][0]
    assert 0 < loaded_before_rerun < len(load_registry())
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    clean, killed = fingerprint(ingested_db), fingerprint(db)
    clean.pop("ingest_log"), killed.pop("ingest_log")
    assert killed == clean
