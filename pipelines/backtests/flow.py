"""Prefect flow ``backtest``: the one backtest sweep (events × books × impacts × policies × models).

Used by ``cascade backtest --sweep`` and, as a sub-flow, by the daily ``cascade-pipeline``. The
flow plans the sweep (:func:`pipelines.backtests.run.plan_sweep`), skips every run whose id is
already stored, submits the rest to its task runner and writes each result, in one transaction,
on its single DuckDB connection as the task returns. Tasks receive complete, picklable run
configs and return picklable outputs, so any task runner works: one run per task
(:func:`run_backtest_task`) on threads, interleaved batches (:func:`run_backtest_batch`,
:data:`BATCHES_PER_WORKER` per worker) on a Dask cluster
(``backtest_flow.with_options(task_runner=DaskTaskRunner(...))``).
"""

from __future__ import annotations

from typing import Any

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner

from pipelines.backtests.run import (
    RunConfig,
    RunOutput,
    pending_runs,
    plan_sweep,
    run_output,
    write_result,
)
from pipelines.backtests.spec import NO_MODEL
from pipelines.backtests.stress import STRESS_SEED, StressScenario, interval_rows, stress_scenario
from pipelines.warehouse import backtest_store as store
from pipelines.warehouse.connection import connect

__all__ = ["BATCHES_PER_WORKER", "backtest_flow", "run_backtest_batch", "run_backtest_task"]

#: Batches per Dask worker: enough to balance uneven runs, few enough that Prefect's per-task
#: cost (serializing the settings context, hashing the arguments: ~0.1-0.3 s per submit) stays
#: small next to the runs themselves (~0.05 s each on the default sweep).
BATCHES_PER_WORKER = 4


@task(cache_policy=NO_CACHE, task_run_name="backtest {config.label}")
def run_backtest_task(config: RunConfig) -> RunOutput:
    """Simulate one run config; returns its storable, picklable output (metrics, step log)."""
    return run_output(config)


@task(cache_policy=NO_CACHE, task_run_name="stress intervals {config.label}")
def stress_interval_task(
    config: RunConfig, scenario: StressScenario, real: dict[str, Any]
) -> pl.DataFrame:
    """Replay one run on every stress path of its event; its interval rows."""
    return interval_rows(config, scenario, real)


@task(cache_policy=NO_CACHE, task_run_name="backtest batch of {n_runs} runs")
def run_backtest_batch(configs: list[RunConfig], n_runs: int) -> list[RunOutput]:
    """Simulate several run configs in one task (for Dask); outputs in the order given."""
    return [run_output(cfg) for cfg in configs]


def _dask_workers() -> int | None:
    """Workers of the flow's Dask cluster (starting it), or ``None`` on another runner."""
    from prefect.context import get_run_context

    runner = get_run_context().task_runner
    if type(runner).__name__ != "DaskTaskRunner":  # no prefect_dask import for thread runs
        return None
    return max(1, len(runner.client.scheduler_info().get("workers", {})))


def _submit(todo: list[RunConfig]) -> dict[Any, list[RunConfig]]:
    """Submit the runs; returns ``future → configs it computes`` (one or a batch each)."""
    workers = _dask_workers()
    if workers is None:
        task_fn = run_backtest_task.with_options(retries=1, retry_delay_seconds=1)
        return {task_fn.submit(cfg): [cfg] for cfg in todo}
    n_batches = min(len(todo), workers * BATCHES_PER_WORKER)
    batches = [todo[i::n_batches] for i in range(n_batches)]  # interleaved: similar costs
    batch_fn = run_backtest_batch.with_options(retries=1, retry_delay_seconds=1)
    return {batch_fn.submit(batch, len(batch)): batch for batch in batches}


@flow(name="backtest", log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=4))
def backtest_flow(
    db_path: str | None = None,
    events: list[str] | None = None,
    policies: list[str] | None = None,
    forecast_models: list[str] | None = None,
    books: list[str] | None = None,
    impacts: list[str] | None = None,
    overrides: dict[str, Any] | None = None,
    progress: bool = False,
    stress_paths: int = 0,
) -> tuple[list[str], int]:
    """Sweep backtests: compute the runs not yet stored and write them to the warehouse.

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
    progress : bool
        Show a tqdm progress bar on stderr.
    stress_paths : int
        Also replay every default-parameter, non-forecast run on this many FHS stress paths of
        its event (:mod:`pipelines.backtests.stress`) and store the intervals; 0 = none.

    Returns
    -------
    tuple
        ``(run ids of the whole sweep in sweep order, number computed now)``.
    """
    from tqdm import tqdm

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
            "%d runs in the sweep: %d stored, %d to compute",
            len(configs),
            len(configs) - len(todo),
            len(todo),
        )
        if todo:
            futures = _submit(todo)
            logger.info("%d runs submitted as %d task(s)", len(todo), len(futures))
            written, step = 0, max(1, len(todo) // 10)
            bar = tqdm(total=len(todo), desc="backtest sweep", unit="run", disable=not progress)
            with bar:
                for future in as_completed(list(futures)):
                    batch = futures[future]
                    outputs = future.result()
                    if not isinstance(outputs, list):  # run_backtest_task: one output
                        outputs = [outputs]
                    for cfg, output in zip(batch, outputs, strict=True):
                        write_result(con, cfg.run_id, cfg, output)
                        written += 1
                        bar.update()
                        if written % step == 0 or written == len(todo):
                            logger.info(
                                "[%d/%d] runs written (last: %s)", written, len(todo), cfg.label
                            )
        if stress_paths > 0:
            _stress_intervals(con, configs, stress_paths, logger)
    finally:
        con.close()
    return [c.run_id for c in configs], len(todo)


def _stress_intervals(con: Any, configs: list[RunConfig], n_paths: int, logger: Any) -> None:
    """Intervals over stress paths for the sweep's default, non-forecast runs that lack them."""
    eligible = [c for c in configs if c.default_params and c.forecast_model == NO_MODEL]
    missing = set(
        store.runs_missing_intervals(
            con, [c.run_id for c in eligible], n_paths=n_paths, seed=STRESS_SEED
        )
    )
    todo = [c for c in eligible if c.run_id in missing]
    if not todo:
        logger.info("stress intervals: all %d runs already have them", len(eligible))
        return
    scenarios: dict[tuple[Any, ...], StressScenario] = {}
    futures = []
    for cfg in todo:
        key = (cfg.event_id, cfg.asset, str(cfg.path.ts[0]), len(cfg.path), cfg.path.step_seconds)
        if key not in scenarios:
            scenarios[key] = stress_scenario(con, cfg, n_paths=n_paths)
            logger.info("stress paths %s: %s", cfg.event_id, scenarios[key].fit_label)
        real = store.read_metrics(con, cfg.run_id)
        futures.append((cfg, stress_interval_task.submit(cfg, scenarios[key], real)))
    logger.info("stress intervals: %d runs x %d paths submitted", len(todo), n_paths)
    for i, (cfg, future) in enumerate(futures, start=1):
        store.write_intervals(con, future.result())
        logger.info("[%d/%d] stress intervals written (%s)", i, len(futures), cfg.label)
