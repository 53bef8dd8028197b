"""``cascade export``: every public table and view as one Parquet (or CSV) file, read-only.

DuckDB lets one process write a database file, and while it does no other process can open it,
not even read-only. An export taken between runs lets notebooks and other tools (polars,
pandas, Spark, a BI tool) read the results at any time, including while the next run writes.
Each file is written under a temporary name and renamed into place, so a reader never sees a
half-written file; ``manifest.json`` lists the files, their row counts and the warehouse
fingerprint the export was taken from.

:func:`open_results` gives notebooks one SQL connection whichever way the data comes: the
export (``CASCADE_EXPORT``: one view per Parquet file in an in-memory DuckDB) or the warehouse
(``CASCADE_DB``, read-only).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from pathlib import Path

import duckdb

from pipelines.catalog.names import safe_join
from pipelines.errors import CascadeError, UnknownNameError
from pipelines.warehouse.connection import BASE_CONFIG, connect
from pipelines.warehouse.stamps import read_stamp, warehouse_fingerprint, write_stamp

__all__ = [
    "FORMATS",
    "RESULT_NAMES",
    "export_warehouse",
    "open_results",
    "public_names",
]

FORMATS = ("parquet", "csv")
#: The results tables and views (the rest of :func:`public_names` are the core data views).
RESULT_NAMES = (
    "forecast_runs",
    "forecasts",
    "realized_vol",
    "forecast_scores",
    "margin_paths",
    "forecast_vs_realized",
    "backtest_runs",
    "backtest_metrics",
    "backtest_steps",
    "backtest_current",
    "backtest_results",
    "policy_scoreboard",
    "avoided_cascades",
    "forecast_value",
    "backtest_intervals",
    "policy_intervals",
)
_PRIVATE = ("schema_version",)
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def public_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every table and view a user should query: results first, then the core views.

    ``raw_*`` tables are left out (their public views are exported instead), as is the schema
    bookkeeping.
    """
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
        "ORDER BY table_name"
    ).fetchall()
    names = [r[0] for r in rows if not r[0].startswith("raw_") and r[0] not in _PRIVATE]
    results = [n for n in RESULT_NAMES if n in names]
    return results + [n for n in names if n not in results]


def _select(names: Sequence[str] | None, available: list[str]) -> list[str]:
    if not names:
        return available
    unknown = sorted(set(names) - set(available))
    if unknown:
        raise UnknownNameError(
            f"no table or view named {', '.join(unknown)}; known: {', '.join(available)}"
        )
    return [n for n in available if n in set(names)]


def _select_list(con: duckdb.DuckDBPyConnection, name: str) -> str:
    """``*`` with JSON columns cast to text (Parquet readers see them as strings, not bytes)."""
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' "
        "AND table_name = ? AND data_type = 'JSON' ORDER BY ordinal_position",
        [name],
    ).fetchall()
    if not rows:
        return "*"
    cols = [f'"{r[0]}"' for r in rows]
    return f"* REPLACE ({', '.join(f'{c}::VARCHAR AS {c}' for c in cols)})"


def _copy(con: duckdb.DuckDBPyConnection, name: str, target: Path, fmt: str) -> int:
    """COPY one table/view to ``target`` via a temporary file; returns its row count."""
    tmp = target.with_name(f".{target.name}.tmp")
    options = "FORMAT parquet, COMPRESSION zstd" if fmt == "parquet" else "FORMAT csv, HEADER"
    quoted = str(tmp).replace("'", "''")
    con.execute(f"COPY (SELECT {_select_list(con, name)} FROM {name}) TO '{quoted}' ({options})")
    tmp.replace(target)
    return int(con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0])


def export_warehouse(
    db_path: str | Path | None,
    out_dir: str | Path,
    *,
    fmt: str = "parquet",
    tables: Sequence[str] | None = None,
    force: bool = True,
) -> list[Path]:
    """Write every public table and view (or ``tables``) to ``out_dir``, one file each.

    Parameters
    ----------
    db_path : path, optional
        Warehouse (opened read-only; default ``$CASCADE_DB`` or ``./cascade.duckdb``).
    out_dir : path
        Output directory (created). Files are ``<name>.parquet`` (or ``.csv``) plus
        ``manifest.json``.
    fmt : {"parquet", "csv"}
        File format.
    tables : sequence of str, optional
        Only these tables/views.
    force : bool
        Write even when ``manifest.json`` says the export is of the same warehouse state.

    Returns
    -------
    list of Path
        The data files of the export (unchanged files too when skipped).

    Raises
    ------
    CascadeError
        Unknown format or table names, or a database another process is writing.
    """
    if fmt not in FORMATS:
        raise UnknownNameError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
    out = Path(out_dir)
    con = connect(db_path, read_only=True)
    con.execute("SET enable_progress_bar = false")
    try:
        names = _select(tables, public_names(con))
        fingerprint = warehouse_fingerprint(con, kind="export")
        files = [safe_join(out, f"{name}.{fmt}") for name in names]
        stamp = read_stamp(out)
        if (
            not force
            and stamp.get("fingerprint") == fingerprint
            and stamp.get("format") == fmt
            and sorted(stamp.get("rows") or {}) == sorted(names)
            and all(f.exists() for f in files)
        ):
            return files
        out.mkdir(parents=True, exist_ok=True)
        rows: dict[str, int] = {}
        start = time.perf_counter()
        for name, target in zip(names, files):
            if not _NAME.match(name):
                raise CascadeError(f"refusing to export oddly named table {name!r}")
            rows[name] = _copy(con, name, target, fmt)
        write_stamp(
            out,
            fingerprint,
            format=fmt,
            database=str(Path(db_path).resolve()) if db_path else None,
            rows=rows,
            seconds=round(time.perf_counter() - start, 2),
        )
    finally:
        con.close()
    return files


def open_results(
    db_path: str | Path | None = None, export_dir: str | Path | None = None
) -> duckdb.DuckDBPyConnection:
    """A read-only SQL connection to the results, from an export or from the warehouse.

    Parameters
    ----------
    db_path : path, optional
        Warehouse; default ``$CASCADE_DB``.
    export_dir : path, optional
        Directory written by :func:`export_warehouse`; default ``$CASCADE_EXPORT``. Takes
        precedence over the warehouse: every ``<name>.parquet`` becomes a view ``<name>`` of an
        in-memory database.

    Returns
    -------
    duckdb.DuckDBPyConnection
        Query it with the same SQL either way (``con.sql("SELECT …").pl()``).

    Raises
    ------
    CascadeError
        When neither is given nor set, or the export directory holds no Parquet file.
    """
    export_dir = export_dir or os.environ.get("CASCADE_EXPORT") or None
    if export_dir:
        files = sorted(Path(export_dir).glob("*.parquet"))
        if not files:
            raise CascadeError(f"no .parquet files in {export_dir}; run `cascade export` first")
        con = duckdb.connect(config=dict(BASE_CONFIG))
        con.execute("SET TimeZone = 'UTC'")
        for file in files:
            if _NAME.match(file.stem):
                quoted = str(file).replace("'", "''")
                con.execute(f"CREATE VIEW {file.stem} AS SELECT * FROM read_parquet('{quoted}')")
        return con
    db_path = db_path or os.environ.get("CASCADE_DB")
    if not db_path:
        raise CascadeError("set CASCADE_EXPORT (a `cascade export` directory) or CASCADE_DB")
    return connect(db_path, read_only=True)
