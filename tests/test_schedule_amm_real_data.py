"""Issue #15 on real data: ``amm_bands`` and ``schedule`` on the real books, the theory page."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipelines.cli.main import main
from pipelines.warehouse.connection import connect

pytestmark = pytest.mark.integration  # builds the warehouse from the real-data mirror

W4 = "2022-06-13-celsius-3ac"


@pytest.fixture()
def db_copy(ingested_db: Path, tmp_path: Path) -> Path:
    """A writable copy of the session warehouse."""
    target = tmp_path / "copy.duckdb"
    shutil.copy(ingested_db, target)
    return target


@pytest.mark.parametrize("book", ["maker-ethb", "aave-steth"])
def test_amm_bands_runs_on_the_real_books(db_copy: Path, capsys, book: str) -> None:
    args = ["backtest", "--db", str(db_copy), "--event", "W4", "--book", book]
    assert main([*args, "--policy", "amm_bands", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["event_id"] == W4 and row["book"] == book and row["policy"] == "amm_bands"
    # soft liquidation happened: arbitrageurs sold collateral, borrowers paid their edge
    assert row["sold_usd"] > 0 and row["borrower_loss_usd"] > 0
    assert row["liquidated_usd"] > 0 and row["total_loss_usd"] >= row["bad_debt_usd"] >= 0
    # the same crash under instant liquidation, like for like
    assert main([*args, "--policy", "instant", "--json"]) == 0
    inst = json.loads(capsys.readouterr().out)
    assert inst["scenario_id"] == row["scenario_id"]
    # bands sell gradually: never more borrower loss than seizing with the book's bonus at once
    assert row["borrower_loss_usd"] < inst["borrower_loss_usd"]
    con = connect(db_copy, read_only=True)
    try:
        stored = con.execute(
            "SELECT count(*) FROM backtest_runs WHERE run_id = ?", [row["run_id"]]
        ).fetchall()[0][0]
    finally:
        con.close()
    assert stored == 1


def test_schedule_runs_on_the_real_book_with_the_run_impact(db_copy: Path, capsys) -> None:
    args = ["backtest", "--db", str(db_copy), "--event", "W4", "--book", "aave-steth"]
    assert main([*args, "--policy", "schedule", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["policy"] == "schedule" and row["liquidated_usd"] > 0
    con = connect(db_copy, read_only=True)
    try:
        params = con.execute(
            "SELECT config FROM backtest_runs WHERE run_id = ?", [row["run_id"]]
        ).fetchall()
    finally:
        con.close()
    policy = json.loads(params[0][0])["policy"]
    impact = json.loads(params[0][0])["impact"]
    # the trajectory's cost model is the run's calibrated square-root impact
    assert policy["impact_model"] == "sqrt" and impact["model"] == "sqrt"
    assert policy["sigma_day"] == impact["sigma_day"] and policy["adv_usd"] == impact["adv_usd"]


def test_optimize_compares_the_searched_rates_with_the_theory(db_copy: Path, tmp_path: Path):
    page = tmp_path / "optimize-schedule.md"
    argv = ["optimize", "--db", str(db_copy), "--events", "W1,W6", "--trials", "6"]
    argv += ["--population", "3", "--knees", "1", "--policy", "batch,schedule,amm_bands"]
    assert main([*argv, "--markdown", str(page)]) == 0
    text = page.read_text()
    assert "## Searched rate vs the Almgren–Chriss theory" in text
    assert "--markdown docs/optimize-schedule.md" in text  # the command that regenerates it
    section = text.split("## Searched rate vs the Almgren–Chriss theory")[1]
    rows = [line for line in section.splitlines() if line.startswith("| 20")]
    assert len(rows) == 2  # one per event
    con = connect(db_copy, read_only=True)
    try:
        fams = {
            r[0]
            for r in con.execute(
                "SELECT DISTINCT policy FROM policy_frontier WHERE trial >= 0"
            ).fetchall()
        }
    finally:
        con.close()
    assert {"batch", "schedule", "amm_bands"} <= fams
