"""Benchmark: the share of ``cascade attribute`` spent replaying the market-level policies.

Run: ``python bench/bench_market_policies.py --db cascade.duckdb [--events W6,W7] [--assets BTC]``
on a warehouse built by ``cascade run`` (opened read-only; nothing is written). One
``compute_attribution`` is timed end to end, and inside it the policy replays
(:func:`pipelines.attribution.policies.policy_frames`: every policy at both impact prefactors).
The figure to read is the ratio, measured in the same process and run; the load average is
printed with it because the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import time

import pipelines.attribution.compute as compute
from pipelines.warehouse.connection import connect


def main() -> None:
    """Time one attribution run and its policy replays; print the ratio."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--events", default="W6,W7")
    ap.add_argument("--assets", default="BTC")
    a = ap.parse_args()
    spent = [0.0]
    inner = compute.policy_frames

    def timed(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        t = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - t

    compute.policy_frames = timed
    con = connect(a.db, read_only=True)
    try:
        config = compute.build_config(con, events=a.events.split(","), assets=a.assets.split(","))
        t0 = time.perf_counter()
        run = compute.compute_attribution(con, config)
        total = time.perf_counter() - t0
    finally:
        con.close()
        compute.policy_frames = inner
    n = run.frames["market_policy_results"].height
    load = os.getloadavg()[0]
    print(
        f"attribution {total:.1f} s, of which policy replays {spent[0]:.1f} s "
        f"({n} policy rows): ratio {spent[0] / total:.2f}; load average {load:.2f}"
    )


if __name__ == "__main__":
    main()
