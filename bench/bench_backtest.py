"""Benchmark of the backtest engine: fast sorted engine vs the dense recompute-everything baseline.

Run: ``python bench/bench_backtest.py`` (defaults: 1,000,000 positions × 10,080 one-minute steps,
policies ``instant`` and ``dutch_auction``). Every ``simulate`` call includes its zero-impact
counterfactual run.

The full dense run at 1M positions would take minutes, so it is extrapolated: both engines make
exactly the same sequence of pool queries (``top``/``pop``), and each dense query re-evaluates
all N positions. The benchmark counts the queries of the full fast run, measures the cost of one
dense query on a window of steps at the crash onset (dense time minus fast time on that window,
divided by its query count), and reports ``fast time + queries × cost per query``. A smaller
book is also run end to end with both engines for a measured ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

import backtest.engine as engine
from backtest import (
    Book,
    LinearImpact,
    PricePath,
    Result,
    make_policy,
    simulate,
    simulate_dense,
    synthetic_book,
    synthetic_crash_path,
)
from backtest.engine import prepare
from backtest.pool import DensePool, FastPool


class _Counting:
    """Mixin counting pool queries (each is one full evaluation in the dense pool)."""

    queries = 0

    def top(self):  # noqa: D102
        _Counting.queries += 1
        return super().top()

    def pop(self, thr, max_debt=float("inf")):  # noqa: D102
        if max_debt > 0:
            _Counting.queries += 1
        return super().pop(thr, max_debt)

    def pop_range(self, lo, hi):  # noqa: D102
        _Counting.queries += 1
        return super().pop_range(lo, hi)


class _CountingFast(_Counting, FastPool):
    pass


class _CountingDense(_Counting, DensePool):
    pass


def _count_queries(fn: Callable[[], Result]) -> int:
    saved = engine.FastPool, engine.DensePool
    engine.FastPool, engine.DensePool = _CountingFast, _CountingDense
    _Counting.queries = 0
    try:
        fn()
    finally:
        engine.FastPool, engine.DensePool = saved
    return _Counting.queries


def _time(fn: Callable[[], Result], repeat: int) -> tuple[float, Result]:
    times = []
    res = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = fn()
        times.append(time.perf_counter() - t0)
    assert res is not None
    return statistics.median(times), res


def _window(path: PricePath, start: int, length: int) -> PricePath:
    sl = slice(start, start + length)
    return PricePath(ts=path.ts[sl], price=path.price[sl])


def _fresh(book: Book) -> Book:
    """Same positions, no cached sort."""
    return Book(
        position_id=book.position_id,
        collateral=book.collateral,
        debt=book.debt,
        liquidation_threshold=book.liquidation_threshold,
        bonus=book.bonus,
        price=book.price,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=1_000_000, help="positions")
    ap.add_argument("--steps", type=int, default=10_080, help="one-minute steps")
    ap.add_argument("--total-debt", type=float, default=2e9, help="book debt (USD)")
    ap.add_argument("--window", type=int, default=60, help="dense window (steps)")
    ap.add_argument("--small-n", type=int, default=10_000, help="book for a full dense run")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    t0 = time.perf_counter()
    book = synthetic_book(args.n, price=2000.0, seed=1, total_debt=args.total_debt)
    path = synthetic_crash_path(args.steps, seed=2, start_price=2000.0)
    t_build = time.perf_counter() - t0
    # $35M of ETH ≈ 4 % on-chain slippage (Maker, 2021); impact half-life one hour
    impact = LinearImpact.from_slippage(35e6, 0.04, half_life_steps=60)
    print(
        f"book: {args.n:,} positions, ${args.total_debt:,.0f} debt; path: {args.steps:,} steps "
        f"({path.price.min() / path.price[0] - 1:+.1%} trough); impact depth "
        f"${impact.depth_usd:,.0f}, half-life 60 steps; build {t_build:.2f} s (not timed below)"
    )
    sort_times = []
    for _ in range(args.repeat):
        fresh = _fresh(book)
        t0 = time.perf_counter()
        prepare(fresh)
        sort_times.append(time.perf_counter() - t0)
    t_sort = statistics.median(sort_times)
    prepare(book)

    crash_start = int(0.3 * args.steps)
    window = _window(path, crash_start, args.window)
    small = synthetic_book(args.small_n, price=2000.0, seed=1, total_debt=args.total_debt)
    small_impact = LinearImpact(
        depth_usd=impact.depth_usd * args.small_n / args.n, half_life_steps=60
    )

    rows = []
    for name in ("instant", "dutch_auction"):
        policy = make_policy(name)
        t_fast, res = _time(lambda p=policy: simulate(book, path, impact, p), args.repeat)
        # dense baseline: cost of one full evaluation, measured on the window
        t_dw, dres = _time(lambda p=policy: simulate_dense(book, window, impact, p), 1)
        t_fw, fres = _time(lambda p=policy: simulate(book, window, impact, p), args.repeat)
        same_window = fres.steps.equals(dres.steps) and fres.metrics == dres.metrics
        q_window = _count_queries(lambda p=policy: simulate(book, window, impact, p))
        q_full = _count_queries(lambda p=policy: simulate(book, path, impact, p))
        per_query = max(t_dw - t_fw, 0.0) / q_window
        t_dense_full = t_fast + q_full * per_query
        # smaller book, full path, both engines measured end to end
        t_sf, sres = _time(lambda p=policy: simulate(small, path, small_impact, p), args.repeat)
        t_sd, sdres = _time(lambda p=policy: simulate_dense(small, path, small_impact, p), 1)
        same_small = sres.steps.equals(sdres.steps) and sres.metrics == sdres.metrics
        rows.append(
            (
                name,
                t_fast,
                t_dense_full,
                t_sf,
                t_sd,
                same_window and same_small,
                q_full,
                per_query,
                res,
            )
        )

    print(f"\nsort into liquidation-price order (once per book, cached on it): {t_sort:.3f} s")
    print("times are medians; each simulate = run with impact + zero-impact counterfactual\n")
    head = (
        f"| policy | fast simulate, {args.n:,} × {args.steps:,} | cold (+ sort) | dense, "
        f"extrapolated (queries × s/query) | speed-up | fast, {args.small_n:,} × "
        f"{args.steps:,} | dense, same (measured) | speed-up | identical |"
    )
    print(head)
    print("|" + "---|" * 9)
    for name, t_fast, t_dense, t_sf, t_sd, same, q_full, per_q, _ in rows:
        print(
            f"| {name} | {t_fast:.3f} s | {t_fast + t_sort:.3f} s | {t_dense:,.1f} s "
            f"({q_full:,} × {per_q * 1e3:.1f} ms) | {t_dense / t_fast:,.0f}× | {t_sf:.3f} s | "
            f"{t_sd:.2f} s | {t_sd / t_sf:,.0f}× | {'yes' if same else 'NO'} |"
        )
    print("\nrun metrics (1M book):")
    keys = (
        "n_liquidations",
        "liquidated_usd",
        "induced_usd",
        "amplification",
        "max_cascade_depth",
        "cascade_episodes",
        "peak_price_deviation",
        "bad_debt_usd",
        "time_to_clear_steps",
    )
    for name, *_, res in rows:
        m = res.metrics.as_dict()
        active = int(np.count_nonzero(res.steps["rounds"].to_numpy()))
        print(
            f"  {name}: "
            + ", ".join(
                f"{k}={m[k]:,.3f}" if isinstance(m[k], float) else f"{k}={m[k]:,}" for k in keys
            )
            + f", steps with rounds={active:,}"
        )


if __name__ == "__main__":
    main()
