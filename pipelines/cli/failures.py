"""The CLI's one error boundary: which failures are the user's to fix, and the crash log.

:func:`describe_failure` turns an expected failure — a :class:`~pipelines.errors.CascadeError`
or a library error, I/O (disk full, permission denied, read-only file system, missing file),
DuckDB I/O or fatal errors, the write lock held by another process, out of memory — into one
line that says what to do; :func:`main <pipelines.cli.main.main>` prints it and exits 2.
Anything else is a bug: :func:`write_crash_log` saves the full traceback to a file and the CLI
prints one line with its path (exit 1); ``--debug`` (or ``CASCADE_DEBUG=1``) prints tracebacks.
"""

from __future__ import annotations

import errno
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

from pipelines.errors import as_cascade_error

_OS_HINTS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.ENOENT: "no such file or directory",
    errno.EISDIR: "is a directory",
    errno.ENOTDIR: "not a directory",
    errno.EIO: "input/output error",
}

_DUCKDB_HINTS = (
    ("No space left on device", "disk full; free some space and run the command again"),
    ("Permission denied", "permission denied; check the permissions of the file and its folder"),
    ("Read-only file system", "read-only file system; give a --db on a writable disk"),
)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__
    return seen


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _os_message(exc: OSError) -> str:
    what = _OS_HINTS.get(exc.errno or -1, exc.strerror or type(exc).__name__)
    where = f": {exc.filename}" if exc.filename else ""
    fix = {
        errno.ENOSPC: "free some space and run the command again",
        errno.EDQUOT: "free some space and run the command again",
        errno.EACCES: "check the permissions, or choose a folder you can write",
        errno.EPERM: "check the permissions, or choose a folder you can write",
        errno.EROFS: "choose a folder on a writable disk",
    }.get(exc.errno or -1, "check the path and run the command again")
    return f"{what}{where}; {fix}"


def _duckdb_message(exc: BaseException) -> str | None:
    duckdb = sys.modules.get("duckdb")
    if duckdb is None or not isinstance(exc, duckdb.Error):
        return None
    text = _one_line(exc)
    for needle, hint in _DUCKDB_HINTS:
        if needle in text:
            return f"{hint} (DuckDB: {text})"
    if any(word in text for word in ("Conflicting lock", "Could not set lock")):
        return (
            "the warehouse is being written by another process (DuckDB allows one writer at a "
            f"time); wait for the other cascade command to finish (DuckDB: {text})"
        )
    if isinstance(exc, duckdb.FatalException | duckdb.IOException):
        return (
            f"the database stopped on an I/O failure: {text}; the warehouse keeps its last "
            "completed state — fix the cause (disk space, permissions) and run the command again"
        )
    if isinstance(exc, duckdb.OutOfMemoryException):
        return f"out of memory in DuckDB: {text}; close other programs or use a smaller selection"
    return None


def describe_failure(exc: BaseException) -> str | None:
    """One line for an expected failure (the user can fix it), ``None`` for a bug."""
    error = as_cascade_error(exc)
    if error is not None:
        return str(error)
    for link in _chain(exc):
        message = _duckdb_message(link)
        if message is not None:
            return message
        if isinstance(link, OSError) and link.errno in _OS_HINTS:
            return _os_message(link)
        if isinstance(link, MemoryError):
            return "out of memory; close other programs or use a smaller selection"
    return None


def crash_log_dir() -> Path:
    """``$CASCADE_LOG_DIR``, else ``$XDG_CACHE_HOME/cascade-lab/crashes`` (``~/.cache/…``)."""
    if os.environ.get("CASCADE_LOG_DIR"):
        return Path(os.environ["CASCADE_LOG_DIR"])
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "cascade-lab" / "crashes"


def write_crash_log(exc: BaseException, argv: list[str]) -> Path | None:
    """Write the full traceback of ``exc`` to a new file; its path (``None`` if nowhere works)."""
    text = f"cascade {' '.join(argv)}\n" + "".join(
        traceback.format_exception(type(exc), exc, exc.__traceback__)
    )
    name = f"crash-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
    for folder in (crash_log_dir(), Path(tempfile.gettempdir()) / "cascade-lab"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_text(text)
            return path
        except OSError:
            continue
    return None


class _ExpectedErrorFilter:
    """A logging filter that drops the traceback (not the message) of an expected failure."""

    def filter(self, record: object) -> bool:
        exc_info = getattr(record, "exc_info", None)
        if exc_info and exc_info[1] is not None and describe_failure(exc_info[1]) is not None:
            record.exc_info = None  # type: ignore[attr-defined]
            record.exc_text = None  # type: ignore[attr-defined]
        return True


#: Loggers on which Prefect's flow and task engines report exceptions.
PREFECT_RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs", "prefect.engine")


def quiet_expected_tracebacks() -> None:
    """Keep Prefect from printing tracebacks of expected failures (the CLI prints one line).

    Installed on the loggers by name, before Prefect configures them, without importing Prefect.
    """
    import logging

    for name in PREFECT_RUN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _ExpectedErrorFilter) for f in logger.filters):
            logger.addFilter(_ExpectedErrorFilter())
