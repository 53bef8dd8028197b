"""simulate_paths: seeded price paths from the walk-forward GARCH fit at an origin."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

import forecasting as fcst
from forecasting.errors import InvalidBarsError
from forecasting.paths import fhs_from_garch, fit_at_origin, simulate_paths
from forecasting.stress import FHSFit, fit_fhs

OMEGA, ALPHA, BETA = 2e-6, 0.08, 0.90  # hourly; unconditional vol 1 %/h
N_BARS = 1600
ORIGIN = 1200  # index of the origin bar


def _bars(seed: int = 5) -> pl.DataFrame:
    """Hourly bars of a GARCH(1,1)-t(6) price (a known data-generating process)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_t(6, size=N_BARS - 1) / math.sqrt(6 / 4)
    r = np.empty(N_BARS - 1)
    s2 = OMEGA / (1 - ALPHA - BETA)
    for t in range(r.shape[0]):
        r[t] = math.sqrt(s2) * z[t]
        s2 = OMEGA + ALPHA * r[t] ** 2 + BETA * s2
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    return pl.DataFrame(
        {
            "ts": [t0 + timedelta(hours=i) for i in range(N_BARS)],
            "close": 100.0 * np.exp(np.r_[0.0, np.cumsum(r)]),
        }
    )


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return _bars()


@pytest.fixture(scope="module")
def fitted(bars: pl.DataFrame) -> FHSFit:
    return fit_at_origin(bars, bars["ts"][ORIGIN])


def test_fit_at_origin_state_is_the_walk_forward_garch_forecast(bars, fitted) -> None:
    origin = bars["ts"][ORIGIN]
    wf = fcst.walk_forward(
        bars, "garch", horizon_bars=1, min_train=ORIGIN, end=origin + timedelta(hours=1)
    )
    assert wf.height == 1 and wf["origin_ts"][0] == origin
    assert math.sqrt(fitted.sigma2_next) / fitted.scale == pytest.approx(wf["sigma"][0], rel=1e-9)
    assert fitted.last_price == bars["close"][ORIGIN]


@pytest.mark.parametrize("method", ["bootstrap", "t"])
def test_simulated_one_step_variance_is_the_forecast_variance(fitted, method) -> None:
    n = 200_000
    paths = simulate_paths(fitted, n, 1, method=method, seed=3)
    assert paths.shape == (n, 2)
    assert np.all(paths[:, 0] == fitted.last_price)
    r1 = np.log(paths[:, 1] / paths[:, 0])
    forecast = fitted.sigma2_next / fitted.scale**2
    se = float(np.std(r1**2)) / math.sqrt(n)  # Monte-Carlo error of the mean square
    assert abs(float(np.mean(r1**2)) - forecast) < 4 * se
    # ...and the test is sharp enough to see a 10 % error in the variance
    assert 0.1 * forecast > 4 * se


def test_paths_are_seeded_and_deterministic(fitted) -> None:
    for method in ("bootstrap", "t"):
        a = simulate_paths(fitted, 500, 24, method=method, seed=7)
        b = simulate_paths(fitted, 500, 24, method=method, seed=7)
        c = simulate_paths(fitted, 500, 24, method=method, seed=8)
        assert a.tobytes() == b.tobytes()
        assert not np.array_equal(a, c)


def test_paths_see_nothing_after_the_origin(bars, fitted) -> None:
    rng = np.random.default_rng(0)
    later = np.r_[np.ones(ORIGIN + 1), np.exp(rng.normal(0.0, 0.2, N_BARS - ORIGIN - 1))]
    changed = bars.with_columns(pl.Series("close", bars["close"].to_numpy() * later))
    changed = changed.head(ORIGIN + 300)  # also deleted
    fit2 = fit_at_origin(changed, bars["ts"][ORIGIN])
    for method in ("bootstrap", "t"):
        a = simulate_paths(fitted, 300, 48, method=method, seed=1)
        b = simulate_paths(fit2, 300, 48, method=method, seed=1)
        assert a.tobytes() == b.tobytes()


def test_a_fitted_garch_model_and_errors(bars, fitted) -> None:
    r = np.diff(np.log(bars["close"].to_numpy()))[:ORIGIN]
    model = fcst.GARCH().fit(r)
    a = simulate_paths(model, 100, 5, seed=2, start_price=fitted.last_price)
    b = simulate_paths(fhs_from_garch(model, last_price=fitted.last_price), 100, 5, seed=2)
    assert a.tobytes() == b.tobytes()
    with pytest.raises(ValueError, match="start price"):
        simulate_paths(model, 10, 5)  # a model fitted on returns does not know the price
    with pytest.raises(ValueError, match="method"):
        simulate_paths(fitted, 10, 5, method="normal")
    with pytest.raises(ValueError, match="Student-t"):
        simulate_paths(fit_fhs(r, dist="normal"), 10, 5, method="t", start_price=1.0)
    with pytest.raises(InvalidBarsError, match="not a bar"):
        fit_at_origin(bars, datetime(2030, 1, 1, tzinfo=UTC))
