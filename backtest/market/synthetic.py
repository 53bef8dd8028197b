"""A seeded synthetic cohort book for the Greeks' reference test and benchmark.

:func:`random_walk_books` builds the case both ``tests/test_market_greeks.py`` (vectorised vs
naive, exact agreement) and ``bench/bench_market_greeks.py`` (their speed ratio) use: hourly
snapshots of a cohort book run on a log random-walk price with drifting open interest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backtest.market.cohorts import BookState, CohortParams, MarketSeries, run_cohorts

__all__ = ["SyntheticBooks", "random_walk_books"]


@dataclass(frozen=True)
class SyntheticBooks:
    """Snapshots of a synthetic cohort book.

    Attributes
    ----------
    books : list of BookState
        One snapshot per hour.
    close : numpy.ndarray
        Price of each snapshot.
    params : CohortParams
        Parameters the book was run with.
    """

    books: list[BookState]
    close: np.ndarray
    params: CohortParams

    @staticmethod
    def impact(usd: np.ndarray) -> np.ndarray:
        """Square-root log impact of selling ``usd`` at once (4 % for 2 bn USD)."""
        return 0.04 * np.sqrt(usd / 2e9)


def random_walk_books(n: int = 1_440, seed: int = 1) -> SyntheticBooks:
    """``n`` hourly snapshots of a cohort book on a seeded random walk.

    Parameters
    ----------
    n : int, optional
        Number of hourly snapshots (1,440: 60 days).
    seed : int, optional
        Seed of the price and open-interest draws.

    Returns
    -------
    SyntheticBooks
    """
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.006, n)))
    series = MarketSeries(
        asset="BTC",
        ts=np.arange(n) * 3600,
        low=close * 0.997,
        high=close * 1.003,
        close=close,
        oi_usd=1e9 * np.exp(np.cumsum(rng.normal(0, 0.004, n))),
        funding_8h=np.full(n, 1e-4),
        step_days=1 / 24,
    )
    params = CohortParams(levered_share=0.05, turnover_per_day=0.3, turnover_lev_exp=1.0)
    run = run_cohorts(series, params, snapshot_at=tuple(range(n)))
    return SyntheticBooks([run.snapshots[i] for i in range(n)], close, params)
