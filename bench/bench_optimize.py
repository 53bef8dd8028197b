"""Benchmark ``cascade optimize`` (a script, not a test).

Usage: ``python bench/bench_optimize.py --db PATH [--trials 200] [--events W1,...]`` where ``PATH``
is a warehouse built by ``cascade run --db PATH --stress-paths 0``. On a copy of it (fresh study
journal, so nothing is resumed) the search runs in process; the script reports the wall time
against the issue's target (15 minutes on 2 cores for batch, dutch_auction, staged × 7 events ×
200 trials), the number of simulations, and the ratio of the whole search to its simulations
alone (the overhead of Optuna's sampler, the journal and the leave-one-event-out bookkeeping),
with the machine's load average.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import backtest.search as search_mod
from pipelines.backtests.optimize import OptimizeRequest, run_optimize
from pipelines.warehouse.connection import connect

TARGET_SECONDS = 15 * 60


def main() -> None:
    """Run the benchmark and print its lines."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", type=Path, required=True)
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--events", default="")
    ap.add_argument("--policy", default="batch,dutch_auction,staged")
    args = ap.parse_args()
    sim_seconds = [0.0]
    n_sims = [0]
    real = search_mod.simulate

    def timed(*a, **kw):  # noqa: ANN002, ANN003, ANN202
        t = time.perf_counter()
        try:
            return real(*a, **kw)
        finally:
            sim_seconds[0] += time.perf_counter() - t
            n_sims[0] += 1

    search_mod.simulate = timed
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "cascade.duckdb"
        shutil.copy(args.db, db)
        con = connect(db)
        load = os.getloadavg()
        t0 = time.perf_counter()
        events = tuple(e for e in args.events.split(",") if e)
        request = OptimizeRequest(
            events=events, families=tuple(args.policy.split(",")), n_trials=args.trials
        )
        result = run_optimize(con, request, db_path=db)
        wall = time.perf_counter() - t0
        con.close()
    print(f"load average at start (1/5/15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"cores: {os.cpu_count()}; search {result.search_id}")
    print(f"wall {wall:.1f} s for {n_sims[0]} simulations ({sim_seconds[0]:.1f} s simulating)")
    print(f"search / simulations ratio: {wall / max(sim_seconds[0], 1e-9):.2f}")
    print(f"target {TARGET_SECONDS} s: {'met' if wall <= TARGET_SECONDS else 'NOT met'}")


if __name__ == "__main__":
    main()
