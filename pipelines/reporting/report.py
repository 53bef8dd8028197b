"""``cascade report``: one self-contained HTML page (plus PNGs next to it) from the results.

Built from a read-only connection, so it never competes with a writer for long. Sections:

1. the policy scoreboard — heatmap (events × policies: avoided induced liquidation vs
   ``instant`` and amplification, :mod:`~.scoreboard_plot`) and the same numbers as
   tables;
2. per crash event, the historical price ``p_exo``, the price deviation ``p_mkt/p_exo − 1``
   under every policy (from ``backtest_steps``) and the liquidations over
   time (cumulative liquidated debt, with the zero-impact counterfactual of ``instant``);
3. forecast vs realized volatility of the latest forecast run
   (:func:`pipelines.reporting.forecast_report.write_forecast_plots`) and its scores.

``manifest.json`` records the warehouse fingerprint the report was drawn from; with the same
results and the same drawing code :func:`build_report` returns at once.
"""

from __future__ import annotations

import html
import math
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pipelines.reporting.labels import SHORT_LABELS
from pipelines.warehouse.connection import connect
from pipelines.warehouse.stamps import read_stamp, warehouse_fingerprint, write_stamp

__all__ = ["ReportResult", "build_report", "plot_event", "scoreboard_text"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1200px;color:#222;line-height:1.45;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.82em;margin:.6em 0 1.2em}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
td.pos{background:#e7f5e7}td.neg{background:#fbe9e9}
img{max-width:100%;border:1px solid #eee;margin:.4em 0}
.note{color:#666;font-size:.88em}code{background:#f4f4f4;padding:0 .25em}
details{margin:.4em 0}summary{cursor:pointer;font-weight:600}
"""

_SHORT = SHORT_LABELS


@dataclass(frozen=True)
class ReportResult:
    """Where the report is and whether it was (re)drawn."""

    index: Path
    written: bool
    fingerprint: str


def _short_label(policy: str, model: str) -> str:
    short = _SHORT.get(policy, policy)
    return short if model in ("-", "", None) else f"{short}:{model}"


def _policy_order(labels: Sequence[str]) -> list[str]:
    rank = {short: i for i, short in enumerate(_SHORT.values())}
    return sorted(labels, key=lambda lab: (rank.get(lab.split(":")[0], 99), lab))


# --- the scoreboard -----------------------------------------------------------------------------


def _scoreboard(con: duckdb.DuckDBPyConnection, impact: str) -> pl.DataFrame:
    from pipelines.reporting.scoreboard_plot import scoreboard_frame

    frame = scoreboard_frame(con, impact=impact)
    if frame.height == 0:
        return frame
    labels = [
        _short_label(p, lab.split("[")[-1].rstrip("]") if "[" in lab else "-")
        for p, lab in zip(frame["policy"], frame["policy_label"])
    ]
    return frame.with_columns(pl.Series("short", labels))


def _pivot(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """Policies (rows) × event windows (columns) of one scoreboard column."""
    wide = frame.pivot(on="window_label", index="short", values=column, sort_columns=True)
    order = {lab: i for i, lab in enumerate(_policy_order(wide["short"].to_list()))}
    return wide.sort(pl.col("short").replace_strict(order)).rename({"short": "policy"})


def scoreboard_text(
    con: duckdb.DuckDBPyConnection,
    *,
    impact: str = "sqrt",
    column: str = "avoided_induced_usd",
    legend: bool = True,
) -> str:
    """Compact text scoreboard: policies (rows) × crash windows W1…W7 (columns).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Warehouse or export connection.
    impact : str
        Impact model of the runs shown.
    column : str
        ``avoided_induced_usd`` (shown in $M, positive = less induced liquidation than
        ``instant``), ``amplification`` (liquidated / zero-impact liquidated) or any other
        numeric column of :func:`pipelines.reporting.scoreboard_plot.scoreboard_frame`.
    legend : bool
        End with a line naming the event and book of each window.

    Returns
    -------
    str
        A title line and the table.
    """
    frame = _scoreboard(con, impact)
    if frame.height == 0:
        return "no backtest results yet (run `cascade run`)"
    usd = column.endswith("_usd")
    wide = _pivot(frame, column)
    windows = [c for c in wide.columns if c != "policy"]
    titles = {
        "avoided_induced_usd": "avoided induced liquidation vs instant, $M (positive = better)",
        "amplification": "amplification (liquidated / zero-impact liquidated)",
    }
    title = titles.get(column, f"{column} ($M)" if usd else column)
    width = max(len(p) for p in wide["policy"]) + 1
    lines = [title, f"{'policy':<{width}}" + "".join(f"{w:>9s}" for w in windows)]
    for row in wide.iter_rows(named=True):
        cells = []
        for w in windows:
            v = row[w]
            if v is None or not math.isfinite(v):
                cells.append(f"{'-':>9s}")
            else:
                cells.append(f"{v / 1e6:9.2f}" if usd else f"{v:9.3f}")
        lines.append(f"{row['policy']:<{width}}" + "".join(cells))
    if legend:
        windows_rows = frame.select("window_label", "event_id", "book").unique()
        lines.append(
            "  ".join(f"{w}={e} ({b})" for w, e, b in windows_rows.sort("window_label").iter_rows())
        )
    return "\n".join(lines)


# --- HTML helpers -------------------------------------------------------------------------------


def _cell(value: object, fmt: Callable[[float], str] | None, signed: bool) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "<td>-</td>"
    if isinstance(value, float | int) and not isinstance(value, bool) and fmt is not None:
        cls = ""
        if signed and value > 0:
            cls = ' class="pos"'
        elif signed and value < 0:
            cls = ' class="neg"'
        return f"<td{cls}>{html.escape(fmt(float(value)))}</td>"
    return f"<td>{html.escape(str(value))}</td>"


def _html_table(
    frame: pl.DataFrame,
    fmt: Callable[[float], str] | dict[str, Callable[[float], str]] | None = None,
    *,
    signed: bool = False,
) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = []
    for row in frame.iter_rows():
        cells = []
        for col, value in zip(frame.columns, row):
            f = fmt.get(col) if isinstance(fmt, dict) else fmt
            cells.append(_cell(value, f, signed))
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _musd(v: float) -> str:
    return f"{v / 1e6:,.2f}"


def _img(rel: str, alt: str) -> str:
    return f'<img src="{html.escape(rel)}" alt="{html.escape(alt)}" loading="lazy">'


# --- per-event figure ---------------------------------------------------------------------------


def plot_event(steps: pl.DataFrame, labels: dict[str, str], path: Path, *, title: str) -> Path:
    """Historical price, the price deviation ``p_mkt/p_exo − 1`` and cumulative liquidations.

    One line per policy in the deviation and liquidation panels (the legend of the deviation
    panel names them, outside the axes); the zero-impact counterfactual of the baseline is the
    dashed black line.

    Parameters
    ----------
    steps : polars.DataFrame
        ``run_id, ts, p_exo, p_mkt, liquidated_usd, cf_liquidated_usd`` of the runs.
    labels : dict
        ``run_id`` → policy label; the first one is the baseline (its counterfactual is drawn).
    path : Path
        PNG to write.
    title : str
        Figure title.

    Returns
    -------
    Path
        ``path``.
    """
    fig = Figure(figsize=(12, 9.5), dpi=90)
    FigureCanvasAgg(fig)
    ax_price, ax_dev, ax_liq = fig.subplots(3, 1, sharex=True, height_ratios=[2, 3, 2])
    colors = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
        "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939",
    ]  # fmt: skip
    first = True
    for i, (run_id, label) in enumerate(labels.items()):
        run = steps.filter(pl.col("run_id") == run_id).sort("ts")
        if run.height == 0:
            continue
        ts = run["ts"].to_list()
        color = colors[i % len(colors)]
        if first:
            ax_price.plot(ts, run["p_exo"], color="black", lw=1.4, label="p_exo (historical)")
            cf = run["cf_liquidated_usd"].cum_sum() / 1e6
            ax_liq.plot(ts, cf, color="black", lw=1.4, ls="--", label="zero impact (instant)")
            first = False
        # The deviation, not the price: impact is a few % at most, so price lines overlap.
        dev = 100.0 * (run["p_mkt"] / run["p_exo"] - 1.0)
        ax_dev.plot(ts, dev, color=color, lw=1.0, label=label)
        ax_liq.plot(ts, run["liquidated_usd"].cum_sum() / 1e6, color=color, lw=1.0)
    ax_price.set_ylabel("historical price (USD)")
    ax_price.set_title(title, fontsize=10)
    ax_dev.axhline(0.0, color="black", lw=0.6)
    ax_dev.set_ylabel("price deviation\np_mkt/p_exo − 1 (%)")
    ax_liq.set_ylabel("cumulative\nliquidated ($M)")
    for ax in (ax_price, ax_dev, ax_liq):
        ax.grid(alpha=0.3)
    # One legend per panel, outside the axes on the right: never over the data.
    ax_price.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    ax_dev.legend(
        fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
        title="policy", title_fontsize=7,
    )  # fmt: skip
    ax_liq.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def _event_sections(
    con: duckdb.DuckDBPyConnection, frame: pl.DataFrame, img_dir: Path
) -> list[str]:
    sections = []
    detail_cols = {
        "short": "policy",
        "n_liquidations": "liquidations",
        "liquidated_usd": "liquidated $M",
        "induced_usd": "induced $M",
        "amplification": "amplification",
        "max_cascade_depth": "max depth",
        "peak_price_deviation": "peak deviation",
        "bad_debt_usd": "bad debt $M",
        "borrower_loss_usd": "borrower loss $M",
        "avoided_induced_usd": "avoided induced $M",
    }
    fmts: dict[str, Callable[[float], str]] = {
        "liquidations": lambda v: f"{v:,.0f}",
        "liquidated $M": _musd,
        "induced $M": _musd,
        "amplification": lambda v: f"{v:.4f}",
        "max depth": lambda v: f"{v:.0f}",
        "peak deviation": lambda v: f"{100 * v:.2f} %",
        "bad debt $M": _musd,
        "borrower loss $M": _musd,
        "avoided induced $M": _musd,
    }
    events = frame.select("window_label", "event_id", "book").unique().sort("window_label")
    for window, event_id, book in events.iter_rows():
        sub = frame.filter(pl.col("event_id") == event_id)
        order = {lab: i for i, lab in enumerate(_policy_order(sub["short"].to_list()))}
        sub = sub.sort(pl.col("short").replace_strict(order))
        labels = dict(zip(sub["run_id"], sub["short"]))
        steps = con.sql(
            "SELECT run_id, ts, p_exo, p_mkt, liquidated_usd, cf_liquidated_usd "
            "FROM backtest_steps WHERE list_contains(?, run_id) ORDER BY run_id, step",
            params=[list(labels)],
        ).pl()
        png = plot_event(
            steps,
            labels,
            img_dir / f"event_{event_id}.png",
            title=f"{window} {event_id} — book {book}: price deviation under each policy",
        )
        table = sub.select(list(detail_cols)).rename(detail_cols)
        sections.append(
            f"<h3>{html.escape(window or '')} — {html.escape(event_id)} "
            f"<span class='note'>(book {html.escape(book)})</span></h3>"
            + _img(f"img/{png.name}", f"price paths {event_id}")
            + _html_table(table, fmts)
        )
    return sections


# --- forecasts ----------------------------------------------------------------------------------


def scoreboard_forecast_run(con: duckdb.DuckDBPyConnection) -> str | None:
    """The forecast run behind the scoreboard's dynamic-LTV runs.

    The margin run of the current dynamic-LTV runs (the most used one if several); without any,
    the latest forecast run of the scoreboard's asset — never an ad-hoc run of another asset.
    """
    rows = con.execute(
        "SELECT json_extract_string(r.config, '$.margin_run_id') AS margin_run, count(*) AS n "
        "FROM backtest_runs r JOIN backtest_current c USING (run_id) "
        "WHERE margin_run IS NOT NULL GROUP BY margin_run ORDER BY n DESC, margin_run LIMIT 1"
    ).fetchall()
    if rows:
        return rows[0][0]
    rows = con.execute(
        "SELECT f.run_id FROM forecast_runs f "
        "WHERE EXISTS (SELECT 1 FROM forecasts x WHERE x.run_id = f.run_id AND x.asset IN "
        "  (SELECT DISTINCT asset FROM policy_scoreboard)) "
        "   OR NOT EXISTS (SELECT 1 FROM policy_scoreboard) "
        "ORDER BY f.created_at DESC, f.run_id LIMIT 1"
    ).fetchall()
    return rows[0][0] if rows else None


def _forecast_section(con: duckdb.DuckDBPyConnection, run_id: str | None, out_dir: Path) -> str:
    if run_id is None:
        return "<p class='note'>No forecast run yet (<code>cascade forecast</code>).</p>"
    from pipelines.reporting.forecast_report import summary_scores, write_forecast_plots

    files = write_forecast_plots(con, run_id, out_dir / "forecast")
    pngs = [f for f in files if f.suffix == ".png"]
    scores = summary_scores(con, run_id).drop("dm_stat", strict=False)
    fmt: dict[str, Callable[[float], str]] = {
        "n": lambda v: f"{v:.0f}",
        "qlike": lambda v: f"{v:.3f}",
        "mz_r2": lambda v: f"{v:.3f}",
        "var99_n": lambda v: f"{v:.0f}",
        "var99_hit_rate": lambda v: f"{100 * v:.1f} %",
        "dm_pvalue": lambda v: f"{v:.3f}",
    }
    parts = [
        f"<p>Forecast run <code>{html.escape(run_id)}</code>: walk-forward forecasts of the "
        "volatility of the next hour against the realized volatility (sum of squared returns "
        "over the same hour). Scores over the crash windows pooled (QLIKE: lower is better; "
        "MZ R²: Mincer–Zarnowitz; VaR 99 % hits: 1 % expected; DM p-value: Diebold–Mariano "
        "against GARCH). All scores: <a href='forecast/scores.csv'>scores.csv</a>.</p>",
        _html_table(scores, fmt),
    ]
    for png in pngs:
        parts.append(_img(f"forecast/{png.name}", png.stem))
    return "".join(parts)


# --- the page -----------------------------------------------------------------------------------


def _page(body: list[str], *, db: str, fingerprint: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>cascade-lab report</title><style>{_CSS}</style></head><body>"
        "<h1>cascade-lab — which liquidation policy would have stopped the cascade?</h1>"
        f"<p class='note'>Warehouse <code>{html.escape(db)}</code>, results fingerprint "
        f"<code>{fingerprint}</code>, drawn {stamp}. Query the same numbers with "
        "<code>cascade sql</code> (views <code>policy_scoreboard</code>, "
        "<code>avoided_cascades</code>).</p>" + "".join(body) + "</body></html>"
    )


def build_report(
    db_path: str | Path | None,
    out_dir: str | Path,
    *,
    impact: str = "sqrt",
    forecast_run_id: str | None = None,
    force: bool = False,
) -> ReportResult:
    """Write ``index.html`` and its PNGs to ``out_dir`` (skipped when already up to date).

    Parameters
    ----------
    db_path : path, optional
        Warehouse (opened read-only).
    out_dir : path
        Report directory (created): ``index.html``, ``img/*.png``, ``forecast/*``,
        ``scoreboard.csv``, ``manifest.json``.
    impact : str
        Impact model of the backtest runs shown.
    forecast_run_id : str, optional
        Forecast run to plot; default the latest one.
    force : bool
        Redraw even when ``manifest.json`` matches the warehouse.

    Returns
    -------
    ReportResult
    """
    out = Path(out_dir)
    db = Path(db_path).resolve() if db_path is not None else None
    con = connect(db_path, read_only=True)
    try:
        fingerprint = warehouse_fingerprint(con, kind="report")
        index = out / "index.html"
        stamp = read_stamp(out)
        if not force and index.exists() and stamp.get("fingerprint") == fingerprint:
            return ReportResult(index, False, fingerprint)
        img_dir = out / "img"
        if img_dir.exists():
            shutil.rmtree(img_dir)  # drawn entirely by this function; no stale pictures
        img_dir.mkdir(parents=True)
        body = _body(con, out, img_dir, impact, forecast_run_id)
        tmp = out / ".index.html.tmp"
        shown = str(db) if db else os.environ.get("CASCADE_DB", "cascade.duckdb")
        tmp.write_text(_page(body, db=shown, fingerprint=fingerprint))
        tmp.replace(index)
        write_stamp(out, fingerprint, database=str(db) if db else None, impact=impact)
    finally:
        con.close()
    return ReportResult(index, True, fingerprint)


def _body(
    con: duckdb.DuckDBPyConnection,
    out: Path,
    img_dir: Path,
    impact: str,
    forecast_run_id: str | None,
) -> list[str]:
    from pipelines.reporting.scoreboard_plot import plot_scoreboard

    frame = _scoreboard(con, impact)
    body = ["<h2>1. Policy scoreboard</h2>"]
    if frame.height == 0:
        body.append("<p class='note'>No backtest results yet (<code>cascade run</code>).</p>")
    else:
        plot_scoreboard(frame.drop("short"), img_dir / "scoreboard.png")
        frame.drop("short").write_csv(out / "scoreboard.csv")
        body += [
            "<p>Every crash event (rows of the heatmap) against every policy (columns), "
            f"default parameters, impact model <code>{html.escape(impact)}</code>. "
            "<b>Avoided induced liquidation</b> is the liquidation caused by price impact "
            "that the policy avoided compared with <code>instant</code> (positive = better); "
            "<b>amplification</b> is liquidated debt over the zero-impact counterfactual's. "
            "Raw numbers: <a href='scoreboard.csv'>scoreboard.csv</a>.</p>",
            _img("img/scoreboard.png", "scoreboard heatmap"),
            "<h3>Avoided induced liquidation vs instant ($M)</h3>",
            _html_table(_pivot(frame, "avoided_induced_usd"), _musd, signed=True),
            "<h3>Amplification (liquidated / zero-impact liquidated)</h3>",
            _html_table(_pivot(frame, "amplification"), lambda v: f"{v:.4f}"),
            "<h3>Borrower loss ($M): what the policy cost borrowers</h3>",
            _html_table(_pivot(frame, "borrower_loss_usd"), _musd),
            "<h2>2. Price deviation and liquidations over time</h2>",
            "<p>Top: the historical price <code>p_exo</code>; middle: the price deviation "
            "<code>p_mkt/p_exo − 1</code> under each policy, where "
            "<code>p_mkt = p_exo·exp(−I)</code> (impact is a few per cent at most, so the "
            "deviation shows what overlapping price lines would hide); bottom: cumulative "
            "liquidated debt, with the zero-impact counterfactual of the baseline dashed.</p>",
            *_event_sections(con, frame, img_dir),
        ]
    body.append("<h2>3. Forecast vs realized volatility</h2>")
    body.append(_forecast_section(con, forecast_run_id or scoreboard_forecast_run(con), out))
    from pipelines.reporting.attribution_section import attribution_html

    body.append("<h2>4. Cascade attribution and market-level policies</h2>")
    body += attribution_html(con, img_dir, _html_table, _img)
    return body
