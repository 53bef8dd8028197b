"""``dynamic_ltv``: thresholds follow a forecast path; risky positions deleverage early."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike

from backtest.errors import PathValidationError, PolicyConfigError
from backtest.fractions import fraction_problem
from backtest.policies.base import (
    BoundRuntime,
    Env,
    Policy,
    Runtime,
    check_fraction,
    check_positive,
    sell_to_market,
)
from backtest.policies.instant import Instant
from backtest.policies.staged import repay_to_target

__all__ = ["SMART_LTV_DEFAULTS", "DynamicLTV", "ramp_limited", "smart_ltv_thresholds"]

#: Default constants of :func:`smart_ltv_thresholds`. REFERENCES.md gives the closed form but no
#: values: ``c = 1`` (the risk-level / confidence factor) and ``beta = 0.05`` (the liquidation
#: bonus of the library's books) are assumptions; ``floor`` keeps thresholds in ``(0, 1]``.
SMART_LTV_DEFAULTS: dict[str, float] = {"c": 1.0, "beta": 0.05, "floor": 0.01}


def smart_ltv_thresholds(
    sigma: ArrayLike,
    *,
    liquidity_usd: ArrayLike,
    debt_usd: ArrayLike,
    c: float = SMART_LTV_DEFAULTS["c"],
    beta: float = SMART_LTV_DEFAULTS["beta"],
    floor: float = SMART_LTV_DEFAULTS["floor"],
) -> np.ndarray:
    """B.Protocol / Risk DAO SmartLTV: ``LTV(t) = exp(−c · σ(t) / sqrt(l / d)) − β``.

    A dynamic-LTV baseline that needs no forecast model: the threshold tightens with volatility
    and with debt relative to the liquidity that can absorb its liquidation. The result is a
    threshold path for ``dynamic_ltv`` (``build_policy("smart_ltv", threshold_path=...)``).

    Parameters
    ----------
    sigma : array_like
        Volatility ``σ`` of the collateral against the debt asset, one value per step (a
        fraction, e.g. daily volatility 0.05; the horizon is the caller's choice and must match
        ``c``).
    liquidity_usd : array_like
        ``l``: DEX liquidity (USD) available within a slippage of ``β``; a scalar or one value
        per step.
    debt_usd : array_like
        ``d``: the debt (cap) that may need liquidating (USD); a scalar or one value per step.
    c : float, optional
        Risk-level (confidence) factor; larger is more conservative (assumption: 1).
    beta : float, optional
        Liquidation bonus ``β`` (assumption: 0.05).
    floor : float, optional
        Lowest threshold returned (thresholds must stay in ``(0, 1]``).

    Returns
    -------
    numpy.ndarray
        ``clip(exp(−c·σ/sqrt(l/d)) − β, floor, 1)``, one threshold per step.

    Raises
    ------
    PolicyConfigError
        Non-positive liquidity or debt, negative ``c``, ``σ`` or ``β``.

    Examples
    --------
    >>> smart_ltv_thresholds([0.05], liquidity_usd=4e6, debt_usd=1e6, c=2.0, beta=0.05).round(4)
    array([0.9012])
    """
    sig = np.atleast_1d(np.asarray(sigma, dtype=np.float64))
    liq = np.asarray(liquidity_usd, dtype=np.float64)
    debt = np.asarray(debt_usd, dtype=np.float64)
    if not (np.all(liq > 0) and np.all(debt > 0)):
        raise PolicyConfigError("smart_ltv needs liquidity_usd > 0 and debt_usd > 0")
    if c < 0 or beta < 0 or not np.all(sig >= 0):
        raise PolicyConfigError("smart_ltv needs c >= 0, beta >= 0 and sigma >= 0")
    check_fraction("smart_ltv", "floor", floor, low=1e-9)
    ltv = np.exp(-c * sig / np.sqrt(liq / debt)) - beta
    return np.clip(ltv, floor, 1.0)


def ramp_limited(path: np.ndarray, max_step_change: float) -> np.ndarray:
    """Clamp a threshold path so it moves at most ``max_step_change`` per step."""
    out = np.array(path, dtype=np.float64, copy=True)
    for t in range(1, out.size):
        lo = out[t - 1] - max_step_change
        hi = out[t - 1] + max_step_change
        out[t] = min(max(out[t], lo), hi)
    return out


@dataclass(frozen=True, kw_only=True, eq=False)
class DynamicLTV(Policy):
    """Predictive margin: a per-step threshold path ``LT(t)`` triggers early deleveraging.

    The threshold path comes from the forecasting margin module (this library does not
    forecast). Position ``i``'s dynamic threshold is ``LT_i · m(t)`` with
    ``m(t) = min(1, LT(t) / reference_threshold)`` — for a single-asset book whose positions share
    the asset's threshold it is exactly ``LT(t)``, and it never loosens the static threshold. At
    every round: positions unhealthy under their static ``LT_i`` go to the ``base`` policy
    (full bonus); positions healthy under ``LT_i`` but unhealthy under ``LT_i·m(t)`` are
    deleveraged: debt is repaid (collateral sold at market at once) so that their dynamic health
    returns to ``target_health``, at the small ``penalty`` instead of the bonus.

    Parameters
    ----------
    threshold_path : numpy.ndarray
        ``LT(t)``, one fraction per step of the price path (0.80, not 80).
    penalty : float, optional
        Deleveraging penalty paid to the keeper (default 1 %).
    target_health : float, optional
        Dynamic health after deleveraging (assumption 1.05, inside Blend's post-liquidation
        window [1.03, 1.15]).
    reference_threshold : float, optional
        Threshold the path is relative to (default: the book's largest ``LT_i``).
    max_step_change : float, optional
        Ramp limit applied to the path (per step); normally the margin module applies it.
    base : Policy, optional
        Mechanism for positions unhealthy under their static threshold (default
        :class:`Instant`).
    """

    name: ClassVar[str] = "dynamic_ltv"
    threshold_path: np.ndarray
    penalty: float = 0.01
    target_health: float = 1.05
    reference_threshold: float | None = None
    max_step_change: float | None = None
    base: Policy = field(default_factory=Instant)

    def __post_init__(self) -> None:
        path = np.array(self.threshold_path, dtype=np.float64, copy=True)
        if path.ndim != 1 or path.size == 0:
            raise PathValidationError("threshold_path must be a non-empty 1-d array")
        bad = ~(np.isfinite(path) & (path > 0) & (path <= 1))
        if bad.any():
            i = int(np.argmax(bad))
            v = path[i]
            problem = fraction_problem(float(v), low_open=True)  # thresholds lie in (0, 1]
            raise PathValidationError(f"threshold_path at step {i} {problem}")
        path.flags.writeable = False
        object.__setattr__(self, "threshold_path", path)
        check_fraction("dynamic_ltv", "penalty", self.penalty, high=0.999)
        check_positive("dynamic_ltv", "target_health", self.target_health - 1.0)
        if self.reference_threshold is not None:
            check_fraction("dynamic_ltv", "reference_threshold", self.reference_threshold, low=1e-9)
        if self.max_step_change is not None:
            check_positive("dynamic_ltv", "max_step_change", self.max_step_change)

    def start(self, env: Env) -> Runtime:
        """Create the run state."""
        if self.threshold_path.size != env.n_steps:
            raise PathValidationError(
                f"threshold_path has {self.threshold_path.size} steps but the price path has "
                f"{env.n_steps}; give one threshold per step"
            )
        return _DynamicRuntime(self, env)


class _DynamicRuntime(BoundRuntime):
    def __init__(self, cfg: DynamicLTV, env: Env) -> None:
        super().__init__(cfg, env)
        self.base = cfg.base.start(env)
        self.wants_end_step = self.base.wants_end_step
        path = cfg.threshold_path
        if cfg.max_step_change is not None:
            path = ramp_limited(path, cfg.max_step_change)
        ref = cfg.reference_threshold if cfg.reference_threshold is not None else env.max_threshold
        if not ref > 0:
            raise PolicyConfigError("reference_threshold must be > 0")
        self.m = np.minimum(1.0, path / ref).tolist()

    def threshold(self, t: int, p: float) -> float:
        return min(self.base.threshold(t, p), p * self.m[t])

    def needs_step(self, t: int) -> bool:
        return self.base.needs_step(t)

    def round(self, t: int, r: int, p: float) -> tuple[int, float]:
        acted, sold = self.base.round(t, r, p)
        m = self.m[t]
        lo = p * m
        if lo >= p:
            return acted, sold
        idx = self.pool.pop_range(lo, p)
        if idx.size == 0:
            return acted, sold
        led = self.ledger
        cfg = self.cfg
        c, d = led.c[idx], led.d[idx]
        rep = repay_to_target(c, d, p, led.lt[idx] * m, cfg.penalty, cfg.target_health)
        liq = led.liquidate(idx, p, rep, cfg.penalty)
        sold += sell_to_market(led, liq, p)
        self.pool.push(liq.still_open())
        return acted + int(idx.size), sold

    def end_step(self, t: int, p_open: float, p_end: float) -> None:
        self.base.end_step(t, p_open, p_end)

    def finish(self, p_final: float) -> tuple[float, float]:
        return self.base.finish(p_final)

    def in_flight_shortfall(self, p_final: float) -> float:
        return self.base.in_flight_shortfall(p_final)
