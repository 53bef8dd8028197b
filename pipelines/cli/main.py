"""The ``cascade`` command line: the parser of every command module, errors → exit codes.

Errors: every :class:`~pipelines.errors.CascadeError`, and every error of the :mod:`backtest`
and :mod:`forecasting` libraries (their roots ``BacktestError`` and ``ForecastingError``, see
:func:`pipelines.errors.as_cascade_error`), is printed by :func:`main` — here and nowhere
else — as one line ``error: ...`` on stderr with exit code 2, with library parameter names
(``dust_usd``) shown as the flags that set them (``--dust-usd``). Anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

# Importing a command module registers its sub-commands; each keeps heavy imports inside handlers.
from pipelines.cli import attribute as _attribute  # noqa: F401
from pipelines.cli import backtest as _backtest  # noqa: F401
from pipelines.cli import data as _data  # noqa: F401
from pipelines.cli import forecast as _forecast  # noqa: F401
from pipelines.cli import pipeline as _pipeline  # noqa: F401
from pipelines.cli.registry import COMMANDS, FLAG_ALIASES
from pipelines.errors import as_cascade_error

#: Per command, library parameter name → flag; filled by :func:`build_parser`.
FLAGS: dict[str, dict[str, str]] = {}

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
        FLAGS[name] = {
            action.dest: max(action.option_strings, key=len)
            for action in sp._actions
            if action.option_strings and action.dest != "help"
        } | FLAG_ALIASES.get(name, {})
    return parser


def flag_message(message: str, flags: Mapping[str, str]) -> str:
    """``message`` on one line, with library parameter names replaced by their flags.

    A name is replaced where the libraries use it as a parameter: ``owner.name`` (``dutch_auction
    .dust_usd=-1.0``, ``instant.close_factor is 1.5``), ``name=``, ``name must``, and any
    unquoted snake_case name (``history_days and min_train must be positive``). A plain word
    elsewhere, or anything quoted (``column 'bonus'``), is data, not a parameter: left alone.
    """
    text = " ".join(line.strip() for line in message.splitlines() if line.strip())
    for name in sorted(flags, key=len, reverse=True):
        escaped = re.escape(name)
        text = re.sub(rf"(?<![\w.\-/])[A-Za-z_]\w*\.{escaped}\b(?![.\-/])", flags[name], text)
        text = re.sub(rf"(?<![\w.\-/'\"]){escaped}(?=\s*=|\s+must\b)", flags[name], text)
        if "_" in name:  # a snake_case word outside quotes is an identifier, never prose
            text = re.sub(rf"(?<![\w.\-/'\"]){escaped}(?![\w'\"\-/]|\.\w)", flags[name], text)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cascade`` console script."""
    # A loaded 2-core machine can take well over Prefect's default 20 s to start its
    # temporary server; wait longer rather than fail.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    args = build_parser().parse_args(argv)
    handler = COMMANDS[args.command][1]
    try:
        return handler(args)
    except Exception as exc:
        error = as_cascade_error(exc)
        if error is None:  # a bug, not a user error: keep the traceback
            raise
        print(f"error: {flag_message(str(error), FLAGS.get(args.command, {}))}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
