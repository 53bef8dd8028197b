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
    check_bonus,
    check_fraction,
    check_int,
    check_positive,
    clamped_field,
)
from backtest.policies.tranches import TrancheRuntime

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
        Set by :func:`~backtest.build_policy` (see :func:`~backtest.policies.base.clamped_field`).
    """

    name: ClassVar[str] = "batch"
    interval_steps: int = 10
    bonus: float | None = None
    sale_share: float | None = None
    clamped_to_bar: tuple[str, ...] = clamped_field()

    def __post_init__(self) -> None:
        check_int("batch", "interval_steps", self.interval_steps, low=1)
        check_bonus("batch", self.bonus)
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


class _BatchRuntime(TrancheRuntime):
    # tranches: [units_left, basis_left, steps_left]
    def __init__(self, cfg: Batch, env: Env) -> None:
        super().__init__(cfg, env)
        self.b = int(cfg.interval_steps)
        share = cfg.sale_share
        self.share = None if share is None or share >= 1.0 else float(share)
        self.budget_step = -1
        self.budget = math.inf

    def _clearing(self, t: int) -> bool:
        return (t + 1) % self.b == 0

    def threshold(self, t: int, p: float) -> float:
        return p if self._clearing(t) else math.inf

    def tranche_sale(self, units: float, basis: float, counter: float) -> tuple[float, float]:
        if counter <= 1:
            return units, basis
        return units / counter, basis / counter

    def next_counter(self, counter: float) -> float:
        return counter - 1

    def tranche_done(self, tr: list[float]) -> bool:
        return not tr[2] > 0

    def round(self, t: int, r: int, p: float) -> tuple[int, float]:
        sold = self.sell_scheduled(p) if r == 0 and self.tranches else 0.0
        if not self._clearing(t):
            return 0, sold
        idx = self.pool.pop(p) if self.share is None else self._pop_share(t, p)
        if idx.size == 0:
            return 0, sold
        led = self.ledger
        liq = led.liquidate(idx, p, None, self.cfg.bonus)
        self.tranches.append([liq.seized_total, liq.repaid_total, float(self.b)])
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
