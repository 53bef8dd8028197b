"""Gradient boosting of the *correction* to an EWMA variance (trees never extrapolate levels)."""

from __future__ import annotations

from typing import Self

import numpy as np
from numpy.typing import ArrayLike
from scipy.signal import lfilter
from sklearn.ensemble import HistGradientBoostingRegressor

from forecasting.models.base import FloatArray
from forecasting.models.har import HAR, har_features, har_targets
from forecasting.models.hgb import HGBVol, openmp_limit, with_defaults

__all__ = ["HGBCorrection", "HGBHarCorrection", "ewma_base", "CORRECTION_DEFAULTS"]

#: Boosting defaults of the correction models, where they differ from :class:`HGBVol`'s (the
#: figures of hgbc/hgbch in docs/forecasting.md were made with 60 trees at rate 0.05 on 64 bins).
CORRECTION_DEFAULTS = {"max_iter": 60, "learning_rate": 0.05, "max_bins": 64}


def ewma_base(rv: FloatArray, lam: float, init_bars: int = 24) -> FloatArray:
    """One-step EWMA variance ``b[j]`` made with ``rv[: j + 1]`` (RiskMetrics recursion).

    ``b[j] = lam * b[j - 1] + (1 - lam) * rv[j]``, started at the mean of the first
    ``init_bars`` values — causal: element ``j`` never uses ``rv[j + 1:]``.
    """
    init = float(np.mean(rv[: max(1, int(init_bars))]))
    out, _ = lfilter([1.0 - lam], [1.0, -lam], rv, zi=[lam * init])
    return np.asarray(out, dtype=np.float64)


class HGBCorrection(HGBVol):
    """HGB on the ratio of future realized variance to an EWMA base: ``RV̄_h / b_t``.

    The trees of :class:`~forecasting.models.hgb.HGBVol` predict variance *levels* and cannot go
    above their training targets, so in a crash they stay flat. Here the base ``b_t`` (EWMA of the
    per-bar realized variance, ``lam = 0.94`` as RiskMetrics, no parameter fitted) carries the
    level and the trees learn only the multiplicative correction ``E[RV̄_{t+1..t+h} / b_t | x]``
    from the log HAR regressors, ``log b_t`` and the stress features. The **gamma deviance** on the
    ratio is exactly QLIKE of the final forecast ``h · b_t · prediction`` (QLIKE is scale free),
    so the fit minimises the loss it is scored on. Otherwise as :class:`HGBVol` (same defaults,
    seeded, single-threaded).

    Parameters
    ----------
    lam : float
        EWMA decay of the base.
    **kwargs
        The parameters of :class:`~forecasting.models.hgb.HGBVol`, with the defaults of
        :data:`CORRECTION_DEFAULTS` (60 trees at rate 0.05 on 64 bins).
    """

    name = "hgbc"
    uses_exog = True

    __init__ = with_defaults(HGBVol.__init__, **CORRECTION_DEFAULTS, lam=0.94)

    def _design(self, v: FloatArray, x: FloatArray | None, rows: np.ndarray) -> FloatArray:
        base = np.maximum(ewma_base(v, float(self.lam)), self.floor_)
        feats = np.column_stack(
            [har_features(v, rows, lags=self.lags, floor=self.floor_), np.log(base[rows])]
        )
        if x is not None:
            feats = np.column_stack([feats, x[rows]])
        return feats

    def fit(
        self, returns: ArrayLike, exog: ArrayLike | None = None, *, rv: ArrayLike | None = None
    ) -> Self:
        """Fit one regressor of the ratio per horizon; see :meth:`VolatilityModel.fit`."""
        if not 0.0 < float(self.lam) < 1.0:
            raise ValueError(f"lam must be in (0, 1), got {self.lam}")
        _, x, v = self._setup(returns, exog, rv)
        n = v.shape[0]
        self.estimators_: dict[int, HistGradientBoostingRegressor] = {}
        j_base = len(self.lags)
        with openmp_limit(self.n_threads):
            for h in sorted({int(h) for h in self.horizons}):
                rows = self._train_rows(n, h)
                feats = self._design(v, x, rows)
                target = np.maximum(har_targets(v, rows, h), self.floor_) / np.exp(feats[:, j_base])
                self.estimators_[h] = self._regressor().fit(feats, target)
        self.fitted_horizons_ = tuple(sorted(self.estimators_))
        return self

    def _mean_variance(self, feats: FloatArray, h: int) -> FloatArray:
        base = np.exp(feats[:, len(self.lags)])
        return base * super()._mean_variance(feats, h)


class HGBHarCorrection(HGBVol):
    """HGB on the ratio of future realized variance to a **HAR** base: ``RV̄_h / b^h_t``.

    As :class:`HGBCorrection`, but the base of horizon ``h`` is the forecast of a
    :class:`~forecasting.models.har.HAR` regression (log HAR-RV with smearing, fitted by OLS on the
    same training origins at every refit) instead of an EWMA: on 5-minute realized variance HAR
    is the strongest linear base of the project, and the trees learn only the multiplicative
    correction ``E[RV̄_{t+1..t+h} / b^h_t | x]`` from the log HAR regressors, ``log b^h_t`` and
    the exogenous columns — the stress features and, as the pipeline passes them
    (``uses_calendar``), the hour of day of the target bar last
    (:func:`~forecasting.features.next_bar_hour`: intraday seasonality) — with the gamma
    deviance (exactly the QLIKE of the final forecast ``h · b^h_t · prediction``). The base is
    fitted in-sample on the training origins (four coefficients on thousands of origins: a
    negligible optimism). Defaults as :class:`HGBCorrection` (60 trees at rate 0.05), seeded,
    single-threaded.

    Parameters
    ----------
    **kwargs
        The parameters of :class:`~forecasting.models.hgb.HGBVol`, with the defaults of
        :data:`CORRECTION_DEFAULTS`.

    Attributes
    ----------
    base_ : HAR
        The fitted HAR base.
    estimators_ : dict of int to HistGradientBoostingRegressor
        Fitted correction per horizon.
    """

    name = "hgbch"
    uses_exog = True
    uses_calendar = True

    __init__ = with_defaults(HGBVol.__init__, **CORRECTION_DEFAULTS)

    def _with_base(self, feats: FloatArray, h: int) -> tuple[FloatArray, FloatArray]:
        """Append ``log b^h`` to the design; return it and the base ``b^h``."""
        base = np.maximum(self.base_._mean_variance(feats[:, : len(self.lags)], h), self.floor_)
        return np.column_stack([feats, np.log(base)]), base

    def fit(
        self, returns: ArrayLike, exog: ArrayLike | None = None, *, rv: ArrayLike | None = None
    ) -> Self:
        """Fit the HAR base, then one regressor of the ratio per horizon."""
        _, x, v = self._setup(returns, exog, rv)
        n = v.shape[0]
        hs = tuple(sorted({int(h) for h in self.horizons}))
        self.base_ = HAR(horizons=hs, lags=self.lags, floor_frac=self.floor_frac).fit(returns, rv=v)
        self.estimators_: dict[int, HistGradientBoostingRegressor] = {}
        with openmp_limit(self.n_threads):
            for h in hs:
                rows = self._train_rows(n, h)
                feats, base = self._with_base(self._design(v, x, rows), h)
                target = np.maximum(har_targets(v, rows, h), self.floor_) / base
                self.estimators_[h] = self._regressor().fit(feats, target)
        self.fitted_horizons_ = hs
        return self

    def _mean_variance(self, feats: FloatArray, h: int) -> FloatArray:
        full, base = self._with_base(feats, h)
        with openmp_limit(self.n_threads):
            return base * np.asarray(self.estimators_[h].predict(full), dtype=np.float64)
