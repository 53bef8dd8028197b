"""SQL of the market-wide replay stage (``pipelines.attribution``): reads and atomic writes.

Tables are in ``data/schema/006_market.sql``. Reads return polars frames with UTC timestamps;
the stage never writes SQL of its own.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import duckdb
import polars as pl

from pipelines.warehouse.connection import insert_frame, transaction

__all__ = [
    "ATTRIBUTION_TABLES",
    "cex_liquidations_4h",
    "daily_inputs",
    "book_greeks_rows",
    "defi_flow_hourly",
    "other_venue_flow_hourly",
    "event_windows",
    "hourly_bars",
    "hourly_closes",
    "forecast_sigma",
    "hyperliquid_liquidations_usd",
    "maker_ethb_vaults",
    "read_adl",
    "read_impact_check",
    "read_market_books",
    "read_policy_intervals",
    "read_policy_paths",
    "read_policy_results",
    "oi_4h_all",
    "run_exists",
    "write_attribution_run",
]

#: Result tables written by one run (schema 006_market.sql).
ATTRIBUTION_TABLES = (
    "market_books",
    "liquidation_model_check",
    "cascade_attribution",
    "market_paths",
    "book_greeks",
    "impact_check",
    "market_policy_results",
    "market_policy_paths",
    "market_adl",
    "market_policy_intervals",
)

#: Venue set of the daily open interest and reported liquidations the model is fitted on.
VENUE_SET = "binance+okx+bybit"

#: DeFi collateral symbols that are sold into each asset's market.
DEFI_COLLATERAL = {"ETH": ("ETH", "WETH"), "BTC": ("WBTC", "BTC"), "SOL": ("SOL", "WSOL")}


def event_windows(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """``event_id, window_label, start_ts, end_ts`` of every crash event."""
    return con.sql(
        "SELECT event_id, window_label, start_ts, end_ts FROM events ORDER BY start_ts"
    ).pl()


def daily_inputs(con: duckdb.DuckDBPyConnection, asset: str) -> pl.DataFrame:
    """Daily bars (Binance spot, from hourly), OI and reported liquidations of the venue set.

    Columns ``day, low, high, close, oi_usd, funding_8h, reported_long_usd,
    reported_short_usd``; one row per day with open interest (its value is the day's close).
    """
    return con.sql(
        """
        WITH p AS (
            SELECT date_trunc('day', ts) AS day, min(low) AS low, max(high) AS high,
                   arg_max(close, ts) AS close
            FROM prices WHERE asset = $asset AND market = 'spot' AND venue = 'binance'
              AND bar_seconds = 3600 GROUP BY 1),
        o AS (
            SELECT date_trunc('day', ts) AS day, arg_max(oi_usd, ts) AS oi_usd
            FROM open_interest WHERE asset = $asset AND venue_set = $vs
              AND interval_seconds = 86400 GROUP BY 1),
        f AS (
            SELECT date_trunc('day', ts) AS day, avg(rate) AS funding_8h
            FROM funding WHERE asset = $asset AND venue = 'binance'
              AND interval_seconds = 28800 GROUP BY 1),
        l AS (
            SELECT date_trunc('day', ts) AS day, sum(long_usd) AS reported_long_usd,
                   sum(short_usd) AS reported_short_usd
            FROM cex_liquidations WHERE asset = $asset AND venue_set = $vs
              AND interval_seconds = 86400 GROUP BY 1)
        SELECT o.day, p.low, p.high, p.close, o.oi_usd, f.funding_8h,
               l.reported_long_usd, l.reported_short_usd
        FROM o LEFT JOIN p USING (day) LEFT JOIN f USING (day) LEFT JOIN l USING (day)
        ORDER BY o.day
        """,
        params={"asset": asset, "vs": VENUE_SET},
    ).pl()


def hourly_bars(
    con: duckdb.DuckDBPyConnection, asset: str, start: datetime, end: datetime
) -> pl.DataFrame:
    """Hourly Binance spot bars ``ts, low, high, close, volume`` in ``[start, end)``."""
    return con.sql(
        """
        SELECT ts, min(low) AS low, max(high) AS high, arg_max(close, ts) AS close,
               sum(volume) AS volume
        FROM prices WHERE asset = ? AND market = 'spot' AND venue = 'binance'
          AND bar_seconds = 3600 AND ts >= ? AND ts < ?
        GROUP BY ts ORDER BY ts
        """,
        params=[asset, start, end],
    ).pl()


def hourly_funding(
    con: duckdb.DuckDBPyConnection, asset: str, start: datetime, end: datetime
) -> pl.DataFrame:
    """8-hour Binance funding ``ts, rate`` in ``[start, end)``."""
    return con.sql(
        "SELECT ts, avg(rate) AS rate FROM funding WHERE asset = ? AND venue = 'binance' "
        "AND interval_seconds = 28800 AND ts >= ? AND ts < ? GROUP BY ts ORDER BY ts",
        params=[asset, start, end],
    ).pl()


def oi_4h_all(con: duckdb.DuckDBPyConnection, asset: str) -> pl.DataFrame:
    """All-venue 4-hour open interest ``ts, oi_usd`` (CoinGlass, 2025-04..2025-10)."""
    return con.sql(
        "SELECT ts, avg(oi_usd) AS oi_usd FROM open_interest WHERE asset = ? AND venue_set = 'all' "
        "AND interval_seconds = 14400 GROUP BY ts ORDER BY ts",
        params=[asset],
    ).pl()


def cex_liquidations_4h(con: duckdb.DuckDBPyConnection, asset: str) -> pl.DataFrame:
    """Binance-only 4-hour liquidations ``ts, long_usd, short_usd`` (2024-11..2025-11)."""
    return con.sql(
        "SELECT ts, sum(long_usd) AS long_usd, sum(short_usd) AS short_usd "
        "FROM cex_liquidations WHERE asset = ? AND venue_set = 'binance' "
        "AND interval_seconds = 14400 GROUP BY ts ORDER BY ts",
        params=[asset],
    ).pl()


def binance_daily_liquidations(con: duckdb.DuckDBPyConnection, asset: str) -> pl.DataFrame:
    """Binance-only daily liquidations ``day, long_usd, short_usd``."""
    return con.sql(
        "SELECT date_trunc('day', ts) AS day, sum(long_usd) AS long_usd, "
        "sum(short_usd) AS short_usd FROM cex_liquidations WHERE asset = ? "
        "AND venue_set = 'binance' AND interval_seconds = 86400 GROUP BY 1 ORDER BY 1",
        params=[asset],
    ).pl()


def defi_flow_hourly(
    con: duckdb.DuckDBPyConnection, asset: str, start: datetime, end: datetime
) -> pl.DataFrame:
    """Hourly DeFi collateral sold into ``asset``'s market: ``ts, defi_usd``.

    Collateral value is ``collateral_usd``, else ``debt_repaid_usd`` (Compound v2 exports carry
    no USD collateral value; repaid debt is the seized value net of the liquidation bonus).
    """
    syms = list(DEFI_COLLATERAL.get(asset, (asset,)))
    return con.sql(
        """
        SELECT date_trunc('hour', ts) AS ts,
               sum(coalesce(collateral_usd, debt_repaid_usd, 0)) AS defi_usd
        FROM defi_liquidations
        WHERE list_contains(?, upper(collateral_asset)) AND ts >= ? AND ts < ?
        GROUP BY 1 ORDER BY 1
        """,
        params=[syms, start, end],
    ).pl()


def other_venue_flow_hourly(
    con: duckdb.DuckDBPyConnection, asset: str, start: datetime, end: datetime
) -> pl.DataFrame:
    """Hourly liquidations of venues outside the fitted set (Hyperliquid on W7): ``ts, usd``.

    Long minus short liquidations where the split is known, else the total (the W7 Hyperliquid
    episode, 21:15-21:27 UTC, was a long squeeze); auto-deleveraging is not a market sale and is
    left out.
    """
    return con.sql(
        """
        SELECT date_trunc('hour', ts) AS ts,
               sum(coalesce(long_usd - short_usd, total_usd, 0)) AS usd
        FROM cex_liquidations
        WHERE asset = ? AND venue_set NOT IN ('binance', 'binance+okx+bybit', 'all')
          AND ts >= ? AND ts < ?
        GROUP BY 1 ORDER BY 1
        """,
        params=[asset, start, end],
    ).pl()


def book_greeks_rows(con: duckdb.DuckDBPyConnection, run_id: str) -> pl.DataFrame:
    """The ``book_greeks`` rows of a run."""
    return con.sql(
        "SELECT * EXCLUDE (run_id) FROM book_greeks WHERE run_id = ? ORDER BY event_id, asset, ts",
        params=[run_id],
    ).pl()


def hourly_closes(con: duckdb.DuckDBPyConnection, asset: str) -> pl.DataFrame:
    """Every hourly Binance spot bar of an asset: ``ts, close, volume``."""
    return con.sql(
        "SELECT ts, arg_max(close, ts) AS close, sum(volume) AS volume FROM prices "
        "WHERE asset = ? AND market = 'spot' AND venue = 'binance' AND bar_seconds = 3600 "
        "GROUP BY ts ORDER BY ts",
        params=[asset],
    ).pl()


def read_impact_check(con: duckdb.DuckDBPyConnection, run_id: str) -> pl.DataFrame:
    """The ``impact_check`` rows of a run."""
    return con.sql(
        "SELECT * EXCLUDE (run_id) FROM impact_check WHERE run_id = ? ORDER BY asset, interval",
        params=[run_id],
    ).pl()


def run_exists(con: duckdb.DuckDBPyConnection, run_id: str) -> bool:
    """Whether a run id is stored."""
    try:
        rows = con.execute("SELECT 1 FROM market_runs WHERE run_id = ?", [run_id]).fetchall()
    except duckdb.CatalogException:
        return False
    return bool(rows)


def read_attribution(con: duckdb.DuckDBPyConnection, run_id: str) -> pl.DataFrame:
    """The ``cascade_attribution`` rows of a run."""
    return con.sql(
        "SELECT a.* EXCLUDE (run_id) FROM cascade_attribution a JOIN events e USING (event_id) "
        "WHERE run_id = ? ORDER BY e.start_ts, a.asset",
        params=[run_id],
    ).pl()


def read_model_check(con: duckdb.DuckDBPyConnection, run_id: str) -> pl.DataFrame:
    """The ``liquidation_model_check`` rows of a run."""
    return con.sql(
        "SELECT * EXCLUDE (run_id) FROM liquidation_model_check WHERE run_id = ? "
        "ORDER BY asset, held_out_event NULLS FIRST, day",
        params=[run_id],
    ).pl()


def read_market_books(con: duckdb.DuckDBPyConnection, run_id: str) -> pl.DataFrame:
    """The ``market_books`` rows of a run (fitted parameters, base fit first)."""
    return con.sql(
        "SELECT * EXCLUDE (run_id) FROM market_books WHERE run_id = ? "
        "ORDER BY asset, held_out_event NULLS FIRST",
        params=[run_id],
    ).pl()


def read_paths(con: duckdb.DuckDBPyConnection, run_id: str, event_id: str) -> pl.DataFrame:
    """The ``market_paths`` rows of one event of a run."""
    return con.sql(
        "SELECT * EXCLUDE (run_id) FROM market_paths WHERE run_id = ? AND event_id = ? "
        "ORDER BY asset, ts",
        params=[run_id, event_id],
    ).pl()


def write_attribution_run(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    config: dict,
    frames: dict[str, pl.DataFrame],
) -> None:
    """Replace a run's rows in every result table, in one transaction (all or nothing)."""
    with transaction(con):
        for table in (*ATTRIBUTION_TABLES, "market_runs"):
            con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
        con.execute(
            "INSERT INTO market_runs VALUES (?, ?, ?, ?)",
            [run_id, datetime.now(UTC), json.dumps(config, sort_keys=True), None],
        )
        for table in ATTRIBUTION_TABLES:
            frame = frames.get(table)
            if frame is not None and frame.height:
                insert_frame(con, table, frame.with_columns(pl.lit(run_id).alias("run_id")))


# --- market-level policies (data/schema/009_market_policies.sql) --------------------------------


def forecast_sigma(
    con: duckdb.DuckDBPyConnection, asset: str, event_id: str, model: str, horizon_hours: int
) -> tuple[str | None, pl.DataFrame]:
    """The latest forecast run's ``origin_ts, sigma`` of one event, asset and model.

    Returns ``(run_id, frame)``; ``(None, empty)`` when no forecast run covers them.
    """
    try:
        rows = con.sql(
            "SELECT f.run_id FROM forecasts f JOIN forecast_runs r USING (run_id) "
            "WHERE f.asset = ? AND f.event_id = ? AND f.model = ? AND f.horizon_hours = ? "
            "GROUP BY f.run_id, r.created_at ORDER BY r.created_at DESC, f.run_id LIMIT 1",
            params=[asset, event_id, model, horizon_hours],
        ).fetchall()
    except duckdb.CatalogException:
        rows = []
    if not rows:
        return None, pl.DataFrame(
            schema={"origin_ts": pl.Datetime("us", "UTC"), "sigma": pl.Float64}
        )
    run_id = rows[0][0]
    frame = con.sql(
        "SELECT origin_ts, sigma FROM forecasts WHERE run_id = ? AND asset = ? AND event_id = ? "
        "AND model = ? AND horizon_hours = ? ORDER BY origin_ts",
        params=[run_id, asset, event_id, model, horizon_hours],
    ).pl()
    return run_id, frame


def hyperliquid_liquidations_usd(con: duckdb.DuckDBPyConnection) -> float | None:
    """Hyperliquid's reported liquidations of 2025-10-10 21:15-21:27 UTC (``reference_figures``)."""
    rows = con.sql(
        "SELECT max(value) FROM reference_figures WHERE protocol_or_venue = 'Hyperliquid' "
        "AND metric LIKE 'liquidations%'"
    ).fetchall()
    return None if not rows or rows[0][0] is None else float(rows[0][0])


def maker_ethb_vaults(
    con: duckdb.DuckDBPyConnection, start: datetime, end: datetime
) -> tuple[pl.DataFrame, pl.DataFrame, float | None]:
    """The rebuilt Maker ETH-B vault book at ``start``, its owners' actions in ``[start, end)``.

    Returns ``(vaults, events, mat)``: ``vaults`` = ``vault_id, collateral, debt`` (sums of the
    vault events strictly before ``start``, in a fixed order so the sums are bit-identical),
    ``events`` = ``ts, vault_id, collateral_delta, debt_delta`` of the deposits, withdrawals,
    draws and repayments in the window (liquidations are left to the replay), ``mat`` = the
    liquidation ratio in force at ``start`` (``None`` when the history does not cover it).
    """
    span = con.sql(
        "SELECT min(ts), max(ts) FROM vault_events WHERE protocol = 'maker' AND ilk = 'ETH-B'"
    ).fetchall()[0]
    mat = con.sql(
        "SELECT max_by(value, effective_ts) FROM risk_params WHERE protocol = 'maker' "
        "AND market = 'ETH-B' AND parameter = 'SPOTTER.ilks.mat' AND effective_ts <= ?",
        params=[start],
    ).fetchall()[0][0]
    if span[0] is None or mat is None or not (span[0] < start and end <= span[1]):
        return pl.DataFrame(), pl.DataFrame(), None
    rows = con.sql(
        "SELECT vault_id, coalesce(collateral_delta, 0.0) AS c, coalesce(debt_delta, 0.0) AS d "
        "FROM vault_events WHERE protocol = 'maker' AND ilk = 'ETH-B' AND ts < ? "
        "ORDER BY TRY_CAST(vault_id AS BIGINT), vault_id, ts, block, event_type, c, d",
        params=[start],
    ).pl()
    vaults = rows.group_by("vault_id", maintain_order=True).agg(
        collateral=pl.col("c").sum(), debt=pl.col("d").sum()
    )
    events = con.sql(
        "SELECT ts, vault_id, coalesce(collateral_delta, 0.0) AS collateral_delta, "
        "coalesce(debt_delta, 0.0) AS debt_delta FROM vault_events "
        "WHERE protocol = 'maker' AND ilk = 'ETH-B' AND ts >= ? AND ts < ? "
        "AND event_type IN ('deposit', 'withdraw', 'mint', 'repay') "
        "ORDER BY ts, block, TRY_CAST(vault_id AS BIGINT), vault_id, event_type",
        params=[start, end],
    ).pl()
    return vaults, events, float(mat)


def maker_flow_hourly(
    con: duckdb.DuckDBPyConnection, start: datetime, end: datetime
) -> pl.DataFrame:
    """Observed Maker ETH-B liquidations per hour ``ts, defi_usd`` (in :func:`defi_flow_hourly`)."""
    return con.sql(
        "SELECT date_trunc('hour', ts) AS ts, "
        "sum(coalesce(collateral_usd, debt_repaid_usd, 0)) AS defi_usd FROM defi_liquidations "
        "WHERE protocol = 'maker-ethb' AND ts >= ? AND ts < ? GROUP BY 1 ORDER BY 1",
        params=[start, end],
    ).pl()


def read_policy_results(con: duckdb.DuckDBPyConnection, run_id: str) -> pl.DataFrame:
    """The ``market_policy_results`` rows of a run (event order, then asset, Y, policy order)."""
    return con.sql(
        "SELECT p.* EXCLUDE (run_id) FROM market_policy_results p JOIN events e USING (event_id) "
        "WHERE run_id = ? ORDER BY e.start_ts, p.asset, p.impact_y, p.seq",
        params=[run_id],
    ).pl()


def read_policy_paths(con: duckdb.DuckDBPyConnection, run_id: str, event_id: str) -> pl.DataFrame:
    """The ``market_policy_paths`` rows of one event of a run."""
    return con.sql(
        "SELECT * EXCLUDE (run_id) FROM market_policy_paths WHERE run_id = ? AND event_id = ? "
        "ORDER BY asset, impact_y, policy, ts",
        params=[run_id, event_id],
    ).pl()


def read_adl(con: duckdb.DuckDBPyConnection, run_id: str) -> pl.DataFrame:
    """The ``market_adl`` rows of a run."""
    return con.sql(
        "SELECT * EXCLUDE (run_id) FROM market_adl WHERE run_id = ? "
        "ORDER BY event_id, asset, impact_y, rule",
        params=[run_id],
    ).pl()


def read_policy_intervals(con: duckdb.DuckDBPyConnection, run_id: str) -> pl.DataFrame:
    """The ``market_policy_intervals`` rows of a run (empty for a warehouse without the table)."""
    try:
        return con.sql(
            "SELECT i.* EXCLUDE (run_id) FROM market_policy_intervals i "
            "JOIN events e USING (event_id) WHERE run_id = ? "
            "ORDER BY e.start_ts, i.asset, i.impact_y, i.policy, i.versus, i.metric",
            params=[run_id],
        ).pl()
    except duckdb.CatalogException:
        return pl.DataFrame()
