"""HAR-RV (Corsi 2009) on log realized variance, direct multi-horizon regressions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike

from forecasting.errors import HorizonNotFittedError, InvalidBarsError
from forecasting.models.base import FloatArray, VolatilityModel

__all__ = ["HAR", "har_features", "har_targets"]


def _window_means(v: FloatArray, length: int, rows: np.ndarray) -> FloatArray:
    """Mean of ``v[j - length + 1 .. j]`` for each ``j`` in ``rows`` (NaN if too early)."""
    out = np.full(rows.shape[0], np.nan)
    ok = rows >= length - 1
    if length == 1:
        out[ok] = v[rows[ok]]
        return out
    if np.any(ok):
        windows = sliding_window_view(v, length)
        out[ok] = windows[rows[ok] - length + 1].mean(axis=1)
    return out


def har_features(
    rv: FloatArray, rows: np.ndarray, *, lags: Sequence[int], floor: float
) -> FloatArray:
    """Log HAR regressors at the given origins.

    Column ``k`` is ``log(max(mean(rv[j - lags[k] + 1 .. j]), floor))``: with hourly bars and
    ``lags = (1, 24, 168)`` the last bar, the last day and the last week.

    Parameters
    ----------
    rv : numpy.ndarray
        Per-bar realized variance.
    rows : numpy.ndarray
        Origin indices ``j`` (features use ``rv[: j + 1]`` only).
    lags : sequence of int
        Averaging windows, in bars.
    floor : float
        Lower bound applied before the log (zero-return bars would give ``-inf``).

    Returns
    -------
    numpy.ndarray
        Shape ``(len(rows), len(lags))``; NaN where the history is shorter than a window.
    """
    cols = [_window_means(rv, int(lag), rows) for lag in lags]
    x = np.column_stack(cols)
    with np.errstate(invalid="ignore"):
        return np.log(np.where(np.isnan(x), np.nan, np.maximum(x, floor)))


def har_targets(rv: FloatArray, rows: np.ndarray, horizon_bars: int) -> FloatArray:
    """Mean per-bar realized variance over bars ``j + 1 .. j + h`` for each origin ``j``."""
    windows = sliding_window_view(rv, horizon_bars)
    return windows[rows + 1].mean(axis=1)


class _HarFeatureModel(VolatilityModel):
    """Shared plumbing of the models that learn on HAR features (direct, per horizon)."""

    horizons: tuple[int, ...]
    lags: tuple[int, ...]
    floor_frac: float

    @property
    def min_train_bars(self) -> int:
        """Minimum number of returns :meth:`fit` needs (longest lag + horizon + 50 rows)."""
        return max(self.lags) + max(self.horizons) + 50

    def _setup(
        self, returns: ArrayLike, exog: ArrayLike | None, rv: ArrayLike | None
    ) -> tuple[FloatArray, FloatArray | None, FloatArray]:
        if not self.horizons or any(int(h) < 1 for h in self.horizons):
            raise ValueError(f"horizons must be positive integers, got {self.horizons!r}")
        r, x, v = self._prepare(returns, exog, rv)
        self._check_length(r.shape[0])
        mean_rv = float(np.mean(v))
        if not mean_rv > 0.0:
            raise InvalidBarsError(
                "realized variance is zero over the whole training sample (a flat price); use a "
                "window that contains price moves"
            )
        self.floor_ = float(self.floor_frac) * mean_rv
        self._remember(r, x, v)
        return r, x, v

    def _design(self, v: FloatArray, x: FloatArray | None, rows: np.ndarray) -> FloatArray:
        feats = har_features(v, rows, lags=self.lags, floor=self.floor_)
        if x is not None:
            feats = np.column_stack([feats, x[rows]])
        return feats

    def _train_rows(self, n: int, h: int) -> np.ndarray:
        return np.arange(max(self.lags) - 1, n - h)

    def _log_target(self, v: FloatArray, rows: np.ndarray, h: int) -> FloatArray:
        return np.log(np.maximum(har_targets(v, rows, h), self.floor_))

    def _horizon(self, horizon_bars: int) -> int:
        h = self._check_horizon(horizon_bars)
        if h not in self.fitted_horizons_:
            raise HorizonNotFittedError(
                f"{type(self).__name__} was fitted for horizons {self.fitted_horizons_}, not "
                f"{h}; construct it with horizons=(..., {h}) (walk_forward does this for you)"
            )
        return h

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
        h = self._horizon(horizon_bars)
        r, x, v = self._prepare(returns, exog, rv)
        rows = np.arange(self._last(r.shape[0], n_last), r.shape[0])
        feats = self._design(v, x, rows)
        out = np.full(rows.shape[0], np.nan)
        ok = ~np.isnan(feats[:, : len(self.lags)]).any(axis=1)
        if np.any(ok):
            out[ok] = np.sqrt(h * self._mean_variance(feats[ok], h))
        return out

    def _mean_variance(self, feats: FloatArray, h: int) -> FloatArray:
        """Forecast of the mean per-bar variance over the horizon."""
        raise NotImplementedError


class HAR(_HarFeatureModel):
    """HAR-RV on log realized variance with a retransformation bias correction.

    For each horizon ``h`` an OLS regression (direct forecast)
    ``log RVbar_{t+1..t+h} = b0 + b1 log RV_t + b2 log RVbar_{t-23..t} + b3 log RVbar_{t-167..t}``
    is fitted on the training origins whose target lies inside the training sample (no
    look-ahead). The forecast variance is ``h * exp(fitted) * c`` where ``c`` corrects the
    ``exp(E log) < E`` bias: Duan's smearing factor ``mean(exp(residuals))`` (default, valid for
    the very non-normal log of a single squared return) or the log-normal ``exp(s**2 / 2)``.

    Parameters
    ----------
    horizons : tuple of int
        Horizons (bars) to fit; :func:`~forecasting.walk_forward` sets them.
    lags : tuple of int
        HAR windows in bars: last bar, day (24), week (168) for hourly bars.
    bias_correction : {"smearing", "lognormal", "none"}
        Retransformation correction.
    floor_frac : float
        Realized variances are floored at ``floor_frac * mean(rv)`` before taking logs.

    Attributes
    ----------
    coef_ : dict of int to numpy.ndarray
        ``[b0, b1, ...]`` per horizon.
    bias_factor_ : dict of int to float
        Multiplicative correction ``c`` per horizon.
    resid_var_ : dict of int to float
        Residual variance of the log regression per horizon.
    floor_ : float
        Floor applied to realized variances.
    fitted_horizons_ : tuple of int
        Horizons fitted.
    n_obs_ : int
        Number of returns fitted.
    """

    name = "har"

    def __init__(
        self,
        *,
        horizons: tuple[int, ...] = (1, 24),
        lags: tuple[int, ...] = (1, 24, 168),
        bias_correction: str = "smearing",
        floor_frac: float = 1e-2,
    ) -> None:
        self.horizons = horizons
        self.lags = lags
        self.bias_correction = bias_correction
        self.floor_frac = floor_frac

    def fit(
        self, returns: ArrayLike, exog: ArrayLike | None = None, *, rv: ArrayLike | None = None
    ) -> Self:
        """Fit one OLS per horizon; see :meth:`VolatilityModel.fit` (``exog`` unused)."""
        if self.bias_correction not in ("smearing", "lognormal", "none"):
            raise ValueError(
                f"bias_correction={self.bias_correction!r}; use 'smearing', 'lognormal' or 'none'"
            )
        _, _, v = self._setup(returns, None, rv)
        n = v.shape[0]
        self.coef_: dict[int, FloatArray] = {}
        self.bias_factor_: dict[int, float] = {}
        self.resid_var_: dict[int, float] = {}
        for h in sorted({int(h) for h in self.horizons}):
            rows = self._train_rows(n, h)
            design = np.column_stack([np.ones(rows.shape[0]), self._design(v, None, rows)])
            target = self._log_target(v, rows, h)
            coef, *_ = np.linalg.lstsq(design, target, rcond=None)
            resid = target - design @ coef
            self.coef_[h] = coef
            self.resid_var_[h] = float(np.var(resid))
            if self.bias_correction == "smearing":
                self.bias_factor_[h] = float(np.mean(np.exp(resid)))
            elif self.bias_correction == "lognormal":
                self.bias_factor_[h] = float(np.exp(0.5 * self.resid_var_[h]))
            else:
                self.bias_factor_[h] = 1.0
        self.fitted_horizons_ = tuple(sorted(self.coef_))
        return self

    def _mean_variance(self, feats: FloatArray, h: int) -> FloatArray:
        coef = self.coef_[h]
        pred = np.full(feats.shape[0], coef[0])
        for k in range(feats.shape[1]):  # elementwise (not BLAS): row results never depend
            pred = pred + coef[k + 1] * feats[:, k]  # on how many rows are predicted at once
        return np.exp(pred) * self.bias_factor_[h]
