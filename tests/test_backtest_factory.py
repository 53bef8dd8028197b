"""The policy factory (:func:`backtest.build_policy`): captured outputs, routing, contract.

Library only, synthetic data. ``tests/fixtures/refactor_reference.json`` holds the ``params()``
of the policies the pipeline built before the factory moved into the library (see
``tests/refactor_cases.py``); every case must still give exactly those parameters.
"""

from __future__ import annotations

import json
import math
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import refactor_cases as cases

import backtest
from backtest import (
    DYNAMIC_POLICIES,
    POLICIES,
    POLICY_NAMES,
    Batch,
    CircuitBreaker,
    Combined,
    DutchAuction,
    DynamicLTV,
    Instant,
    LinearImpact,
    LiquidityBuffer,
    MissingThresholdPathError,
    PolicyConfigError,
    PolicyParameterError,
    Staged,
    UnknownPolicyError,
    build_policy,
    policy_param_names,
    scale_threshold_path,
    simulate,
    synthetic_book,
    synthetic_crash_path,
)

REFERENCE = json.loads(
    (Path(__file__).parent / "fixtures" / "refactor_reference.json").read_text()
)["policies"]


def _build(case: dict) -> backtest.Policy:
    margin = case["margin"]
    return build_policy(
        case["name"],
        case["params"],
        step_seconds=case["step_seconds"],
        total_debt=case["total_debt"],
        max_threshold=case["max_threshold"],
        auction_defaults=case["auction_defaults"],
        threshold_path=None if margin is None else margin[0],
        reference_threshold=None if margin is None else margin[1],
    )


def _flags_to_params(message: str) -> list[str]:
    flags = message.split(" does not apply")[0]
    return sorted(f.strip()[2:].replace("-", "_") for f in flags.split(","))


def test_reference_covers_every_policy_name():
    assert set(POLICY_NAMES) == set(POLICIES)
    # the captured reference predates the on-request policies (issue #15), which have no
    # pre-library code to capture from
    from backtest.policies.factory import ON_REQUEST_POLICIES

    assert set(POLICY_NAMES) - set(ON_REQUEST_POLICIES) == set(cases.POLICY_NAMES)
    assert {r["id"].split("|")[0] for r in REFERENCE} == set(cases.POLICY_NAMES)
    assert len(REFERENCE) == len(cases.policy_cases())


@pytest.mark.parametrize("case", cases.policy_cases(), ids=lambda c: c["id"])
def test_factory_reproduces_captured_pipeline_policies(case):
    ref = {r["id"]: r for r in REFERENCE}[case["id"]]
    if "error" in ref:
        if "does not apply" in ref["message"]:
            with pytest.raises(PolicyParameterError) as info:
                _build(case)
            assert sorted(info.value.parameters) == _flags_to_params(ref["message"])
            assert info.value.policy == case["name"]
            accepted = ref["message"].split("its parameters: ")[1].split(", ")
            now = [a for a in info.value.accepted if a not in cases.ADDED_AFTER_CAPTURE]
            assert now == accepted
        else:
            assert "needs a forecast model's margin path" in ref["message"]
            with pytest.raises(MissingThresholdPathError, match=re.escape(case["name"])):
                _build(case)
        return
    policy = _build(case)
    assert type(policy).__name__ == ref["type"]
    # JSON round trip: the stored reference went through json (tuples → lists, inf → "inf").
    assert json.loads(json.dumps(policy.params())) == ref["params"]


def test_routing_to_base_and_parts():
    th = np.full(10, 0.8)
    cb = build_policy(
        "circuit_breaker", {"close_factor": 0.5, "drop_threshold": 0.2}, step_seconds=60
    )
    assert isinstance(cb, CircuitBreaker) and isinstance(cb.base, Instant)
    assert cb.base.close_factor == 0.5 and cb.drop_threshold == 0.2
    dyn = build_policy(
        "dynamic_ltv", {"bonus": 0.07, "penalty": 0.02}, step_seconds=60, threshold_path=th
    )
    assert isinstance(dyn, DynamicLTV) and dyn.base.bonus == 0.07 and dyn.penalty == 0.02
    combo = build_policy(
        "dynamic_ltv+dutch_auction",
        {"buf": 1.1, "target_health": 1.2},
        step_seconds=60,
        threshold_path=th,
        auction_defaults={"buf": 1.3, "cusp": 0.3},
    )
    assert isinstance(combo, Combined)
    dyn_part, auction = combo.parts
    assert isinstance(dyn_part, DynamicLTV) and dyn_part.target_health == 1.2
    assert isinstance(auction, DutchAuction) and auction.buf == 1.1 and auction.cusp == 0.3
    assert policy_param_names("circuit_breaker") >= {"close_factor", "lookback_steps"}
    assert "threshold_path" not in policy_param_names("dynamic_ltv")


def test_unknown_parameter_names_policy_and_parameter():
    with pytest.raises(PolicyParameterError, match=r"'buf'.*'instant'") as info:
        build_policy("instant", {"buf": 1.1}, step_seconds=60)
    assert info.value.parameters == ("buf",)
    assert "close_factor" in info.value.accepted
    assert isinstance(info.value, PolicyConfigError)
    again = pickle.loads(pickle.dumps(info.value))
    assert str(again) == str(info.value) and again.parameters == ("buf",)


def test_unknown_policy_and_missing_inputs():
    with pytest.raises(UnknownPolicyError, match="known policies"):
        build_policy("nope", step_seconds=60)
    for name in DYNAMIC_POLICIES:
        with pytest.raises(MissingThresholdPathError):
            build_policy(name, step_seconds=60)
    with pytest.raises(PolicyConfigError, match="total_debt"):
        build_policy("liquidity_buffer", step_seconds=60)
    assert build_policy("liquidity_buffer", {"capacity_usd": 10.0}, step_seconds=60)


@pytest.mark.parametrize(
    ("step_seconds", "lookback", "interval", "min_interval"),
    [(60.0, 60, 10, 5), (3_600.0, 1, 1, 1), (300.0, 12, 2, 1), (1.0, 3_600, 600, 300)],
)
def test_time_defaults_follow_the_step(step_seconds, lookback, interval, min_interval):
    cb = build_policy("circuit_breaker", step_seconds=step_seconds)
    assert cb.lookback_steps == cb.cooldown_steps == lookback
    assert build_policy("batch", step_seconds=step_seconds).interval_steps == interval
    assert build_policy("staged", step_seconds=step_seconds).min_interval_steps == min_interval
    assert (
        build_policy("batch", {"interval_steps": 4}, step_seconds=step_seconds).interval_steps == 4
    )
    buf = build_policy("liquidity_buffer", step_seconds=step_seconds, total_debt=1e6)
    assert isinstance(buf, LiquidityBuffer)
    assert buf.capacity_usd == pytest.approx(1e5)
    # the capacity unwinds over two hours, whatever the bar size
    assert buf.unwind_usd_per_step * 7_200.0 / step_seconds == pytest.approx(1e5)


def test_dynamic_threshold_scaling_done_by_the_library():
    lt = np.array([0.86, 0.84, 0.80, 0.86])
    out = scale_threshold_path(lt, 0.86, 0.83)
    assert np.allclose(out, np.minimum(lt / 0.86, 1.0) * 0.83)
    dyn = build_policy("dynamic_ltv", step_seconds=60, threshold_path=lt, max_threshold=0.83)
    assert np.array_equal(dyn.threshold_path, out)  # reference defaults to the path's maximum
    dyn = build_policy(
        "dynamic_ltv", {"reference_threshold": 0.9}, step_seconds=60, threshold_path=lt
    )
    assert dyn.reference_threshold is None
    assert np.allclose(dyn.threshold_path, lt / 0.9)


# --- contract: every registered policy, through the engine -----------------------------------


@pytest.fixture(scope="module")
def contract_inputs():
    book = synthetic_book(300, price=2_000.0, seed=3, total_debt=5e7)
    path = synthetic_crash_path(240, seed=5, crash_depth=0.45, crash_start=0.1, crash_steps=90)
    impact = LinearImpact(depth_usd=4e7, half_life_steps=30.0)
    return book, path, impact


@pytest.mark.parametrize("name", list(POLICIES))
def test_every_registered_policy_runs_and_conserves(name, contract_inputs):
    book, path, impact = contract_inputs
    th = 0.83 - 0.08 * np.sin(np.linspace(0.0, math.pi, len(path)))
    policy = build_policy(
        name,
        step_seconds=path.step_seconds,
        total_debt=book.total_debt,
        max_threshold=float(book.liquidation_threshold.max()),
        threshold_path=th,
        reference_threshold=0.83,
    )
    result = simulate(book, path, impact, policy)
    c = result.conservation
    scale = max(c.collateral_initial, 1.0)
    assert abs(c.collateral_error) <= 1e-9 * scale
    assert abs(c.seized_error) <= 1e-9 * scale
    assert abs(c.debt_error) <= 1e-9 * max(c.debt_initial, 1.0)
    assert c.collateral_left >= 0 and c.debt_outstanding >= -1e-9 and c.debt_bad >= -1e-9
    m = result.metrics
    assert np.all(result.position_liquidated_usd >= -1e-9)
    assert np.all(result.position_liquidated_usd <= book.debt + 1e-6)
    assert m.liquidated_usd > 0  # a 45 % crash liquidates something under every policy
    assert result.policy["policy"] == policy.name
    again = pickle.loads(pickle.dumps(result))
    assert dict(again.policy) == dict(result.policy) == policy.params()
    assert again.metrics == result.metrics
    assert np.array_equal(again.position_liquidated_usd, result.position_liquidated_usd)


def test_policy_classes_are_the_registered_ones():
    assert {
        type(
            build_policy(n, step_seconds=60, total_debt=1.0, threshold_path=np.ones(3) * 0.8)
        ).__name__
        for n in POLICY_NAMES
    } == {
        "Instant",
        "DutchAuction",
        "CircuitBreaker",
        "LiquidityBuffer",
        "Batch",
        "Staged",
        "Schedule",
        "AmmBands",
        "DynamicLTV",
        "Combined",
    }
    assert Batch.name == "batch" and Staged.name == "staged"


# --- Result: read-only and picklable ------------------------------------------------------------


def test_result_pickles_and_stays_read_only(contract_inputs):
    book, path, impact = contract_inputs
    result = simulate(book, path, impact, build_policy("staged", step_seconds=60.0))
    for mapping in (result.policy, result.impact):
        with pytest.raises(TypeError):
            mapping["policy"] = "x"  # type: ignore[index]
        with pytest.raises(TypeError):
            del mapping["policy"]  # type: ignore[attr-defined]
        with pytest.raises(AttributeError):
            mapping._data = {}  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        result.engine = "dense"  # type: ignore[misc]
    # the stored copy does not follow later edits of the dict it was made from
    source = {"a": 1}
    frozen = backtest.FrozenParams(source)
    source["a"] = 2
    assert frozen["a"] == 1 and frozen == {"a": 1} and len(frozen) == 1
    again = pickle.loads(pickle.dumps(result))
    assert isinstance(again.policy, backtest.FrozenParams)
    assert again.policy == result.policy and again.impact == result.impact
    assert again.metrics == result.metrics and again.counterfactual == result.counterfactual
    assert again.conservation == result.conservation
    assert again.steps.equals(result.steps)
    assert again.counterfactual_steps.equals(result.counterfactual_steps)
    assert again.fingerprint == result.fingerprint
    assert np.array_equal(again.position_induced_usd, result.position_induced_usd)
    assert json.dumps(dict(again.policy)) == json.dumps(dict(result.policy))
