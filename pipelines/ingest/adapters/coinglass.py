"""CoinGlass aggregates: liquidations, open interest, order-book depth, futures OHLCV.

Sources: Le1Ma1/CoinglassAutoPull (daily, Binance+OKX+Bybit) and
FelipeODonnell/liquidity-report (liquidation history, Binance only; open interest from the
2025-10-13 snapshot, all exchanges and per exchange, 4h).

Adapters
--------
``coinglass_liquidations_1d``
    ``liquidation_agg_1d.csv`` → ``cex_liquidations`` (interval 86400 s).
``coinglass_liquidation_history``
    CoinGlass aggregated-history parquet (``time`` ms, long/short USD) → ``cex_liquidations``;
    ``params``: ``asset``, ``interval_seconds`` (from the manifest note), ``venue_set``.
``coinglass_open_interest``
    ``futures_oi_agg_1d.csv`` → ``open_interest``.
``coinglass_open_interest_ohlc``
    ``api_futures_openInterest_ohlc_aggregated_history_<COIN>.parquet`` (all-exchange OI OHLC,
    USD) → ``open_interest`` (``venue_set`` ``all``, ``oi_usd`` = bar close).
``coinglass_open_interest_by_exchange``
    ``api_futures_openInterest_exchange_history_chart_<COIN>.parquet`` (OI per venue, USD, plus
    ``price``) → ``open_interest``, one row per venue (lower-case column name, e.g. ``binance``,
    ``cme``, ``hyperliquid``).
``coinglass_orderbook``
    ``orderbook_agg_futures_1d.csv`` → ``orderbook_depth`` (pct −1 bids, +1 asks).
``coinglass_ohlcv``
    ``futures_ohlcv_1d.csv`` → ``prices`` (perp, venue ``binance``, 86400 s).

CoinGlass pads series with zeros (or empty totals) before its coverage starts (liquidations:
2020-12-23). Those leading rows mean "no data" and are dropped per asset
(rule ``drop_leading_no_data``); zeros inside the covered range are real and kept.

Open interest: the all-exchange OHLC rows have ``ts`` = bar open and ``oi_usd`` = bar close,
as the daily rows. The per-exchange chart gives point samples on the 4h grid; a venue row's
``oi_usd`` is the OI *at* ``ts`` (the venues of a ``ts`` add up to the all-exchange ``open`` of
the bar opening at ``ts``, within 0.2 %; rule ``venue_oi_sample_at_ts``). CoinGlass's
aggregate ``open`` is not the previous bar's ``close`` (gaps of 1-11 % in this
snapshot), so the samples are not shifted onto bar closes. The chart's last row is the fetch
instant, off the 4h grid, and is dropped (rule ``drop_fetch_instant``). CME is one of the
venues and is inside the ``all`` aggregate (it is not retail leverage; filter
``venue_set <> 'cme'`` to leave it out). ``open_interest`` has no OHLC columns: the aggregate's
open/high/low are checked (positive, ``high ≥ low``) but not loaded (rule
``oi_high_low_not_loaded``).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipelines.errors import DataValidationError
from pipelines.ingest.adapters.base import AdapterOutput, SourceEntry, register_adapter
from pipelines.ingest.adapters.reference import (
    UTC_US,
    check_non_negative,
    check_ohlc,
    epoch_to_utc,
    no_data_prefix,
    parse_utc,
    require_columns,
)

_DEFAULT_VENUE_SET = "binance+okx+bybit"


def _read(path: Path, file: str, columns: list[str]) -> pl.DataFrame:
    """Read a CoinglassAutoPull CSV, check columns, parse ``ts_utc``, sort by symbol and time."""
    frame = pl.read_csv(path, infer_schema_length=None)
    require_columns(frame, ["symbol", "ts_utc", *columns], file=file)
    frame = parse_utc(frame, "ts_utc", file=file)
    dupes = frame.select(pl.struct("symbol", "ts").is_duplicated())["symbol"]
    if dupes.any():
        row = int(dupes.arg_true()[0]) + 1
        raise DataValidationError(file, "ts_utc", row, "symbol and timestamp repeated")
    return frame.sort(["symbol", "ts"], maintain_order=True)


def _drop_leading(
    out: AdapterOutput, frame: pl.DataFrame, signal: pl.Expr, group: str | None, what: str
) -> pl.DataFrame:
    """Drop the leading no-data rows (``signal`` zero/null) of each ``group``."""
    lead = frame.select(no_data_prefix(signal, group).alias("lead"))["lead"]
    out.rule(
        "drop_leading_no_data",
        int(lead.sum()),
        f"leading rows before the first non-zero {what} are CoinGlass padding (no data)",
        dropped=True,
    )
    return frame.filter(~lead)


def _liquidations(
    frame: pl.DataFrame, venue_set: str, interval: int, asset: pl.Expr
) -> pl.DataFrame:
    """Common ``cex_liquidations`` projection from ``long``/``short`` USD columns."""
    return frame.select(
        asset=asset,
        venue_set=pl.lit(venue_set),
        ts=pl.col("ts").cast(UTC_US),
        interval_seconds=pl.lit(interval, pl.Int32),
        long_usd=pl.col("long").cast(pl.Float64),
        short_usd=pl.col("short").cast(pl.Float64),
        total_usd=(pl.col("long") + pl.col("short")).cast(pl.Float64),
        events=pl.lit(None, pl.Int64),
        adl_usd=pl.lit(None, pl.Float64),
    )


@register_adapter("coinglass_liquidations_1d")
def adapt_coinglass_liquidations_1d(path: Path, entry: SourceEntry) -> AdapterOutput:
    """CoinglassAutoPull ``liquidation_agg_1d.csv`` → ``cex_liquidations`` (daily)."""
    file = entry.name
    frame = _read(path, file, ["liq_long_usd", "liq_short_usd"])
    check_non_negative(frame, ["liq_long_usd", "liq_short_usd"], file=file)
    frame = frame.rename({"liq_long_usd": "long", "liq_short_usd": "short"})
    out = AdapterOutput()
    frame = _drop_leading(out, frame, pl.col("long") + pl.col("short"), "symbol", "liquidation")
    venue_set = entry.params.get("venue_set", _DEFAULT_VENUE_SET)
    out.add("cex_liquidations", _liquidations(frame, venue_set, 86_400, pl.col("symbol")))
    return out


@register_adapter("coinglass_liquidation_history")
def adapt_coinglass_liquidation_history(path: Path, entry: SourceEntry) -> AdapterOutput:
    """CoinGlass aggregated liquidation history parquet → ``cex_liquidations``.

    The interval comes from ``params.interval_seconds`` (the registry copies it from the
    manifest note) and is checked against the spacing of ``time``.
    """
    file = entry.name
    try:
        asset = str(entry.params["asset"])
        interval = int(entry.params["interval_seconds"])
    except KeyError as exc:
        raise DataValidationError(file, None, None, f"params.{exc.args[0]} is required") from None
    frame = pl.read_parquet(path)
    long_col, short_col = "aggregated_long_liquidation_usd", "aggregated_short_liquidation_usd"
    require_columns(frame, ["time", long_col, short_col], file=file)
    check_non_negative(frame, [long_col, short_col], file=file)
    frame = frame.sort("time").rename({long_col: "long", short_col: "short"})
    steps = frame["time"].diff().drop_nulls().unique().to_list()
    if steps != [interval * 1000]:
        raise DataValidationError(
            file,
            "time",
            None,
            f"bar spacing is {sorted(s / 1000 for s in steps)} s but params.interval_seconds is "
            f"{interval}; fix the registry entry",
        )
    frame = frame.with_columns(ts=epoch_to_utc(pl.col("time"), "ms"))
    out = AdapterOutput()
    frame = _drop_leading(out, frame, pl.col("long") + pl.col("short"), None, "liquidation")
    venue_set = entry.params.get("venue_set", "binance")
    out.add("cex_liquidations", _liquidations(frame, venue_set, interval, pl.lit(asset.upper())))
    return out


@register_adapter("coinglass_open_interest")
def adapt_coinglass_open_interest(path: Path, entry: SourceEntry) -> AdapterOutput:
    """CoinglassAutoPull ``futures_oi_agg_1d.csv`` → ``open_interest`` (daily close).

    ``oi_usd`` = ``oi_total_close`` (``unit`` = usd), ``oi_coinm_usd`` = ``oi_coinm_close``.
    ``oi_stable_close`` is not in USD (BTC 2025-09-08: 201,750 against a 8.1e10 USD total) and
    is not loaded.
    """
    file = entry.name
    frame = _read(path, file, ["oi_total_close", "oi_stable_close", "oi_coinm_close", "unit"])
    units = frame["unit"].drop_nulls().unique().to_list()
    if any(u != "usd" for u in units):
        raise DataValidationError(file, "unit", None, f"units {units}; only 'usd' is understood")
    check_non_negative(frame, ["oi_total_close", "oi_coinm_close"], file=file)
    out = AdapterOutput()
    frame = _drop_leading(out, frame, pl.col("oi_total_close"), "symbol", "open interest")
    out.rule(
        "oi_stable_not_usd",
        frame.height,
        "oi_stable_close is not in USD (magnitude of a coin count); oi_stable_usd left NULL",
    )
    venue_set = entry.params.get("venue_set", _DEFAULT_VENUE_SET)
    out.add(
        "open_interest",
        frame.select(
            asset=pl.col("symbol"),
            venue_set=pl.lit(venue_set),
            ts=pl.col("ts"),
            interval_seconds=pl.lit(86_400, pl.Int32),
            oi_usd=pl.col("oi_total_close").cast(pl.Float64),
            oi_stable_usd=pl.lit(None, pl.Float64),
            oi_coinm_usd=pl.col("oi_coinm_close").cast(pl.Float64),
        ),
    )
    return out


def _oi_params(entry: SourceEntry) -> tuple[str, int]:
    """``params.asset`` and ``params.interval_seconds`` of an open-interest parquet entry."""
    try:
        return str(entry.params["asset"]).upper(), int(entry.params["interval_seconds"])
    except KeyError as exc:
        raise DataValidationError(
            entry.name, None, None, f"params.{exc.args[0]} is required"
        ) from None


def _check_grid(times: pl.Series, interval: int, file: str, column: str) -> None:
    """Every epoch-ms value must sit on the ``interval`` grid, strictly increasing by it."""
    off = times % (interval * 1000) != 0
    if off.any():
        row = int(off.arg_true()[0]) + 1
        raise DataValidationError(file, column, row, f"time {times[row - 1]} is off the grid")
    steps = times.diff().drop_nulls().unique().to_list()
    if steps and steps != [interval * 1000]:
        raise DataValidationError(
            file,
            column,
            None,
            f"bar spacing is {sorted(s / 1000 for s in steps)} s but params.interval_seconds is "
            f"{interval}; fix the registry entry",
        )


@register_adapter("coinglass_open_interest_ohlc")
def adapt_coinglass_open_interest_ohlc(path: Path, entry: SourceEntry) -> AdapterOutput:
    """CoinGlass all-exchange OI OHLC parquet → ``open_interest`` (``oi_usd`` = bar close)."""
    file = entry.name
    asset, interval = _oi_params(entry)
    frame = pl.read_parquet(path)
    require_columns(frame, ["time", "open", "high", "low", "close"], file=file)
    # open/high/low are int64 and close float64 in the file: one float type for all.
    frame = frame.sort("time").with_columns(
        pl.col(c).cast(pl.Float64) for c in ("open", "high", "low", "close")
    )
    check_ohlc(frame, file=file)
    _check_grid(frame["time"], interval, file, "time")
    out = AdapterOutput()
    out.rule(
        "oi_high_low_not_loaded",
        frame.height,
        "open_interest has no OHLC columns: oi_usd = bar close; open/high/low checked, not loaded",
    )
    out.add(
        "open_interest",
        frame.select(
            asset=pl.lit(asset),
            venue_set=pl.lit(entry.params.get("venue_set", "all")),
            ts=epoch_to_utc(pl.col("time"), "ms").cast(UTC_US),
            interval_seconds=pl.lit(interval, pl.Int32),
            oi_usd=pl.col("close"),
            oi_stable_usd=pl.lit(None, pl.Float64),
            oi_coinm_usd=pl.lit(None, pl.Float64),
        ),
    )
    return out


@register_adapter("coinglass_open_interest_by_exchange")
def adapt_coinglass_open_interest_by_exchange(path: Path, entry: SourceEntry) -> AdapterOutput:
    """CoinGlass OI-per-exchange chart parquet → ``open_interest``, one row per venue.

    The ``price`` column (a point sample, not a bar) is not loaded.
    """
    file = entry.name
    asset, interval = _oi_params(entry)
    frame = pl.read_parquet(path)
    require_columns(frame, ["timestamp", "price"], file=file)
    venues = [c for c in frame.columns if c not in ("timestamp", "price")]
    if not venues:
        raise DataValidationError(file, None, None, "no venue columns besides timestamp, price")
    frame = frame.sort("timestamp").with_columns(pl.col(v).cast(pl.Float64) for v in venues)
    check_non_negative(frame, venues, file=file)
    out = AdapterOutput()
    off_grid = frame["timestamp"] % (interval * 1000) != 0
    last_only = off_grid.sum() == 0 or (off_grid.sum() == 1 and bool(off_grid[-1]))
    if not last_only:
        row = int(off_grid.arg_true()[0]) + 1
        raise DataValidationError(
            file, "timestamp", row, "sample off the 4h grid before the last (fetch-instant) row"
        )
    out.rule(
        "drop_fetch_instant",
        int(off_grid.sum()),
        "last row is the fetch instant (off the bar grid, a partial bar), dropped",
        dropped=True,
    )
    frame = frame.filter(~off_grid)
    _check_grid(frame["timestamp"], interval, file, "timestamp")
    long = frame.unpivot(index="timestamp", on=venues, variable_name="venue", value_name="oi")
    out.rule(
        "drop_null_venue_samples",
        int(long["oi"].is_null().sum()),
        "venue without a value at that sample (not listed yet) dropped",
        dropped=True,
    )
    long = long.filter(pl.col("oi").is_not_null())
    out.rule(
        "venue_oi_sample_at_ts",
        long.height,
        "per-venue OI is a point sample at ts (the all-exchange bar open), not a bar close",
    )
    out.add(
        "open_interest",
        long.select(
            asset=pl.lit(asset),
            venue_set=pl.col("venue").str.to_lowercase(),
            ts=epoch_to_utc(pl.col("timestamp"), "ms").cast(UTC_US),
            interval_seconds=pl.lit(interval, pl.Int32),
            oi_usd=pl.col("oi"),
            oi_stable_usd=pl.lit(None, pl.Float64),
            oi_coinm_usd=pl.lit(None, pl.Float64),
        ).sort(["ts", "venue_set"]),
    )
    return out


@register_adapter("coinglass_orderbook")
def adapt_coinglass_orderbook(path: Path, entry: SourceEntry) -> AdapterOutput:
    """``orderbook_agg_futures_1d.csv`` → ``orderbook_depth``: bids at −range, asks at +range."""
    file = entry.name
    columns = ["range_pct", "bids_usd", "asks_usd", "bids_qty", "asks_qty"]
    frame = _read(path, file, columns)
    check_non_negative(frame, columns, file=file)
    venue = entry.params.get("venue", _DEFAULT_VENUE_SET)
    sides = []
    for side, sign in (("bids", -1.0), ("asks", 1.0)):
        sides.append(
            frame.select(
                asset=pl.col("symbol"),
                market=pl.lit(entry.params.get("market", "perp")),
                venue=pl.lit(venue),
                ts=pl.col("ts"),
                pct=pl.col("range_pct").cast(pl.Float64) * sign,
                depth_qty=pl.col(f"{side}_qty").cast(pl.Float64),
                notional_usd=pl.col(f"{side}_usd").cast(pl.Float64),
            )
        )
    out = AdapterOutput()
    out.add("orderbook_depth", pl.concat(sides).sort(["asset", "ts", "pct"], maintain_order=True))
    return out


@register_adapter("coinglass_ohlcv")
def adapt_coinglass_ohlcv(path: Path, entry: SourceEntry) -> AdapterOutput:
    """``futures_ohlcv_1d.csv`` → ``prices`` (asset = symbol without the quote, e.g. ``BTC``).

    ``volume_usd`` is stored as base-asset volume ``volume_usd / close`` so that
    ``volume × close`` gives back the USD volume, as for the other price sources.
    """
    file = entry.name
    frame = _read(path, file, ["open", "high", "low", "close", "volume_usd"])
    check_ohlc(frame, file=file)
    check_non_negative(frame, ["volume_usd"], file=file)
    quote = entry.params.get("quote", "USDT")
    no_quote = ~pl.col("symbol").str.ends_with(quote)
    if frame.select(no_quote.any()).item():
        row = int(frame.select(no_quote.arg_true().first()).item()) + 1
        raise DataValidationError(file, "symbol", row, f"symbol does not end in {quote!r}")
    out = AdapterOutput()
    out.rule(
        "volume_usd_to_base",
        frame.height,
        "volume_usd divided by close to give base-asset volume (volume × close = USD volume)",
    )
    out.add(
        "prices",
        frame.select(
            asset=pl.col("symbol").str.strip_suffix(quote).str.to_uppercase(),
            market=pl.lit(entry.params.get("market", "perp")),
            venue=pl.lit(entry.params.get("venue", "binance")),
            bar_seconds=pl.lit(86_400, pl.Int32),
            ts=pl.col("ts"),
            open=pl.col("open").cast(pl.Float64),
            high=pl.col("high").cast(pl.Float64),
            low=pl.col("low").cast(pl.Float64),
            close=pl.col("close").cast(pl.Float64),
            volume=(pl.col("volume_usd") / pl.col("close")).cast(pl.Float64),
        ),
    )
    return out
