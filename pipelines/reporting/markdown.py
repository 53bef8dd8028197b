"""Result pages as Markdown, generated from the warehouse (``cascade report --markdown DIR``).

Numbers from runs are never copied into the documentation by hand: ``docs/results/`` holds pages
written by this module from a read-only connection, each stamped with the run ids it shows, the
warehouse fingerprint (:func:`pipelines.warehouse.stamps.warehouse_fingerprint`) and the time it
was generated.

* ``scoreboard.md`` — avoided induced liquidation, amplification and borrower loss, policies ×
  crash windows, and every run.
* ``evidence.md`` — whether any forecast beat its threshold controls on each crash
  (``forecast_value``), and the intervals over stress paths with the ranking's overlaps
  (``policy_intervals``: p95 bad debt = VaR, p95 liquidated debt = LaR).
* ``forecast_scores.md`` — QLIKE, Mincer–Zarnowitz R² and VaR 99 % hit rate per model × asset of
  the latest forecast run, crash windows pooled and per crash.
* ``questions.md`` — the example questions of ``docs/data.md`` and ``docs/results.md`` with their
  SQL and the answer the warehouse gives.
* ``attribution.md`` — the latest ``cascade attribute`` run: cascade attribution, impact check,
  market-level policies, the Maker ETH-B book and the ADL rules (stamped with its run id).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from pipelines.errors import CascadeError
from pipelines.reporting.attribution_section import attribution_markdown
from pipelines.reporting.report import scoreboard_forecast_run
from pipelines.warehouse.connection import connect
from pipelines.warehouse.stamps import warehouse_fingerprint

__all__ = ["GENERATED_BY", "PAGES", "QUESTIONS", "Question", "markdown_table", "write_markdown"]

#: The command that writes the pages (named on every page).
GENERATED_BY = "cascade report --markdown docs/results/"

#: File names of the pages, in the order they are written.
PAGES = (
    "scoreboard.md",
    "evidence.md",
    "forecast_scores.md",
    "questions.md",
    "attribution.md",
)


@dataclass(frozen=True, kw_only=True)
class Question:
    """One example question: its title, the SQL that answers it and what to read in the answer."""

    title: str
    sql: str
    note: str = ""


#: The README's example questions (data and results), answered from the warehouse.
QUESTIONS: tuple[Question, ...] = (
    Question(
        title="How much collateral did each protocol liquidate on 2021-05-19?",
        sql="""SELECT protocol, count(*) AS n,
       round(sum(collateral_usd) / 1e6, 1) AS collateral_musd
FROM defi_liquidations WHERE ts >= '2021-05-19' AND ts < '2021-05-20'
GROUP BY protocol ORDER BY protocol;""",
        note="Compare with the published figure in `reference_figures`.",
    ),
    Question(
        title="How many Maker ETH-B vaults were liquidated on 2022-06-13, for how much DAI?",
        sql="""SELECT count(*) AS vaults, round(sum(debt_repaid_usd) / 1e6, 2) AS dai_m
FROM defi_liquidations
WHERE protocol = 'maker-ethb' AND ts >= '2022-06-13' AND ts < '2022-06-14';""",
    ),
    Question(
        title="What was ETH's hourly peak-to-trough inside each crash window?",
        sql="""SELECT e.event_id, min(p.low) AS low, max(p.high) AS high,
       round(100 * (min(p.low) / max(p.high) - 1), 1) AS drawdown_pct
FROM prices p JOIN events e ON p.ts >= e.start_ts AND p.ts < e.end_ts
WHERE p.asset = 'ETH' AND p.market = 'spot' AND p.venue = 'binance' AND p.bar_seconds = 3600
GROUP BY 1 ORDER BY 1;""",
    ),
    Question(
        title="CEX long liquidations vs Aave v2 liquidations per day around 2021-05-19",
        sql="""SELECT c.ts::DATE AS day, round(sum(c.long_usd) / 1e9, 2) AS cex_long_busd,
       (SELECT round(sum(collateral_usd) / 1e6, 1) FROM defi_liquidations d
        WHERE d.protocol = 'aave-v2' AND d.ts::DATE = c.ts::DATE) AS aave_musd
FROM cex_liquidations c
WHERE c.venue_set = 'binance+okx+bybit' AND c.ts BETWEEN '2021-05-17' AND '2021-05-21'
GROUP BY 1 ORDER BY 1;""",
    ),
    Question(
        title="On each crash, which policy avoided the most induced liquidation, "
        "and at what cost to borrowers?",
        sql="""SELECT e.window_label AS w, a.policy, a.forecast_model AS model,
       round(a.avoided_induced_usd / 1e6, 2) AS avoided_induced_musd,
       round(s.borrower_loss_usd / 1e6, 2) AS borrower_loss_musd,
       round(a.avoided_borrower_loss_usd / -1e6, 2) + 0.0 AS extra_borrower_loss_musd
FROM avoided_cascades a JOIN policy_scoreboard s USING (run_id)
JOIN events e ON e.event_id = a.event_id
WHERE a.impact = 'sqrt'
QUALIFY row_number() OVER (PARTITION BY a.event_id
                           ORDER BY a.avoided_induced_usd DESC, s.borrower_loss_usd, a.policy) = 1
ORDER BY w;""",
        note="Ties are broken by the lower borrower loss.",
    ),
    Question(
        title="The ranking on 2022-06-13 (Celsius/3AC), top five",
        sql="""SELECT a.policy, a.forecast_model AS model,
       round(s.induced_usd / 1e6, 3) AS induced_musd,
       round(s.borrower_loss_usd / 1e6, 3) AS borrower_loss_musd
FROM avoided_cascades a JOIN policy_scoreboard s USING (run_id)
WHERE a.event_id = '2022-06-13-celsius-3ac' AND a.impact = 'sqrt'
ORDER BY a.avoided_induced_usd DESC, s.borrower_loss_usd, a.policy, a.forecast_model LIMIT 5;""",
    ),
    Question(
        title="Where did price impact amplify the cascade most under today's design (`instant`)?",
        sql="""SELECT e.window_label AS w, s.event_id, s.book,
       s.n_positions_liquidated AS positions,
       round(s.liquidated_usd / 1e6, 2) AS liquidated_musd,
       round(s.induced_usd / 1e6, 2) AS induced_musd,
       round(s.amplification, 3) AS amplification, s.max_cascade_depth AS depth,
       s.cascade_episodes AS episodes, round(100 * s.peak_price_deviation, 2) AS peak_dev_pct
FROM policy_scoreboard s JOIN events e USING (event_id)
WHERE s.policy = 'instant' AND s.impact = 'sqrt' AND s.default_params
ORDER BY s.amplification DESC, w;""",
    ),
    Question(
        title="Which forecast model makes dynamic LTV work best, over all crashes?",
        sql="""SELECT policy, forecast_model AS model,
       round(sum(avoided_induced_usd) / 1e6, 2) AS avoided_induced_musd,
       round(sum(avoided_bad_debt_usd) / 1e6, 2) AS avoided_bad_debt_musd,
       round(sum(avoided_borrower_loss_usd) / -1e6, 2) + 0.0 AS extra_borrower_loss_musd,
       count(*) FILTER (WHERE avoided_induced_usd > 0) AS crashes_better
FROM avoided_cascades WHERE impact = 'sqrt' AND policy LIKE 'dynamic_ltv%'
GROUP BY ALL ORDER BY avoided_induced_musd DESC, policy, model;""",
        note="Positive `extra_borrower_loss_musd` = borrowers lose more than under `instant`.",
    ),
    Question(
        title="How good were the 1-hour ETH volatility forecasts inside each crash (QLIKE)?",
        sql="""PIVOT (SELECT event_id, model, round(value, 3) AS qlike FROM forecast_scores
       WHERE metric = 'qlike' AND horizon_hours = 1 AND scope = 'crash' AND asset = 'ETH'
         AND run_id = (SELECT run_id FROM forecast_runs ORDER BY created_at DESC LIMIT 1))
ON model USING first(qlike) ORDER BY event_id;""",
        note="Lower is better; `all` pools the crash hours of every window.",
    ),
    Question(
        title="When did the Black Thursday cascade hit hardest under `instant`?",
        sql="""SELECT st.ts, round(st.p_exo, 2) AS p_exo, round(st.p_mkt, 2) AS p_mkt,
       round(100 * (1 - st.p_mkt / st.p_exo), 2) AS impact_pct, st.cascade_depth AS depth,
       st.n_liquidations AS liqs, round(st.liquidated_usd / 1e6, 2) AS liquidated_musd,
       round(st.cf_liquidated_usd / 1e6, 2) AS cf_liquidated_musd
FROM backtest_steps st JOIN policy_scoreboard s USING (run_id)
WHERE s.event_id = '2020-03-12-black-thursday' AND s.policy = 'instant' AND s.impact = 'sqrt'
  AND s.default_params
ORDER BY st.liquidated_usd DESC, st.ts LIMIT 5;""",
        note="`cf_liquidated_musd` is the same step without price impact.",
    ),
)


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pl.DataFrame:
    """The result of ``sql`` as a polars frame."""
    return con.sql(sql, params=params).pl() if params else con.sql(sql).pl()


# --- formatting ---------------------------------------------------------------------------------


def _cell(value: object, fmt: Callable[[float], str] | None = None) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        if fmt is not None:
            return fmt(value)
        return f"{value:,.6g}" if abs(value) >= 1e6 else f"{value:.6g}"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(
    frame: pl.DataFrame,
    *,
    formats: dict[str, Callable[[float], str]] | None = None,
    right: Sequence[str] | None = None,
) -> str:
    """A GitHub-flavoured Markdown table of ``frame``.

    Parameters
    ----------
    frame : polars.DataFrame
        Rows to show, in order.
    formats : dict, optional
        Column → function formatting a float of that column.
    right : sequence of str, optional
        Right-aligned columns (default: the numeric ones).

    Returns
    -------
    str
        The table, or ``*(no rows)*`` when ``frame`` is empty.
    """
    if frame.height == 0:
        return "*(no rows)*"
    formats = formats or {}
    if right is None:
        right = [c for c, t in frame.schema.items() if t.is_numeric()]
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "| " + " | ".join("---:" if c in right else "---" for c in frame.columns) + " |"
    rows = [
        "| "
        + " | ".join(_cell(v, formats.get(c)) for c, v in zip(frame.columns, row, strict=True))
        + " |"
        for row in frame.iter_rows()
    ]
    return "\n".join([header, rule, *rows])


def _musd(value: float) -> str:
    return f"{value / 1e6:,.2f}"


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


# --- stamp --------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Stamp:
    fingerprint: str
    generated_at: str
    forecast_run_ids: tuple[str, ...]
    backtest_run_ids: tuple[str, ...]

    def header(self, title: str) -> str:
        ids = ", ".join(f"`{r}`" for r in self.backtest_run_ids) or "none"
        forecast = ", ".join(f"`{r}`" for r in self.forecast_run_ids) or "none"
        return "\n".join(
            [
                f"# {title}",
                "",
                f"<!-- generated by `{GENERATED_BY}` — do not edit -->",
                f"> Generated by `{GENERATED_BY}` — do not edit. Regenerate after a new "
                "`cascade run`.",
                ">",
                f"> Warehouse fingerprint `{self.fingerprint}` · generated {self.generated_at} · "
                f"{len(self.backtest_run_ids)} backtest runs · forecast runs {forecast}",
                "",
                f"<details><summary>Backtest run ids ({len(self.backtest_run_ids)})</summary>",
                "",
                ids,
                "",
                "</details>",
                "",
            ]
        )


def _stamp(con: duckdb.DuckDBPyConnection, now: datetime | None) -> _Stamp:
    """The current runs the pages show (``backtest_current``) and the scoreboard's forecast run."""
    backtest = tuple(
        r[0] for r in con.execute("SELECT run_id FROM backtest_current ORDER BY run_id").fetchall()
    )
    forecast = scoreboard_forecast_run(con)
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return _Stamp(
        fingerprint=warehouse_fingerprint(con),
        generated_at=moment.strftime("%Y-%m-%d %H:%M:%S UTC"),
        forecast_run_ids=(forecast,) if forecast else (),
        backtest_run_ids=backtest,
    )


# --- pages --------------------------------------------------------------------------------------


def _label_expr() -> str:
    return (
        "CASE WHEN s.forecast_model = '-' THEN s.policy "
        "ELSE s.policy || ' [' || s.forecast_model || ']' END"
    )


def _scoreboard_frame(con: duckdb.DuckDBPyConnection, impact: str) -> pl.DataFrame:
    return _frame(
        con,
        f"""
        SELECT coalesce(e.window_label, s.event_id, '(own path)') AS w, s.event_id, s.book,
               {_label_expr()} AS policy, s.n_liquidations, s.liquidated_usd, s.induced_usd,
               s.amplification, s.max_cascade_depth, s.bad_debt_usd, s.total_loss_usd,
               s.unhealthy_open_debt_usd, s.borrower_loss_usd,
               a.avoided_induced_usd, s.run_id
        FROM policy_scoreboard s
        LEFT JOIN avoided_cascades a USING (run_id)
        LEFT JOIN events e ON e.event_id = s.event_id
        WHERE s.impact = ? AND s.default_params
        ORDER BY w, policy, s.run_id
        """,
        [impact],
    )


def _wide(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    windows = (
        frame.select("w", "book")
        .unique()
        .sort("w")
        .with_columns(label=pl.format("{} ({})", "w", "book"))
    )
    wide = frame.select("policy", "w", column).pivot(
        on="w", index="policy", values=column, aggregate_function="first"
    )
    order = [w for w in windows["w"] if w in wide.columns]
    wide = wide.select("policy", *order).sort("policy")
    return wide.rename(dict(zip(order, windows["label"], strict=True)))


def scoreboard_page(con: duckdb.DuckDBPyConnection, stamp: _Stamp, *, impact: str) -> str:
    """``scoreboard.md``: policies × crash windows, then every run."""
    frame = _scoreboard_frame(con, impact)
    parts = [
        stamp.header("Policy scoreboard"),
        f"Default-parameter runs with impact model `{impact}` (`policy_scoreboard`, "
        "`avoided_cascades`). Definitions: [backtesting](../backtesting.md).",
        "",
    ]
    if frame.height == 0:
        parts.append("No backtest runs in this warehouse yet: run `cascade run`.")
        return "\n".join(parts) + "\n"
    tables = [
        (
            "Avoided induced liquidation vs the book's mechanism (`baseline_policy`), $M "
            "(positive = better)",
            "avoided_induced_usd",
            _musd,
        ),
        ("Amplification (liquidated debt / zero-impact counterfactual)", "amplification", None),
        ("Borrower loss, $M", "borrower_loss_usd", _musd),
        ("Bad debt, $M", "bad_debt_usd", _musd),
        (
            "Total loss incl. deferred losses at the window end, $M (bad debt + in-flight and "
            "underwater shortfall)",
            "total_loss_usd",
            _musd,
        ),
    ]
    for title, column, fmt in tables:
        wide = _wide(frame, column)
        fmt = fmt or (lambda v: f"{v:.3f}")
        formats = {c: fmt for c in wide.columns if c != "policy"}
        parts += [f"## {title}", "", markdown_table(wide, formats=formats), ""]
    runs = frame.select(
        "w",
        "book",
        "policy",
        pl.col("n_liquidations").alias("liquidations"),
        pl.col("liquidated_usd").alias("liquidated $M"),
        pl.col("induced_usd").alias("induced $M"),
        "amplification",
        pl.col("max_cascade_depth").alias("max depth"),
        pl.col("bad_debt_usd").alias("bad debt $M"),
        pl.col("borrower_loss_usd").alias("borrower loss $M"),
        pl.col("avoided_induced_usd").alias("avoided induced $M"),
        "run_id",
    )
    usd = {c: _musd for c in runs.columns if c.endswith("$M")}
    parts += [
        f"## Every run ({runs.height})",
        "",
        markdown_table(runs, formats={**usd, "amplification": lambda v: f"{v:.4f}"}),
        "",
    ]
    return "\n".join(parts)


#: Loss metric the evidence page judges forecasts and ranks policies by (lower is better).
EVIDENCE_METRICS = ("total_loss_usd", "borrower_loss_usd")


def _forecast_value_frame(con: duckdb.DuckDBPyConnection, impact: str) -> pl.DataFrame:
    return _frame(
        con,
        """
        SELECT coalesce(e.window_label, f.event_id) AS w, f.event_id, f.book, f.policy,
               f.forecast_model AS model_name, f.metric, f.model, f.constant, f.lagged,
               f.shuffled, f.oracle, f.best_control, f.captured_share, f.beats_controls
        FROM forecast_value f LEFT JOIN events e ON e.event_id = f.event_id
        WHERE f.impact = ? AND list_contains(?, f.metric)
        ORDER BY w, f.policy, f.forecast_model, f.metric
        """,
        [impact, list(EVIDENCE_METRICS)],
    )


def _intervals_frame(con: duckdb.DuckDBPyConnection, impact: str) -> pl.DataFrame:
    return _frame(
        con,
        """
        SELECT coalesce(e.window_label, i.event_id) AS w, i.book, i.policy, i.metric, i.real,
               i.median, i.lo, i.hi, i.p95, i.rank, i.overlaps_best, i.n_paths, i.run_id
        FROM policy_intervals i LEFT JOIN events e ON e.event_id = i.event_id
        WHERE i.impact = ? AND i.metric IN ('bad_debt_usd', 'liquidated_usd', 'total_loss_usd')
        ORDER BY w, i.metric, i.rank, i.policy
        """,
        [impact],
    )


def evidence_page(con: duckdb.DuckDBPyConnection, stamp: _Stamp, *, impact: str) -> str:
    """``evidence.md``: forecasts against their controls; intervals over stress paths."""
    parts = [
        stamp.header("Evidence: forecast value and intervals"),
        "A forecast-driven policy is credited only with what it gains over its best control "
        "(constant, lagged realized volatility, shuffled); the oracle (the volatility that "
        "followed) is the upper bound. `captured share = (best control − model) / (best control "
        "− oracle)`, empty when the oracle does not beat the controls. Intervals: each "
        "default-parameter run replayed on FHS stress paths of its event (median, 5–95 %). "
        "Method: [backtesting](../backtesting.md#evidence).",
        "",
    ]
    fv = _forecast_value_frame(con, impact)
    parts += ["## Did any forecast beat its controls?", ""]
    if fv.height == 0:
        parts += ["No forecast-driven runs with controls yet: run `cascade run`.", ""]
    else:
        for (w,), grp in fv.group_by(["w"], maintain_order=True):
            wins = grp.filter(pl.col("beats_controls").fill_null(False))
            if wins.height == 0:
                verdict = "no forecast beat its best control on any loss metric"
            else:
                labels = sorted(
                    {
                        f"{r['policy']} [{r['model_name']}] on {r['metric']}"
                        for r in wins.iter_rows(named=True)
                    }
                )
                verdict = "beat every control: " + "; ".join(labels)
            parts.append(f"- **{w}** ({grp['book'][0]}): {verdict}.")
        table = fv.select(
            "w",
            "policy",
            pl.col("model_name").alias("forecast"),
            "metric",
            pl.col("model").alias("model $M"),
            pl.col("constant").alias("constant $M"),
            pl.col("lagged").alias("lagged $M"),
            pl.col("shuffled").alias("shuffled $M"),
            pl.col("oracle").alias("oracle $M"),
            pl.col("captured_share").alias("captured share"),
            pl.col("beats_controls").alias("beats controls"),
        )
        usd = {c: _musd for c in table.columns if c.endswith("$M")}
        parts += [
            "",
            markdown_table(table, formats={**usd, "captured share": lambda v: f"{v:.2f}"}),
            "",
        ]
    iv = _intervals_frame(con, impact)
    parts += ["## Intervals over stress paths (VaR: p95 bad debt; LaR: p95 liquidated debt)", ""]
    if iv.height == 0:
        parts += ["No stress intervals yet: run `cascade run` (`--stress-paths N`).", ""]
    else:
        table = iv.select(
            "w",
            "book",
            "metric",
            "rank",
            "policy",
            pl.col("real").alias("real path $M"),
            pl.col("median").alias("median $M"),
            pl.col("lo").alias("5 % $M"),
            pl.col("hi").alias("95 % $M"),
            pl.col("p95").alias("p95 $M"),
            pl.col("overlaps_best").alias("overlaps best"),
            pl.col("n_paths").alias("paths"),
        )
        usd = {c: _musd for c in table.columns if c.endswith("$M")}
        parts += [
            "`overlaps best` = the policy's interval overlaps the best-ranked policy's: the "
            "stress paths cannot tell the two apart.",
            "",
            markdown_table(table, formats=usd),
            "",
        ]
    return "\n".join(parts)


def forecast_scores_page(con: duckdb.DuckDBPyConnection, stamp: _Stamp) -> str:
    """``forecast_scores.md``: QLIKE · MZ R² · VaR 99 % hit rate of the latest forecast run."""
    run_id = scoreboard_forecast_run(con)
    parts = [
        stamp.header("Forecast scores"),
        "Scores of the latest forecast run (`forecast_scores`, scope `crash`: forecast origins "
        "inside the crash windows). Definitions: [forecasting](../forecasting.md).",
        "",
    ]
    if run_id is None:
        parts.append(
            "No forecast run in this warehouse yet: run `cascade run` or `cascade forecast`."
        )
        return "\n".join(parts) + "\n"
    parts += [f"Forecast run `{run_id}`.", ""]
    scores = _frame(
        con,
        """
        SELECT event_id, model, asset, horizon_hours, metric, value FROM forecast_scores
        WHERE run_id = ? AND scope = 'crash'
          AND metric IN ('qlike', 'mz_r2', 'var99_hit_rate', 'var99_n')
        """,
        [run_id],
    )
    if scores.height == 0:
        parts.append("This run has no crash-scope scores.")
        return "\n".join(parts) + "\n"
    wide = scores.pivot(
        on="metric",
        index=["event_id", "model", "asset", "horizon_hours"],
        values="value",
        aggregate_function="first",
    )
    for metric in ("qlike", "mz_r2", "var99_hit_rate"):
        if metric not in wide.columns:
            wide = wide.with_columns(pl.lit(None, dtype=pl.Float64).alias(metric))

    def cell(q: float | None, r2: float | None, hit: float | None) -> str:
        fmt = [
            "–" if q is None or not math.isfinite(q) else f"{q:.3f}",
            "–" if r2 is None or not math.isfinite(r2) else f"{r2:.2f}",
            "–" if hit is None or not math.isfinite(hit) else _pct(hit),
        ]
        return " · ".join(fmt)

    wide = wide.with_columns(
        cell=pl.struct("qlike", "mz_r2", "var99_hit_rate").map_elements(
            lambda s: cell(s["qlike"], s["mz_r2"], s["var99_hit_rate"]), return_dtype=pl.String
        )
    )
    parts += [
        "## Crash windows pooled (`event_id = 'all'`)",
        "",
        "Each cell: **QLIKE** (lower is better) · Mincer–Zarnowitz R² · VaR 99 % hit rate "
        "(1 % expected).",
        "",
    ]
    for horizon in sorted(wide["horizon_hours"].unique()):
        pooled = wide.filter((pl.col("event_id") == "all") & (pl.col("horizon_hours") == horizon))
        table = (
            pooled.pivot(on="asset", index="model", values="cell", aggregate_function="first")
            .sort("model")
            .select("model", *sorted(c for c in pooled["asset"].unique()))
        )
        parts += [f"### {horizon} h horizon", "", markdown_table(table), ""]
    per_event = (
        wide.filter(pl.col("event_id") != "all")
        .with_columns(key=pl.format("{} {}h", "asset", "horizon_hours"))
        .pivot(on="model", index=["event_id", "key"], values="qlike", aggregate_function="first")
        .sort("event_id", "key")
        .rename({"key": "asset, horizon"})
    )
    models = sorted(c for c in per_event.columns if c not in ("event_id", "asset, horizon"))
    per_event = per_event.select("event_id", "asset, horizon", *models)
    parts += [
        "## QLIKE per crash",
        "",
        markdown_table(per_event, formats={m: (lambda v: f"{v:.3f}") for m in models}),
        "",
    ]
    return "\n".join(parts)


def questions_page(con: duckdb.DuckDBPyConnection, stamp: _Stamp) -> str:
    """``questions.md``: every :data:`QUESTIONS` entry with its SQL and the warehouse's answer."""
    parts = [
        stamp.header("Questions answered in SQL"),
        'Run any of these with `cascade sql "…"` (read-only). The answers below come from the '
        "warehouse named in the stamp. Tables and views: [data](../data.md), "
        "[results tables](../data.md#results-tables).",
        "",
    ]
    for i, q in enumerate(QUESTIONS, 1):
        try:
            answer = markdown_table(_frame(con, q.sql))
        except duckdb.Error as exc:  # a view missing in an old warehouse: say so, keep going
            answer = f"*(not answerable from this warehouse: {str(exc).splitlines()[0]})*"
        parts += [f"## {i}. {q.title}", "", "```sql", q.sql, "```", "", answer, ""]
        if q.note:
            parts += [q.note, ""]
    return "\n".join(parts)


def write_markdown(
    db_path: str | Path, out_dir: str | Path, *, impact: str = "sqrt", now: datetime | None = None
) -> list[Path]:
    """Write :data:`PAGES` to ``out_dir`` from a read-only connection to ``db_path``.

    Parameters
    ----------
    db_path : path
        The warehouse (it must exist; it is opened read-only).
    out_dir : path
        Directory of the pages (created when missing).
    impact : str
        Impact model of the runs on the scoreboard.
    now : datetime, optional
        Generation time to stamp (default: now, UTC).

    Returns
    -------
    list of Path
        The pages written, in :data:`PAGES` order.

    Raises
    ------
    CascadeError
        When the warehouse does not exist or cannot be opened.
    """
    con = connect(db_path, read_only=True)
    try:
        try:
            stamp = _stamp(con, now)
        except duckdb.CatalogException as exc:
            raise CascadeError(
                f"{db_path} has no results tables ({exc}); run `cascade run --db {db_path}` first"
            ) from exc
        pages = {
            "scoreboard.md": scoreboard_page(con, stamp, impact=impact),
            "evidence.md": evidence_page(con, stamp, impact=impact),
            "forecast_scores.md": forecast_scores_page(con, stamp),
            "questions.md": questions_page(con, stamp),
            "attribution.md": attribution_markdown(
                con,
                stamp.header("Market-wide replay: cascade attribution and market policies"),
                markdown_table,
            ),
        }
    finally:
        con.close()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in PAGES:
        path = out / name
        tmp = out / f".{name}.tmp"
        tmp.write_text(pages[name].rstrip("\n") + "\n")
        tmp.replace(path)
        written.append(path)
    return written
