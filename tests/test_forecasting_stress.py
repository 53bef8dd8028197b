"""Filtered historical simulation of stress paths, interval summaries."""

from __future__ import annotations

import math

import numpy as np
import pytest

from forecasting.errors import InvalidBarsError, NotEnoughHistoryError
from forecasting.stress import (
    FHSFit,
    IntervalSummary,
    fit_fhs,
    interval_summary,
    intervals_overlap,
    rank_with_overlaps,
    simulate_fhs_returns,
    stress_paths,
)

OMEGA, ALPHA, BETA = 2e-6, 0.08, 0.90  # hourly; unconditional vol 1 %/h
UNCOND = math.sqrt(OMEGA / (1 - ALPHA - BETA))


def _garch_returns(n: int = 2000, seed: int = 11) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = rng.standard_t(6, size=n) / math.sqrt(6 / 4)  # unit-variance Student-t
    out = np.empty(n)
    s2 = UNCOND**2
    for t in range(n):
        out[t] = math.sqrt(s2) * z[t]
        s2 = OMEGA + ALPHA * out[t] ** 2 + BETA * s2
    return out


@pytest.fixture(scope="module")
def fit() -> FHSFit:
    return fit_fhs(_garch_returns())


def test_fit_recovers_a_garch(fit: FHSFit) -> None:
    assert fit.converged and fit.n_obs == 2000 and fit.dist == "t"
    assert 0.9 < fit.persistence < 1.0
    assert 0.02 < fit.alpha < 0.2
    assert fit.unconditional_vol == pytest.approx(UNCOND, rel=0.3)
    assert fit.next_vol > 0 and len(fit.dist_params) == 1  # nu
    assert fit.std_resid.size == 2000
    assert abs(np.mean(fit.std_resid)) < 0.1 and np.std(fit.std_resid) == pytest.approx(1, abs=0.1)
    with pytest.raises(ValueError, match="read-only"):
        fit.std_resid[0] = 0.0


def test_paths_shape_anchor_and_determinism(fit: FHSFit) -> None:
    a = stress_paths(fit, 1500.0, 49, n_paths=50, seed=42)
    b = stress_paths(fit, 1500.0, 49, n_paths=50, seed=42)
    assert a.shape == (50, 49)
    assert a.tobytes() == b.tobytes()
    assert np.all(a[:, 0] == 1500.0)
    assert np.all(np.isfinite(a)) and np.all(a > 0)
    c = stress_paths(fit, 1500.0, 49, n_paths=50, seed=43)
    assert not np.array_equal(a, c)
    assert stress_paths(fit, 1500.0, 1, n_paths=3).shape == (3, 1)
    assert stress_paths(fit, 1500.0, 10).shape == (200, 10)  # 200 paths by default


def test_simulated_volatility_is_in_a_sane_band(fit: FHSFit) -> None:
    paths = stress_paths(fit, 100.0, 24 * 10 + 1, n_paths=200, seed=0)
    r = np.diff(np.log(paths), axis=1)
    vol = float(np.std(r))
    assert 0.6 * fit.unconditional_vol < vol < 1.6 * fit.unconditional_vol
    # volatility clustering survives: squared returns are autocorrelated along the paths
    r2 = (r**2).ravel()
    r2_lag = (r[:, 1:] ** 2).ravel(), (r[:, :-1] ** 2).ravel()
    assert np.corrcoef(*r2_lag)[0, 1] > 0.02 and r2.size == 200 * 240


def test_first_hour_volatility_is_the_window_start_state(fit: FHSFit) -> None:
    r = simulate_fhs_returns(fit, 1, n_paths=20000, seed=5)
    assert float(np.std(r)) == pytest.approx(fit.next_vol, rel=0.05)
    # the variance recursion starts from the fitted state: a calm start stays calm at first
    calm = FHSFit(**{**_fields(fit), "sigma2_next": fit.omega})
    r_calm = simulate_fhs_returns(calm, 1, n_paths=20000, seed=5)
    assert float(np.std(r_calm)) < float(np.std(r))
    drifted = simulate_fhs_returns(fit, 3, n_paths=4, seed=5, drift=True)
    plain = simulate_fhs_returns(fit, 3, n_paths=4, seed=5)
    np.testing.assert_allclose(drifted - plain, fit.mu / fit.scale)


def _fields(fit: FHSFit) -> dict:
    return {
        k: getattr(fit, k)
        for k in (
            "mu",
            "omega",
            "alpha",
            "beta",
            "dist",
            "dist_params",
            "scale",
            "std_resid",
            "sigma2_next",
            "n_obs",
            "converged",
            "loglikelihood",
        )
    }


def test_sub_hourly_steps_interpolate_the_hourly_path(fit: FHSFit) -> None:
    hourly = stress_paths(fit, 100.0, 25, n_paths=10, seed=9)
    quarter = stress_paths(fit, 100.0, 24 * 4 + 1, n_paths=10, seed=9, step_seconds=900)
    assert quarter.shape == (10, 97)
    np.testing.assert_allclose(quarter[:, ::4], hourly, rtol=1e-12)
    # linear in log price within the hour
    lq = np.log(quarter[:, :5])
    d = np.diff(lq, axis=1)
    np.testing.assert_allclose(d, np.repeat(d[:, :1], 4, axis=1), rtol=1e-9)
    # a ragged end (not a whole hour) is allowed
    assert stress_paths(fit, 100.0, 7, n_paths=10, seed=9, step_seconds=900).shape == (10, 7)


def test_multi_hour_steps_sum_hourly_returns(fit: FHSFit) -> None:
    hourly = stress_paths(fit, 100.0, 25, n_paths=10, seed=9)
    two = stress_paths(fit, 100.0, 13, n_paths=10, seed=9, step_seconds=7200)
    np.testing.assert_allclose(two, hourly[:, ::2], rtol=1e-12)


def test_bad_inputs(fit: FHSFit) -> None:
    with pytest.raises(ValueError, match="step_seconds"):
        stress_paths(fit, 100.0, 10, step_seconds=7000)
    with pytest.raises(ValueError, match="start_price"):
        stress_paths(fit, 0.0, 10)
    with pytest.raises(NotEnoughHistoryError, match="longer pre-event history"):
        fit_fhs(np.full(50, 0.01))
    with pytest.raises(InvalidBarsError, match="zero variance"):
        fit_fhs(np.zeros(200))
    with pytest.raises(InvalidBarsError, match="NaN"):
        fit_fhs(np.r_[_garch_returns(200), np.nan])
    with pytest.raises(ValueError, match="not supported"):
        fit_fhs(_garch_returns(200), dist="ged")


def test_interval_summary_on_known_values() -> None:
    s = interval_summary(np.arange(101.0))
    assert tuple(s) == pytest.approx((50.0, 5.0, 95.0, 95.0, 0.9, 101), abs=1e-12)
    s50 = interval_summary(np.arange(101.0)[::-1], level=0.5)
    assert (s50.lo, s50.hi, s50.p95) == pytest.approx((25.0, 75.0, 95.0), abs=1e-12)
    const = interval_summary([3.0, 3.0, 3.0])
    assert const.median == const.lo == const.hi == const.p95 == 3.0
    with pytest.raises(ValueError, match="NaN"):
        interval_summary([1.0, np.nan])
    with pytest.raises(ValueError, match="level"):
        interval_summary([1.0], level=1.0)
    with pytest.raises(ValueError, match="non-empty"):
        interval_summary([])


def test_intervals_overlap() -> None:
    a = interval_summary(np.linspace(0, 10, 11))  # [0.5, 9.5]
    b = interval_summary(np.linspace(9, 20, 12))  # [9.55, 19.45]
    c = interval_summary(np.linspace(5, 8, 4))
    assert not intervals_overlap(a, b) and not intervals_overlap(b, a)
    assert intervals_overlap(a, c) and intervals_overlap(c, a)
    touching = (
        IntervalSummary(1.0, 0.0, 1.0, 1.0, 0.9, 3),
        IntervalSummary(2.0, 1.0, 3.0, 3.0, 0.9, 3),
    )
    assert intervals_overlap(*touching)


def test_rank_with_overlaps() -> None:
    summaries = {
        "instant": IntervalSummary(10.0, 8.0, 12.0, 11.5, 0.9, 200),
        "dynamic_ltv": IntervalSummary(4.0, 2.0, 6.0, 5.5, 0.9, 200),
        "dutch_auction": IntervalSummary(7.0, 5.0, 9.0, 8.5, 0.9, 200),
    }
    ranked = rank_with_overlaps(summaries)
    assert [(e.rank, e.name) for e in ranked] == [
        (1, "dynamic_ltv"),
        (2, "dutch_auction"),
        (3, "instant"),
    ]
    assert ranked[0].overlaps == ("dutch_auction",)
    assert ranked[1].overlaps == ("dynamic_ltv", "instant")
    assert ranked[2].overlaps == ("dutch_auction",)
    assert [e.name for e in rank_with_overlaps(summaries, lower_is_better=False)][0] == "instant"
