"""Fast tier: book Greeks on synthetic books with hand-computed answers, and their speed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from backtest.market.cohorts import BookState, CohortParams, PriceGrid
from backtest.market.greeks import book_greeks, default_shocks, naive_greeks
from backtest.market.synthetic import random_walk_books

STEP = 0.005
P = CohortParams(levered_share=1.0, tiers=(10.0,), mmr=0.0)  # long liq = entry · 0.9


def _book_with_long_at(entry: float, coins: float) -> tuple[BookState, PriceGrid]:
    grid = PriceGrid(g0=math.log(entry) - 300 * STEP, step=STEP, n=500)
    book = BookState.empty(grid, 1)
    book.long[0, grid.bin_of(entry)] = coins
    return book, grid


def test_single_cohort_curve_delta_and_runaway_by_hand():
    # entry 100, 10x, no mmr: liquidated at 90 = a 10 % move from 100.
    book, _ = _book_with_long_at(100.0, 1_000.0)
    xs = np.round(np.arange(1, 41) * 0.005, 6)  # 0.5 % .. 20 %
    depth = 90_000.0 / 0.02  # linear impact: the 90,000 USD sale moves ln p by 2 %
    g = book_greeks([book], np.array([100.0]), P, lambda usd: usd / depth, xs)
    expected = np.where(xs >= 0.1 - 1e-12, 90_000.0, 0.0)
    np.testing.assert_allclose(g.curve[0], expected, rtol=1e-9)
    # the jump of I (2 %) over one 0.5 % interval: slope 4 >= 1, starting at x = 9.5 %
    assert g.critical_shock[0] == pytest.approx(0.095)
    # with feedback a 8.5 % move is not enough (no liquidation), 9.5 % is not either;
    # a 10 % move liquidates and moves the total to 1 − 0.9·e^−0.02
    j = int(np.flatnonzero(np.isclose(xs, 0.1))[0])
    assert g.total_move[0, j] == pytest.approx(1 - 0.9 * math.exp(-0.02))
    assert g.curve_feedback[0, j - 1] == 0
    # a weak market (slope < 1 everywhere) has no critical shock
    weak = book_greeks([book], np.array([100.0]), P, lambda usd: usd / (depth * 100), xs)
    assert np.isnan(weak.critical_shock[0])


def test_feedback_reaches_a_second_cohort():
    # cohorts at liq 90 and 88.2 (entries 100 and 98): selling the first moves the price 3 %,
    # so a 10 % shock also liquidates the second (90 · e^−0.03 = 87.3 < 88.2).
    book, grid = _book_with_long_at(100.0, 1_000.0)
    book.long[0, grid.bin_of(98.0)] = 1_000.0
    xs = np.array([0.05, 0.1, 0.2])
    depth = 90_000.0 / 0.03
    g = book_greeks([book], np.array([100.0]), P, lambda usd: usd / depth, xs)
    lp2 = grid.prices[grid.bin_of(98.0)] * 0.9
    assert g.curve[0, 1] == pytest.approx(90_000.0)
    assert g.curve_feedback[0, 1] == pytest.approx(90_000.0 + 1_000.0 * lp2)


def test_matches_naive_loop_on_1440_snapshots():
    case = random_walk_books()
    n = len(case.books)
    xs = default_shocks(100)
    # speed: bench/bench_market_greeks.py
    g = book_greeks(case.books, case.close, case.params, case.impact, xs)
    naive = naive_greeks(case.books, case.close, case.params, xs, every=48)
    np.testing.assert_allclose(g.curve[::48], naive, rtol=1e-9, atol=1e-3)
    assert naive.shape == (30, 100)
    assert g.curve.shape == (n, 100)
    assert np.all(np.diff(g.curve, axis=1) >= -1e-6)
