"""Mutable per-run state of the positions and the money flows (internal to the engine).

Positions live in the engine's canonical order (sorted by liquidation price, descending). The
ledger owns the current collateral and debt of every position and accumulates, per step, what
the policies report: liquidations, sales, repayments, bad debt and who gained or lost what.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["STEP_FIELDS", "Ledger", "Liquidation"]

#: Per-step money/count fields accumulated by the ledger, in frame order.
STEP_FIELDS = (
    "n_liquidations",
    "liquidated_usd",
    "seized_usd",
    "sold_usd",
    "repaid_usd",
    "bad_debt_usd",
    "borrower_loss_usd",
    "liquidator_profit_usd",
    "protocol_revenue_usd",
)


@dataclass(slots=True)
class Liquidation:
    """Outcome of :meth:`Ledger.liquidate` for a batch of positions (in candidate order).

    ``closed`` is ``None`` when every position was closed; ``seized`` and ``repaid`` are only
    filled with ``keep_arrays=True``.
    """

    idx: np.ndarray
    closed: np.ndarray | None
    seized_total: float
    repaid_total: float
    seized: np.ndarray | None = None
    repaid: np.ndarray | None = None

    def still_open(self) -> np.ndarray:
        """Positions that stay open (partially liquidated)."""
        if self.closed is None:
            return self.idx[:0]
        return self.idx[~self.closed]


class Ledger:
    """Current state of the positions plus step and run accumulators.

    Parameters
    ----------
    collateral, debt : numpy.ndarray
        Position arrays in canonical order (copied: the ledger mutates them).
    threshold, one_plus_bonus : numpy.ndarray
        Liquidation threshold and ``1 + bonus`` in canonical order (shared, read-only).
    arange : numpy.ndarray
        ``np.arange(n)``; index arrays that are contiguous views of it are handled as slices.
    """

    def __init__(
        self,
        collateral: np.ndarray,
        debt: np.ndarray,
        threshold: np.ndarray,
        one_plus_bonus: np.ndarray,
        arange: np.ndarray,
    ) -> None:
        self.c = np.array(collateral, dtype=np.float64, copy=True)
        self.d = np.array(debt, dtype=np.float64, copy=True)
        self.lt = threshold
        self.one_b = one_plus_bonus
        self.arange = arange
        self.n = int(self.d.size)
        self.c0_total = float(self.c.sum())
        self.d0_total = float(self.d.sum())
        #: Debt (USD) taken out of each position by liquidations, cumulated over the run.
        self.liq_debt = np.zeros(self.n)
        # run totals of the flows (for conservation)
        self.coll_removed = 0.0
        self.coll_sold = 0.0
        self.coll_returned = 0.0
        self.repaid_total = 0.0
        self.bad_total = 0.0
        #: Step id of the last liquidation of each position (for the cascade-depth rule).
        self.mark = np.full(self.n, -1, dtype=np.int64)
        self.step_id = 0
        #: Count of first liquidations of a position within its step, cumulated over the run.
        self.new_liquidations = 0
        self.reset_step()

    def sel(self, idx: np.ndarray) -> slice | np.ndarray:
        """A slice when ``idx`` is a contiguous ascending view of :attr:`arange`, else ``idx``."""
        if idx.base is self.arange and idx.size and idx.strides == self.arange.strides:
            start = int(idx[0])
            return slice(start, start + int(idx.size))
        return idx

    def bonus_of(self, idx: np.ndarray) -> np.ndarray:
        """Book bonus of positions ``idx``."""
        return self.one_b[self.sel(idx)] - 1.0

    # ------------------------------------------------------------------ step accumulators
    def reset_step(self) -> None:
        """Zero the per-step accumulators and start a new step for the cascade-depth marks."""
        self.step_id += 1
        self.n_liquidations = 0
        self.liquidated_usd = 0.0
        self.seized_usd = 0.0
        self.sold_usd = 0.0
        self.repaid_usd = 0.0
        self.bad_debt_usd = 0.0
        self.borrower_loss_usd = 0.0
        self.liquidator_profit_usd = 0.0
        self.protocol_revenue_usd = 0.0

    def step_values(self) -> tuple[float, ...]:
        """The per-step accumulators in :data:`STEP_FIELDS` order."""
        return (
            self.n_liquidations,
            self.liquidated_usd,
            self.seized_usd,
            self.sold_usd,
            self.repaid_usd,
            self.bad_debt_usd,
            self.borrower_loss_usd,
            self.liquidator_profit_usd,
            self.protocol_revenue_usd,
        )

    # ------------------------------------------------------------------ position changes
    def _mark(self, sel: slice | np.ndarray) -> None:
        """Count the positions ``sel`` not yet liquidated in this step and mark them."""
        m = self.mark[sel]
        new = int(np.count_nonzero(m != self.step_id))
        if new:
            self.mark[sel] = self.step_id
            self.new_liquidations += new

    def liquidate(
        self,
        idx: np.ndarray,
        p: float,
        repay: np.ndarray | None = None,
        bonus: np.ndarray | float | None = None,
        *,
        keep_arrays: bool = False,
    ) -> Liquidation:
        """Repay ``repay`` USD of each position and seize ``repay·(1+bonus)/p`` units.

        Seizure is capped at the position's collateral; a capped position is closed and the debt
        not covered by ``seized·p/(1+bonus)`` is written off as bad debt. A position whose debt
        is fully repaid is closed (left-over collateral stays with the borrower).

        Records: liquidation count, liquidated debt (repaid + written off), seized value at
        ``p``, repaid, bad debt and borrower loss ``seized·p − repaid``. Where the seized units
        go (market sale, buffer, queue) is up to the caller.

        Parameters
        ----------
        idx : numpy.ndarray
            Positions (canonical indices).
        p : float
            Price of the round (oracle = market).
        repay : numpy.ndarray, optional
            Debt each liquidator repays (USD), ``<= d``; default the whole debt.
        bonus : numpy.ndarray or float, optional
            Bonus fraction; default the book's.
        keep_arrays : bool, optional
            Return per-position ``seized`` and ``repaid`` arrays.

        Returns
        -------
        Liquidation
        """
        sel = self.sel(idx)
        c = self.c[sel]
        d = self.d[sel]
        one_b = self.one_b[sel] if bonus is None else 1.0 + bonus
        rep = d if repay is None else repay
        want = rep * one_b
        want /= p
        capped = want >= c
        seized = np.minimum(want, c, out=want)
        s_tot = float(seized.sum())
        if not capped.any():
            repaid = rep
            liq = rep
            closed = None if repay is None else repay >= d
            b_tot = 0.0
        else:
            cov = c * p
            cov /= one_b
            repaid = np.where(capped, cov, rep)
            bad = np.where(capped, d - repaid, 0.0)
            closed = capped if repay is None else capped | (repay >= d)
            b_tot = float(bad.sum())
            liq = repaid + bad
        r_tot = float(repaid.sum())
        out_seized = seized.copy() if keep_arrays else None
        out_repaid = np.array(repaid, copy=True) if keep_arrays else None
        self.liq_debt[sel] += liq
        self._mark(sel)
        if closed is None:
            self.d[sel] = 0.0
        else:
            self.d[sel] = np.where(closed, 0.0, d - repaid)
        self.c[sel] = c - seized
        self.n_liquidations += int(idx.size)
        self.liquidated_usd += r_tot if liq is repaid else float(liq.sum())
        self.seized_usd += p * s_tot
        self.repaid_usd += r_tot
        self.bad_debt_usd += b_tot
        self.borrower_loss_usd += p * s_tot - r_tot
        self.coll_removed += s_tot
        self.repaid_total += r_tot
        self.bad_total += b_tot
        return Liquidation(idx, closed, s_tot, r_tot, out_seized, out_repaid)

    def convert(self, idx: np.ndarray, units: np.ndarray, p: float) -> float:
        """Soft liquidation: move collateral between positions and the market at ``p``.

        ``units[i] > 0``: position ``i``'s collateral is sold to the market (arbitrageurs buy
        it from its bands); ``< 0``: collateral bought on the market back into the position.
        The debt is not touched (the debt asset the bands hold is the caller's, see
        :meth:`repay_from`). Moves the run totals of collateral removed and sold by the net
        units (both conservation identities keep holding) and the step's ``sold_usd`` by the
        units sold. Returns the USD sold (``Σ max(units, 0)·p``).
        """
        sel = self.sel(idx)
        self.c[sel] -= units
        net = float(units.sum())
        self.coll_removed += net
        self.coll_sold += net
        usd = float(units[units > 0].sum()) * p
        self.sold_usd += usd
        return usd

    def repay_from(self, idx: np.ndarray, amount: np.ndarray) -> np.ndarray:
        """Repay debt of positions ``idx`` out of funds they hold elsewhere (soft liquidation).

        Repays ``min(amount, d)`` of each; recorded as repaid and liquidated debt (one
        liquidation per position for the cascade-depth marks). Returns what was repaid.
        """
        sel = self.sel(idx)
        rep = np.minimum(amount, self.d[sel])
        self.d[sel] -= rep
        self.liq_debt[sel] += rep
        self._mark(sel)
        total = float(rep.sum())
        self.n_liquidations += int(np.count_nonzero(rep > 0))
        self.liquidated_usd += total
        self.repaid_usd += total
        self.repaid_total += total
        return rep

    def remove_whole(self, idx: np.ndarray, p: float) -> tuple[np.ndarray, np.ndarray]:
        """Move positions' whole collateral and debt into a liquidation process (auction bark).

        The debt is neither repaid nor bad yet — it is in flight. Returns copies of the
        collateral units and debt removed.
        """
        sel = self.sel(idx)
        coll = np.array(self.c[sel], copy=True)
        debt = np.array(self.d[sel], copy=True)
        self.c[sel] = 0.0
        self.d[sel] = 0.0
        self.liq_debt[sel] += debt
        self._mark(sel)
        self._record_removal(int(idx.size), float(coll.sum()), float(debt.sum()), p)
        return coll, debt

    def remove_part(self, i: int, coll: float, debt: float, p: float) -> None:
        """Move ``coll`` units and ``debt`` USD of position ``i`` into a liquidation process."""
        self.c[i] -= coll
        self.d[i] -= debt
        self.liq_debt[i] += debt
        if self.mark[i] != self.step_id:
            self.mark[i] = self.step_id
            self.new_liquidations += 1
        self._record_removal(1, coll, debt, p)

    def _record_removal(self, n: int, coll: float, debt: float, p: float) -> None:
        self.n_liquidations += n
        self.liquidated_usd += debt
        self.seized_usd += p * coll
        self.coll_removed += coll

    # ------------------------------------------------------------------ flows
    def sell(self, units: float, p: float) -> float:
        """Record a market sale of ``units`` of liquidated collateral at ``p``; return USD."""
        usd = units * p
        self.coll_sold += units
        self.sold_usd += usd
        return usd

    def repay(self, amount: float) -> None:
        """Record debt repaid out of a liquidation process (auction proceeds)."""
        self.repaid_usd += amount
        self.repaid_total += amount

    def write_off(self, amount: float) -> None:
        """Record debt written off as bad debt by a liquidation process."""
        self.bad_debt_usd += amount
        self.bad_total += amount

    def return_collateral(self, units: float) -> None:
        """Record collateral handed back to borrowers (auction left-overs)."""
        self.coll_returned += units
