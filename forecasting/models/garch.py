"""GARCH(1,1) with Student-t (or skew-t / normal) errors, estimated with ``arch``."""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from forecasting.models._arch import ArchVolatilityModel, arch_backcast
from forecasting.models.base import FloatArray

__all__ = ["GARCH", "garch_variance"]


def garch_variance(
    eps: FloatArray, omega: float, alpha: float, gamma: float, beta: float, backcast: float
) -> FloatArray:
    """GJR-GARCH(1,1,1) variance recursion (GARCH(1,1) when ``gamma = 0``).

    ``s2[t] = omega + alpha*eps[t-1]**2 + gamma*eps[t-1]**2*[eps[t-1] < 0] + beta*s2[t-1]``, with
    ``eps[-1]**2`` and ``s2[-1]`` replaced by ``backcast`` (the asymmetric term by half of it), as
    in ``arch``. Linear in the squared residuals, so it runs as a single ``lfilter``.

    Parameters
    ----------
    eps : numpy.ndarray
        Residuals ``y - mu`` (scaled units).
    omega, alpha, gamma, beta : float
        Volatility parameters.
    backcast : float
        Pre-sample value of ``eps**2`` and ``s2``.

    Returns
    -------
    numpy.ndarray
        ``s2[0..n]``: ``s2[t]`` is the variance of ``eps[t]``; ``s2[n]`` the one-step forecast.
    """
    e2 = eps * eps
    u = np.empty(eps.shape[0] + 1)
    u[0] = omega + alpha * backcast + gamma * 0.5 * backcast
    u[1:] = omega + (alpha * e2 + gamma * e2 * (eps < 0.0))
    s2, _ = lfilter([1.0], [1.0, -beta], u, zi=[beta * backcast])
    return np.asarray(s2, dtype=np.float64)


class GARCH(ArchVolatilityModel):
    """GARCH(1,1): ``s2_t = omega + alpha*eps_{t-1}**2 + beta*s2_{t-1}`` (Bollerslev 1986).

    Multi-step forecasts follow ``arch``'s analytic formula
    ``s2_{t+k} = omega + (alpha + beta) * s2_{t+k-1}``; ``sigma_h = sqrt(sum_k s2_{t+k})``.
    See :class:`~forecasting.models._arch.ArchVolatilityModel` for parameters and attributes.
    """

    name = "garch"
    _vol = "GARCH"
    _o = 0

    def _gjr_params(self) -> tuple[float, float, float, float]:
        p = self.volatility_params_
        if self._o:
            return float(p[0]), float(p[1]), float(p[2]), float(p[3])
        return float(p[0]), float(p[1]), 0.0, float(p[2])

    def _sigma2_next(self, y: FloatArray) -> FloatArray:
        eps = y - self.params_[0]
        omega, alpha, gamma, beta = self._gjr_params()
        return garch_variance(eps, omega, alpha, gamma, beta, arch_backcast(eps))[1:]

    def _multi_step(self, f1: FloatArray, h: int) -> FloatArray:
        omega, alpha, gamma, beta = self._gjr_params()
        f = f1
        total = f1.copy()
        for _ in range(h - 1):
            f = omega + alpha * f + gamma * (0.5 * f) + beta * f
            total = total + f
        return total
