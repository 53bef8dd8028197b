"""Optimal liquidation trajectories (Almgren–Chriss) — the analytic reference of issue #15.

A seller holds an inventory of ``X`` USD of collateral and sells it over ``M`` steps of one bar
each (``n_k`` USD at step ``k = 1..M``, holdings ``x_k = X − n_1 − … − n_k``, ``x_0 = X``,
``x_M = 0``). The mean–variance objective is

``U = E + λ·V``, ``V = σ² · Σ_{k=1..M} x_k²``

with ``σ`` the per-step volatility of the price (fraction: ``σ_day · sqrt(step/86,400)``) and
``λ`` the risk aversion (per USD). The expected cost ``E`` of the impact models:

* **linear** (Almgren & Chriss 2000, discrete form): temporary impact ``η·n_k`` (fraction of the
  price per USD sold in a step, ``η = 1/depth_usd``) and permanent impact ``γ`` per USD:
  ``E = ½γX² + (η − ½γ)·Σ n_k²``. The optimum is the closed form

  ``x_k = X · sinh(κ(M − k)) / sinh(κM)``,  ``2·(cosh κ − 1) = λσ² / η̃``, ``η̃ = η − ½γ``

  (:func:`ac_kappa`, :func:`ac_holdings`); ``λ → 0`` gives ``κ → 0`` and the straight line
  ``x_k = X·(M − k)/M`` (TWAP).
* **sqrt** (square-root law, as :class:`~backtest.impact.SqrtImpact`): a sale of ``n`` USD in
  one step costs ``n · Y·σ_day·sqrt(n/ADV)``, ``E = c · Σ n_k^{3/2}`` with
  ``c = Y·σ_day/sqrt(ADV)``. No closed form; :func:`numeric_holdings` minimises ``U`` over the
  sales (``n_k ≥ 0``, ``Σ n_k = X``) with SciPy's SLSQP. Unlike the linear case the optimal shape
  depends on ``X``.

:func:`numeric_holdings` also solves the linear case (the tests check it against the closed form).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "SECONDS_PER_DAY",
    "ac_holdings",
    "ac_kappa",
    "execution_objective",
    "numeric_holdings",
    "step_sigma",
]

_CONTROLLER: Any = None


def _blas_single_thread() -> Any:
    """One BLAS thread while SLSQP runs.

    Its small LAPACK calls slowed down 100-fold under thread oversubscription on the shared
    machine (24 intervals: 3 ms with one thread, 0.3–3 s without the limit).
    """
    global _CONTROLLER
    from threadpoolctl import ThreadpoolController

    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")


#: Seconds in a day (``σ_day`` → per-step volatility).
SECONDS_PER_DAY = 86_400.0


def step_sigma(sigma_day: float, step_seconds: float) -> float:
    """Per-step volatility ``σ_day · sqrt(step_seconds / 86,400)`` (fraction)."""
    return float(sigma_day) * math.sqrt(float(step_seconds) / SECONDS_PER_DAY)


def ac_kappa(risk_aversion: float, sigma: float, eta: float, gamma: float = 0.0) -> float:
    """Almgren–Chriss urgency ``κ`` per step: ``2·(cosh κ − 1) = λσ²/(η − γ/2)``.

    Parameters
    ----------
    risk_aversion : float
        ``λ`` (per USD), ``>= 0``.
    sigma : float
        Per-step volatility (fraction).
    eta : float
        Temporary impact per USD sold in a step (``1 / depth_usd``).
    gamma : float, optional
        Permanent impact per USD (``0``: none).

    Returns
    -------
    float
        ``κ >= 0`` (``0`` when ``λ = 0``).

    Raises
    ------
    ValueError
        ``η − γ/2 <= 0`` (the discrete problem is not convex) or a negative input.
    """
    if risk_aversion < 0 or sigma < 0 or eta <= 0 or gamma < 0:
        raise ValueError("need risk_aversion >= 0, sigma >= 0, eta > 0, gamma >= 0")
    eta_t = eta - 0.5 * gamma
    if eta_t <= 0:
        raise ValueError(f"eta - gamma/2 = {eta_t!r} must be > 0")
    return math.acosh(1.0 + 0.5 * risk_aversion * sigma**2 / eta_t)


def ac_holdings(n_steps: int, kappa: float) -> np.ndarray:
    """Holdings fractions ``x_k / X = sinh(κ(M − k)) / sinh(κM)``, ``k = 0..M``.

    ``κ = 0`` (or small enough that ``sinh`` underflows the difference) is the straight line
    ``(M − k)/M``. For large ``κM`` the ratio is evaluated as ``exp(−κk)·(1 − e^{−2κ(M−k)}) /
    (1 − e^{−2κM})`` to avoid overflow.

    Parameters
    ----------
    n_steps : int
        ``M >= 1``.
    kappa : float
        ``κ >= 0`` per step (:func:`ac_kappa`).

    Returns
    -------
    numpy.ndarray
        ``M + 1`` values from 1 down to 0.
    """
    if n_steps < 1:
        raise ValueError("n_steps must be >= 1")
    m = int(n_steps)
    k = np.arange(m + 1, dtype=np.float64)
    if kappa * m < 1e-8:
        return (m - k) / m
    num = -np.expm1(-2.0 * kappa * (m - k))
    den = -math.expm1(-2.0 * kappa * m)
    out = np.exp(-kappa * k) * num / den
    out[-1] = 0.0
    return out


def execution_objective(
    sales: np.ndarray,
    inventory_usd: float,
    *,
    risk_aversion: float,
    sigma: float,
    impact: str = "linear",
    eta: float = 0.0,
    gamma: float = 0.0,
    sqrt_coef: float = 0.0,
) -> float:
    """``U = E + λσ²·Σ x_k²`` of a sale schedule (see the module docstring).

    Parameters
    ----------
    sales : numpy.ndarray
        ``n_1..n_M`` (USD), summing to ``inventory_usd``.
    inventory_usd : float
        ``X``.
    risk_aversion, sigma : float
        ``λ`` (per USD) and the per-step volatility.
    impact : {"linear", "sqrt"}
        Cost model.
    eta, gamma : float
        Linear temporary and permanent impact per USD.
    sqrt_coef : float
        ``c = Y·σ_day/sqrt(ADV)`` of the square-root cost ``c·n^{3/2}``.

    Returns
    -------
    float
    """
    n = np.asarray(sales, dtype=np.float64)
    x = inventory_usd - np.cumsum(n)
    if impact == "linear":
        cost = 0.5 * gamma * inventory_usd**2 + (eta - 0.5 * gamma) * float(np.sum(n**2))
    elif impact == "sqrt":
        cost = sqrt_coef * float(np.sum(np.maximum(n, 0.0) ** 1.5))
    else:
        raise ValueError(f"impact {impact!r}: use 'linear' or 'sqrt'")
    return cost + risk_aversion * sigma**2 * float(np.sum(x**2))


def numeric_holdings(
    n_steps: int,
    inventory_usd: float,
    *,
    risk_aversion: float,
    sigma: float,
    impact: str = "sqrt",
    eta: float = 0.0,
    gamma: float = 0.0,
    sqrt_coef: float = 0.0,
) -> np.ndarray:
    """Holdings fractions ``x_k / X`` minimising :func:`execution_objective` (SLSQP).

    The variables are the sale fractions ``n_k / X >= 0`` summing to 1, started from the TWAP;
    the objective is divided by its value at the TWAP (so the tolerance does not depend on the
    units).
    Deterministic (no random start).

    Parameters
    ----------
    n_steps : int
        ``M >= 1``.
    inventory_usd : float
        ``X > 0``.
    risk_aversion, sigma, impact, eta, gamma, sqrt_coef
        As :func:`execution_objective`.

    Returns
    -------
    numpy.ndarray
        ``M + 1`` holdings fractions from 1 down to 0.

    Raises
    ------
    RuntimeError
        The optimiser did not converge.
    """
    from scipy.optimize import minimize

    if n_steps < 1 or not inventory_usd > 0:
        raise ValueError("need n_steps >= 1 and inventory_usd > 0")
    m = int(n_steps)
    if m == 1:
        return np.array([1.0, 0.0])
    big_x = float(inventory_usd)
    lam_s2 = risk_aversion * sigma**2

    def objective(f: np.ndarray) -> float:
        return execution_objective(
            f * big_x,
            big_x,
            risk_aversion=risk_aversion,
            sigma=sigma,
            impact=impact,
            eta=eta,
            gamma=gamma,
            sqrt_coef=sqrt_coef,
        )

    f0 = np.full(m, 1.0 / m)
    scale = objective(f0)
    scale = scale if scale > 0 else 1.0

    def fun(f: np.ndarray) -> float:
        return objective(f) / scale

    def jac(f: np.ndarray) -> np.ndarray:
        n = f * big_x
        x = big_x - np.cumsum(n)
        # d/dn_j of Σ_k x_k² = -2 Σ_{k>=j} x_k
        dvar = -2.0 * lam_s2 * np.cumsum(x[::-1])[::-1]
        if impact == "linear":
            dcost = 2.0 * (eta - 0.5 * gamma) * n
        else:
            dcost = 1.5 * sqrt_coef * np.sqrt(np.maximum(n, 0.0))
        return (dcost + dvar) * (big_x / scale)  # dU/df = X·dU/dn

    with _blas_single_thread():
        res = minimize(
            fun,
            f0,
            jac=jac,
            method="SLSQP",
            bounds=[(0.0, 1.0)] * m,
            constraints=[
                {
                    "type": "eq",
                    "fun": lambda f: float(f.sum()) - 1.0,
                    "jac": lambda f: np.ones_like(f),
                }
            ],
            options={"maxiter": 1_000, "ftol": 1e-13},
        )
    if not res.success:
        raise RuntimeError(f"optimal schedule did not converge: {res.message}")
    f = np.clip(res.x, 0.0, None)
    f /= f.sum()
    holdings = 1.0 - np.concatenate([[0.0], np.cumsum(f)])
    holdings[-1] = 0.0
    return np.clip(holdings, 0.0, 1.0)
