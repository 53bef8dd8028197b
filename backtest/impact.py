"""Price-impact models: how liquidation sales move the market price.

The market price is ``p_mkt = p_exo · exp(-I)`` with endogenous impact ``I >= 0``. Every model
carries one float of state ``s`` across steps, from which ``I`` is derived (``impact_of``):

* at the start of every step ``s ← s · decay`` with ``decay = 0.5^(1/half_life_steps)`` (1 when
  the half-life is infinite);
* within a step, every round that sells notional ``q`` (USD, at the round's market price) moves
  the state once: ``s ← apply(s, q)``; the next round sees ``I = impact_of(s)``.

The models:

* :class:`LinearImpact`: ``s = I``; ``apply: I += q / depth_usd``.
* :class:`SqrtImpact`: ``s = Q̃``, a decaying cumulative metaorder (a propagator):
  ``Q̃ ← Q̃ · decay`` per step, ``Q̃ += q`` per round, and ``I = Y · σ_day · sqrt(Q̃ / ADV)``.
  Because ``sqrt`` is increasing and ``Q̃`` after a sale split over several steps is never
  larger than the whole sale, splitting a sale over steps (or over rounds) never raises the
  impact above selling it at once; with no sales ``I`` relaxes by ``sqrt(decay)`` per step (a
  half-life of ``2 · half_life_steps`` in ``I``: the half-life is the metaorder's).
* :class:`CpmmImpact`: ``s = I``; ``apply: I += 2 · ln(1 + q · exp(I/2) / R)``, the exact
  constant-product trade against the pool's current USD reserve ``R · exp(-I/2)`` (derivation
  in the class).
* :class:`NoImpact`: ``I ≡ 0`` (the counterfactual).

``state_is_impact`` says whether ``s`` is ``I`` itself (linear, cpmm, none), so the engine can
skip ``impact_of`` for them; their arithmetic is unchanged from the earlier per-step protocol.

Calibration from market statistics (``from_market`` classmethods, :func:`impact_from_market`):

* **Square-root law** from the asset's average daily volume ``ADV`` and daily volatility
  ``σ_day`` with prefactor ``Y`` (default 1).
* **Depth** for ``linear`` and ``cpmm``: with a measured order-book depth ``D₁`` (bid notional
  within 1 % of the mid) the model is calibrated so that selling ``D₁`` at once moves the price
  by 1 %. Without it the depth is derived from ADV with the one published calibration point,
  "$35M of ETH ≈ 4.0 % on-chain slippage" (Maker, 2021), scaled by ADV: selling
  ``35M × ADV / ADV_ref`` moves the price by 4 % (:data:`ADV_REF_USD`, :data:`REF_SALE_USD`,
  :data:`REF_SLIPPAGE`); for ``linear`` this gives ``depth_usd ≈ 0.224 × ADV``.
* **Half-life**: :data:`DEFAULT_HALF_LIFE_SECONDS` (30 minutes) in steps of the path
  (:func:`half_life_steps_for`), unless given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

from backtest.errors import ImpactConfigError

__all__ = [
    "ADV_REF_USD",
    "DEFAULT_HALF_LIFE_SECONDS",
    "IMPACT_NAMES",
    "REF_SALE_USD",
    "REF_SLIPPAGE",
    "CpmmImpact",
    "ImpactModel",
    "LinearImpact",
    "NoImpact",
    "SqrtImpact",
    "depth_point",
    "half_life_steps_for",
    "impact_from_market",
]

#: ETH ADV (Binance spot, USD/day) over the 30 days before 2021-05-19: the ADV the published
#: slippage point :data:`REF_SALE_USD` / :data:`REF_SLIPPAGE` was observed at.
ADV_REF_USD = 3.8286e9
#: "$35M of ETH ≈ 4.0 % on-chain slippage" (Maker ETH-B discussion, 2021; REFERENCES.md).
REF_SALE_USD = 35e6
#: Slippage of :data:`REF_SALE_USD` at :data:`ADV_REF_USD`.
REF_SLIPPAGE = 0.04
#: Default impact half-life in seconds (converted to steps of the path).
DEFAULT_HALF_LIFE_SECONDS = 1_800.0
#: Names of the impact models (:func:`impact_from_market`).
IMPACT_NAMES: tuple[str, ...] = ("sqrt", "linear", "cpmm", "none")


def half_life_steps_for(
    step_seconds: float, half_life_seconds: float = DEFAULT_HALF_LIFE_SECONDS
) -> float:
    """A half-life given in seconds, in steps of ``step_seconds`` (at least ``1e-6``).

    Parameters
    ----------
    step_seconds : float
        Bar size of the path.
    half_life_seconds : float, optional
        Half-life (30 minutes by default).

    Returns
    -------
    float
        ``max(half_life_seconds / step_seconds, 1e-6)``.
    """
    return max(half_life_seconds / max(step_seconds, 1e-9), 1e-6)


def _resolve_half_life(half_life_steps: float | None, step_seconds: float | None) -> float:
    if half_life_steps is not None:
        return half_life_steps
    if step_seconds is None:
        raise ImpactConfigError(
            "give half_life_steps, or step_seconds for the default half-life of "
            f"{DEFAULT_HALF_LIFE_SECONDS:g} s"
        )
    return half_life_steps_for(step_seconds)


def depth_point(
    *, adv_usd: float | None = None, depth_1pct_usd: float | None = None
) -> tuple[float, float]:
    """The calibration point ``(sale_usd, price_drop)`` of the depth rule.

    Parameters
    ----------
    adv_usd : float, optional
        Average daily volume (USD), used when no order-book depth is known.
    depth_1pct_usd : float, optional
        Bid notional within 1 % of the mid; takes precedence.

    Returns
    -------
    (float, float)
        ``(depth_1pct_usd, 0.01)``, else ``(REF_SALE_USD × adv_usd / ADV_REF_USD, REF_SLIPPAGE)``.

    Raises
    ------
    ImpactConfigError
        When neither is given.
    """
    if depth_1pct_usd is not None:
        return depth_1pct_usd, 0.01
    if adv_usd is None:
        raise ImpactConfigError("the depth rule needs depth_1pct_usd or adv_usd")
    return REF_SALE_USD * adv_usd / ADV_REF_USD, REF_SLIPPAGE


def _check_half_life(h: float) -> None:
    if not h > 0:
        raise ImpactConfigError(
            f"half_life_steps={h!r} must be > 0 (use math.inf for permanent impact)"
        )


def _decay(h: float) -> float:
    return 1.0 if math.isinf(h) else 0.5 ** (1.0 / h)


@runtime_checkable
class ImpactModel(Protocol):
    """What the engine needs from an impact model (state ``s``; see the module docstring)."""

    half_life_steps: float

    @property
    def decay(self) -> float:  # pragma: no cover - protocol
        """Per-step multiplier ``0.5^(1/half_life_steps)`` applied to the state ``s``."""
        ...

    @property
    def is_zero(self) -> bool:  # pragma: no cover - protocol
        """True when sales never move the price."""
        ...

    @property
    def state_is_impact(self) -> bool:  # pragma: no cover - protocol
        """True when the state ``s`` is the impact ``I`` itself (``impact_of`` is the identity)."""
        ...

    def impact_of(self, state: float) -> float:  # pragma: no cover - protocol
        """The impact ``I`` of state ``s``."""
        ...

    def apply(self, state: float, q: float) -> float:  # pragma: no cover - protocol
        """State after a round that sold ``q`` USD."""
        ...

    def params(self) -> dict[str, Any]:  # pragma: no cover - protocol
        """JSON-ready parameters (with the model name) for run ids."""
        ...


class _Base:
    name: ClassVar[str] = ""
    half_life_steps: float

    @property
    def decay(self) -> float:
        """Per-step multiplier ``0.5^(1/half_life_steps)`` of the state (1 if infinite)."""
        return _decay(self.half_life_steps)

    @property
    def is_zero(self) -> bool:
        """True when sales never move the price."""
        return False

    @property
    def state_is_impact(self) -> bool:
        """True: the state is the impact ``I`` (all models but :class:`SqrtImpact`)."""
        return True

    def impact_of(self, state: float) -> float:
        """``I = s``."""
        return state

    def params(self) -> dict[str, Any]:
        """JSON-ready parameters (with the model name) for run ids."""
        out: dict[str, Any] = {"model": self.name}
        for k, v in self.__dict__.items():
            out[k] = "inf" if isinstance(v, float) and math.isinf(v) else v
        return out


class _DepthCalibrated(_Base):
    """Impact models calibrated from one depth point (linear, cpmm) through ``from_slippage``."""

    @classmethod
    def from_slippage(
        cls, q_usd: float, drop: float, *, half_life_steps: float = math.inf
    ) -> Self:  # pragma: no cover - every subclass defines it
        """The model whose sale of ``q_usd`` at once lowers the price by ``drop``."""
        raise NotImplementedError

    @classmethod
    def from_market(
        cls,
        *,
        adv_usd: float | None = None,
        depth_1pct_usd: float | None = None,
        step_seconds: float | None = None,
        half_life_steps: float | None = None,
    ) -> Self:
        """Calibrate from market statistics with the depth rule (module docstring).

        Parameters
        ----------
        adv_usd : float, optional
            Average daily volume (USD); used when ``depth_1pct_usd`` is not known.
        depth_1pct_usd : float, optional
            Bid notional within 1 % of the mid: selling it at once moves the price by 1 %.
        step_seconds : float, optional
            Bar size of the path, for the default half-life (30 minutes).
        half_life_steps : float, optional
            Half-life in steps (``math.inf``: permanent); overrides the default.

        Raises
        ------
        ImpactConfigError
            Neither depth nor ADV, or neither half-life nor step size.
        """
        q, drop = depth_point(adv_usd=adv_usd, depth_1pct_usd=depth_1pct_usd)
        h = _resolve_half_life(half_life_steps, step_seconds)
        return cls.from_slippage(q, drop, half_life_steps=h)


@dataclass(frozen=True, kw_only=True)
class LinearImpact(_DepthCalibrated):
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

    def apply(self, state: float, q: float) -> float:
        """``I + q / depth_usd``."""
        return state + q / self.depth_usd


@dataclass(frozen=True, kw_only=True)
class SqrtImpact(_Base):
    """Square-root-law impact ``I = Y · σ_day · sqrt(Q̃ / ADV)`` of a decaying metaorder ``Q̃``.

    Parameters
    ----------
    sigma_day : float
        Daily volatility of the asset (fraction, e.g. 0.05).
    adv_usd : float
        Average daily traded volume (USD).
    Y : float, optional
        Prefactor "of order 1" (Donier & Bonart 2015 on Bitcoin metaorders); default 1.0.
    half_life_steps : float, optional
        Half-life of the metaorder ``Q̃`` in steps (``math.inf``: permanent); ``I`` then halves
        in ``2 · half_life_steps`` when nothing is sold. The square-root law's impact largely
        decays for uninformed flow, so a finite half-life is the realistic choice.

    Notes
    -----
    A propagator: the state is the decaying cumulative metaorder ``Q̃`` (USD), ``Q̃ ← Q̃ · decay``
    at every step and ``Q̃ += q`` for every round's sales; ``I = Y · σ_day · sqrt(Q̃ / ADV)``.
    Sales in later steps add to what is left of earlier ones, so a sale of ``X`` split over
    ``k`` steps never moves the price more than ``X`` sold at once (``Q̃ <= X`` throughout),
    and splitting a step's sales into rounds does not change the step's impact.
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

    @classmethod
    def from_market(
        cls,
        *,
        adv_usd: float,
        sigma_day: float,
        step_seconds: float | None = None,
        half_life_steps: float | None = None,
        y: float = 1.0,
    ) -> SqrtImpact:
        """The square-root law with the asset's ADV and daily volatility.

        Parameters
        ----------
        adv_usd : float
            Average daily volume (USD).
        sigma_day : float
            Daily volatility (fraction).
        step_seconds : float, optional
            Bar size of the path, for the default half-life (30 minutes).
        half_life_steps : float, optional
            Half-life in steps (``math.inf``: permanent); overrides the default.
        y : float, optional
            Prefactor ``Y`` (default 1).

        Returns
        -------
        SqrtImpact

        Raises
        ------
        ImpactConfigError
            Neither half-life nor step size, or an impossible value.

        Examples
        --------
        >>> SqrtImpact.from_market(adv_usd=3e9, sigma_day=0.05, step_seconds=60.0).half_life_steps
        30.0
        """
        h = _resolve_half_life(half_life_steps, step_seconds)
        return cls(sigma_day=sigma_day, adv_usd=adv_usd, Y=y, half_life_steps=h)

    @property
    def state_is_impact(self) -> bool:
        """False: the state is the decaying cumulative metaorder ``Q̃`` (USD)."""
        return False

    def impact_of(self, state: float) -> float:
        """``Y · σ_day · sqrt(Q̃ / ADV)``."""
        return self.Y * self.sigma_day * math.sqrt(state / self.adv_usd) if state > 0 else 0.0

    def apply(self, state: float, q: float) -> float:
        """``Q̃ + q``."""
        return state + q


@dataclass(frozen=True, kw_only=True)
class CpmmImpact(_DepthCalibrated):
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

    def apply(self, state: float, q: float) -> float:
        """``I + 2 · ln(1 + q · exp(I / 2) / R)``."""
        return state + 2.0 * math.log1p(q * math.exp(0.5 * state) / self.pool_depth_usd)


@dataclass(frozen=True, kw_only=True)
class NoImpact(_Base):
    """Sales never move the price (``I ≡ 0``); the counterfactual of every run."""

    name: ClassVar[str] = "none"
    half_life_steps: float = math.inf

    @property
    def is_zero(self) -> bool:
        """Always True."""
        return True

    def apply(self, state: float, q: float) -> float:
        """``state`` (always 0)."""
        return state


def impact_from_market(
    name: str,
    *,
    adv_usd: float | None = None,
    sigma_day: float | None = None,
    depth_1pct_usd: float | None = None,
    depth_usd: float | None = None,
    step_seconds: float | None = None,
    half_life_steps: float | None = None,
    y: float = 1.0,
) -> ImpactModel:
    """Build the impact model ``name`` from market statistics.

    Parameters
    ----------
    name : {"sqrt", "linear", "cpmm", "none"}
        Impact model (:data:`IMPACT_NAMES`).
    adv_usd, sigma_day : float, optional
        Average daily volume (USD) and daily volatility; ``sqrt`` needs both, ``linear`` and
        ``cpmm`` use ADV when neither ``depth_usd`` nor ``depth_1pct_usd`` is given.
    depth_1pct_usd : float, optional
        Measured bid notional within 1 % of the mid (``linear``, ``cpmm``).
    depth_usd : float, optional
        Explicit ``depth_usd`` of the linear model or reserve of the cpmm pool; bypasses the
        depth rule. Not accepted by ``sqrt``.
    step_seconds : float, optional
        Bar size of the path, for the default half-life (30 minutes).
    half_life_steps : float, optional
        Half-life in steps (``math.inf``: permanent impact).
    y : float, optional
        Prefactor of the square-root law.

    Returns
    -------
    ImpactModel

    Raises
    ------
    ImpactConfigError
        Unknown name, missing statistics, or ``depth_usd`` given to ``sqrt``.
    """
    if name not in IMPACT_NAMES:
        raise ImpactConfigError(f"unknown impact model {name!r}; known: {', '.join(IMPACT_NAMES)}")
    if name == "none":
        return NoImpact()
    h = _resolve_half_life(half_life_steps, step_seconds)
    if name == "sqrt":
        if depth_usd is not None:
            raise ImpactConfigError("depth_usd applies to linear and cpmm; for sqrt give adv_usd")
        if adv_usd is None or sigma_day is None:
            raise ImpactConfigError("the sqrt impact needs adv_usd and sigma_day")
        return SqrtImpact.from_market(adv_usd=adv_usd, sigma_day=sigma_day, half_life_steps=h, y=y)
    if name == "linear":
        if depth_usd is not None:
            return LinearImpact(depth_usd=depth_usd, half_life_steps=h)
        return LinearImpact.from_market(
            adv_usd=adv_usd, depth_1pct_usd=depth_1pct_usd, half_life_steps=h
        )
    if depth_usd is not None:
        return CpmmImpact(pool_depth_usd=depth_usd, half_life_steps=h)
    return CpmmImpact.from_market(adv_usd=adv_usd, depth_1pct_usd=depth_1pct_usd, half_life_steps=h)
