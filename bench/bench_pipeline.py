"""Benchmark ``cascade run`` end to end (a script, not a test).

Usage: ``python bench/bench_pipeline.py [--db-template PATH]``. Every command runs
as a user would run it: a fresh ``cascade`` process, Prefect's temporary server included.

1. ``cascade run`` on a fresh database: ingest of the real data, forecast, the default sweep
   (7 events x 8 policies, dynamic LTV driven by garch, har and ewma), report. Target <= 180 s.
2. ``cascade run`` again with nothing changed (no Prefect needed). Target <= 20 s. Also with
   ``--force-flow``: the same through the Prefect flow, which skips stage by stage.
3. The default sweep alone (backtest tables emptied, forecasts kept) on the default thread
   runner, then on a local Dask cluster of 1 and of 2 worker processes (1 thread each).
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

# What the `cascade` console script runs (not `python -m pipelines.cli.main`: as __main__ the module
# is a second copy, and the sub-commands registered by its plugins land in the first one).
_CASCADE = "import sys; from pipelines.cli.main import main; sys.exit(main(sys.argv[1:]))"


def cascade(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Run ``cascade ARGS``; wall time and stdout."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _CASCADE, *args],
        env=env,
        check=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    return time.perf_counter() - start, proc.stdout


def stage(stdout: str, name: str) -> float | None:
    """Seconds of one stage from the CLI's last line (``[… backtest 5.1 s, …]``)."""
    match = re.search(rf"{name} ([0-9.]+) s", stdout)
    return float(match.group(1)) if match else None


def empty_backtests(db: Path) -> None:
    con = duckdb.connect(str(db))
    try:
        for table in ("backtest_steps", "backtest_metrics", "backtest_runs"):
            con.execute(f"DELETE FROM {table}")
        con.execute("CHECKPOINT")
    finally:
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--db-template",
        type=Path,
        default=None,
        help="skip step 1: start from a copy of this warehouse (after a `cascade run`)",
    )
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = dict(os.environ, PREFECT_HOME=str(work / "prefect"))
        db, reports = work / "cascade.duckdb", work / "reports"
        base = ["--db", str(db), "--report-dir", str(reports), "--no-progress"]
        if args.db_template:
            shutil.copy(args.db_template, db)
        else:
            full, out = cascade(["run", *base], env)
            stages = out.strip().splitlines()[-1]
            print(f"1. cascade run, fresh database: {full:6.1f} s  (target <= 180 s)  {stages}")
        rerun, out = cascade(["run", *base], env)
        assert "nothing changed" in out, out
        print(f"2. unchanged re-run:             {rerun:6.1f} s  (target <= 20 s)")
        forced, out = cascade(["run", *base, "--force-flow"], env)
        print(f"   unchanged re-run --force-flow: {forced:5.1f} s  (through Prefect)")
        print("3. default sweep only (84 runs)  wall of `cascade run`  / backtest stage")
        for label, extra in (
            ("threads (default)", []),
            ("Dask, 1 worker", ["--workers", "1"]),
            ("Dask, 2 workers", ["--workers", "2"]),
        ):
            empty_backtests(db)
            wall, out = cascade(["run", *base, *extra], env)
            print(f"   {label:18s} {wall:6.1f} s  / {stage(out, 'backtest'):5.1f} s")


if __name__ == "__main__":
    main()
