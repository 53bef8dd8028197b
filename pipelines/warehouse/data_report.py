"""``cascade data-report``: what the warehouse holds for each crash window, and what was dropped."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

_COVERAGE_SQL = """
WITH bars AS (
    SELECT e.event_id, p.asset, p.market, p.bar_seconds, p.ts,
           epoch(e.end_ts) - epoch(e.start_ts) AS window_seconds, e.start_ts, e.end_ts
    FROM prices p JOIN events e ON p.ts >= e.start_ts AND p.ts < e.end_ts
), per_key AS (
    SELECT event_id, asset, market, bar_seconds, window_seconds,
           count(DISTINCT ts) AS bars,
           max(gap_seconds) AS max_gap_seconds
    FROM (
        SELECT *, coalesce(epoch(lead(ts) OVER w) - epoch(ts),
                           epoch(end_ts) - epoch(ts)) AS gap_seconds
        FROM bars
        WINDOW w AS (PARTITION BY event_id, asset, market, bar_seconds ORDER BY ts)
    )
    GROUP BY ALL
)
SELECT event_id, asset, market, bar_seconds, bars,
       round(100.0 * least(bars * bar_seconds, window_seconds) / window_seconds, 1) AS coverage_pct,
       max_gap_seconds / 60 AS max_gap_minutes
FROM per_key
ORDER BY event_id, asset, market, bar_seconds
"""


@dataclass(frozen=True)
class DataReport:
    """The three tables of the data report (polars frames)."""

    coverage: pl.DataFrame
    best: pl.DataFrame
    dropped: pl.DataFrame
    sources: pl.DataFrame


def coverage(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Bars per (event, asset, market, bar size) inside each crash window, with % coverage."""
    return con.sql(_COVERAGE_SQL).pl()


def best_resolution(cov: pl.DataFrame, min_coverage_pct: float = 99.0) -> pl.DataFrame:
    """Finest bar size covering ``min_coverage_pct`` of each (event, asset) window, any market."""
    complete = cov.filter(pl.col("coverage_pct") >= min_coverage_pct)
    return (
        complete.sort("bar_seconds")
        .group_by("event_id", "asset", maintain_order=True)
        .agg(
            pl.col("bar_seconds").first().alias("finest_complete_bar_seconds"),
            pl.col("market").first().alias("market"),
            pl.col("max_gap_minutes").first().alias("max_gap_minutes"),
        )
        .sort("event_id", "asset")
    )


def dropped_rows(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every cleaning rule applied at ingest, per source: rule, rows, dropped or fixed, why."""
    return con.sql(
        """
        SELECT source, r.rule AS rule, CAST(r.rows AS BIGINT) AS rows,
               CASE WHEN r.dropped THEN 'dropped' ELSE 'fixed' END AS action, r.detail AS detail
        FROM (
            SELECT source, unnest(from_json(rules_applied,
                '[{"rule":"VARCHAR","rows":"BIGINT","detail":"VARCHAR","dropped":"BOOLEAN"}]')) AS r
            FROM ingest_log
        )
        ORDER BY source, rule
        """
    ).pl()


def source_summary(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Rows loaded per source with its sha256 prefix and load time."""
    return con.sql(
        "SELECT source, rows, left(sha256, 12) AS sha256, loaded_at FROM ingest_log ORDER BY source"
    ).pl()


def build_report(con: duckdb.DuckDBPyConnection) -> DataReport:
    """Assemble the data report from the warehouse."""
    cov = coverage(con)
    return DataReport(cov, best_resolution(cov), dropped_rows(con), source_summary(con))


def format_report(report: DataReport) -> str:
    """Plain-text rendering for the terminal."""
    with pl.Config(
        tbl_rows=-1,
        tbl_cols=-1,
        fmt_str_lengths=400,
        tbl_width_chars=10_000,
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
        tbl_hide_dtype_separator=True,
    ):
        wide = report.best.pivot(
            on="event_id", index="asset", values="finest_complete_bar_seconds"
        ).sort("asset")
        parts = [
            "Finest complete bar size (seconds) per asset × crash window "
            "(≥ 99 % of the window covered; blank = none):",
            str(wide),
            "",
            f"Rules applied at ingest ({report.dropped.height}):",
            str(report.dropped.select("source", "rule", "rows", "action", "detail")),
            "",
            f"Sources loaded: {report.sources.height}, "
            f"rows: {int(report.sources['rows'].sum() or 0):,}",
        ]
    return "\n".join(parts)
