"""Benchmark of the whole ``cascade backtest`` command on a user's book and price files.

Run: ``python bench/bench_backtest_cli.py`` (defaults: 1,000,000 positions × 10,080 one-minute
steps, policies ``instant`` and ``dutch_auction``, Parquet and CSV files).

It writes a seeded synthetic book (``position_id, collateral_asset, collateral, debt,
liquidation_threshold, bonus``) and a seeded one-minute crash path (``ts, price``) to a temp
directory, then times, for every policy and file format, the command

    cascade backtest --db <fresh db> --book BOOK --prices PRICES --policy P --json
                     --adv-usd 5e9 --sigma-day 0.05

as a subprocess (a fresh warehouse each time, so nothing is cached; the ADV/σ flags stand in
for the warehouse's calibration, which an empty warehouse cannot give). The simulation alone
(``backtest.simulate`` on the same book, path, impact and policy, zero-impact counterfactual
included) is timed in-process, and the command's fixed start-up cost is measured with
``cascade backtest --help``. Target: ≤ 8 s for the whole command on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

from backtest import SqrtImpact, simulate, synthetic_book, synthetic_crash_path

CASCADE = [sys.executable, "-m", "pipelines.cli.main"]
IMPACT_FLAGS = ["--adv-usd", "5e9", "--sigma-day", "0.05"]


def write_inputs(directory: Path, n: int, steps: int, fmt: str) -> tuple[Path, Path]:
    """Seeded book and price files in ``fmt`` (``parquet`` or ``csv``)."""
    book = synthetic_book(n, price=2_000.0, seed=1, total_debt=5e9)
    frame = book.to_frame().with_columns(pl.lit("ETH").alias("collateral_asset"))
    path = synthetic_crash_path(steps, seed=2)
    prices = path.to_frame().with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
    book_file = directory / f"book.{fmt}"
    prices_file = directory / f"prices.{fmt}"
    if fmt == "parquet":
        frame.write_parquet(book_file)
        prices.write_parquet(prices_file)
    else:
        frame.write_csv(book_file)
        prices.write_csv(prices_file)
    return book_file, prices_file


def time_command(args: list[str], repeat: int) -> tuple[float, dict]:
    """Median wall time of a ``cascade`` subprocess and its last JSON output."""
    times = []
    out: dict = {}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as db_dir:
            db = Path(db_dir) / "bench.duckdb"
            start = time.perf_counter()
            proc = subprocess.run(
                [*CASCADE, "backtest", "--db", str(db), *args],
                capture_output=True,
                text=True,
                check=False,
            )
            times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"cascade failed ({proc.returncode}):\n{proc.stderr}")
        if "--json" in args:
            out = json.loads(proc.stdout)
    return statistics.median(times), out


def time_library(book_file: Path, prices_file: Path, policy: str, repeat: int) -> float:
    """Median in-process time of ``simulate`` on the same inputs (files read beforehand)."""
    from pipelines.backtests.books import read_book_file
    from pipelines.backtests.calibration import read_prices_file
    from pipelines.backtests.policy import build_policy

    loaded = read_book_file(book_file)
    path, _spec = read_prices_file(prices_file)
    impact = SqrtImpact(sigma_day=0.05, adv_usd=5e9, half_life_steps=30.0)
    times = []
    for _ in range(repeat):
        pol = build_policy(
            policy, step_seconds=path.step_seconds, total_debt=loaded.book.total_debt
        )
        book = type(loaded.book)(  # a fresh Book: no cached sort from the previous repeat
            position_id=loaded.book.position_id,
            collateral=loaded.book.collateral,
            debt=loaded.book.debt,
            liquidation_threshold=loaded.book.liquidation_threshold,
            bonus=loaded.book.bonus,
        )
        start = time.perf_counter()
        simulate(book, path, impact, pol)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=1_000_000)
    parser.add_argument("--steps", type=int, default=10_080)
    parser.add_argument("--policies", nargs="+", default=["instant", "dutch_auction"])
    parser.add_argument("--formats", nargs="+", default=["parquet", "csv"])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    print(f"cores: {os.cpu_count()}; {args.positions:,} positions × {args.steps:,} steps")
    startup, _ = time_command(["--help"], args.repeat)
    print(f"command start-up (cascade backtest --help): {startup:.2f} s")
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for fmt in args.formats:
            t0 = time.perf_counter()
            book_file, prices_file = write_inputs(Path(work), args.positions, args.steps, fmt)
            size = book_file.stat().st_size / 1e6
            took = time.perf_counter() - t0
            print(f"\n{fmt}: wrote book ({size:.0f} MB) and prices in {took:.1f} s")
            for policy in args.policies:
                flags = [
                    "--book",
                    str(book_file),
                    "--prices",
                    str(prices_file),
                    "--policy",
                    policy,
                    "--json",
                    "--half-life-steps",
                    "30",
                    *IMPACT_FLAGS,
                ]
                wall, out = time_command(flags, args.repeat)
                sim = time_library(book_file, prices_file, policy, args.repeat)
                rows.append((fmt, policy, wall, sim, out.get("n_liquidations")))
                print(
                    f"  {policy:<14} command {wall:5.2f} s | simulate {sim:5.2f} s "
                    f"({100 * sim / wall:4.1f} % of the command) | start-up {startup:4.2f} s | "
                    f"rest (read, validate, hash, write) {wall - sim - startup:5.2f} s | "
                    f"{out.get('n_liquidations'):,} liquidations | target 8 s: "
                    f"{'OK' if wall <= 8.0 else 'MISSED'}"
                )
    print("\n| format | policy | command (s) | simulate (s) | simulate / command |")
    print("| --- | --- | ---: | ---: | ---: |")
    for fmt, policy, wall, sim, _n in rows:
        print(f"| {fmt} | {policy} | {wall:.2f} | {sim:.2f} | {sim / wall:.2f} |")


if __name__ == "__main__":
    main()
