"""Aave positions with (w)stETH collateral on 2023-06-19 (lidofinance/aave-liquidation-model).

Adapter ``lido_aave_positions``: one ``data/*.csv`` → ``positions_snapshot``.

* protocol: ``aave-v3`` when the file stem ends in ``_v3``, else ``aave-v2``;
  collateral asset ``WSTETH`` (v3) or ``STETH`` (v2); ``bucket`` = file stem.
* ``debt`` is the account's total debt in ETH (``debt_asset`` ``ETH``): v2 files give ETH,
  v3 files give USD and are divided by the file's ``eth_price``.
* ``collateral`` is the account's total collateral in units of the collateral asset, so that
  the design's ``HF = collateral × p × LT / debt`` holds with ``p`` = (w)stETH/ETH price at
  the snapshot (v2: ``collateral_steth_calc / amount`` ≈ 0.99974; v3: ``steth_price /
  eth_price`` ≈ 1.1288). Accounts holding other collateral too are folded in at that price.
* ``threshold`` and ``ltv`` are basis points in the file (8300) → fractions (0.83).

The ``b*`` files are subsets of ``steth_aave.csv`` / ``steth_aave_v3.csv`` (the model's
buckets); every file loads with its own bucket label, so ``(position_id, bucket)`` is unique
and a full book is ``bucket = 'steth_aave'`` (v2) or ``'steth_aave_v3'`` (v3).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl

from pipelines.errors import DataValidationError
from pipelines.ingest.adapters.base import AdapterOutput, SourceEntry, register_adapter
from pipelines.ingest.adapters.reference import UTC_US, check_non_negative, require_columns
from pipelines.ingest.validate_params import check_fraction

_COLUMNS = ["user", "collateral", "debt", "threshold", "ltv", "healthf", "amount"]
_DEFAULT_SNAPSHOT = "2023-06-19T00:00:00+00:00"
_HF_TOLERANCE = 1e-6


def _check_bps(frame: pl.DataFrame, column: str, file: str) -> None:
    """Basis points must lie in (100, 10000]; 83 is a percent given where bps are expected."""
    values = frame[column].cast(pl.Float64)
    bad = values.is_null() | (values <= 100) | (values > 10_000)
    if bad.any():
        row = int(bad.arg_true()[0]) + 1
        value = values[row - 1]
        hint = (
            f"looks like a percent; this file gives basis points, give {value * 100:g}"
            if value is not None and 1 < value <= 100
            else "expected basis points in (100, 10000], e.g. 8300 for 0.83"
        )
        raise DataValidationError(file, column, row, f"value {value}: {hint}")


def _steth_eth_price(frame: pl.DataFrame, is_v3: bool, file: str) -> float:
    """(w)stETH price in ETH at the snapshot, taken from the file's own columns."""
    if is_v3:
        require_columns(frame, ["eth_price", "steth_price"], file=file)
        ratio = frame["steth_price"] / frame["eth_price"]
    else:
        require_columns(frame, ["collateral_steth_calc"], file=file)
        ratio = (frame["collateral_steth_calc"] / frame["amount"]).filter(frame["amount"] > 0)
    price = ratio.median()
    if price is None or not 0.5 < float(price) < 2.0:  # type: ignore[arg-type]
        raise DataValidationError(file, None, None, f"(w)stETH/ETH price {price} is implausible")
    return float(price)  # type: ignore[arg-type]


def _check_health(table: pl.DataFrame, file: str) -> None:
    """The stored health factor must equal collateral × p × LT / debt (p folded in)."""
    rel = (table["_hf_calc"] / table["health_factor"] - 1.0).abs()
    bad = rel > _HF_TOLERANCE
    if bad.any():
        row = int(bad.arg_true()[0]) + 1
        raise DataValidationError(
            file,
            "healthf",
            row,
            f"health factor {table['health_factor'][row - 1]} differs from "
            f"collateral × threshold / debt = {table['_hf_calc'][row - 1]}",
        )


@register_adapter("lido_aave_positions")
def adapt_lido_aave_positions(path: Path, entry: SourceEntry) -> AdapterOutput:
    """One Lido Aave (w)stETH position file → ``positions_snapshot`` (see the module docstring)."""
    file = entry.name
    frame = pl.read_csv(path, infer_schema_length=None)
    require_columns(frame, _COLUMNS, file=file)
    is_v3 = path.stem.endswith("_v3")
    protocol = entry.params.get("protocol", "aave-v3" if is_v3 else "aave-v2")
    asset = entry.params.get("collateral_asset", "WSTETH" if is_v3 else "STETH")
    for column in ("threshold", "ltv"):
        _check_bps(frame, column, file)
    check_non_negative(frame, ["collateral", "debt", "healthf", "amount"], file=file)
    price = _steth_eth_price(frame, is_v3, file)
    eth_price = pl.col("eth_price") if is_v3 else pl.lit(1.0)
    snapshot = datetime.fromisoformat(entry.params.get("snapshot_ts", _DEFAULT_SNAPSHOT))
    table = frame.select(
        protocol=pl.lit(protocol),
        snapshot_ts=pl.lit(snapshot).cast(UTC_US),
        position_id=pl.col("user").str.to_lowercase(),
        collateral_asset=pl.lit(asset),
        collateral=pl.col("collateral") / eth_price / price,
        debt_asset=pl.lit("ETH"),
        debt=pl.col("debt") / eth_price,
        liquidation_threshold=pl.col("threshold").cast(pl.Float64) / 10_000.0,
        ltv=pl.col("ltv").cast(pl.Float64) / 10_000.0,
        health_factor=pl.col("healthf").cast(pl.Float64),
        bucket=pl.lit(entry.params.get("bucket", path.stem)),
    )
    rows = list(range(1, table.height + 1))
    check_fraction(table["liquidation_threshold"], file=file, column="threshold", row_numbers=rows)
    check_fraction(table["ltv"], file=file, column="ltv", row_numbers=rows)
    with_hf = table.with_columns(
        _hf_calc=pl.col("collateral") * price * pl.col("liquidation_threshold") / pl.col("debt")
    )
    _check_health(with_hf, file)
    dupes = table["position_id"].is_duplicated()
    if dupes.any():
        row = int(dupes.arg_true()[0]) + 1
        raise DataValidationError(file, "user", row, "user appears twice in one snapshot file")
    out = AdapterOutput()
    out.rule("bps_to_fraction", table.height, "threshold and ltv given in basis points; /10000")
    out.rule(
        "collateral_in_asset_units",
        table.height,
        f"account collateral (ETH or USD value) divided by the snapshot {asset}/ETH price "
        f"{price:.6f}" + (" and ETH/USD" if is_v3 else ""),
    )
    if is_v3:
        out.rule("debt_usd_to_eth", table.height, "v3 debt given in USD; divided by eth_price")
    out.add("positions_snapshot", table)
    return out
