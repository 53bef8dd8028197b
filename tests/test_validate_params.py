import math

import numpy as np
import polars as pl
import pytest

from pipelines.errors import DataValidationError
from pipelines.ingest.validate_params import check_fraction, fraction_problem


def test_fractions_pass():
    check_fraction([0.0, 0.5, 0.83, 1.0], file="book.csv", column="lt")
    check_fraction(pl.Series([0.05, 0.1]), file="book.csv", column="bonus")
    check_fraction(np.array([0.7, 0.9]), file="book.csv", column="ltv")
    check_fraction([], file="book.csv", column="lt")


def test_percent_is_rejected_with_the_fraction_to_give():
    with pytest.raises(DataValidationError) as info:
        check_fraction([0.8, 83], file="book.csv", column="liquidation_threshold")
    err = info.value
    assert (err.file, err.column, err.row) == ("book.csv", "liquidation_threshold", 2)
    assert "looks like a percent; give 0.83" in str(err)
    assert "book.csv" in str(err) and "liquidation_threshold" in str(err) and "row 2" in str(err)


def test_basis_points_are_rejected():
    with pytest.raises(DataValidationError, match="looks like basis points; give 0.825"):
        check_fraction([8250], file="tokens.csv", column="threshold")


def test_multiplier_bonus_is_rejected():
    with pytest.raises(DataValidationError, match=r"multiplier \(1 \+ x\); give 0.05"):
        check_fraction([1.05], file="p.csv", column="liquidation_bonus")


@pytest.mark.parametrize("bad", [float("nan"), None, -0.1, math.inf])
def test_nan_missing_negative_and_infinite_are_rejected(bad):
    with pytest.raises(DataValidationError, match="p.csv"):
        check_fraction([0.5, bad], file="p.csv", column="ltv")


def test_row_numbers_are_reported_and_extra_bad_rows_counted():
    with pytest.raises(DataValidationError) as info:
        check_fraction([0.5, 75, 80], file="f.csv", column="lt", row_numbers=[10, 11, 12])
    assert info.value.row == 11
    assert "1 more bad rows" in str(info.value)


def test_row_numbers_must_match_values():
    with pytest.raises(ValueError, match="row_numbers"):
        check_fraction([0.5], file="f.csv", column="lt", row_numbers=[1, 2])


def test_custom_bounds():
    check_fraction([0.3], file="f.csv", column="x", low=0.2, high=0.4)
    assert "outside" in fraction_problem(0.1, low=0.2, high=0.4)
    assert fraction_problem(1.5, high=2.0) is None
