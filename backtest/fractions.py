"""The one check for parameters that must be fractions (thresholds, bonuses, factors, shares).

Protocols publish the same parameter in several scales: Aave stores basis points (8250),
dashboards show percent (82.5), contracts store markups as multipliers (Aave's bonus 1.05,
Maker's ``chop`` 1.13). cascade-lab takes fractions only (0.825, 0.05). Every checker of the
library and of the pipeline (:mod:`pipelines.ingest.validate_params`) words its problem with
:func:`fraction_problem`, so one value gets one hint everywhere.

Wording rule for a value above the allowed range, decided by magnitude alone:

========================  =================================================  ============
value                     message                                            fix
========================  =================================================  ============
``1 < v < 2``             ``is 1.05, which looks like a multiplier (1 + x)``  ``v - 1``
``2 <= v <= 100``         ``is 83, which looks like a percent``              ``v / 100``
``100 < v <= 10 000``     ``is 8250, which looks like basis points``         ``v / 10000``
anything else             ``is 1e+06, outside [0, 1]``                       a fraction
========================  =================================================  ============

Values in ``(1, 2)`` are read as multipliers because the fractions that protocols publish in
that band are markups (bonus, penalty) written as ``1 + x``; no cascade-lab fraction is
plausibly meant as a percent below 2 %. A fix hint is only given when the fixed value itself
lies in the allowed range. Missing/NaN, infinite and negative values get their own messages.
This module is pure (numpy only): the pipeline wraps it with file/column/row context.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

__all__ = ["first_fraction_problem", "fraction_problem", "format_value"]


def format_value(value: float) -> str:
    """Short, exact-looking decimal for messages (``0.83``, ``0.0525``, ``8250``)."""
    return f"{value:.6g}"


def _inside(value: float, low: float, high: float, low_open: bool, high_open: bool) -> bool:
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    return above and below


def _interval(low: float, high: float, low_open: bool, high_open: bool) -> str:
    return (
        f"{'(' if low_open else '['}{format_value(low)}, "
        f"{format_value(high)}{')' if high_open else ']'}"
    )


def fraction_problem(
    value: float | None,
    *,
    low: float = 0.0,
    high: float = 1.0,
    low_open: bool = False,
    high_open: bool = False,
) -> str | None:
    """Describe why ``value`` is not an acceptable fraction, or return ``None``.

    Parameters
    ----------
    value : float or None
        The value to check.
    low, high : float
        Bounds of an acceptable fraction (``[0, 1]`` by default).
    low_open, high_open : bool
        Exclude the lower / upper bound (e.g. a threshold in ``(0, 1]``).

    Returns
    -------
    str or None
        ``"is 83, which looks like a percent; give 0.83"`` style text (see the module's
        wording rule), or ``None`` when the value is acceptable.
    """
    if value is None or math.isnan(value := float(value)):
        return "is missing or NaN; give a fraction such as 0.83"
    if math.isinf(value):
        return f"is {value}; give a finite fraction such as 0.83"
    if _inside(value, low, high, low_open, high_open):
        return None
    interval = _interval(low, high, low_open, high_open)
    if value < 0:
        return f"is negative ({format_value(value)}); a fraction must lie in {interval}"
    if value > high:
        if 1.0 < value < 2.0:
            scale, fixed = "a multiplier (1 + x)", value - 1.0
        elif 2.0 <= value <= 100.0:
            scale, fixed = "a percent", value / 100.0
        elif 100.0 < value <= 10_000.0:
            scale, fixed = "basis points", value / 10_000.0
        else:
            scale, fixed = "", math.nan
        if scale and _inside(fixed, low, high, low_open, high_open):
            return f"is {format_value(value)}, which looks like {scale}; give {format_value(fixed)}"
    return f"is {format_value(value)}, outside {interval}; give a fraction in that range"


def first_fraction_problem(
    values: Iterable[float | None] | np.ndarray,
    *,
    low: float = 0.0,
    high: float = 1.0,
    low_open: bool = False,
    high_open: bool = False,
) -> tuple[int, str, int] | None:
    """The first unacceptable value of a column: ``(0-based index, problem, number of bad)``.

    ``None`` when every value passes :func:`fraction_problem` with the same bounds.
    """
    if isinstance(values, np.ndarray):
        arr = values.astype(np.float64, copy=False).ravel()
    else:
        arr = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    above = arr > low if low_open else arr >= low
    below = arr < high if high_open else arr <= high
    bad = np.flatnonzero(~(above & below))  # NaN compares False: bad
    if bad.size == 0:
        return None
    index = int(bad[0])
    problem = fraction_problem(
        float(arr[index]), low=low, high=high, low_open=low_open, high_open=high_open
    )
    return index, str(problem), int(bad.size)
