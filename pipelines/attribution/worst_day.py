"""Why a worst day is missed: the book the fit holds against what was reported liquidated.

Documentation helper (``docs/market-replay.md``, section 7). For every event with reported
liquidations and every asset it takes the fit that left the event out (exactly as
``cascade attribute`` selects it), runs the chosen candidate at the levered share in force on
the event's worst day (the day with the largest reported long liquidations) and reports, at the
start of that day: the model's levered long book, the part of it a fall to the day's low
liquidates at once (``L(x)`` of :func:`backtest.market.greeks.book_greeks`, no feedback), and
the open interest, funding and price context. The largest non-event day of each asset follows
with the base fit, for comparison. Read-only: ``python -m pipelines.attribution.worst_day --db
cascade.duckdb [--fit-min-drop 0]`` (a few minutes: one hourly fit per asset).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from backtest.market.cohorts import MarketSeries, PriceGrid, run_cohorts
from backtest.market.fit import CohortFit, Selection
from backtest.market.greeks import book_greeks
from pipelines.attribution.compute import (
    AttributionConfig,
    FitDays,
    _daily_series,
    _fit_runs,
    _hourly_fit_series,
)
from pipelines.errors import CascadeError
from pipelines.warehouse import attribution_store as store

__all__ = ["book_at_day", "worst_day_table"]

_H = 24  # hourly steps per fit day


def book_at_day(
    hourly: MarketSeries, sel: Selection, day: int, grid: PriceGrid
) -> dict[str, float]:
    """The selection's book at the start of fit day ``day`` and what that day liquidates.

    Parameters
    ----------
    hourly : MarketSeries
        The fit's hourly series (24 steps per day, day 0 first).
    sel : Selection
        A fit selection; its levered share on ``day`` scales the book.
    day : int
        Index of the day (``>= 1``).
    grid : PriceGrid
        The entry-price grid of the fit run (so the run reproduces the fit's predictions).

    Returns
    -------
    dict
        ``levered_share``, ``crowding_long_mult`` (the long side's crowding multiplier),
        ``close_before`` (last hourly close before the day), ``drawdown``
        (``1 − day's low / close_before``), ``book_long_usd`` (levered long notional at
        ``close_before``), ``liquidatable_at_low_usd`` (long notional an instantaneous fall to
        the day's low liquidates) and ``predicted_long_usd`` (the day's 24 hourly predictions,
        with refills and turnover).
    """
    i0 = day * _H
    params = sel.params_at(day)
    m_long, m_short = sel.multipliers_at(day)
    run = run_cohorts(hourly.slice(0, i0 + _H), params, grid=grid, snapshot_at=(i0,))
    book = run.snapshots[i0].tilted(m_long, m_short)
    p0 = float(hourly.close[i0 - 1])
    x = 1.0 - float(np.min(hourly.low[i0 : i0 + _H])) / p0
    shocks = np.array([x / 2.0, x, (1.0 + x) / 2.0]) if x > 0 else np.array([0.001, 0.002, 0.003])
    curve = book_greeks([book], np.array([p0]), params, np.zeros_like, shocks).curve[0]
    return {
        "levered_share": params.levered_share,
        "crowding_long_mult": m_long,
        "close_before": p0,
        "drawdown": x,
        "book_long_usd": float(book.long.sum()) * p0 * params.levered_share,
        "liquidatable_at_low_usd": float(curve[1]) if x > 0 else 0.0,
        "predicted_long_usd": float(run.liq_long_usd[i0 : i0 + _H].sum()) * m_long,
    }


def _row(label, held_out, asset, d, hourly, fit, sel, day, grid):  # noqa: ANN001, ANN202
    b = book_at_day(hourly, sel, day, grid)
    fit_pred = float(fit.predict(sel)[0][day])
    if not np.isclose(b["predicted_long_usd"], fit_pred, rtol=1e-6):
        raise CascadeError(f"{asset} {d['day'][day]}: the book run does not reproduce the fit")
    rep = float(d["reported_long_usd"][day])
    oi0 = float(d["oi_usd"][day - 1])
    fund = d["funding_8h"][max(day - 14, 0) : day].drop_nulls().to_numpy()
    oi30 = float(d["oi_usd"][max(day - 31, 0)])
    return {
        "case": label,
        "held_out_event": held_out,
        "asset": asset,
        "day": d["day"][day].date(),
        "drawdown": b["drawdown"],
        "reported_long_usd": rep,
        "reported_pct_oi": rep / oi0,
        "predicted_long_usd": b["predicted_long_usd"],
        "ratio": b["predicted_long_usd"] / rep,
        "levered_share": b["levered_share"],
        "crowding_long_mult": b["crowding_long_mult"],
        "book_long_pct_oi": b["book_long_usd"] / oi0,
        "book_over_reported": b["book_long_usd"] / rep,
        "at_low_over_reported": b["liquidatable_at_low_usd"] / rep,
        "oi_change_30d": oi0 / oi30 - 1.0,
        "funding_14d_bps": float(np.mean(fund)) * 1e4 if fund.size else float("nan"),
    }


def worst_day_table(  # noqa: ANN001
    con, assets: tuple[str, ...] = ("BTC", "ETH"), **overrides
) -> pl.DataFrame:
    """One row per (event with reports, asset) and per asset's largest non-event day.

    ``ratio`` is the held-out prediction over the reported figure (the acceptance check);
    ``book_over_reported`` the whole levered long book (crowding multiplier included) at the
    day's start over the reported figure, ``at_low_over_reported`` the part a fall to the day's
    low liquidates at once.
    """
    config = AttributionConfig(assets=assets, **overrides)
    events = store.event_windows(con)
    rows = []
    for asset in assets:
        series, d = _daily_series(store.daily_inputs(con, asset), asset)
        hourly = _hourly_fit_series(con, asset, d)
        grid = PriceGrid.covering(float(np.min(hourly.low)), float(np.max(hourly.high)))
        fit: CohortFit = _fit_runs(con, asset, series, d, config)
        days = FitDays.of(d, events, config)
        rl, has = days.long, days.reported
        for eid, m in days.masks.items():
            if not (has & m).any():
                continue
            sel = days.select_without(fit, eid)
            idx = np.flatnonzero(has & m)
            day = int(idx[np.argmax(rl[idx])])
            rows.append(_row("event worst day", eid, asset, d, hourly, fit, sel, day, grid))
        base = days.select_base(fit)
        idx = np.flatnonzero(days.calib)
        day = int(idx[np.argmax(rl[idx])])
        rows.append(_row("largest non-event day", None, asset, d, hourly, fit, base, day, grid))
    return pl.DataFrame(rows)


if __name__ == "__main__":  # pragma: no cover - documentation helper
    import argparse

    from pipelines.attribution.summary import markdown_table
    from pipelines.warehouse.connection import connect

    ap = argparse.ArgumentParser(description="the book behind each event's worst-day ratio")
    ap.add_argument("--db", required=True)
    ap.add_argument("--assets", default="BTC,ETH")
    ap.add_argument("--fit-min-drop", type=float, default=None, help="0: every-day loss")
    a = ap.parse_args()
    con = connect(a.db, read_only=True)
    kw = {} if a.fit_min_drop is None else {"fit_min_drop": a.fit_min_drop}
    print(markdown_table(worst_day_table(con, tuple(a.assets.upper().split(",")), **kw)))
