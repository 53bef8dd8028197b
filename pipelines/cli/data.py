"""``cascade ingest``, ``ingest-prices``, ``remove-asset``, ``sql`` and ``data-report``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pipelines.cli.registry import command, print_frame, with_args

# --- ingest -------------------------------------------------------------------------------------


def _ingest_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", action="append", help="only this registry source (repeatable)")
    p.add_argument("--force", action="store_true", help="reload even unchanged sources")


@command("ingest", "load every registered source into the warehouse (Prefect flow `ingest`)")
@with_args(_ingest_args)
def cmd_ingest(args: argparse.Namespace) -> int:
    """Run the ingest flow, or report that nothing changed without starting Prefect."""
    from pipelines.ingest.plan import plan_ingest

    start = time.perf_counter()
    plan = plan_ingest(args.db, sources=args.source, force=args.force)
    if not plan.todo:
        print(
            f"all {len(plan.unchanged)} sources unchanged (sha256 verified); nothing to load "
            f"[{time.perf_counter() - start:.1f} s]"
        )
        return 0
    from pipelines.ingest.flow import ingest_flow

    summary = ingest_flow(db_path=str(args.db), sources=args.source, force=args.force)
    print(
        f"loaded {len(summary.loaded)} sources ({sum(summary.loaded.values()):,} rows), "
        f"{len(summary.skipped)} unchanged [{time.perf_counter() - start:.1f} s]"
    )
    return 0


def _ingest_prices_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--file", required=True, type=Path, help="CSV or Parquet with ts,open,high,low,close,volume"
    )
    p.add_argument("--asset", required=True, help="base symbol, e.g. BTC")
    p.add_argument("--market", default="spot", choices=["spot", "perp", "mark", "index"])
    p.add_argument(
        "--venue",
        default="user",
        help="venue label (1-32 of A-Z a-z 0-9 . _ -); stored as user:<venue> unless --override",
    )
    p.add_argument(
        "--bar-seconds",
        type=int,
        default=None,
        help="bar size, 1 s to 31 days; inferred when omitted",
    )
    p.add_argument(
        "--override",
        action="store_true",
        help="store under --venue itself, taking precedence over the registry's bars there",
    )


@command("ingest-prices", "load a user's own OHLCV file into `prices`")
@with_args(_ingest_prices_args)
def cmd_ingest_prices(args: argparse.Namespace) -> int:
    """Validate a user's OHLCV file strictly and load it in one transaction."""
    from pipelines.ingest.user_prices import ingest_user_prices

    done = ingest_user_prices(
        args.db,
        args.file,
        asset=args.asset,
        market=args.market,
        venue=args.venue,
        bar_seconds=args.bar_seconds,
        override=args.override,
    )
    if done.replaced:
        print(f"replaced {done.replaced:,} bars previously loaded as source {done.source!r}")
    note = " (--override: these bars take precedence over the registry's)" if done.override else ""
    print(
        f"loaded {done.rows:,} bars of {args.asset.upper()} at venue {done.venue!r} "
        f"as source {done.source!r}{note}"
    )
    how = "inferred from the timestamps" if done.inferred else "from --bar-seconds"
    print(f"bar size {done.bar_seconds} s ({how})")
    return 0


def _remove_asset_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("asset", help="asset whose user-loaded bars to remove, e.g. ZZZ")
    p.add_argument(
        "--venue",
        default=None,
        help="only the user sources at this venue (binance matches user:binance and an override)",
    )
    p.add_argument("--yes", action="store_true", help="remove without asking for confirmation")


@command("remove-asset", "remove an asset's bars loaded with `cascade ingest-prices`")
@with_args(_remove_asset_args)
def cmd_remove_asset(args: argparse.Namespace) -> int:
    """List the user sources of an asset with their bars, confirm, delete in one transaction."""
    from pipelines.errors import CascadeError
    from pipelines.ingest.user_prices import plan_remove_asset, remove_user_sources

    plan = plan_remove_asset(args.db, args.asset, venue=args.venue)
    total = sum(p.bars for p in plan)
    for item in plan:
        print(f"source {item.source!r}: {item.bars:,} bars")
    if not args.yes:
        if not sys.stdin.isatty():
            raise CascadeError(
                "stdin is not a terminal, so remove-asset cannot ask; pass --yes to remove "
                f"these {len(plan)} sources ({total:,} bars)"
            )
        answer = input(f"remove these {len(plan)} sources ({total:,} bars)? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            raise CascadeError("not confirmed; nothing was removed")
    removed = remove_user_sources(args.db, [p.source for p in plan])
    noun = "source" if len(removed) == 1 else "sources"
    print(
        f"removed {len(removed)} {noun} ({sum(r.bars for r in removed):,} bars) of "
        f"{args.asset.upper()}"
    )
    return 0


# --- sql / data-report --------------------------------------------------------------------------


def _sql_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "query",
        help="SQL to run on a read-only connection that can read the warehouse and nothing else",
    )
    p.add_argument("--format", default="table", choices=["table", "markdown", "csv", "json"])


@command("sql", "run read-only SQL on the warehouse")
@with_args(_sql_args)
def cmd_sql(args: argparse.Namespace) -> int:
    """Print the result of a query on the locked, read-only warehouse."""
    from pipelines.warehouse.query import run_query

    frame = run_query(args.db, args.query, args.format)
    if frame is not None:
        print_frame(frame, args.format)
    return 0


@command("data-report", "coverage per asset × crash window, gaps, rows dropped and why")
def cmd_data_report(args: argparse.Namespace) -> int:
    """Print the data report."""
    from pipelines.warehouse.connection import connect
    from pipelines.warehouse.data_report import build_report, format_report

    con = connect(args.db, read_only=True)
    try:
        print(format_report(build_report(con)))
    finally:
        con.close()
    return 0
