"""Book construction and validation, synthetic books, rescaling, price paths."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from backtest import (
    Book,
    BookValidationError,
    PathValidationError,
    PricePath,
    rescale_book,
    synthetic_book,
    synthetic_crash_path,
)


def _frame(**over):
    base = {
        "position_id": [1, 2, 3],
        "collateral": [1.0, 2.0, 3.0],
        "debt": [50.0, 60.0, 70.0],
        "liquidation_threshold": [0.8, 0.83, 0.83],
        "bonus": [0.05, 0.05, 0.05],
    }
    base.update(over)
    return pl.DataFrame(base)


def test_from_frame_roundtrip():
    book = Book.from_frame(_frame(), price=100.0)
    assert len(book) == 3
    assert book.price == 100.0
    assert book.to_frame().equals(_frame().with_columns(pl.col("collateral").cast(pl.Float64)))
    assert not book.debt.flags.writeable
    np.testing.assert_allclose(book.health_factor(100.0), [1.6, 100 * 2 * 0.83 / 60, 3 * 83 / 70])
    np.testing.assert_allclose(book.liquidation_prices(), [62.5, 60 / (2 * 0.83), 70 / (3 * 0.83)])


def test_percent_threshold_names_column_and_row():
    with pytest.raises(BookValidationError) as exc:
        Book.from_frame(_frame(liquidation_threshold=[0.8, 83.0, 0.83]))
    msg = str(exc.value)
    assert isinstance(exc.value, ValueError)
    assert "liquidation_threshold" in msg and "row 2" in msg
    assert "looks like a percent; give 0.83" in msg
    assert exc.value.column == "liquidation_threshold" and exc.value.row == 2


def test_bonus_hints():
    with pytest.raises(BookValidationError, match="looks like a percent; give 0.05"):
        Book.from_frame(_frame(bonus=[0.05, 0.05, 5.0]))
    with pytest.raises(BookValidationError, match=r"multiplier \(1 \+ x\); give 0.05"):
        Book.from_frame(_frame(bonus=[1.05, 0.05, 0.05]))
    with pytest.raises(BookValidationError, match="basis points; give 0.83"):
        Book.from_frame(_frame(liquidation_threshold=[8300.0, 0.8, 0.8]))


@pytest.mark.parametrize(
    ("column", "values", "needle"),
    [
        ("debt", [50.0, float("nan"), 70.0], "row 2"),
        ("collateral", [1.0, 2.0, -3.0], "row 3: -3.0 is negative"),
        ("bonus", [-0.01, 0.05, 0.05], "row 1"),
        ("liquidation_threshold", [0.8, 0.0, 0.8], "row 2"),
        ("position_id", [1, 2, 1], "repeats row 1"),
    ],
)
def test_bad_values(column, values, needle):
    with pytest.raises(BookValidationError, match=needle) as exc:
        Book.from_frame(_frame(**{column: values}))
    assert exc.value.column == column


def test_missing_column_and_null():
    with pytest.raises(BookValidationError, match="missing"):
        Book.from_frame(_frame().drop("bonus"))
    with pytest.raises(BookValidationError, match="row 3: is null"):
        Book.from_frame(_frame(debt=[1.0, 2.0, None]))


def test_synthetic_book_seeded_and_calibrated():
    a = synthetic_book(20_000, price=2000.0, seed=7, total_debt=1e8)
    b = synthetic_book(20_000, price=2000.0, seed=7, total_debt=1e8)
    c = synthetic_book(20_000, price=2000.0, seed=8, total_debt=1e8)
    np.testing.assert_array_equal(a.collateral, b.collateral)
    assert not np.array_equal(a.collateral, c.collateral)
    assert a.total_debt == pytest.approx(1e8)
    hf = a.health_factor(2000.0)
    assert hf.min() > 1.0
    # lognormal fit to the Aave v2 stETH snapshot: median ~2.0, 5th percentile ~1.11
    assert np.median(hf) == pytest.approx(2.0, abs=0.05)
    assert np.percentile(hf, 5) == pytest.approx(1.107, abs=0.01)


def test_rescale_book_keeps_health():
    book = synthetic_book(500, price=2000.0, seed=1)
    moved = rescale_book(book, 3000.0, 5e6)
    assert moved.total_debt == pytest.approx(5e6)
    np.testing.assert_allclose(moved.health_factor(3000.0), book.health_factor(2000.0))
    with pytest.raises(ValueError, match="from_price"):
        rescale_book(Book.from_frame(_frame()), 10.0, 1e3)
    again = rescale_book(Book.from_frame(_frame()), 50.0, 360.0, from_price=100.0)
    np.testing.assert_allclose(again.collateral, [4.0, 8.0, 12.0])


def test_price_path_validation():
    ts = np.arange(3) * 60
    path = PricePath(ts=ts, price=[1.0, 2.0, 3.0])
    assert path.step_seconds == 60.0
    assert path.ts.dtype == np.dtype("datetime64[ms]")
    with pytest.raises(PathValidationError, match="row 2"):
        PricePath(ts=ts, price=[1.0, -2.0, 3.0])
    with pytest.raises(PathValidationError, match="strictly increasing"):
        PricePath(ts=np.array([0, 60, 60]), price=[1.0, 2.0, 3.0])
    crash = synthetic_crash_path(1000, seed=3, crash_depth=0.3)
    assert len(crash) == 1000 and crash.price.min() < 0.8 * crash.price[0]
    again = synthetic_crash_path(1000, seed=3, crash_depth=0.3)
    np.testing.assert_array_equal(crash.price, again.price)
