"""Summaries of a stored attribution run: the acceptance numbers and one picture per event."""

from __future__ import annotations

import functools
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
from scipy.stats import spearmanr

from pipelines.attribution.printer import (
    markdown_table,
    millions_cell,
    save_time_figure,
    summary_main,
)

__all__ = ["markdown_table", "model_check_summary", "write_event_plots"]


def _spearman_log(pred: np.ndarray, rep: np.ndarray) -> float:
    return float(spearmanr(np.log1p(pred), np.log1p(rep)).statistic)


def model_check_summary(check: pl.DataFrame) -> pl.DataFrame:
    """Spearman and worst-day ratio (held-out fit) per asset and event.

    Rows ``asset, scope, value, target, ok``:

    * ``spearman_long`` / ``spearman_short``: Spearman of ``log(predicted)`` vs
      ``log(reported)`` over **every** day with reported data (target ≥ 0.7); a non-event day
      is predicted by the base fit, an event day by the fit with that event left out.
    * ``spearman_long_non_event`` / ``spearman_short_non_event``: the same over non-event days
      only (base fit).
    * ``worst_day_ratio:<event>``: predicted / reported long liquidations on the event's day
      with the largest reported long liquidations, with that event left out of the fit (target
      within a factor 2).
    """
    rows = []
    for asset in sorted(check["asset"].unique()):
        mine = check.filter(pl.col("asset") == asset)
        base = mine.filter(pl.col("held_out_event").is_null())
        scopes = (("", mine), ("_non_event", base))
        for suffix, frame in scopes:
            for side in ("long", "short"):
                b = frame.filter(pl.col(f"reported_{side}_usd") > 0)
                rho = _spearman_log(
                    b[f"predicted_{side}_usd"].to_numpy(), b[f"reported_{side}_usd"].to_numpy()
                )
                ok = bool(rho >= 0.7)
                rows.append((asset, f"spearman_{side}{suffix}", rho, ">= 0.7", ok))
        held = mine.filter(pl.col("held_out_event").is_not_null())
        for eid in sorted(held["held_out_event"].unique()):
            e = held.filter(pl.col("held_out_event") == eid).sort("reported_long_usd")
            worst = e.row(-1, named=True)
            ratio = worst["predicted_long_usd"] / worst["reported_long_usd"]
            rows.append(
                (asset, f"worst_day_ratio:{eid}", float(ratio), "0.5..2", bool(0.5 <= ratio <= 2))
            )
    return pl.DataFrame(rows, schema=["asset", "scope", "value", "target", "ok"], orient="row")


def write_event_plots(paths: pl.DataFrame, event_id: str, directory: Path) -> Path:
    """Observed vs fundamental vs replayed path, and forced flow, per asset of one event."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    assets = sorted(paths["asset"].unique())
    fig, axes = plt.subplots(2, len(assets), figsize=(6 * len(assets), 7), squeeze=False)
    for j, asset in enumerate(assets):
        p = paths.filter(pl.col("asset") == asset)
        ts = p["ts"].to_list()
        ax = axes[0][j]
        for col, style in (("observed", "k-"), ("fundamental", "g--"), ("replayed", "r:")):
            ax.plot(ts, p[col].to_numpy(), style, label=col, lw=1.2)
        ax.set_title(f"{event_id} {asset}")
        ax.legend(fontsize=8)
        ax = axes[1][j]
        ax.bar(ts, p["observed_flow_usd"].to_numpy() / 1e6, width=0.03, label="CEX observed")
        ax.bar(ts, p["defi_flow_usd"].to_numpy() / 1e6, width=0.03, label="DeFi observed")
        ax.plot(ts, p["replayed_flow_usd"].to_numpy() / 1e6, "r.", ms=3, label="CEX replayed")
        ax.set_ylabel("net forced sales, $M / hour")
        ax.legend(fontsize=8)
    return save_time_figure(fig, directory / f"attribution-{event_id}.png", dpi=90)


def markdown_tables(
    attribution: pl.DataFrame, check: pl.DataFrame, impact: pl.DataFrame | None = None
) -> str:
    """The attribution and the model check as Markdown tables (for docs/market-replay.md)."""
    cell = functools.partial(millions_cell, none="None")

    def table(frame: pl.DataFrame) -> str:
        return markdown_table(frame, cell)

    cols = [
        "event_id", "asset", "observed_drawdown", "fundamental_drawdown", "replayed_drawdown",
        "cascade_share", "observed_liq_usd", "replayed_liq_usd", "defi_liq_usd",
        "max_cascade_depth", "drawdown_error", "consistent",
    ]  # fmt: skip
    early = [
        "event_id", "asset", "critical_shock_24h_before", "liq_10pct_24h_before_usd",
        "observed_drawdown", "oi_source", "flow_source",
    ]  # fmt: skip
    parts = [table(attribution.select(cols)), table(check), table(attribution.select(early))]
    if impact is not None and impact.height:
        parts.append(table(impact))
    return "\n\n".join(parts)


def _render(con: duckdb.DuckDBPyConnection, rid: str | None) -> str:
    from pipelines.warehouse import attribution_store as store

    tables = markdown_tables(
        store.read_attribution(con, rid),
        model_check_summary(store.read_model_check(con, rid)),
        store.read_impact_check(con, rid),
    )
    return tables + "\n\n" + markdown_table(store.read_market_books(con, rid))


if __name__ == "__main__":  # pragma: no cover - documentation helper
    summary_main("print a stored attribution run as Markdown", _render)
