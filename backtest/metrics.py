"""Run metrics: what a risk team reads off one simulation (definitions in :class:`Metrics`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["Conservation", "Metrics", "cascade_episodes", "compute_metrics"]


@dataclass(frozen=True, kw_only=True)
class Metrics:
    """Headline metrics of one run.

    Attributes
    ----------
    n_liquidations : int
        Liquidation actions: a position seized, barked into an auction, absorbed, cleared in a
        batch, staged or deleveraged (a position liquidated twice counts twice).
    n_positions_liquidated : int
        Distinct positions liquidated at least once.
    liquidated_usd : float
        Debt (USD) taken out of positions by liquidation: repaid plus written off, or moved into
        an auction at bark. Debt-based, so a position's amount does not depend on the price it
        was liquidated at.
    seized_usd : float
        Collateral removed from positions, valued at the round's market price.
    sold_usd : float
        Notional of liquidated collateral sold to the market (what moves the impact).
    induced_usd : float
        ``Σ_i max(0, liq_i − liq_i^cf)``: liquidated debt of each position beyond what it lost
        in the zero-impact counterfactual — liquidation that happened only because of impact.
    n_induced : int
        Positions liquidated in this run but never in the counterfactual.
    amplification : float
        ``liquidated_usd / liquidated_usd`` of the counterfactual (1 when both are 0, ``inf``
        when only the counterfactual is 0).
    max_cascade_depth : int
        Largest cascade depth of a step: the number of the step's rounds in which at least one
        position was liquidated for the first time in that step (repeat partial liquidations of
        the same positions are counted in ``repeat_liquidation_rounds``; auction takes alone are
        not liquidations).
    cascade_episodes : int
        Maximal runs of consecutive steps whose cascade depth is >= 2.
    peak_price_deviation : float
        ``max_t (1 − p_mkt(t) / p_exo(t))`` with ``p_mkt`` the step's closing market price.
    bad_debt_usd : float
        Debt written off (collateral or auction proceeds worth less than the debt).
    borrower_loss_usd : float
        ``Σ (collateral taken from borrowers × market price when taken) − debt repaid for
        them``: the bonus/penalty plus any auction discount; written-off debt is not a gain
        counted here, collateral handed back is not a loss.
    liquidator_profit_usd : float
        Liquidators', takers' and keepers' gain: sale value of what they took minus what they
        paid, plus keeper incentives (tip/chip).
    protocol_revenue_usd : float
        Auction penalties and protocol fees, minus keeper incentives; for buffer/batch
        mechanisms the P&L of the protocol's inventory (marked to the final price).
    time_to_clear_steps : int
        Steps from the first liquidation to the last step with liquidation activity
        (liquidation, take or sale), inclusive; to the end of the path when not cleared; 0 if
        nothing was liquidated.
    cleared : bool
        No collateral or debt left in a liquidation process (auction, queue, inventory) at the
        end.
    in_flight_collateral : float
        Collateral units still in a liquidation process at the end.
    in_flight_debt_usd : float
        Debt still in an unfinished auction at the end.
    final_price : float
        Market price after the last step.
    repeat_liquidation_rounds : int
        Rounds, summed over the steps, that liquidated only positions already liquidated earlier
        in the same step (partial repeats, e.g. a close factor below 1); they are not cascade
        depth.
    unhealthy_open_debt_usd : float
        Debt of positions still in the book (not in a liquidation process) whose health is below
        1 at the final market price: positions a policy deferred (breaker halt, batch queue,
        staged wait, auction hole) or never reached.
    in_flight_shortfall_usd : float
        Debt in unfinished liquidation processes (auctions) not covered by their remaining
        collateral marked to the final price: ``Σ max(0, due − lot · final_price)`` per auction.
    underwater_debt_usd : float
        Debt of positions still in the book whose collateral at the final price is worth less
        than their debt.
    underwater_shortfall_usd : float
        ``Σ (debt − collateral · final_price)`` over those underwater positions.
    total_loss_usd : float
        ``bad_debt_usd + in_flight_shortfall_usd + underwater_shortfall_usd``: realised bad debt
        plus the losses still open at the end. The three parts are disjoint: written-off debt has
        left the book, auction lots are no longer in the book, and the book's positions are
        counted with their own remaining collateral only.
    """

    n_liquidations: int
    n_positions_liquidated: int
    liquidated_usd: float
    seized_usd: float
    sold_usd: float
    induced_usd: float
    n_induced: int
    amplification: float
    max_cascade_depth: int
    cascade_episodes: int
    peak_price_deviation: float
    bad_debt_usd: float
    borrower_loss_usd: float
    liquidator_profit_usd: float
    protocol_revenue_usd: float
    time_to_clear_steps: int
    cleared: bool
    in_flight_collateral: float
    in_flight_debt_usd: float
    final_price: float
    repeat_liquidation_rounds: int = 0
    unhealthy_open_debt_usd: float = 0.0
    in_flight_shortfall_usd: float = 0.0
    underwater_debt_usd: float = 0.0
    underwater_shortfall_usd: float = 0.0
    total_loss_usd: float = 0.0

    def as_dict(self) -> dict[str, float | int | bool]:
        """Plain dict of the metrics (for tables)."""
        return dict(self.__dict__)


@dataclass(frozen=True, kw_only=True)
class Conservation:
    """Where the book's collateral and debt ended up; both identities hold to float tolerance.

    ``collateral_initial = collateral_left + collateral_seized`` and
    ``collateral_seized = collateral_sold + collateral_returned + collateral_in_flight``;
    ``debt_initial = debt_outstanding + debt_repaid + debt_bad + debt_in_flight``.
    """

    collateral_initial: float
    collateral_left: float
    collateral_seized: float
    collateral_sold: float
    collateral_returned: float
    collateral_in_flight: float
    debt_initial: float
    debt_outstanding: float
    debt_repaid: float
    debt_bad: float
    debt_in_flight: float

    @property
    def collateral_error(self) -> float:
        """``initial − left − seized`` (should be ~0)."""
        return self.collateral_initial - self.collateral_left - self.collateral_seized

    @property
    def seized_error(self) -> float:
        """``seized − sold − returned − in flight`` (should be ~0)."""
        return (
            self.collateral_seized
            - self.collateral_sold
            - self.collateral_returned
            - self.collateral_in_flight
        )

    @property
    def debt_error(self) -> float:
        """``initial − outstanding − repaid − bad − in flight`` (should be ~0)."""
        return (
            self.debt_initial
            - self.debt_outstanding
            - self.debt_repaid
            - self.debt_bad
            - self.debt_in_flight
        )


def cascade_episodes(depth: np.ndarray, min_depth: int = 2) -> int:
    """Number of maximal runs of consecutive steps with ``depth >= min_depth``."""
    mask = np.asarray(depth) >= min_depth
    if not mask.any():
        return 0
    starts = mask.copy()
    starts[1:] &= ~mask[:-1]
    return int(starts.sum())


def compute_metrics(
    steps: dict[str, np.ndarray],
    liq: np.ndarray,
    liq_cf: np.ndarray,
    *,
    in_flight: tuple[float, float],
    final_price: float,
    liquidated_cf_usd: float,
    end_state: Mapping[str, float] | None = None,
) -> Metrics:
    """Metrics of one run from its step arrays and per-position liquidated debt.

    Parameters
    ----------
    steps : dict of numpy.ndarray
        Step columns (``cascade_depth``, ``liquidated_usd``, ``p_mkt``, ``p_exo`` …).
    liq, liq_cf : numpy.ndarray
        Liquidated debt per position in this run and in its counterfactual.
    in_flight : tuple of float
        Collateral units and debt still in liquidation processes at the end.
    final_price : float
        Market price after the last step.
    liquidated_cf_usd : float
        Liquidated debt of the counterfactual run.
    end_state : mapping, optional
        ``unhealthy_open_debt_usd``, ``underwater_debt_usd``, ``underwater_shortfall_usd`` and
        ``in_flight_shortfall_usd`` at the end of the window (0 when not given).
    """
    end = dict(end_state or {})
    n_liq = steps["n_liquidations"]
    liquidated = float(steps["liquidated_usd"].sum())
    if liquidated_cf_usd > 0:
        amp = liquidated / liquidated_cf_usd
    else:
        amp = 1.0 if liquidated == 0 else math.inf
    extra = liq - liq_cf
    induced = float(extra[extra > 0].sum())
    n_induced = int(((liq > 0) & (liq_cf == 0)).sum())
    depth = steps["cascade_depth"]
    active = (n_liq > 0) | (steps["sold_usd"] > 0)
    liq_steps = np.flatnonzero(n_liq > 0)
    coll_if, debt_if = in_flight
    cleared = coll_if == 0 and debt_if == 0
    if liq_steps.size == 0:
        ttc = 0
    elif not cleared:
        ttc = int(depth.size - liq_steps[0])
    else:
        ttc = int(np.flatnonzero(active)[-1] - liq_steps[0] + 1)
    dev = 1.0 - steps["p_mkt"] / steps["p_exo"]
    bad = float(steps["bad_debt_usd"].sum())
    in_flight_short = float(end.get("in_flight_shortfall_usd", 0.0))
    under_short = float(end.get("underwater_shortfall_usd", 0.0))
    repeat = steps.get("repeat_rounds")
    return Metrics(
        n_liquidations=int(n_liq.sum()),
        n_positions_liquidated=int((liq > 0).sum()),
        liquidated_usd=liquidated,
        seized_usd=float(steps["seized_usd"].sum()),
        sold_usd=float(steps["sold_usd"].sum()),
        induced_usd=induced,
        n_induced=n_induced,
        amplification=amp,
        max_cascade_depth=int(depth.max()) if depth.size else 0,
        cascade_episodes=cascade_episodes(depth),
        peak_price_deviation=max(0.0, float(dev.max())),
        bad_debt_usd=bad,
        borrower_loss_usd=float(steps["borrower_loss_usd"].sum()),
        liquidator_profit_usd=float(steps["liquidator_profit_usd"].sum()),
        protocol_revenue_usd=float(steps["protocol_revenue_usd"].sum()),
        time_to_clear_steps=ttc,
        cleared=bool(cleared),
        in_flight_collateral=float(coll_if),
        in_flight_debt_usd=float(debt_if),
        final_price=float(final_price),
        repeat_liquidation_rounds=int(repeat.sum()) if repeat is not None else 0,
        unhealthy_open_debt_usd=float(end.get("unhealthy_open_debt_usd", 0.0)),
        in_flight_shortfall_usd=in_flight_short,
        underwater_debt_usd=float(end.get("underwater_debt_usd", 0.0)),
        underwater_shortfall_usd=under_short,
        total_loss_usd=bad + in_flight_short + under_short,
    )
