"""EGARCH(1,1,1) (Nelson 1991), estimated with ``arch``."""

from __future__ import annotations

import math
from typing import Self

import numpy as np
from arch.univariate import Normal, SkewStudent, StudentsT
from numpy.typing import ArrayLike

from forecasting.models._arch import ArchVolatilityModel, arch_backcast
from forecasting.models.base import FloatArray

__all__ = ["EGARCH"]

_SQRT2_OV_PI = math.sqrt(2.0 / math.pi)
_CHUNK = 256


def _egarch_continue(
    eps: FloatArray, start: int, ln0: float, params: tuple[float, float, float, float]
) -> FloatArray:
    """Continue ``ln s2`` from index ``start`` (where it equals ``ln0``) to ``len(eps)``."""
    omega, alpha, gamma, beta = params
    n = eps.shape[0]
    out = np.empty(n - start + 1)
    ln = ln0
    out[0] = ln
    e_list = eps[start:].tolist()
    for i, e_raw in enumerate(e_list, start=1):
        e = e_raw / math.sqrt(math.exp(ln))
        ln = omega + alpha * (abs(e) - _SQRT2_OV_PI) + gamma * e + beta * ln
        out[i] = ln
    return out


class EGARCH(ArchVolatilityModel):
    """EGARCH(1,1,1) with Student-t (or skew-t / normal) errors.

    ``ln s2_t = omega + alpha*(|e_{t-1}| - sqrt(2/pi)) + gamma*e_{t-1} + beta*ln s2_{t-1}`` with
    ``e = eps / s``, exactly as ``arch``. Beyond one step the expected variance has no closed form
    (``arch`` only offers simulation); here it is a Monte-Carlo average over ``n_sims`` paths with
    common random numbers (seeded by ``random_state``, antithetic uniforms), so forecasts are
    deterministic and use no data after the origin. By default the shocks are resampled from the
    *training* standardized residuals (filtered historical simulation, ``arch``'s "bootstrap"):
    with Student-t shocks ``E[exp(alpha*|z|)]`` is infinite, so parametric simulation
    (``method="simulation"``) is dominated by a few extreme draws when ``nu`` is small, as it is
    for hourly crypto returns (``nu`` ≈ 3).

    Parameters
    ----------
    dist, warm_start, max_iter
        See :class:`~forecasting.models._arch.ArchVolatilityModel`.
    method : {"bootstrap", "simulation"}
        Source of the multi-step shocks: training standardized residuals, or the fitted
        error distribution.
    n_sims : int
        Number of simulated shock paths for horizons > 1 (rounded up to even).
    random_state : int
        Seed of the shock paths.

    Attributes
    ----------
    std_resid_ : numpy.ndarray
        Standardized residuals of the training sample.
    """

    name = "egarch"
    _vol = "EGARCH"
    _o = 1

    def __init__(
        self,
        *,
        dist: str = "t",
        warm_start: bool = True,
        max_iter: int = 500,
        method: str = "bootstrap",
        n_sims: int = 2000,
        random_state: int = 0,
    ) -> None:
        super().__init__(dist=dist, warm_start=warm_start, max_iter=max_iter)
        self.method = method
        self.n_sims = n_sims
        self.random_state = random_state

    def fit(
        self, returns: ArrayLike, exog: ArrayLike | None = None, *, rv: ArrayLike | None = None
    ) -> Self:
        """Estimate with ``arch``; see :meth:`VolatilityModel.fit` (``exog``/``rv`` unused)."""
        if self.method not in ("bootstrap", "simulation"):
            raise ValueError(f"method={self.method!r}; use 'bootstrap' or 'simulation'")
        self._shock_cache: dict[int, FloatArray] = {}
        return super().fit(returns, exog, rv=rv)

    def _params4(self) -> tuple[float, float, float, float]:
        p = self.volatility_params_
        return float(p[0]), float(p[1]), float(p[2]), float(p[3])

    def _after_fit(self, y: FloatArray) -> None:
        self._train_y = y
        self._train_ln = self._ln_path(y, use_cache=False)
        eps = y - self.params_[0]
        self.std_resid_ = eps / np.exp(0.5 * self._train_ln[:-1])

    def _ln_path(self, y: FloatArray, *, use_cache: bool = True) -> FloatArray:
        """``ln s2[0..n]`` for scaled returns ``y`` (reuses the fitted state when possible)."""
        eps = y - self.params_[0]
        params = self._params4()
        if use_cache:
            n0 = self._train_y.shape[0]
            if y.shape[0] >= n0 and np.array_equal(y[:n0], self._train_y):
                tail = _egarch_continue(eps, n0, float(self._train_ln[n0]), params)
                return np.concatenate([self._train_ln[:n0], tail])
        omega, _, _, beta = params
        ln0 = omega + beta * math.log(arch_backcast(eps))
        return _egarch_continue(eps, 0, ln0, params)

    def _sigma2_next(self, y: FloatArray) -> FloatArray:
        return np.exp(self._ln_path(y)[1:])

    def _shocks(self, steps: int) -> FloatArray:
        """Standardized shocks, shape ``(n_sims, steps)``, from the fitted distribution."""
        cached = self._shock_cache.get(steps)
        if cached is not None:
            return cached
        half = max(1, (int(self.n_sims) + 1) // 2)
        u = np.random.default_rng(self.random_state).random((half, steps))
        u = np.concatenate([u, 1.0 - u])
        if self.method == "bootstrap":
            pool = self.std_resid_
            idx = np.minimum((u * pool.shape[0]).astype(np.int64), pool.shape[0] - 1)
            z = pool[idx]
        else:
            dist = {"normal": Normal, "t": StudentsT, "skewt": SkewStudent}[self._arch_dist()]()
            z = np.asarray(dist.ppf(u.ravel(), self.dist_params_), dtype=np.float64)
            z = z.reshape(u.shape)
        self._shock_cache[steps] = z
        return z

    def _multi_step(self, f1: FloatArray, h: int) -> FloatArray:
        omega, alpha, gamma, beta = self._params4()
        z = self._shocks(h - 1)
        # shock terms do not depend on the origin: precompute g(z) per path and step
        g = omega + alpha * (np.abs(z) - _SQRT2_OV_PI) + gamma * z
        total = f1.copy()
        ln1 = np.log(f1)
        for lo in range(0, f1.shape[0], _CHUNK):
            ln = np.repeat(ln1[lo : lo + _CHUNK, None], z.shape[0], axis=1)
            acc = np.zeros(ln.shape[0])
            for k in range(h - 1):
                ln = g[:, k] + beta * ln
                acc = acc + np.exp(ln).mean(axis=1)
            total[lo : lo + _CHUNK] += acc
        return total
