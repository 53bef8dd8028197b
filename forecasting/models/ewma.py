"""RiskMetrics EWMA volatility (λ = 0.94)."""

from __future__ import annotations

from typing import Self

import numpy as np
from numpy.typing import ArrayLike
from scipy.signal import lfilter

from forecasting.models.base import FloatArray, VolatilityModel

__all__ = ["EWMA"]


class EWMA(VolatilityModel):
    """Exponentially weighted moving average of squared returns (RiskMetrics 1996).

    ``s2_{t+1} = lam * s2_t + (1 - lam) * r_t**2`` with zero mean; the recursion starts from the
    mean of the first ``init_bars`` squared returns (``s2_0``). The ``h``-bar forecast is
    ``h * s2_{t+1}`` (square-root-of-time rule), so ``sigma_h = sqrt(h * s2_{t+1})``.

    Parameters
    ----------
    lam : float
        Decay factor λ in (0, 1); 0.94 is RiskMetrics' daily value.
    init_bars : int
        Number of initial squared returns averaged to start the recursion.

    Attributes
    ----------
    init_var_ : float
        Starting variance ``s2_0``.
    n_obs_ : int
        Number of returns fitted.
    """

    name = "ewma"

    def __init__(self, *, lam: float = 0.94, init_bars: int = 24) -> None:
        self.lam = lam
        self.init_bars = init_bars

    @property
    def min_train_bars(self) -> int:
        """Minimum number of returns :meth:`fit` needs."""
        return max(2, int(self.init_bars))

    def fit(
        self, returns: ArrayLike, exog: ArrayLike | None = None, *, rv: ArrayLike | None = None
    ) -> Self:
        """Fit (store the starting variance); see :meth:`VolatilityModel.fit`."""
        if not 0.0 < self.lam < 1.0:
            raise ValueError(f"lam must be in (0, 1), got {self.lam}")
        r, x, v = self._prepare(returns, exog, None)
        self._check_length(r.shape[0])
        self.init_var_ = float(np.mean(r[: int(self.init_bars)] ** 2))
        self._remember(r, x, v)
        return self

    def variance_path(self, returns: ArrayLike) -> FloatArray:
        """One-step-ahead variance ``s2_{m+1}`` after each return ``m`` (fitted start value).

        Parameters
        ----------
        returns : array_like
            Returns starting at the first fitted observation.

        Returns
        -------
        numpy.ndarray
            One-step-ahead variance at every origin.
        """
        self._check_fitted()
        r, _, _ = self._prepare(returns, None, None)
        lam = float(self.lam)
        out, _ = lfilter([1.0 - lam], [1.0, -lam], r * r, zi=[lam * self.init_var_])
        return np.asarray(out, dtype=np.float64)

    def predict_path(
        self,
        returns: ArrayLike,
        exog: ArrayLike | None = None,
        *,
        rv: ArrayLike | None = None,
        horizon_bars: int = 1,
        n_last: int | None = None,
    ) -> FloatArray:
        """Sigma at every origin; see :meth:`VolatilityModel.predict_path`."""
        h = self._check_horizon(horizon_bars)
        s2 = self.variance_path(returns)
        return np.sqrt(h * s2[self._last(s2.shape[0], n_last) :])
