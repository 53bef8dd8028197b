"""Compound liquidations: v2 LiquidateBorrow events and v3 absorbs.

Adapters
--------
``compound_v2_liquidations``
    mryamz/web3-analytics-tool ``csvData/borrow-<SYM>.csv`` → ``defi_liquidations``: protocol
    ``compound-v2``, chain ``ethereum``, one file per borrowed (repaid) market
    (``params.market``). See :func:`adapt_compound_v2_liquidations` for the columns and rules.
``compound_v3_liquidations``
    umersin61/compound-svr-tracker ``liquidations.csv`` (a partial set) →
    ``defi_liquidations``: protocol ``compound-v3``, chain from the file (lower case),
    ``collateral_usd`` = ``value_liquidated_usd``, ``debt_asset`` = the Comet's base asset
    (``cUSDCv3`` → ``USDC``), ``position_ref`` = the Comet name. The tracker does not give the
    collateral asset nor the debt repaid.
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

_V2_COLUMNS = [
    "tx_hash",
    "unix_seconds",
    "seized_symbol",
    "seized_amount",
    "repaid_symbol",
    "repay",
]
# USD stablecoins valued at 1 USD (the Maker adapter's DAI = 1 USD convention). SAI is the
# single-collateral DAI.
_USD_STABLES = frozenset({"DAI", "SAI", "USDC", "USDT", "TUSD"})
# Compound market symbol → asset: cWBTC2 is the second cWBTC market, same token.
_V2_ASSET = {"WBTC2": "WBTC"}

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


def _v2_read(path: Path, file: str) -> pl.DataFrame:
    """Read a headerless ``borrow-<SYM>.csv``; every field stripped and cast strictly."""
    raw = pl.read_csv(path, has_header=False, infer_schema=False)
    if raw.width != len(_V2_COLUMNS):
        raise DataValidationError(
            file, None, None, f"{raw.width} fields per line, expected {len(_V2_COLUMNS)}"
        )
    frame = raw.rename(dict(zip(raw.columns, _V2_COLUMNS, strict=True))).with_columns(
        pl.all().str.strip_chars()
    )
    casts = {"unix_seconds": pl.Int64, "seized_amount": pl.Float64, "repay": pl.Float64}
    for column, dtype in casts.items():
        bad = frame[column].cast(dtype, strict=False).is_null()
        if bad.any():
            row = int(bad.arg_true()[0]) + 1
            raise DataValidationError(
                file, column, row, f"{frame[column][row - 1]!r} is not a {dtype} value"
            )
    frame = frame.with_columns(pl.col(c).cast(t) for c, t in casts.items())
    bad_hash = ~frame["tx_hash"].str.contains(r"^0x[0-9a-fA-F]{64}$")
    if bad_hash.any():
        row = int(bad_hash.arg_true()[0]) + 1
        raise DataValidationError(file, "tx_hash", row, "not a 32-byte hex transaction hash")
    check_non_negative(frame, ["seized_amount", "repay"], file=file)
    return frame


def _usd_at_par(symbol: str, amount: str) -> pl.Expr:
    """``amount`` when ``symbol`` is a USD stablecoin (1 token = 1 USD), else NULL."""
    return pl.when(pl.col(symbol).is_in(list(_USD_STABLES))).then(pl.col(amount)).otherwise(None)


@register_adapter("compound_v2_liquidations")
def adapt_compound_v2_liquidations(path: Path, entry: SourceEntry) -> AdapterOutput:
    """Compound v2 ``borrow-<SYM>.csv`` (LiquidateBorrow events) → ``defi_liquidations``.

    Columns: ``collateral_asset`` / ``debt_asset`` = seized / repaid market symbol (``WBTC2``
    → ``WBTC``), ``collateral_amount`` = seized underlying in whole tokens, ``position_ref`` =
    the borrowed cToken market (``cDAI``, ``cWBTC2``, ``cSAI`` …), ``tx_hash`` lower case.
    The file has no borrower, liquidator nor block (NULL).

    USD values: the file gives token amounts only and an adapter cannot read the warehouse
    prices, so ``debt_repaid_usd`` is the repay amount and ``collateral_usd`` the seized amount
    when that side is a USD stablecoin (DAI, SAI, USDC, USDT, TUSD at 1 USD, rule
    ``stablecoin_usd_at_par``); other sides stay NULL (rules ``*_usd_unpriced``). The repay
    amount of non-stable markets (ETH, WBTC, BAT …) has no column in ``defi_liquidations``.

    Raises
    ------
    DataValidationError
        Wrong field count, a non-numeric field, a bad hash, a negative amount, or a repaid
        symbol other than ``params.market``.
    """
    file = entry.name
    try:
        market = str(entry.params["market"])
    except KeyError:
        raise DataValidationError(file, None, None, "params.market is required") from None
    frame = _v2_read(path, file)
    wrong = frame["repaid_symbol"] != market
    if wrong.any():
        row = int(wrong.arg_true()[0]) + 1
        raise DataValidationError(
            file,
            "repaid_symbol",
            row,
            f"repaid symbol {frame['repaid_symbol'][row - 1]!r} in the file of market "
            f"{market!r}; fix params.market",
        )
    out = AdapterOutput()
    dupes = frame.is_duplicated()
    out.rule(
        "drop_exact_duplicates",
        int(dupes.sum()) - frame.filter(dupes).unique().height,
        "exact duplicate lines dropped (one copy kept)",
        dropped=True,
    )
    frame = frame.unique(maintain_order=True)
    out.rule(
        "multi_event_transactions_kept",
        int(frame["tx_hash"].is_duplicated().sum()),
        "transactions with several LiquidateBorrow events (different amounts) are distinct "
        "events, kept",
    )
    out.rule(
        "zero_seized_dust_kept",
        int((frame["seized_amount"] == 0).sum()),
        "dust liquidations whose seized underlying rounds to 0 kept (collateral_amount 0)",
    )
    renamed = frame.with_columns(
        collateral=pl.col("seized_symbol").replace(_V2_ASSET),
        debt=pl.col("repaid_symbol").replace(_V2_ASSET),
    )
    out.rule(
        "wbtc2_market_is_wbtc",
        int(((frame["seized_symbol"] == "WBTC2") | (frame["repaid_symbol"] == "WBTC2")).sum()),
        "market symbol WBTC2 (second cWBTC market) mapped to asset WBTC; position_ref keeps cWBTC2",
    )
    stable_debt = renamed["debt"].is_in(list(_USD_STABLES))
    stable_coll = renamed["collateral"].is_in(list(_USD_STABLES))
    out.rule(
        "stablecoin_usd_at_par",
        int((stable_debt | stable_coll).sum()),
        "rows with a DAI, SAI, USDC, USDT or TUSD side: that amount taken as USD at 1:1 "
        "(debt_repaid_usd / collateral_usd)",
    )
    out.rule(
        "debt_usd_unpriced",
        int((~stable_debt).sum()),
        "repaid asset is not a USD stablecoin; debt_repaid_usd NULL (no price in the file)",
    )
    out.rule(
        "collateral_usd_unpriced",
        int((~stable_coll).sum()),
        "seized asset is not a USD stablecoin; collateral_usd NULL (no price in the file)",
    )
    out.add(
        "defi_liquidations",
        renamed.select(
            protocol=pl.lit(entry.params.get("protocol", "compound-v2")),
            chain=pl.lit(entry.params.get("chain", "ethereum")),
            ts=epoch_to_utc(pl.col("unix_seconds"), "s").cast(UTC_US),
            collateral_asset=pl.col("collateral"),
            debt_asset=pl.col("debt"),
            collateral_amount=pl.col("seized_amount"),
            collateral_usd=_usd_at_par("collateral", "seized_amount"),
            debt_repaid_usd=_usd_at_par("debt", "repay"),
            borrower=pl.lit(None, pl.String),
            liquidator=pl.lit(None, pl.String),
            position_ref=pl.lit(f"c{market}"),
            tx_hash=pl.col("tx_hash").str.to_lowercase(),
        ),
    )
    return out
