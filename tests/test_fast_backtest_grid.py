"""Every registered policy × every impact model on one synthetic crash: the engine's contracts.

A deterministic grid next to the Hypothesis properties of ``test_backtest_properties.py``: each
cell is a real cascade (a 300-position book through a 40 % crash), and each test checks one
contract of :func:`backtest.simulate` that every policy must keep.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from backtest import (
    POLICIES,
    Book,
    CpmmImpact,
    LinearImpact,
    NoImpact,
    PricePath,
    SqrtImpact,
    make_policy,
    simulate,
    simulate_dense,
    synthetic_book,
    synthetic_crash_path,
)

PATH = synthetic_crash_path(
    240,
    seed=3,
    start_price=2_000.0,
    crash_depth=0.4,
    crash_steps=60,
    sigma_day=0.3,
    step_seconds=300,
)
BOOK = synthetic_book(300, price=2_000.0, seed=1, total_debt=5e6)
THRESHOLDS = np.linspace(0.83, 0.70, len(PATH))  # a tightening dynamic-LTV path

IMPACTS = {
    "linear": LinearImpact(depth_usd=2e7, half_life_steps=6.0),
    "sqrt": SqrtImpact(sigma_day=0.05, adv_usd=5e7, half_life_steps=6.0),
    "cpmm": CpmmImpact(pool_depth_usd=2e7, half_life_steps=6.0),
    "none": NoImpact(),
}
CELLS = [(policy, impact) for policy in POLICIES for impact in IMPACTS]
IDS = [f"{policy}-{impact}" for policy, impact in CELLS]
USD_METRICS = (
    "liquidated_usd",
    "seized_usd",
    "sold_usd",
    "induced_usd",
    "bad_debt_usd",
    "borrower_loss_usd",
    "liquidator_profit_usd",
    "protocol_revenue_usd",
)
COUNT_METRICS = ("n_liquidations", "n_positions_liquidated", "n_induced", "max_cascade_depth")

cells = pytest.mark.parametrize(("policy_name", "impact_name"), CELLS, ids=IDS)


def _policy(name: str):
    params = {"threshold_path": THRESHOLDS} if name.startswith("dynamic_ltv") else {}
    return make_policy(name, **params)


@functools.cache
def _run(policy_name: str, impact_name: str):
    return simulate(BOOK, PATH, IMPACTS[impact_name], _policy(policy_name))


def test_the_grid_covers_every_policy_and_liquidates() -> None:
    assert len(POLICIES) >= 8 and len(CELLS) == 4 * len(POLICIES)
    for policy in POLICIES:
        assert _run(policy, "none").metrics.n_liquidations > 0, policy


@cells
def test_fast_engine_equals_dense_engine_and_conserves(policy_name, impact_name) -> None:
    fast = _run(policy_name, impact_name)
    dense = simulate_dense(BOOK, PATH, IMPACTS[impact_name], _policy(policy_name))
    assert fast.metrics == dense.metrics
    assert fast.counterfactual == dense.counterfactual
    assert fast.steps.equals(dense.steps)
    c = fast.conservation
    assert abs(c.collateral_error) <= 1e-9 * c.collateral_initial
    assert abs(c.debt_error) <= 1e-9 * c.debt_initial
    assert c.collateral_left >= 0 and c.debt_outstanding >= -1e-9


@cells
def test_counterfactual_is_the_same_run_without_impact(policy_name, impact_name) -> None:
    res = _run(policy_name, impact_name)
    replay = simulate(BOOK, PATH, NoImpact(), _policy(policy_name))
    assert res.counterfactual == replay.metrics
    assert res.counterfactual_steps.equals(replay.steps)


@cells
def test_metrics_add_up_over_positions_and_steps(policy_name, impact_name) -> None:
    res = _run(policy_name, impact_name)
    m = res.metrics
    per_position = res.position_liquidated_usd
    induced = res.position_induced_usd
    assert m.liquidated_usd == pytest.approx(per_position.sum(), rel=1e-9, abs=1e-6)
    assert m.liquidated_usd == pytest.approx(res.steps["liquidated_usd"].sum(), rel=1e-9, abs=1e-6)
    assert m.induced_usd == pytest.approx(induced.sum(), rel=1e-9, abs=1e-6)
    assert m.n_positions_liquidated == int((per_position > 0).sum())
    # induced positions: liquidated only because of impact (not at all without it)
    cf = _cf_per_position(policy_name)
    assert m.n_induced == int(((per_position > 0) & (cf == 0)).sum())
    assert m.n_liquidations == int(res.steps["n_liquidations"].sum())
    assert m.n_liquidations >= m.n_positions_liquidated
    assert 0 <= m.induced_usd <= m.liquidated_usd * (1 + 1e-12) + 1e-9
    np.testing.assert_allclose(induced, np.maximum(0.0, per_position - cf), atol=1e-6)


@functools.cache
def _cf_per_position(policy_name: str) -> np.ndarray:
    return _run(policy_name, "none").position_liquidated_usd


@cells
def test_impact_only_ever_lowers_the_market_price(policy_name, impact_name) -> None:
    res = _run(policy_name, impact_name)
    steps = res.steps
    assert (steps["impact"] >= 0).all()
    assert (steps["p_mkt"] <= steps["p_exo"] * (1 + 1e-12)).all()
    assert res.metrics.peak_price_deviation == pytest.approx(
        float((1 - steps["p_mkt"] / steps["p_exo"]).max()), abs=1e-12
    )
    if impact_name == "none":
        assert res.metrics.induced_usd == 0 and res.metrics.amplification == 1.0
        assert res.steps.equals(res.counterfactual_steps)
    else:
        cf = res.counterfactual.liquidated_usd
        assert res.metrics.amplification == pytest.approx(res.metrics.liquidated_usd / cf)


@cells
def test_usd_results_do_not_depend_on_the_price_unit(policy_name, impact_name) -> None:
    # Twice the price and half the collateral units: the same book in USD (exact in binary).
    base = _run(policy_name, impact_name)
    book = Book(
        position_id=BOOK.position_id,
        collateral=BOOK.collateral / 2,
        debt=BOOK.debt,
        liquidation_threshold=BOOK.liquidation_threshold,
        bonus=BOOK.bonus,
    )
    path = PricePath(ts=PATH.ts, price=PATH.price * 2)
    res = simulate(book, path, IMPACTS[impact_name], _policy(policy_name))
    for name in USD_METRICS + COUNT_METRICS:
        assert getattr(res.metrics, name) == pytest.approx(
            getattr(base.metrics, name), rel=1e-9, abs=1e-6
        ), name
    assert res.metrics.final_price == pytest.approx(2 * base.metrics.final_price, rel=1e-12)


@cells
def test_results_do_not_depend_on_the_calendar(policy_name, impact_name) -> None:
    base = _run(policy_name, impact_name)
    ts = np.asarray(PATH.ts)
    shift = np.timedelta64(400, "D") if np.issubdtype(ts.dtype, np.datetime64) else 400 * 86_400
    res = simulate(
        BOOK, PricePath(ts=ts + shift, price=PATH.price), IMPACTS[impact_name], _policy(policy_name)
    )
    assert res.metrics == base.metrics
    assert res.counterfactual == base.counterfactual
    assert math.isfinite(res.metrics.final_price)
