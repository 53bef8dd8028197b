"""Named errors and warnings of the backtest library; every message says how to fix the problem."""

from __future__ import annotations


class BacktestError(Exception):
    """Base class of every error raised on purpose by :mod:`backtest`."""


class BookValidationError(BacktestError, ValueError):
    """A loan book column holds a bad value; the message names the column and the 1-based row.

    Parameters
    ----------
    column : str
        Offending column.
    row : int or None
        1-based row of the first offending value, ``None`` when the whole column is wrong.
    message : str
        What is wrong and how to fix it.
    """

    def __init__(self, column: str, row: int | None, message: str) -> None:
        self.column = column
        self.row = row
        self.reason = message
        where = f"column {column!r}" + (f", row {row}" if row is not None else "")
        super().__init__(f"{where}: {message}")


class PathValidationError(BacktestError, ValueError):
    """A price path (or a per-step input such as a threshold path) is malformed."""


class ImpactConfigError(BacktestError, ValueError):
    """An impact model was configured with an impossible parameter."""


class PolicyConfigError(BacktestError, ValueError):
    """A policy was configured with an impossible parameter."""


class UnknownPolicyError(BacktestError, KeyError):
    """A policy name that the registry does not know; the message lists the known names."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class ResultMismatchError(BacktestError, ValueError):
    """Two results cannot be compared because they ran on different books, paths or impacts."""


class CascadeDidNotSettleError(BacktestError, RuntimeError):
    """A step's cascade rounds did not reach a fixed point within the round limit."""
