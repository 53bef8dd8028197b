"""Scheduling: ``serve_pipeline`` refuses a temporary server; on a real one the schedule runs."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from pipelines.orchestration.prefect_server import (
    free_port,
    running_prefect_server,
    stop_process_tree,
)
from pipelines.orchestration.serve import (
    DEFAULT_CRON,
    DEFAULT_FLOW_REF,
    SchedulingUnavailableError,
    add_serve_arguments,
    run_serve,
    serve_pipeline,
)

pytestmark = pytest.mark.integration  # needs the real-data mirror

SOURCE = "lukmol__gamlss-btc-VaR/data/funding_rates.csv"
DEPLOYMENT = "cascade-schedule-test"
RUN_TIMEOUT = 120.0  # seconds from `serve` start to a Completed scheduled run

SERVE_SCRIPT = textwrap.dedent(
    """
    import sys
    from pipelines.orchestration.serve import serve_pipeline

    serve_pipeline(
        cron=None,
        interval_seconds=5,
        db_path=sys.argv[1],
        flow_ref="pipelines.ingest.flow:ingest_flow",
        parameters={"sources": [sys.argv[2]]},
        name=sys.argv[3],
    )
    """
)


# --- fast: no real server, no schedule -----------------------------------------------------------


@pytest.fixture
def no_api_url(monkeypatch):
    """``PREFECT_API_URL`` unset, even if another test's Prefect harness set it in-process."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        yield


def test_serve_without_api_url_explains_how_to_start_a_server(no_api_url):
    with pytest.raises(SchedulingUnavailableError) as info:
        serve_pipeline(cron="0 2 * * *", interval_seconds=None, db_path="x.duckdb")
    message = str(info.value)
    assert "PREFECT_API_URL is not set" in message
    assert "A temporary Prefect server cannot schedule" in message
    assert "prefect server start --host 127.0.0.1" in message
    assert "export PREFECT_API_URL=http://127.0.0.1:4200/api" in message


def test_serve_with_api_url_pointing_at_no_server_fails_fast():
    from prefect.settings import PREFECT_API_URL, temporary_settings

    url = f"http://127.0.0.1:{free_port()}/api"
    with temporary_settings({PREFECT_API_URL: url}):
        with pytest.raises(SchedulingUnavailableError, match="no Prefect server answers"):
            serve_pipeline(cron=None, interval_seconds=60, db_path=None)


@pytest.mark.parametrize(("cron", "interval"), [(None, None), ("0 2 * * *", 60), (None, 0)])
def test_serve_needs_exactly_one_positive_schedule(no_api_url, cron, interval):
    with pytest.raises(ValueError, match="cron|interval"):
        serve_pipeline(cron=cron, interval_seconds=interval, db_path=None)


def test_cli_arguments_and_error_path(no_api_url):
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", type=Path, default=Path("cascade.duckdb"))  # like cascade's
    add_serve_arguments(parser)
    args = parser.parse_args(["--interval", "30", "--db", "w.duckdb"])
    assert (args.cron, args.interval, args.db) == (None, 30, Path("w.duckdb"))
    assert (args.flow, args.name) == (DEFAULT_FLOW_REF, "cascade-daily")
    assert parser.parse_args([]).cron is None  # run_serve then uses DEFAULT_CRON
    for bad in (["--cron", DEFAULT_CRON, "--interval", "5"], ["--interval", "0"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)
    with pytest.raises(SchedulingUnavailableError, match="temporary Prefect server"):
        run_serve(parser.parse_args([]))
    standalone = argparse.ArgumentParser()
    add_serve_arguments(standalone)  # adds its own --db when the parser has none
    assert standalone.parse_args(["--db", "a.duckdb"]).db == Path("a.duckdb")


def test_load_flow_resolves_the_pipeline_or_its_fallback():
    from prefect import Flow

    from pipelines.errors import CascadeError
    from pipelines.orchestration.serve import load_flow

    assert isinstance(load_flow(DEFAULT_FLOW_REF), Flow)
    assert load_flow("pipelines.ingest.flow:ingest_flow").name == "ingest"
    for bad in ("pipelines.ingest.flow", "pipelines.ingest.flow:plan_ingest"):
        with pytest.raises(CascadeError):
            load_flow(bad)


# --- slow: real server, real schedule, real flow run ---------------------------------------------


def _tail(path: Path, lines: int = 60) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def _wait_for_scheduled_completion(api_url: str, serve: subprocess.Popen, log: Path):
    """Poll the server until an auto-scheduled run of the deployment is Completed."""
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.exceptions import ObjectNotFound

    def runs_in(client, deployment_id, *types):
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=list(types))),
            ),
            limit=20,
        )

    deadline = time.monotonic() + RUN_TIMEOUT
    bad: dict[str, str] = {}
    with SyncPrefectClient(api_url) as client:
        deployment = None
        while time.monotonic() < deadline:
            if serve.poll() is not None:
                pytest.fail(f"serve exited with {serve.returncode}:\n{_tail(log)}")
            if deployment is None:
                try:
                    deployment = client.read_deployment_by_name(f"ingest/{DEPLOYMENT}")
                except ObjectNotFound:
                    time.sleep(1)
                    continue
                assert deployment.schedules and deployment.schedules[0].active
            for run in runs_in(client, deployment.id, StateType.COMPLETED):
                if run.auto_scheduled:
                    return deployment, run
            for run in runs_in(client, deployment.id, StateType.FAILED, StateType.CRASHED):
                bad[run.name] = f"{run.state_name}: {run.state.message if run.state else ''}"
            time.sleep(1)
    pytest.fail(
        f"no scheduled run Completed within {RUN_TIMEOUT:.0f} s; failed runs: {bad}\n"
        f"serve log:\n{_tail(log)}"
    )


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_served_interval_schedule_completes_a_run_on_a_real_server(tmp_path, mirror_dir):
    db = tmp_path / "scheduled.duckdb"
    serve_log = tmp_path / "serve.log"
    # A few runs ahead are enough (the default is up to 100 future runs per deployment).
    scheduler = {
        "PREFECT_SERVER_SERVICES_SCHEDULER_MIN_RUNS": "2",
        "PREFECT_SERVER_SERVICES_SCHEDULER_MAX_RUNS": "5",
    }
    with running_prefect_server(tmp_path / "server-home", extra_env=scheduler) as api_url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(
            PREFECT_API_URL=api_url,
            PREFECT_HOME=str(tmp_path / "serve-home"),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            DO_NOT_TRACK="1",
            PREFECT_RUNNER_POLL_FREQUENCY="2",
            PREFECT_LOGGING_LEVEL="INFO",
            CASCADE_DATA_MIRROR=str(mirror_dir),
        )
        with open(serve_log, "wb") as out:
            serve = subprocess.Popen(
                [sys.executable, "-c", SERVE_SCRIPT, str(db), SOURCE, DEPLOYMENT],
                env=env,
                cwd=tmp_path,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            deployment, run = _wait_for_scheduled_completion(api_url, serve, serve_log)
        finally:
            stop_process_tree(serve, grace=20)

    assert run.auto_scheduled and run.idempotency_key.startswith("scheduled ")
    assert run.parameters["db_path"] == str(db.resolve())
    assert run.parameters["sources"] == [SOURCE]
    assert deployment.entrypoint == "pipelines.ingest.flow.ingest_flow"
    con = duckdb.connect(str(db), read_only=True)
    try:
        loaded = con.sql("SELECT source, rows FROM ingest_log").fetchall()
    finally:
        con.close()
    assert [name for name, _ in loaded] == [SOURCE]
    assert loaded[0][1] > 0
