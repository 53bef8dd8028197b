r"""Calibrated tail quantiles for VaR and for the margin's ``z`` (walk-forward, no look-ahead).

A volatility model gives ``σ_t``, the standard deviation of the horizon log return. The VaR at
level ``a`` of a long position is ``k_t · σ_t`` where ``k_t`` is the (positive) left-tail
quantile of the *standardized* return ``z = r / σ``. The normal ``k = 2.326`` (99 %) is too
small for crypto returns; the methods here estimate ``k_t`` from the model's **own past
standardized residuals** ``z_s = r_s / σ_s`` — only those whose horizon had ended by the origin
``t`` (origins ``s ≤ t − h``) — so the quantile is as causal as the forecast itself:

``normal``
    ``k = −Φ⁻¹(1 − a)`` (no estimation).
``t``
    Student-t with the degrees of freedom fitted by the method of moments on the past residuals
    (``ν = 4 + 6 / excess kurtosis``, clipped to ``[2.5, 60]``) and their standard deviation
    ``s``: ``k = −s · t_ν⁻¹(1 − a) · sqrt((ν − 2)/ν)``.
``fhs``
    Filtered historical simulation: ``k = −`` the empirical ``(1 − a)``-quantile of the past ``z``.
``evt``
    Peaks over threshold: a generalized Pareto distribution fitted by probability-weighted
    moments (Hosking & Wallis 1987) to the losses ``−z`` beyond their ``1 − tail_frac`` quantile
    ``u``; ``k = u + β/ξ · (((1 − a)/tail_frac)^(−ξ) − 1)`` (``ξ → 0``: exponential tail).

Until ``min_resid`` residuals are known the normal quantile is used. The quantile is refreshed
every ``refresh`` origins (24: daily, like the model refits). ``first_passage=True`` gives the
quantile of the **minimum** of the log price within the horizon instead of its value at the end,
by the reflection principle: for a driftless random walk ``P(min ≤ −x) ≈ 2 P(r_H ≤ −x)``, so the
tail probability ``1 − a`` is halved before taking the quantile (99 % → the 99.5 % quantile).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta
from typing import Literal

import numpy as np
import polars as pl
from numpy.typing import ArrayLike
from scipy import stats

__all__ = [
    "TAIL_METHODS",
    "tail_quantile",
    "var_multipliers",
    "var_column",
]

TailMethod = Literal["normal", "t", "fhs", "evt"]
#: The tail-quantile methods.
TAIL_METHODS: tuple[str, ...] = ("normal", "t", "fhs", "evt")


def var_column(level: float) -> str:
    """Name of the multiplier column for a VaR level (``var99_k`` for 0.99)."""
    return f"var{round(level * 100):d}_k"


def _gpd_pwm(excess: np.ndarray) -> tuple[float, float]:
    """``(xi, beta)`` of a generalized Pareto fit by probability-weighted moments."""
    x = np.sort(excess)
    n = x.shape[0]
    p = (np.arange(1, n + 1) - 0.35) / n
    a0 = float(x.mean())
    a1 = float(np.mean((1.0 - p) * x))
    denom = a0 - 2.0 * a1
    if denom <= 0 or a0 <= 0:
        return 0.0, max(a0, 1e-12)
    xi = 2.0 - a0 / denom
    beta = 2.0 * a0 * a1 / denom
    return float(min(max(xi, -0.5), 0.9)), float(max(beta, 1e-12))


def tail_quantile(
    z: ArrayLike,
    level: float,
    *,
    method: TailMethod = "fhs",
    tail_frac: float = 0.1,
    first_passage: bool = False,
) -> float:
    """Positive left-tail multiplier ``k`` of standardized returns ``z`` at ``level``.

    Parameters
    ----------
    z : array_like
        Standardized returns ``r / σ`` (finite).
    level : float
        Confidence level, e.g. 0.99.
    method : {"normal", "t", "fhs", "evt"}
        See the module notes.
    tail_frac : float
        Share of the sample above the EVT threshold.
    first_passage : bool
        Quantile of the minimum within the horizon (reflection approximation).

    Returns
    -------
    float
        ``k`` with ``VaR = k · σ``.
    """
    p = 1.0 - float(level)
    if first_passage:
        p /= 2.0
    if method == "normal":
        return float(-stats.norm.ppf(p))
    arr = np.asarray(z, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if arr.shape[0] < 10:
        return float(-stats.norm.ppf(p))
    if method == "fhs":
        return float(-np.quantile(arr, p))
    if method == "t":
        s = float(arr.std())
        kurt = float(stats.kurtosis(arr))  # excess
        nu = 4.0 + 6.0 / kurt if kurt > 0 else 60.0
        nu = min(max(nu, 2.5), 60.0)
        return float(-s * stats.t.ppf(p, nu) * math.sqrt((nu - 2.0) / nu))
    if method == "evt":
        loss = -arr
        if p >= tail_frac:  # the level is not in the tail: empirical quantile
            return float(np.quantile(loss, 1.0 - p))
        u = float(np.quantile(loss, 1.0 - tail_frac))
        excess = loss[loss > u] - u
        if excess.shape[0] < 5:
            return float(np.quantile(loss, 1.0 - p))
        xi, beta = _gpd_pwm(excess)
        ratio = p / tail_frac
        if abs(xi) < 1e-6:
            return float(u - beta * math.log(ratio))
        return float(u + beta / xi * (ratio ** (-xi) - 1.0))
    raise ValueError(f"method={method!r}; use one of {', '.join(TAIL_METHODS)}")


def var_multipliers(
    forecasts: pl.DataFrame,
    realized: pl.DataFrame,
    *,
    method: TailMethod = "fhs",
    levels: Sequence[float] = (0.95, 0.99),
    min_resid: int = 250,
    refresh: int = 24,
    tail_frac: float = 0.1,
    first_passage: bool = False,
    bar_hours: float = 1.0,
) -> pl.DataFrame:
    """Append walk-forward tail multipliers ``var{L}_k`` to forecasts.

    For each (model, horizon) the multiplier at origin ``t`` is estimated from the standardized
    residuals ``realized_return / sigma`` of the origins ``s ≤ t − h`` (their outcome is known at
    ``t``); until ``min_resid`` of them exist the normal quantile is used.

    Parameters
    ----------
    forecasts : polars.DataFrame
        ``model, origin_ts, horizon_hours, sigma`` of one asset and window (every origin).
    realized : polars.DataFrame
        ``origin_ts, horizon_hours, realized_return`` (other columns ignored).
    method : {"normal", "t", "fhs", "evt"}
        Tail method (module notes).
    levels : sequence of float
        VaR levels.
    min_resid : int
        Residuals needed before the estimate replaces the normal quantile.
    refresh : int
        Re-estimate every ``refresh`` origins.
    tail_frac : float
        EVT threshold share.
    first_passage : bool
        Quantile of the minimum within the horizon (reflection approximation).
    bar_hours : float
        Bar length in hours (to turn ``horizon_hours`` into origins).

    Returns
    -------
    polars.DataFrame
        ``forecasts`` with one ``var{L}_k`` column per level (see :func:`var_column`).
    """
    key = ["origin_ts", "horizon_hours"]
    rz = realized.select(
        pl.col("origin_ts").cast(forecasts.schema["origin_ts"]),
        pl.col("horizon_hours").cast(forecasts.schema["horizon_hours"]),
        "realized_return",
    )
    joined = forecasts.join(rz, on=key, how="left").sort("model", "horizon_hours", "origin_ts")
    parts = []
    for (_, hours), grp in joined.group_by(["model", "horizon_hours"], maintain_order=True):
        h = max(1, int(round(float(hours) / bar_hours)))  # type: ignore[arg-type]
        z = (grp["realized_return"] / grp["sigma"]).to_numpy().astype(np.float64)
        ts = grp["origin_ts"]
        # residual of origin s is usable at origin t when s + h bars <= t
        known_by = (ts + timedelta(hours=h * bar_hours)).to_numpy()
        origins = ts.to_numpy()
        n = grp.height
        cols = {var_column(lv): np.empty(n) for lv in levels}
        normal = {
            lv: tail_quantile((), lv, method="normal", first_passage=first_passage) for lv in levels
        }
        current = dict(normal)
        last_refresh = -refresh
        for i in range(n):
            if i - last_refresh >= refresh:
                last_refresh = i
                m = int(np.searchsorted(known_by, origins[i], side="right"))
                past = z[:m]
                past = past[np.isfinite(past)]
                if past.shape[0] >= min_resid:
                    current = {
                        lv: tail_quantile(
                            past,
                            lv,
                            method=method,
                            tail_frac=tail_frac,
                            first_passage=first_passage,
                        )
                        for lv in levels
                    }
                else:
                    current = dict(normal)
            for lv in levels:
                cols[var_column(lv)][i] = current[lv]
        parts.append(
            grp.drop("realized_return").with_columns(pl.Series(k, v) for k, v in cols.items())
        )
    if not parts:
        return forecasts.with_columns(
            pl.lit(None, dtype=pl.Float64).alias(var_column(lv)) for lv in levels
        )
    return pl.concat(parts)
