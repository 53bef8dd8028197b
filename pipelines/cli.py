"""The ``cascade`` command line."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from pipelines.errors import CascadeError

Handler = Callable[[argparse.Namespace], int]
_COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Handler, str]] = {}


def command(name: str, help_text: str) -> Callable[[Handler], Handler]:
    """Register a sub-command; the decorated function's ``configure`` attribute adds its flags."""

    def decorate(func: Handler) -> Handler:
        configure = getattr(func, "configure", lambda parser: None)
        _COMMANDS[name] = (configure, func, help_text)
        return func

    return decorate


def with_args(configure: Callable[[argparse.ArgumentParser], None]) -> Callable[[Handler], Handler]:
    """Attach an argument configurator to a handler (apply below ``@command``)."""

    def decorate(func: Handler) -> Handler:
        func.configure = configure  # type: ignore[attr-defined]
        return func

    return decorate


def _print_frame(frame, fmt: str = "table") -> None:  # noqa: ANN001 - polars frame
    import polars as pl

    if fmt == "csv":
        sys.stdout.write(frame.write_csv())
    elif fmt == "json":
        sys.stdout.write(frame.write_json() + "\n")
    else:
        with pl.Config(tbl_rows=200, tbl_cols=-1, fmt_str_lengths=60, tbl_width_chars=220):
            print(frame)


# --- ingest -------------------------------------------------------------------------------------


def _ingest_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", action="append", help="only this registry source (repeatable)")
    p.add_argument("--force", action="store_true", help="reload even unchanged sources")


@command("ingest", "load every registered source into the warehouse (Prefect flow `ingest`)")
@with_args(_ingest_args)
def cmd_ingest(args: argparse.Namespace) -> int:
    """Run the ingest flow, or report that nothing changed without starting Prefect."""
    from pipelines.ingest_plan import plan_ingest

    start = time.perf_counter()
    plan = plan_ingest(args.db, sources=args.source, force=args.force)
    if not plan.todo:
        print(
            f"all {len(plan.unchanged)} sources unchanged (sha256 verified); nothing to load "
            f"[{time.perf_counter() - start:.1f} s]"
        )
        return 0
    from pipelines.ingest import ingest_flow

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
    p.add_argument("--venue", default="user")
    p.add_argument("--bar-seconds", type=int, default=None, help="bar size; inferred when omitted")


@command("ingest-prices", "load a user's own OHLCV file into `prices`")
@with_args(_ingest_prices_args)
def cmd_ingest_prices(args: argparse.Namespace) -> int:
    """Validate a user's OHLCV file strictly and load it in one transaction."""
    from pipelines.user_prices import ingest_user_prices

    rows, source = ingest_user_prices(
        args.db,
        args.file,
        asset=args.asset,
        market=args.market,
        venue=args.venue,
        bar_seconds=args.bar_seconds,
    )
    print(f"loaded {rows:,} bars of {args.asset.upper()} as source {source!r}")
    return 0


# --- sql / data-report --------------------------------------------------------------------------


def _sql_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("query", help="SQL to run on a read-only connection")
    p.add_argument("--format", default="table", choices=["table", "csv", "json"])


@command("sql", "run read-only SQL on the warehouse")
@with_args(_sql_args)
def cmd_sql(args: argparse.Namespace) -> int:
    """Print the result of a read-only query."""
    import duckdb

    from pipelines.warehouse import connect

    con = connect(args.db, read_only=True)
    try:
        try:
            frame = con.sql(args.query).pl()
        except duckdb.Error as exc:
            raise CascadeError(f"SQL error: {exc}") from exc
    finally:
        con.close()
    _print_frame(frame, args.format)
    return 0


@command("data-report", "coverage per asset × crash window, gaps, rows dropped and why")
def cmd_data_report(args: argparse.Namespace) -> int:
    """Print the data report."""
    from pipelines.data_report import build_report, format_report
    from pipelines.warehouse import connect

    con = connect(args.db, read_only=True)
    try:
        print(format_report(build_report(con)))
    finally:
        con.close()
    return 0


@command("run", "the whole pipeline with embedded defaults")
def cmd_run(args: argparse.Namespace) -> int:
    """Ingest, then print the data report (the forecast and backtest stages join later)."""
    args.source, args.force = None, False
    cmd_ingest(args)
    return cmd_data_report(args)


# --- entry point --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered sub-command."""
    from pipelines.warehouse import default_db_path

    parser = argparse.ArgumentParser(
        prog="cascade", description="Backtest and forecast cascading liquidations on real crashes."
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db",
        type=Path,
        default=default_db_path(),
        help="DuckDB warehouse (default: $CASCADE_DB or ./cascade.duckdb)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (configure, _handler, help_text) in _COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text, parents=[common])
        configure(sp)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cascade`` console script."""
    # A loaded 2-core machine can take well over Prefect's default 20 s to start its
    # temporary server; wait longer rather than fail.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    _load_plugins()
    args = build_parser().parse_args(argv)
    handler = _COMMANDS[args.command][1]
    try:
        return handler(args)
    except CascadeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        from pipelines.errors import DataValidationError

        if isinstance(exc, DataValidationError):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise


def _load_plugins() -> None:
    """Import the modules that register further sub-commands (forecast, backtest, ...)."""
    import importlib

    for module in ("pipelines.cli_forecast", "pipelines.cli_backtest", "pipelines.cli_pipeline"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


if __name__ == "__main__":  # pragma: no cover
    # Run the registered copy of this module, not ``__main__``, so plugin sub-commands
    # (which import pipelines.cli) register where main() looks for them.
    from pipelines.cli import main as _main

    sys.exit(_main())
