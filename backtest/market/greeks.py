"""Book Greeks: the liquidation curve ``L(x)``, its delta and gamma, and the critical shock.

For a book at price ``p``, ``L(x)`` is the USD of long positions liquidated by an instantaneous
move to ``p · (1 − x)``: the notional (at liquidation price) of every long cohort whose
liquidation price is ``>= p · (1 − x)``. With feedback, the liquidated notional is sold at once
into the market, which moves the price by ``I(L)`` more (log impact): the total move ``y``
solves ``1 − y = (1 − x) · exp(−I(L(y)))`` (iterated from ``y = x``; the iteration increases to
the smallest solution). The critical shock ``x*`` is the smallest grid move beyond which the
feedback map ``x ↦ x + I(L(x))`` has slope ``>= 1`` (runaway): the first grid interval
``[x_k, x_{k+1}]`` with ``I(L(x_{k+1})) − I(L(x_k)) >= x_{k+1} − x_k``; ``x* = x_k``.

Every snapshot shares the entry-price grid and the tiers, so the liquidation prices are sorted
once and each snapshot's curve is a cumulative sum gathered at ``searchsorted`` positions —
``O(cells · snapshots + shocks · snapshots · log cells)``, vectorised over snapshots.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from backtest.market.cohorts import BookState, CohortParams
from backtest.market.errors import MarketConfigError

__all__ = [
    "BookGreeks",
    "book_greeks",
    "default_shocks",
    "liquidation_curve_naive",
    "naive_greeks",
]


def default_shocks(n: int = 100) -> np.ndarray:
    """``n`` shocks from 0.5 % to 50 % (0.5 % apart for 100)."""
    return np.linspace(0.005, 0.5, n)


@dataclass(frozen=True)
class BookGreeks:
    """Greeks of ``n_snapshots`` books over ``n_shocks`` shocks.

    Attributes
    ----------
    shocks : numpy.ndarray
        ``x`` (fractions).
    curve : numpy.ndarray
        ``L(x)`` without feedback, ``(n_snapshots, n_shocks)`` USD.
    curve_feedback : numpy.ndarray
        ``L(y(x))`` with feedback.
    total_move : numpy.ndarray
        ``y(x)``, the move including the impact of the liquidations.
    delta, gamma : numpy.ndarray
        ``dL/dx`` and ``d²L/dx²`` (USD per unit move; central differences).
    critical_shock : numpy.ndarray
        ``x*`` per snapshot (NaN when the map never runs away on the grid).
    """

    shocks: np.ndarray
    curve: np.ndarray
    curve_feedback: np.ndarray
    total_move: np.ndarray
    delta: np.ndarray
    gamma: np.ndarray
    critical_shock: np.ndarray


def _sorted_cells(params: CohortParams, book: BookState) -> tuple[np.ndarray, np.ndarray]:
    lp = np.outer(params.long_factor(), book.grid.prices).ravel()
    order = np.argsort(-lp, kind="stable")
    return lp, order


def book_greeks(
    books: Sequence[BookState],
    prices: np.ndarray,
    params: CohortParams,
    impact_of_usd: Callable[[np.ndarray], np.ndarray],
    shocks: np.ndarray | None = None,
    *,
    iterations: int = 60,
) -> BookGreeks:
    """Greeks of unit-scale books (scaled by ``params.levered_share``; module docstring).

    Parameters
    ----------
    books : sequence of BookState
        Snapshots on one grid.
    prices : numpy.ndarray
        Price of each snapshot.
    params : CohortParams
        Parameters of the books (tiers, mmr, scale).
    impact_of_usd : callable
        Log impact of selling an amount of USD at once (vectorised), e.g. the square-root law.
    shocks : numpy.ndarray, optional
        Increasing moves ``x`` in (0, 1); default :func:`default_shocks`.
    iterations : int
        Fixed-point iterations for the feedback curve.

    Returns
    -------
    BookGreeks
    """
    xs = default_shocks() if shocks is None else np.asarray(shocks, dtype=float)
    if xs.ndim != 1 or xs.size < 3 or np.any(np.diff(xs) <= 0) or xs[0] <= 0 or xs[-1] >= 1:
        raise MarketConfigError("shocks must be at least 3 increasing moves in (0, 1)")
    if len(books) != len(prices) or not books:
        raise MarketConfigError(f"{len(books)} books for {len(prices)} prices")
    grid = books[0].grid
    if any(b.grid != grid for b in books):
        raise MarketConfigError("every snapshot must share the entry-price grid")
    lp, order = _sorted_cells(params, books[0])
    lp_desc = lp[order]
    neg = -lp_desc  # increasing
    qty = np.stack([b.long.ravel() for b in books])[:, order]
    cum = (
        np.concatenate([np.zeros((len(books), 1)), np.cumsum(qty * lp_desc, axis=1)], axis=1)
        * params.levered_share
    )
    p = np.asarray(prices, dtype=float)[:, None]
    rows = np.arange(len(books))[:, None]

    def curve_at(move: np.ndarray) -> np.ndarray:
        k = np.searchsorted(neg, -(p * (1.0 - move)).ravel(), side="right")
        return cum[rows, k.reshape(move.shape)]

    move = np.broadcast_to(xs, (len(books), xs.size)).copy()
    L = curve_at(move)
    y = move.copy()
    for _ in range(iterations):
        y_new = 1.0 - (1.0 - move) * np.exp(-impact_of_usd(curve_at(y)))
        y_new = np.minimum(y_new, 1.0 - 1e-12)
        if np.allclose(y_new, y, rtol=0, atol=1e-12):
            y = y_new
            break
        y = y_new
    L_fb = curve_at(y)
    delta = np.gradient(L, xs, axis=1)
    gamma = np.gradient(delta, xs, axis=1)
    slope = np.diff(impact_of_usd(L), axis=1) / np.diff(xs)
    run = slope >= 1.0
    first = np.argmax(run, axis=1)
    crit = np.where(run.any(axis=1), xs[first], np.nan)
    return BookGreeks(xs, L, L_fb, y, delta, gamma, crit)


def liquidation_curve_naive(
    book: BookState, price: float, params: CohortParams, shocks: np.ndarray
) -> np.ndarray:
    """``L(x)`` of one book by a plain loop over shocks (reference for tests and benchmarks)."""
    lp = np.outer(params.long_factor(), book.grid.prices)
    out = np.empty(len(shocks))
    for j, x in enumerate(shocks):
        hit = lp >= price * (1.0 - x)
        out[j] = float((book.long * lp)[hit].sum()) * params.levered_share
    return out


def naive_greeks(
    books: Sequence[BookState],
    prices: np.ndarray,
    params: CohortParams,
    shocks: np.ndarray,
    *,
    every: int = 1,
) -> np.ndarray:
    """The reference ``L(x)`` of every ``every``-th snapshot by the plain loop.

    The implementation :func:`book_greeks` is checked against (``tests/test_market_greeks.py``)
    and timed against (``bench/bench_market_greeks.py``): :func:`liquidation_curve_naive` per
    snapshot, no vectorisation.

    Parameters
    ----------
    books : sequence of BookState
        Snapshots.
    prices : numpy.ndarray
        Price of each snapshot.
    params : CohortParams
        Parameters of the books.
    shocks : numpy.ndarray
        Moves ``x``.
    every : int, optional
        Stride over the snapshots (1: all).

    Returns
    -------
    numpy.ndarray
        ``(ceil(len(books) / every), len(shocks))`` USD, rows of snapshots ``0, every, …``.
    """
    rows = range(0, len(books), every)
    return np.array([liquidation_curve_naive(books[i], prices[i], params, shocks) for i in rows])
