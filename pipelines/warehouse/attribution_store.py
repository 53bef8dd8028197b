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
    "read_impact_check",
    "read_market_books",
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
