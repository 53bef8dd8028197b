"""Named errors of cascade-lab's data pipeline; every message says how to fix the problem.

One root: :class:`CascadeError`. The command line maps every ``CascadeError`` to one line
``error: ...`` and exit code 2, and :func:`as_cascade_error` brings the libraries' own roots
(:class:`backtest.errors.BacktestError`, :class:`forecasting.errors.ForecastingError`) under it,
keeping their data fields (``file``, ``column``, ``row``). This module imports neither library:
an exception can only be a library error when the library's ``errors`` module is loaded.
"""

from __future__ import annotations

import sys

#: (module, class) of the libraries' error roots; see :func:`as_cascade_error`.
LIBRARY_ERROR_ROOTS: tuple[tuple[str, str], ...] = (
    ("backtest.errors", "BacktestError"),
    ("forecasting.errors", "ForecastingError"),
)


class CascadeError(Exception):
    """Base class of every error raised on purpose by cascade-lab."""


class DataValidationError(CascadeError, ValueError):
    """Bad input data: names the file, the column and the row.

    Parameters
    ----------
    file : str
        File (or registry source name) that holds the bad value.
    column : str or None
        Offending column, ``None`` when the problem is the whole row or file.
    row : int or None
        1-based position of the offending row.
    message : str
        What is wrong and how to fix it.
    row_kind : str
        What ``row`` counts: ``"data row"`` (1-based, header excluded) or
        ``"file line"`` (1-based line of the file, header included).
    """

    def __init__(
        self,
        file: str,
        column: str | None,
        row: int | None,
        message: str,
        *,
        row_kind: str = "data row",
    ) -> None:
        self.file = str(file)
        self.column = column
        self.row = row
        self.row_kind = row_kind
        self.reason = message
        where = [f"file {self.file!r}"]
        if column is not None:
            where.append(f"column {column!r}")
        if row is not None:
            where.append(f"{row_kind} {row}")
        super().__init__(f"{', '.join(where)}: {message}")


class MissingFileError(DataValidationError, FileNotFoundError):
    """A user's file does not exist (a :class:`DataValidationError` and a ``FileNotFoundError``)."""


class ParameterError(CascadeError, ValueError):
    """A bad value of a named parameter; the CLI shows the parameter as its flag.

    Parameters
    ----------
    parameter : str
        Python name of the parameter (``bar_seconds``); the CLI renames it ``--bar-seconds``.
    message : str
        What is wrong, e.g. ``"must be positive, got -5"``.
    """

    def __init__(self, parameter: str, message: str) -> None:
        self.parameter = parameter
        self.reason = message
        super().__init__(f"{parameter} {message}")


class LibraryError(CascadeError):
    """A :mod:`backtest` or :mod:`forecasting` error brought under :class:`CascadeError`.

    ``file``, ``column`` and ``row`` are copied from the library error when it has them
    (:class:`backtest.errors.BookValidationError` has ``column`` and ``row``); ``cause`` is the
    original exception.
    """

    def __init__(self, cause: BaseException) -> None:
        self.cause = cause
        self.file: str | None = getattr(cause, "file", None)
        self.column: str | None = getattr(cause, "column", None)
        self.row: int | None = getattr(cause, "row", None)
        super().__init__(str(cause))


def library_error_roots() -> tuple[type[BaseException], ...]:
    """The error roots of the libraries loaded in this process."""
    roots = []
    for module, name in LIBRARY_ERROR_ROOTS:
        loaded = sys.modules.get(module)
        if loaded is not None:
            roots.append(getattr(loaded, name))
    return tuple(roots)


def as_cascade_error(exc: BaseException) -> CascadeError | None:
    """``exc`` as a :class:`CascadeError` (itself, or a :class:`LibraryError`), else ``None``.

    ``None`` means a bug, not a user error: the CLI lets it propagate with its traceback.
    """
    if isinstance(exc, CascadeError):
        return exc
    roots = library_error_roots()
    if roots and isinstance(exc, roots):
        return LibraryError(exc)
    return None


class WarehouseLockedError(CascadeError):
    """Another process holds the warehouse's write lock (the only error with the lock hint)."""


class InvalidNameError(CascadeError, ValueError):
    """An asset, venue, market or source name outside the allowed character set."""


class UnsafePathError(CascadeError, ValueError):
    """An output path built from a name would leave its output directory."""


class SourceIntegrityError(CascadeError):
    """A registered source file is missing or its sha256 does not match the registry."""


class IngestFailedError(CascadeError):
    """Some sources of an ingest failed; the message names every one of them."""


class UnknownNameError(CascadeError, KeyError):
    """An asset, event, model, policy or source name that cascade-lab does not know."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""
