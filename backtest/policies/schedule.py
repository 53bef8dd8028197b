"""``schedule``: liquidated collateral sold along the Almgren–Chriss optimal trajectory."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from backtest.errors import PolicyConfigError
from backtest.optimal_execution import ac_holdings, ac_kappa, numeric_holdings, step_sigma
from backtest.policies.base import (
    Env,
    Policy,
    Runtime,
    check_bonus,
    check_int,
    check_positive,
    clamped_field,
)
from backtest.policies.tranches import TrancheRuntime

__all__ = [
    "IMPACT_MODELS",
    "MAX_NUMERIC_NODES",
    "Schedule",
    "schedule_holdings",
    "schedule_impact_params",
]

#: Cost models of the trajectory.
IMPACT_MODELS: tuple[str, ...] = ("linear", "sqrt")
#: The square-root trajectory is solved on at most this many trading intervals and interpolated
#: linearly in time onto the horizon's steps (one SLSQP solve per run stays cheap).
MAX_NUMERIC_NODES = 24


@functools.lru_cache(maxsize=256)
def schedule_holdings(cfg: Schedule, step_seconds: float, inventory_usd: float) -> np.ndarray:
    """Holdings fractions ``x_k/X``, ``k = 0..horizon_steps``, of ``cfg`` on a path's bar.

    ``linear``: the Almgren–Chriss closed form (:func:`~backtest.optimal_execution.ac_holdings`)
    with ``η = 1/depth_usd`` and ``γ = 1/permanent_depth_usd``. ``sqrt``: the numeric optimum
    (:func:`~backtest.optimal_execution.numeric_holdings`) for the inventory ``inventory_usd``
    on ``min(horizon, MAX_NUMERIC_NODES)`` intervals, interpolated linearly in time.

    Parameters
    ----------
    cfg : Schedule
        The policy.
    step_seconds : float
        Bar size of the path.
    inventory_usd : float
        Reference inventory (the sqrt shape depends on it).

    Returns
    -------
    numpy.ndarray
        Read-only (cached per configuration, bar and inventory).
    """
    out = _holdings(cfg, step_seconds, inventory_usd)
    out.flags.writeable = False
    return out


def _holdings(cfg: Schedule, step_seconds: float, inventory_usd: float) -> np.ndarray:
    m = int(cfg.horizon_steps)
    sigma = step_sigma(cfg.sigma_day, step_seconds)
    if cfg.impact_model == "linear":
        gamma = 1.0 / cfg.permanent_depth_usd if math.isfinite(cfg.permanent_depth_usd) else 0.0
        kappa = ac_kappa(cfg.risk_aversion, sigma, 1.0 / cfg.depth_usd, gamma)
        return ac_holdings(m, kappa)
    nodes = min(m, MAX_NUMERIC_NODES)
    # a coarser grid of `nodes` intervals of m/nodes steps: σ² scales with the interval, the
    # per-interval sale is m/nodes times larger at the same rate
    scale = m / nodes
    coarse = numeric_holdings(
        nodes,
        max(inventory_usd, 1.0),
        risk_aversion=cfg.risk_aversion,
        sigma=sigma * math.sqrt(scale),
        impact="sqrt",
        sqrt_coef=cfg.impact_y * cfg.sigma_day / math.sqrt(cfg.adv_usd) / math.sqrt(scale),
    )
    if nodes == m:
        return coarse
    out = np.interp(np.arange(m + 1), np.linspace(0.0, m, nodes + 1), coarse)
    out[-1] = 0.0
    return out


@dataclass(frozen=True, kw_only=True)
class Schedule(Policy):
    """Liquidations at once, the seized collateral sold along an optimal execution trajectory.

    Every position unhealthy at the round's price is liquidated as in
    :class:`~backtest.policies.instant.Instant` (close factor 1, the book's bonus) with the
    protocol as liquidator, as :class:`~backtest.policies.batch.Batch` does at its clearings. The
    collateral seized in a step is a *tranche* sold over the next ``horizon_steps`` steps
    (first round of each), the holdings following the Almgren–Chriss trajectory
    ``x_k = X·sinh(κ(M−k))/sinh(κM)`` of :mod:`backtest.optimal_execution` (``impact_model
    "linear"``) or its square-root-impact analogue solved numerically (``"sqrt"``). The
    trajectory is computed once per run (for ``sqrt``: for ``reference_inventory_usd``); every
    tranche follows it in proportion. ``risk_aversion = 0`` is the TWAP of
    :class:`~backtest.policies.batch.Batch` over ``horizon_steps``. Sale proceeds minus the
    debt repaid are protocol revenue; unsold inventory is marked to the final price.

    Parameters
    ----------
    horizon_steps : int, optional
        ``M``: steps over which a tranche is sold (the factory sets it from
        ``horizon_seconds``; default 1 h).
    risk_aversion : float, optional
        ``λ`` per USD (assumption: ``1e-6``).
    impact_model : {"linear", "sqrt"}, optional
        Cost model of the trajectory.
    sigma_day : float, optional
        Daily volatility of the collateral price (assumption: 5 %).
    depth_usd : float, optional
        ``linear``: USD whose sale in one step moves the price by 100 % (``η = 1/depth``).
    permanent_depth_usd : float, optional
        ``linear``: permanent impact ``γ = 1/permanent_depth_usd`` (``inf``: none); needs
        ``permanent_depth_usd > depth_usd/2``.
    adv_usd, impact_y : float, optional
        ``sqrt``: cost ``n·Y·σ_day·sqrt(n/ADV)`` of a sale ``n`` in one step.
    reference_inventory_usd : float, optional
        ``sqrt``: the inventory the shape is solved for (default: 10 % of the book's debt).
    bonus : float, optional
        Overrides the book's bonus.
    """

    name: ClassVar[str] = "schedule"
    horizon_steps: int = 60
    risk_aversion: float = 1e-6
    impact_model: str = "linear"
    sigma_day: float = 0.05
    depth_usd: float = 1e8
    permanent_depth_usd: float = math.inf
    adv_usd: float = 1e9
    impact_y: float = 1.0
    reference_inventory_usd: float | None = None
    bonus: float | None = None
    clamped_to_bar: tuple[str, ...] = clamped_field()

    def __post_init__(self) -> None:
        check_int("schedule", "horizon_steps", self.horizon_steps, low=1)
        check_positive("schedule", "risk_aversion", self.risk_aversion, allow_zero=True)
        if self.impact_model not in IMPACT_MODELS:
            raise PolicyConfigError(
                f"schedule.impact_model={self.impact_model!r}: use one of "
                f"{', '.join(IMPACT_MODELS)}"
            )
        for name in ("sigma_day", "depth_usd", "adv_usd", "impact_y", "permanent_depth_usd"):
            check_positive("schedule", name, getattr(self, name))
        if not self.permanent_depth_usd > 0.5 * self.depth_usd:
            raise PolicyConfigError(
                "schedule.permanent_depth_usd must be > depth_usd/2 (η − γ/2 > 0)"
            )
        if self.reference_inventory_usd is not None:
            check_positive("schedule", "reference_inventory_usd", self.reference_inventory_usd)
        check_bonus("schedule", self.bonus)

    def start(self, env: Env) -> Runtime:
        """Create the run state (solves the trajectory once)."""
        return _ScheduleRuntime(self, env)


class _ScheduleRuntime(TrancheRuntime):
    # tranches: [units_left, basis_left, sales_done]
    def __init__(self, cfg: Schedule, env: Env) -> None:
        super().__init__(cfg, env)
        ref = cfg.reference_inventory_usd
        inventory = ref if ref is not None else 0.10 * env.total_debt
        holdings = schedule_holdings(cfg, env.step_seconds, inventory)
        # share of the remaining units sold at the k-th sale (k = 1..M); the last sells all
        prev = holdings[:-1]
        sale = prev - holdings[1:]
        self.share = np.where(prev > 0, sale / np.where(prev > 0, prev, 1.0), 1.0).tolist()
        self.share[-1] = 1.0

    def tranche_sale(self, units: float, basis: float, counter: float) -> tuple[float, float]:
        share = self.share[int(counter)]
        if share >= 1.0:
            return units, basis
        return units * share, basis * share

    def next_counter(self, counter: float) -> float:
        return counter + 1

    def tranche_done(self, tr: list[float]) -> bool:
        return not tr[2] < len(self.share)

    def round(self, t: int, r: int, p: float) -> tuple[int, float]:
        sold = self.sell_scheduled(p) if r == 0 and self.tranches else 0.0
        idx = self.pool.pop(p)
        if idx.size == 0:
            return 0, sold
        liq = self.ledger.liquidate(idx, p, None, self.cfg.bonus)
        self.tranches.append([liq.seized_total, liq.repaid_total, 0.0])
        return int(idx.size), sold


def schedule_impact_params(impact: object) -> dict[str, Any]:
    """:class:`Schedule` parameters matching an engine impact model.

    ``sqrt`` (:class:`~backtest.impact.SqrtImpact`): ``impact_model="sqrt"`` with its
    ``sigma_day``, ``adv_usd`` and ``Y``; ``linear`` (:class:`~backtest.impact.LinearImpact`):
    ``impact_model="linear"`` with its ``depth_usd`` (as temporary impact; no permanent part is
    assumed).
    Other models: ``{}`` (the policy's defaults).

    Parameters
    ----------
    impact : ImpactModel
        The scenario's impact model.

    Returns
    -------
    dict
    """
    name = getattr(impact, "name", "")
    if name == "sqrt":
        return {
            "impact_model": "sqrt",
            "sigma_day": float(impact.sigma_day),  # type: ignore[attr-defined]
            "adv_usd": float(impact.adv_usd),  # type: ignore[attr-defined]
            "impact_y": float(impact.Y),  # type: ignore[attr-defined]
        }
    if name == "linear":
        return {"impact_model": "linear", "depth_usd": float(impact.depth_usd)}  # type: ignore[attr-defined]
    return {}
