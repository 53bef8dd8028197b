"""Prefect flow ``cascade-pipeline``: ingest → forecast → backtest sweep → report (→ export).

Every stage is cached by the hash of its inputs, so a re-run with nothing changed does almost
nothing:

* **ingest** — :func:`pipelines.ingest.plan.plan_ingest` (sha256 + adapter version per source)
  decides; the ``ingest`` sub-flow runs only when a source changed;
* **forecast** — the run id is the hash of the forecast config (which includes the data
  version); the ``forecast`` sub-flow runs only when it is not in ``forecast_runs``;
* **backtest sweep** — the sub-flow ``backtest`` (:func:`~pipelines.backtests.flow.backtest_flow`)
  computes only the runs whose id (hash of
  book, path, impact and policy) is not in ``backtest_runs``. Its tasks run on threads, on a
  temporary local Dask cluster (``workers``) or on an existing one (``dask_address``); they
  only compute, and the flow writes every result on its single DuckDB connection;
* **report** / **export** — redrawn only when the warehouse fingerprint (run ids, loaded
  sources, drawing code) differs from the one in their ``manifest.json``.
"""

from __future__ import annotations

import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from pipelines.backtests.stress import STRESS_PATHS
from pipelines.orchestration.dask_runner import (
    api_url_for_workers,
    build_task_runner,
    describe_runner,
    quiet_distributed_logs,
)
from pipelines.orchestration.plan import (
    DEFAULT_FORECAST_ASSETS,
    DEFAULT_FORECAST_MODELS,
    FORECAST_SETTINGS,
    default_report_dir,
    forecast_run_id,
    resolve_db,
)
from pipelines.warehouse.connection import connect

__all__ = ["PipelineSummary", "cascade_pipeline"]


@dataclass
class PipelineSummary:
    """What one pipeline run did.

    Attributes
    ----------
    db_path : str
        The warehouse.
    sources_loaded : int
        Sources (re)loaded by the ingest stage (0 = skipped).
    forecast_run_id : str
        The forecast run behind the dynamic-LTV policies.
    forecast_computed : bool
        False when the run was already stored.
    run_ids : list of str
        Every backtest run id of the sweep, in sweep order.
    runs_computed : int
        How many of them were computed now.
    report : str or None
        ``index.html`` of the report.
    report_written : bool
        False when the report was already up to date.
    export_files : list of str
        Files of the export (empty when not asked for).
    seconds : dict
        Wall time per stage.
    """

    db_path: str
    sources_loaded: int = 0
    forecast_run_id: str = ""
    forecast_computed: bool = False
    run_ids: list[str] = field(default_factory=list)
    runs_computed: int = 0
    report: str | None = None
    report_written: bool = False
    export_files: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def _stage(logger, message: str, *args: object) -> None:  # noqa: ANN001 - Prefect logger
    """One line per stage: to Prefect's log (the UI) and to stderr (the terminal).

    The CLI keeps Prefect's own loggers at WARNING unless ``--verbose``, so the stderr line is
    what a user sees; under ``--verbose`` Prefect's INFO line carries it instead.
    """
    logger.info(message, *args)
    if not logger.isEnabledFor(20):  # INFO hidden: write it ourselves (not print: with
        # log_prints=True Prefect turns print() into an INFO log, hidden just the same)
        sys.stderr.write((message % args if args else message) + "\n")
        sys.stderr.flush()


# --- stages -------------------------------------------------------------------------------------


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def sources_to_load(db_path: str) -> int:
    """Registry sources whose sha256 or adapter changed (files are re-hashed: I/O, retried)."""
    from pipelines.ingest.plan import plan_ingest

    return len(plan_ingest(db_path).todo)


@task(cache_policy=NO_CACHE)
def stored_forecast(
    db_path: str, events: list[str] | None, assets: list[str], models: list[str]
) -> tuple[str, bool]:
    """The forecast stage's run id and whether ``forecast_runs`` already holds it."""
    from pipelines.warehouse.forecast_store import run_exists

    con = connect(db_path, read_only=True)
    try:
        run_id = forecast_run_id(con, events=events, assets=assets, models=models)
        return run_id, run_exists(con, run_id)
    finally:
        con.close()


@task(retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def report_task(db_path: str, report_dir: str) -> tuple[str, bool]:
    """Draw the report unless its manifest matches the warehouse; ``(index.html, written)``."""
    from pipelines.reporting.report import build_report

    result = build_report(db_path, report_dir)
    return str(result.index), result.written


@task(retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def export_task(db_path: str, export_dir: str) -> list[str]:
    """Export every public table/view as Parquet unless the export is already current."""
    from pipelines.warehouse.export import export_warehouse

    return [str(p) for p in export_warehouse(db_path, export_dir, force=False)]


# --- the pipeline -------------------------------------------------------------------------------


@flow(name="cascade-pipeline", log_prints=True)
def cascade_pipeline(
    db_path: str | None = None,
    events: list[str] | None = None,
    policies: list[str] | None = None,
    forecast_models: list[str] = list(DEFAULT_FORECAST_MODELS),  # noqa: B006 - never mutated
    forecast_assets: list[str] = list(DEFAULT_FORECAST_ASSETS),  # noqa: B006
    impacts: list[str] | None = None,
    workers: int | None = None,
    dask_address: str | None = None,
    report_dir: str | None = None,
    export_dir: str | None = None,
    progress: bool = False,
    stress_paths: int = STRESS_PATHS,
) -> PipelineSummary:
    """Ingest the real data, forecast volatility, sweep the backtests, draw the report.

    Parameters
    ----------
    db_path : str, optional
        Warehouse (default ``$CASCADE_DB`` or ``./cascade.duckdb``).
    events : list of str, optional
        Crash events (ids or window labels); default all 7.
    policies : list of str, optional
        Default all 8 policies.
    forecast_models : list of str
        Forecast models driving the dynamic-LTV policies (default garch, har, ewma).
    forecast_assets : list of str
        Assets forecast (default ETH, the collateral of every default book).
    impacts : list of str, optional
        Impact models; default ``["sqrt"]`` (calibrated per event).
    workers : int, optional
        Run the sweep on a temporary local Dask cluster of this many processes.
    dask_address : str, optional
        Run the sweep on the Dask cluster at this address (``tcp://host:8786``).
    report_dir : str, optional
        Report directory (default ``reports/`` next to the warehouse).
    export_dir : str, optional
        Also export every public table/view as Parquet here.
    progress : bool
        tqdm progress bar for the sweep (the CLI turns it on).
    stress_paths : int
        FHS stress paths per event for the intervals of every default, non-forecast run
        (default :data:`~pipelines.backtests.stress.STRESS_PATHS`; 0 = none).

    Returns
    -------
    PipelineSummary
    """
    logger = get_run_logger()
    db = str(resolve_db(db_path))
    summary = PipelineSummary(db_path=db)
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        summary.seconds[stage] = round(now - clock, 2)
        clock = now

    # 1. ingest
    todo = sources_to_load(db)
    if todo:
        from pipelines.ingest.flow import ingest_flow

        _stage(logger, "ingest: %d source(s) to load", todo)
        summary.sources_loaded = len(ingest_flow(db_path=db).loaded)
        _stage(logger, "ingest: %d source(s) loaded", summary.sources_loaded)
    else:
        _stage(logger, "ingest: every source unchanged (sha256 verified); skipped")
    lap("ingest")

    # 2. forecast
    run_id, stored = stored_forecast(db, events, forecast_assets, forecast_models)
    summary.forecast_run_id = run_id
    if stored:
        _stage(logger, "forecast: run %s already stored; skipped", run_id)
    else:
        from pipelines.forecasts.flow import forecast_flow

        summary.forecast_run_id = forecast_flow(
            db_path=db, assets=forecast_assets, models=forecast_models, events=events,
            **FORECAST_SETTINGS,
        )  # fmt: skip
        summary.forecast_computed = True
        _stage(logger, "forecast: run %s computed", summary.forecast_run_id)
    lap("forecast")

    # 3. backtest sweep
    _stage(logger, "backtest sweep on %s", describe_runner(workers, dask_address))
    dask = workers is not None or bool(dask_address)
    if dask:
        quiet_distributed_logs()
    from pipelines.backtests.flow import backtest_flow

    sweep = backtest_flow.with_options(task_runner=build_task_runner(workers, dask_address))
    with api_url_for_workers(dask_address) if dask else nullcontext():
        summary.run_ids, summary.runs_computed = sweep(
            db_path=db,
            events=events,
            policies=policies,
            forecast_models=forecast_models,
            impacts=impacts,
            progress=progress,
            stress_paths=stress_paths,
        )
    _stage(
        logger,
        "backtest: %d runs (%d computed now)",
        len(summary.run_ids),
        summary.runs_computed,
    )
    lap("backtest")

    # 4. report (and export)
    out = report_dir or str(default_report_dir(db))
    summary.report, summary.report_written = report_task(db, out)
    _stage(
        logger,
        "report %s: %s",
        "written" if summary.report_written else "up to date",
        summary.report,
    )
    lap("report")
    if export_dir:
        summary.export_files = export_task(db, str(Path(export_dir).resolve()))
        _stage(logger, "export: %d files in %s", len(summary.export_files), export_dir)
        lap("export")
    return summary
