"""Named errors of cascade-lab's data pipeline; every message says how to fix the problem."""

from __future__ import annotations


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


class SourceIntegrityError(CascadeError):
    """A registered source file is missing or its sha256 does not match the registry."""


class UnknownNameError(CascadeError, KeyError):
    """An asset, event, model, policy or source name that cascade-lab does not know."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""
