"""The whole ``cascade-pipeline`` flow on the real data: coverage, caching, report, export."""

import hashlib
import re
import shutil
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.backtests.policy import DYNAMIC_POLICIES, SWEEP_POLICIES
from pipelines.catalog.registry import load_events
from pipelines.cli.main import main
from pipelines.orchestration.plan import DEFAULT_FORECAST_MODELS, plan_pipeline

#: Stress paths per event in these tests (the default, 200, is measured in bench/).
STRESS = 20

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def query(db: Path, sql: str, params=None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def first_run(ingested_db, tmp_path_factory, prefect_harness):
    """One full pipeline run (default sweep) on a copy of the session warehouse."""
    from pipelines.orchestration.pipeline import cascade_pipeline

    work = tmp_path_factory.mktemp("pipeline")
    db = work / "cascade.duckdb"
    shutil.copy(ingested_db, db)
    start = time.perf_counter()
    summary = cascade_pipeline(
        db_path=str(db),
        report_dir=str(work / "reports"),
        export_dir=str(work / "export"),
        stress_paths=STRESS,
    )
    return db, work, summary, time.perf_counter() - start


def test_first_run_computes_every_stage(first_run):
    _db, _work, summary, _seconds = first_run
    assert summary.sources_loaded == 0  # the session warehouse is fully ingested already
    assert summary.forecast_computed
    assert summary.runs_computed == len(summary.run_ids) > 0
    assert summary.report_written
    assert set(summary.seconds) == {"ingest", "forecast", "backtest", "report", "export"}


def test_scoreboard_covers_seven_events_and_every_policy(first_run):
    db, _work, summary, _seconds = first_run
    events = {e.event_id for e in load_events()}
    assert len(events) == 7
    rows = query(db, "SELECT event_id, policy, forecast_model FROM policy_scoreboard")
    assert {r[0] for r in rows} == events
    for event_id in events:
        combos = {(p, m) for e, p, m in rows if e == event_id}
        assert {p for p, _m in combos} == set(SWEEP_POLICIES), event_id
        for policy in DYNAMIC_POLICIES:
            models = {m for p, m in combos if p == policy}
            assert models == set(DEFAULT_FORECAST_MODELS), (event_id, policy)
    expected = len(events) * (
        len(SWEEP_POLICIES) - len(DYNAMIC_POLICIES)
        + len(DYNAMIC_POLICIES) * len(DEFAULT_FORECAST_MODELS)
    )  # fmt: skip
    assert len(rows) == expected
    n_controls = len(events) * len(DYNAMIC_POLICIES) * len(DEFAULT_FORECAST_MODELS) * 4
    assert len(set(summary.run_ids)) == expected + n_controls  # + the threshold controls


def test_avoided_cascades_compares_every_run_with_its_books_mechanism(first_run):
    db, _work, _summary, _seconds = first_run
    n, baselines, events = query(
        db,
        "SELECT count(*), count(DISTINCT baseline_run_id), count(DISTINCT event_id) "
        "FROM avoided_cascades",
    )[0]
    assert n == query(db, "SELECT count(*) FROM policy_scoreboard")[0][0]
    assert baselines == events == 7
    (baseline_nonzero,) = query(
        db,
        "SELECT count(*) FROM avoided_cascades "
        "WHERE policy = baseline_policy AND avoided_induced_usd <> 0",
    )[0]
    assert baseline_nonzero == 0


def test_report_has_index_and_every_picture(first_run):
    _db, work, _summary, _seconds = first_run
    index = work / "reports" / "index.html"
    text = index.read_text()
    images = re.findall(r'<img src="([^"]+)"', text)
    assert "img/scoreboard.png" in images
    assert sum(i.startswith("img/event_") for i in images) == 7
    assert sum(i.startswith("forecast/forecast_ETH_") for i in images) == 7
    for rel in images:
        png = work / "reports" / rel
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", rel
    assert "Avoided induced liquidation" in text


def test_export_is_readable_parquet(first_run):
    db, work, _summary, _seconds = first_run
    export = work / "export"
    board = pl.read_parquet(export / "policy_scoreboard.parquet")
    assert board.height == query(db, "SELECT count(*) FROM policy_scoreboard")[0][0]
    assert pl.read_parquet(export / "avoided_cascades.parquet").height == board.height
    for name in ("backtest_steps", "forecasts", "margin_paths", "prices", "events"):
        frame = pl.read_parquet(export / f"{name}.parquet")
        assert frame.height > 0, name
    runs = pl.read_parquet(export / "backtest_runs.parquet")
    assert runs.schema["config"] == pl.String  # JSON columns come out as text


def test_export_cli_reads_only(first_run, tmp_path, capsys):
    db, _work, _summary, _seconds = first_run
    before = sha256(db)
    out = tmp_path / "csv"
    assert (
        main(
            ["export", "--db", str(db), "--format", "csv", "--table", "policy_scoreboard", str(out)]
        )
        == 0
    )
    assert sha256(db) == before
    assert pl.read_csv(out / "policy_scoreboard.csv").height > 0
    assert "wrote 1 csv files" in capsys.readouterr().out


def test_rerun_with_nothing_changed_skips_every_stage(first_run):
    from pipelines.orchestration.pipeline import cascade_pipeline

    db, work, summary, _seconds = first_run
    report = work / "reports" / "index.html"
    report_mtime = report.stat().st_mtime_ns
    again = cascade_pipeline(
        db_path=str(db),
        report_dir=str(work / "reports"),
        export_dir=str(work / "export"),
        stress_paths=STRESS,
    )
    assert again.run_ids == summary.run_ids
    assert again.forecast_run_id == summary.forecast_run_id
    assert (again.sources_loaded, again.forecast_computed, again.runs_computed) == (0, False, 0)
    assert not again.report_written
    assert report.stat().st_mtime_ns == report_mtime


def test_cli_run_with_nothing_changed_needs_no_prefect(first_run, capsys):
    db, work, summary, _seconds = first_run
    plan = plan_pipeline(
        db, report_dir=work / "reports", export_dir=work / "export", stress_paths=STRESS
    )
    assert plan.up_to_date, plan.notes
    code = main(
        ["run", "--db", str(db), "--report-dir", str(work / "reports"), "--stress-paths", "20"]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "nothing changed" in out
    assert f"{len(summary.run_ids)} backtest runs stored" in out
    assert "avoided induced liquidation vs instant" in out
    for window in ("W1", "W7"):
        assert window in out


def test_loading_an_unrelated_asset_recomputes_nothing(first_run, tmp_path):
    """Run ids depend only on what a run reads: a new asset changes no forecast or backtest id."""
    from pipelines.orchestration.pipeline import cascade_pipeline

    db, work, summary, _seconds = first_run
    (runs_before,) = query(db, "SELECT count(*) FROM backtest_runs")[0]
    (board_before,) = query(db, "SELECT count(*) FROM policy_scoreboard")[0]
    (forecasts_before,) = query(db, "SELECT count(*) FROM forecast_runs")[0]
    bars = tmp_path / "zzz.csv"
    rows = ["ts,open,high,low,close,volume"] + [
        f"2024-01-01T{h:02d}:00:00Z,{100 + h},{101 + h},{99 + h},{100.5 + h},10" for h in range(24)
    ]
    bars.write_text("\n".join(rows) + "\n")
    assert main(["ingest-prices", "--db", str(db), "--file", str(bars), "--asset", "ZZZ"]) == 0
    again = cascade_pipeline(db_path=str(db), report_dir=str(work / "reports"), stress_paths=STRESS)
    assert again.forecast_run_id == summary.forecast_run_id
    assert (again.forecast_computed, again.runs_computed) == (False, 0)
    assert again.run_ids == summary.run_ids
    assert query(db, "SELECT count(*) FROM backtest_runs")[0][0] == runs_before
    assert query(db, "SELECT count(*) FROM forecast_runs")[0][0] == forecasts_before
    assert query(db, "SELECT count(*) FROM policy_scoreboard")[0][0] == board_before


def test_scoreboard_shows_one_current_run_per_question(first_run):
    db, _work, _summary, _seconds = first_run
    (dupes,) = query(
        db,
        "SELECT count(*) FROM (SELECT event_id, book, policy, forecast_model, impact "
        "FROM policy_scoreboard GROUP BY ALL HAVING count(*) > 1)",
    )[0]
    assert dupes == 0


def test_intervals_and_forecast_value_cover_the_scoreboard(first_run):
    db, _work, _summary, _seconds = first_run
    (n_plain,) = query(
        db, "SELECT count(*) FROM policy_scoreboard WHERE forecast_model = '-' AND default_params"
    )[0]
    rows = query(
        db,
        "SELECT count(DISTINCT run_id), min(n_paths), max(n_paths), "
        "count(*) FILTER (lo > median OR median > hi) FROM policy_intervals",
    )[0]
    assert rows == (n_plain, STRESS, STRESS, 0)
    events = {e.event_id for e in load_events()}
    combos = query(
        db,
        "SELECT DISTINCT event_id, policy, forecast_model FROM forecast_value "
        "WHERE model IS NOT NULL AND constant IS NOT NULL AND lagged IS NOT NULL "
        "AND shuffled IS NOT NULL AND oracle IS NOT NULL",
    )
    assert len(combos) == len(events) * len(DYNAMIC_POLICIES) * len(DEFAULT_FORECAST_MODELS)
    (baselines,) = query(
        db,
        "SELECT count(*) FROM avoided_cascades WHERE baseline_policy <> "
        "CASE WHEN book = 'maker-ethb' THEN 'dutch_auction' ELSE 'instant' END",
    )[0]
    assert baselines == 0
