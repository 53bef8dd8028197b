"""Loan books: one collateral asset, positions as parallel numpy arrays.

A position ``i`` holds ``collateral[i]`` units of the collateral asset against ``debt[i]`` USD,
with liquidation threshold ``liquidation_threshold[i]`` and liquidation bonus ``bonus[i]``
(both fractions). Its health factor at price ``p`` is ``c·p·LT/d`` and its liquidation price is
``L = d / (c·LT)`` (see :func:`liquidation_price`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import polars as pl

from backtest.errors import BookValidationError

__all__ = [
    "BOOK_COLUMNS",
    "Book",
    "HealthFactorSampler",
    "LognormalExcessHF",
    "liquidation_price",
    "rescale_book",
    "synthetic_book",
]

#: Columns :meth:`Book.from_frame` requires.
BOOK_COLUMNS = ("position_id", "collateral", "debt", "liquidation_threshold", "bonus")


def liquidation_price(
    collateral: np.ndarray, debt: np.ndarray, threshold: np.ndarray
) -> np.ndarray:
    """Liquidation price ``L = d / (c·LT)`` of each position.

    A position is liquidatable at price ``p`` exactly when ``p < L``. Both engines evaluate
    health with this one expression, so they agree to the last bit.

    Parameters
    ----------
    collateral, debt, threshold : numpy.ndarray
        Collateral units, debt (USD) and liquidation threshold (fraction) per position.

    Returns
    -------
    numpy.ndarray
        ``d / (c·LT)``; ``0`` for debt-free positions (never liquidatable) and ``inf`` for
        positions with debt but no collateral (liquidatable at any price).
    """
    denom = collateral * threshold
    out = np.zeros(np.shape(debt), dtype=np.float64)
    has_debt = debt > 0
    np.divide(debt, denom, out=out, where=has_debt & (denom > 0))
    out[has_debt & ~(denom > 0)] = np.inf
    return out


def _frozen(a: Any, dtype: Any = np.float64) -> np.ndarray:
    arr = np.array(a, dtype=dtype, copy=True)
    if arr.ndim != 1:
        raise ValueError("book arrays must be one-dimensional")
    arr.flags.writeable = False
    return arr


def _first_bad(mask: np.ndarray) -> int:
    return int(np.argmax(mask)) + 1


def _check_fraction(name: str, values: np.ndarray, *, low_open: bool, high: float) -> None:
    """Validate a fraction column with the one wording of :mod:`backtest.fractions`."""
    from backtest.fractions import first_fraction_problem

    high_open = name != "liquidation_threshold"  # a bonus of 1 (100 %) is not a bonus
    found = first_fraction_problem(values, low_open=low_open, high=high, high_open=high_open)
    if found is not None:
        index, problem, _count = found
        raise BookValidationError(name, index + 1, f"value {problem}")


def _check_amount(name: str, values: np.ndarray) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        row = _first_bad(bad)
        v = float(values[row - 1])
        raise BookValidationError(name, row, f"{v!r} is not a finite number; drop or fill it")
    neg = values < 0
    if neg.any():
        row = _first_bad(neg)
        v = float(values[row - 1])
        raise BookValidationError(name, row, f"{v!r} is negative; amounts must be >= 0")


@dataclass(frozen=True, eq=False)
class Book:
    """An immutable loan book with a single collateral asset.

    Parameters
    ----------
    position_id : numpy.ndarray
        Identifier of each position (any dtype; must be unique).
    collateral : numpy.ndarray
        Collateral held, in units of the asset (>= 0).
    debt : numpy.ndarray
        Debt in USD (>= 0).
    liquidation_threshold : numpy.ndarray
        Liquidation threshold as a fraction in (0, 1] (0.83, not 83).
    bonus : numpy.ndarray
        Liquidation bonus (penalty paid by the borrower) as a fraction in [0, 1).
    price : float or None, optional
        Price of the collateral at which the snapshot was taken; used by :func:`rescale_book`.

    Notes
    -----
    Arrays are copied and made read-only. Multi-asset books must be split by the caller into one
    book per collateral asset.
    """

    position_id: np.ndarray
    collateral: np.ndarray
    debt: np.ndarray
    liquidation_threshold: np.ndarray
    bonus: np.ndarray
    price: float | None = field(default=None)

    def __post_init__(self) -> None:
        ids = np.array(self.position_id, copy=True)
        if ids.ndim != 1:
            raise BookValidationError("position_id", None, "must be one-dimensional")
        ids.flags.writeable = False
        object.__setattr__(self, "position_id", ids)
        for name in ("collateral", "debt", "liquidation_threshold", "bonus"):
            try:
                arr = _frozen(getattr(self, name))
            except (TypeError, ValueError) as exc:
                raise BookValidationError(name, None, f"not a numeric 1-d array ({exc})") from None
            if arr.shape != ids.shape:
                raise BookValidationError(
                    name, None, f"has {arr.size} values but position_id has {ids.size}"
                )
            object.__setattr__(self, name, arr)
        _check_amount("collateral", self.collateral)
        _check_amount("debt", self.debt)
        _check_fraction(
            "liquidation_threshold", self.liquidation_threshold, low_open=True, high=1.0
        )
        _check_fraction("bonus", self.bonus, low_open=False, high=1.0)
        if ids.size and np.unique(ids).size != ids.size:
            _, first, counts = np.unique(ids, return_index=True, return_counts=True)
            dup = ids[first[counts > 1][0]]
            rows = np.flatnonzero(ids == dup)
            raise BookValidationError(
                "position_id",
                int(rows[1]) + 1,
                f"{dup!r} repeats row {int(rows[0]) + 1}; give each position a unique id",
            )
        if self.price is not None and not (np.isfinite(self.price) and self.price > 0):
            raise BookValidationError("price", None, f"{self.price!r} must be a positive price")

    @classmethod
    def from_frame(cls, frame: pl.DataFrame, *, price: float | None = None) -> Book:
        """Build a book from a polars frame with the :data:`BOOK_COLUMNS` columns.

        Parameters
        ----------
        frame : polars.DataFrame
            One row per position: ``position_id, collateral, debt, liquidation_threshold,
            bonus``. Fractions must be fractions (0.83), not percents (83).
        price : float, optional
            Snapshot price of the collateral (enables :func:`rescale_book`).

        Returns
        -------
        Book

        Raises
        ------
        BookValidationError
            A column is missing or a value is NaN, negative, or looks like a percent; the
            message names the column and the 1-based row.
        """
        missing = [c for c in BOOK_COLUMNS if c not in frame.columns]
        if missing:
            raise BookValidationError(
                missing[0], None, f"missing; the frame needs columns {list(BOOK_COLUMNS)}"
            )
        arrays = {}
        for name in BOOK_COLUMNS[1:]:
            col = frame.get_column(name)
            if col.null_count():
                row = int(np.argmax(col.is_null().to_numpy())) + 1
                raise BookValidationError(name, row, "is null; drop or fill the position")
            try:
                arrays[name] = col.cast(pl.Float64).to_numpy()
            except pl.exceptions.InvalidOperationError as exc:
                raise BookValidationError(name, None, f"is not numeric ({exc})") from None
        return cls(
            position_id=frame.get_column("position_id").to_numpy(),
            price=price,
            **arrays,
        )

    def to_frame(self) -> pl.DataFrame:
        """Return the book as a polars frame with the :data:`BOOK_COLUMNS` columns."""
        return pl.DataFrame(
            {
                "position_id": self.position_id,
                "collateral": self.collateral,
                "debt": self.debt,
                "liquidation_threshold": self.liquidation_threshold,
                "bonus": self.bonus,
            }
        )

    def __len__(self) -> int:
        return int(self.debt.size)

    def __getstate__(self) -> dict[str, Any]:
        # drop the engine's cached sort (large arrays) when pickling
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    @property
    def total_debt(self) -> float:
        """Sum of debt (USD)."""
        return float(self.debt.sum())

    @property
    def total_collateral(self) -> float:
        """Sum of collateral (units)."""
        return float(self.collateral.sum())

    def health_factor(self, price: float) -> np.ndarray:
        """Health factor ``c·p·LT/d`` of every position at ``price`` (``inf`` without debt)."""
        num = self.collateral * price * self.liquidation_threshold
        out = np.full(self.debt.shape, np.inf)
        np.divide(num, self.debt, out=out, where=self.debt > 0)
        return out

    def liquidation_prices(self) -> np.ndarray:
        """Liquidation price ``d/(c·LT)`` of every position (see :func:`liquidation_price`)."""
        return liquidation_price(self.collateral, self.debt, self.liquidation_threshold)


class HealthFactorSampler(Protocol):
    """Anything that draws ``n`` initial health factors (all > 1) from a numpy Generator."""

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:  # pragma: no cover
        """Draw ``n`` health factors."""
        ...


@dataclass(frozen=True, kw_only=True)
class LognormalExcessHF:
    """Health factors ``HF = 1 + X`` with ``ln X ~ Normal(mu, sigma)``.

    Parameters
    ----------
    mu, sigma : float
        Defaults ``mu = 0.013``, ``sigma = 1.366`` are the maximum-likelihood fit to the
        1,303 indebted Aave v2 (w)stETH positions of 2023-06-19 in
        ``lidofinance/aave-liquidation-model`` (``data/steth_aave.csv``) with HF > 1. The fitted
        law has median HF ≈ 2.0 (data 1.98), quartiles ≈ 1.40 / 3.5 (data 1.44 / 3.0) and 5th
        percentile ≈ 1.11 (data 1.16).
    """

    mu: float = 0.013
    sigma: float = 1.366

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Draw ``n`` health factors (> 1)."""
        return 1.0 + rng.lognormal(self.mu, self.sigma, size=n)


def synthetic_book(
    n: int,
    *,
    price: float,
    seed: int,
    hf_distribution: HealthFactorSampler | None = None,
    size_alpha: float = 1.35,
    min_debt_usd: float = 100.0,
    total_debt: float | None = None,
    liquidation_threshold: float = 0.83,
    bonus: float = 0.05,
) -> Book:
    """Draw a synthetic single-asset book.

    Parameters
    ----------
    n : int
        Number of positions.
    price : float
        Collateral price at which the health factors hold.
    seed : int
        Seed of the ``numpy.random.Generator`` (same seed, same book).
    hf_distribution : HealthFactorSampler, optional
        Initial health factors; default :class:`LognormalExcessHF` (calibrated on Aave v2).
    size_alpha : float, optional
        Pareto tail index of debt sizes, ``P(D > x) = (x / min_debt_usd)^-alpha``. Default 1.35
        ≈ the Hill estimate on the top 2 % of debts of the same Aave snapshot.
    min_debt_usd : float, optional
        Scale (smallest debt) of the Pareto law before rescaling.
    total_debt : float, optional
        When given, debts and collateral are scaled so that debts sum to it (health factors
        unchanged).
    liquidation_threshold, bonus : float, optional
        Shared by every position; defaults 0.83 and 0.05 (Aave v3 WETH on Ethereum, Oct 2025).

    Returns
    -------
    Book
        With ``position_id = 0..n-1`` and ``price`` set.
    """
    if n < 0:
        raise ValueError(f"n={n} must be >= 0")
    if not size_alpha > 0:
        raise ValueError(f"size_alpha={size_alpha} must be > 0; 1.35 matches Aave v2")
    if not price > 0:
        raise ValueError(f"price={price} must be > 0")
    rng = np.random.default_rng(seed)
    sampler = hf_distribution if hf_distribution is not None else LognormalExcessHF()
    debt = min_debt_usd * (1.0 + rng.pareto(size_alpha, size=n))
    hf = np.asarray(sampler.sample(rng, n), dtype=np.float64)
    if total_debt is not None and n:
        debt *= total_debt / debt.sum()
    collateral = hf * debt / (price * liquidation_threshold)
    return Book(
        position_id=np.arange(n, dtype=np.int64),
        collateral=collateral,
        debt=debt,
        liquidation_threshold=np.full(n, liquidation_threshold),
        bonus=np.full(n, bonus),
        price=price,
    )


def rescale_book(
    book: Book, price: float, total_debt: float, *, from_price: float | None = None
) -> Book:
    """Move a book's shape to another price level and size, keeping every health factor.

    Debts are multiplied by ``s = total_debt / book.total_debt``; collateral by
    ``s · from_price / price``. Health factors, the ranking of positions and the relative size
    distribution are unchanged.

    Parameters
    ----------
    book : Book
        The snapshot (e.g. a real Aave book).
    price : float
        Collateral price of the event the book is moved to.
    total_debt : float
        Debt (USD) the rescaled book should carry.
    from_price : float, optional
        Snapshot price; defaults to ``book.price``.

    Returns
    -------
    Book
        With ``price`` set to the new price.
    """
    p0 = from_price if from_price is not None else book.price
    if p0 is None:
        raise ValueError(
            "the book carries no snapshot price; pass from_price= (the price the book was "
            "taken at) or build it with Book.from_frame(..., price=...)"
        )
    if not (price > 0 and p0 > 0):
        raise ValueError(f"prices must be > 0 (price={price}, from_price={p0})")
    if not total_debt >= 0:
        raise ValueError(f"total_debt={total_debt} must be >= 0")
    current = book.total_debt
    if current <= 0:
        raise ValueError("the book has no debt to rescale")
    s = total_debt / current
    return Book(
        position_id=book.position_id,
        collateral=book.collateral * (s * p0 / price),
        debt=book.debt * s,
        liquidation_threshold=book.liquidation_threshold,
        bonus=book.bonus,
        price=price,
    )
