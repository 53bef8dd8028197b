"""Calibrated tail quantiles (Student-t, FHS, EVT) and their walk-forward honesty."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from scipy import stats

import forecasting as fcst

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _unit_t(rng: np.random.Generator, n: int, nu: float = 4.0) -> np.ndarray:
    return rng.standard_t(nu, n) * np.sqrt((nu - 2.0) / nu)


def test_tail_quantiles_recover_a_student_t_tail() -> None:
    rng = np.random.default_rng(0)
    z = _unit_t(rng, 200_000)
    true99 = -stats.t.ppf(0.01, 4) * np.sqrt(0.5)
    assert fcst.tail_quantile(z, 0.99, method="normal") == pytest.approx(2.3263, abs=1e-4)
    for method in ("fhs", "t", "evt"):
        k = fcst.tail_quantile(z, 0.99, method=method)
        assert k == pytest.approx(true99, rel=0.04), method
    # first passage (reflection): the tail probability is halved
    assert fcst.tail_quantile(z, 0.99, method="normal", first_passage=True) == pytest.approx(
        -stats.norm.ppf(0.005)
    )
    assert fcst.tail_quantile(z, 0.99, method="fhs", first_passage=True) > true99
    with pytest.raises(ValueError, match="method"):
        fcst.tail_quantile(z, 0.99, method="gpd")  # type: ignore[arg-type]


def _frames(n: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame, np.ndarray]:
    """A GARCH-like sigma path, t4 returns, forecasts of two models (one 20 % too low)."""
    rng = np.random.default_rng(seed)
    sigma = 0.01 * np.exp(np.cumsum(rng.normal(0, 0.05, n)) * 0.2)
    ret = sigma * _unit_t(rng, n)
    ts = [T0 + timedelta(hours=i) for i in range(n)]
    fc = pl.concat(
        [
            pl.DataFrame({"model": m, "origin_ts": ts, "horizon_hours": 1, "sigma": sigma * f})
            for m, f in (("true", 1.0), ("low", 0.8))
        ]
    ).with_columns(pl.col("horizon_hours").cast(pl.Int32))
    rz = pl.DataFrame({"origin_ts": ts, "horizon_hours": 1, "realized_return": ret}).with_columns(
        pl.col("horizon_hours").cast(pl.Int32)
    )
    return fc, rz, ret


def test_fhs_multipliers_calibrate_coverage_where_the_normal_does_not() -> None:
    fc, rz, _ = _frames(20_000, seed=1)
    rates = {}
    for method in ("normal", "fhs", "evt", "t"):
        out = fcst.var_multipliers(fc, rz, method=method, levels=(0.99,))
        joined = out.join(rz, on=["origin_ts", "horizon_hours"]).filter(
            pl.col("origin_ts") >= T0 + timedelta(hours=1000)
        )
        hit = joined["realized_return"] < -joined["var99_k"] * joined["sigma"]
        rates[method] = joined.with_columns(hit=hit).group_by("model").agg(pl.col("hit").mean())
    normal = dict(rates["normal"].iter_rows())
    assert normal["true"] > 0.013 and normal["low"] > 0.025  # t4 tails, and a biased model
    for method in ("fhs", "evt", "t"):
        got = dict(rates[method].iter_rows())
        assert 0.0075 <= got["true"] <= 0.0125, (method, got)
        assert 0.0075 <= got["low"] <= 0.0135, (method, got)  # the scale bias is absorbed too


def test_multipliers_are_walk_forward() -> None:
    """Changing every outcome after t leaves the multipliers at origins up to t unchanged."""
    fc, rz, ret = _frames(3000, seed=2)
    h = 24
    fc = fc.with_columns(pl.lit(h, dtype=pl.Int32).alias("horizon_hours"))
    rz = rz.with_columns(pl.lit(h, dtype=pl.Int32).alias("horizon_hours"))
    base = fcst.var_multipliers(fc, rz, method="fhs", min_resid=200, refresh=1)
    t = T0 + timedelta(hours=1500)
    # outcomes of origins s with s + h > t are not known at t: scramble them
    late = pl.col("origin_ts") > t - timedelta(hours=h)
    rz2 = rz.with_columns(
        pl.when(late).then(pl.col("realized_return") * -7.0).otherwise(pl.col("realized_return"))
    )
    moved = fcst.var_multipliers(fc, rz2, method="fhs", min_resid=200, refresh=1)
    early = pl.col("origin_ts") <= t
    assert moved.filter(early).equals(base.filter(early))
    assert not moved.filter(~early).equals(base.filter(~early))
    # before min_resid residuals are known the normal quantile is used
    first = base.sort("origin_ts").filter(pl.col("model") == "true").head(200)
    np.testing.assert_allclose(first["var99_k"].to_numpy(), 2.3263, atol=1e-4)
    np.testing.assert_allclose(first["var95_k"].to_numpy(), 1.6449, atol=1e-4)


def test_score_forecasts_uses_the_multiplier_columns() -> None:
    fc, rz, _ = _frames(2000, seed=3)
    rz = rz.with_columns(realized_var=pl.col("realized_return") ** 2)
    k = fc.with_columns(var95_k=pl.lit(100.0), var99_k=pl.lit(100.0))
    scores = fcst.score_forecasts(k, rz, benchmark=None)
    hits = scores.filter(pl.col("metric").is_in(["var95_hit_rate", "var99_hit_rate"]))
    assert (hits["value"] == 0.0).all()  # nothing exceeds 100 sigma
    plain = fcst.score_forecasts(fc, rz, benchmark=None)
    assert plain.filter(pl.col("metric") == "var95_hit_rate")["value"].min() > 0.01


def test_margin_uses_a_per_origin_z() -> None:
    sig = pl.DataFrame(
        {"origin_ts": [T0 + timedelta(hours=i) for i in range(3)], "sigma": [0.06] * 3}
    )
    fixed = fcst.liquidation_threshold_path(sig, fcst.AAVE_V3_WETH, details=True)
    same = fcst.liquidation_threshold_path(
        sig.with_columns(z=pl.lit(fcst.AAVE_V3_WETH.z)), fcst.AAVE_V3_WETH, details=True
    )
    assert same.equals(fixed)
    fat = fcst.liquidation_threshold_path(
        sig.with_columns(z=pl.lit(3.0)), fcst.AAVE_V3_WETH, details=True
    )
    assert (fat["lt_solvency"] < fixed["lt_solvency"]).all()
    assert fat["lt_solvency"][0] == pytest.approx(0.95 * np.exp(-3.0 * 0.06))
