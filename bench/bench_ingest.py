"""Benchmark the full ingest and the unchanged re-run (a script, not a test).

Usage: ``python bench/bench_ingest.py [--runs 1]``. Runs ``cascade ingest`` as a user would (a
fresh process each time, Prefect's temporary server included) on a fresh database, then again
with nothing changed. Also times hashing every registered file, the floor of the re-run, and
reports both figures as ratios against it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    from pipelines.catalog.fetch import fetch
    from pipelines.catalog.registry import load_registry

    start = time.perf_counter()
    for entry in load_registry():
        fetch(entry)
    hash_all = time.perf_counter() - start
    results = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "bench.duckdb"
            env = dict(os.environ, PREFECT_HOME=str(Path(tmp) / "prefect"))
            cmd = [sys.executable, "-m", "pipelines.cli.main", "ingest", "--db", str(db)]
            full = timed(cmd, env)
            rerun = timed(cmd, env)
            results.append((full, rerun))
    full = min(r[0] for r in results)
    rerun = min(r[1] for r in results)
    print(f"cores: {os.cpu_count()}")
    print(f"sha256 of every registered file (baseline): {hash_all:6.2f} s")
    print(f"full ingest, fresh database: {full:6.2f} s  ({full / hash_all:5.1f}x baseline)")
    print(f"unchanged re-run: {rerun:6.2f} s  ({rerun / hash_all:5.1f}x baseline)")


if __name__ == "__main__":
    main()
