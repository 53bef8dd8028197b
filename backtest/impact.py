"""Price-impact models: how liquidation sales move the market price.

The market price is ``p_mkt = p_exo · exp(-I)`` with endogenous impact ``I >= 0``. At the start
of every step ``I ← I · 0.5^(1/half_life_steps)`` (no decay when the half-life is infinite).
Within a step, the notional ``q`` (USD, at the round's market price) sold in a round moves the
impact once, through ``apply(i_start, sold_before, q, current)`` where ``i_start`` is the
decayed impact at the start of the step, ``sold_before`` the notional already sold in the step
and ``current`` the impact before the round:

* :class:`LinearImpact`: ``I += q / depth_usd``.
* :class:`SqrtImpact`: ``I = I_start + Y · σ_day · sqrt(Q / ADV)`` with ``Q`` the step's
  cumulative notional: the step's sales are one metaorder, however they split into rounds.
* :class:`CpmmImpact`: ``I += 2 · ln(1 + q · exp(I/2) / R)``, the exact constant-product trade
  against the pool's current USD reserve ``R · exp(-I/2)`` (derivation in the class).
* :class:`NoImpact`: ``I ≡ 0`` (the counterfactual).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

from backtest.errors import ImpactConfigError

__all__ = ["CpmmImpact", "ImpactModel", "LinearImpact", "NoImpact", "SqrtImpact"]


def _check_half_life(h: float) -> None:
    if not h > 0:
        raise ImpactConfigError(
            f"half_life_steps={h!r} must be > 0 (use math.inf for permanent impact)"
        )


def _decay(h: float) -> float:
    return 1.0 if math.isinf(h) else 0.5 ** (1.0 / h)


@runtime_checkable
class ImpactModel(Protocol):
    """What the engine needs from an impact model."""

    half_life_steps: float

    @property
    def decay(self) -> float:  # pragma: no cover - protocol
        """Per-step multiplier ``0.5^(1/half_life_steps)`` applied to ``I``."""
        ...

    @property
    def is_zero(self) -> bool:  # pragma: no cover - protocol
        """True when sales never move the price."""
        ...

    def apply(
        self, i_start: float, sold_before: float, q: float, current: float
    ) -> float:  # pragma: no cover - protocol
        """Impact after a round that sold ``q`` USD (see the module docstring)."""
        ...

    def params(self) -> dict[str, Any]:  # pragma: no cover - protocol
        """JSON-ready parameters (with the model name) for run ids."""
        ...


class _Base:
    name: ClassVar[str] = ""
    half_life_steps: float

    @property
    def decay(self) -> float:
        """Per-step multiplier ``0.5^(1/half_life_steps)`` applied to ``I`` (1 if infinite)."""
        return _decay(self.half_life_steps)

    @property
    def is_zero(self) -> bool:
        """True when sales never move the price."""
        return False

    def params(self) -> dict[str, Any]:
        """JSON-ready parameters (with the model name) for run ids."""
        out: dict[str, Any] = {"model": self.name}
        for k, v in self.__dict__.items():
            out[k] = "inf" if isinstance(v, float) and math.isinf(v) else v
        return out


@dataclass(frozen=True, kw_only=True)
class LinearImpact(_Base):
    """Linear impact ``f(q) = q / depth_usd``.

    Parameters
    ----------
    depth_usd : float
        Notional (USD) whose sale moves ``ln p`` by 1 (about -63 %); a sale of ``q`` lowers the
        price by the factor ``exp(-q / depth_usd)``.
    half_life_steps : float, optional
        Half-life of the impact in steps; ``math.inf`` (default) makes it permanent.
    """

    name: ClassVar[str] = "linear"
    depth_usd: float
    half_life_steps: float = math.inf

    def __post_init__(self) -> None:
        if not self.depth_usd > 0:
            raise ImpactConfigError(f"depth_usd={self.depth_usd!r} must be > 0")
        _check_half_life(self.half_life_steps)

    @classmethod
    def from_slippage(
        cls, q_usd: float, drop: float, *, half_life_steps: float = math.inf
    ) -> LinearImpact:
        """Calibrate from one point: selling ``q_usd`` at once lowers the price by ``drop``.

        E.g. ``$35M`` of ETH ≈ 4.0 % slippage on-chain (Maker, 2021) gives
        ``LinearImpact.from_slippage(35e6, 0.04)``, a depth of ≈ $857M.
        """
        if not 0 < drop < 1:
            raise ImpactConfigError(f"drop={drop!r} must be a fraction in (0, 1), e.g. 0.04")
        return cls(depth_usd=q_usd / -math.log1p(-drop), half_life_steps=half_life_steps)

    def apply(self, i_start: float, sold_before: float, q: float, current: float) -> float:
        """``current + q / depth_usd``."""
        return current + q / self.depth_usd


@dataclass(frozen=True, kw_only=True)
class SqrtImpact(_Base):
    """Square-root-law impact ``f(q) = Y · σ_day · sqrt(q / ADV)``.

    Parameters
    ----------
    sigma_day : float
        Daily volatility of the asset (fraction, e.g. 0.05).
    adv_usd : float
        Average daily traded volume (USD).
    Y : float, optional
        Prefactor "of order 1" (Donier & Bonart 2015 on Bitcoin metaorders); default 1.0.
    half_life_steps : float, optional
        Half-life of the impact in steps (``math.inf``: permanent). The square-root law's
        impact largely decays for uninformed flow, so a finite half-life is the realistic choice.

    Notes
    -----
    All sales in one step form one metaorder: with ``Q`` the step's running notional,
    ``I = I_start + f(Q)``; splitting the step's sales into rounds does not change the total.
    """

    name: ClassVar[str] = "sqrt"
    sigma_day: float
    adv_usd: float
    Y: float = 1.0
    half_life_steps: float = math.inf

    def __post_init__(self) -> None:
        if not self.sigma_day > 0:
            raise ImpactConfigError(f"sigma_day={self.sigma_day!r} must be > 0 (e.g. 0.05)")
        if not self.adv_usd > 0:
            raise ImpactConfigError(f"adv_usd={self.adv_usd!r} must be > 0")
        if not self.Y > 0:
            raise ImpactConfigError(f"Y={self.Y!r} must be > 0 (order 1)")
        _check_half_life(self.half_life_steps)

    def apply(self, i_start: float, sold_before: float, q: float, current: float) -> float:
        """``i_start + Y · σ_day · sqrt((sold_before + q) / ADV)``."""
        return i_start + self.Y * self.sigma_day * math.sqrt((sold_before + q) / self.adv_usd)


@dataclass(frozen=True, kw_only=True)
class CpmmImpact(_Base):
    """Constant-product pool (``x · y = k``) with USD reserve ``pool_depth_usd`` at equilibrium.

    Derivation. A pool with ``x`` asset units and ``y`` USD quotes ``p = y / x`` and
    ``y = sqrt(k · p)``. Selling ``Δx`` units moves ``x → x + Δx`` and ``y → k / (x + Δx)``,
    so ``p_after / p_before = (x / (x + Δx))²`` and
    ``ΔI = -ln(p_after / p_before) = 2 · ln(1 + Δx / x)``. A sale worth ``q`` USD at the
    pre-trade price has ``Δx = q / p`` so ``Δx / x = q / y``: ``ΔI = 2 · ln(1 + q / y)``.

    The pool is at equilibrium (``y = R``) when ``I = 0`` and its price deviation is the whole of
    ``I``, so its current USD reserve is ``y = R · exp(-I / 2)`` and a round selling ``q`` USD
    gives ``ΔI = 2 · ln(1 + q · exp(I / 2) / R)``. In asset units the pool is path-independent:
    ``exp(I / 2) = x / x_eq``, so selling ``Δx`` units in any number of rounds adds
    ``Δx / x_eq`` to ``exp(I / 2)``. Decay between steps stands for arbitrageurs refilling the
    pool.

    Parameters
    ----------
    pool_depth_usd : float
        USD reserve ``R`` of the pool at equilibrium.
    half_life_steps : float, optional
        Half-life of the price recovery in steps (``math.inf``: none).
    """

    name: ClassVar[str] = "cpmm"
    pool_depth_usd: float
    half_life_steps: float = math.inf

    def __post_init__(self) -> None:
        if not self.pool_depth_usd > 0:
            raise ImpactConfigError(f"pool_depth_usd={self.pool_depth_usd!r} must be > 0")
        _check_half_life(self.half_life_steps)

    @classmethod
    def from_slippage(
        cls, q_usd: float, drop: float = 0.10, *, half_life_steps: float = math.inf
    ) -> CpmmImpact:
        """Calibrate from one point: the sale ``q_usd`` that moves the price down by ``drop``.

        (Risk DAO's calibration: the volume that moves the price 10 %.) Solves
        ``1 - drop = (1 + q / R)^-2`` for ``R``.
        """
        if not 0 < drop < 1:
            raise ImpactConfigError(f"drop={drop!r} must be a fraction in (0, 1), e.g. 0.10")
        r = q_usd / ((1.0 - drop) ** -0.5 - 1.0)
        return cls(pool_depth_usd=r, half_life_steps=half_life_steps)

    def apply(self, i_start: float, sold_before: float, q: float, current: float) -> float:
        """``current + 2 · ln(1 + q · exp(current / 2) / R)``."""
        return current + 2.0 * math.log1p(q * math.exp(0.5 * current) / self.pool_depth_usd)


@dataclass(frozen=True, kw_only=True)
class NoImpact(_Base):
    """Sales never move the price (``I ≡ 0``); the counterfactual of every run."""

    name: ClassVar[str] = "none"
    half_life_steps: float = math.inf

    @property
    def is_zero(self) -> bool:
        """Always True."""
        return True

    def apply(self, i_start: float, sold_before: float, q: float, current: float) -> float:
        """``current`` (always 0)."""
        return current
