"""Aave: v2 liquidations and reserve table (TheRensselaerIDEA), v3 reserve parameters (th3nolo).

Adapters
--------
``aave_v2_liquidations``
    ``liquidations.csv`` → ``defi_liquidations`` (protocol ``aave-v2``, chain ``ethereum``).
``aave_v2_tokens``
    ``tokens.csv`` → ``risk_params`` (protocol ``aave-v2``; thresholds and bonuses from bps).
``aave_v3_reserve_params``
    th3nolo snapshots parquet / changes csv → ``risk_params`` (protocol ``aave-v3``).
``aave_v3_data``
    th3nolo ``aave_v3_data.json`` (latest reserve list per network) → ``source_documents``.

USD conversion of the v2 liquidations
-------------------------------------
The file holds two eras, told apart by ``priceUSDTCollateral``:

* until 2021-07-27 (``priceUSDTCollateral`` filled): amounts in raw token units, prices in
  ETH-wei per whole token, ``priceUSDTCollateral`` = price of USDT in ETH-wei;
* from 2021-07-28 (``priceUSDTCollateral`` empty): amounts already in whole tokens, prices in
  ETH, USD prices in ``reservePriceUSD*``.

In both eras the USD price of ETH is ``1 / u`` with ``u`` the USDT price in ETH
(``priceUSDTCollateral / 1e18``, or ``reservePriceETHCollateral / reservePriceUSDCollateral``),
and ``collateral_usd = amount / 10**decimals × reservePriceETHCollateral / 1e18 × ETH-USD``
(no scaling in the second era). WETH rows of the first era carry no ETH price: it is 1 ETH.

For ENJ, KNC and ZRX the source swapped a token's ETH price with the USDT price. The adapter
checks every row: the USDT price implied by the collateral side must equal the one implied by
the principal side; when it does not, the side whose "ETH price" equals the other side's USDT
price is the swapped one and is swapped back (rules ``aave_v2_swapped_*``). The result is
checked against the liquidation bonus: the median of collateral USD / debt USD must lie in
[1.0, 1.2].
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipelines.errors import DataValidationError
from pipelines.ingest.adapters.base import AdapterOutput, SourceEntry, register_adapter
from pipelines.ingest.adapters.reference import (
    UTC_US,
    documents_frame,
    epoch_to_utc,
    parse_utc,
    require_columns,
    sibling_file,
)
from pipelines.ingest.validate_params import check_fraction

_V2_COLUMNS = [
    "collateralAmount",
    "collateralReserve",
    "pool",
    "principalAmount",
    "principalReserve",
    "timestamp",
    "user",
    "priceUSDTCollateral",
    "reservePriceETHPrincipal",
    "reservePriceUSDPrincipal",
    "reservePriceETHCollateral",
    "reservePriceUSDCollateral",
]
_SWAP_TOLERANCE = 0.01  # relative; prices of one row agree to < 0.1 % when not swapped
_BONUS_RATIO_RANGE = (1.0, 1.2)


def _f(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.Float64)


def _close(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    return ((a / b) - 1.0).abs() <= _SWAP_TOLERANCE


def _read_tokens(path: Path, file: str) -> pl.DataFrame:
    """tokens.csv with its columns typed; raises when a required column is missing."""
    tokens = pl.read_csv(path, infer_schema_length=None)
    require_columns(
        tokens,
        ["symbol", "pool", "decimals", "reserveLiquidationThreshold", "reserveLiquidationBonus"],
        file=file,
    )
    return tokens


def _with_decimals(frame: pl.DataFrame, tokens: pl.DataFrame) -> pl.DataFrame:
    """Attach token decimals of collateral and principal (matched by symbol and pool)."""
    dec = tokens.select("symbol", "pool", pl.col("decimals").cast(pl.Int64))
    frame = frame.join(
        dec.rename({"symbol": "collateralReserve", "decimals": "_cdec"}),
        on=["collateralReserve", "pool"],
        how="left",
        maintain_order="left",
    )
    return frame.join(
        dec.rename({"symbol": "principalReserve", "decimals": "_pdec"}),
        on=["principalReserve", "pool"],
        how="left",
        maintain_order="left",
    )


def _check_amount_formats(frame: pl.DataFrame, file: str) -> None:
    """Raw-unit rows (first era) must hold integers; an era mix inside a row is an error."""
    raw_era = pl.col("priceUSDTCollateral").is_not_null()
    decimal_text = pl.col("collateralAmount").str.contains(r"[.eE]") | pl.col(
        "principalAmount"
    ).str.contains(r"[.eE]")
    bad = frame.select((raw_era & decimal_text).alias("bad"))["bad"]
    if bad.any():
        row = int(bad.arg_true()[0]) + 1
        raise DataValidationError(
            file,
            "collateralAmount",
            row,
            "amount has a decimal point although priceUSDTCollateral is set (raw-unit era); "
            "amounts of that era must be integers in the token's smallest unit",
        )


def _prices(frame: pl.DataFrame) -> pl.DataFrame:
    """Per-row ETH prices of both sides and the USDT price in ETH, before swap repair."""
    raw_era = pl.col("priceUSDTCollateral").is_not_null()
    scale = pl.when(raw_era).then(pl.lit(1e18)).otherwise(pl.lit(1.0))
    return frame.with_columns(
        _raw_era=raw_era,
        _pc=_f("reservePriceETHCollateral") / scale,
        _pc_missing=pl.col("reservePriceETHCollateral").is_null(),
        _pp=_f("reservePriceETHPrincipal") / scale,
        _pp_missing=pl.col("reservePriceETHPrincipal").is_null(),
        _uc=pl.when(raw_era)
        .then(_f("priceUSDTCollateral") / 1e18)
        .otherwise(_f("reservePriceETHCollateral") / _f("reservePriceUSDCollateral")),
        _up=_f("reservePriceETHPrincipal") / _f("reservePriceUSDPrincipal") / scale,
    ).with_columns(pl.col("_pc").fill_null(1.0), pl.col("_pp").fill_null(1.0))


def _classify_swaps(frame: pl.DataFrame) -> pl.DataFrame:
    """Label rows: ``ok``, ``collateral`` / ``principal`` / ``both`` swapped, ``unresolved``."""
    uc, up, pc, pp = pl.col("_uc"), pl.col("_up"), pl.col("_pc"), pl.col("_pp")
    consistent = up.is_null() | uc.is_null() | _close(uc, up)
    both = _close(pc, pp) & ~pl.col("_pc_missing") & ~pl.col("_pp_missing")
    return frame.with_columns(
        _swap=pl.when(consistent)
        .then(pl.lit("ok"))
        .when(_close(pc, up))
        .then(pl.lit("collateral"))
        .when(_close(pp, uc))
        .then(pl.lit("principal"))
        .when(both)
        .then(pl.lit("both"))
        .otherwise(pl.lit("unresolved"))
    )


def _repair_swaps(frame: pl.DataFrame) -> pl.DataFrame:
    """Undo the price swaps; sets ``_usdt`` (USDT price in ETH), ``_pc2``, ``_pp2``."""
    swap = pl.col("_swap")
    return frame.with_columns(
        _usdt=pl.when(swap == "collateral")
        .then(pl.col("_up"))
        .when(swap == "both")
        .then(pl.col("_pc"))
        .otherwise(pl.col("_uc")),
        _pc2=pl.when(swap.is_in(["collateral", "both"])).then(pl.col("_uc")).otherwise("_pc"),
        _pp2=pl.when(swap.is_in(["principal", "both"])).then(pl.col("_up")).otherwise("_pp"),
    )


def _amounts(frame: pl.DataFrame) -> pl.DataFrame:
    """Token amounts in whole tokens (raw units scaled by 10**decimals in the first era)."""
    raw_era = pl.col("_raw_era")
    return frame.with_columns(
        _camt=pl.when(raw_era)
        .then(_f("collateralAmount") / (10.0 ** pl.col("_cdec").cast(pl.Float64)))
        .otherwise(_f("collateralAmount")),
        _pamt=pl.when(raw_era)
        .then(_f("principalAmount") / (10.0 ** pl.col("_pdec").cast(pl.Float64)))
        .otherwise(_f("principalAmount")),
    )


def _check_bonus_ratio(frame: pl.DataFrame, file: str) -> None:
    """The median collateral/debt USD ratio must look like 1 + liquidation bonus."""
    ratio = (frame["collateral_usd"] / frame["debt_repaid_usd"]).drop_nulls().median()
    low, high = _BONUS_RATIO_RANGE
    if ratio is None or not low <= float(ratio) <= high:  # type: ignore[arg-type]
        raise DataValidationError(
            file,
            "collateral_usd",
            None,
            f"median collateral/debt USD ratio is {ratio}, expected 1 + bonus in [{low}, {high}]; "
            "the unit conversion (decimals, wei, USDT price) is wrong for this file",
        )


@register_adapter("aave_v2_liquidations")
def adapt_aave_v2_liquidations(path: Path, entry: SourceEntry) -> AdapterOutput:
    """Aave v2 ``liquidations.csv`` (+ sibling ``tokens.csv``) → ``defi_liquidations``.

    Drops exact duplicate rows, converts amounts to tokens and values to USD (see the module
    docstring), repairs swapped ETH/USDT prices and checks the result against the bonus.
    """
    out = AdapterOutput()
    file = entry.name
    frame = pl.read_csv(path, infer_schema_length=0)
    require_columns(frame, _V2_COLUMNS, file=file)
    before = frame.height
    frame = frame.unique(maintain_order=True)
    out.rule(
        "drop_exact_duplicates",
        before - frame.height,
        "exact duplicate rows (same event listed twice) dropped",
        dropped=True,
    )
    _check_amount_formats(frame, file)
    tokens = _read_tokens(
        sibling_file(path, entry, entry.params.get("tokens_file", "tokens.csv")), file
    )
    frame = _classify_swaps(_prices(_with_decimals(frame, tokens)))
    frame = _amounts(_repair_swaps(frame))
    _log_price_rules(out, frame)
    frame = frame.with_columns(_ethusd=1.0 / pl.col("_usdt"))
    table = frame.select(
        protocol=pl.lit(entry.params.get("protocol", "aave-v2")),
        chain=pl.lit(entry.params.get("chain", "ethereum")),
        ts=epoch_to_utc(pl.col("timestamp").cast(pl.Int64), "s").cast(UTC_US),
        collateral_asset=pl.col("collateralReserve"),
        debt_asset=pl.col("principalReserve"),
        collateral_amount=pl.col("_camt"),
        collateral_usd=pl.col("_camt") * pl.col("_pc2") * pl.col("_ethusd"),
        debt_repaid_usd=pl.col("_pamt") * pl.col("_pp2") * pl.col("_ethusd"),
        borrower=pl.col("user").str.to_lowercase(),
        liquidator=pl.col("liquidator").str.to_lowercase()
        if "liquidator" in frame.columns
        else pl.lit(None, pl.String),
        position_ref=pl.col("pool"),
        tx_hash=pl.lit(None, pl.String),
    )
    _check_bonus_ratio(table, file)
    out.add("defi_liquidations", table)
    return out


def _log_price_rules(out: AdapterOutput, frame: pl.DataFrame) -> None:
    """Record the price fixes applied by :func:`adapt_aave_v2_liquidations`."""
    swaps = frame["_swap"].value_counts()
    count = dict(zip(swaps["_swap"].to_list(), swaps["count"].to_list(), strict=True))
    raw_era = frame["_raw_era"]
    out.rule(
        "aave_v2_weth_price_is_one",
        int(((frame["_pc_missing"] | frame["_pp_missing"]) & raw_era).sum()),
        "WETH collateral or debt of the raw-unit era carries no ETH price; 1 ETH used",
    )
    out.rule(
        "aave_v2_swapped_collateral_price",
        count.get("collateral", 0),
        "collateral ETH price and USDT price swapped in the source (ENJ/KNC/ZRX); swapped back",
    )
    out.rule(
        "aave_v2_swapped_principal_price",
        count.get("principal", 0),
        "principal ETH price and its USDT price swapped in the source; swapped back",
    )
    out.rule(
        "aave_v2_swapped_both_prices",
        count.get("both", 0),
        "collateral and principal ETH prices both hold the USDT price; both swapped back",
    )
    out.rule(
        "aave_v2_unresolved_price_mismatch",
        count.get("unresolved", 0),
        "collateral- and principal-side USDT prices disagree and no swap explains it; "
        "collateral-side prices kept",
    )
    out.rule(
        "aave_v2_unknown_decimals",
        int((frame["_cdec"].is_null() | frame["_pdec"].is_null()).sum()),
        "reserve symbol not in tokens.csv (e.g. UST); its USD value is NULL",
    )


# tokens.csv → risk_params ------------------------------------------------------------------------

_TOKEN_FLAGS = {
    "usageAsCollateralEnabled": "usage_as_collateral_enabled",
    "borrowingEnabled": "borrowing_enabled",
    "stableBorrowRateEnabled": "stable_borrow_rate_enabled",
}


@register_adapter("aave_v2_tokens")
def adapt_aave_v2_tokens(path: Path, entry: SourceEntry) -> AdapterOutput:
    """Aave v2 ``tokens.csv`` → ``risk_params`` (long format, one row per parameter).

    ``reserveLiquidationThreshold`` is basis points (8250 → 0.825);
    ``reserveLiquidationBonus`` is 1 + bonus in basis points (10500 → 0.05; 0 means the
    reserve is not collateral → 0). Flags become 1/0, ``decimals`` is kept.
    """
    out = AdapterOutput()
    file = entry.name
    tokens = _read_tokens(path, file)
    rows = list(range(1, tokens.height + 1))
    threshold = tokens["reserveLiquidationThreshold"].cast(pl.Float64) / 10_000.0
    raw_bonus = tokens["reserveLiquidationBonus"].cast(pl.Float64)
    bonus = pl.Series(
        [0.0 if b == 0 else b / 10_000.0 - 1.0 for b in raw_bonus.to_list()], dtype=pl.Float64
    )
    check_fraction(threshold, file=file, column="reserveLiquidationThreshold", row_numbers=rows)
    check_fraction(bonus, file=file, column="reserveLiquidationBonus", row_numbers=rows)
    out.rule(
        "bps_to_fraction",
        tokens.height,
        "threshold and bonus given in basis points (bonus as 1 + bonus); converted to fractions",
    )
    out.rule(
        "zero_bonus_not_collateral",
        int((raw_bonus == 0).sum()),
        "bonus 0 bps marks a reserve that is not collateral; stored as bonus 0",
    )
    base = {"market": tokens["symbol"]}
    values = {
        "liquidation_threshold": threshold,
        "liquidation_bonus": bonus,
        "decimals": tokens["decimals"].cast(pl.Float64),
    }
    for column, name in _TOKEN_FLAGS.items():
        if column in tokens.columns:
            flag = tokens[column].cast(pl.String).str.to_lowercase() == "true"
            values[name] = flag.cast(pl.Float64)
    parts = [
        pl.DataFrame({**base, "parameter": name, "value": series})
        for name, series in values.items()
    ]
    long = pl.concat(parts, how="vertical_relaxed")
    table = long.select(
        protocol=pl.lit(entry.params.get("protocol", "aave-v2")),
        market=pl.col("market"),
        network=pl.lit(entry.params.get("network", "ethereum")),
        parameter=pl.col("parameter"),
        value=pl.col("value"),
        value_text=pl.lit(None, pl.String),
        effective_ts=pl.lit(None, UTC_US),
    )
    out.add("risk_params", table)
    return out


# th3nolo Aave v3 ---------------------------------------------------------------------------------

_V3_FRACTIONS = ["ltv", "liquidation_threshold", "liquidation_bonus", "reserve_factor"]
_V3_FLAGS = ["active", "frozen", "paused", "borrowing_enabled"]


def _read_v3_table(path: Path, file: str) -> pl.DataFrame:
    """Snapshots parquet or changes csv, with ``snapshot_utc`` as UTC datetimes."""
    if path.suffix == ".parquet":
        frame = pl.read_parquet(path)
    else:
        frame = pl.read_csv(path, infer_schema_length=None)
    require_columns(frame, ["snapshot_utc", "network", "symbol", *_V3_FRACTIONS], file=file)
    if frame.schema["snapshot_utc"] == pl.String:
        frame = parse_utc(frame, "snapshot_utc", file=file, alias="snapshot_utc")
    else:
        frame = frame.with_columns(pl.col("snapshot_utc").dt.convert_time_zone("UTC").cast(UTC_US))
    return frame


@register_adapter("aave_v3_reserve_params")
def adapt_aave_v3_reserve_params(path: Path, entry: SourceEntry) -> AdapterOutput:
    """th3nolo Aave v3 reserve parameters (parquet snapshots or changes csv) → ``risk_params``.

    ``ltv``, ``liquidation_threshold``, ``liquidation_bonus``, ``reserve_factor`` are already
    fractions; bonuses written as ``1 + bonus`` (1.05) are converted (rule), every value is then
    checked with :func:`~pipelines.ingest.validate_params.check_fraction`. Flags load as 1/0.
    ``*_SUSPECT`` columns (mis-decoded caps/e-mode in the source) are not loaded.
    """
    out = AdapterOutput()
    file = entry.name
    frame = _read_v3_table(path, file)
    suspect = [c for c in frame.columns if c.endswith("_SUSPECT")]
    out.rule(
        "skip_suspect_columns",
        frame.height if suspect else 0,
        f"columns {suspect} are mis-decoded in the source and are not loaded",
    )
    multiplier = frame["liquidation_bonus"] > 1.0
    # check the raw scale first: percent or bps in the file is an error, not a conversion
    rows = list(range(1, frame.height + 1))
    for column in _V3_FRACTIONS:
        high = 2.0 if column == "liquidation_bonus" else 1.0
        check_fraction(frame[column], file=file, column=column, row_numbers=rows, high=high)
    frame = frame.with_columns(
        pl.when(pl.col("liquidation_bonus") > 1.0)
        .then(pl.col("liquidation_bonus") - 1.0)
        .otherwise(pl.col("liquidation_bonus"))
        .alias("liquidation_bonus")
    )
    out.rule(
        "bonus_multiplier_to_fraction",
        int(multiplier.sum()),
        "liquidation_bonus written as 1 + bonus (e.g. 1.05) in some snapshots; 0.05 stored",
    )
    check_fraction(
        frame["liquidation_bonus"], file=file, column="liquidation_bonus", row_numbers=rows
    )
    out.add("risk_params", _v3_long(frame, entry))
    return out


def _v3_long(frame: pl.DataFrame, entry: SourceEntry) -> pl.DataFrame:
    """Wide reserve snapshots → long ``risk_params`` rows, deterministically ordered."""
    flags = [c for c in _V3_FLAGS if c in frame.columns]
    wide = frame.select(
        "snapshot_utc",
        "network",
        "symbol",
        *[pl.col(c).cast(pl.Float64) for c in _V3_FRACTIONS + flags],
    )
    long = wide.unpivot(
        index=["snapshot_utc", "network", "symbol"], variable_name="parameter", value_name="value"
    )
    return long.select(
        protocol=pl.lit(entry.params.get("protocol", "aave-v3")),
        market=pl.col("symbol"),
        network=pl.col("network"),
        parameter=pl.col("parameter"),
        value=pl.col("value"),
        value_text=pl.lit(None, pl.String),
        effective_ts=pl.col("snapshot_utc"),
    ).sort(["network", "market", "parameter", "effective_ts"], maintain_order=True)


@register_adapter("aave_v3_data")
def adapt_aave_v3_data(path: Path, entry: SourceEntry) -> AdapterOutput:
    """th3nolo ``aave_v3_data.json`` → ``source_documents``.

    One ``aave_v3_metadata`` record, then one ``aave_v3_reserve`` record per network and
    reserve (the network is added to the payload). The same parameters, as a daily history,
    are loaded into ``risk_params`` from the snapshots parquet; this file adds the fields the
    snapshots lack (decimals, token addresses, debt ceilings, indexes).
    """
    import json

    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("networks"), dict):
        raise DataValidationError(
            entry.name, "networks", None, "expected an object with 'networks'"
        )
    records: list[object] = [data.get("metadata", {})]
    kinds = ["aave_v3_metadata"]
    for network in sorted(data["networks"]):
        for reserve in data["networks"][network]:
            records.append({"network": network, **reserve})
            kinds.append("aave_v3_reserve")
    out = AdapterOutput()
    out.add("source_documents", documents_frame(records, kinds))
    return out
