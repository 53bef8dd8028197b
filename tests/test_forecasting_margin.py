"""Dynamic liquidation threshold: formula, ramp, floor, cap and causality."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import forecasting as fcst
from forecasting.errors import InvalidBarsError

T0 = datetime(2020, 3, 12, tzinfo=UTC)


def _sigma(values: list[float]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "model": "garch",
            "origin_ts": [T0 + timedelta(hours=i) for i in range(len(values))],
            "horizon_hours": 24.0,
            "sigma": values,
        }
    )


def test_worked_example_of_the_docstring() -> None:
    pol = fcst.AAVE_V3_WETH
    assert pol.floor == pytest.approx(0.73) and pol.upper == 0.83
    assert pol.tolerated_sigma == pytest.approx(0.0581, abs=1e-4)
    lt = fcst.solvency_threshold([0.03, 0.06, 0.12], liquidation_cost=0.05, z=2.326)
    np.testing.assert_allclose(lt, [0.886, 0.826, 0.719], atol=5e-4)
    path = fcst.liquidation_threshold_path(_sigma([0.03] + [0.12] * 12), pol)
    np.testing.assert_allclose(
        path["liquidation_threshold"].to_numpy(),
        [0.83, 0.82, 0.81, 0.80, 0.79, 0.78, 0.77, 0.76, 0.75, 0.74, 0.73, 0.73, 0.73],
        atol=1e-12,
    )
    # the threshold applies from the close of the origin bar
    assert path["ts"][0] == T0 + timedelta(hours=1)
    assert path.columns == ["ts", "liquidation_threshold"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.0, 0.5, allow_nan=False), min_size=1, max_size=80), st.floats(0.001, 0.05)
)
def test_ramp_floor_cap_hold(values: list[float], ramp: float) -> None:
    pol = fcst.MAKER_ETH_B.with_(max_change_per_hour=ramp)
    out = fcst.liquidation_threshold_path(_sigma(values), pol, details=True)
    lt = out["liquidation_threshold"].to_numpy()
    assert np.all(lt <= pol.upper + 1e-12) and np.all(lt >= pol.floor - 1e-12)
    steps = np.diff(np.r_[pol.upper, lt])
    assert np.all(np.abs(steps) <= ramp + 1e-12)
    tgt = out["lt_target"].to_numpy()
    assert np.all((tgt >= pol.floor - 1e-12) & (tgt <= pol.upper + 1e-12))


def test_asymmetric_ramp_and_gaps() -> None:
    pol = fcst.AAVE_V3_WETH.with_(max_increase_per_hour=0.002)
    values = [0.2] * 10 + [0.0] * 5
    lt = fcst.liquidation_threshold_path(_sigma(values), pol)["liquidation_threshold"].to_numpy()
    assert lt[9] == pytest.approx(0.73)
    np.testing.assert_allclose(np.diff(lt[9:]), 0.002)
    gap = _sigma([0.0, 0.2]).with_columns(pl.Series("origin_ts", [T0, T0 + timedelta(hours=5)]))
    # five hours elapsed: the ramp allows five steps
    assert fcst.liquidation_threshold_path(gap, fcst.AAVE_V3_WETH)["liquidation_threshold"][1] == (
        pytest.approx(0.78)
    )


def test_causal_later_sigma_does_not_change_earlier_lt() -> None:
    rng = np.random.default_rng(3)
    values = list(rng.uniform(0, 0.2, 50))
    a = fcst.liquidation_threshold_path(_sigma(values), fcst.AAVE_V3_WETH)
    b = fcst.liquidation_threshold_path(_sigma(values[:30] + [0.5] * 20), fcst.AAVE_V3_WETH)
    assert a.head(30).equals(b.head(30))


def test_input_errors() -> None:
    mixed = pl.concat([_sigma([0.1]), _sigma([0.1]).with_columns(model=pl.lit("ewma"))])
    with pytest.raises(InvalidBarsError, match="filter to one model"):
        fcst.liquidation_threshold_path(mixed, fcst.AAVE_V3_WETH)
    with pytest.raises(InvalidBarsError, match="non-finite"):
        fcst.liquidation_threshold_path(_sigma([float("nan")]), fcst.AAVE_V3_WETH)
    with pytest.raises(ValueError, match="adjust max_cut or cap"):
        fcst.MarginPolicy(base_lt=0.5, max_cut=0.6)
    with pytest.raises(ValueError, match="adjust max_cut or cap"):
        fcst.MarginPolicy(base_lt=0.8, max_cut=0.1, cap=0.6)
    with pytest.raises(AttributeError):
        fcst.AAVE_V3_WETH.base_lt = 0.9  # type: ignore[misc]
