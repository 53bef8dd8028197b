r"""Volatility forecast → dynamic liquidation-threshold path (for the ``dynamic_ltv`` policy).

Formula
-------
A position exactly at the threshold has debt ``d = c · p · LT`` (health factor 1). If the price
then moves against it by the ``z``-quantile of the forecast log-return distribution over the
liquidation horizon ``H``, ``p' = p · exp(-z · σ_H)``, and liquidating costs a fraction ``κ`` of
the collateral value (bonus/penalty paid to liquidators plus slippage), the protocol recovers
``c · p' · (1 - κ)``. It stays solvent iff that covers the debt, i.e. iff

    LT ≤ LT*(t) = (1 − κ) · exp(−z · σ_H(t))                         (solvency threshold)

The target is LT* kept inside a band around the protocol's governance threshold ``LT_base``:

    LT_target(t) = min(cap, max(floor, LT*(t)))        cap = LT_base, floor = LT_base − max_cut

and the published threshold moves toward the target by at most ``r`` per hour (ramp limit, so a
volatility spike cannot liquidate borrowers in one block):

    LT(t_k) = LT(t_{k−1}) + clip(LT_target(t_k) − LT(t_{k−1}), −r_down·Δh_k, +r_up·Δh_k)

starting from ``LT(t_{-1}) = cap``; ``Δh_k`` is the number of hours between consecutive rows.

Equivalently, the base threshold tolerates ``σ_H`` up to ``σ_tol = ln((1 − κ)/LT_base) / z``;
above it the threshold tightens.

Worked example (Aave v3 WETH: ``LT_base = 0.83``, ``κ = 0.05`` liquidation bonus, ``z = 2.326``
(99 %), ``max_cut = 0.10`` so floor 0.73, cap 0.83, ``r = 0.01`` per hour, 24 h forecast):

* tolerated volatility ``σ_tol = ln(0.95/0.83)/2.326 = 5.8 %`` per 24 h;
* calm, ``σ_24h = 3 %``: ``LT* = 0.95·exp(−0.0698) = 0.886`` → capped, ``LT = 0.83``;
* stressed, ``σ_24h = 6 %``: ``LT* = 0.95·exp(−0.1396) = 0.826`` → target 0.826;
* crash, ``σ_24h = 12 %``: ``LT* = 0.95·exp(−0.2791) = 0.719`` → floored at 0.73; with the ramp the
  threshold walks 0.83 → 0.82 → … → 0.73 over 10 hours, and climbs back at the same pace when the
  forecast calms down.

Causality: the forecast made at ``origin_ts`` uses closes up to the close of that bar, so its
threshold takes effect at ``ts = origin_ts + bar_seconds``; the threshold at ``ts`` uses only
forecasts with ``origin_ts <= ts - bar_seconds``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import polars as pl
from numpy.typing import ArrayLike

from forecasting.errors import InvalidBarsError

__all__ = [
    "MarginPolicy",
    "AAVE_V3_WETH",
    "MAKER_ETH_B",
    "solvency_threshold",
    "liquidation_threshold_path",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class MarginPolicy:
    """Parameters of the dynamic liquidation threshold (see the module docstring).

    Parameters
    ----------
    base_lt : float
        Governance threshold of the protocol (Aave ``liquidationThreshold``; Maker ``1 / mat``).
    liquidation_cost : float
        ``κ``: fraction of collateral value lost when liquidating (bonus/penalty + slippage).
    z : float
        Quantile of the adverse move (2.326 = one-sided 99 % normal).
    max_cut : float
        ``floor = base_lt - max_cut``.
    cap : float, optional
        Highest threshold; ``base_lt`` by default (never looser than governance).
    max_change_per_hour : float
        Ramp limit ``r_down`` (tightening) in threshold units per hour.
    max_increase_per_hour : float, optional
        Ramp limit ``r_up`` (loosening); equal to ``max_change_per_hour`` by default.
    """

    base_lt: float
    liquidation_cost: float = 0.05
    z: float = 2.326
    max_cut: float = 0.10
    cap: float | None = None
    max_change_per_hour: float = 0.01
    max_increase_per_hour: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.base_lt < 1.0:
            raise ValueError(f"base_lt must be in (0, 1), got {self.base_lt}")
        if not 0.0 <= self.liquidation_cost < 1.0:
            raise ValueError(f"liquidation_cost must be in [0, 1), got {self.liquidation_cost}")
        if self.z <= 0 or self.max_cut < 0 or self.max_change_per_hour <= 0:
            raise ValueError("z and max_change_per_hour must be > 0 and max_cut >= 0")
        if not 0.0 < self.floor <= self.upper:
            raise ValueError(
                f"floor = base_lt - max_cut = {self.floor} must be in (0, cap={self.upper}]; "
                "adjust max_cut or cap"
            )

    @property
    def floor(self) -> float:
        """Lowest threshold, ``base_lt - max_cut``."""
        return self.base_lt - self.max_cut

    @property
    def upper(self) -> float:
        """Highest threshold (``cap`` or ``base_lt``)."""
        return self.base_lt if self.cap is None else self.cap

    @property
    def tolerated_sigma(self) -> float:
        """Largest horizon sigma at which the base threshold is still solvent."""
        return math.log((1.0 - self.liquidation_cost) / self.base_lt) / self.z

    def with_(self, **changes: float | None) -> MarginPolicy:
        """Copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]


#: Aave v3 Ethereum WETH: threshold 83 %, liquidation bonus 5 % (REFERENCES.md, Oct 2025).
AAVE_V3_WETH = MarginPolicy(base_lt=0.83, liquidation_cost=0.05)
#: Maker ETH-B: liquidation ratio 130 % → threshold 1/1.3; cost = on-chain slippage of a large
#: auction (≈ 4 % for $35 M of ETH, 2021), the 13 % ``chop`` being paid by the vault owner.
MAKER_ETH_B = MarginPolicy(base_lt=1.0 / 1.3, liquidation_cost=0.04)


def solvency_threshold(sigma: ArrayLike, *, liquidation_cost: float, z: float) -> np.ndarray:
    """``LT* = (1 - liquidation_cost) * exp(-z * sigma)`` elementwise.

    Parameters
    ----------
    sigma : array_like
        Forecast std dev of the log return over the liquidation horizon.
    liquidation_cost : float
        ``κ``, fraction of collateral lost when liquidating.
    z : float
        Quantile of the adverse move.

    Returns
    -------
    numpy.ndarray
        Solvency-consistent thresholds.
    """
    s = np.asarray(sigma, dtype=np.float64)
    return (1.0 - liquidation_cost) * np.exp(-z * s)


def liquidation_threshold_path(
    sigma: pl.DataFrame,
    policy: MarginPolicy,
    *,
    bar_seconds: int = 3600,
    start_lt: float | None = None,
    details: bool = False,
) -> pl.DataFrame:
    """Turn a sigma path into a ramp-limited liquidation-threshold path.

    Parameters
    ----------
    sigma : polars.DataFrame
        ``origin_ts`` and ``sigma`` of **one** model and **one** horizon (the liquidation
        horizon), e.g. a filtered output of :func:`~forecasting.walkforward.walk_forward`.
        An optional column ``z`` gives a per-origin quantile that replaces ``policy.z`` (e.g.
        the ``var99_k`` of :func:`~forecasting.tails.var_multipliers`, Student-t/FHS/EVT, or
        its first-passage version).
    policy : MarginPolicy
        Threshold band, cost, quantile and ramp.
    bar_seconds : int
        Bar length: a forecast takes effect at the close of its origin bar.
    start_lt : float, optional
        Threshold in force before the first row (``policy.upper`` by default).
    details : bool
        Also return ``origin_ts``, ``sigma``, ``lt_solvency`` and ``lt_target``.

    Returns
    -------
    polars.DataFrame
        ``ts`` (time from which the threshold applies) and ``liquidation_threshold``.

    Raises
    ------
    InvalidBarsError
        If columns are missing, several models/horizons are mixed, or sigma is not finite.
    """
    if not {"origin_ts", "sigma"} <= set(sigma.columns):
        raise InvalidBarsError("sigma needs columns origin_ts and sigma (walk_forward output)")
    for col in ("model", "horizon_hours"):
        if col in sigma.columns and sigma[col].n_unique() > 1:
            raise InvalidBarsError(
                f"sigma mixes several values of {col!r}; filter to one model and one horizon, "
                "e.g. fc.filter(pl.col('model') == 'garch', pl.col('horizon_hours') == 24)"
            )
    has_z = "z" in sigma.columns
    frame = sigma.select(
        "origin_ts",
        pl.col("sigma").cast(pl.Float64),
        *([pl.col("z").cast(pl.Float64)] if has_z else []),
    ).sort("origin_ts")
    if frame["origin_ts"].is_duplicated().any():
        raise InvalidBarsError("duplicate origin_ts in sigma; keep one forecast per origin")
    s = frame["sigma"].to_numpy()
    if not np.all(np.isfinite(s)) or np.any(s < 0):
        raise InvalidBarsError("sigma has null, negative or non-finite values; drop those rows")
    if has_z:  # per-origin quantile (calibrated tails, forecasting.tails.var_multipliers)
        z = frame["z"].to_numpy()
        if not np.all(np.isfinite(z)) or np.any(z <= 0):
            raise InvalidBarsError("z must be finite and > 0 on every row")
        lt_star = (1.0 - policy.liquidation_cost) * np.exp(-z * s)
    else:
        lt_star = solvency_threshold(s, liquidation_cost=policy.liquidation_cost, z=policy.z)
    target = np.clip(lt_star, policy.floor, policy.upper)
    hours = frame["origin_ts"].diff().dt.total_seconds().to_numpy() / 3600.0
    hours = np.where(np.isnan(hours), bar_seconds / 3600.0, hours)
    down = policy.max_change_per_hour
    up = policy.max_increase_per_hour if policy.max_increase_per_hour is not None else down
    lt = np.empty_like(target)
    prev = policy.upper if start_lt is None else float(start_lt)
    for k in range(target.shape[0]):
        step = min(max(target[k] - prev, -down * hours[k]), up * hours[k])
        prev = prev + step
        lt[k] = prev
    out = frame.with_columns(
        (pl.col("origin_ts") + pl.duration(seconds=bar_seconds))
        .cast(frame.schema["origin_ts"])
        .alias("ts"),
        pl.Series("liquidation_threshold", lt),
        pl.Series("lt_solvency", lt_star),
        pl.Series("lt_target", target),
    )
    if details:
        return out.select(
            "ts", "liquidation_threshold", "origin_ts", "sigma", "lt_solvency", "lt_target"
        )
    return out.select("ts", "liquidation_threshold")
