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
from pipelines.errors import CascadeError, WarehouseLockedError

SCHEMA_VERSION = 7
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
    "market_books",
    "validation_results",
    "maker_validation",
)
SCHEMA_DIR = DATA_DIR / "schema"


def default_db_path() -> Path:
    """``CASCADE_DB`` when set, else ``./cascade.duckdb``."""
    return Path(os.environ.get("CASCADE_DB", "cascade.duckdb"))


#: Settings of every connection the project opens: DuckDB never downloads an extension.
BASE_CONFIG: dict[str, str | bool] = {"autoinstall_known_extensions": False}

#: Settings of ``cascade sql`` (:func:`connect_locked`): no file system or network access at
#: all (no ``COPY … TO``, ``EXPORT``, ``ATTACH``, ``INSTALL``/``LOAD``, ``read_csv('…')``), no
#: extension auto-loading; :func:`connect` then sets ``lock_configuration`` so a query cannot
#: ``SET`` any of it back.
LOCKED_CONFIG: dict[str, str | bool] = {
    **BASE_CONFIG,
    "autoload_known_extensions": False,
    "enable_external_access": False,
}

_LOCK_WORDS = ("Conflicting lock", "Could not set lock", "lock on file")


def is_lock_error(exc: BaseException) -> bool:
    """Whether a DuckDB open error means another process holds the file's write lock."""
    return any(word in str(exc) for word in _LOCK_WORDS)


def _open_error(path: Path, exc: BaseException) -> CascadeError:
    """One line saying why ``path`` did not open, and what to do about it."""
    text = " ".join(str(exc).split())
    if is_lock_error(exc):
        return WarehouseLockedError(
            f"cannot open {str(path)!r}: another process is writing it (DuckDB allows one "
            "writer process at a time); wait for the other cascade command to finish"
        )
    if path.is_dir():
        return CascadeError(f"cannot open {str(path)!r}: it is a directory; give a database file")
    if path.exists() and not os.access(path, os.R_OK):
        return CascadeError(f"cannot open {str(path)!r}: permission denied; check its permissions")
    if not path.parent.exists():
        return CascadeError(
            f"cannot open {str(path)!r}: folder {str(path.parent)!r} does not exist"
        )
    damaged = ("database file", "Corrupt", "checksum", "Could not read enough bytes")
    if path.exists() and any(word in text for word in damaged):
        return CascadeError(
            f"cannot open {str(path)!r}: not a DuckDB warehouse, or a damaged one ({text}); "
            "give a warehouse written by `cascade ingest`, or a new path"
        )
    return CascadeError(f"cannot open {str(path)!r}: {text}")


def connect(
    db_path: Path | str | None = None, *, read_only: bool = False, locked: bool = False
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse; a writable connection applies the schema first.

    Every connection has extension auto-install off (:data:`BASE_CONFIG`).

    Parameters
    ----------
    db_path : path, optional
        Database file; defaults to :func:`default_db_path`.
    read_only : bool
        Open read-only (for ``cascade sql`` and reports). The file must exist.
    locked : bool
        Read-only with :data:`LOCKED_CONFIG`: the query cannot touch any file but the warehouse.
    """
    path = Path(db_path) if db_path is not None else default_db_path()
    read_only = read_only or locked
    if read_only and not path.exists():
        raise CascadeError(f"database {str(path)!r} does not exist; run `cascade ingest` first")
    if path.exists() and not path.is_dir():
        _check_header(path)
    config = dict(LOCKED_CONFIG if locked else BASE_CONFIG)
    try:
        con = duckdb.connect(str(path), read_only=read_only, config=config)
    except duckdb.Error as exc:
        raise _open_error(path, exc) from exc
    try:
        con.execute("SET TimeZone = 'UTC'")
        if locked:
            con.execute("SET lock_configuration = true")
        if not read_only:
            apply_schema(con)
    except duckdb.Error as exc:
        con.close()
        raise CascadeError(
            f"cannot prepare {str(path)!r}: {' '.join(str(exc).split())}; "
            "check that its folder is writable and the disk is not full"
        ) from exc
    except BaseException:
        con.close()
        raise
    return con


def _check_header(path: Path) -> None:
    """Refuse a file that is not a DuckDB database before DuckDB tries to guess what it is.

    DuckDB otherwise treats a SQLite (or other) file as a database of another kind and tries to
    load, or download, the extension that reads it.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError as exc:
        raise CascadeError(f"cannot open {str(path)!r}: {exc.strerror}") from exc
    if len(head) == 0:
        return  # an empty file: DuckDB initialises it
    if len(head) < 12 or head[8:12] != b"DUCK":
        raise CascadeError(
            f"cannot open {str(path)!r}: not a DuckDB warehouse (the file starts with "
            f"{head[:8]!r}); give a warehouse written by `cascade ingest`, or a new path"
        )


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
        _rollback_quietly(con)  # a failed rollback must not hide the error that caused it
        raise


def _rollback_quietly(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.rollback()
    except duckdb.Error:
        pass


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
        _rollback_quietly(con)
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


#: Rebuild the file when at least this share of its blocks is free (space left by deletes).
COMPACT_FREE_SHARE = 0.2


def free_share(db_path: Path | str) -> float:
    """Share of the database file's blocks that hold nothing (left by deleted or replaced rows)."""
    con = duckdb.connect(str(db_path), read_only=True, config=dict(BASE_CONFIG))
    try:
        return _free_share(con, current=True)
    finally:
        con.close()


def _free_share(con: duckdb.DuckDBPyConnection, *, current: bool = False) -> float:
    where = "database_name = current_database()" if current else "database_name = 'cascade_src'"
    total, free = con.execute(
        f"SELECT total_blocks, free_blocks FROM pragma_database_size() WHERE {where}"
    ).fetchone()
    return float(free) / float(total) if total else 0.0


def compact(db_path: Path | str, *, min_free_share: float = COMPACT_FREE_SHARE) -> bool:
    """Rebuild the warehouse into a fresh file when deletes left it bloated; ``True`` if rebuilt.

    DuckDB reuses but never returns the blocks of deleted rows, so replacing a source (``cascade
    ingest --force``, a re-load) grows the file. The rebuild is ``COPY FROM DATABASE`` into a
    temporary file next to it, then an atomic rename, all while holding the file's write lock:
    a kill at any point leaves the old file or the new one, never half of either, and no other
    writer can slip in between. When another process holds the lock, nothing happens.
    """
    path = Path(db_path)
    if not path.exists():
        return False
    tmp = path.with_name(f".{path.name}.compact.tmp")
    con = duckdb.connect(":memory:", config=dict(BASE_CONFIG))
    try:
        src, dst = (str(p).replace("'", "''") for p in (path, tmp))
        try:
            con.execute(f"ATTACH '{src}' AS cascade_src")  # read-write: holds the lock
        except duckdb.Error as exc:
            if is_lock_error(exc):
                return False
            raise
        if _free_share(con) < min_free_share:
            return False
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            leftover.unlink(missing_ok=True)
        con.execute(f"ATTACH '{dst}' AS cascade_dst")
        con.execute("COPY FROM DATABASE cascade_src TO cascade_dst")
        con.execute("DETACH cascade_dst")
        os.replace(tmp, path)
        return True
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        con.close()
