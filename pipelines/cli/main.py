"""The ``cascade`` command line: the parser of every command module, errors → exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

# Importing a command module registers its sub-commands; each keeps heavy imports inside handlers.
from pipelines.cli import backtest as _backtest  # noqa: F401
from pipelines.cli import data as _data  # noqa: F401
from pipelines.cli import forecast as _forecast  # noqa: F401
from pipelines.cli import pipeline as _pipeline  # noqa: F401
from pipelines.cli.registry import COMMANDS
from pipelines.errors import CascadeError

# --- entry point --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered sub-command."""
    from pipelines.warehouse.connection import default_db_path

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
    for name, (configure, _handler, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text, parents=[common])
        configure(sp)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cascade`` console script."""
    # A loaded 2-core machine can take well over Prefect's default 20 s to start its
    # temporary server; wait longer rather than fail.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    args = build_parser().parse_args(argv)
    handler = COMMANDS[args.command][1]
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
