"""Prefect flow ``forecast``: walk-forward volatility forecasts on the crash windows.

One task per (asset, model, window) — they are independent and are submitted to a thread pool
(one thread by default, ``CASCADE_FORECAST_WORKERS`` for more; see :func:`_workers`). Inputs
are read on one read-only connection before the tasks start; all results are written on one
connection in one transaction at the end, so a failed run leaves nothing behind. The run id is
the hash of the full config; a run already in ``forecast_runs`` is not computed again.

Building blocks for other pipelines (no Prefect needed): :func:`load_hourly_bars`,
:func:`forecast_windows`, :func:`build_config`, :func:`compute_forecast_run`,
:func:`write_forecast_run`.
"""

from __future__ import annotations

import os
import warnings
from time import perf_counter

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner

import forecasting as fcst
from pipelines.errors import CascadeError
from pipelines.forecasts.compute import (
    MODEL_COST_ORDER,
    ForecastRun,
    WindowInput,
    assemble_run,
    compute_forecast_run,
    prepare_inputs,
    run_model,
)
from pipelines.forecasts.data import load_hourly_bars
from pipelines.forecasts.plan import (
    ARCH_REFIT_EVERY,
    DEFAULT_VAR_METHOD,
    ForecastConfig,
    build_config,
    forecast_windows,
)
from pipelines.warehouse.connection import connect
from pipelines.warehouse.forecast_store import run_exists, write_forecast_run

__all__ = [
    "forecast_flow",
    "forecast_task",
    "load_hourly_bars",
    "forecast_windows",
    "build_config",
    "compute_forecast_run",
    "write_forecast_run",
]


def _workers() -> int:
    """Task threads: ``CASCADE_FORECAST_WORKERS``, else 1.

    Measured on the 2-CPU reference machine, several threads were *slower* than one (GIL
    contention in the per-bar recursions and tree building) and scikit-learn's forests warned
    about configuration propagation from concurrent threads; raise it on a machine with idle
    cores and check the wall time.
    """
    env = os.environ.get("CASCADE_FORECAST_WORKERS")
    return max(1, int(env)) if env else 1


@task(
    cache_policy=NO_CACHE,
    task_run_name="forecast {inp.asset} {inp.window.window_id} {model}",
)
def forecast_task(inp: WindowInput, model: str, config: ForecastConfig) -> pl.DataFrame:
    """Walk-forward forecasts of one model on one (asset, window)."""
    logger = get_run_logger()
    t0 = perf_counter()
    out = run_model(inp, model, config)
    logger.info(
        "%s %s %s: %d forecasts (%d origins x %d horizons) in %.1f s",
        inp.asset,
        inp.window.window_id,
        model,
        out.height,
        out["origin_ts"].n_unique(),
        len(config.horizons),
        perf_counter() - t0,
    )
    return out


@flow(name="forecast", log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=_workers()))
def forecast_flow(
    db_path: str | None = None,
    assets: list[str] | None = None,
    models: list[str] | None = None,
    events: list[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    horizons: list[int] = [1, 24],  # noqa: B006 - Prefect parameters; never mutated
    history_days: int = 90,
    refit_every: int = 24,
    margin_preset: str = "aave-v3-weth",
    min_train: int = 720,
    var_method: str = DEFAULT_VAR_METHOD,
    margin_z: str = "normal",
    margin_first_passage: bool = False,
    arch_refit_every: int = ARCH_REFIT_EVERY,
    intraday_rv: bool = True,
) -> str:
    """Forecast volatility on crash windows (or a date range) and store forecasts and scores.

    Parameters
    ----------
    db_path : str, optional
        Warehouse file (default ``$CASCADE_DB`` or ``./cascade.duckdb``).
    assets : list of str, optional
        Assets with prices in the warehouse (default BTC, ETH, SOL).
    models : list of str, optional
        Models of :data:`forecasting.MODELS` (default all seven).
    events : list of str, optional
        Crash event ids or window labels (default all seven); each is forecast with the
        ``history_days`` before it.
    start, end : str, optional
        Forecast the range ``[start, end)`` instead of events (ISO dates, UTC).
    horizons : list of int
        Horizons in hours.
    history_days : int
        Days of history loaded before each window (``min_train`` hours must fit).
    refit_every : int
        Re-estimate every ``refit_every`` hours (state updates every hour).
    margin_preset : str
        ``aave-v3-weth`` or ``maker-eth-b`` (margin paths).
    min_train : int
        Hours of returns before the first forecast.
    arch_refit_every : int
        Longest time between refits of garch/gjr/egarch (which also refit on drift).
    intraday_rv : bool
        Realized variance from 5-minute/1-minute bars where complete (see :func:`build_config`).
    var_method, margin_z, margin_first_passage
        Tail quantiles of the VaR scores and of the margin paths (see :func:`build_config`).

    Returns
    -------
    str
        The run id.
    """
    logger = get_run_logger()
    t0 = perf_counter()
    con = connect(db_path, read_only=True)
    try:
        config = build_config(
            con,
            assets=assets,
            models=models,
            events=events,
            start=start,
            end=end,
            horizons=horizons,
            history_days=history_days,
            refit_every=refit_every,
            min_train=min_train,
            margin_preset=margin_preset,
            var_method=var_method,
            margin_z=margin_z,
            margin_first_passage=margin_first_passage,
            arch_refit_every=arch_refit_every,
            intraday_rv=intraday_rv,
        )
        run_id = config.run_id
        if run_exists(con, run_id):
            logger.info("forecast run %s is already in forecast_runs; skipped", run_id)
            return run_id
        inputs, notes = prepare_inputs(con, config)
    finally:
        con.close()
    for note in notes:
        (logger.warning if "skipped" in note else logger.info)(note)
    if not inputs:
        raise CascadeError("nothing to forecast:\n  " + "\n  ".join(notes))
    results = _run_tasks(inputs, config, logger)
    run = assemble_run(config, inputs, results, notes, perf_counter() - t0)
    con = connect(db_path)
    try:
        written = write_forecast_run(con, run)
    finally:
        con.close()
    _log_summary(run, written, logger)
    return run_id


def _run_tasks(inputs: list[WindowInput], config: ForecastConfig, logger) -> list[pl.DataFrame]:  # noqa: ANN001
    order = sorted(config.models, key=MODEL_COST_ORDER.index)
    results: list[pl.DataFrame] = []
    with warnings.catch_warnings():
        # A non-converged arch fit keeps its estimates (see ModelConvergenceWarning); report it
        # once per place instead of failing the task. Set here, in the flow's thread, because
        # warning filters are process-wide.
        warnings.simplefilter("default", fcst.ModelConvergenceWarning)
        futures = [forecast_task.submit(inp, model, config) for model in order for inp in inputs]
        total = len(futures)
        for done, future in enumerate(as_completed(futures), start=1):
            results.append(future.result())
            if done % max(1, total // 10) == 0 or done == total:
                logger.info("%d/%d forecast tasks done", done, total)
    return results


def _log_summary(run: ForecastRun, written: bool, logger) -> None:  # noqa: ANN001
    state = "written" if written else "already stored (concurrent run)"
    logger.info(
        "forecast run %s %s: %d forecasts, %d realized, %d scores, %d margin rows in %.1f s",
        run.run_id,
        state,
        run.forecasts.height,
        run.realized.height,
        run.scores.height,
        run.margins.height,
        run.seconds,
    )
