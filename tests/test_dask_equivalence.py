"""``cascade run --workers 2`` (local Dask cluster) gives exactly the serial run's results."""

import shutil

import duckdb
import pytest

from pipelines.cli.main import main
from pipelines.errors import CascadeError
from pipelines.orchestration.dask_runner import build_task_runner

pytestmark = pytest.mark.integration  # needs the real-data mirror

EVENTS = ["2021-05-19-china-ban-crash", "2025-10-10-tariff-crash"]  # a Maker and a synthetic book
POLICIES = ["instant", "dutch_auction", "dynamic_ltv"]
MODELS = ["ewma"]


def results(db) -> tuple[list, list, tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        run_ids = [
            r[0] for r in con.execute("SELECT run_id FROM backtest_runs ORDER BY run_id").fetchall()
        ]
        metrics = con.execute("SELECT * FROM backtest_metrics ORDER BY run_id").fetchall()
        steps = con.execute(
            "SELECT count(*), sum(hash(s)) FROM (SELECT * FROM backtest_steps) s"
        ).fetchall()[0]
        return run_ids, metrics, steps
    finally:
        con.close()


def run_cli(db, tmp_path, *extra) -> None:
    argv = ["run", "--db", str(db), "--report-dir", str(tmp_path / f"report-{db.stem}")]
    for event in EVENTS:
        argv += ["--event", event]
    for policy in POLICIES:
        argv += ["--policy", policy]
    for model in MODELS:
        argv += ["--forecast-model", model]
    assert main([*argv, "--no-progress", "--stress-paths", "0", *extra]) == 0


@pytest.mark.slow
def test_local_dask_cluster_matches_serial_run(ingested_db, tmp_path, prefect_harness, capsys):
    serial, dask = tmp_path / "serial.duckdb", tmp_path / "dask.duckdb"
    shutil.copy(ingested_db, serial)
    shutil.copy(ingested_db, dask)
    run_cli(serial, tmp_path)
    run_cli(dask, tmp_path, "--workers", "2")
    out = capsys.readouterr().out
    ids_s, metrics_s, steps_s = results(serial)
    ids_d, metrics_d, steps_d = results(dask)
    n_dynamic = sum(p.startswith("dynamic_ltv") for p in POLICIES)
    controls = len(EVENTS) * n_dynamic * len(MODELS) * 4  # the threshold controls
    assert len(ids_s) == len(EVENTS) * len(POLICIES) * len(MODELS) + controls
    assert ids_d == ids_s
    assert metrics_d == metrics_s  # every column of every row, floats bit for bit
    assert steps_d == steps_s
    assert out.count(f"backtest runs ({len(ids_s)} computed now)") == 2


def test_runner_choice_is_validated():
    with pytest.raises(CascadeError, match="not both"):
        build_task_runner(workers=2, dask_address="tcp://127.0.0.1:8786")
    with pytest.raises(CascadeError, match="at least 1"):
        build_task_runner(workers=0)
    with pytest.raises(CascadeError, match="tcp://"):
        build_task_runner(dask_address="127.0.0.1:8786")
    assert type(build_task_runner()).__name__ == "ThreadPoolTaskRunner"
    assert type(build_task_runner(workers=2)).__name__ == "DaskTaskRunner"
