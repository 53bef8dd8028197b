"""A lean bagged regression forest: sklearn's trees without the ensemble's per-tree overhead."""

from __future__ import annotations

import numpy as np
import sklearn
from sklearn.tree import DecisionTreeRegressor

from forecasting.models.base import FloatArray

__all__ = ["LeanForest"]


class LeanForest:
    """Bootstrap forest of sklearn decision trees, with out-of-bag predictions.

    Reproduces :class:`sklearn.ensemble.RandomForestRegressor` (``bootstrap=True``,
    ``n_jobs=1``) draw for draw — the same per-tree seeds, bootstrap rows, trees, prediction sum
    and out-of-bag average (``tests/test_forecasting_forest.py`` checks equality) — while
    skipping the ensemble's per-tree ``clone``, parameter validation, joblib dispatch and
    repeated random-state construction, which cost more than the tree building itself on
    ~2,000 rows of a few features (docs/forecasting.md, "Speed").

    Parameters
    ----------
    n_estimators, min_samples_leaf, max_features, max_samples, max_depth, random_state
        As in :class:`sklearn.ensemble.RandomForestRegressor`; ``max_samples`` is a fraction.

    Attributes
    ----------
    estimators_ : list of DecisionTreeRegressor
        The fitted trees.
    n_features_in_ : int
        Number of feature columns fitted.
    oob_prediction_ : numpy.ndarray
        Out-of-bag prediction per training row, shape ``(n,)`` or ``(n, n_outputs)``.
    """

    def __init__(
        self,
        *,
        n_estimators: int,
        min_samples_leaf: int,
        max_features: float,
        max_samples: float,
        max_depth: int | None,
        random_state: int,
    ) -> None:
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.max_samples = max_samples
        self.max_depth = max_depth
        self.random_state = random_state

    def fit(self, x: FloatArray, y: FloatArray) -> LeanForest:
        """Fit the trees on bootstrap draws of the rows and compute the out-of-bag predictions."""
        xf = np.ascontiguousarray(x, dtype=np.float32)
        y2 = np.ascontiguousarray(np.reshape(y, (y.shape[0], -1)), dtype=np.float64)
        n = xf.shape[0]
        n_boot = max(round(n * self.max_samples), 1)
        rng = np.random.RandomState(self.random_state)
        seeds = [int(rng.randint(np.iinfo(np.int32).max)) for _ in range(self.n_estimators)]
        oob = np.zeros(y2.shape, dtype=np.float64)
        n_oob = np.zeros(y2.shape, dtype=np.int64)
        self.estimators_: list[DecisionTreeRegressor] = []
        mask, checked = None, False
        with sklearn.config_context(skip_parameter_validation=True):
            for seed in seeds:
                rows = np.random.RandomState(seed).randint(0, n, n_boot).astype(np.int32)
                counts = np.bincount(rows, minlength=n)
                tree = DecisionTreeRegressor(
                    min_samples_leaf=self.min_samples_leaf,
                    max_features=self.max_features,
                    max_depth=self.max_depth,
                    random_state=seed,
                )
                if not checked:  # None when X has no NaN (as the forest computes it once)
                    mask, checked = tree._compute_missing_values_in_feature_mask(xf), True
                # the forest's own call: inputs validated once above, not once per tree
                tree._fit(
                    xf,
                    y2,
                    sample_weight=counts,
                    check_input=False,
                    missing_values_in_feature_mask=mask,
                )
                self.estimators_.append(tree)
                out = np.flatnonzero(counts == 0)
                pred = tree.predict(xf[out], check_input=False)
                oob[out] += pred.reshape(out.shape[0], -1)
                n_oob[out] += 1
        n_oob[n_oob == 0] = 1
        oob /= n_oob
        self.n_features_in_ = xf.shape[1]
        self.oob_prediction_ = oob[:, 0] if np.ndim(y) == 1 else oob
        self._single = np.ndim(y) == 1
        return self

    def predict(self, x: FloatArray) -> FloatArray:
        """Mean of the trees' predictions, summed in tree order as sklearn's forest does."""
        xf = np.ascontiguousarray(x, dtype=np.float32)
        out: FloatArray | None = None
        for tree in self.estimators_:
            pred = tree.predict(xf, check_input=False)
            out = pred.astype(np.float64, copy=True) if out is None else out + pred
        assert out is not None
        out = out / len(self.estimators_)
        if self._single and out.ndim == 2:
            out = out[:, 0]
        return out
