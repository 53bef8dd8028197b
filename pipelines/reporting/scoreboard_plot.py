"""The policy scoreboard as a table and a heatmap (events × policies).

Usable by the report stage and from the shell::

    python -m pipelines.reporting.scoreboard_plot --db cascade.duckdb \
        --png docs/img/scoreboard.png --markdown

Rows are the default-parameter runs of one impact model (``sqrt`` by default), the latest run per
(event, policy, forecast model). The heatmap's top panel is the induced liquidation the policy
avoided relative to ``instant`` (USD millions, ``avoided_cascades.avoided_induced_usd``;
positive = less induced liquidation), the bottom panel the amplification (liquidated debt / the
zero-impact counterfactual's).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

__all__ = ["plot_scoreboard", "scoreboard_frame", "scoreboard_markdown", "scoreboard_pivot"]

_SQL = """
WITH runs AS (
    SELECT s.*, r.created_at, e.window_label,
           CASE WHEN s.forecast_model = '-' THEN s.policy
                ELSE s.policy || ' [' || s.forecast_model || ']' END AS policy_label
    FROM policy_scoreboard s
    JOIN (SELECT run_id, created_at FROM backtest_runs) r ON r.run_id = s.run_id
    LEFT JOIN events e ON e.event_id = s.event_id
    WHERE s.default_params AND s.impact = ? AND s.event_id IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY s.event_id, s.policy, s.forecast_model
                               ORDER BY r.created_at DESC, s.run_id) = 1
)
SELECT runs.window_label, runs.event_id, runs.book, runs.policy_label, runs.policy,
       runs.n_liquidations, runs.liquidated_usd, runs.induced_usd, runs.amplification,
       runs.max_cascade_depth, runs.cascade_episodes, runs.peak_price_deviation,
       runs.bad_debt_usd, runs.borrower_loss_usd, a.avoided_induced_usd, a.avoided_bad_debt_usd,
       runs.run_id
FROM runs LEFT JOIN avoided_cascades a ON a.run_id = runs.run_id
ORDER BY runs.window_label, runs.event_id, runs.policy_label
"""


def scoreboard_frame(con: duckdb.DuckDBPyConnection, *, impact: str = "sqrt") -> pl.DataFrame:
    """Latest default-parameter run per (event, policy, model) with its avoided cascades.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Warehouse connection (read-only is enough).
    impact : str, optional
        Impact model of the runs shown.

    Returns
    -------
    polars.DataFrame
        One row per (event, policy label).
    """
    return con.sql(_SQL, params=[impact]).pl()


def _money(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value / 1e6:,.2f}"


def scoreboard_markdown(frame: pl.DataFrame) -> str:
    """Markdown table of :func:`scoreboard_frame` (USD in millions)."""
    lines = [
        "| event | book | policy | liquidations | liquidated $M | induced $M | amplification "
        "| max depth | bad debt $M | borrower loss $M | avoided induced $M |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in frame.iter_rows(named=True):
        amp = r["amplification"]
        amp_s = "-" if amp is None or not math.isfinite(amp) else f"{amp:.4f}"
        lines.append(
            f"| {r['window_label'] or r['event_id']} | {r['book']} | {r['policy_label']} | "
            f"{r['n_liquidations']:,} | {_money(r['liquidated_usd'])} | "
            f"{_money(r['induced_usd'])} | {amp_s} | {r['max_cascade_depth']} | "
            f"{_money(r['bad_debt_usd'])} | {_money(r['borrower_loss_usd'])} | "
            f"{_money(r['avoided_induced_usd'])} |"
        )
    return "\n".join(lines)


def scoreboard_pivot(
    frame: pl.DataFrame, column: str, *, scale: float = 1e-6, digits: int = 2
) -> str:
    """Markdown events × policies table of one column (USD columns in millions by default).

    Parameters
    ----------
    frame : polars.DataFrame
        :func:`scoreboard_frame` output.
    column : str
        Column to show, e.g. ``avoided_induced_usd`` or ``amplification`` (``scale=1``).
    scale : float, optional
        Multiplier applied to the values.
    digits : int, optional
        Decimals shown.

    Returns
    -------
    str
    """
    rows, cols, grid = _grid(frame, column)
    lines = [
        "| event | " + " | ".join(cols) + " |",
        "| --- | " + " | ".join("---:" for _ in cols) + " |",
    ]
    for label, values in zip(rows, grid * scale):
        cells = ["-" if not np.isfinite(v) else f"{v:.{digits}f}" for v in values]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _grid(frame: pl.DataFrame, column: str) -> tuple[list[str], list[str], np.ndarray]:
    rows = (
        frame.select("window_label", "event_id", "book").unique().sort("window_label", "event_id")
    )
    row_labels = [f"{w or e} ({b})" for w, e, b in rows.iter_rows()]
    row_keys = [e for _w, e, _b in rows.iter_rows()]
    cols = list(dict.fromkeys(frame.sort("policy_label")["policy_label"].to_list()))
    if "instant" in cols:
        cols.remove("instant")
        cols.insert(0, "instant")
    grid = np.full((len(row_keys), len(cols)), np.nan)
    for r in frame.iter_rows(named=True):
        value = r[column]
        if value is not None:
            grid[row_keys.index(r["event_id"]), cols.index(r["policy_label"])] = float(value)
    return row_labels, cols, grid


def _usd(value: float) -> str:
    """``$1.2M``, ``$45k``, ``-$310``: a dollar amount short enough for a heatmap cell."""
    sign = "-" if value < 0 else ""
    v = abs(value)
    if v >= 1e9:
        return f"{sign}${v / 1e9:.1f}B"
    if v >= 1e6:
        return f"{sign}${v / 1e6:.1f}M" if v >= 1e7 else f"{sign}${v / 1e6:.2f}M"
    if v >= 1e3:
        return f"{sign}${v / 1e3:.0f}k"
    return f"{sign}${v:.0f}"


def _short_column(label: str) -> str:
    """``dynamic_ltv [garch]`` → ``dynLTV:garch`` (the scoreboard's short labels)."""
    from pipelines.reporting.labels import SHORT_LABELS

    policy, _, model = label.partition(" [")
    short = SHORT_LABELS.get(policy, policy)
    return f"{short}:{model.rstrip(']')}" if model else short


def normalise_rows(data: np.ndarray, *, center: float = 0.0) -> np.ndarray:
    """Each row divided by its largest ``|value - center|`` (so every event spans −1…1).

    A crash whose numbers are a hundred times smaller than another's keeps its own contrast:
    the colour compares policies within an event, the cell text carries the amount.
    """
    out = np.full(data.shape, np.nan)
    for i, row in enumerate(data - center):
        finite = np.abs(row[np.isfinite(row)])
        scale = float(finite.max()) if finite.size else 0.0
        out[i] = row / scale if scale > 0 else np.where(np.isfinite(row), 0.0, np.nan)
    return out


def plot_scoreboard(frame: pl.DataFrame, out: Path | str) -> Path:
    """Heatmap PNG: avoided induced USD (top) and amplification (bottom), events × policies.

    Colours are normalised per event (row): green = the policy's best avoided induced
    liquidation on that crash, red = its worst; the amplification panel shades each row from
    1 (no amplification) to the row's largest. Each cell prints its value (``$1.2M``, ``1.034``).

    Parameters
    ----------
    frame : polars.DataFrame
        :func:`scoreboard_frame` output.
    out : path
        PNG file to write (parent directories are created).

    Returns
    -------
    Path
        ``out``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows, cols, avoided = _grid(frame, "avoided_induced_usd")
    _, _, amp = _grid(frame, "amplification")
    cols = [_short_column(c) for c in cols]
    height = 1.6 + 0.45 * len(rows)
    fig = Figure(figsize=(max(9.0, 1.05 * len(cols) + 3.5), 2 * height + 0.6), dpi=110)
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 1)
    panels = (
        (
            axes[0], normalise_rows(avoided), avoided, _usd, "RdYlGn", -1.0,
            "avoided induced liquidation vs the book's mechanism (colour: per crash)",
            "worst … best\non this crash",
        ),
        (
            axes[1], normalise_rows(amp, center=1.0), amp, lambda v: f"{v:.3f}", "Reds", 0.0,
            "amplification = liquidated / zero-impact (colour: per crash, from 1)",
            "1 … highest\non this crash",
        ),
    )  # fmt: skip
    for ax, colour, values, fmt, cmap, vmin, title, bar_label in panels:
        img = ax.imshow(colour, cmap=cmap, vmin=vmin, vmax=1.0, aspect="auto")
        ax.set_xticks(range(len(cols)), cols, rotation=35, ha="right", fontsize=8)
        ax.set_yticks(range(len(rows)), rows, fontsize=8)
        ax.set_title(title, fontsize=10)
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                v = values[i, j]
                if np.isfinite(v):
                    strong = abs(colour[i, j]) > 0.75 and cmap == "RdYlGn" or colour[i, j] > 0.8
                    ax.text(
                        j, i, fmt(float(v)), ha="center", va="center", fontsize=7,
                        color="white" if strong else "black",
                    )  # fmt: skip
        bar = fig.colorbar(img, ax=ax, fraction=0.03, ticks=[vmin, 1.0])
        bar.ax.set_yticklabels(bar_label.split("\n")[0].split(" … "), fontsize=7)
        bar.set_label(bar_label.split("\n")[1], fontsize=7)
    fig.tight_layout()
    fig.savefig(out)
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m ...scoreboard_plot``: write the PNG and print the markdown table."""
    from pipelines.warehouse.connection import connect

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, type=Path)
    parser.add_argument("--png", type=Path, default=Path("docs/img/scoreboard.png"))
    parser.add_argument("--impact", default="sqrt")
    parser.add_argument("--markdown", action="store_true", help="print the markdown tables")
    args = parser.parse_args(argv)
    con = connect(args.db, read_only=True)
    try:
        frame = scoreboard_frame(con, impact=args.impact)
    finally:
        con.close()
    plot_scoreboard(frame, args.png)
    if args.markdown:
        print("Avoided induced liquidation vs instant ($M):\n")
        print(scoreboard_pivot(frame, "avoided_induced_usd"))
        print("\nAmplification:\n")
        print(scoreboard_pivot(frame, "amplification", scale=1.0, digits=3))
        print("\nAll runs:\n")
        print(scoreboard_markdown(frame))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
