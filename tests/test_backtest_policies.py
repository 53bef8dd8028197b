"""Hand-computed runs of every policy, the registry and compare()."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from builders import book_of, path_of

from backtest import (
    POLICIES,
    Batch,
    CircuitBreaker,
    Combined,
    DutchAuction,
    DynamicLTV,
    Instant,
    LinearImpact,
    LiquidityBuffer,
    NoImpact,
    PathValidationError,
    PolicyConfigError,
    ResultMismatchError,
    Staged,
    UnknownPolicyError,
    compare,
    make_policy,
    simulate,
    simulate_dense,
)
from backtest.policies.dynamic_ltv import ramp_limited


def both(*args, **kw):
    """Run both engines; they must agree exactly."""
    fast = simulate(*args, **kw)
    dense = simulate_dense(*args, **kw)
    assert fast.steps.equals(dense.steps)
    assert fast.metrics == dense.metrics
    return fast


# A: L=95, B: L=90, C: L=85, D: L=50 (1 unit each, LT 0.8, bonus 5 %)
CASCADE = book_of([1, 1, 1, 1], [76, 72, 68, 40])


# --------------------------------------------------------------------------- dutch_auction
# One vault: 10 units, 1,000 USD debt, LT 0.8 → L = 125. Price 130, then 120 flat.
VAULT = book_of([10.0], [1000.0])
TAB = 1000 * 1.13
COIN = 300 + 0.001 * TAB  # keeper incentive tip + chip·tab


def test_dutch_auction_take_after_stairstep_decay():
    # Step 1: bark at p=120, top = 1.2·120 = 144. Takers need P <= 120·0.99 = 118.8:
    # 144·0.99^19 = 118.97 (no), 144·0.99^20 = 117.7786 (yes) → take at step 21.
    # tab 1130 <= lot·P = 1177.8 → takers pay 1130 for 1130/P units, the rest goes back.
    res = both(VAULT, path_of([130] + [120] * 30), NoImpact(), DutchAuction())
    price = 144 * 0.99**20
    units = TAB / price
    m = res.metrics
    assert m.n_liquidations == 1
    assert m.liquidated_usd == pytest.approx(1000.0)
    assert res.steps["n_liquidations"][1] == 1
    assert np.flatnonzero(res.steps["sold_usd"].to_numpy()).tolist() == [21]
    assert m.sold_usd == pytest.approx(units * 120)
    assert m.bad_debt_usd == 0.0
    assert m.protocol_revenue_usd == pytest.approx(130 - COIN)
    assert m.liquidator_profit_usd == pytest.approx(COIN + units * 120 - TAB)
    assert m.borrower_loss_usd == pytest.approx(units * 120 - 1000)
    assert m.time_to_clear_steps == 21 and m.cleared
    c = res.conservation
    assert c.collateral_returned == pytest.approx(10 - units)
    assert abs(c.seized_error) < 1e-12 and abs(c.debt_error) < 1e-9


def test_dutch_auction_resets_after_tail_and_at_cusp():
    # Takers want 70 % off: never. tail 5,400 s: elapsed 91 min > tail at step 1+91 → redo at
    # 1.2·120 with a second keeper incentive (dust 0 so chost = 0).
    res = both(
        VAULT, path_of([130] + [120] * 99), NoImpact(), DutchAuction(taker_margin=0.7, dust_usd=0)
    )
    m = res.metrics
    assert m.protocol_revenue_usd == pytest.approx(-2 * COIN)
    assert not m.cleared and m.in_flight_debt_usd == 1000.0 and m.in_flight_collateral == 10.0
    assert m.time_to_clear_steps == 99
    assert res.conservation.debt_in_flight == 1000.0
    # without a tail the cusp fires: 0.99^92 = 0.3967 < 0.40 at step 93 (0.99^91 = 0.4007)
    cusp = DutchAuction(taker_margin=0.7, dust_usd=0, tail_seconds=1e9)
    short = both(VAULT, path_of([130] + [120] * 92), NoImpact(), cusp)
    assert short.metrics.protocol_revenue_usd == pytest.approx(-COIN)
    longer = both(VAULT, path_of([130] + [120] * 93), NoImpact(), cusp)
    assert longer.metrics.protocol_revenue_usd == pytest.approx(-2 * COIN)
    # dust 15,000 → chost 16,950 > tab: no incentive on redo
    res = both(VAULT, path_of([130] + [120] * 99), NoImpact(), DutchAuction(taker_margin=0.7))
    assert res.metrics.protocol_revenue_usd == pytest.approx(-COIN)


def test_dutch_auction_hole_partial_bark_then_the_rest():
    # Two vaults (L=125 each), hole 1,500: room/1.13 = 1327.43 of debt. The first is barked
    # whole, the second for 327.43 (>= dust 100, remainder 672.57 >= dust); the rest waits for
    # room, which the takes at step 21 free; it is then barked and taken at step 41.
    book = book_of([10.0, 10.0], [1000.0, 1000.0])
    pol = DutchAuction(hole_usd=1500.0, dust_usd=100.0)
    res = both(book, path_of([130] + [120] * 50), NoImpact(), pol)
    n = res.steps["n_liquidations"].to_numpy()
    liq = res.steps["liquidated_usd"].to_numpy()
    assert np.flatnonzero(n).tolist() == [1, 21]
    assert n[1] == 2 and n[21] == 1
    assert liq[1] == pytest.approx(1500 / 1.13)
    assert liq[21] == pytest.approx(2000 - 1500 / 1.13)
    assert np.flatnonzero(res.steps["sold_usd"].to_numpy()).tolist() == [21, 41]
    m = res.metrics
    assert m.liquidated_usd == pytest.approx(2000.0) and m.cleared
    assert m.n_positions_liquidated == 2
    # remainder below dust: the whole vault is barked (exceeding the hole)
    res = both(book, path_of([130, 120]), NoImpact(), DutchAuction(hole_usd=1500.0, dust_usd=800))
    assert res.metrics.liquidated_usd == pytest.approx(2000.0)
    # part that fits below dust: it waits
    res = both(book, path_of([130, 120]), NoImpact(), DutchAuction(hole_usd=1200.0, dust_usd=200))
    assert res.metrics.liquidated_usd == pytest.approx(1000.0)


def test_dutch_auction_partial_takes_with_taker_capacity():
    # Takers can pay 600 USD per step: at step 21 (P=117.78) they pay 600, at step 22 the
    # remaining 530 at the first moment of the step, still on the stair P = 144·0.99^20 (takes
    # happen where the curve meets the market inside a step; before issue #9 at 0.99^21).
    res = both(VAULT, path_of([130] + [120] * 30), NoImpact(), DutchAuction(taker_capacity_usd=600))
    u1 = 600 / (144 * 0.99**20)
    u2 = 530 / (144 * 0.99**20)
    sold = res.steps["sold_usd"].to_numpy()
    assert sold[21] == pytest.approx(u1 * 120) and sold[22] == pytest.approx(u2 * 120)
    assert res.conservation.collateral_returned == pytest.approx(10 - u1 - u2)
    assert res.metrics.protocol_revenue_usd == pytest.approx(130 - COIN)


def test_dutch_auction_linear_curve():
    # linear: P = 144·(1 − elapsed/tau); tau = 3600 s → P <= 118.8 once elapsed >= 630 s,
    # i.e. at the 11th minute; take at step 12.
    linear = DutchAuction(curve="linear", tau_seconds=3600)
    res = both(VAULT, path_of([130] + [120] * 20), NoImpact(), linear)
    assert np.flatnonzero(res.steps["sold_usd"].to_numpy()).tolist() == [12]
    with pytest.raises(PolicyConfigError, match="stairstep"):
        DutchAuction(curve="exp")


# --------------------------------------------------------------------------- circuit_breaker
def test_circuit_breaker_halts_mid_cascade_and_resumes():
    # Linear impact, depth 1000, permanent. Breaker: drop > 10 % over 5 steps, 3-step halt.
    # Step 1: round 1 at 94 (drop 6 % from 100) liquidates A → p = 86.79 (drop 13.2 %) → halt
    # for steps 1-3. Step 4: resume, the window restarts at 86.79; B goes (→ 80.47, drop
    # 7.3 %), then C (→ 74.93, drop 13.7 %) → halt again.
    pol = CircuitBreaker(base=Instant(), drop_threshold=0.10, lookback_steps=5, cooldown_steps=3)
    res = both(CASCADE, path_of([100] + [94] * 6), LinearImpact(depth_usd=1000.0), pol)
    assert res.steps["cascade_depth"].to_list() == [0, 1, 0, 0, 2, 0, 0]
    assert res.metrics.liquidated_usd == pytest.approx(216.0)
    assert res.steps["p_open"][4] == pytest.approx(94 * math.exp(-0.0798))
    # a 15 % gap halts before anything is liquidated
    res = both(CASCADE, path_of([100, 85, 85]), LinearImpact(depth_usd=1000.0), pol)
    assert res.steps["n_liquidations"].to_list() == [0, 0, 0]


def test_circuit_breaker_lets_auction_takes_continue():
    # Vault 1 (L=125) is barked at step 1 at 124 (drop 4.6 % < 5 %), top = 148.8. At step 2 the
    # price gaps to 110 (drop 15.4 %): halt for steps 2-61, so vault 2 (L=115) waits, but the
    # running auction is still taken once 148.8·0.99^k <= 108.9, k = 32 → step 33 (Maker
    # stopped = 1). At step 62 the breaker resumes and vault 2 is barked.
    book = book_of([10.0, 10.0], [1000.0, 920.0])
    pol = CircuitBreaker(base=DutchAuction(), drop_threshold=0.05, cooldown_steps=60)
    res = both(book, path_of([130, 124] + [110] * 80), NoImpact(), pol)
    assert np.flatnonzero(res.steps["n_liquidations"].to_numpy()).tolist() == [1, 62]
    assert np.flatnonzero(res.steps["sold_usd"].to_numpy())[0] == 33


# --------------------------------------------------------------------------- liquidity_buffer
def test_liquidity_buffer_absorbs_and_unwinds():
    # A (repay 76) absorbed: 79.8/94 units at cost 76, cash 100 → 24. Unwind 40 USD/step:
    # step 2 sells 40/94 units, step 3 the rest (39.8 USD). Revenue = 79.8 − 76 = 3.8.
    pol = LiquidityBuffer(capacity_usd=100.0, unwind_usd_per_step=40.0)
    res = both(CASCADE, path_of([100, 94, 94, 94, 94]), NoImpact(), pol)
    sold = res.steps["sold_usd"].to_numpy()
    assert sold.tolist() == pytest.approx([0, 0, 40, 39.8, 0])
    m = res.metrics
    assert m.protocol_revenue_usd == pytest.approx(3.8)
    assert m.liquidator_profit_usd == 0.0
    assert m.borrower_loss_usd == pytest.approx(3.8)
    assert m.time_to_clear_steps == 3 and m.cleared
    # capacity too small for A: outside liquidators sell at once
    res = both(CASCADE, path_of([100, 94]), NoImpact(), LiquidityBuffer(capacity_usd=50.0))
    assert res.metrics.sold_usd == pytest.approx(79.8)
    assert res.metrics.liquidator_profit_usd == pytest.approx(3.8)


def test_liquidity_buffer_avoids_the_cascade():
    # Impact half-life 5 steps. Unwinding 5 USD/step keeps I below 0.005/(1 − 0.5^0.2) =
    # 0.0386, so p stays above 94·e^-0.0386 = 90.44 > 90: B never goes. Instant cascades.
    imp = LinearImpact(depth_usd=1000.0, half_life_steps=5)
    path = path_of([100] + [94] * 40)
    base = both(CASCADE, path, imp, Instant())
    buf = both(CASCADE, path, imp, LiquidityBuffer(capacity_usd=1000.0, unwind_usd_per_step=5.0))
    assert base.metrics.induced_usd == pytest.approx(140.0)
    assert buf.metrics.induced_usd == 0.0 and buf.metrics.liquidated_usd == pytest.approx(76.0)
    avoided = compare(buf, base)
    assert avoided.induced_usd == pytest.approx(140.0)
    assert avoided.cascade_episodes == 1
    assert avoided.borrower_loss_usd == pytest.approx(0.05 * 140)
    assert avoided.policy == "liquidity_buffer" and avoided.baseline == "instant"


# --------------------------------------------------------------------------- batch
def test_batch_clears_every_b_steps_and_sells_over_the_next_b():
    # B = 5: clearing at steps 4 and 9. A liquidated at step 4 (not 1); its 79.8 USD of
    # collateral is sold 15.96 USD per step over steps 5-9.
    res = both(CASCADE, path_of([100] + [94] * 10), NoImpact(), Batch(interval_steps=5))
    assert np.flatnonzero(res.steps["n_liquidations"].to_numpy()).tolist() == [4]
    assert res.steps["sold_usd"].to_list() == pytest.approx([0] * 5 + [15.96] * 5 + [0])
    assert res.metrics.protocol_revenue_usd == pytest.approx(3.8)
    # recovered by the clearing step: left alone
    res = both(CASCADE, path_of([100, 94, 96, 96, 96, 96]), NoImpact(), Batch(interval_steps=5))
    assert res.metrics.n_liquidations == 0
    # unfinished at the end: inventory marked to the final price
    res = both(CASCADE, path_of([100, 94, 94, 94, 94, 94, 94]), NoImpact(), Batch(interval_steps=5))
    assert not res.metrics.cleared
    assert res.metrics.in_flight_collateral == pytest.approx(79.8 / 94 * 3 / 5)
    assert res.metrics.protocol_revenue_usd == pytest.approx(3.8)


# --------------------------------------------------------------------------- staged
def test_staged_restores_target_health_then_waits():
    # c=1, d=76 at p=94 (HF 0.989): repay r = (1.25·76 − 94·0.8) / (1.25 − 1.05·0.8) = 48.29
    # → health 1.25. At p=60 the stage is in its 5-step cool-down until step 6, when health
    # 0.798 < LT·(1+b) = 0.84: closed whole with bad debt.
    book = book_of([1.0], [76.0])
    res = both(book, path_of([100, 94, 60, 60, 60, 60, 60, 60]), NoImpact(), Staged())
    r = 19.8 / 0.41
    c1 = 1 - r * 1.05 / 94
    d1 = 76 - r
    assert c1 * 94 * 0.8 / d1 == pytest.approx(1.25)
    n = res.steps["n_liquidations"].to_numpy()
    assert np.flatnonzero(n).tolist() == [1, 6]
    assert res.steps["liquidated_usd"][1] == pytest.approx(r)
    assert res.metrics.bad_debt_usd == pytest.approx(d1 - c1 * 60 / 1.05)
    # Euler discount 2 % + (1 − HF)
    res = both(book, path_of([100, 94]), NoImpact(), Staged(euler_discount=True))
    disc = 0.02 + (1 - 94 * 0.8 / 76)
    assert res.metrics.borrower_loss_usd == pytest.approx(
        disc * (1.25 * 76 - 75.2) / (1.25 - (1 + disc) * 0.8)
    )


# --------------------------------------------------------------------------- dynamic_ltv
def _dyn_case():
    # X: c=1, d=60 → L=75 (healthy at 80 under 0.8, unhealthy under 0.7); Y: d=76 → L=95.
    book = book_of([1.0, 1.0], [60.0, 76.0])
    return book, path_of([100, 80, 80]), np.array([0.8, 0.7, 0.7])


def test_dynamic_ltv_deleverages_early_at_a_small_penalty():
    # Step 1: Y (static HF < 1) liquidated by instant at 5 %; X deleveraged to dynamic health
    # 1.05: r = (1.05·60 − 80·0.7) / (1.05 − 1.01·0.7) = 20.408 at 1 %.
    book, path, lt = _dyn_case()
    res = both(book, path, NoImpact(), DynamicLTV(threshold_path=lt))
    r = 7 / 0.343
    m = res.metrics
    assert m.n_liquidations == 2
    assert m.liquidated_usd == pytest.approx(76 + r)
    assert m.borrower_loss_usd == pytest.approx(76 * 0.05 + r * 0.01)
    c1, d1 = 1 - r * 1.01 / 80, 60 - r
    assert c1 * 80 * 0.7 / d1 == pytest.approx(1.05)
    assert res.steps["n_liquidations"].to_list() == [0, 2, 0]


def test_dynamic_ltv_validation_and_ramp():
    with pytest.raises(PathValidationError, match="looks like a percent; give 0.8"):
        DynamicLTV(threshold_path=np.array([80.0, 70.0]))
    book, path, _ = _dyn_case()
    with pytest.raises(PathValidationError, match="one threshold per step"):
        simulate(book, path, NoImpact(), DynamicLTV(threshold_path=np.array([0.8, 0.7])))
    np.testing.assert_allclose(ramp_limited(np.array([0.8, 0.5, 0.5]), 0.1), [0.8, 0.7, 0.6])
    ramped = DynamicLTV(threshold_path=np.array([0.8, 0.5, 0.7]), max_step_change=0.1)
    res = both(book, path, NoImpact(), ramped)  # LT 0.8, 0.7, 0.7 → same as above
    assert res.metrics.liquidated_usd == pytest.approx(76 + 7 / 0.343)


def test_dynamic_ltv_plus_dutch_auction():
    book, path, lt = _dyn_case()
    path = path_of([100] + [80] * 30)
    lt = np.array([0.8] + [0.7] * 30)
    combo = make_policy("dynamic_ltv+dutch_auction", threshold_path=lt, dust_usd=0.0)
    assert isinstance(combo, Combined) and combo.name == "dynamic_ltv+dutch_auction"
    built = combo.build()
    assert isinstance(built, DynamicLTV) and isinstance(built.base, DutchAuction)
    res = both(book, path, NoImpact(), combo)
    # Y barked into an auction (76 USD), X deleveraged (20.41 USD) at step 1; Y taken later
    assert res.steps["n_liquidations"][1] == 2
    assert res.metrics.liquidated_usd == pytest.approx(76 + 7 / 0.343)
    assert res.metrics.cleared
    with pytest.raises(TypeError, match="unknown parameters"):
        make_policy("dynamic_ltv+dutch_auction", threshold_path=lt, bogus=1)
    with pytest.raises(PolicyConfigError, match="cannot wrap"):
        Combined(parts=(DutchAuction(), Instant()))


# --------------------------------------------------------------------------- registry etc.
def test_registry_names_and_params():
    assert list(POLICIES) == [
        "instant",
        "dutch_auction",
        "circuit_breaker",
        "liquidity_buffer",
        "batch",
        "staged",
        "dynamic_ltv",
        "dynamic_ltv+dutch_auction",
        "schedule",
        "amm_bands",
    ]
    with pytest.raises(UnknownPolicyError, match="known policies: instant, dutch_auction") as exc:
        POLICIES["dutch"]
    assert isinstance(exc.value, KeyError)
    lt = np.full(3, 0.8)
    for name in POLICIES:
        pol = make_policy(name, threshold_path=lt) if "dynamic" in name else make_policy(name)
        params = pol.params()
        assert params["policy"] == name
        json.dumps(params)
    assert DutchAuction().params()["buf"] == 1.2
    assert Instant() == Instant() and hash(Instant()) == hash(Instant())


def test_compare_refuses_different_inputs():
    a = simulate(CASCADE, path_of([100, 94]), NoImpact(), Instant())
    b = simulate(CASCADE, path_of([100, 93]), NoImpact(), Instant())
    c = simulate(CASCADE, path_of([100, 94]), LinearImpact(depth_usd=1e3), Instant())
    with pytest.raises(ResultMismatchError, match="price paths"):
        compare(a, b)
    with pytest.raises(ResultMismatchError, match="impact"):
        compare(a, c)
