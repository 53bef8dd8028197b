"""Control threshold paths (constant, lagged realized, shuffled, oracle) and the captured share."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from forecasting.controls import (
    CONTROL_NAMES,
    CapturedShare,
    ControlPaths,
    build_control_paths,
    captured_share,
    constant_control,
    default_origins,
    future_realized_sigma,
    lagged_realized_control,
    oracle_control,
    shuffled_control,
    trailing_realized_sigma,
)
from forecasting.errors import InvalidBarsError, NotEnoughHistoryError
from forecasting.margin import AAVE_V3_WETH, liquidation_threshold_path

T0 = datetime(2020, 3, 1, tzinfo=UTC)
EVENT = T0 + timedelta(days=8)  # first step
HOUR = 3600


def _returns(
    n_hours: int = 24 * 12, seed: int = 1, step_seconds: int = HOUR, *, spike: bool = True
) -> pl.DataFrame:
    """Synthetic returns: calm 0.8 %/h, a spike of 4 %/h from day 8 + 6 h to day 9."""
    rng = np.random.default_rng(seed)
    per_hour = HOUR // step_seconds
    n = n_hours * per_hour
    ts = [T0 + timedelta(seconds=step_seconds * i) for i in range(n)]
    hours = np.arange(n) / per_hour
    in_spike = spike & (hours >= 8 * 24 + 6) & (hours < 9 * 24)
    sd = np.where(in_spike, 0.04, 0.008) / math.sqrt(per_hour)
    return pl.DataFrame({"ts": ts, "ret": rng.standard_normal(n) * sd})


def _steps(n: int = 48, step_seconds: int = HOUR) -> pl.Series:
    return pl.Series("ts", [EVENT + timedelta(seconds=step_seconds * i) for i in range(n)])


def _alter_after(returns: pl.DataFrame, cut: datetime, factor: float = 5.0) -> pl.DataFrame:
    """Scale the returns that end after ``cut`` (ends = ts + 1 h)."""
    ends_after = pl.col("ts") + pl.duration(hours=1) > cut
    return returns.with_columns(
        pl.when(ends_after).then(pl.col("ret") * factor + 0.003).otherwise(pl.col("ret"))
    )


# -- realized sigma ----------
def test_trailing_sigma_is_sqrt_of_sum_of_last_24_squared_returns() -> None:
    ret = _returns()
    origins = [T0 + timedelta(hours=100)]
    got = trailing_realized_sigma(ret, origins)["sigma"][0]
    r = ret["ret"].to_numpy()
    # origin bar 100 closes at hour 101: returns of bars 77..100 end in (77, 101]
    np.testing.assert_allclose(got, math.sqrt(np.sum(r[77:101] ** 2)), rtol=1e-12)
    # a 12 h window scaled to 24 h
    got12 = trailing_realized_sigma(ret, origins, window_hours=12)["sigma"][0]
    np.testing.assert_allclose(got12, math.sqrt(2 * np.sum(r[89:101] ** 2)), rtol=1e-12)


def test_future_sigma_matches_realized_targets_definition() -> None:
    ret = _returns()
    got = future_realized_sigma(ret, [T0 + timedelta(hours=100)])["sigma"][0]
    r = ret["ret"].to_numpy()
    np.testing.assert_allclose(got, math.sqrt(np.sum(r[101:125] ** 2)), rtol=1e-12)


def test_sigma_from_five_minute_returns_sums_all_sub_returns() -> None:
    ret = _returns(n_hours=24 * 3, step_seconds=300)
    got = trailing_realized_sigma(ret, [T0 + timedelta(hours=40)])["sigma"][0]
    r = ret["ret"].to_numpy()
    end = 41 * 12  # returns ending up to hour 41
    np.testing.assert_allclose(got, math.sqrt(np.sum(r[end - 288 : end] ** 2)), rtol=1e-12)


def test_missing_history_raises_with_a_fix() -> None:
    ret = _returns()
    with pytest.raises(NotEnoughHistoryError, match="lower min_coverage"):
        trailing_realized_sigma(ret, [T0 + timedelta(hours=2)])
    # partial coverage allowed when asked: variance rate of what is there
    got = trailing_realized_sigma(ret, [T0 + timedelta(hours=2)], min_coverage=0.0)["sigma"][0]
    r = ret["ret"].to_numpy()
    np.testing.assert_allclose(got, math.sqrt(24 / 3 * np.sum(r[:3] ** 2)), rtol=1e-12)
    with pytest.raises(NotEnoughHistoryError, match="future"):
        future_realized_sigma(ret, [T0 + timedelta(hours=24 * 12 - 2)])


def test_bad_inputs_raise() -> None:
    with pytest.raises(InvalidBarsError, match="ts and ret"):
        trailing_realized_sigma(pl.DataFrame({"ts": [T0], "r": [0.1]}), [T0])
    with pytest.raises(InvalidBarsError, match="increasing"):
        trailing_realized_sigma(_returns(), [T0 + timedelta(hours=50), T0 + timedelta(hours=40)])
    with pytest.raises(InvalidBarsError, match="datetimes"):
        trailing_realized_sigma(_returns(), [1.0, 2.0])


# -- mapping and alignment ----------
def test_lagged_control_uses_the_margin_mapping_and_asof_alignment() -> None:
    ret = _returns()
    steps = _steps(48, step_seconds=900)  # 15-minute steps
    origins = default_origins(steps, warmup_hours=24)
    sigma = trailing_realized_sigma(ret, origins)
    path = liquidation_threshold_path(sigma, AAVE_V3_WETH)
    expected = (
        pl.DataFrame({"ts": steps.cast(pl.Datetime("us", "UTC"))})
        .join_asof(path, on="ts", strategy="backward")["liquidation_threshold"]
        .to_numpy()
    )
    got = lagged_realized_control(ret, steps, AAVE_V3_WETH, origins=origins)
    np.testing.assert_allclose(got, expected, rtol=0, atol=0)
    # the default origins: 24 h warm-up, last threshold published at or before the last step
    o = origins.dt.epoch("s").to_numpy()
    assert np.all(np.diff(o) == HOUR)
    assert o[0] + HOUR <= int(EVENT.timestamp()) - 24 * HOUR
    assert o[-1] + HOUR <= int(steps[-1].timestamp()) < o[-1] + 2 * HOUR


def test_controls_stay_in_the_policy_band_and_tighten_in_the_spike() -> None:
    ret = _returns()
    steps = _steps(40)
    lagged = lagged_realized_control(ret, steps, AAVE_V3_WETH)
    oracle = oracle_control(ret, steps, AAVE_V3_WETH)
    for p in (lagged, oracle):
        assert np.all(p >= AAVE_V3_WETH.floor - 1e-12) and np.all(p <= AAVE_V3_WETH.upper)
    # the oracle tightens before the spike (hour 6), the lagged rule only after it
    assert oracle[:6].min() < AAVE_V3_WETH.upper
    assert lagged[:7].min() == AAVE_V3_WETH.upper
    assert lagged[20:].min() < AAVE_V3_WETH.upper


# -- walk-forward honesty ----------
@pytest.mark.parametrize("cut_hour", [0, 5, 13, 30])
def test_lagged_control_at_t_ignores_returns_after_t(cut_hour: int) -> None:
    ret = _returns(spike=False)
    steps = _steps(96, step_seconds=1800)
    cut = EVENT + timedelta(hours=cut_hour)
    base = lagged_realized_control(ret, steps, AAVE_V3_WETH)
    altered = lagged_realized_control(_alter_after(ret, cut), steps, AAVE_V3_WETH)
    before = (steps <= cut).to_numpy()
    np.testing.assert_array_equal(base[before], altered[before])
    assert not np.array_equal(base[~before], altered[~before])  # the test can see a change


def test_oracle_changes_when_future_returns_change() -> None:
    ret = _returns()
    steps = _steps(48)
    cut = EVENT + timedelta(hours=30)
    base = oracle_control(ret, steps, AAVE_V3_WETH)
    altered = oracle_control(_alter_after(ret, cut, factor=8.0), steps, AAVE_V3_WETH)
    before = (steps <= cut).to_numpy()
    assert not np.array_equal(base[before], altered[before])
    sig = future_realized_sigma(ret, [EVENT + timedelta(hours=20)])["sigma"][0]
    sig2 = future_realized_sigma(_alter_after(ret, cut), [EVENT + timedelta(hours=20)])["sigma"][0]
    assert sig2 != sig


# -- constant and shuffled ----------
def test_constant_control_has_the_model_mean_tightening() -> None:
    model = np.array([0.83, 0.82, 0.80, 0.78, 0.76, 0.78, 0.81, 0.83])
    const = constant_control(model, reference_threshold=0.83)
    assert const.shape == model.shape and np.ptp(const) == 0
    assert np.mean(0.83 - const) == pytest.approx(np.mean(0.83 - model), abs=1e-15)
    np.testing.assert_allclose(constant_control(model), np.mean(model))
    # above the reference the model does not loosen: only the tightening counts
    above = np.array([0.90, 0.73])
    np.testing.assert_allclose(constant_control(above, reference_threshold=0.83), 0.83 - 0.05)


def test_shuffled_is_a_seeded_permutation() -> None:
    model = np.linspace(0.73, 0.83, 50)
    a = shuffled_control(model, seed=7)
    np.testing.assert_array_equal(np.sort(a), np.sort(model))
    np.testing.assert_array_equal(a, shuffled_control(model, seed=7))
    assert not np.array_equal(a, shuffled_control(model, seed=8))
    assert not np.array_equal(a, model)
    with pytest.raises(InvalidBarsError):
        shuffled_control([], seed=1)


def test_build_control_paths() -> None:
    ret = _returns()
    steps = _steps(36)
    origins = default_origins(steps)
    sig = trailing_realized_sigma(ret, origins)  # stand-in "model": any sigma path
    model = (
        pl.DataFrame({"ts": steps.cast(pl.Datetime("us", "UTC"))})
        .join_asof(liquidation_threshold_path(sig, AAVE_V3_WETH), on="ts", strategy="backward")[
            "liquidation_threshold"
        ]
        .to_numpy()
    )
    cp = build_control_paths(model, steps, ret, AAVE_V3_WETH, origins=origins, seed=3)
    assert isinstance(cp, ControlPaths) and cp.n_steps == 36
    assert list(cp.as_dict()) == list(CONTROL_NAMES)
    assert list(cp.as_dict(include_oracle=False)) == ["constant", "lagged_realized", "shuffled"]
    np.testing.assert_array_equal(cp.lagged_realized, model)  # same sigma, same mapping
    np.testing.assert_array_equal(cp.shuffled, shuffled_control(model, 3))
    with pytest.raises(ValueError, match="read-only"):
        cp.oracle[0] = 0.5
    numpy_steps = steps.dt.replace_time_zone(None).to_numpy()
    cp2 = build_control_paths(model, numpy_steps, ret, AAVE_V3_WETH, origins=origins, seed=3)
    np.testing.assert_array_equal(cp2.oracle, cp.oracle)
    with pytest.raises(InvalidBarsError, match="one threshold per step"):
        build_control_paths(model[:-1], steps, ret, AAVE_V3_WETH)


# -- captured share ----------
def test_captured_share_hand_computed() -> None:
    controls = {"constant": 10.0, "lagged_realized": 8.0, "shuffled": 12.0}
    assert captured_share(6.0, controls, 4.0) == CapturedShare(0.5, "lagged_realized")
    share, best = captured_share(4.0, controls, 4.0)
    assert (share, best) == (1.0, "lagged_realized")
    assert captured_share(9.0, controls, 4.0).share == pytest.approx(-0.25)
    assert captured_share(2.0, controls, 4.0).share == pytest.approx(1.5)
    # gain-type metric: best control is the highest
    gains = {"constant": 1.0, "lagged_realized": 2.0}
    assert captured_share(2.5, gains, 4.0, loss=False) == CapturedShare(0.25, "lagged_realized")


def test_captured_share_ties_zero_denominators_and_nans() -> None:
    tie = {"shuffled": 8.0, "constant": 8.0}
    assert captured_share(6.0, tie, 4.0) == CapturedShare(0.5, "constant")
    nan, best = captured_share(6.0, {"constant": 4.0}, 4.0)  # oracle no better
    assert math.isnan(nan) and best == "constant"
    assert math.isnan(captured_share(6.0, {"constant": 3.0}, 4.0).share)  # oracle worse
    assert math.isnan(captured_share(math.nan, {"constant": 8.0}, 4.0).share)
    assert captured_share(6.0, {"constant": math.nan, "shuffled": 8.0}, 4.0).best_control == (
        "shuffled"
    )
    res = captured_share(6.0, {"constant": math.nan}, 4.0)
    assert math.isnan(res.share) and res.best_control is None
    with pytest.raises(ValueError, match="empty"):
        captured_share(1.0, {}, 0.0)
