"""``cascade validate``: replay Maker ETH-B on real liquidation days and score the replay.

For each day (2021-05-19, 2022-05-12, 2022-06-13):

* **book**: ETH-B vaults rebuilt from ``vault_events`` at 00:00 UTC (:func:`maker_book`); the
  owners' top-ups and repayments during the day are *not* replayed (the replay answers "which
  vaults would the day's prices liquidate if nobody acted"), so it over-predicts liquidations
  of vaults that were defended;
* **parameters** in force that morning (``risk_params``): ``mat``, ``chop``, ``buf``, ``tail``,
  ``cusp``, ``chip``, ``tip``, ``hole``, ``dust`` (``cut`` 0.99 / 60 s are ETH-B's documented
  values, not in the history);
* **trigger price** (``--trigger osm``, default): Maker compares vaults with the Oracle Security
  Module price, which lags the market by one hour: at each hourly ``poke`` the OSM publishes
  the median read one hour earlier. The replay runs on hourly steps ``h = 00:00 … 23:00`` whose
  price is the Binance ETH/USDT price at ``h − 1 h`` (the open of the previous hourly bar, the
  best proxy of the medianizer read at that poke). ``--trigger spot`` runs on the day's finest
  spot path instead (what a market-price trigger would have liquidated), for comparison;
* **mechanism**: :class:`backtest.DutchAuction` with those parameters and no price impact — the
  historical path already contains the real market's impact, so adding modelled impact would
  count it twice.

A vault counts as simulated-liquidated when any of its debt was barked; it matches when it also
has a real liquidation row that day (``defi_liquidations``, protocol ``maker-ethb``).
``precision = matched / simulated`` and ``recall = matched / real`` (1.0 when the denominator
is 0 and so is the numerator's other side, 0.0 otherwise). ``simulated_dai`` is the debt the
replay barked (principal, without the 13 % penalty); ``real_dai`` is the source's
``DAI_REPAYED`` (debt without penalty, with accrued stability fee).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import numpy as np

from backtest import DutchAuction, NoImpact, PricePath, simulate
from pipelines.backtests.books import maker_book, maker_params
from pipelines.backtests.calibration import choose_bars
from pipelines.catalog.registry import load_events
from pipelines.errors import CascadeError

__all__ = [
    "VALIDATION_DAYS",
    "ValidationRow",
    "format_table",
    "trigger_path",
    "validate_day",
    "validate_maker",
]

#: The three Maker ETH-B liquidation days replayed.
VALIDATION_DAYS = ("2021-05-19", "2022-05-12", "2022-06-13")


@dataclass(frozen=True, kw_only=True)
class ValidationRow:
    """Score of one replayed day."""

    event_id: str
    date: str
    trigger: str
    n_vaults: int
    n_real: int
    n_simulated: int
    n_matched: int
    precision: float
    recall: float
    simulated_dai: float
    real_dai: float
    matched_real_dai: float

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON)."""
        return asdict(self)


def _event_of(day: datetime) -> str:
    for ev in load_events():
        if ev.start_ts <= day < ev.end_ts:
            return ev.event_id
    return day.strftime("%Y-%m-%d")


def trigger_path(con: duckdb.DuckDBPyConnection, day: datetime, trigger: str) -> PricePath:
    """The day's trigger-price path (see the module docstring).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Warehouse connection.
    day : datetime
        00:00 UTC of the day.
    trigger : {"osm", "spot"}
        Trigger-price model.

    Returns
    -------
    backtest.PricePath
    """
    end = day + timedelta(days=1)
    if trigger == "osm":
        rows = con.sql(
            "SELECT ts, open FROM prices WHERE asset = 'ETH' AND market = 'spot' "
            "AND venue = 'binance' AND bar_seconds = 3600 AND ts >= ? AND ts < ? ORDER BY ts",
            params=[day - timedelta(hours=1), end - timedelta(hours=1)],
        ).pl()
        if rows.height < 24:
            raise CascadeError(
                f"need 24 hourly ETH bars before/on {day:%Y-%m-%d}; got {rows.height}"
            )
        ts = rows["ts"].dt.replace_time_zone(None).to_numpy().astype("datetime64[ms]")
        return PricePath(ts=ts + np.timedelta64(1, "h"), price=rows["open"].to_numpy())
    if trigger != "spot":
        raise CascadeError(f"unknown trigger {trigger!r}; give osm or spot")
    choice = choose_bars(con, "ETH", day, end)
    rows = con.sql(
        "SELECT ts, close FROM prices WHERE asset = 'ETH' AND market = ? AND venue = ? "
        "AND bar_seconds = ? AND ts >= ? AND ts < ? ORDER BY ts",
        params=[choice.market, choice.venue, choice.bar_seconds, day, end],
    ).pl()
    ts = rows["ts"].dt.replace_time_zone(None).to_numpy().astype("datetime64[ms]")
    return PricePath(
        ts=ts + np.timedelta64(choice.bar_seconds, "s"), price=rows["close"].to_numpy()
    )


def validate_day(
    con: duckdb.DuckDBPyConnection, day: str, *, trigger: str = "osm"
) -> ValidationRow:
    """Replay one day and compare the liquidated vaults with the real ones.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Warehouse connection.
    day : str
        ``YYYY-MM-DD``.
    trigger : {"osm", "spot"}
        Trigger-price model.

    Returns
    -------
    ValidationRow
    """
    start = datetime.fromisoformat(day).replace(tzinfo=UTC)
    loaded = maker_book(con, start)
    params = maker_params(con, start)
    path = trigger_path(con, start, trigger)
    result = simulate(
        loaded.book, path, NoImpact(), DutchAuction(**params.auction_kwargs()), record_steps=False
    )
    liq = result.position_liquidated_usd
    ids = loaded.book.position_id.astype(str)
    simulated = {str(v): float(d) for v, d in zip(ids, liq) if d > 0}
    real_rows = con.execute(
        "SELECT position_ref, sum(debt_repaid_usd) FROM defi_liquidations "
        "WHERE protocol = 'maker-ethb' AND ts >= ? AND ts < ? GROUP BY 1 ORDER BY 1",
        [start, start + timedelta(days=1)],
    ).fetchall()
    real = {str(r[0]): float(r[1] or 0.0) for r in real_rows}
    matched = set(simulated) & set(real)
    return ValidationRow(
        event_id=_event_of(start),
        date=day,
        trigger=trigger,
        n_vaults=len(loaded.book),
        n_real=len(real),
        n_simulated=len(simulated),
        n_matched=len(matched),
        precision=_ratio(len(matched), len(simulated), len(real)),
        recall=_ratio(len(matched), len(real), len(simulated)),
        simulated_dai=float(sum(simulated.values())),
        real_dai=float(sum(real.values())),
        matched_real_dai=float(sum(real[v] for v in matched)),
    )


def _ratio(num: int, den: int, other: int) -> float:
    if den:
        return num / den
    return 1.0 if other == 0 else 0.0


def validate_maker(
    con: duckdb.DuckDBPyConnection, *, days: tuple[str, ...] = VALIDATION_DAYS, trigger: str = "osm"
) -> list[ValidationRow]:
    """:func:`validate_day` for every day of :data:`VALIDATION_DAYS`."""
    return [validate_day(con, d, trigger=trigger) for d in days]


def format_table(rows: list[ValidationRow]) -> str:
    """Markdown table of the validation (as in the README)."""
    lines = [
        "| day | event | trigger | vaults | real liq. | simulated | matched | precision | recall "
        "| simulated DAI (M) | real DAI (M) |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r.date} | {r.event_id} | {r.trigger} | {r.n_vaults} | {r.n_real} | "
            f"{r.n_simulated} | {r.n_matched} | {r.precision:.2f} | {r.recall:.2f} | "
            f"{r.simulated_dai / 1e6:.2f} | {r.real_dai / 1e6:.2f} |"
        )
    return "\n".join(lines)
