"""``batch``: liquidations clear every B steps and are sold over the next B steps."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from backtest.policies.base import (
    Env,
    Policy,
    Runtime,
    check_fraction,
    check_int,
    check_positive,
    clamped_field,
)

__all__ = ["Batch"]


@dataclass(frozen=True, kw_only=True)
class Batch(Policy):
    """Batch liquidations: clear every ``interval_steps``, sell over the next ``interval_steps``.

    Liquidations happen only at clearing steps (``(t + 1) % interval_steps == 0``, the last step
    of each window): every position unhealthy at the round's price is liquidated as in
    :class:`~backtest.policies.instant.Instant` (close factor 1, the book's bonus) with the
    protocol as liquidator. A position that was unhealthy during the window but has recovered at
    the clearing step is left alone. The seized collateral of a clearing step is sold in equal
    parts at the first round of each of the next ``interval_steps`` steps (a TWAP). Sale
    proceeds minus the debt repaid (pro rata) are protocol revenue; unsold inventory is marked to
    the final market price at the end.

    Parameters
    ----------
    interval_steps : int, optional
        ``B``: clearing period and selling horizon (assumption: 10 steps).
    bonus : float, optional
        Overrides the book's bonus.
    sale_share : float, optional
        Share of the queued debt liquidated (and put up for sale) per clearing, in ``(0, 1]``;
        ``None``: all of it. Omitted from :meth:`params` when ``None`` (run ids unchanged).
    clamped_to_bar : tuple of str, optional
        Set by :func:`~backtest.build_policy`: step parameters whose time-based default was
        shorter than one bar of the path and was clamped to one step (not part of
        ``params()``).
    """

    name: ClassVar[str] = "batch"
    interval_steps: int = 10
    bonus: float | None = None
    sale_share: float | None = None
    clamped_to_bar: tuple[str, ...] = clamped_field()

    def __post_init__(self) -> None:
        check_int("batch", "interval_steps", self.interval_steps, low=1)
        if self.bonus is not None:
            check_fraction("batch", "bonus", self.bonus, high=0.999)
        if self.sale_share is not None:
            check_fraction("batch", "sale_share", self.sale_share)
            check_positive("batch", "sale_share", self.sale_share)

    def params(self) -> dict[str, Any]:
        """Parameters with the policy name; ``sale_share`` only when set."""
        out = super().params()
        if self.sale_share is None:
            out.pop("sale_share")
        return out

    def start(self, env: Env) -> Runtime:
        """Create the run state."""
        return _BatchRuntime(self, env)


class _BatchRuntime(Runtime):
    def __init__(self, cfg: Batch, env: Env) -> None:
        self.cfg = cfg
        self.b = int(cfg.interval_steps)
        self.ledger = env.ledger
        self.pool = env.pool
        self.tranches: list[list[float]] = []  # [units_left, steps_left, basis_left]
        share = cfg.sale_share
        self.share = None if share is None or share >= 1.0 else float(share)
        self.budget_step = -1
        self.budget = math.inf

    def _clearing(self, t: int) -> bool:
        return (t + 1) % self.b == 0

    def threshold(self, t: int, p: float) -> float:
        return p if self._clearing(t) else math.inf

    def needs_step(self, t: int) -> bool:
        return bool(self.tranches)

    def _sell_scheduled(self, p: float) -> float:
        led = self.ledger
        sold = 0.0
        for tr in self.tranches:
            units, steps, basis = tr
            if steps <= 1:
                u, cost = units, basis
            else:
                u = units / steps
                cost = basis / steps
            usd = led.sell(u, p)
            led.protocol_revenue_usd += usd - cost
            sold += usd
            tr[0] = units - u
            tr[1] = steps - 1
            tr[2] = basis - cost
        self.tranches = [tr for tr in self.tranches if tr[1] > 0]
        return sold

    def round(self, t: int, r: int, p: float) -> tuple[int, float]:
        sold = self._sell_scheduled(p) if r == 0 and self.tranches else 0.0
        if not self._clearing(t):
            return 0, sold
        idx = self.pool.pop(p) if self.share is None else self._pop_share(t, p)
        if idx.size == 0:
            return 0, sold
        led = self.ledger
        liq = led.liquidate(idx, p, None, self.cfg.bonus)
        self.tranches.append([liq.seized_total, float(self.b), liq.repaid_total])
        return int(idx.size), sold

    def _pop_share(self, t: int, p: float) -> np.ndarray:
        """Positions of this clearing within ``sale_share`` of the step's first queue."""
        if self.budget_step != t:
            queue = self.pool.pop(p)
            if queue.size == 0:
                return queue
            self.pool.push(queue)
            self.budget_step = t
            self.budget = float(self.share) * float(self.ledger.d[queue].sum())
        if self.budget <= 0:
            return np.empty(0, dtype=np.int64)
        idx = self.pool.pop(p, self.budget)
        self.budget -= float(self.ledger.d[idx].sum())
        return idx

    def finish(self, p_final: float) -> tuple[float, float]:
        units = sum(tr[0] for tr in self.tranches)
        basis = sum(tr[2] for tr in self.tranches)
        self.ledger.protocol_revenue_usd += units * p_final - basis
        return units, 0.0
