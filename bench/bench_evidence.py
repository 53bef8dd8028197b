"""Benchmark the evidence-grade sweep (a script, not a test).

Usage: ``python bench/bench_evidence.py --db PATH [--stress-paths 200]`` where ``PATH`` is a
warehouse on which ``cascade run`` has already ingested and forecast (e.g. ``cascade run --db PATH
--stress-paths 0``). On copies of it, with the backtest tables emptied:

1. baseline: the default sweep on the real paths only (``--stress-paths 0``; the 84 scoreboard
   runs and their 168 threshold-control runs);
2. evidence: the same sweep plus the intervals over N stress paths per event (default 200).

Both run as a user runs them (a fresh ``cascade run`` process, Prefect's temporary server
included). The result is reported as the ratio evidence / baseline measured in the same run,
with the machine's load average, and the evidence sweep's wall time against the target of
10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

_CASCADE = "import sys; from pipelines.cli.main import main; sys.exit(main(sys.argv[1:]))"
_TABLES = (
    "backtest_intervals",
    "backtest_current",
    "backtest_steps",
    "backtest_metrics",
    "backtest_runs",
)


def _fresh_copy(template: Path, work: Path, name: str) -> Path:
    db = work / name / "cascade.duckdb"
    db.parent.mkdir(parents=True)
    shutil.copy(template, db)
    con = duckdb.connect(str(db))
    try:
        for table in _TABLES:
            con.execute(f"DELETE FROM {table}")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return db


def _run(db: Path, stress_paths: int, env: dict[str, str]) -> tuple[float, float | None]:
    args = ["run", "--db", str(db), "--no-progress", "--stress-paths", str(stress_paths)]
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _CASCADE, *args],
        env=env,
        check=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    wall = time.perf_counter() - start
    match = re.search(r"backtest ([0-9.]+) s", proc.stdout)
    return wall, float(match.group(1)) if match else None


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True, help="ingested + forecast warehouse")
    parser.add_argument("--stress-paths", type=int, default=200)
    args = parser.parse_args()
    env = {**os.environ, "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        load_before = os.getloadavg()
        base_db = _fresh_copy(args.db, work, "baseline")
        base_wall, base_stage = _run(base_db, 0, env)
        ev_db = _fresh_copy(args.db, work, "evidence")
        ev_wall, ev_stage = _run(ev_db, args.stress_paths, env)
        load_after = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} cores; load average before {load_before[0]:.2f}, "
        f"after {load_after[0]:.2f} (1 min)"
    )
    print("| sweep | cascade run wall s | backtest stage s |")
    print("| --- | --- | --- |")
    print(f"| real paths only (+ controls) | {base_wall:.1f} | {base_stage} |")
    print(f"| + {args.stress_paths} stress paths per event | {ev_wall:.1f} | {ev_stage} |")
    ratio = ev_wall / base_wall
    print(
        f"ratio evidence / baseline (same run): {ratio:.2f}; "
        f"evidence sweep {ev_wall / 60:.1f} min (target <= 10 min)"
    )


if __name__ == "__main__":
    main()
