import json
import shutil

import duckdb
import polars as pl
import pytest

from pipelines.catalog.fetch import fetch
from pipelines.catalog.registry import get_event, get_source, load_events, load_registry
from pipelines.errors import SourceIntegrityError, UnknownNameError
from pipelines.ingest.adapters.base import AdapterOutput
from pipelines.ingest.load import load_source
from pipelines.warehouse.connection import connect

pytestmark = pytest.mark.integration  # needs the real-data mirror


def test_registry_covers_every_mirror_file_exactly_once(mirror_dir):
    manifest = json.loads((mirror_dir / "MANIFEST.json").read_text())
    registered = {e.file: e for e in load_registry()}
    for item in manifest["files"]:
        assert item["file"] in registered, item["file"]
        assert registered[item["file"]].sha256 == item["sha256"]
        assert registered[item["file"]].url == item["url"]
    assert "reference_figures.csv" in registered


def test_every_registered_file_verifies_against_the_mirror(mirror_dir, monkeypatch):
    monkeypatch.setenv("CASCADE_DATA_MIRROR", str(mirror_dir))
    for entry in load_registry():
        assert fetch(entry).is_file()


def test_hash_mismatch_is_an_error_naming_the_file(tmp_path, mirror_dir, monkeypatch):
    entry = get_source("lukmol__gamlss-btc-VaR/data/funding_rates.csv")
    target = tmp_path / entry.file
    target.parent.mkdir(parents=True)
    shutil.copy(mirror_dir / entry.file, target)
    with target.open("a") as handle:
        handle.write("2030-01-01,0.1,0.1\n")
    monkeypatch.setenv("CASCADE_DATA_MIRROR", str(tmp_path))
    with pytest.raises(SourceIntegrityError, match="funding_rates.csv.*sha256"):
        fetch(entry)


def test_missing_file_is_an_error_naming_the_file(tmp_path, monkeypatch):
    entry = get_source("lukmol__gamlss-btc-VaR/data/funding_rates.csv")
    monkeypatch.setenv("CASCADE_DATA_MIRROR", str(tmp_path))
    with pytest.raises(SourceIntegrityError, match="funding_rates.csv.*missing"):
        fetch(entry)


def test_events_catalog_has_the_seven_windows():
    events = load_events()
    assert [e.window for e in events] == [f"W{i}" for i in range(1, 8)]
    assert get_event("W4").event_id == "2022-06-13-celsius-3ac"
    assert get_event("2020-03-12-black-thursday").window == "W1"
    with pytest.raises(UnknownNameError, match="unknown event 'W9'"):
        get_event("W9")


def test_failed_load_leaves_database_unchanged(tmp_path):
    entry = get_source("lukmol__gamlss-btc-VaR/data/funding_rates.csv")
    con = connect(tmp_path / "w.duckdb")
    good = pl.select(
        asset=pl.lit("BTC"),
        venue=pl.lit("aggregate"),
        ts=pl.datetime(2020, 1, 1, time_zone="UTC"),
        interval_seconds=pl.lit(86400),
        rate=pl.lit(0.0001),
    )
    load_source(
        con,
        entry,
        AdapterOutput(tables={"funding": good}),
        sha256=entry.sha256,
        adapter_version="t",
    )
    before = (
        con.sql("SELECT * FROM raw_funding").fetchall(),
        con.sql("SELECT source, sha256, rows FROM ingest_log").fetchall(),
    )
    bad = good.with_columns(rate=pl.lit(None, dtype=pl.Float64))  # violates NOT NULL mid-load
    with pytest.raises(duckdb.ConstraintException):
        load_source(
            con,
            entry,
            AdapterOutput(tables={"funding": pl.concat([good, bad])}),
            sha256="different",
            adapter_version="t",
        )
    after = (
        con.sql("SELECT * FROM raw_funding").fetchall(),
        con.sql("SELECT source, sha256, rows FROM ingest_log").fetchall(),
    )
    assert after == before
