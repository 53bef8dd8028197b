"""``liquidity_buffer``: a backstop pool absorbs liquidations and unwinds them slowly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from backtest.policies.base import Env, Policy, Runtime, check_fraction, check_positive

__all__ = ["LiquidityBuffer"]


@dataclass(frozen=True, kw_only=True)
class LiquidityBuffer(Policy):
    """A backstop (Liquity stability pool, insurance fund) that absorbs liquidations.

    Liquidations are computed as in :class:`~backtest.policies.instant.Instant` (close factor 1)
    with the buffer as liquidator: it repays the debt out of its cash and receives the seized
    collateral at the ``discount`` — no market sale. Positions are absorbed whole, in priority
    order, while the buffer's cash covers their repayment; the rest are liquidated by outside
    liquidators who sell at market at once. At the first round of every step the buffer sells
    ``min(inventory, unwind_usd_per_step / p)`` units at market; the proceeds refill its cash.
    Its P&L is protocol revenue: realised on every sale against the average cost of the
    inventory, and the remaining inventory is marked to the final market price at the end.

    Parameters
    ----------
    capacity_usd : float, optional
        Starting cash of the buffer (assumption: 10 % of the book's debt when not given).
    discount : float, optional
        Discount at which it receives collateral (default: the book's bonus; Liquity v1's 110 %
        minimum collateral ratio caps its gain near 10 %).
    unwind_usd_per_step : float, optional
        USD of inventory sold per step (assumption: ``capacity / 120``, a full buffer in 2 h).
    """

    name: ClassVar[str] = "liquidity_buffer"
    capacity_usd: float | None = None
    discount: float | None = None
    unwind_usd_per_step: float | None = None

    def __post_init__(self) -> None:
        if self.capacity_usd is not None:
            check_positive("liquidity_buffer", "capacity_usd", self.capacity_usd, allow_zero=True)
        if self.discount is not None:
            check_fraction("liquidity_buffer", "discount", self.discount, high=0.999)
        if self.unwind_usd_per_step is not None:
            check_positive("liquidity_buffer", "unwind_usd_per_step", self.unwind_usd_per_step)

    def start(self, env: Env) -> Runtime:
        """Create the run state."""
        return _BufferRuntime(self, env)


class _BufferRuntime(Runtime):
    def __init__(self, cfg: LiquidityBuffer, env: Env) -> None:
        self.cfg = cfg
        self.ledger = env.ledger
        self.pool = env.pool
        cap = cfg.capacity_usd if cfg.capacity_usd is not None else 0.10 * env.total_debt
        self.cash = cap
        rate = cfg.unwind_usd_per_step
        self.rate = rate if rate is not None else max(cap, 1.0) / 120.0
        self.inv = 0.0
        self.basis = 0.0

    def needs_step(self, t: int) -> bool:
        return self.inv > 0

    def _unwind(self, p: float) -> float:
        led = self.ledger
        u = min(self.inv, self.rate / p)
        last = u >= self.inv
        cost = self.basis if last else self.basis * (u / self.inv)
        usd = led.sell(u, p)
        led.protocol_revenue_usd += usd - cost
        self.cash += usd
        self.inv = 0.0 if last else self.inv - u
        self.basis = 0.0 if last else self.basis - cost
        return usd

    def round(self, t: int, r: int, p: float) -> tuple[int, float]:
        led = self.ledger
        sold = 0.0
        if r == 0 and self.inv > 0:
            sold += self._unwind(p)
        idx = self.pool.pop(p)
        if idx.size == 0:
            return 0, sold
        liq = led.liquidate(idx, p, None, self.cfg.discount, keep_arrays=True)
        assert liq.repaid is not None and liq.seized is not None
        cum = np.cumsum(liq.repaid)
        na = int(np.searchsorted(cum, self.cash, side="right"))
        if na:
            units = float(liq.seized[:na].sum())
            cost = float(cum[na - 1])
            self.inv += units
            self.basis += cost
            self.cash -= cost
        if na < idx.size:
            units = float(liq.seized[na:].sum())
            repaid = float(liq.repaid[na:].sum())
            usd = led.sell(units, p)
            led.liquidator_profit_usd += usd - repaid
            sold += usd
        return int(idx.size), sold

    def finish(self, p_final: float) -> tuple[float, float]:
        self.ledger.protocol_revenue_usd += self.inv * p_final - self.basis
        return self.inv, 0.0
