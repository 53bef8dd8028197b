"""The attribution section of ``cascade report`` and the page ``attribution.md``.

Both show the latest ``cascade attribute`` run: the cascade attribution per event and asset with
the impact check beside it, the market-level policy comparison at impact ``Y = 1`` (the
calibrated square-root law) and ``Y = 6`` (the order of the impact-check slope), the Maker
ETH-B book replayed endogenously, the ADL rules on W7 and (HTML only) a picture per event.
Method: ``docs/market-replay.md``.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

import duckdb
import polars as pl

from pipelines.attribution.policy_summary import (
    adl_table,
    defi_table,
    forecast_gain_table,
    interval_overview,
    latest_market_run,
    policy_overview,
    policy_table,
    write_policy_plots,
)
from pipelines.attribution.summary import model_check_summary, write_event_plots
from pipelines.reporting.attribution_reading import policy_reading
from pipelines.warehouse import attribution_store as store

__all__ = ["ATTRIBUTION_COLUMNS", "attribution_html", "attribution_markdown"]

#: Columns of ``cascade_attribution`` shown in the report.
ATTRIBUTION_COLUMNS = (
    "event_id", "asset", "observed_drawdown", "fundamental_drawdown", "replayed_drawdown",
    "cascade_share", "observed_liq_usd", "replayed_liq_usd", "defi_liq_usd",
    "max_cascade_depth", "drawdown_error", "consistent",
)  # fmt: skip

_INTRO = (
    "The market-wide replay (docs/market-replay.md): the observed liquidation flow's impact is "
    "removed from the observed path (the fundamental path), the estimated leverage book is "
    "replayed on it with endogenous impact, and the cascade share is the part of the replayed "
    "drawdown the forced selling added. The impact check beside it regresses observed returns "
    "outside the crash windows on the returns the impact law predicts from the liquidation "
    "flow: a slope above 1 beyond its interval means the law understates impact and the cascade "
    "shares are biased down."
)
_POLICY_INTRO = (
    "Market-level policies replayed on the same fundamental path, at impact Y = 1 (the "
    "calibrated law) and Y = 6 (the order of the impact-check slope; a sensitivity, not a fit). "
    "avoided_* = status quo minus the policy (positive = avoided). Bad debt = fills beyond the "
    "bankruptcy price (CEX cohorts; Maker vaults: debt above the collateral's sale value). "
    "Deferred = positions past their liquidation price still open plus the insurance fund's "
    "inventory at the window end: nothing deferred is dropped."
)

_CHECK_INTRO = (
    "The liquidation model against the reported daily liquidations (`liquidation_model_check`): "
    "Spearman of log predicted vs log reported over every reported day (an event day predicted "
    "by the fit with that event left out), and on each event's worst day the held-out "
    "prediction over the reported figure (target: within a factor 2)."
)
_BOOKS_INTRO = (
    "The fitted books (`market_books`): one row per asset for the base fit and one per "
    "held-out event; `levered_share` of a held-out row is the share in force at that event's "
    "start."
)


def _pct(v: float) -> str:
    return f"{100 * v:.2f} %"


def _musd(v: float) -> str:
    return f"{v / 1e6:,.1f}"


def _num(v: float) -> str:
    return f"{v:.3f}"


FORMATS: dict[str, Callable[[float], str]] = {
    "observed_drawdown": _pct, "fundamental_drawdown": _pct, "replayed_drawdown": _pct,
    "cascade_share": _pct, "avoided_cascade_share": _pct, "mean_cascade_share": _pct,
    "mean_avoided_share": _pct, "drawdown_error": _pct, "high_lev_share": _pct,
    "max_cohort_fraction": _pct, "observed_liq_usd": _musd, "replayed_liq_usd": _musd,
    "defi_liq_usd": _musd, "liquidated_usd": _musd, "avoided_liq_usd": _musd,
    "bad_debt_usd": _musd, "avoided_bad_debt_usd": _musd, "peak_deferred_usd": _musd,
    "deferred_usd": _musd, "max_deferred_usd": _musd, "target_usd": _musd,
    "eligible_usd": _musd, "maker_replayed_usd": _musd, "maker_observed_usd": _musd,
    "maker_bad_debt_usd": _musd, "slope": _num, "slope_lo": _num, "slope_hi": _num,
    "intercept": _num, "r2": _num, "mean_leverage": lambda v: f"{v:.1f}",
    "mean_profit": lambda v: f"{v:.2f}", "Y": lambda v: f"{v:g}", "value": _num,
    "levered_share": lambda v: f"{v:.4f}", "fit_loss": lambda v: f"{v:.4f}",
    "share_scale": _num, "lev_median": lambda v: f"{v:g}", "lev_spread": lambda v: f"{v:g}",
    "funding_k": lambda v: f"{v:g}", "turnover_per_day": lambda v: f"{v:g}",
    "turnover_lev_exp": lambda v: f"{v:g}", "mmr": lambda v: f"{v:g}",
    "real_share": _pct, "p5_share": _pct, "p50_share": _pct, "p95_share": _pct,
}  # fmt: skip


def _frames(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, pl.DataFrame]:
    results = store.read_policy_results(con, run_id)
    return {
        "attribution": store.read_attribution(con, run_id).select(ATTRIBUTION_COLUMNS),
        "impact": store.read_impact_check(con, run_id),
        "check": model_check_summary(store.read_model_check(con, run_id)),
        "books": store.read_market_books(con, run_id),
        "overview": policy_overview(results),
        "policies": policy_table(results),
        "defi": defi_table(results),
        "adl": adl_table(store.read_adl(con, run_id)),
        "intervals": store.read_policy_intervals(con, run_id),
    }


def _run_line(con: duckdb.DuckDBPyConnection, run_id: str) -> str:
    created, config = con.execute(
        "SELECT created_at, config_json FROM market_runs WHERE run_id = ?", [run_id]
    ).fetchall()[0]
    y = pl.Series([config]).str.json_path_match("$.impact_y")[0]
    return (
        f"Attribution run `{run_id}` (`cascade attribute`, created "
        f"{created:%Y-%m-%d %H:%M UTC}, attribution at impact Y = {y})"
    )


def _overview_of(f: dict[str, pl.DataFrame]) -> pl.DataFrame | None:
    """The interval overview of a run's frames (``None`` without intervals)."""
    return interval_overview(f["intervals"]) if f["intervals"].height else None


def _interval_section(intervals: pl.DataFrame, markdown_table: Callable[..., str]) -> list[str]:
    """Intervals over stress paths: the overview and the forecast margin against its controls."""
    if intervals.height == 0:
        return []
    n = int(intervals["n_paths"].max())
    return [
        "### Intervals over stress paths",
        "",
        f"Over {n} seeded stress paths per event and asset "
        "([method](../market-replay.md#intervals-over-stress-paths)): how many 5–95 % intervals "
        "lie above or below 0, per impact Y, policy and figure (`versus status_quo`: avoided "
        "figures; `versus` a control: the forecast margin minus that control).",
        "",
        markdown_table(interval_overview(intervals), formats=FORMATS),
        "",
        "The forecast margin's cascade-share gain over each control, per event and asset:",
        "",
        markdown_table(forecast_gain_table(intervals), formats=FORMATS),
        "",
    ]


def _interval_html(intervals: pl.DataFrame, html_table: Callable[..., str]) -> list[str]:
    """The HTML counterpart of :func:`_interval_section` (nothing without intervals)."""
    if intervals.height == 0:
        return []
    n = int(intervals["n_paths"].max())
    return [
        "<h3>Intervals over stress paths</h3>",
        f"<p>Over {n} seeded stress paths per event and asset: how many 5–95 % intervals lie "
        "above or below 0, per impact Y, policy and figure (<code>versus status_quo</code>: "
        "avoided figures; <code>versus</code> a control: the forecast margin minus that "
        "control).</p>",
        html_table(interval_overview(intervals), FORMATS),
        "<p>The forecast margin's cascade-share gain over each control, per event and asset:</p>",
        html_table(forecast_gain_table(intervals), FORMATS),
    ]


def attribution_markdown(
    con: duckdb.DuckDBPyConnection, header: str, markdown_table: Callable[..., str]
) -> str:
    """The page ``attribution.md``: ``header`` (the stamp) and the latest attribution run.

    ``markdown_table`` is :func:`pipelines.reporting.markdown.markdown_table` (passed in, so
    the two modules do not import each other).
    """
    run_id = latest_market_run(con)
    parts = [header]
    if run_id is None:
        parts.append(
            "No `cascade attribute` run in this warehouse: run `cascade attribute --db …`, then "
            "regenerate this page."
        )
        return "\n".join(parts)
    f = _frames(con, run_id)
    parts += [
        f"> {_run_line(con, run_id)}. Method: [market-replay.md](../market-replay.md). "
        "Pictures per event: `cascade attribute --plots DIR` or `cascade report`.",
        "",
        _INTRO,
        "",
        "## Cascade attribution",
        "",
        markdown_table(f["attribution"], formats=FORMATS),
        "",
        "## Impact check",
        "",
        markdown_table(f["impact"], formats=FORMATS),
        "",
        "## Liquidation model check",
        "",
        _CHECK_INTRO,
        "",
        markdown_table(f["check"], formats=FORMATS),
        "",
        "## Fitted books",
        "",
        _BOOKS_INTRO,
        "",
        markdown_table(f["books"], formats=FORMATS),
        "",
        "## Market-level policies",
        "",
        _POLICY_INTRO,
        "",
        "### Overview over every replayed event and asset",
        "",
        markdown_table(f["overview"], formats=FORMATS),
        "",
        "Reading (generated from the overview):",
        "",
        *[f"* {sentence}" for sentence in policy_reading(f["overview"], _overview_of(f))],
        "",
        *_interval_section(f["intervals"], markdown_table),
        "### DeFi book: Maker ETH-B replayed endogenously (status quo)",
        "",
        "Aave v2 and Compound v2 stay observed flow.",
        "",
        markdown_table(f["defi"], formats=FORMATS),
        "",
        "### Auto-deleveraging: queue (profit × leverage) vs pro rata",
        "",
        markdown_table(f["adl"], formats=FORMATS),
        "",
        "### Per event, asset and impact Y",
        "",
        markdown_table(f["policies"], formats=FORMATS),
    ]
    return "\n".join(parts)


def attribution_html(
    con: duckdb.DuckDBPyConnection,
    img_dir: Path,
    html_table: Callable[..., str],
    img: Callable[[str, str], str],
) -> list[str]:
    """The report's attribution section (tables and one picture per event in ``img_dir``).

    ``html_table`` and ``img`` are the report's table and picture helpers (passed in, so the two
    modules do not import each other).
    """
    _html_table, _img = html_table, img
    run_id = latest_market_run(con)
    if run_id is None:
        return ["<p class='note'>No attribution run yet (<code>cascade attribute</code>).</p>"]
    f = _frames(con, run_id)
    body = [
        f"<p>{html.escape(_run_line(con, run_id))}. {html.escape(_INTRO)}</p>",
        "<h3>Cascade attribution</h3>",
        _html_table(f["attribution"], FORMATS),
        "<h3>Impact check</h3>",
        _html_table(f["impact"], FORMATS),
        "<h3>Liquidation model check</h3>",
        _html_table(f["check"], FORMATS),
        "<h3>Market-level policies</h3>",
        f"<p>{html.escape(_POLICY_INTRO)}</p>",
        _html_table(f["overview"], FORMATS, signed=True),
        "<p>Reading (generated from the overview):</p>",
        "<ul>",
        *[
            f"<li>{html.escape(sentence)}</li>"
            for sentence in policy_reading(f["overview"], _overview_of(f))
        ],
        "</ul>",
        *_interval_html(f["intervals"], _html_table),
        "<h3>Maker ETH-B as an endogenous book (Aave v2, Compound v2: observed flow)</h3>",
        _html_table(f["defi"], FORMATS),
        "<h3>Auto-deleveraging on W7: queue vs pro rata</h3>",
        _html_table(f["adl"], FORMATS),
        "<h3>Per event</h3>",
    ]
    for eid in f["attribution"]["event_id"].unique(maintain_order=True).to_list():
        paths = store.read_paths(con, run_id, eid)
        pics = [write_event_plots(paths, eid, img_dir)]
        policy_paths = store.read_policy_paths(con, run_id, eid)
        if policy_paths.height:
            pics.append(write_policy_plots(paths, policy_paths, eid, img_dir))
        body += [_img(f"img/{p.name}", p.stem) for p in pics]
        body.append(
            _html_table(f["policies"].filter(pl.col("event_id") == eid), FORMATS, signed=True)
        )
    return body
