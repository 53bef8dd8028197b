"""Checks for risk parameters that must be fractions (thresholds, LTVs, bonuses, factors).

Protocols publish the same parameter in several scales: Aave stores basis points (8250),
dashboards show percent (82.5), contracts of other protocols use multipliers (1.05 for a 5 %
bonus). cascade-lab stores fractions only (0.825, 0.05). :func:`check_fraction` rejects any
value that is not a fraction in ``[low, high]`` and says which scale it looks like and what to
give instead, e.g. ``looks like a percent; give 0.83`` — the one wording rule of
:mod:`backtest.fractions`, shared with the backtest library.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import polars as pl

from backtest.fractions import first_fraction_problem
from backtest.fractions import fraction_problem as _fraction_problem
from pipelines.errors import DataValidationError

__all__ = ["check_fraction", "fraction_problem"]


def _as_floats(values: Any) -> list[float | None]:
    """Turn a polars Series, numpy array or any iterable into a list of floats/None."""
    if isinstance(values, pl.Series):
        return [None if v is None else float(v) for v in values.cast(pl.Float64).to_list()]
    if isinstance(values, np.ndarray):
        return [float(v) for v in values.astype(float).ravel()]
    out: list[float | None] = []
    for value in values:
        out.append(None if value is None else float(value))
    return out


def fraction_problem(value: float | None, *, low: float = 0.0, high: float = 1.0) -> str | None:
    """Why ``value`` is not a fraction in ``[low, high]``, or ``None``.

    The wording is :func:`backtest.fractions.fraction_problem`'s (one rule for the library and
    the pipeline): ``(1, 2)`` → multiplier, ``[2, 100]`` → percent, ``(100, 10000]`` → basis
    points, each with the fraction to give.
    """
    return _fraction_problem(value, low=low, high=high)


def check_fraction(
    values: Iterable[float | None] | pl.Series | np.ndarray,
    *,
    file: str,
    column: str,
    row_numbers: Sequence[int] | None = None,
    low: float = 0.0,
    high: float = 1.0,
) -> None:
    """Raise when any value is not a fraction in ``[low, high]``.

    Catches the usual scale mistakes: percent (``83`` for ``0.83``), basis points (``8300``),
    multipliers (``1.05`` for a 5 % bonus), plus NaN, missing and negative values.

    Parameters
    ----------
    values : iterable of float, polars.Series or numpy.ndarray
        Values already converted to the fraction scale.
    file : str
        File (or source name) the values come from, for the error message.
    column : str
        Column (or parameter) name, for the error message.
    row_numbers : sequence of int, optional
        1-based data-row number of each value; defaults to ``1, 2, ...``.
    low, high : float
        Inclusive bounds; ``0`` and ``1`` by default.

    Raises
    ------
    DataValidationError
        On the first offending value; the message names the file, column and row, says which
        scale the value looks like and what to give instead, and counts further bad rows.
    """
    floats = _as_floats(values)
    if row_numbers is not None and len(row_numbers) != len(floats):
        raise ValueError(
            f"row_numbers has {len(row_numbers)} entries but there are {len(floats)} values"
        )
    found = first_fraction_problem(floats, low=low, high=high)
    if found is None:
        return
    index, problem, count = found
    row = int(row_numbers[index]) if row_numbers is not None else index + 1
    more = f" ({count - 1} more bad rows)" if count > 1 else ""
    raise DataValidationError(file, column, row, f"value {problem}{more}")
