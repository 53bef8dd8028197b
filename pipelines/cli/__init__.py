"""The ``cascade`` command line: argument parsing, names → typed values, exit codes, printing."""

from pipelines.cli.main import main

__all__ = ["main"]
