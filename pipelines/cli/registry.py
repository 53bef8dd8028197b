"""Sub-command registry of the ``cascade`` command line (the ground floor of ``pipelines.cli``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

Handler = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Handler, str]] = {}

#: Per command, library parameter names whose flag is not ``--`` + the name with dashes
#: (``{"Y": "--impact-y"}``); every other flag is found from the parser's own ``dest``.
FLAG_ALIASES: dict[str, dict[str, str]] = {}


def command(
    name: str, help_text: str, *, flag_aliases: dict[str, str] | None = None
) -> Callable[[Handler], Handler]:
    """Register a sub-command; the decorated function's ``configure`` attribute adds its flags.

    ``flag_aliases`` maps library parameter names to the flag that sets them, for error
    messages (see :func:`pipelines.cli.main.flag_message`).
    """

    def decorate(func: Handler) -> Handler:
        configure = getattr(func, "configure", lambda parser: None)
        COMMANDS[name] = (configure, func, help_text)
        FLAG_ALIASES[name] = dict(flag_aliases or {})
        return func

    return decorate


def with_args(configure: Callable[[argparse.ArgumentParser], None]) -> Callable[[Handler], Handler]:
    """Attach an argument configurator to a handler (apply below ``@command``)."""

    def decorate(func: Handler) -> Handler:
        func.configure = configure  # type: ignore[attr-defined]
        return func

    return decorate


def print_frame(frame, fmt: str = "table") -> None:  # noqa: ANN001 - polars frame
    """Print a polars frame as a plain table (no shape or dtype rows), Markdown, CSV or JSON."""
    import polars as pl

    if fmt == "csv":
        sys.stdout.write(frame.write_csv())
    elif fmt == "json":
        sys.stdout.write(frame.write_json() + "\n")
    else:
        with pl.Config(**table_config(markdown=fmt == "markdown")):
            print(frame)


def table_config(*, markdown: bool = False, rows: int = 200) -> dict[str, object]:
    """``polars.Config`` settings of every table the CLI prints: plain, nothing truncated."""
    return {
        "tbl_rows": rows,
        "tbl_cols": -1,
        "fmt_str_lengths": 200,
        "tbl_width_chars": 10_000,
        "tbl_hide_dataframe_shape": True,
        "tbl_hide_column_data_types": True,
        "tbl_hide_dtype_separator": True,
        "tbl_formatting": "MARKDOWN" if markdown else "UTF8_FULL_CONDENSED",
    }
