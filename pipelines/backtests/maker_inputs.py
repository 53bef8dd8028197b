"""The Maker ETH-B inputs of the vault replay and the book it starts from.

Read by ``cascade validate`` (:mod:`pipelines.backtests.validate_maker`) and by the backtests'
``maker-ethb`` book (:func:`pipelines.backtests.books.maker_book`): the vault events, the ETH-B
rate accumulator (``JUG.ilks.duty``), ``VAT.ilks.dust``, the Binance ETH spot price steps, and
:func:`maker_state`, the book at any time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import polars as pl

from backtest.maker import (
    OsmModel,
    RateAccumulator,
    Schedule,
    VaultEvents,
    VaultState,
    vault_states,
    warm_up,
)
from pipelines.errors import CascadeError

__all__ = [
    "POKE_MINUTE",
    "WARMUP_DAYS",
    "MakerInputs",
    "load_inputs",
    "maker_state",
    "warm",
]

#: Minute past the hour of the modelled OSM poke (the real barks of these days sit in the first
#: minute of the hour: ``poke`` is called as soon as ``hop`` allows it).
POKE_MINUTE = 0.0
#: Days before each validation day over which the book is carried and corrected by the chain's
#: own verdicts (:func:`backtest.maker.warm_up`).
WARMUP_DAYS = 30
_OWNER_EVENTS = ("deposit", "withdraw", "mint", "repay")


@dataclass(frozen=True, eq=False)
class MakerInputs:
    """Everything the replays read from the warehouse."""

    events: VaultEvents
    owner_events: VaultEvents
    liquidations: VaultEvents
    rates: RateAccumulator
    price_ts: np.ndarray
    price: np.ndarray
    dust: Schedule


def _epoch(ts: datetime) -> int:
    return int(ts.timestamp())


def _vault_events(frame: pl.DataFrame) -> VaultEvents:
    return VaultEvents(
        vault=frame["vault_id"].to_numpy(),
        ts=frame["t"].to_numpy(),
        collateral_delta=frame["c"].to_numpy(),
        dai_delta=frame["d"].to_numpy(),
        bark=(frame["event_type"] == "liquidation").to_numpy(),
    )


def load_inputs(
    con: duckdb.DuckDBPyConnection, *, prices_from: datetime | None = None
) -> MakerInputs:
    """Vault events, the ETH-B rate accumulator, ``dust`` and the Binance ETH spot price steps.

    ``prices_from`` skips the price steps more than an hour before it (a book needs only its
    warm-up's prices).
    """
    ev = con.sql(
        "SELECT vault_id, epoch(ts)::BIGINT AS t, event_type, "
        "coalesce(collateral_delta, 0.0) AS c, "
        "coalesce(debt_delta, 0.0) AS d FROM vault_events "
        "WHERE protocol = 'maker' AND ilk = 'ETH-B' "
        "ORDER BY t, TRY_CAST(vault_id AS BIGINT), block, event_type, c, d"
    ).pl()
    if ev.height == 0:
        raise CascadeError("vault_events holds no Maker ETH-B history; run `cascade ingest`")
    events = _vault_events(ev)
    owner_events = _vault_events(ev.filter(ev["event_type"].is_in(_OWNER_EVENTS)))
    liquidations = events.select(events.bark)
    duty = con.execute(
        "SELECT epoch(effective_ts)::BIGINT, value FROM risk_params WHERE protocol = 'maker' "
        "AND market = 'ETH-B' AND parameter = 'JUG.ilks.duty' ORDER BY effective_ts, value"
    ).fetchall()
    if not duty:
        raise CascadeError("no JUG.ilks.duty for Maker ETH-B in risk_params; run `cascade ingest`")
    # several changes in one block: keep the last row per timestamp
    by_ts = dict(duty)
    rates = RateAccumulator(
        change_ts=np.array(list(by_ts), dtype=np.int64), annual=np.array(list(by_ts.values()))
    )
    px = con.sql(
        "SELECT epoch(ts)::BIGINT AS t, arg_min(open, bar_seconds) AS p FROM prices "
        "WHERE asset = 'ETH' AND market = 'spot' AND venue = 'binance' AND bar_seconds <= 3600 "
        "AND open > 0 AND ts >= ? GROUP BY t ORDER BY t",
        params=[
            datetime(1970, 1, 1, tzinfo=UTC)
            if prices_from is None
            else prices_from - timedelta(hours=1)
        ],
    ).pl()
    dust = con.execute(
        "SELECT epoch(effective_ts)::BIGINT, max(value) FROM risk_params "
        "WHERE protocol = 'maker' AND market = 'ETH-B' AND parameter = 'VAT.ilks.dust' "
        "GROUP BY 1 ORDER BY 1"
    ).fetchall()
    if not dust:
        raise CascadeError("no VAT.ilks.dust for Maker ETH-B in risk_params; run `cascade ingest`")
    return MakerInputs(
        dust=Schedule(ts=np.array([r[0] for r in dust]), values=np.array([r[1] for r in dust])),
        events=events,
        owner_events=owner_events,
        liquidations=liquidations,
        rates=rates,
        price_ts=px["t"].to_numpy(),
        price=px["p"].to_numpy(),
    )


def warm(
    inputs: MakerInputs,
    osm: OsmModel,
    base: VaultState,
    at: int,
    warmup_days: int,
    mat: float,
) -> tuple[VaultState, dict[str, int]]:
    """``base`` (the book ``warmup_days`` before ``at``) carried to ``at`` by ``warm_up``."""
    if warmup_days <= 0:
        return base, {}
    w0 = at - warmup_days * 86_400
    return warm_up(
        base,
        inputs.events.between(w0, at),
        inputs.rates,
        *osm.pokes(w0, at, inputs.price_ts, inputs.price)[:2],
        mat=mat,
        barked=inputs.liquidations.between(None, at),
        dust=inputs.dust,
    )


def maker_state(
    con: duckdb.DuckDBPyConnection,
    at: datetime,
    *,
    mat: float,
    warmup_days: int = WARMUP_DAYS,
    poke_minute: float = POKE_MINUTE,
) -> tuple[VaultState, RateAccumulator, dict[str, int]]:
    """The ETH-B book the replay starts from at ``at``: the backtests' ``maker-ethb`` book.

    Every event strictly before ``at`` (liquidations included) with the chain's rules
    (:func:`backtest.maker.vault_state`), debt accrued by the rate accumulator, carried through
    the last ``warmup_days`` of pokes by :func:`backtest.maker.warm_up` (only barks before
    ``at`` are read). ``mat`` is ``SPOTTER.ilks.mat`` in force
    (:func:`pipelines.backtests.books.maker_params`).

    Returns
    -------
    (VaultState, RateAccumulator, corrections)
        The book (DAI debt at ``at`` = ``art · rate(at)``; collateral ``ink + boost``), the
        ETH-B rate accumulator and the warm-up's corrections per vault.
    """
    w0 = at - timedelta(days=max(warmup_days, 0))
    inputs = load_inputs(con, prices_from=w0)
    t = _epoch(at)
    (base,) = vault_states(
        inputs.events, inputs.rates, [t - max(warmup_days, 0) * 86_400], dust=inputs.dust
    )
    osm = OsmModel(poke_minute=poke_minute)
    try:
        state, corrections = warm(inputs, osm, base, t, warmup_days, mat)
    except ValueError as exc:  # no price before a warm-up poke
        raise CascadeError(
            f"prices: no Binance ETH spot price to warm the Maker ETH-B book up to "
            f"{at:%Y-%m-%d %H:%M} ({exc})"
        ) from exc
    return state, inputs.rates, corrections
