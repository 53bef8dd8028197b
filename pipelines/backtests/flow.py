"""Prefect flow ``backtest``: events × policies × forecast models × books × impact models.

One Prefect task per run config (:func:`run_backtest_task`, a thin call of
:func:`pipelines.backtests.run.execute_run`); the flow writes every result itself on its one
writer connection, each run in one transaction. The run id is the hash of the full config, and a
run already in ``backtest_runs`` is skipped (cache by id), so re-running a sweep only computes
what is new.

The building blocks are re-exported here for other drivers (CLI, Dask): :func:`build_run_config`,
:func:`execute_run`, :func:`run_output`, :func:`write_result`, :func:`plan_sweep`. Run configs
and the task's :class:`~pipelines.backtests.run.RunOutput` pickle, so any Prefect task runner
works (``backtest_flow.with_options(task_runner=DaskTaskRunner(...))``).
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from pipelines.backtests.run import (
    RunConfig,
    RunOutput,
    build_run_config,
    execute_run,
    pending_runs,
    plan_sweep,
    run_output,
    write_result,
)
from pipelines.warehouse.connection import connect

__all__ = [
    "backtest_flow",
    "build_run_config",
    "execute_run",
    "plan_sweep",
    "run_backtest_task",
    "run_output",
    "write_result",
]


@task(cache_policy=NO_CACHE, task_run_name="backtest {config.label}")
def run_backtest_task(config: RunConfig) -> RunOutput:
    """Simulate one run config; returns its storable, picklable output (metrics, step log)."""
    return run_output(config)


@flow(name="backtest", log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=4))
def backtest_flow(
    db_path: str | None = None,
    events: list[str] | None = None,
    policies: list[str] | None = None,
    forecast_models: list[str] | None = None,
    books: list[str] | None = None,
    impacts: list[str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> list[str]:
    """Sweep backtests and write them to the warehouse.

    Parameters
    ----------
    db_path : str, optional
        Warehouse (default ``$CASCADE_DB`` or ``./cascade.duckdb``).
    events : list of str, optional
        Event ids or window labels; default all 7.
    policies : list of str, optional
        Default all 8 policy names.
    forecast_models : list of str, optional
        Models for the ``dynamic_ltv`` policies (``'-'`` for the others); default every model
        with a margin path in ``margin_paths``, each on the events its paths cover.
    books : list of str, optional
        Default ``maker-ethb`` where the ETH-B vault history covers the event (W2–W5), else
        ``synthetic`` (ETH).
    impacts : list of str, optional
        Default ``["sqrt"]`` (calibrated per event).
    overrides : dict, optional
        ``{"policy": {...}, "impact": {...}, "book": {...}}`` (see
        :func:`pipelines.backtests.run.build_run_config`).

    Returns
    -------
    list of str
        The run ids of the sweep (computed now or already in the warehouse), in sweep order.
    """
    logger = get_run_logger()
    con = connect(db_path)
    try:
        configs = plan_sweep(
            con,
            events=events,
            policies=policies,
            forecast_models=forecast_models,
            books=books,
            impacts=impacts,
            overrides=overrides,
        )
        todo = pending_runs(con, configs)
        logger.info(
            "%d runs in the sweep, %d cached, %d to run",
            len(configs),
            len(configs) - len(todo),
            len(todo),
        )
        futures = [(cfg, run_backtest_task.submit(cfg)) for cfg in todo]
        for i, (cfg, future) in enumerate(futures, start=1):
            output = future.result()
            write_result(con, cfg.run_id, cfg, output)
            m = output.metrics
            logger.info(
                "[%d/%d] %s %s: %d liquidations, $%.2fM liquidated, $%.2fM induced",
                i,
                len(futures),
                cfg.run_id,
                cfg.label,
                m["n_liquidations"],
                m["liquidated_usd"] / 1e6,
                m["induced_usd"] / 1e6,
            )
    finally:
        con.close()
    return [c.run_id for c in configs]
