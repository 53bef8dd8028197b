"""Benchmark the book Greeks: vectorised ``book_greeks`` against the naive loop, same run.

Usage: ``python bench/bench_market_greeks.py``. 1,440 hourly snapshots × 100 shock levels of a
synthetic cohort book; prints both times, their ratio and the machine's load average.
"""

from __future__ import annotations

import os
import time

from backtest.market.greeks import book_greeks, default_shocks, naive_greeks
from backtest.market.synthetic import random_walk_books


def main() -> None:
    """Time both implementations on the same book and print the ratio."""
    case = random_walk_books()
    books, close, params = case.books, case.close, case.params
    shocks = default_shocks(100)

    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    book_greeks(books, close, params, case.impact, shocks)
    fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    naive_greeks(books, close, params, shocks, every=48)
    slow = (time.perf_counter() - t0) * 48
    print(f"load average {load:.2f} on {os.cpu_count()} cores")
    print(
        f"book_greeks 1440x100: {fast:.2f} s; naive loop (extrapolated): {slow:.2f} s; "
        f"ratio {slow / fast:.1f}x (target: vectorised <= 5 s)"
    )


if __name__ == "__main__":
    main()
