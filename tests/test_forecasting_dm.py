"""Diebold–Mariano at multi-step horizons: size under the null on simulated loss differentials."""

from __future__ import annotations

import math

import numpy as np
import pytest

import forecasting as fcst


def _overlapping_null(rng: np.random.Generator, n: int, h: int) -> np.ndarray:
    """Loss differential of overlapping h-step targets under equal accuracy: MA(h−1), mean 0.

    Each ``d_t`` is a sum of ``h`` consecutive heavy-tailed (t5) shocks, as a difference of
    QLIKE losses on overlapping ``h``-bar realized variances is.
    """
    e = rng.standard_t(5, n + h - 1)
    return np.convolve(e, np.ones(h), mode="valid")


def _rejection_rate(n: int, h: int, reps: int, seed: int, **kwargs: object) -> float:
    rng = np.random.default_rng(seed)
    zero = np.zeros(n)
    rejected = 0
    for _ in range(reps):
        d = _overlapping_null(rng, n, h)
        dm = fcst.diebold_mariano(d, zero, horizon_bars=h, **kwargs)
        rejected += dm.pvalue < 0.05
    return rejected / reps


def test_dm_hln_has_nominal_size_at_24h_where_bartlett_is_oversized() -> None:
    n, h, reps = 1440, 24, 600
    hln = _rejection_rate(n, h, reps, seed=12)
    bartlett = _rejection_rate(n, h, reps, seed=12, kernel="bartlett", hln=False)
    # binomial standard error at 5 % and 600 draws: 0.9 %
    assert 0.025 <= hln <= 0.08, hln
    assert bartlett > hln + 0.03, (bartlett, hln)


def test_dm_size_at_one_step() -> None:
    rate = _rejection_rate(500, 1, 800, seed=3)
    assert 0.03 <= rate <= 0.075, rate


def test_dm_not_reported_below_ten_horizons_per_sample() -> None:
    rng = np.random.default_rng(0)
    d = rng.normal(size=200)
    short = fcst.diebold_mariano(d, np.zeros(200), horizon_bars=24)
    assert math.isnan(short.stat) and math.isnan(short.pvalue) and short.n == 200
    assert short.mean_loss_diff == pytest.approx(d.mean())
    ok = fcst.diebold_mariano(d, np.zeros(200), horizon_bars=20)
    assert math.isfinite(ok.stat) and ok.lags == 19


def test_dm_detects_a_real_difference_and_hln_formula() -> None:
    rng = np.random.default_rng(1)
    base = rng.gamma(2.0, 1.0, 2000)
    better = base - 0.3 + rng.normal(0, 0.1, 2000)
    dm = fcst.diebold_mariano(better, base)
    assert dm.stat < -10 and dm.pvalue < 1e-6
    # h = 1: rectangular with 0 lags is the plain variance; HLN factor sqrt((n-1)/n)
    d = better - base
    plain = d.mean() / math.sqrt(d.var() / d.size)
    assert dm.stat == pytest.approx(plain * math.sqrt((d.size - 1) / d.size))
    with pytest.raises(ValueError, match="kernel"):
        fcst.diebold_mariano(better, base, kernel="parzen")  # type: ignore[arg-type]
