"""Stamps: fingerprints of what a report or an export shows, and the manifest beside them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from pipelines.warehouse.connection import default_db_path

#: Fingerprint file written next to a report or an export.
STAMP_FILE = "manifest.json"

_ROOT = Path(__file__).resolve().parents[2]
_REPORT_CODE = (
    "pipelines/reporting/report.py",
    "pipelines/reporting/scoreboard_plot.py",
    "pipelines/reporting/forecast_report.py",
    "forecasting/plots.py",
    "pipelines/reporting/attribution_section.py",
    "pipelines/attribution/summary.py",
    "pipelines/attribution/policy_summary.py",
    "pipelines/attribution/printer.py",
)
_EXPORT_CODE = ("pipelines/warehouse/export.py",)


def resolve_db(db_path: str | Path | None) -> Path:
    """The warehouse path as an absolute path (``$CASCADE_DB`` or ``./cascade.duckdb``)."""
    return (Path(db_path) if db_path is not None else default_db_path()).resolve()


def default_report_dir(db_path: str | Path | None) -> Path:
    """``reports/`` next to the warehouse (``./reports`` for the default ``./cascade.duckdb``)."""
    return resolve_db(db_path).parent / "reports"


def _code_digest(files: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for rel in files:
        path = _ROOT / rel
        digest.update(rel.encode())
        digest.update(path.read_bytes() if path.exists() else b"")
    return digest.hexdigest()[:16]


def sources_digest(con: duckdb.DuckDBPyConnection) -> str:
    """16 hex digits over the loaded sources (``ingest_log``: source, sha256, adapter version)."""
    rows = con.execute(
        "SELECT string_agg(source || ':' || sha256 || ':' || coalesce(adapter_version, ''), "
        "',' ORDER BY source) FROM ingest_log"
    ).fetchall()[0][0]
    return hashlib.sha256((rows or "").encode()).hexdigest()[:16]


def code_digest(files: Sequence[str]) -> str:
    """16 hex digits over repository files (path and bytes; a missing file hashes empty)."""
    return _code_digest(files)


def warehouse_fingerprint(con: duckdb.DuckDBPyConnection, *, kind: str = "report") -> str:
    """Hash of what a report or an export shows: run ids, loaded sources and the drawing code.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Warehouse connection (read-only is enough).
    kind : {"report", "export"}
        Whose code version enters the hash.

    Returns
    -------
    str
        16 hex digits; equal fingerprints mean the output would be the same.
    """
    parts = [
        con.execute(f"SELECT string_agg(run_id, ',' ORDER BY run_id) FROM {table}").fetchall()[0][0]
        for table in ("forecast_runs", "backtest_runs")
    ]
    try:  # attribution runs (`cascade attribute`); absent in a warehouse older than the table
        parts.append(
            con.execute(
                "SELECT string_agg(run_id, ',' ORDER BY run_id) FROM market_runs"
            ).fetchall()[0][0]
        )
    except duckdb.CatalogException:
        parts.append(None)
    parts.append(
        con.execute(
            "SELECT string_agg(source || ':' || sha256 || ':' || coalesce(adapter_version, ''), "
            "',' ORDER BY source) FROM ingest_log"
        ).fetchall()[0][0]
    )
    parts.append(_code_digest(_REPORT_CODE if kind == "report" else _EXPORT_CODE))
    return hashlib.sha256("|".join(p or "" for p in parts).encode()).hexdigest()[:16]


def read_stamp(directory: Path) -> dict[str, Any]:
    """The manifest of a report or export directory (empty when missing or unreadable)."""
    try:
        return json.loads((Path(directory) / STAMP_FILE).read_text())
    except (OSError, ValueError):
        return {}


def write_stamp(directory: Path, fingerprint: str, **extra: Any) -> Path:
    """Write the manifest atomically (``fingerprint``, ``written_at`` and ``extra``)."""
    directory = Path(directory)
    body = {"fingerprint": fingerprint, "written_at": datetime.now(UTC).isoformat(), **extra}
    tmp = directory / f".{STAMP_FILE}.tmp"
    tmp.write_text(json.dumps(body, indent=2, sort_keys=True, default=str))
    tmp.replace(directory / STAMP_FILE)
    return directory / STAMP_FILE
