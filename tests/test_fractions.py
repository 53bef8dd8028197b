"""One fraction checker, one wording: backtest.fractions and every call site agree."""

from __future__ import annotations

import math

import numpy as np
import pytest

from backtest import Book, PolicyConfigError
from backtest.errors import BookValidationError, PathValidationError
from backtest.fractions import first_fraction_problem, fraction_problem
from backtest.policies.dynamic_ltv import DynamicLTV
from backtest.policies.instant import Instant
from pipelines.errors import DataValidationError
from pipelines.ingest.validate_params import check_fraction


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        (1.05, "is 1.05, which looks like a multiplier (1 + x); give 0.05"),
        (1.5, "is 1.5, which looks like a multiplier (1 + x); give 0.5"),
        (2.0, "is 2, which looks like a percent; give 0.02"),
        (83.0, "is 83, which looks like a percent; give 0.83"),
        (100.0, "is 100, which looks like a percent; give 1"),
        (8250.0, "is 8250, which looks like basis points; give 0.825"),
        (1e6, "is 1e+06, outside [0, 1]; give a fraction in that range"),
        (-0.1, "is negative (-0.1); a fraction must lie in [0, 1]"),
        (math.nan, "is missing or NaN"),
        (None, "is missing or NaN"),
        (math.inf, "is inf; give a finite fraction"),
    ],
)
def test_one_wording_rule(value, needle):
    assert fraction_problem(value) == needle or needle in str(fraction_problem(value))


def test_bounds_open_and_closed():
    assert fraction_problem(0.0) is None and fraction_problem(1.0) is None
    assert "outside (0, 1]" in str(fraction_problem(0.0, low_open=True))
    assert "outside [0, 1)" in str(fraction_problem(1.0, high_open=True))
    # a hint is only given when the fixed value is itself acceptable
    assert "outside [0, 0.4]" in str(fraction_problem(83.0, high=0.4))
    assert first_fraction_problem([0.5, 83, 1.05]) == (1, fraction_problem(83.0), 2)
    assert first_fraction_problem(np.array([0.1, 0.2])) is None


@pytest.mark.parametrize("value", [1.5, 83.0, 8300.0])
def test_every_call_site_gives_the_same_hint(value):
    """Book columns, policy parameters, threshold paths and pipeline columns: one message."""
    expected = fraction_problem(value, low_open=True)
    assert expected == fraction_problem(value)  # the hint does not depend on the bound kind
    with pytest.raises(BookValidationError) as book_err:
        Book(
            position_id=np.array([1, 2]),
            collateral=np.array([1.0, 1.0]),
            debt=np.array([1.0, 1.0]),
            liquidation_threshold=np.array([0.8, value]),
            bonus=np.array([0.05, 0.05]),
        )
    with pytest.raises(PolicyConfigError) as policy_err:
        Instant(close_factor=value)
    with pytest.raises(PathValidationError) as path_err:
        DynamicLTV(threshold_path=np.array([0.8, value]))
    with pytest.raises(DataValidationError) as data_err:
        check_fraction([0.8, value], file="f.csv", column="liquidation_threshold")
    for err in (book_err, policy_err, path_err, data_err):
        assert str(expected) in str(err.value), str(err.value)
    assert (book_err.value.column, book_err.value.row) == ("liquidation_threshold", 2)
    assert (data_err.value.column, data_err.value.row) == ("liquidation_threshold", 2)
