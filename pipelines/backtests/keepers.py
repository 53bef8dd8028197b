"""``cascade keepers``: the LIQ 1.2 flip-auction replay with keeper agents, from the warehouse.

Reads the event's ETH path (``prices``: the finest bars first — 10-minute CoinAPI bars on
2020-03-12 — then coarser bars where they stop), its gas percentiles (``gas_prices``) and the
normal-day gas level (2020-02-22, the one pre-crash day of the mirror), builds the book and the
keepers, calls :func:`backtest.flip_replay.replay` per variant and seed and stores
``keeper_runs`` / ``keeper_replays`` (``data/schema/012_keepers.sql``). Method: docs/keepers.md.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import polars as pl

from backtest import synthetic_book
from backtest.flip import FlipParams
from backtest.flip_replay import FlipBook, replay, step_price
from backtest.keepers import GasSeries, KeeperMarket, KeeperRules, draw_keepers
from pipelines.catalog.registry import CrashEvent
from pipelines.errors import CascadeError
from pipelines.warehouse.connection import insert_frame, transaction

__all__ = [
    "VARIANTS",
    "KeeperRequest",
    "KeeperRun",
    "load_gas",
    "load_path",
    "run_keepers",
]

#: A pre-crash day of the mirror's gas series: the keepers' gas caps are multiples of its p90.
NORMAL_GAS_DAY = "2020-02-22"
#: Sensitivity variants (``--variants``); ``base`` is the model as documented.
VARIANTS = ("base", "no_congestion", "no_nonce_order", "no_gas_cap", "capital_x4")
_GAS_COLS = ("p30", "p60", "p90", "p100")


@dataclass(frozen=True)
class KeeperRequest:
    """What to replay (defaults and their sources: docs/keepers.md)."""

    event_id: str
    seeds: int = 3
    variants: tuple[str, ...] = ("base",)
    keepers: int = 8
    capital_dai: tuple[float, float] = (250_000.0, 4_000_000.0)
    margin: tuple[float, float] = (0.02, 0.06)
    gas_cap_multiple: tuple[float, float] = (1.0, 10.0)
    poll_seconds: tuple[float, float] = (15.0, 120.0)
    positions: int = 2_000
    book_debt_dai: float = 100e6
    mat: float = 1.5
    chop: float = 0.13
    lump: float = 50.0
    beg: float = 0.03
    ttl_seconds: float = 600.0
    tau_seconds: float = 21_600.0

    def __post_init__(self) -> None:
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown:
            raise CascadeError(f"unknown variant {unknown[0]!r}; known: {', '.join(VARIANTS)}")
        if self.seeds < 1 or self.keepers < 1 or self.positions < 1:
            raise CascadeError("--seeds, --keepers and --positions must be >= 1")


@dataclass(frozen=True)
class KeeperRun:
    """A stored run: its id, config and per-variant/seed figures."""

    run_id: str
    config: dict[str, Any]
    replays: pl.DataFrame
    ref_zero_bid_share: float | None
    ref_deficit_dai: float | None
    ref_zero_bid_collateral_usd: float | None
    seconds: float


def _seconds(ts: pl.Series, origin: datetime) -> np.ndarray:
    naive = ts.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return (naive - origin.replace(tzinfo=None)).dt.total_seconds().to_numpy().astype(float)


def load_path(
    con: duckdb.DuckDBPyConnection, event: CrashEvent, asset: str = "ETH"
) -> tuple[np.ndarray, np.ndarray, float, dict[str, Any]]:
    """The event's spot path as step observations ``(t, price)`` from the window start.

    The finest bar size with data in the window is used where it exists; a coarser size fills
    the time after its last bar. A bar's close is observed at its close time.

    Returns
    -------
    (t, price, p0, spec)
        Seconds since the window start, prices, the first bar's open and a description.
    """
    bars = con.sql(
        "SELECT bar_seconds, venue, ts, open, close FROM prices WHERE asset = ? "
        "AND market = 'spot' AND ts >= ? AND ts < ? AND close > 0 ORDER BY bar_seconds, ts",
        params=[asset, event.start_ts, event.end_ts],
    ).pl()
    if bars.height == 0:
        raise CascadeError(
            f"table 'prices': no {asset} spot bars in {event.event_id} "
            f"({event.start_ts:%Y-%m-%d}..{event.end_ts:%Y-%m-%d}); run `cascade ingest`"
        )
    t_parts: list[np.ndarray] = []
    p_parts: list[np.ndarray] = []
    covered = -np.inf
    used = []
    p0 = None
    for (size,), part in bars.group_by("bar_seconds", maintain_order=True):
        venue = part.group_by("venue").len().sort(["len", "venue"], descending=[True, False])
        part = part.filter(pl.col("venue") == venue["venue"][0])
        t_open = _seconds(part["ts"], event.start_ts)
        keep = t_open >= covered
        if not keep.any():
            continue
        t_close = t_open[keep] + float(size)
        if p0 is None:
            p0 = float(part["open"][int(np.argmax(keep))])
        t_parts.append(t_close)
        p_parts.append(part["close"].to_numpy()[keep])
        used.append(f"{venue['venue'][0]} {size}s x{int(keep.sum())}")
        covered = max(covered, float(t_close.max()))
    t = np.concatenate([[0.0], *t_parts])
    p = np.concatenate([[p0], *p_parts])
    order = np.argsort(t, kind="stable")
    t, p = t[order], p[order]
    spec = {"asset": asset, "bars": used, "sha256": _digest(t, p)}
    return t, p, float(p0), spec


def load_gas(con: duckdb.DuckDBPyConnection, event: CrashEvent) -> tuple[GasSeries, dict[str, Any]]:
    """Gas percentiles (p30, p60, p90, p100) of the event window's 10-minute windows."""
    frame = con.sql(
        "PIVOT (SELECT ts, percentile, gwei FROM gas_prices WHERE ts >= ? AND ts < ? "
        "AND percentile IN ('p30', 'p60', 'p90', 'p100')) ON percentile "
        "IN ('p30', 'p60', 'p90', 'p100') USING first(gwei) ORDER BY ts",
        params=[event.start_ts - timedelta(minutes=10), event.end_ts],
    ).pl()
    if frame.height == 0:
        raise CascadeError(
            f"table 'gas_prices': no gas percentiles in {event.event_id}; the keeper model "
            "needs the event's gas series (the mirror has 2020-03-12 and six other days)"
        )
    frame = frame.drop_nulls(list(_GAS_COLS))
    gwei = np.maximum.accumulate(frame.select(_GAS_COLS).to_numpy().astype(float), axis=1)
    t = _seconds(frame["ts"], event.start_ts)
    gas = GasSeries(t=t, gwei=gwei)
    spec = {
        "windows": int(t.size),
        "first": str(frame["ts"][0]),
        "last": str(frame["ts"][-1]),
        "sha256": _digest(t, gwei),
    }
    return gas, spec


def normal_gas_p90(con: duckdb.DuckDBPyConnection, day: str = NORMAL_GAS_DAY) -> float:
    """Median p90 gas price (gwei) of a normal day (the keepers' cap unit)."""
    row = con.execute(
        "SELECT median(gwei) FROM gas_prices WHERE percentile = 'p90' "
        "AND ts >= CAST(? AS TIMESTAMPTZ) AND ts < CAST(? AS TIMESTAMPTZ) + INTERVAL 1 DAY",
        [day, day],
    ).fetchone()
    if row is None or row[0] is None:
        raise CascadeError(f"table 'gas_prices': no p90 gas on {day} (the normal-day reference)")
    return float(row[0])


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    return h.hexdigest()[:16]


def _reference(
    con: duckdb.DuckDBPyConnection, event_id: str
) -> tuple[float | None, float | None, float | None]:
    rows = con.execute(
        "SELECT metric, value FROM reference_figures WHERE event_id = ? "
        "AND protocol_or_venue = 'MakerDAO'",
        [event_id],
    ).fetchall()
    share = next((v for m, v in rows if m.startswith("share of liquidations won with 0-DAI")), None)
    deficit = next((v for m, v in rows if m.startswith("protocol deficit")), None)
    coll = next((v for m, v in rows if m.startswith("collateral value taken via 0-DAI")), None)
    return (share / 100.0 if share is not None else None), deficit, coll


def _variant(req: KeeperRequest, name: str, cap_unit: float) -> tuple[dict, KeeperRules]:
    cap = (req.gas_cap_multiple[0] * cap_unit, req.gas_cap_multiple[1] * cap_unit)
    kw = {
        "capital_dai": req.capital_dai,
        "margin": req.margin,
        "gas_cap_gwei": cap,
        "poll_seconds": req.poll_seconds,
    }
    rules = KeeperRules()
    if name == "no_congestion":
        rules = KeeperRules(rho_floor=1.0, nonce_order=False)  # all within one block
    elif name == "no_nonce_order":
        rules = KeeperRules(nonce_order=False)  # independent delays, nothing held back
    elif name == "no_gas_cap":
        kw["gas_cap_gwei"] = (cap[0], float("inf"))
    elif name == "capital_x4":
        kw["capital_dai"] = (4 * req.capital_dai[0], 4 * req.capital_dai[1])
    return kw, rules


def run_keepers(
    con: duckdb.DuckDBPyConnection, event: CrashEvent, req: KeeperRequest, *, store: bool = True
) -> KeeperRun:
    """Replay the event's flip auctions per variant and seed; store and return the run."""
    t0 = time.perf_counter()
    t, p, p0, path_spec = load_path(con, event)
    gas, gas_spec = load_gas(con, event)
    cap_unit = normal_gas_p90(con)
    window = (event.end_ts - event.start_ts).total_seconds()
    config = {
        "event_id": event.event_id,
        "request": {k: v for k, v in req.__dict__.items() if k != "event_id"},
        "path": path_spec,
        "gas": gas_spec,
        "gas_cap_unit_gwei": cap_unit,
        "normal_gas_day": NORMAL_GAS_DAY,
    }
    run_id = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
    price = step_price(t, p)
    params = FlipParams(beg=req.beg, ttl_seconds=req.ttl_seconds, tau_seconds=req.tau_seconds)
    rows = []
    for name in req.variants:
        kw, rules = _variant(req, name, cap_unit)
        for seed in range(req.seeds):
            book = synthetic_book(
                req.positions,
                price=p0,
                seed=seed,
                total_debt=req.book_debt_dai,
                liquidation_threshold=1.0 / req.mat,
                bonus=req.chop,
            )
            fb = FlipBook(
                collateral=book.collateral,
                debt=book.debt,
                mat=req.mat,
                chop=req.chop,
                lump=req.lump,
            )
            market = KeeperMarket(draw_keepers(req.keepers, seed=seed, **kw), gas, rules, seed=seed)
            summary, _ = replay(fb, price, market, start=0.0, end=window, params=params)
            rows.append({"variant": name, **summary.as_dict()})
    replays = pl.DataFrame(rows).with_columns(
        pl.lit(run_id).alias("run_id"), pl.lit(event.event_id).alias("event_id")
    )
    ref_share, ref_deficit, ref_coll = _reference(con, event.event_id)
    seconds = time.perf_counter() - t0
    run = KeeperRun(run_id, config, replays, ref_share, ref_deficit, ref_coll, seconds)
    if store:
        write_run(con, run)
    return run


def write_run(con: duckdb.DuckDBPyConnection, run: KeeperRun) -> None:
    """Replace the run's rows in ``keeper_runs`` / ``keeper_replays`` in one transaction."""
    with transaction(con):
        con.execute("DELETE FROM keeper_replays WHERE run_id = ?", [run.run_id])
        con.execute("DELETE FROM keeper_runs WHERE run_id = ?", [run.run_id])
        con.execute(
            "INSERT INTO keeper_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                run.run_id,
                run.config["event_id"],
                json.dumps(run.config, sort_keys=True),
                run.ref_zero_bid_share,
                run.ref_deficit_dai,
                run.ref_zero_bid_collateral_usd,
                run.seconds,
                datetime.now(UTC),
            ],
        )
        insert_frame(con, "keeper_replays", run.replays)
