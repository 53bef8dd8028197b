"""The backtest stage's SQL: write a run, find stored runs, mark the current answer, read metrics.

``backtest_runs`` / ``backtest_metrics`` / ``backtest_steps`` keep every run ever computed
(queryable through the ``backtest_results`` view). ``backtest_current`` holds, per question
(event, book, policy, forecast model, threshold source, impact), the one run the scoreboard views
(``policy_scoreboard``, ``avoided_cascades``) and the report show.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import duckdb
import polars as pl

from pipelines.errors import CascadeError
from pipelines.warehouse.connection import insert_frame, transaction

__all__ = [
    "existing_run_ids",
    "mark_current",
    "read_metrics",
    "runs_missing_intervals",
    "write_intervals",
    "write_run",
]

_MARK_CURRENT = """
INSERT OR REPLACE INTO backtest_current
SELECT coalesce(event_id, ''), book, policy, coalesce(forecast_model, '-'), threshold_source,
       impact, run_id, ?
FROM backtest_runs WHERE list_contains(?, run_id)
"""


def write_run(
    con: duckdb.DuckDBPyConnection,
    run_row: Mapping[str, Any],
    metrics: Mapping[str, Any],
    steps: pl.DataFrame,
    *,
    current: bool,
) -> None:
    """Write one run's rows in one transaction (replacing a run with the same id).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Writable warehouse connection.
    run_row : mapping
        The ``backtest_runs`` columns (``run_id`` included).
    metrics : mapping
        The ``backtest_metrics`` columns (without ``run_id``).
    steps : polars.DataFrame
        The step log (without ``run_id``).
    current : bool
        Make this run the current answer to its question.
    """
    run_id = run_row["run_id"]
    with transaction(con):
        for table in ("backtest_steps", "backtest_metrics", "backtest_runs"):
            con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
        cols = ", ".join(run_row)
        marks = ", ".join("?" for _ in run_row)
        con.execute(f"INSERT INTO backtest_runs ({cols}) VALUES ({marks})", list(run_row.values()))
        cols = ", ".join(["run_id", *metrics])
        marks = ", ".join("?" for _ in range(len(metrics) + 1))
        con.execute(
            f"INSERT INTO backtest_metrics ({cols}) VALUES ({marks})",
            [run_id, *metrics.values()],
        )
        insert_frame(con, "backtest_steps", steps.with_columns(pl.lit(run_id).alias("run_id")))
        if current:
            con.execute(_MARK_CURRENT, [datetime.now(UTC), [run_id]])


def mark_current(con: duckdb.DuckDBPyConnection, run_ids: Sequence[str]) -> None:
    """Make stored runs the current answers to their questions (one transaction)."""
    if not run_ids:
        return
    with transaction(con):
        con.execute(_MARK_CURRENT, [datetime.now(UTC), list(run_ids)])


def existing_run_ids(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> set[str]:
    """The subset of ``run_ids`` already in ``backtest_runs``."""
    if not run_ids:
        return set()
    rows = con.execute(
        "SELECT run_id FROM backtest_runs WHERE list_contains(?, run_id)", [run_ids]
    ).fetchall()
    return {r[0] for r in rows}


def read_metrics(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any]:
    """Stored metrics of a run, with its labels (from ``backtest_results``).

    Non-finite floats (an amplification with no counterfactual liquidation) become ``None``.
    """
    frame = con.sql(
        "SELECT * EXCLUDE (created_at) FROM backtest_results WHERE run_id = ?", params=[run_id]
    ).pl()
    if frame.height == 0:
        raise CascadeError(f"run {run_id!r} is not in backtest_runs")
    row = frame.row(0, named=True)
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()
    }


def runs_missing_intervals(
    con: duckdb.DuckDBPyConnection, run_ids: Sequence[str], *, n_paths: int, seed: int
) -> list[str]:
    """The runs of ``run_ids`` (in order) without stress intervals for ``(n_paths, seed)``."""
    if not run_ids:
        return []
    rows = con.execute(
        "SELECT DISTINCT run_id FROM backtest_intervals "
        "WHERE list_contains(?, run_id) AND n_paths = ? AND seed = ?",
        [list(run_ids), n_paths, seed],
    ).fetchall()
    done = {r[0] for r in rows}
    return [r for r in run_ids if r not in done]


def write_intervals(con: duckdb.DuckDBPyConnection, rows: pl.DataFrame) -> int:
    """Store interval rows of one run in one transaction (replacing the same key)."""
    if rows.height == 0:
        return 0
    with transaction(con):
        for run_id, n_paths, seed in rows.select("run_id", "n_paths", "seed").unique().rows():
            con.execute(
                "DELETE FROM backtest_intervals WHERE run_id = ? AND n_paths = ? AND seed = ?",
                [run_id, n_paths, seed],
            )
        insert_frame(con, "backtest_intervals", rows)
    return rows.height
