"""Compound v3 absorbs (umersin61/compound-svr-tracker ``liquidations.csv``, a partial set).

Adapter ``compound_v3_liquidations`` → ``defi_liquidations``: protocol ``compound-v3``, chain
from the file (lower case), ``collateral_usd`` = ``value_liquidated_usd``, ``debt_asset`` = the
Comet's base asset (``cUSDCv3`` → ``USDC``), ``position_ref`` = the Comet name. The tracker
does not give the collateral asset nor the debt repaid.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipelines.errors import DataValidationError
from pipelines.ingest.adapters.base import AdapterOutput, SourceEntry, register_adapter
from pipelines.ingest.adapters.reference import (
    UTC_US,
    check_non_negative,
    epoch_to_utc,
    require_columns,
)

_COLUMNS = ["chain", "comet", "date", "timestamp", "tx_hash", "borrower", "value_liquidated_usd"]


def _check_dates(frame: pl.DataFrame, file: str) -> None:
    """The ``date`` column must be the UTC date of ``timestamp``."""
    bad = frame["ts"].dt.date().cast(pl.String) != frame["date"]
    if bad.any():
        row = int(bad.arg_true()[0]) + 1
        raise DataValidationError(
            file,
            "date",
            row,
            f"date {frame['date'][row - 1]!r} is not the UTC date of timestamp "
            f"{frame['timestamp'][row - 1]}",
        )


@register_adapter("compound_v3_liquidations")
def adapt_compound_v3_liquidations(path: Path, entry: SourceEntry) -> AdapterOutput:
    """Compound v3 tracker ``liquidations.csv`` → ``defi_liquidations``."""
    file = entry.name
    frame = pl.read_csv(path, infer_schema_length=None)
    require_columns(frame, _COLUMNS, file=file)
    check_non_negative(frame, ["value_liquidated_usd"], file=file)
    frame = frame.with_columns(ts=epoch_to_utc(pl.col("timestamp"), "s").cast(UTC_US))
    _check_dates(frame, file)
    out = AdapterOutput()
    mixed = (frame["borrower"] != frame["borrower"].str.to_lowercase()).sum()
    out.rule("lowercase_addresses", int(mixed), "checksummed (mixed-case) addresses lower-cased")
    out.rule(
        "zero_value_absorbs",
        int((frame["value_liquidated_usd"] == 0).sum()),
        "absorbs with value_liquidated_usd = 0 (dust) kept",
    )
    base = pl.col("comet").str.extract(r"^c([A-Za-z0-9.]+?)v\d+$", 1).str.to_uppercase()
    out.add(
        "defi_liquidations",
        frame.select(
            protocol=pl.lit(entry.params.get("protocol", "compound-v3")),
            chain=pl.col("chain").str.to_lowercase(),
            ts=pl.col("ts"),
            collateral_asset=pl.lit(None, pl.String),
            debt_asset=base,
            collateral_amount=pl.lit(None, pl.Float64),
            collateral_usd=pl.col("value_liquidated_usd").cast(pl.Float64),
            debt_repaid_usd=pl.lit(None, pl.Float64),
            borrower=pl.col("borrower").str.to_lowercase(),
            liquidator=pl.lit(None, pl.String),
            position_ref=pl.col("comet"),
            tx_hash=pl.col("tx_hash").str.to_lowercase(),
        ),
    )
    return out
