"""Hyperliquid 2025-10-10 liquidation/ADL cascade (ConejoCapital/HyperMultiAssetedADL).

Adapter ``hyperliquid_impact``: ``combined_impact_by_ticker.csv`` → ``cex_liquidations`` with
one row per ticker for the whole 21:15–21:27 UTC window (``ts`` = window start, interval
720 s, ``venue_set`` ``hyperliquid``): ``total_usd`` = ``liq_notional``, ``adl_usd`` =
``adl_notional``, ``events`` = ``liq_events``. The file does not split longs and shorts.

The repository's other CSV and JSON outputs (per-user and per-coin ADL, cascade timing,
insurance fund) are analysis results with no natural table; the registry sends them to the
generic ``csv_documents`` / ``json_document`` adapters (``source_documents``).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl

from pipelines.errors import DataValidationError
from pipelines.ingest.adapters.base import AdapterOutput, SourceEntry, register_adapter
from pipelines.ingest.adapters.reference import UTC_US, check_non_negative, require_columns

_COLUMNS = ["ticker", "liq_notional", "adl_notional", "liq_events"]
_WINDOW_START = "2025-10-10T21:15:00+00:00"
_WINDOW_SECONDS = 720


@register_adapter("hyperliquid_impact")
def adapt_hyperliquid_impact(path: Path, entry: SourceEntry) -> AdapterOutput:
    """``combined_impact_by_ticker.csv`` → ``cex_liquidations`` (one row per ticker).

    ``params``: ``window_start`` (ISO-8601, default 2025-10-10T21:15Z), ``interval_seconds``
    (default 720).
    """
    file = entry.name
    frame = pl.read_csv(path, infer_schema_length=None)
    require_columns(frame, _COLUMNS, file=file)
    check_non_negative(frame, ["liq_notional", "adl_notional", "liq_events"], file=file)
    dupes = frame["ticker"].str.to_uppercase().is_duplicated()
    if dupes.any():
        row = int(dupes.arg_true()[0]) + 1
        raise DataValidationError(file, "ticker", row, "ticker listed twice (ignoring case)")
    start = datetime.fromisoformat(entry.params.get("window_start", _WINDOW_START))
    interval = int(entry.params.get("interval_seconds", _WINDOW_SECONDS))
    out = AdapterOutput()
    lower = int((frame["ticker"] != frame["ticker"].str.to_uppercase()).sum())
    out.rule("uppercase_tickers", lower, "tickers such as kSHIB upper-cased (KSHIB)")
    out.add(
        "cex_liquidations",
        frame.select(
            asset=pl.col("ticker").str.to_uppercase(),
            venue_set=pl.lit(entry.params.get("venue_set", "hyperliquid")),
            ts=pl.lit(start).cast(UTC_US),
            interval_seconds=pl.lit(interval, pl.Int32),
            long_usd=pl.lit(None, pl.Float64),
            short_usd=pl.lit(None, pl.Float64),
            total_usd=pl.col("liq_notional").cast(pl.Float64),
            events=pl.col("liq_events").cast(pl.Int64),
            adl_usd=pl.col("adl_notional").cast(pl.Float64),
        ),
    )
    return out
