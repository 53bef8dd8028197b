"""MakerDAO ETH-B vaults (fsc-data-science/MKR-Elasticity-ETHB) and the CoinGecko ETH price.

Adapters
--------
``maker_vault_events``
    ``ethb_vault_creations / deposits / withdrawals.csv``, ``ethb_dai_borrows / repayments.csv``
    → ``vault_events`` (``params.event_type`` = create | deposit | withdraw | mint | repay).
``maker_liquidations``
    ``ethb_vault_liquidations.csv`` → ``vault_events`` (``liquidation``) and
    ``defi_liquidations`` (protocol ``maker-ethb``), valued with the sibling CoinGecko price.
``maker_params``
    ``ETHB-Parameter-Changes.csv`` (UTF-8 BOM in the header) → ``risk_params``.
``coingecko_daily_price``
    ``coingecko_ethusd_price.csv`` → ``prices`` (ETH, spot, ``coingecko``, 86400 s).

Signs follow the vault: ``collateral_delta`` in ETH (withdrawals and liquidations negative),
``debt_delta`` in DAI (repayments and liquidations negative). Timestamps are block times, UTC.

``DAI_REPAYED_AMOUNT`` of a liquidation is loaded as ``debt_repaid_usd`` (DAI = 1 USD). The
data README calls it debt plus penalty; rebuilding vault debt from the mint and repay files
gives 1.00-1.03 × net minted DAI at liquidation (accrued stability fee), and the pre-2021
``bite`` rows are exactly 50,000 / 1.13, so it is the debt *without* the 13 % penalty.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipelines.errors import DataValidationError
from pipelines.ingest.adapters.base import AdapterOutput, SourceEntry, register_adapter
from pipelines.ingest.adapters.reference import (
    UTC_US,
    check_non_negative,
    parse_utc,
    require_columns,
    sibling_file,
    strip_bom,
)
from pipelines.ingest.validate_params import check_fraction

# event_type → (amount column, "collateral" or "debt", sign applied to the file's value)
_EVENT_SPECS: dict[str, tuple[str | None, str | None, float]] = {
    "create": (None, None, 1.0),
    "deposit": ("DEPOSIT_AMOUNT_ADJ", "collateral", 1.0),
    "withdraw": ("WITHDRAWN_AMOUNT_ADJ", "collateral", 1.0),  # negative in the file already
    "mint": ("DAI_MINTED", "debt", 1.0),
    "repay": ("DAI_REPAYED", "debt", -1.0),
}
_EVENT_COLUMNS = ["BLOCK_NUMBER", "BLOCK_TIMESTAMP", "VAULT_NUMBER"]
_TS_FORMAT = "%Y-%m-%d %H:%M:%S%.f"


def _read_events(path: Path, file: str, extra: list[str]) -> pl.DataFrame:
    """Read a Flipside export, check its columns and parse ``BLOCK_TIMESTAMP`` (UTC)."""
    frame = strip_bom(pl.read_csv(path, infer_schema_length=None))
    require_columns(frame, _EVENT_COLUMNS + extra, file=file)
    if "ILK" in frame.columns:
        other = frame["ILK"] != "ETH-B"
        if other.any():
            row = int(other.arg_true()[0]) + 1
            raise DataValidationError(
                file, "ILK", row, f"ilk {frame['ILK'][row - 1]!r}, expected ETH-B"
            )
    return parse_utc(frame, "BLOCK_TIMESTAMP", file=file, fmt=_TS_FORMAT)


def _log_duplicates(out: AdapterOutput, frame: pl.DataFrame, what: str) -> None:
    """Identical rows are kept (the export has no log index); record how many there are."""
    dupes = frame.height - frame.unique().height
    out.rule(
        "identical_rows_kept",
        dupes,
        f"identical {what} rows kept: several equal events can share a block (the export has "
        "no transaction hash or log index to tell them apart)",
    )


def _check_sign(frame: pl.DataFrame, column: str, *, negative: bool, file: str) -> None:
    """Withdrawals must be <= 0, every other amount >= 0."""
    bad = frame[column] > 0 if negative else frame[column] < 0
    if bad.any():
        row = int(bad.arg_true()[0]) + 1
        want = "<= 0" if negative else ">= 0"
        raise DataValidationError(
            file, column, row, f"value {frame[column][row - 1]}; expected {want}"
        )


def _vault_frame(
    frame: pl.DataFrame, entry: SourceEntry, event_type: str, **deltas: pl.Expr
) -> pl.DataFrame:
    """Common ``vault_events`` columns plus the given deltas."""
    urn = pl.col("URN_ADDRESS").str.to_lowercase() if "URN_ADDRESS" in frame.columns else None
    return frame.select(
        protocol=pl.lit(entry.params.get("protocol", "maker")),
        ilk=pl.lit(entry.params.get("ilk", "ETH-B")),
        vault_id=pl.col("VAULT_NUMBER").cast(pl.String),
        ts=pl.col("ts"),
        block=pl.col("BLOCK_NUMBER").cast(pl.Int64),
        event_type=pl.lit(event_type),
        collateral_delta=deltas.get("collateral_delta", pl.lit(None, pl.Float64)),
        debt_delta=deltas.get("debt_delta", pl.lit(None, pl.Float64)),
        urn=urn if urn is not None else pl.lit(None, pl.String),
    )


@register_adapter("maker_vault_events")
def adapt_maker_vault_events(path: Path, entry: SourceEntry) -> AdapterOutput:
    """One ETH-B vault event file → ``vault_events`` (``params.event_type`` picks the kind)."""
    event_type = entry.params.get("event_type")
    if event_type not in _EVENT_SPECS:
        raise DataValidationError(
            entry.name,
            None,
            None,
            f"params.event_type is {event_type!r}; give one of {sorted(_EVENT_SPECS)}",
        )
    column, target, sign = _EVENT_SPECS[event_type]
    frame = _read_events(path, entry.name, [column] if column else [])
    out = AdapterOutput()
    _log_duplicates(out, frame, event_type)
    deltas: dict[str, pl.Expr] = {}
    if column is not None:
        _check_sign(frame, column, negative=event_type == "withdraw", file=entry.name)
        deltas[f"{target}_delta"] = pl.col(column).cast(pl.Float64) * sign
    out.add("vault_events", _vault_frame(frame, entry, event_type, **deltas))
    return out


def _eth_price_daily(path: Path, entry: SourceEntry) -> pl.DataFrame:
    """CoinGecko daily ETH/USD (``snapped_at`` → ``price_ts``, ``eth_usd``), sorted."""
    name = entry.params.get("price_file", "coingecko_ethusd_price.csv")
    prices = pl.read_csv(sibling_file(path, entry, name), infer_schema_length=None)
    prices = parse_utc(prices, "snapped_at", file=name, alias="price_ts")
    return prices.select("price_ts", eth_usd=pl.col("price").cast(pl.Float64)).sort("price_ts")


@register_adapter("maker_liquidations")
def adapt_maker_liquidations(path: Path, entry: SourceEntry) -> AdapterOutput:
    """ETH-B liquidations → ``vault_events`` and ``defi_liquidations``.

    ``collateral_usd`` = ETH amount × the CoinGecko daily ETH price of the liquidation's UTC
    day (the 00:00 snapshot; intraday moves are not captured). Collateral amounts are whole
    ETH in the source.
    """
    file = entry.name
    frame = _read_events(path, file, ["COLLATERAL_LIQUIDATED_AMOUNT", "DAI_REPAYED_AMOUNT"])
    check_non_negative(frame, ["COLLATERAL_LIQUIDATED_AMOUNT", "DAI_REPAYED_AMOUNT"], file=file)
    out = AdapterOutput()
    _log_duplicates(out, frame, "liquidation (bite/bark)")
    collateral = pl.col("COLLATERAL_LIQUIDATED_AMOUNT").cast(pl.Float64)
    debt = pl.col("DAI_REPAYED_AMOUNT").cast(pl.Float64)
    out.add(
        "vault_events",
        _vault_frame(frame, entry, "liquidation", collateral_delta=-collateral, debt_delta=-debt),
    )
    priced = frame.sort("ts", maintain_order=True).join_asof(
        _eth_price_daily(path, entry), left_on="ts", right_on="price_ts", strategy="backward"
    )
    out.rule(
        "collateral_usd_daily_price",
        priced.height,
        "collateral_usd uses the CoinGecko ETH price of the day's 00:00 UTC snapshot",
    )
    out.rule(
        "no_eth_price_for_day",
        int(priced["eth_usd"].is_null().sum()),
        "liquidation before the first CoinGecko snapshot; collateral_usd NULL",
    )
    out.rule(
        "collateral_whole_eth",
        priced.height,
        "COLLATERAL_LIQUIDATED_AMOUNT is rounded to whole ETH in the source",
    )
    out.add(
        "defi_liquidations",
        priced.select(
            protocol=pl.lit(entry.params.get("liquidation_protocol", "maker-ethb")),
            chain=pl.lit("ethereum"),
            ts=pl.col("ts"),
            collateral_asset=pl.lit("ETH"),
            debt_asset=pl.lit("DAI"),
            collateral_amount=collateral,
            collateral_usd=collateral * pl.col("eth_usd"),
            debt_repaid_usd=debt,
            borrower=pl.lit(None, pl.String),
            liquidator=pl.lit(None, pl.String),
            position_ref=pl.col("VAULT_NUMBER").cast(pl.String),
            tx_hash=pl.lit(None, pl.String),
        ),
    )
    return out


@register_adapter("maker_params")
def adapt_maker_params(path: Path, entry: SourceEntry) -> AdapterOutput:
    """``ETHB-Parameter-Changes.csv`` → ``risk_params`` (protocol ``maker``, market ``ETH-B``).

    ``parameter`` keeps Maker's name (``SPOTTER.ilks.mat``, ``DOG.ilks.chop``, ...), ``value``
    is ``TO_VALUE``, ``effective_ts`` the block time. Each ``mat`` (liquidation ratio, e.g.
    1.3) also yields a derived ``liquidation_threshold`` row = 1 / mat.
    """
    file = entry.name
    frame = strip_bom(pl.read_csv(path, infer_schema_length=0))
    require_columns(frame, ["TIMESTAMP", "PARAMETER", "ILK", "TO_VALUE"], file=file)
    frame = parse_utc(frame, "TIMESTAMP", file=file)
    value = frame["TO_VALUE"].cast(pl.Float64, strict=False)
    if value.is_null().any():
        row = int(value.is_null().arg_true()[0]) + 1
        raise DataValidationError(
            file, "TO_VALUE", row, f"{frame['TO_VALUE'][row - 1]!r} is not a number"
        )
    frame = frame.with_columns(value=value)
    table = frame.select(
        protocol=pl.lit(entry.params.get("protocol", "maker")),
        market=pl.col("ILK"),
        network=pl.lit("ethereum"),
        parameter=pl.col("PARAMETER"),
        value=pl.col("value"),
        value_text=pl.lit(None, pl.String),
        effective_ts=pl.col("ts"),
    )
    mat = table.filter(pl.col("parameter") == "SPOTTER.ilks.mat", pl.col("value") > 0)
    derived = mat.with_columns(
        parameter=pl.lit("liquidation_threshold"), value=1.0 / pl.col("value")
    )
    check_fraction(derived["value"], file=file, column="1/SPOTTER.ilks.mat")
    out = AdapterOutput()
    out.rule(
        "derive_lt_from_mat",
        derived.height,
        "liquidation_threshold = 1 / SPOTTER.ilks.mat added as derived rows",
    )
    out.add("risk_params", pl.concat([table, derived]))
    return out


@register_adapter("coingecko_daily_price")
def adapt_coingecko_daily_price(path: Path, entry: SourceEntry) -> AdapterOutput:
    """CoinGecko ``snapped_at,price`` → ``prices`` as flat daily bars (open=high=low=close).

    ``params``: ``asset`` (default ``ETH``), ``market`` (``spot``), ``venue`` (``coingecko``).
    """
    file = entry.name
    frame = pl.read_csv(path, infer_schema_length=None)
    require_columns(frame, ["snapped_at", "price"], file=file)
    frame = parse_utc(frame, "snapped_at", file=file)
    check_non_negative(frame, ["price"], file=file)
    before = frame.height
    frame = frame.unique(subset=["ts"], keep="first", maintain_order=True)
    out = AdapterOutput()
    out.rule(
        "drop_duplicate_timestamps", before - frame.height, "repeated snapshot time", dropped=True
    )
    out.rule(
        "snapshot_as_flat_bar",
        frame.height,
        "a daily 00:00 UTC price snapshot is stored as a bar with open=high=low=close",
    )
    price = pl.col("price").cast(pl.Float64)
    out.add(
        "prices",
        frame.select(
            asset=pl.lit(entry.params.get("asset", "ETH")),
            market=pl.lit(entry.params.get("market", "spot")),
            venue=pl.lit(entry.params.get("venue", "coingecko")),
            bar_seconds=pl.lit(86_400, pl.Int32),
            ts=pl.col("ts").cast(UTC_US),
            open=price,
            high=price,
            low=price,
            close=price,
            volume=pl.lit(None, pl.Float64),
        ),
    )
    return out
