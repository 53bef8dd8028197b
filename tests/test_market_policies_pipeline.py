"""Integration tier: `cascade attribute --policies` on a fresh `cascade run` warehouse."""

from __future__ import annotations

import shutil

import duckdb
import polars as pl
import pytest

from pipelines.attribution.policy_stress import STRESS_PATHS
from pipelines.cli.main import main

pytestmark = [pytest.mark.integration, pytest.mark.slow]

W4 = "2022-06-13-celsius-3ac"
POLICIES = [
    "status_quo", "circuit_breaker", "staged", "insurance_fund", "forecast_mm:model",
    "forecast_mm:constant", "forecast_mm:lagged", "forecast_mm:shuffled", "forecast_mm:oracle",
]  # fmt: skip


def _rows(db, sql: str, params: list | None = None) -> pl.DataFrame:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.sql(sql, params=params or []).pl()
    finally:
        con.close()


@pytest.fixture(scope="module")
def run_db(tmp_path_factory, ingested_db, prefect_harness):
    """A warehouse after `cascade run` (ingest, ETH garch forecasts, one backtest, report) on W4."""
    work = tmp_path_factory.mktemp("policies")
    db = work / "cascade.duckdb"
    shutil.copy(ingested_db, db)
    argv = [
        "run", "--db", str(db), "--event", "W4", "--policy", "instant",
        "--forecast-model", "garch", "--stress-paths", "0", "--no-progress",
        "--report-dir", str(work / "reports"),
    ]  # fmt: skip
    assert main(argv) == 0
    return db


def _attribute(db, capsys) -> str:
    argv = ["attribute", "--db", str(db), "--events", "W4", "--assets", "ETH", "--no-prefect"]
    assert main([*argv, "--policies"]) == 0
    return capsys.readouterr().out


def test_attribute_with_policies_from_a_fresh_run(run_db, capsys, tmp_path):
    out = _attribute(run_db, capsys)
    assert "forecast_mm:oracle" in out and "maker_replayed_usd" in out
    run_id = _rows(run_db, "SELECT run_id FROM market_runs")["run_id"][0]
    res = _rows(
        run_db,
        "SELECT * FROM market_policy_results WHERE run_id = ? ORDER BY impact_y, seq",
        [run_id],
    )
    assert res["policy"].to_list() == POLICIES * 2  # the forecasts of the run drive the margin
    assert res["impact_y"].unique().sort().to_list() == [1.0, 6.0]
    sq = res.filter(pl.col("policy") == "status_quo")
    assert (sq["avoided_liq_usd"] == 0).all() and (sq["deferred_usd"] == 0).all()
    # W4 ETH is inside the Maker ETH-B history: the vault book is replayed, not copied
    assert sq["defi_book"].str.starts_with("maker-ethb endogenous").all()
    assert (sq["defi_liq_usd"] > 0).all() and (sq["defi_observed_usd"] > 0).all()
    fund = res.filter(pl.col("policy") == "insurance_fund")
    assert (fund["fund_absorbed_usd"] > 0).all() and (fund["fund_unwound_usd"] > 0).all()
    # the breaker's and stages' deferred positions are liquidated later, not dropped
    assert (res["deferred_usd"] >= 0).all() and (res["liquidated_usd"] > 0).all()
    # the status quo at the attribution's Y is the attribution's replay (same book, path, flow
    # except the Maker book, which the attribution takes as observed flow)
    att = _rows(run_db, "SELECT * FROM cascade_attribution WHERE run_id = ?", [run_id])
    assert sq.filter(pl.col("impact_y") == 1.0)["fundamental_drawdown"][0] == pytest.approx(
        att["fundamental_drawdown"][0], rel=1e-12
    )
    paths = _rows(run_db, "SELECT * FROM market_policy_paths WHERE run_id = ?", [run_id])
    assert paths.height == 2 * len(POLICIES) * 24
    # intervals over stress paths: every policy after the status quo, both Y, three figures;
    # the policy table of `--policies` shows them
    iv_sql = (
        "SELECT * EXCLUDE (run_id) FROM market_policy_intervals WHERE run_id = ? "
        "ORDER BY impact_y, policy, versus, metric"
    )
    iv = _rows(run_db, iv_sql, [run_id])
    # (the forecast margin also against each of its 4 controls)
    assert iv.height == 2 * (len(POLICIES) - 1 + 4) * 3
    assert (iv["n_paths"] == STRESS_PATHS).all() and (iv["p5"] <= iv["p50"]).all()
    assert (iv["p50"] <= iv["p95"]).all()
    assert (~iv["excludes_zero"] | (iv["p5"] > 0) | (iv["p95"] < 0)).all()
    real = res.filter(pl.col("policy") == "circuit_breaker", pl.col("impact_y") == 1.0)
    cb = iv.filter(
        pl.col("policy") == "circuit_breaker",
        pl.col("impact_y") == 1.0,
        pl.col("metric") == "avoided_liq_usd",
        pl.col("versus") == "status_quo",
    )
    assert cb["real"][0] == real["avoided_liq_usd"][0]
    assert "excludes_zero" in out and "p95" in out
    # same warehouse, same config: byte-identical results (stress intervals: seeded)
    first = res.drop("run_id").write_csv()
    _attribute(run_db, capsys)
    again = _rows(
        run_db,
        "SELECT * FROM market_policy_results WHERE run_id = ? ORDER BY impact_y, seq",
        [run_id],
    )
    assert again.drop("run_id").write_csv() == first
    assert _rows(run_db, iv_sql, [run_id]).write_csv() == iv.write_csv()
    # the report's attribution page names the run
    out_dir = tmp_path / "results"
    assert main(["report", "--db", str(run_db), "--markdown", str(out_dir)]) == 0
    page = (out_dir / "attribution.md").read_text()
    assert f"Attribution run `{run_id}`" in page
    assert "## Impact check" in page and "forecast_mm:lagged" in page
    assert "## Liquidation model check" in page and "## Fitted books" in page
    assert "Forecast-driven margin at Y = 1" in page  # the generated reading
    # the HTML report shows the same model check, reading and intervals
    html_dir = tmp_path / "html"
    assert main(["report", "--db", str(run_db), "--out", str(html_dir), "--force"]) == 0
    index = (html_dir / "index.html").read_text()
    assert "Liquidation model check" in index and "Intervals over stress paths" in index
    assert "Forecast-driven margin at Y = 1" in index
    plots = tmp_path / "plots"
    argv = ["attribute", "--db", str(run_db), "--events", "W4", "--assets", "ETH"]
    assert main([*argv, "--no-prefect", "--plots", str(plots)]) == 0
    assert (plots / f"policies-{W4}.png").stat().st_size > 10_000


def test_a_bad_forecast_is_a_clear_error_and_nothing_is_written(run_db, tmp_path, capsys):
    db = tmp_path / "bad.duckdb"
    shutil.copy(run_db, db)
    con = duckdb.connect(str(db))
    con.execute("DELETE FROM market_runs")
    for table in ("market_policy_results", "cascade_attribution", "market_policy_intervals"):
        con.execute(f"DELETE FROM {table}")
    con.execute(
        "UPDATE forecasts SET sigma = -1 WHERE asset = 'ETH' AND model = 'garch' "
        "AND horizon_hours = 24 AND origin_ts = '2022-06-13 05:00:00+00'"
    )
    con.close()
    argv = ["attribute", "--db", str(db), "--events", "W4", "--assets", "ETH", "--no-prefect"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "forecasts: asset ETH, event 2022-06-13-celsius-3ac, model garch 24 h" in err
    assert "2022-06-13 05:00:00" in err
    counts = _rows(
        db,
        "SELECT (SELECT count(*) FROM market_policy_results) AS p, "
        "(SELECT count(*) FROM cascade_attribution) AS a, "
        "(SELECT count(*) FROM market_policy_intervals) AS i",
    )
    assert counts.row(0) == (0, 0, 0)
    # a negative number of stress paths is refused before anything runs
    assert main([*argv, "--stress-paths", "-1"]) == 2
    assert "--stress-paths -1 must be >= 0" in capsys.readouterr().err
