"""A lean bagged regression forest: sklearn's trees without the ensemble's per-tree overhead."""

from __future__ import annotations

import numbers
from math import ceil

import numpy as np
from sklearn.tree import DecisionTreeRegressor
from sklearn.tree._criterion import MSE
from sklearn.tree._splitter import BestSplitter
from sklearn.tree._tree import DepthFirstTreeBuilder, Tree

from forecasting.models.base import FloatArray

__all__ = ["LeanForest"]


class LeanForest:
    """Bootstrap forest of sklearn decision trees, with out-of-bag predictions.

    Reproduces :class:`sklearn.ensemble.RandomForestRegressor` (``bootstrap=True``,
    ``n_jobs=1``) draw for draw — the same per-tree seeds, bootstrap rows, trees, prediction sum
    and out-of-bag average (``tests/test_forecasting_forest.py`` checks equality) — while
    skipping the ensemble's per-tree ``clone``, parameter validation, joblib dispatch and the
    tree estimator's per-tree input, sample-weight and random-state checks, which cost more than
    the tree building itself on ~2,000 rows of a few features (docs/forecasting.md, "Speed").
    Each tree is grown by sklearn's Cython builder (``sklearn.tree._tree``, private like the
    ``DecisionTreeRegressor._fit`` the forest itself calls) with the arguments ``_fit`` derives.

    Parameters
    ----------
    n_estimators, min_samples_leaf, max_features, max_samples, max_depth, random_state
        As in :class:`sklearn.ensemble.RandomForestRegressor`; ``max_samples`` is a fraction.

    Attributes
    ----------
    trees_ : list of sklearn.tree._tree.Tree
        The fitted trees (sklearn's low-level tree objects, as ``DecisionTreeRegressor.tree_``).
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
        """Fit the trees on bootstrap draws of the rows and compute the out-of-bag predictions.

        Each tree is built by sklearn's own Cython builder with the arguments
        ``DecisionTreeRegressor._fit`` would pass it (squared error, best splitter, depth-first),
        so the trees are sklearn's; the estimator's per-tree input, weight and parameter checks
        are done once per forest instead.
        """
        xf = np.ascontiguousarray(x, dtype=np.float32)
        y2 = np.ascontiguousarray(np.reshape(y, (y.shape[0], -1)), dtype=np.float64)
        n, n_features = xf.shape
        n_outputs = y2.shape[1]
        n_boot = max(round(n * self.max_samples), 1)
        rng = np.random.RandomState(self.random_state)
        seeds = [int(rng.randint(np.iinfo(np.int32).max)) for _ in range(self.n_estimators)]
        # the values DecisionTreeRegressor._fit derives from the parameters (no sample-weight
        # fraction: min_weight_leaf 0; min_samples_split 2 by default, raised to 2 * leaf)
        leaf = (
            int(self.min_samples_leaf)
            if isinstance(self.min_samples_leaf, numbers.Integral)
            else ceil(self.min_samples_leaf * n)
        )
        split = max(2, 2 * leaf)
        max_features = max(1, int(float(self.max_features) * n_features))
        depth = np.iinfo(np.int32).max if self.max_depth is None else int(self.max_depth)
        shell = DecisionTreeRegressor(
            min_samples_leaf=leaf, max_features=self.max_features, max_depth=self.max_depth
        )
        # None when X has no NaN (computed once, as the forest does)
        mask = shell._compute_missing_values_in_feature_mask(xf)
        n_classes = np.ones(n_outputs, dtype=np.intp)
        oob = np.zeros(y2.shape, dtype=np.float64)
        n_oob = np.zeros(y2.shape, dtype=np.int64)
        self.trees_: list[Tree] = []
        # one RandomState reseeded per draw: the same streams as a fresh RandomState(seed) for
        # the bootstrap rows and another for the splitter, without the ~0.1-0.4 ms construction
        state = np.random.RandomState(0)
        for seed in seeds:
            state.seed(seed)
            rows = state.randint(0, n, n_boot).astype(np.int32)
            counts = np.bincount(rows, minlength=n)
            state.seed(seed)  # the splitter draws its own seed from it when the build starts
            splitter = BestSplitter(MSE(n_outputs, n), max_features, leaf, 0.0, state, None)
            tree = Tree(n_features, n_classes, n_outputs)
            DepthFirstTreeBuilder(splitter, split, leaf, 0.0, depth, 0.0).build(
                tree, xf, y2, counts.astype(np.float64), mask
            )
            self.trees_.append(tree)
            out = np.flatnonzero(counts == 0)
            oob[out] += tree.predict(xf[out]).reshape(out.shape[0], n_outputs)
            n_oob[out] += 1
        n_oob[n_oob == 0] = 1
        oob /= n_oob
        self.n_features_in_ = n_features
        self.oob_prediction_ = oob[:, 0] if np.ndim(y) == 1 else oob
        self._single = np.ndim(y) == 1
        return self

    def predict(self, x: FloatArray) -> FloatArray:
        """Mean of the trees' predictions, summed in tree order as sklearn's forest does."""
        xf = np.ascontiguousarray(x, dtype=np.float32)
        out: FloatArray | None = None
        for tree in self.trees_:
            pred = tree.predict(xf).reshape(xf.shape[0], -1)
            out = pred.astype(np.float64, copy=True) if out is None else out + pred
        assert out is not None
        out = out / len(self.trees_)
        if self._single:
            out = out[:, 0]
        return out
