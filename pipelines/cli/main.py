"""The ``cascade`` command line: the parser of every command module, errors → exit codes.

Errors: :func:`main` is the one error boundary. Every expected failure — a
:class:`~pipelines.errors.CascadeError`, an error of the :mod:`backtest` and :mod:`forecasting`
libraries (their roots ``BacktestError`` and ``ForecastingError``, see
:func:`pipelines.errors.as_cascade_error`), I/O (disk full, permissions), DuckDB I/O errors and
the write lock (:mod:`pipelines.cli.failures`), and bad argument values — is printed here and
nowhere else as one line ``error: ...`` on stderr with exit code 2, with library parameter
names (``dust_usd``) shown as the flags that set them (``--dust-usd``). Anything else is a bug:
one line with the path of a log holding the full traceback, exit code 1. ``--debug`` (or
``CASCADE_DEBUG=1``) prints the traceback as well.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

# Importing a command module registers its sub-commands; each keeps heavy imports inside handlers.
from pipelines.cli import attribute as _attribute  # noqa: F401
from pipelines.cli import backtest as _backtest  # noqa: F401
from pipelines.cli import data as _data  # noqa: F401
from pipelines.cli import forecast as _forecast  # noqa: F401
from pipelines.cli import keepers as _keepers  # noqa: F401
from pipelines.cli import optimize as _optimize  # noqa: F401
from pipelines.cli import pipeline as _pipeline  # noqa: F401
from pipelines.cli.registry import COMMANDS, FLAG_ALIASES

#: Per command, library parameter name → flag; filled by :func:`build_parser`.
FLAGS: dict[str, dict[str, str]] = {}

# --- entry point --------------------------------------------------------------------------------


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line ``error: ...`` and exit code 2."""

    def error(self, message: str) -> NoReturn:  # noqa: D102 - argparse API
        self.exit(2, f"error: {_one_line(message)} (see `{self.prog} --help`)\n")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered sub-command."""
    from pipelines.cli.names import default_db_path  # no DuckDB import before usage checks
    from pipelines.cli.quiet import add_global_flags

    parser = OneLineParser(
        prog="cascade", description="Backtest and forecast cascading liquidations on real crashes."
    )
    add_global_flags(parser)
    common = OneLineParser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=os.environ.get("CASCADE_DEBUG", "") not in ("", "0"),
        help="print full tracebacks of errors (also CASCADE_DEBUG=1)",
    )
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
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    handler = COMMANDS[args.command][1]
    from pipelines.cli.quiet import quiet_environment

    quiet_environment(bool(getattr(args, "verbose", False)))
    from pipelines.orchestration.prefect_server import guard_temporary_servers

    guard_temporary_servers()  # a temporary Prefect server dies with this process
    if not args.debug:
        from pipelines.cli.failures import quiet_expected_tracebacks

        quiet_expected_tracebacks()  # the one line below says it; no Prefect traceback
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`cascade sql … | head`): not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the flush at exit does not fail again
        return 0
    except Exception as exc:
        from pipelines.cli.failures import describe_failure, write_crash_log

        if args.debug:
            traceback.print_exc()
        message = describe_failure(exc)
        if message is not None:
            print(f"error: {flag_message(message, FLAGS.get(args.command, {}))}", file=sys.stderr)
            return 2
        log = write_crash_log(exc, argv)
        where = f"full traceback in {log}" if log else "no log could be written"
        print(
            f"error: unexpected {type(exc).__name__}: {_one_line(str(exc))[:300]} "
            f"({where}; run again with --debug to print it; please report it)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
