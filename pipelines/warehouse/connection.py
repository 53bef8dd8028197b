"""The DuckDB warehouse: connections, the versioned schema, and atomic per-source loads."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from pipelines.catalog.registry import DATA_DIR, load_events
from pipelines.errors import CascadeError

SCHEMA_VERSION = 4
# Results are derived data: a schema upgrade drops and recreates them (re-run forecast/backtest);
# raw data is never dropped.
_DERIVED_VIEWS = (
    "policy_intervals",
    "avoided_cascades",
    "policy_scoreboard",
    "forecast_value",
    "backtest_results",
    "forecast_vs_realized",
)
_DERIVED_TABLES = (
    "backtest_intervals",
    "backtest_current",
    "backtest_steps",
    "backtest_metrics",
    "backtest_runs",
    "forecast_scores",
    "margin_paths",
    "realized_vol",
    "forecasts",
    "forecast_runs",
)
SCHEMA_DIR = DATA_DIR / "schema"


def default_db_path() -> Path:
    """``CASCADE_DB`` when set, else ``./cascade.duckdb``."""
    return Path(os.environ.get("CASCADE_DB", "cascade.duckdb"))


def connect(
    db_path: Path | str | None = None, *, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse; a writable connection applies the schema first.

    Parameters
    ----------
    db_path : path, optional
        Database file; defaults to :func:`default_db_path`.
    read_only : bool
        Open read-only (for ``cascade sql`` and reports). The file must exist.
    """
    path = Path(db_path) if db_path is not None else default_db_path()
    if read_only and not path.exists():
        raise CascadeError(f"database {str(path)!r} does not exist; run `cascade ingest` first")
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        raise CascadeError(
            f"cannot open {str(path)!r}: {exc}. DuckDB allows one writer process at a time; "
            "wait for the other cascade command to finish or use `cascade export`"
        ) from exc
    con.execute("SET TimeZone = 'UTC'")
    if not read_only:
        apply_schema(con)
    return con


def apply_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create every table and view of ``data/schema/*.sql`` and record the schema version.

    Raises
    ------
    CascadeError
        When the database was written by a newer schema version than this code knows.
    """
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version "
        "(version INTEGER NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    )
    stored = con.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    if stored is not None and stored > SCHEMA_VERSION:
        raise CascadeError(
            f"database schema version {stored} is newer than this cascade-lab ({SCHEMA_VERSION}); "
            "upgrade cascade-lab or use a fresh --db"
        )
    con.begin()
    try:
        if stored is not None and stored < SCHEMA_VERSION:
            for view in _DERIVED_VIEWS:
                con.execute(f"DROP VIEW IF EXISTS {view}")
            for table in _DERIVED_TABLES:
                con.execute(f"DROP TABLE IF EXISTS {table}")
        for sql_file in sorted(SCHEMA_DIR.glob("*.sql")):
            con.execute(sql_file.read_text())
        if stored != SCHEMA_VERSION:
            con.execute(
                "INSERT INTO schema_version VALUES (?, ?)", [SCHEMA_VERSION, datetime.now(UTC)]
            )
        _sync_events(con)
        con.commit()
    except Exception:
        con.rollback()
        raise


def _sync_events(con: duckdb.DuckDBPyConnection) -> None:
    rows = [
        (e.event_id, e.window, e.name, e.start_ts, e.end_ts, e.description) for e in load_events()
    ]
    con.execute("DELETE FROM events")
    con.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)", rows)


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Run a block in one transaction: commit on success, roll back on any error."""
    con.begin()
    try:
        yield con
    except BaseException:
        con.rollback()
        raise
    con.commit()


def raw_table(public_name: str) -> str:
    """Warehouse table behind a public table name (``prices`` → ``raw_prices``)."""
    return f"raw_{public_name}"


def insert_frame(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> int:
    """Insert ``frame`` into ``table`` by column name; returns the number of rows inserted."""
    if frame.height == 0:
        return 0
    # Plain (non-view) Arrow strings scan about 4x faster into DuckDB than polars' default.
    _cascade_frame = frame.to_arrow(compat_level=pl.CompatLevel.oldest())  # noqa: F841
    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _cascade_frame")
    return frame.height


def source_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every raw table that carries a ``source`` column."""
    rows = con.execute(
        "SELECT table_name FROM duckdb_columns() WHERE column_name = 'source' "
        "AND starts_with(table_name, 'raw_') AND schema_name = 'main' ORDER BY table_name"
    ).fetchall()
    return [r[0] for r in rows]
