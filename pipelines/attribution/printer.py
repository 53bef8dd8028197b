"""Markdown tables of a stored attribution run, and the command line both summaries share.

:mod:`pipelines.attribution.summary` (attribution, model check, impact check, books) and
:mod:`pipelines.attribution.policy_summary` (market-level policies, Maker book, ADL) print their
tables with :func:`markdown_table` and run as ``python -m … --db W [--run-id R]`` through
:func:`summary_main`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

__all__ = [
    "Cell",
    "latest_market_run",
    "markdown_table",
    "millions_cell",
    "save_time_figure",
    "summary_main",
]

#: Formats one cell: ``cell(column name, value) -> text``.
Cell = Callable[[str, object], str]


def save_time_figure(fig: Any, path: Path, dpi: int) -> Path:
    """Date-formatted x axis, tight layout, write ``path`` (creating its folder), close ``fig``."""
    import matplotlib.pyplot as plt

    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def millions_cell(col: str, v: object, *, none: str = "") -> str:
    """Floats with 3 decimals, USD-sized ones (``|v| >= 1e6``) in whole $M; ``None`` as ``none``."""
    if isinstance(v, float):
        return f"{v / 1e6:,.0f}M" if abs(v) >= 1e6 else f"{v:.3f}"
    return none if v is None else str(v)


def markdown_table(frame: pl.DataFrame, cell: Cell = millions_cell) -> str:
    """One frame as a Markdown table, every cell formatted by ``cell``.

    Parameters
    ----------
    frame : polars.DataFrame
        The rows.
    cell : callable, optional
        ``cell(column, value) -> str``; default :func:`millions_cell`.

    Returns
    -------
    str
        Header, separator and one line per row.
    """
    head = "| " + " | ".join(frame.columns) + " |"
    sep = "|" + "---|" * len(frame.columns)
    body = [
        "| " + " | ".join(cell(c, v) for c, v in zip(frame.columns, row, strict=True)) + " |"
        for row in frame.iter_rows()
    ]
    return "\n".join([head, sep, *body])


def latest_market_run(con: duckdb.DuckDBPyConnection) -> str | None:
    """The most recent ``cascade attribute`` run id (``None`` when there is none)."""
    try:
        rows = con.execute(
            "SELECT run_id FROM market_runs ORDER BY created_at DESC, run_id LIMIT 1"
        ).fetchall()
    except duckdb.CatalogException:
        return None
    return rows[0][0] if rows else None


def summary_main(
    description: str, render: Callable[[duckdb.DuckDBPyConnection, str | None], str]
) -> None:
    """``--db W [--run-id R]``: print ``run R``, a blank line and ``render(con, R)``.

    The warehouse is opened read-only; ``R`` defaults to :func:`latest_market_run`.

    Parameters
    ----------
    description : str
        The command's help line.
    render : callable
        Builds the Markdown of run ``R`` from the connection.
    """
    import argparse

    from pipelines.warehouse.connection import connect

    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--db", required=True)
    ap.add_argument("--run-id", help="default: the latest run")
    a = ap.parse_args()
    con = connect(a.db, read_only=True)
    rid = a.run_id or latest_market_run(con)
    print(f"run {rid}\n")
    print(render(con, rid))
