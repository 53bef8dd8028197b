"""Shared machinery of the ``arch``-based models (GARCH, GJR-GARCH, EGARCH).

Estimation uses :func:`arch.arch_model` (constant mean, Student-t, skew-t or normal errors). The
returns are multiplied by a data-driven factor ``scale_ = 1 / std(training returns)`` so the
optimizer sees unit-variance data (``arch`` then has no reason to emit ``DataScaleWarning``);
variances are divided by ``scale_**2`` on the way out.

Between refits the conditional variance is updated with the parameters held fixed by the model's
own recursion, written to be the same recursion as ``arch`` (same backcast: the 0.94-weighted mean
of the first 75 squared residuals; same multi-step formulas). It reproduces
``arch_model(y).fix(params).forecast(...)`` to floating-point precision, except that ``arch``'s
loose variance bounds (computed from the *whole* sample, i.e. with look-ahead) are not applied.

``arch`` hands its linear parameter constraints (``a @ p - b >= 0``, e.g. ``alpha + beta < 1``)
to SLSQP without their Jacobians, so SciPy differentiates each one numerically at every
iteration — a third or more of a fit on ~2,000 hourly returns. The fits here pass the exact
Jacobians (the rows of ``a``) instead; see :func:`exact_constraint_jacobians`.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, ClassVar, Self

import arch.univariate.base as _arch_base
import numpy as np
from arch import arch_model
from arch.utility.exceptions import StartingValueWarning
from numpy.typing import ArrayLike

from forecasting.errors import InvalidBarsError, ModelConvergenceWarning
from forecasting.models.base import FloatArray, VolatilityModel

__all__ = ["ArchVolatilityModel", "arch_backcast", "exact_constraint_jacobians"]

_DISTS = {"normal": "normal", "t": "t", "studentst": "t", "skewt": "skewt", "skewstudent": "skewt"}


def arch_backcast(resids: FloatArray) -> float:
    """``arch``'s backcast: 0.94-weighted mean of the first ``min(75, n)`` squared residuals."""
    tau = min(75, resids.shape[0])
    w = 0.94 ** np.arange(tau)
    w = w / np.sum(w)
    return float(np.sum((resids[:tau] ** 2.0) * w))


def _linear(coeff: FloatArray, val: float, params: FloatArray, *args: Any) -> float:
    return float(np.dot(coeff, params) - val)


def _linear_jac(coeff: FloatArray, params: FloatArray, *args: Any) -> FloatArray:
    return coeff


def _constraints_with_jacobians(a: FloatArray, b: FloatArray) -> list[dict[str, object]]:
    """``arch.univariate.base.constraint`` (one ``a[i] @ p - b[i] >= 0`` each) plus ``jac``."""
    return [
        {"type": "ineq", "fun": partial(_linear, a[i], b[i]), "jac": partial(_linear_jac, a[i])}
        for i in range(a.shape[0])
    ]


_PATCH_LOCK = threading.RLock()
#: ``arch``'s own constraint builder, captured at import (what every block restores).
_ARCH_CONSTRAINT: Callable[..., Any] | None = getattr(_arch_base, "constraint", None)


@contextmanager
def exact_constraint_jacobians() -> Iterator[None]:
    """Within the block, ``arch`` fits give SLSQP the exact Jacobians of their linear constraints.

    ``arch``'s ``fit`` builds its constraints with the module function
    ``arch.univariate.base.constraint`` (no Jacobian: SciPy then takes forward differences of
    each linear constraint at every iteration). The block swaps in a version that also returns
    ``jac`` (the constant row ``a[i]``) and restores the original on exit; a lock serializes the
    blocks so concurrent threads always see one consistent version (determinism). The result
    equals the numerically differentiated fit to the optimizer's tolerance (forecasts within
    ~1e-4 relative on hourly BTC/ETH; docs/benchmarks.md) at about 0.5–0.7 × the CPU time.
    If ``arch`` no longer has that function, the block changes nothing.
    """
    if _ARCH_CONSTRAINT is None:
        yield
        return
    with _PATCH_LOCK:
        _arch_base.constraint = _constraints_with_jacobians
        try:
            yield
        finally:
            _arch_base.constraint = _ARCH_CONSTRAINT


class ArchVolatilityModel(VolatilityModel):
    """Base class of the ``arch`` models; subclasses set ``_vol`` and ``_o``.

    Parameters
    ----------
    dist : {"t", "skewt", "normal"}
        Error distribution: Student-t (default), Hansen's skew-t, or normal.
    warm_start : bool
        Start the optimizer from the previous fit's parameters when refitting (faster; the
        result still only depends on data up to the origin).
    max_iter : int
        Maximum optimizer iterations.

    Attributes
    ----------
    params_ : numpy.ndarray
        Estimated parameters, in the units of the scaled returns.
    param_names_ : list of str
        ``arch``'s parameter names (``mu``, ``omega``, ``alpha[1]``, ...).
    scale_ : float
        Factor applied to the returns before estimation.
    converged_ : bool
        Whether the optimizer reported convergence.
    loglikelihood_ : float
        Log-likelihood at the estimates (scaled data).
    arch_result_ : arch.univariate.base.ARCHModelResult
        The full ``arch`` result, for inspection.
    n_obs_ : int
        Number of returns fitted.
    """

    _vol: ClassVar[str] = "GARCH"
    _o: ClassVar[int] = 0

    def __init__(self, *, dist: str = "t", warm_start: bool = True, max_iter: int = 500) -> None:
        self.dist = dist
        self.warm_start = warm_start
        self.max_iter = max_iter

    @property
    def min_train_bars(self) -> int:
        """Minimum number of returns :meth:`fit` needs."""
        return 100

    # -- estimation ---------------------------------------------------------------------------
    def _arch_dist(self) -> str:
        try:
            return _DISTS[str(self.dist).lower()]
        except KeyError:
            raise ValueError(
                f"dist={self.dist!r} is not supported; use 't', 'skewt' or 'normal'"
            ) from None

    def fit(
        self, returns: ArrayLike, exog: ArrayLike | None = None, *, rv: ArrayLike | None = None
    ) -> Self:
        """Estimate with ``arch``; see :meth:`VolatilityModel.fit` (``exog``/``rv`` unused)."""
        r, x, v = self._prepare(returns, exog, None)
        self._check_length(r.shape[0])
        sd = float(np.std(r))
        if not sd > 0.0:
            raise InvalidBarsError(
                "returns have zero variance (a flat price); a volatility model cannot be fitted "
                "on them — use a window that contains price moves"
            )
        scale = 1.0 / sd
        y = r * scale
        model = arch_model(
            y, mean="Constant", vol=self._vol, p=1, o=self._o, q=1, dist=self._arch_dist()
        )
        start = None
        if (
            self.warm_start
            and hasattr(self, "params_")
            and self.params_.shape[0]
            == len(
                model.parameter_names()
                + model.volatility.parameter_names()
                + model.distribution.parameter_names()
            )
        ):
            start = self.params_
        res = self._fit_once(model, start)
        if res.convergence_flag != 0 and start is not None:
            res = self._fit_once(model, None)
        converged = res.convergence_flag == 0
        if not converged:
            warnings.warn(
                ModelConvergenceWarning(
                    f"{type(self).__name__} (dist={self.dist!r}) did not converge on "
                    f"{r.shape[0]} returns ({res.optimization_result.message}); the estimates "
                    "were kept. Fix: use a longer or rolling window, dist='normal', or a larger "
                    "max_iter."
                ),
                stacklevel=2,
            )
        self.params_ = np.asarray(res.params, dtype=np.float64)
        self.param_names_ = list(res.params.index)
        self.scale_ = scale
        self.converged_ = bool(converged)
        self.loglikelihood_ = float(res.loglikelihood)
        self.arch_result_ = res
        self._remember(r, x, v)
        self._after_fit(y)
        return self

    def _fit_once(self, model: Any, start: FloatArray | None) -> Any:
        with warnings.catch_warnings(), exact_constraint_jacobians():
            # a warm start outside the constraints is simply ignored by arch: that is fine
            warnings.simplefilter("ignore", StartingValueWarning)
            return model.fit(
                disp="off",
                show_warning=False,
                starting_values=start,
                options={"maxiter": int(self.max_iter)},
            )

    def _after_fit(self, y: FloatArray) -> None:
        """Hook for subclasses that cache the recursion state."""

    # -- fixed-parameter filtering ----------------------------------------------------------------
    @property
    def volatility_params_(self) -> FloatArray:
        """``[omega, alpha, (gamma,) beta]`` in scaled units."""
        return self.params_[1 : 4 + self._o]

    @property
    def dist_params_(self) -> FloatArray:
        """Shape parameters of the error distribution (``nu``; ``eta, lambda`` for skew-t)."""
        return self.params_[4 + self._o :]

    def variance_path(self, returns: ArrayLike) -> FloatArray:
        """One-step-ahead conditional variance in *return* units after each return.

        Parameters
        ----------
        returns : array_like
            Returns starting at the first fitted observation.

        Returns
        -------
        numpy.ndarray
            ``out[m]`` is the variance of return ``m + 1`` given ``returns[: m + 1]``.
        """
        self._check_fitted()
        y = self._prepare(returns, None, None)[0] * self.scale_
        return self._sigma2_next(y) / self.scale_**2

    def _sigma2_next(self, y: FloatArray) -> FloatArray:
        """Scaled one-step-ahead variances ``s2[1..n]`` (``s2[t]`` = variance of ``y[t]``)."""
        raise NotImplementedError

    def _multi_step(self, f1: FloatArray, h: int) -> FloatArray:
        """Sum of the 1..h-step variance forecasts given the one-step forecasts ``f1``."""
        raise NotImplementedError

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
        self._check_fitted()
        h = self._check_horizon(horizon_bars)
        y = self._prepare(returns, None, None)[0] * self.scale_
        f1 = self._sigma2_next(y)
        f1 = f1[self._last(f1.shape[0], n_last) :]
        total = f1 if h == 1 else self._multi_step(f1, h)
        return np.sqrt(total) / self.scale_
