"""Impact check: observed returns against those the impact model predicts from forced flow.

For intervals outside the crash windows, the model's predicted log return of an interval's net
forced flow ``q`` (USD, sells > 0) treated as one metaorder is
``r̂ = −Y · σ_day · sign(q) · sqrt(|q| / ADV)``. :func:`impact_slope` regresses the observed log
returns on ``r̂`` (OLS with intercept): a slope above 1 beyond its confidence interval means the
model understates the impact of forced flow (cascade shares biased down), below 1 that it
overstates it. Liquidations are also *caused* by returns, which biases the slope up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from backtest.market.errors import MarketConfigError

__all__ = ["ImpactSlope", "impact_slope", "predicted_returns"]


def predicted_returns(
    flow_usd: np.ndarray, sigma_day: np.ndarray, adv_usd: np.ndarray, y: float = 1.0
) -> np.ndarray:
    """``−Y · σ_day · sign(q) · sqrt(|q| / ADV)`` per interval."""
    q = np.asarray(flow_usd, dtype=float)
    return -y * np.asarray(sigma_day) * np.sign(q) * np.sqrt(np.abs(q) / np.asarray(adv_usd))


@dataclass(frozen=True)
class ImpactSlope:
    """OLS of observed on predicted returns: slope, its 95 % interval, intercept, R², n."""

    slope: float
    slope_lo: float
    slope_hi: float
    intercept: float
    r2: float
    n: int

    @property
    def verdict(self) -> str:
        """``understates`` / ``overstates`` / ``consistent`` (slope vs 1 and its interval)."""
        if self.slope_lo > 1:
            return "understates impact (cascade shares biased down)"
        if self.slope_hi < 1:
            return "overstates impact (cascade shares biased up)"
        return "consistent with slope 1"


def impact_slope(observed: np.ndarray, predicted: np.ndarray) -> ImpactSlope:
    """Regress observed on predicted returns (finite pairs only)."""
    x, y = np.asarray(predicted, float), np.asarray(observed, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 10 or np.ptp(x) == 0:
        raise MarketConfigError(f"{x.size} usable intervals; the impact check needs 10 with flow")
    res = stats.linregress(x, y)
    t = stats.t.ppf(0.975, x.size - 2)
    return ImpactSlope(
        slope=float(res.slope),
        slope_lo=float(res.slope - t * res.stderr),
        slope_hi=float(res.slope + t * res.stderr),
        intercept=float(res.intercept),
        r2=float(res.rvalue**2),
        n=int(x.size),
    )
