"""Benchmark the book Greeks: vectorised ``book_greeks`` against the naive loop, same run.

Usage: ``python bench/bench_market_greeks.py``. 1,440 hourly snapshots × 100 shock levels of a
synthetic cohort book; prints both times, their ratio and the machine's load average.
"""

from __future__ import annotations

import os
import time

import numpy as np

from backtest.market.cohorts import CohortParams, MarketSeries, run_cohorts
from backtest.market.greeks import book_greeks, default_shocks, liquidation_curve_naive


def main() -> None:
    """Time both implementations on the same book and print the ratio."""
    rng = np.random.default_rng(1)
    n = 1_440
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
    books = [run.snapshots[i] for i in range(n)]
    shocks = default_shocks(100)

    def impact(usd: np.ndarray) -> np.ndarray:
        return 0.04 * np.sqrt(usd / 2e9)

    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    book_greeks(books, close, params, impact, shocks)
    fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(0, n, 48):
        liquidation_curve_naive(books[i], close[i], params, shocks)
    slow = (time.perf_counter() - t0) * 48
    print(f"load average {load:.2f} on {os.cpu_count()} cores")
    print(
        f"book_greeks 1440x100: {fast:.2f} s; naive loop (extrapolated): {slow:.2f} s; "
        f"ratio {slow / fast:.1f}x (target: vectorised <= 5 s)"
    )


if __name__ == "__main__":
    main()
