"""Checks for risk parameters that must be fractions (thresholds, LTVs, bonuses, factors).

Protocols publish the same parameter in several scales: Aave stores basis points (8250),
dashboards show percent (82.5), contracts of other protocols use multipliers (1.05 for a 5 %
bonus). cascade-lab stores fractions only (0.825, 0.05). :func:`check_fraction` rejects any
value that is not a fraction in ``[low, high]`` and says which scale it looks like and what to
give instead, e.g. ``looks like a percent; give 0.83``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import polars as pl

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


def _fmt(value: float) -> str:
    """Short, exact-looking decimal for messages (``0.83``, ``0.0525``)."""
    return f"{value:.6g}"


def fraction_problem(value: float | None, *, low: float = 0.0, high: float = 1.0) -> str | None:
    """Describe why ``value`` is not a fraction in ``[low, high]``, or return ``None``.

    Parameters
    ----------
    value : float or None
        The value to check.
    low, high : float
        Inclusive bounds of an acceptable fraction.

    Returns
    -------
    str or None
        A message that names the likely scale and the value to give instead, or ``None``
        when the value is acceptable.
    """
    if value is None or math.isnan(value):
        return "is missing or NaN; give a fraction such as 0.83"
    if math.isinf(value):
        return f"is {value}; give a finite fraction such as 0.83"
    if value < 0:
        return f"is negative ({_fmt(value)}); a fraction must lie in [{_fmt(low)}, {_fmt(high)}]"
    if low <= value <= high:
        return None
    if value > high:
        if 1.0 < value <= 2.0:
            return (
                f"is {_fmt(value)}, which looks like a multiplier (1 + x); give {_fmt(value - 1.0)}"
            )
        if 2.0 < value <= 100.0:
            return f"is {_fmt(value)}, which looks like a percent; give {_fmt(value / 100.0)}"
        if 100.0 < value <= 10_000.0:
            return f"is {_fmt(value)}, which looks like basis points; give {_fmt(value / 10_000.0)}"
    return f"is {_fmt(value)}, outside [{_fmt(low)}, {_fmt(high)}]; give a fraction"


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
    bad: list[tuple[int, str]] = []
    for index, value in enumerate(floats):
        problem = fraction_problem(value, low=low, high=high)
        if problem is not None:
            row = int(row_numbers[index]) if row_numbers is not None else index + 1
            bad.append((row, problem))
    if not bad:
        return
    row, problem = bad[0]
    more = f" ({len(bad) - 1} more bad rows)" if len(bad) > 1 else ""
    raise DataValidationError(file, column, row, f"value {problem}{more}")
