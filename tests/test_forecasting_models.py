"""Unit tests of the volatility models (fit/predict, hand computations, arch agreement)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from arch import arch_model
from arch.utility.exceptions import DataScaleWarning
from sklearn.base import clone

import forecasting as fcst
from forecasting.errors import (
    HorizonNotFittedError,
    InvalidBarsError,
    NotEnoughHistoryError,
    NotFittedError,
    UnknownModelError,
)

pytestmark = pytest.mark.integration  # needs the real-data mirror

BTC = "Roshan7869__algotrading/user_data/data/binance/BTC_USDT-1h.feather"
_LIGHT = {"hgb": {"max_iter": 30}, "rf": {"n_estimators": 12}}


@pytest.fixture(scope="module")
def returns(mirror_dir: Path) -> np.ndarray:
    """1,200 hourly BTC log returns up to the May 2021 crash (W2)."""
    bars = pl.read_ipc(mirror_dir / BTC).rename({"date": "ts"})
    close = bars.filter(pl.col("ts") < pl.datetime(2021, 5, 20, time_zone="UTC"))["close"]
    return np.diff(np.log(close.tail(1201).to_numpy()))


@pytest.mark.parametrize("name", sorted(fcst.MODELS))
def test_fit_predict_shapes(returns: np.ndarray, name: str) -> None:
    model = fcst.make_model(name, **_LIGHT.get(name, {}))
    exog = np.linspace(0.0, 1.0, returns.shape[0])[:, None] if model.uses_exog else None
    assert model.fit(returns[:1000], exog[:1000] if exog is not None else None) is model
    assert model.n_obs_ == 1000
    s1, s24 = model.predict(1), model.predict(24)
    assert np.isfinite([s1, s24]).all() and 0 < s1 < s24 < 1
    path = model.predict_path(returns, exog, horizon_bars=24, n_last=200)
    assert path.shape == (200,)
    assert np.all(np.isfinite(path)) and np.all(path > 0)
    # predict() is the last element of predict_path on the fitted sample
    same = model.predict_path(
        returns[:1000], exog[:1000] if exog is not None else None, horizon_bars=24, n_last=3
    )
    assert same[-1] == pytest.approx(s24, rel=1e-12)


@pytest.mark.parametrize("name", sorted(fcst.MODELS))
def test_same_seed_same_forecasts(returns: np.ndarray, name: str) -> None:
    a = fcst.make_model(name, **_LIGHT.get(name, {})).fit(returns[:900])
    b = clone(a).fit(returns[:900])
    for h in (1, 24):
        assert a.predict(h) == b.predict(h)


def test_ewma_matches_hand_computation() -> None:
    r = np.array([0.01, -0.02, 0.015, 0.0, -0.03, 0.005])
    model = fcst.EWMA(lam=0.94, init_bars=3).fit(r)
    s2 = (0.01**2 + 0.02**2 + 0.015**2) / 3
    for x in r:
        s2 = 0.94 * s2 + 0.06 * x * x
    assert model.predict(1) == pytest.approx(np.sqrt(s2), rel=1e-14)
    assert model.predict(24) == pytest.approx(np.sqrt(24 * s2), rel=1e-14)


@pytest.mark.parametrize(
    ("cls", "o", "horizons"),
    [(fcst.GARCH, 0, (1, 5, 24)), (fcst.GJRGARCH, 1, (1, 5, 24)), (fcst.EGARCH, 1, (1,))],
)
def test_fixed_parameter_update_matches_arch(returns: np.ndarray, cls, o, horizons) -> None:
    """After new bars, our fixed-parameter forecast equals arch's fix(...).forecast(...)."""
    model = cls().fit(returns[:800])
    y = returns * model.scale_
    vol = "EGARCH" if cls is fcst.EGARCH else "GARCH"
    fixed = arch_model(y, mean="Constant", vol=vol, p=1, o=o, q=1, dist="t").fix(model.params_)
    for h in horizons:
        arch_var = fixed.forecast(horizon=h, start=799, reindex=False).variance.to_numpy()
        expect = np.sqrt(arch_var.sum(axis=1)) / model.scale_
        ours = model.predict_path(returns, horizon_bars=h, n_last=returns.shape[0] - 799)
        np.testing.assert_allclose(ours, expect, rtol=1e-10)


def test_egarch_multistep_is_sane(returns: np.ndarray) -> None:
    boot = fcst.EGARCH().fit(returns[:1000])
    sim = fcst.EGARCH(method="simulation", dist="normal").fit(returns[:1000])
    for model in (boot, sim):
        s1, s24 = model.predict(1), model.predict(24)
        assert s1 * np.sqrt(24) * 0.3 < s24 < s1 * np.sqrt(24) * 3
    with pytest.raises(ValueError, match="bootstrap"):
        fcst.EGARCH(method="exact").fit(returns[:1000])


def test_arch_models_scale_data_no_datascalewarning(returns: np.ndarray) -> None:
    with pytest.warns(DataScaleWarning):  # raw hourly returns are poorly scaled for arch
        arch_model(returns[:800], dist="t").fit(disp="off")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for cls in (fcst.GARCH, fcst.GJRGARCH, fcst.EGARCH):
            model = cls(dist="skewt").fit(returns[:800])
            assert model.scale_ == pytest.approx(1 / returns[:800].std())
            assert model.converged_
            assert 0.001 < model.predict(1) < 0.05  # back in return units, not x100


def test_garch_hand_recursion(returns: np.ndarray) -> None:
    model = fcst.GARCH().fit(returns[:500])
    mu, omega, alpha, beta = model.params_[:4]
    eps = returns[:500] * model.scale_ - mu
    w = 0.94 ** np.arange(75)
    s2 = float(np.sum(eps[:75] ** 2 * w / w.sum()))
    e2_prev = s2
    for e in eps:
        s2 = omega + alpha * e2_prev + beta * s2
        e2_prev = e * e
    s2 = omega + alpha * e2_prev + beta * s2
    assert model.predict(1) == pytest.approx(np.sqrt(s2) / model.scale_, rel=1e-12)


def test_har_bias_correction_and_coefficients(returns: np.ndarray) -> None:
    smear = fcst.HAR(horizons=(1, 24)).fit(returns[:1000])
    raw = fcst.HAR(horizons=(1, 24), bias_correction="none").fit(returns[:1000])
    for h in (1, 24):
        assert smear.coef_[h].shape == (4,)
        assert smear.bias_factor_[h] > 1.0  # exp(E log RV) < E RV
        assert smear.predict(h) == pytest.approx(
            raw.predict(h) * np.sqrt(smear.bias_factor_[h]), rel=1e-12
        )
    assert smear.bias_factor_[1] > smear.bias_factor_[24]  # log r^2 is far from normal


def test_tree_models_use_exog(returns: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    exog = rng.normal(size=(returns.shape[0], 2))
    with_x = fcst.HGBVol(max_iter=30).fit(returns[:1000], exog[:1000])
    assert with_x.estimators_[1].n_features_in_ == 3 + 2
    nan_x = exog.copy()
    nan_x[:300] = np.nan  # features missing early on are allowed
    rf = fcst.RFVol(n_estimators=12).fit(returns[:1000], nan_x[:1000])
    assert np.isfinite(rf.predict(24))


def test_errors_say_how_to_fix(returns: np.ndarray) -> None:
    with pytest.raises(NotFittedError, match="call fit"):
        fcst.GARCH().predict(1)
    with pytest.raises(NotEnoughHistoryError, match="longer training sample"):
        fcst.HAR().fit(returns[:100])
    with pytest.raises(HorizonNotFittedError, match="horizons="):
        fcst.HAR(horizons=(1,)).fit(returns[:1000]).predict(24)
    with pytest.raises(UnknownModelError, match="choose one of"):
        fcst.make_model("lstm")
    with pytest.raises(InvalidBarsError, match="NaN"):
        fcst.EWMA().fit(np.r_[np.nan, returns[:100]])
    with pytest.raises(ValueError, match="dist="):
        fcst.GARCH(dist="ged").fit(returns[:500])
    assert isinstance(fcst.NotFittedError("x"), ValueError)


def test_registry_complete() -> None:
    assert sorted(fcst.MODELS) == [
        "egarch",
        "ewma",
        "garch",
        "gjr",
        "har",
        "hgb",
        "hgbc",
        "hgbch",
        "rf",
    ]
    for name, factory in fcst.MODELS.items():
        model = factory()
        assert model.name == name
        assert isinstance(model, fcst.VolatilityModel)


def test_non_convergence_is_a_named_warning(returns: np.ndarray) -> None:
    with pytest.warns(fcst.ModelConvergenceWarning, match="max_iter"):
        model = fcst.GARCH(max_iter=1, warm_start=False).fit(returns[:800])
    assert not model.converged_
    assert np.isfinite(model.predict(1))


def test_library_never_imports_prefect_or_duckdb() -> None:
    import subprocess
    import sys

    code = (
        "import sys, forecasting, forecasting.plots; "
        "bad = [m for m in ('prefect', 'duckdb') if m in sys.modules]; "
        "sys.exit(1 if bad else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
