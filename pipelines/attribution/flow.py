"""Prefect flow ``attribute``: the market-wide cascade replay and its attribution.

Inputs are read and everything is computed on a read-only connection; the results are written
in one transaction at the end (:func:`pipelines.warehouse.attribution_store.write_attribution_run`),
so a failed run leaves nothing behind.
"""

from __future__ import annotations

from dataclasses import asdict

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from pipelines.attribution.compute import AttributionRun, build_config, compute_attribution
from pipelines.attribution.policy_stress import check_stress_paths
from pipelines.warehouse.attribution_store import write_attribution_run
from pipelines.warehouse.connection import connect

__all__ = ["attribution_flow", "run_attribution"]


def run_attribution(
    db_path: str,
    *,
    events: list[str] | None = None,
    assets: list[str] | None = None,
    impact_y: float = 1.0,
    stress_paths: int | None = None,
) -> AttributionRun:
    """Compute and store a run without Prefect; returns it.

    ``stress_paths``: stress paths per (event, asset) of the policy intervals (``None``: the
    default of :mod:`pipelines.attribution.policy_stress`; 0: none).
    """
    con = connect(db_path, read_only=True)
    try:
        extra = {} if stress_paths is None else {"stress_paths": check_stress_paths(stress_paths)}
        config = build_config(con, events=events, assets=assets, impact_y=impact_y, **extra)
        run = compute_attribution(con, config)
    finally:
        con.close()
    con = connect(db_path)
    try:
        write_attribution_run(con, run.run_id, asdict(run.config), run.frames)
    finally:
        con.close()
    return run


@task(cache_policy=NO_CACHE)
def _compute(
    db_path: str,
    events: list[str] | None,
    assets: list[str] | None,
    impact_y: float,
    stress_paths: int | None,
) -> AttributionRun:
    return run_attribution(
        db_path, events=events, assets=assets, impact_y=impact_y, stress_paths=stress_paths
    )


@flow(name="attribute")
def attribution_flow(
    db_path: str,
    events: list[str] | None = None,
    assets: list[str] | None = None,
    impact_y: float = 1.0,
    stress_paths: int | None = None,
) -> str:
    """Fit the leverage books, replay every event, store the attribution; returns the run id."""
    run = _compute(db_path, events, assets, impact_y, stress_paths)
    log = get_run_logger()
    for note in run.notes:
        log.info(note)
    return run.run_id
