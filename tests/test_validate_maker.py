"""``cascade validate``: Maker ETH-B replays of three real liquidation days."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from pipelines.backtests.validate_maker import format_table, trigger_path, validate_day
from pipelines.cli.main import main
from pipelines.warehouse.connection import connect

pytestmark = pytest.mark.integration  # needs the real-data mirror

REAL = {"2021-05-19": (4, 1.92e6), "2022-05-12": (7, 2.58e6), "2022-06-13": (7, 12.66e6)}


def test_validate_json(ingested_db: Path, capsys) -> None:
    assert main(["validate", "--db", str(ingested_db), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert isinstance(rows, list) and len(rows) == 3
    for row in rows:
        for key in ("event_id", "precision", "recall", "simulated_dai", "real_dai"):
            assert key in row
        assert 0.0 <= row["precision"] <= 1.0 and 0.0 <= row["recall"] <= 1.0
        n_real, dai = REAL[row["date"]]
        assert row["n_real"] == n_real
        assert row["real_dai"] == pytest.approx(dai, rel=0.01)
        assert row["n_matched"] <= min(row["n_real"], row["n_simulated"])
        assert row["trigger"] == "osm"
    assert [r["event_id"] for r in rows] == [
        "2021-05-19-china-ban-crash",
        "2022-05-07-luna-ust",
        "2022-06-13-celsius-3ac",
    ]
    # the replay finds most real liquidations (owners' intraday top-ups are not replayed, so
    # precision is lower by design)
    assert sum(r["n_matched"] for r in rows) >= 12


def test_osm_trigger_is_lagged_one_hour(ingested_db: Path) -> None:
    con = connect(ingested_db, read_only=True)
    try:
        day = datetime(2022, 6, 13, tzinfo=UTC)
        osm = trigger_path(con, day, "osm")
        spot = trigger_path(con, day, "spot")
        opens = con.execute(
            "SELECT ts, open FROM prices WHERE asset = 'ETH' AND market = 'spot' "
            "AND venue = 'binance' AND bar_seconds = 3600 AND ts >= '2022-06-12 23:00' "
            "AND ts < '2022-06-13 23:00' ORDER BY ts"
        ).fetchall()
        row = validate_day(con, "2022-06-13", trigger="spot")
    finally:
        con.close()
    assert len(osm) == 24 and osm.step_seconds == 3600
    # the step at 07:00 uses the price read at 06:00 (the bar opening then), never a later one
    assert osm.ts[7] == np.datetime64("2022-06-13T07:00", "ms")
    assert osm.price[7] == pytest.approx(opens[7][1])
    assert opens[7][0].hour == 6
    assert spot.ts[-1] <= np.datetime64("2022-06-14T00:00", "ms")
    assert row.trigger == "spot" and 0 <= row.recall <= 1
    assert "| 2022-06-13 |" in format_table([row])
