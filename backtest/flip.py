"""Maker LIQ 1.2 flip auctions (``dss/flip.sol``) bid by keeper agents.

An auction sells a ``lot`` of collateral to cover a ``tab`` of DAI (debt plus penalty).

``tend`` phase
    Bids raise the DAI offered for the whole lot, up to ``tab``. A bid must exceed the current
    one and be at least ``(1 + beg)`` times it, unless it equals ``tab``.
``dent`` phase
    Once a bid equals ``tab``, bids lower the collateral accepted for ``tab``: a new lot must
    satisfy ``(1 + beg) · lot_new ≤ lot``. Collateral not taken goes back to the vault owner.
Expiry
    Every bid sets the bid expiry ``tic = now + ttl``; the auction ends at ``end = kick + tau``
    at the latest. It is settled (``deal``) at ``min(tic, end)`` once it has a bid; an auction
    with no bid at ``end`` is restarted (``tick``: ``end = now + tau``).
Zero bid
    The contract accepts any first bid above nothing; an auction whose winning bid is 0 DAI
    (``bid`` below ``zero_bid_dai``) is a *zero-bid* auction.

Keeper strategy (the same for every keeper; docs/keepers.md)
    A keeper looks at a new auction ``poll_seconds`` after its kick and after every bid of
    someone else; one that passed looks again after ``recheck_seconds``. On an
    auction without a bid it opens at the minimum (0 DAI): a higher opening only raises the
    price it pays if unchallenged, and ``ttl`` leaves time to answer a challenge. When outbid
    (or facing someone else's bid) it bids what the lot is worth to it: ``min(tab, lot · P ·
    (1 − margin) − gas, free capital)`` in ``tend``; in ``dent`` the smallest lot worth ``tab``
    plus gas to it (if its free capital covers ``tab``). It acts only if
    :meth:`~backtest.keepers.KeeperMarket.worth_acting`. A bid is mined after the congestion
    delay of
    :meth:`~backtest.keepers.KeeperMarket.action`; mined after the auction closed, or no longer
    above the standing bid, it reverts (gas is still paid). A winner resells the lot at the
    market price at ``deal`` (its capital comes back as DAI).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from backtest.keepers import KeeperMarket

__all__ = ["FlipAuction", "FlipParams", "FlipResult", "Kick", "run_flips"]


@dataclass(frozen=True)
class FlipParams:
    """Flipper parameters.

    Parameters
    ----------
    beg : float
        Minimum bid increase (ETH-A on 2020-03-12: 3 %).
    ttl_seconds : float
        Bid duration (ETH-A on 2020-03-12: 10 min).
    tau_seconds : float
        Maximum auction length (ETH-A on 2020-03-12: 6 h).
    zero_bid_dai : float
        A winning bid below this is counted as a 0-DAI bid.
    recheck_seconds : float
        A keeper that passed on an auction looks at it again after this long (or after its
        ``poll_seconds`` past the next bid, whichever comes first).
    """

    beg: float = 0.03
    ttl_seconds: float = 600.0
    tau_seconds: float = 21_600.0
    zero_bid_dai: float = 1.0
    recheck_seconds: float = 300.0

    def __post_init__(self) -> None:
        if not (self.beg >= 0 and self.ttl_seconds > 0 and self.tau_seconds > 0):
            raise ValueError("FlipParams: beg >= 0, ttl_seconds > 0 and tau_seconds > 0")


@dataclass(frozen=True)
class Kick:
    """An auction to start: time, collateral lot, DAI ``tab`` and the debt inside it."""

    t: float
    lot: float
    tab: float
    debt: float


@dataclass
class FlipAuction:
    """State and outcome of one flip auction."""

    id: int
    kick_t: float
    lot0: float
    tab: float
    debt: float
    end: float
    lot: float = 0.0
    bid: float = 0.0
    guy: int | None = None
    tic: float = math.inf
    settled_t: float | None = None
    price_at_deal: float | None = None
    n_bids: int = 0
    restarts: int = 0
    history: list[tuple[float, int, float, float]] = field(default_factory=list)

    zero_bid: bool = False

    @property
    def close_t(self) -> float:
        """When the auction can be settled (``inf`` while it has no bid)."""
        return min(self.tic, self.end) if self.guy is not None else math.inf


@dataclass(frozen=True)
class FlipResult:
    """Auctions after the run and the keepers' final state."""

    auctions: tuple[FlipAuction, ...]
    gas_spent_dai: tuple[float, ...]
    txs: tuple[int, ...]
    reverted: tuple[int, ...]

    @property
    def settled(self) -> tuple[FlipAuction, ...]:
        """Auctions that ended with a winner."""
        return tuple(a for a in self.auctions if a.settled_t is not None)

    def zero_bid_share(self) -> float:
        """Share of settled auctions won with a 0-DAI bid (``nan`` if none settled)."""
        s = self.settled
        return sum(a.zero_bid for a in s) / len(s) if s else math.nan

    def deficit_dai(self) -> float:
        """Σ debt − Σ DAI raised over settled auctions (penalty income offsets shortfalls)."""
        return sum(a.debt - a.bid for a in self.settled)

    def gross_shortfall_dai(self) -> float:
        """Σ max(0, debt − DAI raised) over settled auctions."""
        return sum(max(0.0, a.debt - a.bid) for a in self.settled)

    def zero_bid_collateral_usd(self) -> float:
        """Market value at settlement of the collateral won with 0-DAI bids."""
        return sum(a.lot * (a.price_at_deal or 0.0) for a in self.settled if a.zero_bid)


# event kinds, ordered for ties at the same instant: settle before new bids are mined
_DEAL, _TX, _LOOK = 0, 1, 2


def run_flips(
    kicks: Sequence[Kick],
    price: Callable[[float], float],
    market: KeeperMarket,
    params: FlipParams | None = None,
    *,
    horizon: float | None = None,
) -> FlipResult:
    """Run flip auctions with keeper agents (event-driven, deterministic for a seed).

    Parameters
    ----------
    kicks : sequence of Kick
        Auctions, in any order (sorted by time, stable).
    price : callable
        Market price of the collateral (DAI) at a time (seconds).
    market : KeeperMarket
        Keepers, gas series and seeded draws; its capital and gas counters are updated.
    params : FlipParams, optional
        Flipper parameters (default ETH-A of 2020-03-12).
    horizon : float, optional
        Stop time (default: the last kick plus four times ``tau``; auctions nobody bids on are
        restarted until then).

    Returns
    -------
    FlipResult
    """
    p = params or FlipParams()
    keepers = market.keepers
    n_k = len(keepers)
    order = sorted(range(len(kicks)), key=lambda i: kicks[i].t)
    auctions = [
        FlipAuction(
            id=j,
            kick_t=kicks[i].t,
            lot0=kicks[i].lot,
            lot=kicks[i].lot,
            tab=kicks[i].tab,
            debt=kicks[i].debt,
            end=kicks[i].t + p.tau_seconds,
        )
        for j, i in enumerate(order)
    ]
    if horizon is None:
        horizon = max((k.t for k in kicks), default=0.0) + 4 * p.tau_seconds
    heap: list[tuple[float, int, int, tuple]] = []
    seq = 0

    def push(t: float, kind: int, payload: tuple) -> None:
        nonlocal seq
        heapq.heappush(heap, (t, kind, seq, payload))
        seq += 1

    pending: dict[tuple[int, int], float] = {}  # (keeper, auction) -> reserved DAI
    for a in auctions:
        for k in range(n_k):
            push(a.kick_t + keepers[k].poll_seconds, _LOOK, (k, a.id))
        push(a.end, _DEAL, (a.id, a.end))

    while heap:
        t, kind, _, payload = heapq.heappop(heap)
        if t > horizon:
            break
        if kind == _DEAL:
            aid, due = payload
            a = auctions[aid]
            if a.settled_t is not None:
                continue
            if a.guy is None:  # tick: restart an auction nobody bid on
                if due != a.end:
                    continue
                a.end = t + p.tau_seconds
                a.restarts += 1
                push(a.end, _DEAL, (aid, a.end))
                for k in range(n_k):
                    push(t + keepers[k].poll_seconds, _LOOK, (k, aid))
                continue
            if due != a.close_t:
                continue  # a later bid moved the expiry
            a.settled_t = t
            px = price(t)
            a.price_at_deal = px
            a.zero_bid = a.bid < p.zero_bid_dai
            market.free[a.guy] += a.lot * px  # resale of the lot
        elif kind == _TX:
            k, aid, bid, lot, cost, reserved = payload
            a = auctions[aid]
            pending.pop((k, aid), None)
            ok = a.settled_t is None and t < a.end and t < a.tic and _valid(a, bid, lot, p)
            market.pay_gas(k, cost, reverted=not ok)
            if not ok:
                market.free[k] += reserved
                continue
            if a.guy is not None:
                market.free[a.guy] += a.bid  # the outbid keeper gets its DAI back
            a.bid, a.lot, a.guy = bid, lot, k
            a.tic = t + p.ttl_seconds
            a.n_bids += 1
            a.history.append((t, k, bid, lot))
            push(min(a.tic, a.end), _DEAL, (aid, min(a.tic, a.end)))
            for j in range(n_k):
                if j != k:
                    push(t + keepers[j].poll_seconds, _LOOK, (j, aid))
        else:  # _LOOK
            k, aid = payload
            a = auctions[aid]
            if a.settled_t is not None or t >= a.close_t or t >= a.end:
                continue
            if a.guy == k or (k, aid) in pending:
                continue  # it looks again when someone else bids
            bid_lot = _decide(a, k, t, price, market, p)
            if bid_lot is not None:
                bid, lot, act = bid_lot
                reserved = bid  # in dent the bid is the tab
                market.free[k] -= reserved
                pending[(k, aid)] = reserved
                mined = market.submit(k, t, act)
                push(mined, _TX, (k, aid, bid, lot, act.cost_dai, reserved))
            else:
                push(t + max(keepers[k].poll_seconds, p.recheck_seconds), _LOOK, (k, aid))
    return FlipResult(
        auctions=tuple(auctions),
        gas_spent_dai=tuple(float(x) for x in market.gas_spent),
        txs=tuple(int(x) for x in market.txs),
        reverted=tuple(int(x) for x in market.reverted),
    )


def _valid(a: FlipAuction, bid: float, lot: float, p: FlipParams) -> bool:
    """``tend``/``dent`` checks of ``flip.sol`` against the auction's current state."""
    if a.guy is None:
        return lot == a.lot and 0 <= bid <= a.tab
    if a.bid < a.tab:  # tend
        if lot != a.lot or bid > a.tab or not bid > a.bid:
            return False
        return bid >= (1.0 + p.beg) * a.bid or bid == a.tab
    # dent
    return bid == a.tab and lot < a.lot and (1.0 + p.beg) * lot <= a.lot


def _decide(
    a: FlipAuction,
    k: int,
    t: float,
    price: Callable[[float], float],
    market: KeeperMarket,
    p: FlipParams,
):  # noqa: ANN202 - (bid, lot, Action) or None
    """Keeper ``k``'s bid on ``a`` at ``t``, or ``None`` (see the module docstring)."""
    keeper = market.keepers[k]
    px = price(t)
    free = market.free[k]
    value = a.lot * px
    worth = value * (1.0 - keeper.margin)
    # cheap checks first (gas >= 0 only makes a bid harder): no draw when nothing is possible
    if a.guy is not None:
        if a.bid < a.tab:
            best = min(a.tab, worth, free)
            if best < a.tab and (best < (1.0 + p.beg) * a.bid or not best > a.bid):
                return None
        elif worth <= 0 or (1.0 + p.beg) * a.tab > worth or a.tab > free:
            return None
    act = market.action(k, t, px)
    if a.guy is None:  # open at the minimum
        if market.worth_acting(value, 0.0, keeper.margin, act.cost_dai):
            return 0.0, a.lot, act
        return None
    if a.bid < a.tab:  # tend: bid what the lot is worth (capped at tab and free capital)
        bid = min(a.tab, worth - act.cost_dai, free)
        if bid < a.tab and (bid < (1.0 + p.beg) * a.bid or not bid > a.bid):
            return None
        if not market.worth_acting(value, bid, keeper.margin, act.cost_dai):
            return None
        return bid, a.lot, act
    # dent: the smallest lot worth tab plus gas to this keeper
    if px <= 0:
        return None
    lot = (a.tab + act.cost_dai) / (px * (1.0 - keeper.margin))
    if (1.0 + p.beg) * lot > a.lot or a.tab > free:
        return None
    return a.tab, lot, act
