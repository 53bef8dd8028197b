"""Summaries and pictures of the market-level policy replays of a stored attribution run."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from pipelines.attribution.printer import (
    latest_market_run,
    markdown_table,
    save_time_figure,
    summary_main,
)

__all__ = [
    "adl_table",
    "defi_table",
    "forecast_gain_table",
    "interval_overview",
    "interval_table",
    "latest_market_run",
    "policy_overview",
    "policy_table",
    "write_policy_plots",
]


def policy_table(results: pl.DataFrame) -> pl.DataFrame:
    """One row per (event, asset, impact Y, policy): shares, liquidations, bad debt, deferral."""
    if results.height == 0:
        return results
    return results.select(
        "event_id",
        "asset",
        pl.col("impact_y").alias("Y"),
        "policy",
        "cascade_share",
        "avoided_cascade_share",
        "liquidated_usd",
        "avoided_liq_usd",
        (pl.col("bad_debt_usd") + pl.col("defi_bad_debt_usd")).alias("bad_debt_usd"),
        "avoided_bad_debt_usd",
        "peak_deferred_usd",
        "deferred_usd",
        "halted_hours",
    )


def policy_overview(results: pl.DataFrame) -> pl.DataFrame:
    """Per impact Y and policy, over every replayed (event, asset).

    Columns: replays, mean cascade share, mean avoided share, replays where the policy lowered
    the cascade share, total avoided liquidations and bad debt (positive = avoided), and the
    largest deferred notional at a window end.
    """
    if results.height == 0:
        return results
    order = results.select("policy", "seq").unique("policy").sort("seq")["policy"].to_list()
    return (
        results.group_by(pl.col("impact_y").alias("Y"), "policy")
        .agg(
            replays=pl.len(),
            mean_cascade_share=pl.col("cascade_share").mean(),
            mean_avoided_share=pl.col("avoided_cascade_share").mean(),
            lower_share=(pl.col("avoided_cascade_share") > 1e-9).sum(),
            avoided_liq_usd=pl.col("avoided_liq_usd").sum(),
            avoided_bad_debt_usd=pl.col("avoided_bad_debt_usd").sum(),
            max_deferred_usd=pl.col("deferred_usd").max(),
        )
        .with_columns(pl.col("policy").replace_strict(order, range(len(order))).alias("_o"))
        .sort("Y", "_o")
        .drop("_o")
    )


def defi_table(results: pl.DataFrame) -> pl.DataFrame:
    """The status-quo replays with an endogenous DeFi book: replayed vs observed liquidations."""
    if results.height == 0:
        return results
    return results.filter(
        (pl.col("policy") == "status_quo") & pl.col("defi_book").str.contains("endogenous")
    ).select(
        "event_id",
        "asset",
        pl.col("impact_y").alias("Y"),
        "defi_book",
        pl.col("defi_liq_usd").alias("maker_replayed_usd"),
        pl.col("defi_observed_usd").alias("maker_observed_usd"),
        pl.col("defi_bad_debt_usd").alias("maker_bad_debt_usd"),
    )


def adl_table(adl: pl.DataFrame) -> pl.DataFrame:
    """Who each ADL rule deleverages (``market_adl`` without the note)."""
    if adl.height == 0:
        return adl
    return adl.select(
        "event_id",
        "asset",
        pl.col("impact_y").alias("Y"),
        "rule",
        "ts",
        "target_usd",
        "eligible_usd",
        "cohorts_hit",
        "high_lev_share",
        "mean_leverage",
        "max_cohort_fraction",
        "mean_profit",
    )


#: Columns of :func:`interval_table`.
_INTERVAL_COLUMNS = (
    "event_id", "asset", "Y", "policy", "versus", "metric", "real", "p5", "p50", "p95",
    "excludes_zero", "n_paths",
)  # fmt: skip


def interval_table(intervals: pl.DataFrame) -> pl.DataFrame:
    """One row per (event, asset, Y, policy, versus, metric): real value, p5 / p50 / p95.

    ``versus``: ``status_quo`` (the avoided figure) or, for ``forecast_mm:model``, one of its
    controls (the model's avoided figure minus the control's). ``excludes_zero``: the 5 %–95 %
    interval over the stress paths lies strictly on one side of 0 (``market_policy_intervals``;
    empty when the run has no intervals).
    """
    if intervals.height == 0:
        return intervals
    return intervals.rename({"impact_y": "Y"}).select(_INTERVAL_COLUMNS)


def interval_overview(intervals: pl.DataFrame) -> pl.DataFrame:
    """Per impact Y, policy, versus and metric: intervals, how many exclude 0 above / below it.

    ``real_positive``: how many real-path values are > 0 (to read beside ``above_zero``).
    """
    if intervals.height == 0:
        return intervals
    return (
        intervals.group_by(
            pl.col("impact_y").alias("Y"), "policy", "versus", "metric", maintain_order=True
        )
        .agg(
            intervals=pl.len(),
            n_paths=pl.col("n_paths").max(),
            above_zero=(pl.col("excludes_zero") & (pl.col("p5") > 0)).sum(),
            below_zero=(pl.col("excludes_zero") & (pl.col("p95") < 0)).sum(),
            real_positive=(pl.col("real") > 0).sum(),
        )
        .sort("Y", maintain_order=True)
    )


def forecast_gain_table(intervals: pl.DataFrame) -> pl.DataFrame:
    """The forecast margin's cascade-share gain over each control: real value and interval.

    Rows of ``forecast_mm:model`` versus each of its controls (``avoided_cascade_share`` of the
    model minus the control's; positive = the forecast did better), per (event, asset, Y).
    """
    if intervals.height == 0:
        return intervals
    gain = (
        (pl.col("policy") == "forecast_mm:model")
        & (pl.col("versus") != "status_quo")
        & (pl.col("metric") == "avoided_cascade_share")
    )
    table = interval_table(intervals.filter(gain)).drop("policy", "metric")
    return table.rename({c: f"{c}_share" for c in ("real", "p5", "p50", "p95")})


def write_policy_plots(
    paths: pl.DataFrame, policy_paths: pl.DataFrame, event_id: str, directory: Path
) -> Path:
    """Observed vs fundamental vs replayed under each policy, per asset and impact Y.

    Rows: one per impact Y (replayed closes under every policy, the observed path), and the
    liquidation flow by venue (CEX observed, DeFi observed, other venues, CEX replayed).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    assets = sorted(policy_paths["asset"].unique())
    ys = sorted(policy_paths["impact_y"].unique())
    fig, axes = plt.subplots(
        len(ys) + 1, len(assets), figsize=(6.5 * len(assets), 3.4 * (len(ys) + 1)), squeeze=False
    )
    for j, asset in enumerate(assets):
        obs = paths.filter(pl.col("asset") == asset)
        for r, y in enumerate(ys):
            ax = axes[r][j]
            ax.plot(obs["ts"].to_list(), obs["observed"].to_numpy(), "k-", lw=1.6, label="observed")
            pp = policy_paths.filter((pl.col("asset") == asset) & (pl.col("impact_y") == y))
            if "fundamental" in pp.columns:
                f = pp.filter(pl.col("policy") == "status_quo")
                ax.plot(f["ts"].to_list(), f["fundamental"].to_numpy(), "g--", lw=1.2,
                        label="fundamental")  # fmt: skip
            for policy in pp["policy"].unique(maintain_order=True).to_list():
                q = pp.filter(pl.col("policy") == policy)
                ax.plot(q["ts"].to_list(), q["replayed"].to_numpy(), lw=0.9, label=policy)
            ax.set_title(f"{event_id} {asset}: replay, impact Y = {y:g}", fontsize=9)
            ax.legend(fontsize=6, ncol=2)
        ax = axes[len(ys)][j]
        ts = obs["ts"].to_list()
        ax.bar(ts, obs["observed_flow_usd"].to_numpy() / 1e6, width=0.03, label="CEX observed")
        ax.bar(ts, obs["defi_flow_usd"].to_numpy() / 1e6, width=0.03, label="DeFi observed")
        ax.bar(ts, obs["other_venue_flow_usd"].to_numpy() / 1e6, width=0.03,
               label="other venues (Hyperliquid)")  # fmt: skip
        ax.plot(ts, obs["replayed_flow_usd"].to_numpy() / 1e6, "r.", ms=3, label="CEX replayed")
        ax.set_ylabel("net forced sales, $M / hour")
        ax.set_title("liquidation flow by venue", fontsize=9)
        ax.legend(fontsize=7)
    return save_time_figure(fig, directory / f"policies-{event_id}.png", dpi=80)


def markdown_tables(
    results: pl.DataFrame, adl: pl.DataFrame, intervals: pl.DataFrame | None = None
) -> str:
    """The policy overview, the Maker book and the ADL rules as Markdown (docs/market-replay.md).

    With ``intervals`` (rows of ``market_policy_intervals``): also the interval overview and the
    avoided cascade share's interval per (event, asset, Y, policy).
    """

    def cell(col: str, v: object) -> str:
        if not isinstance(v, float):
            return str(v)
        if col.endswith("_usd"):
            return f"{v / 1e6:,.1f}M"
        if "share" in col or "fraction" in col:
            return f"{100 * v:.2f} %"
        return f"{v:g}" if col == "Y" else f"{v:.2f}"

    def table(frame: pl.DataFrame) -> str:
        return markdown_table(frame, cell)

    adl_cols = [c for c in adl_table(adl).columns if c != "ts"]
    parts = [
        table(policy_overview(results)),
        table(defi_table(results).drop("defi_book")),
        table(adl_table(adl).select(adl_cols)),
    ]
    if intervals is not None and intervals.height:
        share = interval_table(intervals).filter(pl.col("metric") == "avoided_cascade_share")
        parts.append(table(interval_overview(intervals)))
        parts.append(
            table(
                share.drop("metric", "n_paths").rename(
                    {c: f"avoided_share_{c}" for c in ("real", "p5", "p50", "p95")}
                )
            )
        )
    return "\n\n".join(parts)


def _render(con: duckdb.DuckDBPyConnection, rid: str | None) -> str:
    from pipelines.warehouse import attribution_store as store

    return markdown_tables(
        store.read_policy_results(con, rid),
        store.read_adl(con, rid),
        store.read_policy_intervals(con, rid),
    )


if __name__ == "__main__":  # pragma: no cover - documentation helper
    summary_main("print a run's policy results as Markdown", _render)
