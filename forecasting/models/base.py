"""Common interface of the volatility models (scikit-learn style).

Every model is a :class:`sklearn.base.BaseEstimator` (so ``get_params``/``set_params``/``clone``
work) with

* ``fit(returns, exog=None, *, rv=None) -> self`` — estimate on the returns up to the origin;
  fitted attributes end in ``_``;
* ``predict(horizon_bars=1) -> float`` — sigma of the log return over the next ``horizon_bars``
  bars after the last fitted return (a fraction, not annualized, not in percent);
* ``predict_path(returns, exog=None, *, rv=None, horizon_bars=1, n_last=None) -> ndarray`` — the
  same forecast at every origin of ``returns`` with the fitted parameters held fixed: element ``m``
  uses ``returns[: m + 1]`` only. ``returns`` must start at the same observation as the fitted
  sample (the walk-forward engine guarantees it), so the recursion state matches ``fit``.

``returns`` are log returns per bar; ``rv`` (optional) is a per-bar realized variance from finer
data (``returns**2`` when omitted); ``exog`` is a 2-D array of exogenous features, row ``m`` known
at the close of the bar of ``returns[m]``.
"""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator

from forecasting.errors import InvalidBarsError, NotFittedError, not_enough_history

__all__ = ["VolatilityModel", "as_returns", "as_exog"]

FloatArray = NDArray[np.float64]


def as_returns(returns: ArrayLike, name: str = "returns") -> FloatArray:
    """Validate a 1-D array of finite floats."""
    arr = np.ascontiguousarray(np.asarray(returns, dtype=np.float64))
    if arr.ndim != 1:
        raise InvalidBarsError(f"{name} must be 1-D, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InvalidBarsError(
            f"{name} contain NaN or inf; drop the first (undefined) return and repair bad prices"
        )
    return arr


def as_exog(exog: ArrayLike | None, n: int) -> FloatArray | None:
    """Validate an exogenous feature matrix (NaN allowed: tree models handle missing values)."""
    if exog is None:
        return None
    arr = np.asarray(exog, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] != n:
        raise InvalidBarsError(
            f"exog must have one row per return ({n}), got shape {arr.shape}; align it with "
            "forecasting.align_features first"
        )
    return np.ascontiguousarray(arr)


class VolatilityModel(BaseEstimator):
    """Base class: holds the training sample so :meth:`predict` can reuse :meth:`predict_path`."""

    name: ClassVar[str] = "base"
    uses_exog: ClassVar[bool] = False
    #: Whether the model also takes the hour of day of the target bar as its last exogenous
    #: column (:func:`forecasting.features.next_bar_hour`; the pipeline appends it).
    uses_calendar: ClassVar[bool] = False

    @property
    def min_train_bars(self) -> int:
        """Minimum number of returns :meth:`fit` needs."""
        return 30

    # -- helpers for subclasses -------------------------------------------------------------
    def _prepare(
        self, returns: ArrayLike, exog: ArrayLike | None, rv: ArrayLike | None
    ) -> tuple[FloatArray, FloatArray | None, FloatArray]:
        r = as_returns(returns)
        x = as_exog(exog, r.shape[0]) if self.uses_exog else None
        v = r * r if rv is None else as_returns(rv, "rv")
        if v.shape != r.shape:
            raise InvalidBarsError(f"rv has shape {v.shape}, returns {r.shape}; align them")
        if np.any(v < 0):
            raise InvalidBarsError("rv has negative values; realized variance must be >= 0")
        return r, x, v

    def _check_length(self, n: int) -> None:
        need = self.min_train_bars
        if n < need:
            raise not_enough_history(
                f"{type(self).__name__}.fit",
                n,
                need,
                "Pass a longer training sample (walk_forward: raise min_train or start later).",
            )

    def _remember(self, r: FloatArray, x: FloatArray | None, v: FloatArray) -> None:
        self._train = (r, x, v)
        self.n_obs_ = int(r.shape[0])

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_obs_"):
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet; call fit(returns) first."
            )

    @staticmethod
    def _check_horizon(horizon_bars: int) -> int:
        h = int(horizon_bars)
        if h < 1 or h != horizon_bars:
            raise ValueError(f"horizon_bars must be a positive integer, got {horizon_bars!r}")
        return h

    # -- public API ---------------------------------------------------------------------------
    def fit(
        self, returns: ArrayLike, exog: ArrayLike | None = None, *, rv: ArrayLike | None = None
    ) -> Self:
        """Fit the model on returns up to the forecast origin.

        Parameters
        ----------
        returns : array_like
            Log returns per bar, oldest first.
        exog : array_like, optional
            Exogenous features, one row per return (used by the machine-learning models only).
        rv : array_like, optional
            Per-bar realized variance from finer data (``returns**2`` by default).

        Returns
        -------
        self
        """
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
        """Forecasts at every origin of ``returns`` with the fitted parameters held fixed.

        Parameters
        ----------
        returns : array_like
            Log returns starting at the first fitted observation and possibly extending past the
            fitted sample (the new observations update the state, not the parameters).
        exog, rv : array_like, optional
            As in :meth:`fit`.
        horizon_bars : int
            Forecast horizon ``h`` in bars.
        n_last : int, optional
            Only return the forecasts at the last ``n_last`` origins (faster).

        Returns
        -------
        numpy.ndarray
            ``sigma[m]``: standard deviation of the log return over bars ``m+1 .. m+h`` given
            ``returns[: m + 1]``; NaN where the history is too short for the model's features.
        """
        raise NotImplementedError

    def predict(self, horizon_bars: int = 1) -> float:
        """Sigma of the log return over the next ``horizon_bars`` bars after the fitted sample.

        Parameters
        ----------
        horizon_bars : int
            Forecast horizon in bars.

        Returns
        -------
        float
            Standard deviation of the horizon log return (fraction, not annualized).
        """
        self._check_fitted()
        r, x, v = self._train
        return float(self.predict_path(r, x, rv=v, horizon_bars=horizon_bars, n_last=1)[0])

    @staticmethod
    def _last(n: int, n_last: int | None) -> int:
        if n_last is None:
            return 0
        if n_last < 1:
            raise ValueError(f"n_last must be >= 1, got {n_last}")
        return max(0, n - int(n_last))
