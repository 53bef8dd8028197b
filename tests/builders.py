"""Hand-computable books and price paths shared by the engine and policy tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from backtest import Book, PricePath

#: Liquidation threshold and bonus of the hand-computed books (Aave-like).
LT = 0.8
BONUS = 0.05


def book_of(
    coll: Sequence[float], debt: Sequence[float], lt: float = LT, bonus: float = BONUS
) -> Book:
    """One position per entry: ``coll`` units of collateral against ``debt`` USD."""
    n = len(debt)
    return Book(
        position_id=np.arange(n),
        collateral=np.asarray(coll, float),
        debt=np.asarray(debt, float),
        liquidation_threshold=np.full(n, lt),
        bonus=np.full(n, bonus),
    )


def path_of(prices: Sequence[float], step_seconds: int = 60) -> PricePath:
    """A price path with one step every ``step_seconds`` from t = 0."""
    return PricePath(ts=np.arange(len(prices)) * step_seconds, price=np.asarray(prices, float))
