"""``dutch_auction``: Maker Liquidations 2.0 (``dog`` + ``clip`` + ``abaci``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from backtest.errors import PolicyConfigError
from backtest.policies.base import Env, Policy, Runtime, check_fraction, check_positive

__all__ = ["DutchAuction"]


@dataclass(frozen=True, kw_only=True)
class DutchAuction(Policy):
    """Maker LIQ 2.0 Dutch auctions; defaults are ETH-B's 2021 parameters.

    **Bark** (``dog.bark``). An unhealthy position is moved into an auction if the throughput
    caps allow: ``room = min(hole_usd, global_hole_usd) − dirt`` (``dirt`` = sum of ``tab`` of
    active auctions). Positions are barked in priority order (lowest health first); the first one
    that does not fit is barked partially (proportional collateral and debt) unless its remainder
    would be below ``dust_usd`` (then it is barked whole) or the part that fits is below
    ``dust_usd`` (then it waits). ``tab = debt·(1 + chop)``, ``lot`` = collateral,
    ``top = buf × p`` (oracle = market price of the round). The keeper earns
    ``tip_usd + chip·tab``, paid by the protocol.

    **Price** (``abaci``): ``stairstep``: ``top · cut^floor(elapsed / step_seconds)``;
    ``linear``: ``top · (1 − elapsed / tau_seconds)`` (0 after ``tau``). ``elapsed`` is measured
    in seconds from the auction's (re)start; a bark happens at the close of its step.

    **Inside a step** (step-size invariance). A step covers the time ``(t−1, t] × dt``. At its
    first round the auction clock runs over that interval against a market price interpolated
    linearly from the previous step's closing market price to the round's price, so an hourly
    bar sees the same auction events as sixty minute bars on a straight-line path:

    * **Reset** (``clip.redo``) happens at the first moment ``elapsed > tail_seconds`` or
      ``price / top < cusp`` (for the stair-step curve: the start of the first stair below the
      cusp); the auction restarts there at ``buf ×`` the interpolated market price and the
      keeper again earns ``tip + chip·tab`` when ``tab`` and ``lot × price`` are at least
      ``chost = dust·(1 + chop)``. Several resets can happen in one long step.
    * **Take** (``clip.take``) happens at the first moment (before any reset) at which the
      auction price is at most ``market · (1 − taker_margin)``, at the auction price of that
      moment; takers sell at the interpolated market price of that moment. Auctions are taken in
      order of their take moments (oldest first on ties).

    Auctions barked earlier in the same step are checked at later rounds at their ``top``
    against the round's market price. Takers buy an auction's whole lot, or only what covers
    its ``tab`` (``tab / P`` units; the rest of the lot goes back to the borrower); with a
    finite ``taker_capacity_usd`` (USD of ``owe`` per step) the last one is taken partially and
    the rest waits for the next step. Proceeds repay the auction's debt first; the rest is the
    penalty (protocol revenue). An auction whose lot runs out before its debt is covered leaves
    the shortfall as bad debt. Every take frees ``dirt`` (the whole ``tab`` when the auction
    ends). At the end of the path, the debt of unfinished auctions not covered by their lot at
    the final price is the run's ``in_flight_shortfall_usd``.

    Parameters
    ----------
    buf : float, optional
        Starting price multiplier over the oracle price (ETH-B 2021: 1.20).
    curve : {"stairstep", "linear"}, optional
        Price curve (ETH-B: stair-step exponential).
    cut : float, optional
        Stair-step multiplier per ``step_seconds`` (ETH-B: 0.99).
    step_seconds : float, optional
        Stair-step length in seconds (ETH-B: 60; ETH-A/WBTC-A: 90).
    tau_seconds : float, optional
        Linear curve: seconds to reach 0 (assumption: 5,400 = ``tail``).
    tail_seconds : float, optional
        Auction age that forces a reset (REFERENCES: 90 min; note the ETH-B parameter history
        in the data mirror records 8,400 s from May 2021).
    cusp : float, optional
        Price drop (``price / top``) that forces a reset (ETH-B: 0.40).
    tip_usd : float, optional
        Flat keeper reward per bark/redo (ETH-B: 300 DAI).
    chip : float, optional
        Keeper reward as a fraction of ``tab`` (ETH-B: 0.1 %).
    chop : float, optional
        Liquidation penalty (ETH-B: 13 %).
    hole_usd : float, optional
        Per-collateral cap on ``dirt`` (ETH-B 2021: 15 M).
    global_hole_usd : float, optional
        Global cap ``Hole`` (2021: 100 M); with one book it caps the same ``dirt``.
    dust_usd : float, optional
        Minimum vault debt (ETH-B Apr–Jul 2021: 15,000 DAI, from the data mirror's parameter
        history).
    taker_margin : float, optional
        Discount to market takers require (gas, DEX slippage); assumption 1 %.
    taker_capacity_usd : float, optional
        USD takers pay per step across auctions (default unlimited).
    """

    name: ClassVar[str] = "dutch_auction"
    buf: float = 1.20
    curve: Literal["stairstep", "linear"] = "stairstep"
    cut: float = 0.99
    step_seconds: float = 60.0
    tau_seconds: float = 5_400.0
    tail_seconds: float = 5_400.0
    cusp: float = 0.40
    tip_usd: float = 300.0
    chip: float = 0.001
    chop: float = 0.13
    hole_usd: float = 15e6
    global_hole_usd: float = 100e6
    dust_usd: float = 15_000.0
    taker_margin: float = 0.01
    taker_capacity_usd: float = math.inf

    def __post_init__(self) -> None:
        if self.curve not in ("stairstep", "linear"):
            raise PolicyConfigError(
                f"dutch_auction.curve={self.curve!r}; give 'stairstep' or 'linear'"
            )
        check_positive("dutch_auction", "buf", self.buf)
        check_fraction("dutch_auction", "cut", self.cut, low=1e-12)
        check_fraction("dutch_auction", "cusp", self.cusp)
        check_fraction("dutch_auction", "chip", self.chip)
        check_fraction("dutch_auction", "chop", self.chop)
        check_fraction("dutch_auction", "taker_margin", self.taker_margin, high=0.999)
        for name in ("step_seconds", "tau_seconds", "tail_seconds", "hole_usd", "global_hole_usd"):
            check_positive("dutch_auction", name, getattr(self, name))
        for name in ("tip_usd", "dust_usd", "taker_capacity_usd"):
            check_positive("dutch_auction", name, getattr(self, name), allow_zero=True)

    def start(self, env: Env) -> Runtime:
        """Create the run state."""
        return _AuctionRuntime(self, env)


class _Cohort:
    """Auctions started in the same round: same ``top`` and start, hence same price path."""

    __slots__ = ("pos", "lot", "tab", "due", "top", "t0", "head", "n", "price")

    def __init__(
        self,
        pos: np.ndarray,
        lot: np.ndarray,
        tab: np.ndarray,
        due: np.ndarray,
        top: float,
        t0: float,
    ) -> None:
        self.pos = pos
        self.lot = lot
        self.tab = tab
        self.due = due
        self.top = top
        self.t0 = t0  # (re)start time in seconds since the path's start
        self.head = 0  # members before head are finished
        self.n = int(pos.size)
        self.price = top  # auction price at the end of the current step


class _AuctionRuntime(Runtime):
    def __init__(self, cfg: DutchAuction, env: Env) -> None:
        self.cfg = cfg
        self.ledger = env.ledger
        self.pool = env.pool
        self.dt = env.step_seconds
        self.cap = min(cfg.hole_usd, cfg.global_hole_usd)
        self.dirt = 0.0
        self.cohorts: list[_Cohort] = []
        self.cap_left = cfg.taker_capacity_usd
        self.one_chop = 1.0 + cfg.chop
        self.chost = cfg.dust_usd * self.one_chop
        self.p_last: float | None = None  # market price of the last round seen

    def needs_step(self, t: int) -> bool:
        return bool(self.cohorts)

    # ------------------------------------------------------------------ auction clock
    def _stair_cusp(self, top: float) -> float:
        """First stair ``k`` with ``top · cut^k < cusp · top`` (``inf``: never)."""
        cfg = self.cfg
        if cfg.cusp <= 0 or cfg.cut >= 1.0:
            return math.inf
        k = max(0, math.floor(math.log(cfg.cusp) / math.log(cfg.cut)))
        lim = cfg.cusp * top
        while k > 0 and top * cfg.cut ** (k - 1) < lim:
            k -= 1
        while not top * cfg.cut**k < lim:
            k += 1
        return float(k)

    def _price_at(self, co: _Cohort, e: float) -> float:
        cfg = self.cfg
        if cfg.curve == "stairstep":
            return co.top * cfg.cut ** math.floor(e / cfg.step_seconds)
        return co.top * (1.0 - e / cfg.tau_seconds) if e < cfg.tau_seconds else 0.0

    def _advance(
        self, co: _Cohort, ta: float, tb: float, p0: float, p1: float
    ) -> tuple[float, float, float] | None:
        """Run an auction's clock over ``(ta, tb]`` (seconds) against the market.

        The market price is interpolated linearly from ``p0`` at ``ta`` to ``p1`` at ``tb``.
        Resets (tail, cusp) happen at the moment their condition first holds, at ``buf ×`` the
        market price then. Returns the first take ``(time, auction price, market price)``, where
        the auction price reaches ``market · (1 − taker_margin)``, or ``None``.
        """
        cfg = self.cfg
        dt = tb - ta
        kmarg = 1.0 - cfg.taker_margin

        def market(time: float) -> float:
            w = (time - ta) / dt if dt > 0 else 1.0
            return p0 * (1.0 - w) + p1 * w

        lo = ta
        while True:
            e0 = lo - co.t0
            e1 = tb - co.t0
            if cfg.curve == "stairstep":
                k_cusp = self._stair_cusp(co.top)
                redo_cusp = k_cusp * cfg.step_seconds  # closed: the price is below from here
                open_redo = min(cfg.tail_seconds, math.inf)
            else:
                k_cusp = math.inf
                redo_cusp = math.inf
                open_redo = min(cfg.tail_seconds, cfg.tau_seconds * (1.0 - cfg.cusp))
            hit = self._first_take(co, e0, min(e1, open_redo), k_cusp, market, kmarg)
            if hit is not None:
                e, price = hit
                time = co.t0 + e
                return time, price, market(time)
            # the first reset in this interval, if any
            r_open = open_redo if e0 <= open_redo < e1 else math.inf
            r_closed = redo_cusp if e0 < redo_cusp <= e1 else math.inf
            e_r = min(r_open, r_closed)
            if math.isinf(e_r):
                co.price = self._price_at(co, e1)
                return None
            time = co.t0 + e_r
            self._redo(co, time, market(time))
            lo = time

    def _first_take(
        self,
        co: _Cohort,
        e0: float,
        u: float,
        k_cusp: float,
        market: Callable[[float], float],
        kmarg: float,
    ) -> tuple[float, float] | None:
        """First elapsed ``e`` in ``(e0, u]`` with ``price(e) <= kmarg · market``.

        Returns ``(e, price(e))`` or ``None``; stairs from ``k_cusp`` on are excluded (reset).
        """
        if u < e0:
            return None
        cfg = self.cfg
        t0 = co.t0
        if cfg.curve == "stairstep":
            s = cfg.step_seconds
            k_lo = math.floor(e0 / s)
            k_hi = math.floor(u / s)
            if k_hi >= k_cusp:
                k_hi = int(k_cusp) - 1
            for k in range(k_lo, k_hi + 1):
                a = max(e0, k * s)
                b = min(u, (k + 1) * s)
                price = co.top * cfg.cut**k
                target = price / kmarg
                m_a = market(t0 + a)
                if m_a >= target:
                    return a, price
                m_b = market(t0 + b)
                if m_b >= target:
                    return a + (b - a) * (target - m_a) / (m_b - m_a), price
            return None
        tau = cfg.tau_seconds
        top = co.top

        def gap(e: float) -> float:
            return (top * (1.0 - e / tau) if e < tau else 0.0) - kmarg * market(t0 + e)

        g0 = gap(e0)
        if g0 <= 0:
            return e0, self._price_at(co, e0)
        b = min(u, tau)
        g1 = gap(b) if b < tau else -kmarg * market(t0 + b)
        if u >= tau and g1 > 0:  # the price reached 0 at tau
            g1 = -kmarg * market(t0 + tau)
        if g1 > 0:
            return None
        e = e0 + (b - e0) * g0 / (g0 - g1)
        return e, self._price_at(co, e)

    def round(self, t: int, r: int, p: float) -> tuple[int, float]:
        acted = 0
        sold = 0.0
        if self.cohorts:
            if r == 0:  # the step's interval: resets and takes where the curve meets the market
                self.cap_left = self.cfg.taker_capacity_usd
                tb = t * self.dt
                ta = tb - self.dt
                p0 = self.p_last if self.p_last is not None else p
                events = []
                for k, co in enumerate(self.cohorts):
                    hit = self._advance(co, ta, tb, p0, p)
                    if hit is not None:
                        events.append((hit[0], k, hit[1], hit[2]))
                events.sort(key=lambda ev: (ev[0], ev[1]))
                for _, k, price, m in events:
                    if self.cap_left <= 0:
                        break
                    co = self.cohorts[k]
                    co.price = price
                    n_taken, usd = self._take(co, price, m)
                    acted += n_taken
                    sold += usd
            else:  # auctions barked earlier in this step, at the round's market price
                limit = p * (1.0 - self.cfg.taker_margin)
                for co in self.cohorts:
                    if self.cap_left <= 0:
                        break
                    if co.price > limit:
                        continue
                    n_taken, usd = self._take(co, co.price, p)
                    acted += n_taken
                    sold += usd
            if acted:
                self.cohorts = [co for co in self.cohorts if co.head < co.n]
        room = self.cap - self.dirt
        if room > 1e-9 * self.cap:
            idx = self.pool.pop(p, room / self.one_chop)
            if idx.size:
                acted += self._bark(idx, p, t, room)
        self.p_last = p
        return acted, sold

    # ------------------------------------------------------------------ dog.bark
    def _bark(self, idx: np.ndarray, p: float, t: int, room: float) -> int:
        cfg = self.cfg
        led = self.ledger
        limit = room / self.one_chop
        n = int(idx.size)
        part: tuple[int, float, float] | None = None  # (position, collateral, debt)
        cum = np.cumsum(led.d[led.sel(idx)])
        if cum[-1] > limit:  # the last candidate does not fit whole
            i_last = int(idx[-1])
            d_last = float(led.d[i_last])
            avail = limit - (float(cum[-2]) if n > 1 else 0.0)
            if d_last - avail < cfg.dust_usd:
                pass  # remainder would be dust: bark it whole (exceeds the hole)
            else:
                idx = idx[:-1]
                n -= 1
                if avail >= cfg.dust_usd:
                    part = (i_last, float(led.c[i_last]) * (avail / d_last), avail)
                else:
                    self.pool.push(np.array([i_last], dtype=np.int64))
        if n:
            coll, debt = led.remove_whole(idx, p)
        else:
            coll = debt = np.empty(0)
        if part is not None:
            i_last, c_part, d_part = part
            led.remove_part(i_last, c_part, d_part, p)
            self.pool.push(np.array([i_last], dtype=np.int64))
            idx = np.append(idx, i_last)
            coll = np.append(coll, c_part)
            debt = np.append(debt, d_part)
            n += 1
        if n == 0:
            return 0
        tab = debt * self.one_chop
        tab_total = float(tab.sum())
        self.dirt += tab_total
        self.cohorts.append(_Cohort(idx, coll, tab, debt.copy(), cfg.buf * p, t * self.dt))
        coin = n * cfg.tip_usd + cfg.chip * tab_total
        led.liquidator_profit_usd += coin
        led.protocol_revenue_usd -= coin
        return n

    # ------------------------------------------------------------------ clip.redo
    def _redo(self, co: _Cohort, time: float, p: float) -> None:
        cfg = self.cfg
        co.top = cfg.buf * p
        co.t0 = time
        if cfg.tip_usd > 0 or cfg.chip > 0:
            h = co.head
            tab = co.tab[h:]
            ok = (tab >= self.chost) & (co.lot[h:] * p >= self.chost)
            coin = int(ok.sum()) * cfg.tip_usd + cfg.chip * float(tab[ok].sum())
            self.ledger.liquidator_profit_usd += coin
            self.ledger.protocol_revenue_usd -= coin

    # ------------------------------------------------------------------ clip.take
    def _take(self, co: _Cohort, price: float, p: float) -> tuple[int, float]:
        led = self.ledger
        h = co.head
        lot = co.lot[h:]
        tab = co.tab[h:]
        due = co.due[h:]
        if price > 0:
            covered = tab <= lot * price
            units = np.where(covered, tab / price, lot)
            owe = np.where(covered, tab, lot * price)
        else:
            covered = np.zeros(lot.size, dtype=bool)
            units = lot.copy()
            owe = np.zeros(lot.size)
        n = int(lot.size)
        nf = n
        budget = 0.0
        if not math.isinf(self.cap_left):
            cum = np.cumsum(owe)
            nf = int(np.searchsorted(cum, self.cap_left, side="right"))
            if nf < n:
                budget = self.cap_left - (float(cum[nf - 1]) if nf else 0.0)
        sold = 0.0
        if nf:
            u, ow, du, cv, lt_ = units[:nf], owe[:nf], due[:nf], covered[:nf], lot[:nf]
            rep = np.minimum(ow, du)
            u_tot = float(u.sum())
            ow_tot = float(ow.sum())
            rep_tot = float(rep.sum())
            bad_tot = float(np.where(cv, 0.0, du - rep).sum())
            ret_tot = float(np.where(cv, lt_ - u, 0.0).sum())
            self.dirt -= float(tab[:nf].sum())
            usd = led.sell(u_tot, p)
            led.repay(rep_tot)
            led.write_off(bad_tot)
            led.return_collateral(ret_tot)
            led.liquidator_profit_usd += usd - ow_tot
            led.protocol_revenue_usd += ow_tot - rep_tot
            led.borrower_loss_usd += usd - rep_tot
            self.cap_left -= ow_tot
            sold += usd
            co.head += nf
        if budget > 0 and price > 0:
            j = co.head
            u1 = budget / price
            rep1 = min(budget, float(co.due[j]))
            co.lot[j] -= u1
            co.tab[j] -= budget
            co.due[j] -= rep1
            self.dirt -= budget
            usd = led.sell(u1, p)
            led.repay(rep1)
            led.liquidator_profit_usd += usd - budget
            led.protocol_revenue_usd += budget - rep1
            led.borrower_loss_usd += usd - rep1
            self.cap_left = 0.0
            sold += usd
            nf += 1
        return nf, sold

    def finish(self, p_final: float) -> tuple[float, float]:
        coll = sum(float(co.lot[co.head :].sum()) for co in self.cohorts)
        debt = sum(float(co.due[co.head :].sum()) for co in self.cohorts)
        return coll, debt

    def in_flight_shortfall(self, p_final: float) -> float:
        total = 0.0
        for co in self.cohorts:
            h = co.head
            gap = co.due[h:] - co.lot[h:] * p_final
            total += float(gap[gap > 0].sum())
        return total
