"""The lean forest grows sklearn's random forest exactly (so swapping it in changes no forecast)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor

from forecasting.models._forest import LeanForest
from forecasting.models.rf import RFVol

PARAMS = {
    "n_estimators": 12,
    "min_samples_leaf": 20,
    "max_features": 0.5,
    "max_samples": 0.5,
    "max_depth": 6,
    "random_state": 7,
}


def _data(n: int, k: int, nan: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(n, k))
    y = np.column_stack([x[:, 0] + rng.normal(size=n), x[:, 1] ** 2 + rng.normal(size=n)])
    if nan:
        x[rng.random(x.shape) < 0.1] = np.nan
    return x, y


@pytest.mark.parametrize("nan", [False, True])
@pytest.mark.parametrize("outputs", [1, 2])
def test_lean_forest_equals_sklearn_forest(nan: bool, outputs: int) -> None:
    x, y = _data(800, 4, nan)
    target = y[:, 0] if outputs == 1 else y
    ref = RandomForestRegressor(**PARAMS, bootstrap=True, oob_score=True, n_jobs=1).fit(x, target)
    lean = LeanForest(**PARAMS).fit(x, target)
    x_new, _ = _data(50, 4, nan)
    assert np.array_equal(lean.oob_prediction_, ref.oob_prediction_)
    assert np.array_equal(lean.predict(x_new), ref.predict(x_new))
    assert lean.predict(x_new).shape == ref.predict(x_new).shape


def test_lean_forest_depends_on_the_seed() -> None:
    x, y = _data(800, 4, False)
    a = LeanForest(**PARAMS).fit(x, y[:, 0]).predict(x[:20])
    b = LeanForest(**{**PARAMS, "random_state": 8}).fit(x, y[:, 0]).predict(x[:20])
    assert not np.array_equal(a, b)


def test_rf_forecasts_same_with_lean_and_sklearn_forest() -> None:
    rng = np.random.default_rng(3)
    r = rng.standard_t(5, size=1500) * 0.01
    lean = RFVol(horizons=(1, 24)).fit(r[:1200])
    ref = RFVol(horizons=(1, 24), n_jobs=2).fit(r[:1200])
    assert isinstance(lean.estimators_[1], LeanForest)
    assert isinstance(ref.estimators_[1], RandomForestRegressor)
    for h in (1, 24):
        assert lean.bias_factor_[h] == ref.bias_factor_[h]
        # sklearn's 2-thread predict sums the trees in completion order: equal up to rounding
        np.testing.assert_allclose(
            lean.predict_path(r, horizon_bars=h, n_last=300),
            ref.predict_path(r, horizon_bars=h, n_last=300),
            rtol=1e-12,
        )
