"""Crash-day feeds of BerkeleyBlockchain/stablesims (10-minute bars, gas, Uniswap reserves).

Adapters
--------
``stablesims_ohlcv``
    ``feeds/eth/*.json`` and ``price_feeds/dai_black_thursday_10min.json`` (CoinAPI OHLCV
    records) → ``prices`` (``params``: ``asset``, ``market`` spot, ``venue`` coinapi, 600 s).
``stablesims_gas``
    ``feeds/gas/*.json`` (pandas ``orient='table'`` JSON, wei) → ``gas_prices`` in gwei, one
    row per percentile (``avg``, ``p30``, ``p60``, ``p90``, ``p100``).
``stablesims_gas_series``
    ``price_feeds/gas_black_thursday_10min.json`` (``price_close`` in wei) → ``gas_prices``
    (percentile ``close``).
``stablesims_liquidity``
    ``feeds/eth_dai_liquidity/*.json`` (144 ``{DAI, WETH}`` records, no timestamps) →
    ``dex_reserves`` (pool ``uniswap-v2:WETH/DAI``); record *i* is stamped ``date + i × 10
    min`` with the date from the file name (``MM-DD-YYYY``), aligned with the ETH bars.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from pipelines.errors import DataValidationError
from pipelines.ingest.adapters.base import AdapterOutput, SourceEntry, register_adapter
from pipelines.ingest.adapters.reference import (
    UTC_US,
    check_non_negative,
    check_ohlc,
    parse_utc,
    require_columns,
)

_BAR_SECONDS = 600
_WEI_PER_GWEI = 1e9
_GAS_PERCENTILES = {
    "avgGasDay": "avg",
    "30.0 Perc": "p30",
    "60.0 Perc": "p60",
    "90.0 Perc": "p90",
    "100.0 Perc": "p100",
}
_OHLCV = ["time_period_start", "price_open", "price_high", "price_low", "price_close"]


def _load_json(path: Path, file: str) -> Any:
    """Parse a JSON file, turning decode errors into :class:`DataValidationError`."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataValidationError(
            file, None, exc.lineno, f"invalid JSON: {exc.msg}", row_kind="file line"
        ) from exc


def _file_date(path: Path, file: str) -> datetime:
    """The UTC date in a ``MM-DD-YYYY.json`` file name."""
    match = re.fullmatch(r"(\d{2})-(\d{2})-(\d{4})", path.stem)
    if not match:
        raise DataValidationError(
            file, None, None, f"file name {path.name!r} is not MM-DD-YYYY.json"
        )
    month, day, year = (int(g) for g in match.groups())
    return datetime(year, month, day, tzinfo=UTC)


def _drop_duplicate_bars(out: AdapterOutput, frame: pl.DataFrame, file: str) -> pl.DataFrame:
    """Drop exact repeats of a bar; a repeated time with different values is an error."""
    before = frame.height
    frame = frame.unique(maintain_order=True)
    out.rule("drop_exact_duplicates", before - frame.height, "bar repeated verbatim", dropped=True)
    clash = frame["ts"].is_duplicated()
    if clash.any():
        row = int(clash.arg_true()[0]) + 1
        raise DataValidationError(
            file, "time_period_start", row, "two different bars share a start time"
        )
    return frame


def _log_date_mismatch(out: AdapterOutput, path: Path, ts: pl.Series) -> None:
    """Note rows whose date differs from the file name's date (timestamps are kept)."""
    try:
        day = _file_date(path, path.name).date()
    except DataValidationError:
        return
    rows = int((ts.dt.date() != day).sum())
    out.rule(
        "timestamp_date_differs_from_file_name",
        rows,
        f"timestamps are not on {day} named by the file; the timestamps (and values) are kept",
    )


@register_adapter("stablesims_ohlcv")
def adapt_stablesims_ohlcv(path: Path, entry: SourceEntry) -> AdapterOutput:
    """CoinAPI-style 10-minute OHLCV JSON → ``prices`` (``ts`` = ``time_period_start``)."""
    file = entry.name
    data = _load_json(path, file)
    if not isinstance(data, list) or not data:
        raise DataValidationError(file, None, None, "expected a non-empty list of bars")
    frame = pl.DataFrame(data, infer_schema_length=None)
    require_columns(frame, _OHLCV, file=file)
    frame = parse_utc(frame, "time_period_start", file=file, fmt="%Y-%m-%dT%H:%M:%S%.fZ")
    frame = frame.rename(
        {"price_open": "open", "price_high": "high", "price_low": "low", "price_close": "close"}
    ).with_columns(pl.col("open", "high", "low", "close").cast(pl.Float64))
    check_ohlc(frame, file=file)
    out = AdapterOutput()
    frame = _drop_duplicate_bars(out, frame, file).sort("ts")
    _log_date_mismatch(out, path, frame["ts"])
    volume = (
        pl.col("volume_traded").cast(pl.Float64)
        if "volume_traded" in frame.columns
        else pl.lit(None, pl.Float64)
    )
    out.add(
        "prices",
        frame.select(
            asset=pl.lit(str(entry.params.get("asset", "ETH")).upper()),
            market=pl.lit(entry.params.get("market", "spot")),
            venue=pl.lit(entry.params.get("venue", "coinapi")),
            bar_seconds=pl.lit(_BAR_SECONDS, pl.Int32),
            ts=pl.col("ts"),
            open=pl.col("open"),
            high=pl.col("high"),
            low=pl.col("low"),
            close=pl.col("close"),
            volume=volume,
        ),
    )
    return out


@register_adapter("stablesims_gas")
def adapt_stablesims_gas(path: Path, entry: SourceEntry) -> AdapterOutput:
    """Gas-price percentile JSON (pandas table orient, wei) → ``gas_prices`` (gwei, long)."""
    file = entry.name
    data = _load_json(path, file)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise DataValidationError(file, "data", None, "expected pandas orient='table' JSON")
    frame = pl.DataFrame(data["data"], infer_schema_length=None)
    require_columns(frame, ["timestamp", *_GAS_PERCENTILES], file=file)
    frame = parse_utc(frame, "timestamp", file=file, fmt="%Y-%m-%dT%H:%M:%S%.fZ")
    check_non_negative(frame, list(_GAS_PERCENTILES), file=file)
    out = AdapterOutput()
    _log_date_mismatch(out, path, frame["ts"])
    out.rule("wei_to_gwei", frame.height, "gas prices given in wei; divided by 1e9")
    long = frame.select(
        "ts", *[pl.col(c).cast(pl.Float64).alias(n) for c, n in _GAS_PERCENTILES.items()]
    )
    long = long.unpivot(index="ts", variable_name="percentile", value_name="wei")
    out.add(
        "gas_prices",
        long.select("ts", "percentile", gwei=pl.col("wei") / _WEI_PER_GWEI).sort(
            ["ts", "percentile"]
        ),
    )
    return out


@register_adapter("stablesims_gas_series")
def adapt_stablesims_gas_series(path: Path, entry: SourceEntry) -> AdapterOutput:
    """``[{price_close (wei), time_period_start}]`` → ``gas_prices`` (percentile ``close``).

    The Black Thursday series rises in exact equal steps inside each hour: it is an
    interpolated feed built for the simulator, not an observed percentile.
    """
    file = entry.name
    data = _load_json(path, file)
    frame = pl.DataFrame(data, infer_schema_length=None)
    require_columns(frame, ["time_period_start", "price_close"], file=file)
    frame = parse_utc(frame, "time_period_start", file=file, fmt="%Y-%m-%dT%H:%M:%S%.fZ")
    check_non_negative(frame, ["price_close"], file=file)
    out = AdapterOutput()
    out.rule("wei_to_gwei", frame.height, "gas price given in wei; divided by 1e9")
    out.rule(
        "interpolated_gas_series",
        frame.height,
        "simulator input interpolated in equal steps; percentile label 'close'",
    )
    out.add(
        "gas_prices",
        frame.select(
            ts=pl.col("ts"),
            percentile=pl.lit(entry.params.get("percentile", "close")),
            gwei=pl.col("price_close").cast(pl.Float64) / _WEI_PER_GWEI,
        ).sort("ts"),
    )
    return out


@register_adapter("stablesims_liquidity")
def adapt_stablesims_liquidity(path: Path, entry: SourceEntry) -> AdapterOutput:
    """Uniswap v2 ETH/DAI reserves (no timestamps) → ``dex_reserves``, stamped by position."""
    file = entry.name
    data = _load_json(path, file)
    if not isinstance(data, list) or not data:
        raise DataValidationError(file, None, None, "expected a non-empty list of {DAI, WETH}")
    base, quote = entry.params.get("base_asset", "WETH"), entry.params.get("quote_asset", "DAI")
    frame = pl.DataFrame(data, infer_schema_length=None)
    require_columns(frame, [base, quote], file=file)
    check_non_negative(frame, [base, quote], file=file)
    start = _file_date(path, file)
    stamps = [start + timedelta(seconds=_BAR_SECONDS * i) for i in range(frame.height)]
    out = AdapterOutput()
    out.rule(
        "timestamp_from_position",
        frame.height,
        "records carry no time; record i stamped file date + i × 10 min (UTC)",
    )
    out.add(
        "dex_reserves",
        frame.select(
            pool=pl.lit(entry.params.get("pool", f"uniswap-v2:{base}/{quote}")),
            ts=pl.Series(stamps, dtype=UTC_US),
            reserve_base=pl.col(base).cast(pl.Float64),
            reserve_quote=pl.col(quote).cast(pl.Float64),
            base_asset=pl.lit(base),
            quote_asset=pl.lit(quote),
        ),
    )
    return out
