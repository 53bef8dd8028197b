"""``cascade keepers``: the Black Thursday flip replay on the real warehouse (integration)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipelines.cli.main import main
from pipelines.warehouse.connection import connect

pytestmark = pytest.mark.integration  # needs the real-data mirror


@pytest.fixture(scope="module")
def db_copy(ingested_db: Path, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("keepers") / "cascade.duckdb"
    shutil.copy(ingested_db, path)
    return path


def test_black_thursday_replay_reports_zero_bids_and_deficit(db_copy: Path, capsys) -> None:
    assert main(["keepers", "--db", str(db_copy), "--event", "W1", "--seeds", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["event_id"] == "2020-03-12-black-thursday"
    assert out["published"] == {"zero_bid_share": pytest.approx(0.36), "deficit_dai": 5.67e6}
    (row,) = out["replays"]
    assert row["variant"] == "base" and row["seed"] == 0
    # the crash bites a large part of the book; every auction ends with a winner
    assert row["vaults_bitten"] > 100
    assert row["settled"] == row["auctions"] > 1000
    # congestion leaves some opening 0-DAI bids unanswered, but not all of them
    assert 0.02 < row["zero_bid_share"] < 0.9
    assert row["deficit_dai"] > 0
    assert row["deficit_dai"] == pytest.approx(row["debt_liquidated_dai"] - row["dai_raised"])
    con = connect(db_copy, read_only=True)
    try:
        stored = con.execute(
            "SELECT count(*), any_value(zero_bid_share) FROM keeper_replays WHERE run_id = ?",
            [out["run_id"]],
        ).fetchone()
        ref = con.execute(
            "SELECT ref_deficit_dai, ref_zero_bid_collateral_usd FROM keeper_runs WHERE run_id = ?",
            [out["run_id"]],
        ).fetchone()
    finally:
        con.close()
    assert stored == (1, row["zero_bid_share"])
    assert ref == (5.67e6, 8.32e6)
    # same warehouse, same flags: same run id and byte-identical figures
    assert main(["keepers", "--db", str(db_copy), "--event", "W1", "--seeds", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == out


def test_event_without_gas_series_is_refused(ingested_db: Path, tmp_path: Path, capsys) -> None:
    path = tmp_path / "cascade.duckdb"
    shutil.copy(ingested_db, path)
    before = path.read_bytes()
    assert main(["keepers", "--db", str(path), "--event", "W3"]) == 2
    err = capsys.readouterr().err
    assert "gas_prices" in err and "2022-05-07-luna-ust" in err
    assert len(err.strip().splitlines()) == 1
    assert path.read_bytes() == before  # refused input leaves the warehouse as it was
