"""Replay a Maker LIQ 1.2 book through flip auctions with keeper agents (Black Thursday).

Bites (``cat.bite``, MCD v1)
    The protocol sees the price through the Oracle Security Module: the value in force during
    hour ``h`` is the market price at the start of hour ``h − 1`` (``osm_delay_seconds``,
    poked every ``hop_seconds``). At every poke, each vault with ``collateral · osm <
    debt · mat`` is bitten whole: its collateral is cut into auctions of at most ``lump`` units,
    each carrying its share of the debt and ``tab = debt · (1 + chop)``. Vault owners do not top
    up; bites happen at the poke (their gas is not modelled).
Auctions
    :func:`backtest.flip.run_flips` with the keepers of a :class:`~backtest.keepers.KeeperMarket`.
Figures
    zero-bid share (settled auctions won with 0 DAI), deficit (Σ debt − Σ DAI raised), gross
    shortfall, collateral value won at 0 DAI, auctions and vaults bitten.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from backtest.flip import FlipParams, FlipResult, Kick, run_flips
from backtest.keepers import KeeperMarket

__all__ = ["FlipBook", "ReplaySummary", "bite_kicks", "osm_price", "replay", "step_price"]


@dataclass(frozen=True)
class FlipBook:
    """Vaults of one collateral type under LIQ 1.2.

    Parameters
    ----------
    collateral, debt : numpy.ndarray
        Per vault: collateral units and DAI debt.
    mat : float
        Liquidation ratio (ETH-A: 1.5).
    chop : float
        Liquidation penalty (ETH-A: 13 %).
    lump : float
        Largest collateral lot per auction (ETH-A in March 2020: 50 ETH).
    """

    collateral: np.ndarray
    debt: np.ndarray
    mat: float = 1.5
    chop: float = 0.13
    lump: float = 50.0

    def __post_init__(self) -> None:
        c = np.asarray(self.collateral, dtype=np.float64)
        d = np.asarray(self.debt, dtype=np.float64)
        if c.shape != d.shape or c.ndim != 1:
            raise ValueError("FlipBook: collateral and debt must be 1-D arrays of one length")
        if np.any(c < 0) or np.any(d < 0):
            raise ValueError("FlipBook: collateral and debt must be >= 0")
        if not (self.mat > 0 and self.chop >= 0 and self.lump > 0):
            raise ValueError("FlipBook: mat > 0, chop >= 0, lump > 0")
        object.__setattr__(self, "collateral", c)
        object.__setattr__(self, "debt", d)


def step_price(t: np.ndarray, p: np.ndarray) -> Callable[[float], float]:
    """Price at ``x``: the last observation at or before ``x`` (the first one before it)."""
    ts = np.asarray(t, dtype=np.float64).tolist()
    ps = np.asarray(p, dtype=np.float64).tolist()

    def price(x: float) -> float:
        return ps[max(bisect.bisect_right(ts, x) - 1, 0)]

    return price


def osm_price(price: Callable[[float], float], t: float, *, hop_seconds: float = 3600.0) -> float:
    """OSM value in force at ``t``: the market price one ``hop`` before the last poke."""
    poke = math.floor(t / hop_seconds) * hop_seconds
    return price(poke - hop_seconds)


def bite_kicks(
    book: FlipBook,
    price: Callable[[float], float],
    start: float,
    end: float,
    *,
    hop_seconds: float = 3600.0,
) -> tuple[list[Kick], np.ndarray]:
    """Auctions started by OSM pokes in ``[start, end)``.

    Returns
    -------
    (list of Kick, numpy.ndarray)
        The auctions and, per vault, the time it was bitten (``nan``: never).
    """
    alive = (book.debt > 0) & (book.collateral > 0)
    bitten = np.full(book.debt.size, np.nan)
    kicks: list[Kick] = []
    t = math.ceil(start / hop_seconds) * hop_seconds
    while t < end:
        osm = osm_price(price, t, hop_seconds=hop_seconds)
        unsafe = np.flatnonzero(alive & (book.collateral * osm < book.debt * book.mat))
        for i in unsafe:
            ink, art = float(book.collateral[i]), float(book.debt[i])
            n = max(1, math.ceil(ink / book.lump - 1e-12))
            for j in range(n):
                lot = min(book.lump, ink - j * book.lump)
                debt = art * lot / ink
                kicks.append(Kick(t=t, lot=lot, tab=debt * (1.0 + book.chop), debt=debt))
        alive[unsafe] = False
        bitten[unsafe] = t
        t += hop_seconds
    return kicks, bitten


@dataclass(frozen=True)
class ReplaySummary:
    """Figures of one replay (one seed)."""

    seed: int
    vaults_bitten: int
    auctions: int
    settled: int
    zero_bid_auctions: int
    zero_bid_share: float
    debt_liquidated_dai: float
    dai_raised: float
    deficit_dai: float
    gross_shortfall_dai: float
    zero_bid_collateral_usd: float
    gas_spent_dai: float
    txs: int
    reverted_txs: int
    median_delay_seconds: float
    p90_delay_seconds: float

    def as_dict(self) -> dict[str, float | int]:
        """JSON-ready figures."""
        return dict(self.__dict__)


def replay(
    book: FlipBook,
    price: Callable[[float], float],
    market: KeeperMarket,
    *,
    start: float,
    end: float,
    params: FlipParams | None = None,
    hop_seconds: float = 3600.0,
) -> tuple[ReplaySummary, FlipResult]:
    """Bite the book over ``[start, end)`` and run every auction to its end.

    Parameters
    ----------
    book : FlipBook
        The vaults.
    price : callable
        Market price (DAI per collateral unit) at a time in seconds.
    market : KeeperMarket
        Keepers, gas and the seed of their draws (mutated: capital, gas counters).
    start, end : float
        Window of the bites (seconds); auctions then run to completion.
    params : FlipParams, optional
        Flipper parameters (default ETH-A on 2020-03-12).
    hop_seconds : float, optional
        OSM poke interval and delay (1 h).

    Returns
    -------
    (ReplaySummary, FlipResult)
    """
    p = params or FlipParams()
    kicks, bitten = bite_kicks(book, price, start, end, hop_seconds=hop_seconds)
    res = run_flips(kicks, price, market, p)
    settled = res.settled
    delays = np.asarray(market.submitted_delays, dtype=np.float64)
    summary = ReplaySummary(
        seed=market.seed,
        vaults_bitten=int(np.isfinite(bitten).sum()),
        auctions=len(kicks),
        settled=len(settled),
        zero_bid_auctions=sum(a.zero_bid for a in settled),
        zero_bid_share=res.zero_bid_share(),
        debt_liquidated_dai=float(sum(a.debt for a in settled)),
        dai_raised=float(sum(a.bid for a in settled)),
        deficit_dai=res.deficit_dai(),
        gross_shortfall_dai=res.gross_shortfall_dai(),
        zero_bid_collateral_usd=res.zero_bid_collateral_usd(),
        gas_spent_dai=float(sum(res.gas_spent_dai)),
        txs=int(sum(res.txs)),
        reverted_txs=int(sum(res.reverted)),
        median_delay_seconds=float(np.median(delays)) if delays.size else math.nan,
        p90_delay_seconds=float(np.quantile(delays, 0.9)) if delays.size else math.nan,
    )
    return summary, res
