"""Score tables and pictures of a stored forecast run (``cascade forecast --plots DIR``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl

import forecasting as fcst
from pipelines.warehouse.forecast_store import run_config

__all__ = [
    "score_table",
    "text_table",
    "summary_scores",
    "markdown_scores",
    "write_forecast_plots",
]

_MODEL_ORDER = list(fcst.MODELS)
_FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


def _model_rank() -> pl.Expr:
    return pl.col("model").replace_strict(
        {m: i for i, m in enumerate(_MODEL_ORDER)}, default=len(_MODEL_ORDER)
    )


def _horizons(con: duckdb.DuckDBPyConnection, run_id: str) -> list[int]:
    rows = con.execute(
        "SELECT DISTINCT horizon_hours FROM forecast_scores WHERE run_id = ? ORDER BY 1", [run_id]
    ).fetchall()
    return [int(r[0]) for r in rows]


def score_table(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    *,
    metric: str = "qlike",
    horizon_hours: int = 1,
    scope: str = "crash",
    event_id: str = "all",
) -> pl.DataFrame:
    """One metric per model (rows) × asset (columns).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Warehouse connection.
    run_id : str
        Forecast run.
    metric : str
        A ``forecast_scores.metric`` (``qlike``, ``mz_r2``, ``var99_hit_rate``...).
    horizon_hours : int
        Horizon; the run's shortest one when it was not forecast.
    scope : {"crash", "window"}
        Crash windows only, or the whole forecast windows.
    event_id : str
        An event id, or ``"all"`` (pooled over the run).

    Returns
    -------
    polars.DataFrame
        ``model`` plus one column per asset; attribute-free, sorted like
        :data:`forecasting.MODELS`.
    """
    hs = _horizons(con, run_id)
    h = horizon_hours if horizon_hours in hs or not hs else hs[0]
    long = con.sql(
        "SELECT model, asset, value FROM forecast_scores WHERE run_id = ? AND metric = ? "
        "AND horizon_hours = ? AND scope = ? AND event_id = ?",
        params=[run_id, metric, h, scope, event_id],
    ).pl()
    if long.height == 0:
        return pl.DataFrame({"model": []}, schema={"model": pl.String})
    wide = long.pivot(on="asset", index="model", values="value", sort_columns=True)
    return wide.sort(_model_rank()).with_columns(pl.lit(h).alias("horizon_hours"))


def text_table(table: pl.DataFrame, run_id: str, *, metric: str = "QLIKE") -> str:
    """Plain-text rendering of :func:`score_table` (best value per asset marked with ``*``)."""
    if table.height == 0:
        return f"forecast run {run_id}: no scores (nothing could be forecast)"
    h = int(table["horizon_hours"][0])
    assets = [c for c in table.columns if c not in ("model", "horizon_hours")]
    best = {a: table[a].drop_nulls().min() for a in assets}
    lines = [
        f"{metric} (lower is better), {h} h horizon, crash windows pooled (event_id='all', "
        "scope='crash'):",
        f"{'model':8s}" + "".join(f"{a:>12s}" for a in assets),
    ]
    for row in table.iter_rows(named=True):
        cells = []
        for a in assets:
            v = row[a]
            mark = "*" if v is not None and v == best[a] else " "
            cells.append(f"{v:11.3f}{mark}" if v is not None else f"{'-':>11s} ")
        lines.append(f"{row['model']:8s}" + "".join(cells))
    lines.append(
        "more: cascade sql \"FROM forecast_scores WHERE run_id = '" + run_id + "'\" "
        "(scope 'window' = lead-in + crash, 24 h, MZ, DM, VaR)"
    )
    return "\n".join(lines)


def summary_scores(
    con: duckdb.DuckDBPyConnection, run_id: str, *, scope: str = "crash", event_id: str = "all"
) -> pl.DataFrame:
    """QLIKE, MZ R², VaR 99 % hit rate and n per horizon × model × asset.

    Returns
    -------
    polars.DataFrame
        ``horizon_hours, model, asset, n, qlike, mz_r2, var99_n, var99_hit_rate, dm_stat,
        dm_pvalue`` (``var99_n``: non-overlapping horizons tested for VaR).
    """
    long = con.sql(
        "SELECT horizon_hours, model, asset, metric, value FROM forecast_scores "
        "WHERE run_id = ? AND scope = ? AND event_id = ? AND metric IN "
        "('n', 'qlike', 'mz_r2', 'var99_n', 'var99_hit_rate', 'dm_stat', 'dm_pvalue')",
        params=[run_id, scope, event_id],
    ).pl()
    cols = ["n", "qlike", "mz_r2", "var99_n", "var99_hit_rate", "dm_stat", "dm_pvalue"]
    if long.height == 0:
        return pl.DataFrame(schema={"horizon_hours": pl.Int32, "model": pl.String})
    wide = long.pivot(on="metric", index=["horizon_hours", "model", "asset"], values="value")
    for c in cols:
        if c not in wide.columns:
            wide = wide.with_columns(pl.lit(None, dtype=pl.Float64).alias(c))
    return wide.select("horizon_hours", "model", "asset", *cols).sort(
        "horizon_hours", _model_rank(), "asset"
    )


def markdown_scores(
    con: duckdb.DuckDBPyConnection, run_id: str, *, scope: str = "crash", event_id: str = "all"
) -> str:
    """Markdown tables (one per horizon): QLIKE / MZ R² / VaR 99 % hit rate per model × asset.

    The lowest QLIKE per asset is in bold.
    """
    summary = summary_scores(con, run_id, scope=scope, event_id=event_id)
    if summary.height == 0:
        return f"_no scores for run {run_id}_\n"
    assets = sorted(summary["asset"].unique().to_list())
    out: list[str] = []
    for (h,), grp in summary.group_by(["horizon_hours"], maintain_order=True):
        n = {a: grp.filter(pl.col("asset") == a)["n"].max() for a in assets}
        best = {a: grp.filter(pl.col("asset") == a)["qlike"].min() for a in assets}
        head = " | ".join(f"{a} QLIKE · MZ R² · VaR99 hits (n={int(n[a] or 0)})" for a in assets)
        out += [f"**{h} h horizon**", "", f"| model | {head} |", "|---" * (len(assets) + 1) + "|"]
        for model in grp["model"].unique(maintain_order=True):
            cells = []
            for a in assets:
                row = grp.filter((pl.col("model") == model) & (pl.col("asset") == a))
                if row.height == 0:
                    cells.append("–")
                    continue
                r = row.row(0, named=True)
                q = _fmt(r["qlike"], 3)
                q = f"**{q}**" if r["qlike"] is not None and r["qlike"] == best[a] else q
                cells.append(
                    f"{q} · {_fmt(r['mz_r2'], 2)} · {_hits(r['var99_hit_rate'], r['var99_n'])}"
                )
            out.append(f"| {model} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def _fmt(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _hits(rate: float | None, n: float | None) -> str:
    if rate is None or not n:
        return "–"
    return f"{100 * rate:.1f} % ({round(rate * n)}/{int(n)})"


def _spans(config: dict) -> list[tuple[str, str, datetime, datetime]]:
    """``(window_id, label, start, end)`` of every crash span (or range) of a stored config."""
    out = []
    for w in config["windows"]:
        focus = w.get("focus") or []
        for f in focus:
            out.append(
                (
                    w["window_id"],
                    f["event_id"],
                    datetime.fromisoformat(f["start"]),
                    datetime.fromisoformat(f["end"]),
                )
            )
        if not focus and w.get("forecast_start"):
            end = w.get("forecast_end")
            out.append(
                (
                    w["window_id"],
                    w["window_id"],
                    datetime.fromisoformat(w["forecast_start"]),
                    datetime.fromisoformat(end) if end else _FAR_FUTURE,
                )
            )
    return out


def write_forecast_plots(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    out_dir: str | Path,
    *,
    horizon_hours: int | None = None,
    days_before: float = 3.0,
) -> list[Path]:
    """PNG of forecast vs realized volatility per asset × crash, and the score tables.

    Writes ``forecast_<asset>_<event_id>.png`` (every model's sigma and the realized volatility
    from ``days_before`` days before the crash to its end, the crash shaded), ``scores.csv``
    (every score of the run, long format) and ``scores.md`` (QLIKE / MZ R² / VaR 99 % hit rate per
    model × asset, crash windows pooled, per horizon).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Warehouse connection.
    run_id : str
        A stored forecast run.
    out_dir : str or Path
        Output directory (created).
    horizon_hours : int, optional
        Horizon to plot (1 h when forecast, else the shortest).
    days_before : float
        Lead-in shown before each crash.

    Returns
    -------
    list of Path
        Files written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = run_config(con, run_id)
    hs = [int(h) for h in config["horizons"]]
    h = horizon_hours if horizon_hours in hs else (1 if 1 in hs else min(hs))
    written: list[Path] = []
    for window_id, label, start, end in _spans(config):
        lo = start - timedelta(days=days_before)
        fc = con.sql(
            "SELECT model, asset, origin_ts, horizon_hours::DOUBLE AS horizon_hours, sigma "
            "FROM forecasts WHERE run_id = ? AND event_id = ? AND horizon_hours = ? "
            "AND origin_ts >= ? AND origin_ts < ?",
            params=[run_id, window_id, h, lo, end],
        ).pl()
        rz = con.sql(
            "SELECT asset, origin_ts, horizon_hours::DOUBLE AS horizon_hours, "
            "realized_sigma * realized_sigma AS realized_var FROM realized_vol "
            "WHERE run_id = ? AND event_id = ? AND horizon_hours = ? "
            "AND origin_ts >= ? AND origin_ts < ?",
            params=[run_id, window_id, h, lo, end],
        ).pl()
        for asset in sorted(fc["asset"].unique().to_list()):
            sub = fc.filter(pl.col("asset") == asset).sort(_model_rank(), "origin_ts")
            hi = min(end, sub["origin_ts"].max() + timedelta(hours=1))
            path = fcst.plot_forecast_window(
                sub.drop("asset"),
                rz.filter(pl.col("asset") == asset).drop("asset"),
                out / f"forecast_{asset}_{label}.png",
                start=lo,
                end=hi,
                horizon_hours=float(h),
                title=f"{asset}, {label}: {h} h forecasts vs realized volatility (run {run_id})",
                shade=(start, hi),
                shade_label=f"crash window {label}",
            )
            written.append(path)
    scores = con.sql(
        "SELECT * EXCLUDE (run_id) FROM forecast_scores WHERE run_id = ? "
        "ORDER BY event_id, scope, horizon_hours, asset, model, metric",
        params=[run_id],
    ).pl()
    csv = out / "scores.csv"
    scores.write_csv(csv)
    md = out / "scores.md"
    md.write_text(
        f"# Forecast scores, run {run_id}\n\nCrash windows pooled (event_id='all', "
        "scope='crash'). QLIKE: lower is better (best in bold); MZ R²: Mincer–Zarnowitz R² of "
        "realized on forecast variance; VaR99 hits: share of horizon returns below the 99 % "
        "normal VaR (1 % expected; hits/tests over non-overlapping horizons).\n\n"
        + markdown_scores(con, run_id)
        + "\nWhole forecast windows (lead-in + crash, scope='window'):\n\n"
        + markdown_scores(con, run_id, scope="window")
    )
    return [*written, csv, md]
