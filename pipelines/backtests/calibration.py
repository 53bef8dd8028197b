"""Market calibration per event and the event's price path, from the warehouse.

Rules (each overridable by a flag of ``cascade backtest``)
----------------------------------------------------------
* **ADV and daily σ** (``--adv-usd``, ``--sigma-day``): from the hourly bars of the asset over
  the 30 days before the event start (spot Binance first, else any spot venue, else any
  market): ADV = Σ volume × close / 30 (USD per day; Binance alone, so it understates the
  whole market and errs towards more impact), σ_day = standard deviation of the hourly log
  returns × √24. Sums run in numpy over ordered rows, so a rerun gives bit-identical values.
* **Depth** (``--depth-usd``) for the ``linear`` and ``cpmm`` models. Where ``orderbook_depth``
  has the asset in ``[start − 30 d, end)`` (the 2025-10-10 Binance BTC book, the daily
  Binance+OKX+Bybit ±1 % depth of 2024-04..2025-09): ``D₁`` = mean bid notional within 1 % below
  the mid (the venue set with most snapshots), and the impact model is calibrated so that
  selling ``D₁`` at once moves the price by 1 %. Otherwise the depth is derived from ADV with
  the one published calibration point, "$35M of ETH ≈ 4.0 % on-chain slippage" (Maker, 2021),
  scaled by ADV: selling ``35M × ADV / ADV_ref`` moves the price by 4 %, with ``ADV_ref`` =
  :data:`ADV_REF_USD`, the ETH ADV measured by the rule above for 2021-05-19. For ``linear``
  this gives ``depth_usd ≈ 0.224 × ADV``.
* **Square-root law** ``f(Q) = Y · σ_day · √(Q / ADV)`` with ``Y = 1`` (``--impact-y``).
* **Half-life** (``--half-life-steps``): 30 minutes of the path's bar size (``1800 / bar``
  steps); ``inf`` makes impact permanent.

The SQL that measures ADV, σ and depth lives here; the arithmetic that turns them into impact
models is :func:`backtest.impact.impact_from_market` and the ``from_market`` classmethods.

Price paths
-----------
The event window (``events``, end exclusive) of the book's asset at the finest bar size that
covers ≥ 99 % of the window (the data report's rule), ties broken by market (spot, perp, mark,
index) then venue (Binance first). One step per bar: ``p_exo`` = the bar's close and the step
time is the bar's *close* time (open + bar size), the moment ``p_exo`` is known — so as-of
alignments to the step (margin paths) never look ahead. ``--prices FILE`` (``ts, price``, one
row per step; read by :mod:`pipelines.user_files`) replaces the path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl

from backtest import (
    CpmmImpact,
    ImpactModel,
    LinearImpact,
    PathValidationError,
    PricePath,
    SqrtImpact,
    path_fingerprint,
)
from backtest.impact import (
    ADV_REF_USD,
    DEFAULT_HALF_LIFE_SECONDS,
    IMPACT_NAMES,
    REF_SALE_USD,
    REF_SLIPPAGE,
    impact_from_market,
)
from pipelines.catalog.registry import CrashEvent
from pipelines.errors import CascadeError, DataValidationError, UnknownNameError
from pipelines.user_files import parse_timestamps, read_table

__all__ = [
    "ADV_REF_USD",
    "DEFAULT_HALF_LIFE_SECONDS",
    "IMPACT_NAMES",
    "LOOKBACK_DAYS",
    "MarketCalibration",
    "PathChoice",
    "REF_SALE_USD",
    "REF_SLIPPAGE",
    "calibrate_market",
    "choose_bars",
    "event_path",
    "make_impact",
    "path_fingerprint",
    "read_prices_file",
]

#: Look-back window of the ADV / σ calibration.
LOOKBACK_DAYS = 30
_MIN_COVERAGE_PCT = 99.0
_MARKET_RANK = {"spot": 0, "perp": 1, "mark": 2, "index": 3}


@dataclass(frozen=True, kw_only=True)
class MarketCalibration:
    """ADV, daily volatility and depth of one asset before one time.

    Attributes
    ----------
    asset : str
    start, end : datetime
        Look-back window ``[start, end)`` of the ADV and σ estimates.
    adv_usd, sigma_day : float
        Average daily volume (USD) and daily volatility (fraction).
    depth_1pct_usd : float or None
        Bid notional within 1 % (``orderbook_depth``), when the warehouse has it.
    depth_rule : str
        ``"orderbook_depth <venue>"``, ``"adv"`` or ``"override"``.
    source : str
        Bars the ADV and σ come from (``"ETH spot binance 3600 s, 720 bars"``) or
        ``"override"``.
    """

    asset: str
    start: datetime | None
    end: datetime | None
    adv_usd: float
    sigma_day: float
    depth_1pct_usd: float | None
    depth_rule: str
    source: str

    def linear(self, half_life_steps: float, depth_usd: float | None = None) -> LinearImpact:
        """Linear impact from the depth rule (or an explicit ``depth_usd``)."""
        if depth_usd is not None:
            return LinearImpact(depth_usd=depth_usd, half_life_steps=half_life_steps)
        return LinearImpact.from_market(
            adv_usd=self.adv_usd,
            depth_1pct_usd=self.depth_1pct_usd,
            half_life_steps=half_life_steps,
        )

    def cpmm(self, half_life_steps: float, depth_usd: float | None = None) -> CpmmImpact:
        """Constant-product pool from the depth rule (or an explicit reserve ``depth_usd``)."""
        if depth_usd is not None:
            return CpmmImpact(pool_depth_usd=depth_usd, half_life_steps=half_life_steps)
        return CpmmImpact.from_market(
            adv_usd=self.adv_usd,
            depth_1pct_usd=self.depth_1pct_usd,
            half_life_steps=half_life_steps,
        )

    def sqrt(self, half_life_steps: float, y: float = 1.0) -> SqrtImpact:
        """Square-root-law impact with this ADV and σ."""
        return SqrtImpact.from_market(
            adv_usd=self.adv_usd, sigma_day=self.sigma_day, half_life_steps=half_life_steps, y=y
        )


def hourly_bars(
    con: duckdb.DuckDBPyConnection, asset: str, start: datetime, end: datetime
) -> tuple[pl.DataFrame, str]:
    """Hourly bars (``ts, close, volume``) of the preferred (market, venue) in ``[start, end)``.

    Returns
    -------
    tuple
        ``(bars ordered by ts, "ASSET market venue 3600 s")``; an empty frame when none.
    """
    keys = con.execute(
        "SELECT market, venue, count(*) AS n FROM prices WHERE asset = ? AND bar_seconds = 3600 "
        "AND ts >= ? AND ts < ? AND volume IS NOT NULL GROUP BY ALL",
        [asset, start, end],
    ).fetchall()
    if not keys:
        return pl.DataFrame(), ""
    keys.sort(key=lambda k: (_MARKET_RANK.get(k[0], 9), k[1] != "binance", -k[2], k[1]))
    market, venue, _n = keys[0]
    bars = con.sql(
        "SELECT ts, close, volume FROM prices WHERE asset = ? AND market = ? AND venue = ? "
        "AND bar_seconds = 3600 AND ts >= ? AND ts < ? ORDER BY ts",
        params=[asset, market, venue, start, end],
    ).pl()
    return bars, f"{asset} {market} {venue} 3600 s"


def _orderbook_depth(
    con: duckdb.DuckDBPyConnection, asset: str, start: datetime, end: datetime
) -> tuple[float | None, str]:
    rows = con.execute(
        "SELECT venue, notional_usd FROM orderbook_depth WHERE asset = ? AND pct = -1 "
        "AND notional_usd > 0 AND ts >= ? AND ts < ? ORDER BY venue, ts, notional_usd",
        [asset, start, end],
    ).fetchall()
    if not rows:
        return None, "adv"
    by_venue: dict[str, list[float]] = {}
    for venue, notional in rows:
        by_venue.setdefault(venue, []).append(float(notional))
    venue = max(sorted(by_venue), key=lambda v: len(by_venue[v]))
    values = np.array(by_venue[venue])
    return float(values.mean()), f"orderbook_depth {venue} ({values.size} snapshots)"


def calibrate_market(
    con: duckdb.DuckDBPyConnection,
    asset: str,
    at: datetime,
    *,
    end: datetime | None = None,
    adv_usd: float | None = None,
    sigma_day: float | None = None,
) -> MarketCalibration:
    """Calibrate ADV, σ_day and depth of ``asset`` for an event starting at ``at``.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Warehouse connection.
    asset : str
        Asset symbol (``ETH``).
    at : datetime
        Event start: ADV and σ use the 30 days before it.
    end : datetime, optional
        Event end (the depth may use snapshots up to it); defaults to ``at``.
    adv_usd, sigma_day : float, optional
        Overrides; when both are given the warehouse is not read for them.

    Returns
    -------
    MarketCalibration

    Raises
    ------
    CascadeError
        When the warehouse has fewer than 20 days of hourly bars before ``at`` and no override
        was given (the message names the flags).
    """
    asset = asset.upper()
    start = at - timedelta(days=LOOKBACK_DAYS)
    source = "override"
    if adv_usd is None or sigma_day is None:
        bars, source = hourly_bars(con, asset, start, at)
        if bars.height < 20 * 24:
            raise CascadeError(
                f"only {bars.height} hourly {asset} bars in the {LOOKBACK_DAYS} days before "
                f"{at:%Y-%m-%d %H:%M}; need 480 to calibrate the impact. Give --adv-usd and "
                "--sigma-day, or load prices with `cascade ingest-prices`"
            )
        close = bars["close"].to_numpy()
        volume = bars["volume"].to_numpy()
        if adv_usd is None:
            adv_usd = float(np.sum(volume * close)) / LOOKBACK_DAYS
        if sigma_day is None:
            r = np.diff(np.log(close))
            sigma_day = float(np.std(r, ddof=1)) * math.sqrt(24.0)
        source = f"{source}, {bars.height} bars"
    depth, rule = _orderbook_depth(con, asset, start, end or at)
    return MarketCalibration(
        asset=asset,
        start=start,
        end=at,
        adv_usd=float(adv_usd),
        sigma_day=float(sigma_day),
        depth_1pct_usd=depth,
        depth_rule=rule,
        source=source,
    )


def make_impact(
    name: str,
    cal: MarketCalibration | None,
    *,
    step_seconds: float,
    half_life_steps: float | None = None,
    depth_usd: float | None = None,
    y: float = 1.0,
) -> ImpactModel:
    """Build the impact model ``name`` from a calibration.

    Parameters
    ----------
    name : {"sqrt", "linear", "cpmm", "none"}
        Impact model.
    cal : MarketCalibration or None
        Needed unless ``name`` is ``none`` (or ``depth_usd`` is given for linear/cpmm).
    step_seconds : float
        Bar size of the path (turns the 30-minute default half-life into steps).
    half_life_steps : float, optional
        Override (``math.inf``: permanent impact).
    depth_usd : float, optional
        ``depth_usd`` of the linear model or the reserve of the cpmm pool.
    y : float, optional
        Prefactor of the square-root law.

    Returns
    -------
    backtest.ImpactModel

    Raises
    ------
    UnknownNameError
        For an unknown model name.
    """
    if name not in IMPACT_NAMES:
        raise UnknownNameError(f"unknown impact model {name!r}; known: {', '.join(IMPACT_NAMES)}")
    if name == "sqrt":
        if depth_usd is not None:
            raise CascadeError("--depth-usd applies to linear and cpmm; for sqrt give --adv-usd")
        if cal is None:
            raise CascadeError("the sqrt impact needs a calibration or --adv-usd and --sigma-day")
    elif name != "none" and cal is None and depth_usd is None:
        raise CascadeError(f"the {name} impact needs a calibration or --depth-usd")
    if cal is None:
        return impact_from_market(
            name,
            depth_usd=None if depth_usd is None else float(depth_usd),
            step_seconds=step_seconds,
            half_life_steps=half_life_steps,
            y=y,
        )
    return impact_from_market(
        name,
        adv_usd=cal.adv_usd,
        sigma_day=cal.sigma_day,
        depth_1pct_usd=cal.depth_1pct_usd,
        depth_usd=depth_usd,
        step_seconds=step_seconds,
        half_life_steps=half_life_steps,
        y=y,
    )


# --- price paths --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PathChoice:
    """The bars an event path is read from."""

    asset: str
    market: str
    venue: str
    bar_seconds: int
    bars: int
    coverage_pct: float


def choose_bars(
    con: duckdb.DuckDBPyConnection, asset: str, start: datetime, end: datetime
) -> PathChoice:
    """Finest bar size covering ≥ 99 % of ``[start, end)``; spot and Binance preferred on ties.

    Raises
    ------
    CascadeError
        When no bar size covers the window (the message lists what is there).
    """
    rows = con.execute(
        "SELECT market, venue, bar_seconds, count(DISTINCT ts) AS bars FROM prices "
        "WHERE asset = ? AND ts >= ? AND ts < ? AND close > 0 GROUP BY ALL",
        [asset, start, end],
    ).fetchall()
    window = (end - start).total_seconds()
    options = []
    for market, venue, bar, n in rows:
        cov = 100.0 * min(n * bar, window) / window
        options.append(
            PathChoice(
                asset=asset,
                market=market,
                venue=venue,
                bar_seconds=int(bar),
                bars=int(n),
                coverage_pct=round(cov, 1),
            )
        )
    complete = [o for o in options if o.coverage_pct >= _MIN_COVERAGE_PCT]
    if not complete:
        seen = ", ".join(
            f"{o.market}/{o.venue}/{o.bar_seconds}s {o.coverage_pct}%" for o in options
        )
        raise CascadeError(
            f"no {asset} bars cover {start:%Y-%m-%d %H:%M}..{end:%Y-%m-%d %H:%M} "
            f"(found: {seen or 'none'}); load them with `cascade ingest-prices` or give --prices"
        )
    complete.sort(
        key=lambda o: (o.bar_seconds, _MARKET_RANK.get(o.market, 9), o.venue != "binance", o.venue)
    )
    return complete[0]


def _path_spec(path: PricePath, **extra: Any) -> dict[str, Any]:
    return {
        "n": len(path),
        "first_ts": str(path.ts[0]),
        "last_ts": str(path.ts[-1]),
        "step_seconds": path.step_seconds,
        "sha256": path_fingerprint(path),
        **extra,
    }


def event_path(
    con: duckdb.DuckDBPyConnection, event: CrashEvent, asset: str
) -> tuple[PricePath, float, dict[str, Any]]:
    """The event window's path of ``asset`` (see the module docstring).

    Returns
    -------
    (PricePath, float, dict)
        The path (step time = bar close), the price at the window start (first bar's open) and
        a JSON-ready description of the path.
    """
    asset = asset.upper()
    choice = choose_bars(con, asset, event.start_ts, event.end_ts)
    bars = con.sql(
        "SELECT ts, open, close FROM prices WHERE asset = ? AND market = ? AND venue = ? "
        "AND bar_seconds = ? AND ts >= ? AND ts < ? AND close > 0 ORDER BY ts",
        params=[
            asset,
            choice.market,
            choice.venue,
            choice.bar_seconds,
            event.start_ts,
            event.end_ts,
        ],
    ).pl()
    step = np.timedelta64(choice.bar_seconds, "s")
    ts = bars["ts"].dt.replace_time_zone(None).to_numpy().astype("datetime64[ms]") + step
    path = PricePath(ts=ts, price=bars["close"].to_numpy())
    p0 = float(bars["open"][0]) if bars["open"][0] is not None else float(bars["close"][0])
    spec = _path_spec(
        path,
        source=f"{asset} {choice.market} {choice.venue} {choice.bar_seconds}s",
        coverage_pct=choice.coverage_pct,
    )
    return path, p0, spec


def read_prices_file(path: Path | str) -> tuple[PricePath, dict[str, Any]]:
    """Read ``--prices FILE`` (CSV or Parquet, columns ``ts, price``; one row per step).

    The file is read with :func:`pipelines.user_files.read_table`; ``ts`` follows the one
    timestamp rule of :func:`pipelines.user_files.parse_timestamps` (ISO-8601 text, a datetime
    column, or epoch seconds/milliseconds/microseconds/nanoseconds decided by magnitude).

    Raises
    ------
    DataValidationError
        Missing file or column, bad timestamps, non-positive or non-increasing rows; names the
        file, the column and the data row (1-based, header excluded).
    """
    table = read_table(path, needs="columns ts, price")
    file = table.file
    table.require(("ts", "price"), "a prices file needs ts, price")
    ts = _parse_ts(table.frame["ts"], file)
    price = table.numbers("price")
    missing = price.is_null().arg_true()
    if missing.len():
        raise DataValidationError(file, "price", int(missing[0]) + 1, "is empty; give a price")
    try:
        pp = PricePath(ts=ts, price=price.to_numpy())
    except PathValidationError as exc:
        msg = str(exc)
        column = "price" if msg.startswith("price") else "ts"
        row = None
        if "(row " in msg:
            row = int(msg.split("(row ")[1].split(")")[0])
        raise DataValidationError(file, column, row, msg) from None
    return pp, _path_spec(pp, source=f"file {Path(path).name}")


def _parse_ts(col: pl.Series, file: str) -> np.ndarray:
    """``ts`` as naive-UTC ``datetime64[ms]`` (the step times of a :class:`PricePath`)."""
    parsed = parse_timestamps(col, file, "ts")
    return parsed.dt.replace_time_zone(None).to_numpy().astype("datetime64[ms]")
