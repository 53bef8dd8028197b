"""Benchmark: the cost of the re-entry share in the leverage-book fit of ``cascade attribute``.

Run: ``python bench/bench_market_fit.py --db cascade.duckdb [--assets BTC] [--events W2]`` on a
warehouse built by ``cascade run`` (opened read-only; nothing is written). In one process it
times ``compute_attribution`` twice (stress paths off) once with the
default candidate grid (``backtest.market.fit.DEFAULT_GRID``, re-entry ``ρ ∈ {0, 0.25, 0.5}``)
and once with the same grid without re-entry (``ρ = 0``: a third of the candidates), and prints
the ratio with the load average (the machine is shared; the ratio is the figure to read).
"""

from __future__ import annotations

import argparse
import os
import time

import pipelines.attribution.compute as compute
from backtest.market.fit import DEFAULT_GRID
from pipelines.warehouse.connection import connect


def _timed_run(con, grid: dict[str, tuple[float, ...]], events: list[str], assets: list[str]):  # noqa: ANN001, ANN202
    config = compute.build_config(con, events=events, assets=assets, grid=grid, stress_paths=0)
    t0 = time.perf_counter()
    compute.compute_attribution(con, config)
    return time.perf_counter() - t0


def main() -> None:
    """Time the fit with and without the re-entry candidates; print the ratio."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--events", default="W2")
    ap.add_argument("--assets", default="BTC")
    a = ap.parse_args()
    events, assets = a.events.split(","), a.assets.split(",")
    without = {**DEFAULT_GRID, "reentry": (0.0,)}
    con = connect(a.db, read_only=True)
    try:
        load0 = os.getloadavg()[0]
        base = _timed_run(con, without, events, assets)
        full = _timed_run(con, dict(DEFAULT_GRID), events, assets)
    finally:
        con.close()
    print(
        f"attribution without re-entry {base:.1f} s, with the default grid {full:.1f} s: "
        f"ratio {full / base:.2f}; load average {load0:.2f} → {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
