"""``staged``: partial liquidations that restore health to a target (Euler v1 style)."""

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
    check_int,
    check_positive,
    clamped_field,
    sell_to_market,
)

__all__ = ["Staged", "repay_to_target"]


def repay_to_target(
    c: np.ndarray, d: np.ndarray, p: float, lt: np.ndarray, bonus, target: float
) -> np.ndarray:
    """Debt to repay so that health ``(c − r(1+b)/p)·p·LT / (d − r)`` equals ``target``.

    ``r = (target·d − c·p·LT) / (target − (1+b)·LT)``, clipped to ``[0, d]``. When the
    denominator is not positive, or the position's health is below ``LT·(1+b)`` (a partial
    liquidation would lower its health), the whole debt is repaid.
    """
    denom = target - (1.0 + bonus) * lt
    ok = denom > 0
    safe = np.where(ok, denom, 1.0)
    r = (target * d - c * p * lt) / safe
    return np.where(ok, np.clip(r, 0.0, d), d)


@dataclass(frozen=True, kw_only=True)
class Staged(Policy):
    """Partial liquidations in stages, each restoring health to ``target_health``.

    An unhealthy position is liquidated only as much as needed to bring its health back to
    ``target_health`` at the round's price (:func:`repay_to_target`); if it cannot be (health
    below ``LT·(1+bonus)``) it is closed whole. Seized collateral is sold at market at once. A
    partially liquidated position cannot be liquidated again for ``min_interval_steps`` steps
    (0: already in the next round).

    Parameters
    ----------
    target_health : float, optional
        Health after each stage (Euler v1: 1.25).
    min_interval_steps : int, optional
        Steps between two stages of one position (assumption: 5).
    bonus : float, optional
        Fixed bonus overriding the book's.
    euler_discount : bool, optional
        Use Euler v1's discount ``min(0.02 + (1 − HF), max_discount)`` instead (the booster of
        up to 2.5 % is not modelled).
    max_discount : float, optional
        Cap of the Euler discount (Euler v1: 20 %).
    clamped_to_bar : tuple of str, optional
        Set by :func:`~backtest.build_policy` (see :func:`~backtest.policies.base.clamped_field`).
    """

    name: ClassVar[str] = "staged"
    target_health: float = 1.25
    min_interval_steps: int = 5
    bonus: float | None = None
    euler_discount: bool = False
    max_discount: float = 0.20
    clamped_to_bar: tuple[str, ...] = clamped_field()

    def __post_init__(self) -> None:
        check_positive("staged", "target_health", self.target_health - 1.0)
        check_int("staged", "min_interval_steps", self.min_interval_steps, low=0)
        check_fraction("staged", "max_discount", self.max_discount, high=0.999)
        check_bonus("staged", self.bonus)

    def start(self, env: Env) -> Runtime:
        """Create the run state."""
        return _StagedRuntime(self, env)


class _StagedRuntime(BoundRuntime):
    def __init__(self, cfg: Staged, env: Env) -> None:
        super().__init__(cfg, env)
        self.wake: dict[int, list[np.ndarray]] = {}

    def needs_step(self, t: int) -> bool:
        return t in self.wake

    def round(self, t: int, r: int, p: float) -> tuple[int, float]:
        cfg = self.cfg
        led = self.ledger
        if r == 0 and t in self.wake:
            back = self.wake.pop(t)
            self.pool.push(np.concatenate(back) if len(back) > 1 else back[0])
        idx = self.pool.pop(p)
        if idx.size == 0:
            return 0, 0.0
        c, d, lt = led.c[idx], led.d[idx], led.lt[idx]
        if cfg.euler_discount:
            hf = p / liquidation_price(c, d, lt)
            bonus = np.minimum(0.02 + (1.0 - hf), cfg.max_discount)
        elif cfg.bonus is not None:
            bonus = cfg.bonus
        else:
            bonus = led.bonus_of(idx)
        rep = repay_to_target(c, d, p, lt, bonus, cfg.target_health)
        liq = led.liquidate(idx, p, rep, bonus)
        sold = sell_to_market(led, liq, p)
        still = liq.still_open()
        if still.size:
            if cfg.min_interval_steps == 0:
                self.pool.push(still)
            else:
                self.wake.setdefault(t + int(cfg.min_interval_steps), []).append(still)
        return int(idx.size), sold
