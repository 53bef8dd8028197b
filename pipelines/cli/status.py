"""``cascade status``: what the warehouse holds, the last pipeline run, the Prefect server.

The last ``cascade run`` of a warehouse (when it finished, how long each stage took) is kept in
the user's data directory, keyed by the warehouse's absolute path
(:func:`record_pipeline_run`), so the warehouse schema does not change.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def _runs_dir() -> Path:
    from pipelines.orchestration.local_server import server_dir

    return server_dir().parent / "runs"


def _run_file(db: Path | str) -> Path:
    key = hashlib.sha1(str(Path(db).resolve()).encode()).hexdigest()[:16]
    return _runs_dir() / f"{key}.json"


def record_pipeline_run(db: Path | str, seconds: float, stages: dict[str, float]) -> None:
    """Remember the last ``cascade run`` of ``db`` (best effort: never fails the run)."""
    path = _run_file(db)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(
                {
                    "db": str(Path(db).resolve()),
                    "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "seconds": round(seconds, 1),
                    "stages": stages,
                }
            )
        )
    except OSError:
        pass


def last_pipeline_run(db: Path | str) -> dict[str, Any] | None:
    """The recorded last ``cascade run`` of ``db``, or ``None``."""
    try:
        return json.loads(_run_file(db).read_text())
    except (OSError, ValueError):
        return None


_QUERIES = (
    ("sources loaded", "SELECT count(*), max(loaded_at)::VARCHAR FROM ingest_log"),
    ("price rows", "SELECT count(*), string_agg(DISTINCT asset, ', ' ORDER BY asset) FROM prices"),
    (
        "crash events",
        "SELECT count(*), string_agg(window_label, ' ' ORDER BY window_label) FROM events",
    ),
    ("forecast runs", "SELECT count(*), max(created_at)::VARCHAR FROM forecast_runs"),
    ("backtest runs", "SELECT count(*), max(created_at)::VARCHAR FROM backtest_runs"),
)


def warehouse_status(db: Path | str) -> str:
    """A few lines: counts of what ``db`` holds, the last pipeline run, the Prefect server."""
    from pipelines.orchestration.local_server import server_status
    from pipelines.warehouse.connection import connect

    lines = [f"warehouse {Path(db).resolve()} ({Path(db).stat().st_size / 1e6:,.1f} MB)"]
    con = connect(db, read_only=True)
    try:
        for label, sql in _QUERIES:
            try:
                count, detail = con.execute(sql).fetchone()
            except Exception as exc:  # noqa: BLE001 - an older schema lacks a table
                lines.append(f"  {label:<16} - ({type(exc).__name__})")
                continue
            lines.append(f"  {label:<16} {count:>10,}   {detail or ''}".rstrip())
    finally:
        con.close()
    last = last_pipeline_run(db)
    if last is None:
        lines.append("  last cascade run  none recorded on this machine")
    else:
        stages = ", ".join(f"{k} {v:.1f} s" for k, v in last.get("stages", {}).items())
        lines.append(
            f"  last cascade run  {last['finished_at']} in {last['seconds']:.1f} s ({stages})"
        )
    state, healthy = server_status()
    if state is None:
        lines.append("prefect server    none yet (started on the first flow command)")
    else:
        lines.append(
            f"prefect server    {state.api_url} {'running' if healthy else 'not answering'}"
        )
    return "\n".join(lines)
