"""``cascade sql``: one query on a locked, read-only connection, as a frame every format can print.

The connection (:func:`pipelines.warehouse.connection.connect` with ``locked=True``) has no
file-system or network access at all: ``COPY … TO``, ``EXPORT DATABASE``, ``ATTACH``,
``INSTALL``/``LOAD`` and reading other files (``read_csv('…')``) fail, and the configuration is
locked so the query cannot switch this back on. Only the warehouse itself can be read.

Columns whose type polars or the chosen format cannot hold (``INTERVAL``, ``UNION``, ``MAP``,
``BLOB``, ``BIT``; every nested type for CSV) are cast to text by DuckDB first.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from pipelines.errors import CascadeError
from pipelines.warehouse.connection import connect

#: Types (by name prefix) that are always printed as text.
_AS_TEXT = ("INTERVAL", "UNION", "MAP", "BLOB", "BIT", "VARINT", "BIGNUM")
#: Nested types: kept for table/JSON output, text for CSV.
_NESTED = ("STRUCT", "LIST", "ARRAY")


def _needs_text(type_name: str, fmt: str) -> bool:
    upper = type_name.upper()
    if any(word in upper for word in _AS_TEXT):
        return True
    nested = upper.startswith(_NESTED) or upper.endswith("]")
    return fmt == "csv" and nested


def run_query(db_path: Path | str | None, query: str, fmt: str = "table") -> pl.DataFrame | None:
    """Run ``query`` on the locked read-only warehouse; ``None`` when it returns no rows set.

    Raises
    ------
    CascadeError
        The SQL failed (syntax, unknown table, a forbidden statement), with DuckDB's message.
    """
    con = connect(db_path, locked=True)
    try:
        try:
            rel = con.sql(query)
            if rel is None:
                return None
            types = [str(t) for t in rel.types]
            if any(_needs_text(t, fmt) for t in types):
                cols = [
                    f"#{i}::VARCHAR AS {_quote(name)}"
                    if _needs_text(t, fmt)
                    else f"#{i} AS {_quote(name)}"
                    for i, (name, t) in enumerate(zip(rel.columns, types), start=1)
                ]
                rel = rel.project(", ".join(cols))
            return rel.pl()
        except duckdb.Error as exc:
            message = " ".join(str(exc).split())
            if "disabled" in message or "locked" in message:
                message += " (`cascade sql` is read-only: it reads the warehouse and nothing else)"
            raise CascadeError(f"SQL error: {message}") from exc
    finally:
        con.close()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
