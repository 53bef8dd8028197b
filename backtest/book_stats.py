"""Statistics of books and paths: fingerprints (for run ids) and the synthetic-book shape fit.

* :func:`book_fingerprint` and :func:`path_fingerprint` are sha256 digests over exactly the
  numbers a simulation depends on; they enter run ids, so their byte layout is frozen.
* :func:`fit_shape` fits what :func:`~backtest.synthetic_book` needs to imitate a real book:
  the law of ``ln(HF − 1)`` (robust quantile fit) and the Pareto tail index of debt sizes
  (:func:`hill_tail_index`).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from backtest.book import Book
from backtest.errors import ShapeFitError
from backtest.path import PricePath

__all__ = [
    "SyntheticShape",
    "book_fingerprint",
    "fit_shape",
    "hill_tail_index",
    "path_fingerprint",
]


def book_fingerprint(book: Book) -> str:
    """sha256 of the numeric columns of a book (what the simulation depends on).

    Parameters
    ----------
    book : Book
        The book.

    Returns
    -------
    str
        Hex digest over ``n`` and the float64 bytes of collateral, debt, threshold and bonus.
    """
    h = hashlib.sha256(str(len(book)).encode())
    for arr in (book.collateral, book.debt, book.liquidation_threshold, book.bonus):
        h.update(np.ascontiguousarray(arr, dtype=np.float64).tobytes())
    return h.hexdigest()


def path_fingerprint(path: PricePath) -> str:
    """sha256 of a path's timestamps and prices.

    Parameters
    ----------
    path : PricePath
        The path.

    Returns
    -------
    str
        Hex digest over the int64 timestamps (in the path's unit, ms) then the float64 prices.
    """
    h = hashlib.sha256(np.ascontiguousarray(path.ts.astype(np.int64)).tobytes())
    h.update(np.ascontiguousarray(path.price, dtype=np.float64).tobytes())
    return h.hexdigest()


@dataclass(frozen=True, kw_only=True)
class SyntheticShape:
    """Distribution parameters of a synthetic book.

    Attributes
    ----------
    mu, sigma : float
        ``ln(HF − 1) ~ Normal(mu, sigma)``.
    size_alpha : float
        Pareto tail index of debt sizes.
    source : str
        Where they were fitted.
    """

    mu: float
    sigma: float
    size_alpha: float
    source: str


def hill_tail_index(values: ArrayLike, k: int) -> float:
    """Hill estimator of the Pareto tail index on the ``k`` largest values.

    Parameters
    ----------
    values : array_like
        Positive values (any order).
    k : int
        Number of upper order statistics (``1 <= k < len(values)``).

    Returns
    -------
    float
        ``1 / mean(ln(x_(i) / x_(k+1)))`` over the ``k`` largest ``x_(i)``.

    Raises
    ------
    ShapeFitError
        When ``k`` is out of range.
    """
    x = np.sort(np.asarray(values, dtype=np.float64))[::-1]
    if not 1 <= k < x.size:
        raise ShapeFitError(f"Hill estimator needs 1 <= k < n; got k={k}, n={x.size}")
    return 1.0 / float(np.mean(np.log(x[:k] / x[k])))


def fit_shape(book: Book, price: float, *, tail_fraction: float = 0.02) -> SyntheticShape:
    """Fit the health-factor law and the debt-size tail index of a book.

    ``mu``/``sigma`` are robust (quantile) estimates for ``ln(HF − 1) ~ Normal(mu, sigma)``
    over positions with ``HF > 1``: ``mu`` = median, ``sigma`` = inter-quartile range / 1.349.
    A maximum-likelihood fit would let a few dust positions with enormous health factors
    (``HF`` of 10^4 and more) inflate ``sigma``; the quantile fit reproduces the quartiles.
    ``size_alpha`` is the Hill estimator on the largest ``tail_fraction`` of debts (at least 2).

    Parameters
    ----------
    book : Book
        The book to fit.
    price : float
        Price at which the health factors are evaluated.
    tail_fraction : float, optional
        Share of the largest debts used by the Hill estimator (2 %).

    Returns
    -------
    SyntheticShape
        With ``source="fit"``.

    Raises
    ------
    ShapeFitError
        Fewer than 10 positions with ``HF > 1`` and debt.
    """
    hf = book.health_factor(price)
    ok = np.isfinite(hf) & (hf > 1.0) & (book.debt > 0)
    x = np.log(hf[ok] - 1.0)
    debts = np.sort(book.debt[ok])[::-1]
    k = max(2, int(math.ceil(tail_fraction * debts.size)))
    if x.size < 10 or debts.size <= k:
        raise ShapeFitError(f"cannot fit a book shape on {x.size} positions; need at least 10")
    q25, q50, q75 = np.percentile(x, [25.0, 50.0, 75.0])
    hill = hill_tail_index(debts, k)
    return SyntheticShape(
        mu=float(q50), sigma=float((q75 - q25) / 1.349), size_alpha=hill, source="fit"
    )
