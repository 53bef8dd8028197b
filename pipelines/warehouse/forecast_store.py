"""Forecast results in the warehouse: table layout check, run lookup, one-transaction writes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Protocol

import duckdb
import polars as pl

from pipelines.catalog.hashing import canonical_json
from pipelines.errors import CascadeError
from pipelines.warehouse.connection import SCHEMA_DIR, insert_frame, transaction

__all__ = [
    "FORECAST_TABLES",
    "ensure_forecast_tables",
    "run_exists",
    "write_forecast_run",
    "run_config",
]

#: Result tables and the primary key each must have (data/schema/002_forecast.sql).
FORECAST_TABLES: dict[str, tuple[str, ...]] = {
    "forecast_runs": ("run_id",),
    "forecasts": ("run_id", "event_id", "model", "asset", "origin_ts", "horizon_hours"),
    "realized_vol": ("run_id", "event_id", "asset", "origin_ts", "horizon_hours"),
    "forecast_scores": (
        "run_id", "model", "asset", "event_id", "horizon_hours", "scope", "metric",
    ),
    "margin_paths": ("run_id", "event_id", "model", "asset", "ts"),
}  # fmt: skip
_SCHEMA_FILE = SCHEMA_DIR / "002_forecast.sql"


class ForecastRunRows(Protocol):
    """What :func:`write_forecast_run` stores (``pipelines.forecasts.compute.ForecastRun``)."""

    @property
    def run_id(self) -> str:
        """The run id (hash of the config)."""

    config: Any
    forecasts: pl.DataFrame
    realized: pl.DataFrame
    scores: pl.DataFrame
    margins: pl.DataFrame
    notes: tuple[str, ...]
    seconds: float


def _scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> object:
    """First value of a query, reading the result to the end (DuckDB 2 needs that)."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0][0] if rows else None


def _primary_keys(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, ...]]:
    rows = con.execute(
        "SELECT table_name, constraint_column_names FROM duckdb_constraints() "
        "WHERE constraint_type = 'PRIMARY KEY' AND schema_name = 'main'"
    ).fetchall()
    return {r[0]: tuple(r[1]) for r in rows if r[0] in FORECAST_TABLES}


def ensure_forecast_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Rebuild forecast tables created with an older layout (before per-window keys).

    Databases created before ``event_id``/``horizon_hours``/``scope`` joined the primary keys
    hold the old, necessarily empty tables; they are dropped and re-created from
    ``data/schema/002_forecast.sql``.

    Raises
    ------
    CascadeError
        If an old-layout table already holds rows (never dropped silently).
    """
    keys = _primary_keys(con)
    stale = [t for t, pk in FORECAST_TABLES.items() if keys.get(t) != pk]
    if not stale:
        return
    full = [t for t in FORECAST_TABLES if _scalar(con, f"SELECT count(*) FROM {t}")]
    if full:
        raise CascadeError(
            f"forecast tables {', '.join(stale)} have an old layout and {', '.join(full)} hold "
            "rows; export them, then DROP TABLE them (duckdb CLI) or use a fresh --db"
        )
    with transaction(con):
        con.execute("DROP VIEW IF EXISTS forecast_vs_realized")
        for table in FORECAST_TABLES:
            con.execute(f"DROP TABLE IF EXISTS {table}")
        con.execute(_SCHEMA_FILE.read_text())


def run_exists(con: duckdb.DuckDBPyConnection, run_id: str) -> bool:
    """Whether ``forecast_runs`` already holds ``run_id``."""
    return bool(_scalar(con, "SELECT count(*) FROM forecast_runs WHERE run_id = ?", [run_id]))


def run_config(con: duckdb.DuckDBPyConnection, run_id: str) -> dict:
    """The stored config of a run (``forecast_runs.config`` as a dict).

    Raises
    ------
    CascadeError
        If the run is unknown; the message lists the latest runs.
    """
    rows = con.execute("SELECT config FROM forecast_runs WHERE run_id = ?", [run_id]).fetchall()
    if not rows:
        latest = [
            r[0]
            for r in con.execute(
                "SELECT run_id FROM forecast_runs ORDER BY created_at DESC LIMIT 5"
            ).fetchall()
        ]
        raise CascadeError(f"unknown forecast run {run_id!r}; latest runs: {latest or 'none'}")
    return json.loads(rows[0][0])


def _with_run(frame: pl.DataFrame, run_id: str) -> pl.DataFrame:
    return frame.with_columns(pl.lit(run_id).alias("run_id")) if frame.height else frame


def write_forecast_run(con: duckdb.DuckDBPyConnection, run: ForecastRunRows) -> bool:
    """Write every row of a run in one transaction.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Writable warehouse connection.
    run : ForecastRunRows
        From :func:`~pipelines.forecasts.compute.assemble_run`.

    Returns
    -------
    bool
        ``False`` when the run id was already stored (nothing written), ``True`` otherwise.
    """
    ensure_forecast_tables(con)
    run_id = run.run_id
    with transaction(con):
        if run_exists(con, run_id):
            return False
        con.execute(
            "INSERT INTO forecast_runs (run_id, config, created_at, notes, seconds) "
            "VALUES (?, ?, ?, ?, ?)",
            [
                run_id,
                canonical_json(run.config),
                datetime.now(UTC),
                json.dumps(list(run.notes)),
                run.seconds,
            ],
        )
        insert_frame(con, "forecasts", _with_run(run.forecasts, run_id))
        insert_frame(con, "realized_vol", _with_run(run.realized, run_id))
        insert_frame(con, "forecast_scores", _with_run(run.scores, run_id))
        insert_frame(con, "margin_paths", _with_run(run.margins, run_id))
    return True
