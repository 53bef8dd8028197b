"""SQL of the policy-search stage (``pipelines.backtests.optimize``): reads and atomic writes.

Tables are in ``data/schema/007_frontier.sql``; a search's rows are replaced in one transaction.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import duckdb
import polars as pl

from pipelines.warehouse.connection import insert_frame, transaction

__all__ = [
    "FRONTIER_TABLES",
    "latest_search_id",
    "read_frontier",
    "read_robust",
    "read_search",
    "write_search",
]

#: Tables a search writes (schema 007_frontier.sql).
FRONTIER_TABLES = ("policy_frontier", "policy_robust", "optimize_searches")


def write_search(
    con: duckdb.DuckDBPyConnection,
    search_id: str,
    *,
    config: dict[str, Any],
    frontier: pl.DataFrame,
    robust: pl.DataFrame,
    study_storage: str | None,
    seconds: float,
) -> None:
    """Replace every row of ``search_id`` with these, in one transaction."""
    now = datetime.now(UTC)
    with transaction(con):
        for table in FRONTIER_TABLES:
            con.execute(f"DELETE FROM {table} WHERE search_id = ?", [search_id])
        con.execute(
            "INSERT INTO optimize_searches VALUES (?, ?, ?, ?, ?)",
            [search_id, now, json.dumps(config, sort_keys=True), study_storage, seconds],
        )
        insert_frame(
            con,
            "policy_frontier",
            frontier.with_columns(
                pl.lit(search_id).alias("search_id"), pl.lit(now).alias("created_at")
            ),
        )
        insert_frame(
            con, "policy_robust", robust.with_columns(pl.lit(search_id).alias("search_id"))
        )


def latest_search_id(con: duckdb.DuckDBPyConnection) -> str | None:
    """The most recent search, or ``None``."""
    row = con.execute(
        "SELECT search_id FROM optimize_searches ORDER BY created_at DESC LIMIT 1"
    ).fetchone()
    return row[0] if row else None


def read_search(con: duckdb.DuckDBPyConnection, search_id: str) -> dict[str, Any]:
    """``config`` (parsed), ``created_at``, ``study_storage`` and ``seconds`` of a search."""
    row = con.execute(
        "SELECT config, created_at, study_storage, seconds FROM optimize_searches "
        "WHERE search_id = ?",
        [search_id],
    ).fetchone()
    if row is None:
        return {}
    return {
        "config": json.loads(row[0]),
        "created_at": row[1],
        "study_storage": row[2],
        "seconds": row[3],
    }


def read_frontier(con: duckdb.DuckDBPyConnection, search_id: str) -> pl.DataFrame:
    """Every ``policy_frontier`` row of a search, in event, policy, trial order."""
    return con.sql(
        "SELECT * EXCLUDE (search_id, created_at) FROM policy_frontier WHERE search_id = $id "
        "ORDER BY event_id, policy, held_out, trial, params",
        params={"id": search_id},
    ).pl()


def read_robust(con: duckdb.DuckDBPyConnection, search_id: str) -> pl.DataFrame:
    """Every ``policy_robust`` row of a search, in policy, held-out event order."""
    return con.sql(
        "SELECT * EXCLUDE (search_id) FROM policy_robust WHERE search_id = $id "
        "ORDER BY policy, held_out_event",
        params={"id": search_id},
    ).pl()
