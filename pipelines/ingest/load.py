"""Atomic per-source loads: replace everything one source contributed, in one transaction."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import duckdb
import polars as pl

from pipelines.catalog.registry import SourceEntry
from pipelines.errors import CascadeError
from pipelines.ingest.adapters.base import AdapterOutput
from pipelines.warehouse.connection import insert_frame, raw_table, source_tables, transaction


def load_source(
    con: duckdb.DuckDBPyConnection,
    entry: SourceEntry,
    output: AdapterOutput,
    *,
    sha256: str,
    adapter_version: str,
) -> int:
    """Replace everything ``entry`` contributed with ``output``, atomically.

    One transaction: delete the source's old rows from every raw table, insert the new frames,
    register the source and write its ``ingest_log`` row. On any error the database is left
    exactly as it was.

    Returns
    -------
    int
        Rows loaded.
    """
    known = set(source_tables(con))
    for name in output.tables:
        if raw_table(name) not in known:
            raise CascadeError(f"adapter {entry.adapter!r} produced unknown table {name!r}")
    rows_by_table: dict[str, int] = {}
    with transaction(con):
        # ingest_log is written in the same transaction as the rows, so it says exactly which
        # tables hold this source's rows; deleting only there keeps loads O(new rows).
        previous = con.execute(
            "SELECT rows_by_table FROM ingest_log WHERE source = ?", [entry.name]
        ).fetchone()
        if previous is not None:
            for name in sorted(json.loads(previous[0])):
                con.execute(f"DELETE FROM {raw_table(name)} WHERE source = ?", [entry.name])
        for name, frame in sorted(output.tables.items()):
            with_source = frame.with_columns(pl.lit(entry.name).alias("source"))
            rows_by_table[name] = insert_frame(con, raw_table(name), with_source)
        con.execute(
            "INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                entry.name,
                entry.file,
                entry.origin_repo,
                entry.commit,
                entry.url,
                entry.sha256,
                entry.adapter,
                entry.priority,
            ],
        )
        rules = [
            {"rule": r.rule, "rows": r.rows, "detail": r.detail, "dropped": r.dropped}
            for r in output.rules
        ]
        total = sum(rows_by_table.values())
        con.execute(
            "INSERT OR REPLACE INTO ingest_log VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                entry.name,
                entry.file,
                sha256,
                total,
                datetime.now(UTC),
                json.dumps(rules),
                json.dumps(rows_by_table),
                adapter_version,
            ],
        )
    return total


def loaded_versions(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, str]]:
    """``source → (sha256, adapter_version)`` of every source already loaded."""
    rows = con.execute("SELECT source, sha256, adapter_version FROM ingest_log").fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}
