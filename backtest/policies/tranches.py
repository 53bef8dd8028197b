"""Runtimes that sell seized collateral in tranches over later steps (``batch``, ``schedule``)."""

from __future__ import annotations

from typing import Any

from backtest.policies.base import BoundRuntime, Env

__all__ = ["TrancheRuntime"]


class TrancheRuntime(BoundRuntime):
    """A bound runtime that sells seized collateral in tranches over later steps.

    ``tranches`` holds ``[units_left, basis_left, counter]`` per liquidation batch (``basis``:
    the debt repaid for the units, in USD). At the first round of a step :meth:`sell_scheduled`
    sells every tranche's next part (:meth:`tranche_sale` says how much) at market; proceeds
    minus the basis sold are protocol revenue. :meth:`finish` marks the units left to the final
    price.
    """

    def __init__(self, cfg: Any, env: Env) -> None:
        super().__init__(cfg, env)
        self.tranches: list[list[float]] = []

    def needs_step(self, t: int) -> bool:
        """True while a tranche is left to sell."""
        return bool(self.tranches)

    def tranche_sale(self, units: float, basis: float, counter: float) -> tuple[float, float]:
        """Units and basis of a tranche to sell now (subclasses define the schedule)."""
        raise NotImplementedError  # pragma: no cover

    def next_counter(self, counter: float) -> float:
        """A tranche's counter after a sale (subclasses define it)."""
        raise NotImplementedError  # pragma: no cover

    def tranche_done(self, tr: list[float]) -> bool:
        """True when a tranche has made its last sale (subclasses define it)."""
        raise NotImplementedError  # pragma: no cover

    def sell_scheduled(self, p: float) -> float:
        """Sell the due part of every tranche at ``p``; return the notional sold (USD)."""
        led = self.ledger
        sold = 0.0
        for tr in self.tranches:
            units, basis, counter = tr
            u, cost = self.tranche_sale(units, basis, counter)
            usd = led.sell(u, p)
            led.protocol_revenue_usd += usd - cost
            sold += usd
            tr[0] = units - u
            tr[1] = basis - cost
            tr[2] = self.next_counter(counter)
        self.tranches = [tr for tr in self.tranches if not self.tranche_done(tr)]
        return sold

    def finish(self, p_final: float) -> tuple[float, float]:
        """Mark the unsold units to ``p_final``; return ``(units, 0.0)`` in flight."""
        units = sum(tr[0] for tr in self.tranches)
        basis = sum(tr[1] for tr in self.tranches)
        self.ledger.protocol_revenue_usd += units * p_final - basis
        return units, 0.0
