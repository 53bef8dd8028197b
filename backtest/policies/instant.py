"""``instant``: the Aave / Compound fixed-bonus liquidation, sold at market at once (baseline)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from backtest.book import liquidation_price
from backtest.policies.base import (
    BoundRuntime,
    Env,
    Policy,
    Runtime,
    check_bonus,
    check_fraction,
    sell_to_market,
)

__all__ = ["Instant"]


@dataclass(frozen=True, kw_only=True)
class Instant(Policy):
    """Fixed-bonus liquidation (Aave v2/v3, Compound v2), collateral sold at market at once.

    Every position with health < 1 at the round's price ``p`` is liquidated in that round: the
    liquidator repays ``k·d`` (``k`` the close factor) and seizes
    ``min(c, k·d·(1+bonus)/p)`` units, which it sells at ``p`` in the same round. Debt not
    covered by ``seized·p/(1+bonus)`` when the collateral runs out is bad debt. A partially
    liquidated position stays open and is liquidated again in a later round if still unhealthy.

    Parameters
    ----------
    close_factor : float, optional
        Fraction of the debt a liquidator may repay (default 1.0; Aave v2/v3 use 0.5).
    full_close_below_hf : float, optional
        Health factor below which the close factor is 1 (Aave v3: 0.95). Default 0: never.
    protocol_fee : float, optional
        Share of the bonus kept by the protocol (Aave v3's liquidation protocol fee); default 0.
    bonus : float, optional
        Overrides the book's per-position bonus when given.
    """

    name: ClassVar[str] = "instant"
    close_factor: float = 1.0
    full_close_below_hf: float = 0.0
    protocol_fee: float = 0.0
    bonus: float | None = None

    def __post_init__(self) -> None:
        check_fraction("instant", "close_factor", self.close_factor, low=1e-12)
        check_fraction("instant", "protocol_fee", self.protocol_fee)
        check_fraction("instant", "full_close_below_hf", self.full_close_below_hf, high=1.0)
        check_bonus("instant", self.bonus)

    def start(self, env: Env) -> Runtime:
        """Create the run state."""
        return _InstantRuntime(self, env)


class _InstantRuntime(BoundRuntime):
    def __init__(self, cfg: Instant, env: Env) -> None:
        super().__init__(cfg, env)
        self.partial = cfg.close_factor < 1.0

    def round(self, t: int, r: int, p: float) -> tuple[int, float]:
        idx = self.pool.pop(p)
        if idx.size == 0:
            return 0, 0.0
        return int(idx.size), self.liquidate(idx, p)

    def liquidate(self, idx: np.ndarray, p: float) -> float:
        """Liquidate ``idx`` at ``p``, sell at market, push back what stays open."""
        led = self.ledger
        cfg = self.cfg
        if not self.partial:
            liq = led.liquidate(idx, p, None, cfg.bonus)
            return sell_to_market(led, liq, p, cfg.protocol_fee)
        d = led.d[idx]
        k = np.full(idx.size, cfg.close_factor)
        if cfg.full_close_below_hf > 0:
            hf = p / liquidation_price(led.c[idx], d, led.lt[idx])
            k[hf < cfg.full_close_below_hf] = 1.0
        liq = led.liquidate(idx, p, k * d, cfg.bonus)
        sold = sell_to_market(led, liq, p, cfg.protocol_fee)
        self.pool.push(liq.still_open())
        return sold
