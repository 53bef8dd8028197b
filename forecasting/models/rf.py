"""Random forest on HAR and stress features (log target, out-of-bag smearing)."""

from __future__ import annotations

from typing import Self

import numpy as np
from numpy.typing import ArrayLike
from sklearn.ensemble import RandomForestRegressor

from forecasting.models._forest import LeanForest
from forecasting.models.base import FloatArray
from forecasting.models.har import _HarFeatureModel

__all__ = ["RFVol"]


class RFVol(_HarFeatureModel):
    """Random forest of log future realized variance, one multi-output forest for all horizons.

    Features as :class:`~forecasting.models.hgb.HGBVol`. Target: ``log`` of the mean per-bar
    realized variance over the next ``h`` bars (squared-error trees are fragile on raw, heavy-
    tailed variance). The forecast variance is ``h * exp(prediction) * c`` with Duan's smearing
    factor ``c = mean(exp(y - oob_prediction))`` computed from **out-of-bag** predictions, since
    in-sample forest residuals are shrunk and would under-correct. Seeded (``random_state``).
    Defaults (15 trees, depth 8, 30 origins per leaf, half the rows and features per tree) keep a
    refit under ~0.03 s on 2,000 origins; 15 trees instead of 40 changed the lead-in QLIKE by
    +0.46 % (docs/forecasting.md, "Speed").

    Parameters
    ----------
    horizons, lags, floor_frac
        See :class:`~forecasting.models.har.HAR`.
    n_estimators, min_samples_leaf, max_features, max_samples, max_depth
        Passed to :class:`sklearn.ensemble.RandomForestRegressor` (bootstrap on).
    random_state : int
        Seed.
    n_jobs : int
        Parallel jobs for fitting and predicting; 1 (default) uses the sequential
        :class:`~forecasting.models._forest.LeanForest`, which grows the very same trees.

    Attributes
    ----------
    estimators_ : dict of int to LeanForest or RandomForestRegressor
        The fitted (shared, multi-output) forest, keyed by horizon (a
        :class:`~forecasting.models._forest.LeanForest` when ``n_jobs == 1``: the same trees).
    bias_factor_ : dict of int to float
        Out-of-bag smearing factor per horizon.
    floor_ : float
        Floor applied to realized variances.
    fitted_horizons_ : tuple of int
        Horizons fitted.
    n_obs_ : int
        Number of returns fitted.
    """

    name = "rf"
    uses_exog = True

    def __init__(
        self,
        *,
        horizons: tuple[int, ...] = (1, 24),
        lags: tuple[int, ...] = (1, 24, 168),
        floor_frac: float = 1e-2,
        n_estimators: int = 15,
        min_samples_leaf: int = 30,
        max_features: float = 0.5,
        max_samples: float = 0.5,
        max_depth: int | None = 8,
        random_state: int = 0,
        n_jobs: int = 1,
    ) -> None:
        self.horizons = horizons
        self.lags = lags
        self.floor_frac = floor_frac
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.max_samples = max_samples
        self.max_depth = max_depth
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(
        self, returns: ArrayLike, exog: ArrayLike | None = None, *, rv: ArrayLike | None = None
    ) -> Self:
        """Fit one multi-output forest for all horizons; see :meth:`VolatilityModel.fit`.

        One forest with one output per horizon (trees split on the summed squared error of all
        outputs) costs about the price of one single-output forest instead of one per horizon.
        The training origins are those whose *longest*-horizon target lies inside the sample.
        """
        _, x, v = self._setup(returns, exog, rv)
        n = v.shape[0]
        hs = sorted({int(h) for h in self.horizons})
        rows = self._train_rows(n, max(hs))
        target = np.column_stack([self._log_target(v, rows, h) for h in hs])
        params = {
            "n_estimators": self.n_estimators,
            "min_samples_leaf": self.min_samples_leaf,
            "max_features": self.max_features,
            "max_samples": self.max_samples,
            "max_depth": self.max_depth,
            "random_state": self.random_state,
        }
        # n_jobs == 1: the lean forest, draw for draw sklearn's (same trees, ~1.5x faster)
        est: RandomForestRegressor | LeanForest = (
            LeanForest(**params)
            if self.n_jobs == 1
            else RandomForestRegressor(**params, bootstrap=True, oob_score=True, n_jobs=self.n_jobs)
        )
        est.fit(self._design(v, x, rows), target if len(hs) > 1 else target[:, 0])
        oob = np.asarray(est.oob_prediction_, dtype=np.float64).reshape(rows.shape[0], len(hs))
        self.estimators_: dict[int, RandomForestRegressor | LeanForest] = {}
        self.bias_factor_: dict[int, float] = {}
        self._output_: dict[int, int] = {}
        for k, h in enumerate(hs):
            ok = np.isfinite(oob[:, k])
            self.bias_factor_[h] = (
                float(np.mean(np.exp(target[ok, k] - oob[ok, k]))) if ok.any() else 1.0
            )
            self.estimators_[h] = est
            self._output_[h] = k
        self.fitted_horizons_ = tuple(hs)
        return self

    def _mean_variance(self, feats: FloatArray, h: int) -> FloatArray:
        pred = np.asarray(self.estimators_[h].predict(feats), dtype=np.float64)
        if pred.ndim == 2:
            pred = pred[:, self._output_[h]]
        return np.exp(pred) * self.bias_factor_[h]
