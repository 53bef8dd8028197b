"""What a ``cascade run`` would do — decided without importing Prefect.

The pipeline is ingest → forecast → backtest sweep → report (→ export). Each stage is cached by
the hash of its inputs: a source by its sha256 and adapter version (``ingest_log``), the forecast
run and every backtest run by the hash of their full config (their run id), the report and the
export by a fingerprint of the warehouse's run ids and loaded sources plus the code that draws
them. :func:`plan_pipeline` asks each stage whether it has work, so ``cascade run`` with nothing
changed prints the scoreboard without starting Prefect's server at all (the flow itself skips
the same stages one by one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from pipelines.errors import CascadeError
from pipelines.warehouse.connection import connect
from pipelines.warehouse.stamps import (
    STAMP_FILE,
    default_report_dir,
    read_stamp,
    resolve_db,
    warehouse_fingerprint,
    write_stamp,
)

__all__ = [
    "DEFAULT_FORECAST_ASSETS",
    "DEFAULT_FORECAST_MODELS",
    "FORECAST_SETTINGS",
    "STAMP_FILE",
    "PipelinePlan",
    "default_report_dir",
    "forecast_run_id",
    "plan_pipeline",
    "read_stamp",
    "resolve_db",
    "warehouse_fingerprint",
    "write_stamp",
]

#: Forecast models swept by the pipeline for the dynamic-LTV policies (the cheap, strong three).
DEFAULT_FORECAST_MODELS: tuple[str, ...] = ("garch", "har", "ewma")
#: Assets forecast by the pipeline: the collateral of every default book.
DEFAULT_FORECAST_ASSETS: tuple[str, ...] = ("ETH",)
#: Forecast settings of the pipeline (``forecast_flow``'s defaults, spelled out so the run id
#: computed here is the one the flow computes).
FORECAST_SETTINGS: dict[str, Any] = {
    "horizons": [1, 24],
    "history_days": 90,
    "refit_every": 24,
    "min_train": 720,
    "margin_preset": "aave-v3-weth",
}


def forecast_run_id(
    con: duckdb.DuckDBPyConnection,
    *,
    events: Sequence[str] | None,
    assets: Sequence[str],
    models: Sequence[str],
) -> str:
    """Run id the pipeline's forecast stage would produce (the hash of its config)."""
    from pipelines.forecasts.plan import build_config

    config = build_config(
        con, assets=list(assets), models=list(models), events=events, **FORECAST_SETTINGS
    )
    return config.run_id


@dataclass(frozen=True, kw_only=True)
class PipelinePlan:
    """Work left for each stage of the pipeline.

    Attributes
    ----------
    sources_todo : int
        Registry sources to (re)load.
    forecast_todo : bool
        The forecast run is not in ``forecast_runs``.
    runs_todo : int or None
        Backtest runs of the sweep not in ``backtest_runs`` (``None``: unknown until the
        forecast stage has run).
    runs_total : int or None
        Runs in the sweep.
    intervals_todo : int
        Runs of the sweep still without stress intervals (0 when none were asked for).
    report_stale : bool
        The report is missing or was drawn from other results or other code.
    export_stale : bool
        An export directory was asked for and is missing or stale.
    notes : list of str
        Why a stage has work, for display.
    """

    sources_todo: int
    forecast_todo: bool
    runs_todo: int | None
    runs_total: int | None
    report_stale: bool
    export_stale: bool
    intervals_todo: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def up_to_date(self) -> bool:
        """Nothing to do in any stage."""
        return not (
            self.sources_todo
            or self.forecast_todo
            or self.runs_todo is None
            or self.runs_todo
            or self.intervals_todo
            or self.report_stale
            or self.export_stale
        )


def _stale(directory: Path | None, fingerprint: str, marker: str) -> bool:
    if directory is None:
        return False
    directory = Path(directory)
    if not (directory / marker).exists():
        return True
    return read_stamp(directory).get("fingerprint") != fingerprint


def plan_pipeline(
    db_path: str | Path | None,
    *,
    events: Sequence[str] | None = None,
    policies: Sequence[str] | None = None,
    forecast_models: Sequence[str] = DEFAULT_FORECAST_MODELS,
    forecast_assets: Sequence[str] = DEFAULT_FORECAST_ASSETS,
    impacts: Sequence[str] | None = None,
    report_dir: str | Path | None = None,
    export_dir: str | Path | None = None,
    stress_paths: int = 0,
) -> PipelinePlan:
    """Which stages of :func:`~.pipeline.cascade_pipeline` have work, without Prefect.

    Parameters
    ----------
    db_path : path, optional
        Warehouse (created with the schema when missing).
    events, policies, forecast_models, forecast_assets, impacts
        The sweep, as for the flow.
    report_dir : path, optional
        Report directory (default :func:`default_report_dir`).
    export_dir : path, optional
        Export directory, when the run should also export.
    stress_paths : int
        Stress paths per event the sweep's intervals must have (0: none asked for).

    Returns
    -------
    PipelinePlan
    """
    from pipelines.ingest.plan import plan_ingest

    db = resolve_db(db_path)
    report = Path(report_dir) if report_dir else default_report_dir(db)
    ingest = plan_ingest(db)  # re-hashes unchanged files: a corrupted mirror is still caught
    if ingest.todo:
        return PipelinePlan(
            sources_todo=len(ingest.todo),
            forecast_todo=True,
            runs_todo=None,
            runs_total=None,
            report_stale=True,
            export_stale=export_dir is not None,
            notes=[f"{len(ingest.todo)} source(s) to load"],
        )
    con = connect(db, read_only=True)
    try:
        return _plan_results(
            con,
            events=events,
            policies=policies,
            forecast_models=forecast_models,
            forecast_assets=forecast_assets,
            impacts=impacts,
            report_dir=report,
            export_dir=Path(export_dir) if export_dir else None,
            stress_paths=stress_paths,
        )
    finally:
        con.close()


def _plan_results(
    con: duckdb.DuckDBPyConnection,
    *,
    events: Sequence[str] | None,
    policies: Sequence[str] | None,
    forecast_models: Sequence[str],
    forecast_assets: Sequence[str],
    impacts: Sequence[str] | None,
    report_dir: Path,
    export_dir: Path | None,
    stress_paths: int = 0,
) -> PipelinePlan:
    from pipelines.backtests.run import existing_run_ids, plan_sweep
    from pipelines.warehouse.forecast_store import run_exists

    notes: list[str] = []
    fc_id = forecast_run_id(con, events=events, assets=forecast_assets, models=forecast_models)
    forecast_todo = not run_exists(con, fc_id)
    runs_todo: int | None = None
    runs_total: int | None = None
    intervals_todo = 0
    if forecast_todo:
        notes.append(f"forecast run {fc_id} to compute")
    else:
        try:
            configs = plan_sweep(
                con,
                events=list(events) if events else None,
                policies=list(policies) if policies else None,
                forecast_models=list(forecast_models),
                impacts=list(impacts) if impacts else None,
            )
        except CascadeError as exc:
            notes.append(f"sweep cannot be planned yet: {exc}")
        else:
            runs_total = len(configs)
            runs_todo = runs_total - len(existing_run_ids(con, [c.run_id for c in configs]))
            if runs_todo:
                notes.append(f"{runs_todo} of {runs_total} backtest runs to compute")
            if stress_paths > 0:
                intervals_todo = _intervals_todo(con, configs, stress_paths)
                if intervals_todo:
                    notes.append(f"{intervals_todo} runs without stress intervals")
    report_stale = _stale(report_dir, warehouse_fingerprint(con, kind="report"), "index.html")
    export_stale = _stale(export_dir, warehouse_fingerprint(con, kind="export"), STAMP_FILE)
    if report_stale:
        notes.append(f"report in {report_dir} to (re)draw")
    if export_stale:
        notes.append(f"export in {export_dir} to (re)write")
    return PipelinePlan(
        sources_todo=0,
        forecast_todo=forecast_todo,
        runs_todo=runs_todo,
        runs_total=runs_total,
        report_stale=report_stale,
        export_stale=export_stale,
        intervals_todo=intervals_todo,
        notes=notes,
    )


def _intervals_todo(con: duckdb.DuckDBPyConnection, configs: list, n_paths: int) -> int:
    """Default, non-forecast runs of the sweep without stress intervals of ``n_paths``."""
    from pipelines.backtests.spec import NO_MODEL
    from pipelines.backtests.stress import STRESS_SEED
    from pipelines.warehouse.backtest_store import runs_missing_intervals

    eligible = [c.run_id for c in configs if c.default_params and c.forecast_model == NO_MODEL]
    return len(runs_missing_intervals(con, eligible, n_paths=n_paths, seed=STRESS_SEED))
