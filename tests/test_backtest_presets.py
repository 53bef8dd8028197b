"""Factory rules of issue #9: time scales below one bar, clamped defaults, reference presets."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from backtest import (
    POLICY_NAMES,
    PRESETS,
    Batch,
    CircuitBreaker,
    DutchAuction,
    DynamicLTV,
    NoImpact,
    PolicyConfigError,
    PolicyParameterError,
    Staged,
    StepTooCoarseError,
    UnknownPolicyError,
    build_policy,
    check_policy_name,
    policy_param_names,
    simulate,
    smart_ltv_thresholds,
    synthetic_book,
    synthetic_crash_path,
)
from backtest.policies.factory import seconds_param_names


@pytest.mark.parametrize(
    ("name", "parameter", "cls", "field"),
    [
        ("circuit_breaker", "lookback_seconds", CircuitBreaker, "lookback_steps"),
        ("circuit_breaker", "cooldown_seconds", CircuitBreaker, "cooldown_steps"),
        ("batch", "interval_seconds", Batch, "interval_steps"),
        ("staged", "min_interval_seconds", Staged, "min_interval_steps"),
    ],
)
def test_user_time_scale_below_one_bar_is_refused(name, parameter, cls, field):
    with pytest.raises(StepTooCoarseError) as info:
        build_policy(name, {parameter: 600.0}, step_seconds=3_600.0)
    err = info.value
    assert isinstance(err, PolicyConfigError)
    assert (err.policy, err.parameter, err.seconds, err.step_seconds) == (
        name,
        parameter,
        600.0,
        3_600.0,
    )
    assert "shorter than one bar" in str(err)
    again = pickle.loads(pickle.dumps(err))
    assert (again.policy, again.parameter, again.seconds) == (name, parameter, 600.0)
    # at least one bar: converted to steps
    pol = build_policy(name, {parameter: 7_200.0}, step_seconds=3_600.0)
    assert isinstance(pol, cls) and getattr(pol, field) == 2
    assert getattr(pol, "clamped_to_bar", ()) == () or field not in pol.clamped_to_bar
    assert parameter in seconds_param_names(name)
    with pytest.raises(PolicyConfigError, match="not both"):
        build_policy(name, {parameter: 7_200.0, field: 3}, step_seconds=3_600.0)


def test_defaults_below_one_bar_are_clamped_and_recorded():
    batch = build_policy("batch", step_seconds=3_600.0)
    assert batch.interval_steps == 1 and batch.clamped_to_bar == ("interval_steps",)
    staged = build_policy("staged", step_seconds=3_600.0)
    assert staged.min_interval_steps == 1 and staged.clamped_to_bar == ("min_interval_steps",)
    breaker = build_policy("circuit_breaker", step_seconds=3_600.0)
    assert breaker.lookback_steps == 1 and breaker.clamped_to_bar == ()
    assert build_policy("batch", step_seconds=60.0).clamped_to_bar == ()
    # a user step parameter is taken as given, nothing clamped
    assert build_policy("batch", {"interval_steps": 1}, step_seconds=3_600.0).clamped_to_bar == ()
    # clamping does not change the parameters (run ids) of a configuration
    assert "clamped_to_bar" not in batch.params()
    # auctions are never refused: their takes are priced inside the step
    auc = build_policy("dutch_auction", {"step_seconds": 30.0}, step_seconds=3_600.0)
    assert isinstance(auc, DutchAuction) and auc.step_seconds == 30.0


def test_gauntlet_auction_preset():
    assert "dutch_auction@gauntlet" in PRESETS and "dutch_auction@gauntlet" not in POLICY_NAMES
    assert check_policy_name("dutch_auction@gauntlet") == "dutch_auction@gauntlet"
    assert policy_param_names("dutch_auction@gauntlet") == policy_param_names("dutch_auction")
    auc = build_policy(
        "dutch_auction@gauntlet", step_seconds=60.0, auction_defaults={"buf": 1.3, "chop": 0.1}
    )
    assert isinstance(auc, DutchAuction)
    assert (auc.buf, auc.cusp, auc.tail_seconds, auc.step_seconds, auc.cut) == (
        1.10,
        0.60,
        5_200.0,
        30.0,
        0.997,
    )
    assert auc.chop == 0.1  # the book's other auction parameters stay
    assert build_policy("dutch_auction@gauntlet", {"buf": 1.2}, step_seconds=60.0).buf == 1.2
    with pytest.raises(PolicyParameterError):
        build_policy("dutch_auction@gauntlet", {"close_factor": 0.5}, step_seconds=60.0)
    with pytest.raises(UnknownPolicyError, match="presets: dutch_auction@gauntlet"):
        check_policy_name("nope")


def test_smart_ltv_closed_form_and_preset():
    sigma = np.array([0.0, 0.02, 0.05, 0.2, 5.0])
    lt = smart_ltv_thresholds(sigma, liquidity_usd=4e6, debt_usd=1e6, c=2.0, beta=0.05)
    expect = np.exp(-2.0 * sigma / math.sqrt(4.0)) - 0.05
    np.testing.assert_allclose(lt[:4], expect[:4])
    assert lt[4] == 0.01  # floored: thresholds stay in (0, 1]
    assert np.all(np.diff(lt) <= 0)  # more volatility, tighter threshold
    # more debt per unit of liquidity tightens it too
    tight = smart_ltv_thresholds(sigma, liquidity_usd=1e6, debt_usd=1e6, c=2.0, beta=0.05)
    assert np.all(tight[1:4] < lt[1:4]) and tight[0] == lt[0]
    with pytest.raises(PolicyConfigError):
        smart_ltv_thresholds(sigma, liquidity_usd=0.0, debt_usd=1e6)

    path = synthetic_crash_path(240, seed=1, crash_steps=60)
    book = synthetic_book(100, price=2_000.0, seed=2, liquidation_threshold=0.83)
    sig = np.full(len(path), 0.05)
    sig[100:] = 0.5
    th = smart_ltv_thresholds(sig, liquidity_usd=5e6, debt_usd=book.total_debt, c=1.0)
    pol = build_policy("smart_ltv", step_seconds=60.0, max_threshold=0.83, threshold_path=th)
    assert isinstance(pol, DynamicLTV)
    # SmartLTV is an absolute LTV: the path is relative to the book's threshold
    np.testing.assert_allclose(pol.threshold_path, np.minimum(th / 0.83, 1.0) * 0.83)
    res = simulate(book, path, NoImpact(), pol)
    assert res.metrics.n_liquidations >= 0
