"""Property tests: fast == dense, conservation, zero impact, deeper markets, determinism."""

from __future__ import annotations

import io
import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backtest import (
    Batch,
    Book,
    CircuitBreaker,
    Combined,
    CpmmImpact,
    DutchAuction,
    DynamicLTV,
    Instant,
    LinearImpact,
    LiquidityBuffer,
    NoImpact,
    PricePath,
    SqrtImpact,
    Staged,
    simulate,
    simulate_dense,
    synthetic_book,
    synthetic_crash_path,
)
from backtest.policies.amm_bands import AmmBands
from backtest.policies.schedule import Schedule

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def books(draw, max_n: int = 20) -> Book:
    n = draw(st.integers(1, max_n))
    hf = draw(st.lists(st.floats(0.3, 2.5), min_size=n, max_size=n))
    debt = draw(st.lists(st.one_of(st.just(0.0), st.floats(1.0, 200.0)), min_size=n, max_size=n))
    lt = draw(st.lists(st.sampled_from([0.5, 0.7, 0.8, 0.83, 0.95]), min_size=n, max_size=n))
    bonus = draw(st.lists(st.sampled_from([0.0, 0.05, 0.1, 0.15]), min_size=n, max_size=n))
    dup = draw(st.booleans())  # exact ties in liquidation price
    hf, debt, lt = np.array(hf), np.array(debt), np.array(lt)
    if dup and n > 1:
        hf[1], debt[1], lt[1] = hf[0], debt[0], lt[0]
    coll = hf * debt / (100.0 * lt)
    if draw(st.booleans()):
        coll[-1] = 0.0  # debt without collateral (or an empty position)
    return Book(
        position_id=np.arange(n),
        collateral=coll,
        debt=debt,
        liquidation_threshold=lt,
        bonus=np.array(bonus),
    )


@st.composite
def paths(draw, max_t: int = 40) -> PricePath:
    rets = draw(st.lists(st.floats(-0.12, 0.08), min_size=1, max_size=max_t - 1))
    price = 100.0 * np.exp(np.concatenate([[0.0], np.cumsum(rets)]))
    return PricePath(ts=np.arange(price.size) * 60, price=price)


half_lives = st.sampled_from([math.inf, 1.0, 3.0, 10.0])

impacts = st.one_of(
    st.builds(LinearImpact, depth_usd=st.floats(50.0, 5_000.0), half_life_steps=half_lives),
    st.builds(
        SqrtImpact,
        sigma_day=st.floats(0.01, 0.2),
        adv_usd=st.floats(100.0, 1e5),
        half_life_steps=half_lives,
    ),
    st.builds(CpmmImpact, pool_depth_usd=st.floats(20.0, 5_000.0), half_life_steps=half_lives),
)

instants = st.builds(
    Instant,
    close_factor=st.sampled_from([1.0, 0.5]),
    full_close_below_hf=st.sampled_from([0.0, 0.95]),
    protocol_fee=st.sampled_from([0.0, 0.1]),
)
auctions = st.builds(
    DutchAuction,
    buf=st.floats(1.0, 1.3),
    curve=st.sampled_from(["stairstep", "linear"]),
    cut=st.floats(0.9, 0.999),
    step_seconds=st.sampled_from([60.0, 90.0]),
    tau_seconds=st.sampled_from([600.0, 3600.0]),
    tail_seconds=st.sampled_from([600.0, 5400.0]),
    hole_usd=st.one_of(st.floats(20.0, 500.0), st.just(1e9)),
    dust_usd=st.sampled_from([0.0, 5.0, 30.0]),
    taker_margin=st.floats(0.0, 0.05),
    taker_capacity_usd=st.one_of(st.just(math.inf), st.floats(5.0, 300.0)),
)
mechanisms = st.one_of(instants, auctions)


def _policies(n_steps: int):
    lt_paths = st.lists(st.floats(0.4, 0.95), min_size=n_steps, max_size=n_steps).map(np.array)
    dynamic = st.builds(
        DynamicLTV,
        threshold_path=lt_paths,
        penalty=st.sampled_from([0.0, 0.01, 0.03]),
        target_health=st.floats(1.01, 1.3),
        base=mechanisms,
    )
    return st.one_of(
        instants,
        auctions,
        st.builds(
            CircuitBreaker,
            base=mechanisms,
            drop_threshold=st.floats(0.02, 0.2),
            lookback_steps=st.integers(1, 10),
            cooldown_steps=st.integers(1, 10),
        ),
        st.builds(
            LiquidityBuffer,
            capacity_usd=st.floats(0.0, 2_000.0),
            discount=st.one_of(st.none(), st.floats(0.0, 0.1)),
            unwind_usd_per_step=st.floats(1.0, 200.0),
        ),
        st.builds(Batch, interval_steps=st.integers(1, 6)),
        st.builds(
            Batch,
            interval_steps=st.integers(1, 6),
            sale_share=st.floats(0.05, 1.0),
        ),
        st.builds(
            Schedule,
            horizon_steps=st.integers(1, 8),
            risk_aversion=st.sampled_from([0.0, 1e-4, 1e-2]),
            impact_model=st.sampled_from(["linear", "sqrt"]),
            depth_usd=st.floats(100.0, 5_000.0),
            adv_usd=st.floats(100.0, 1e5),
        ),
        st.builds(
            AmmBands,
            A=st.floats(2.0, 200.0),
            n_bands=st.integers(1, 12),
            fee=st.floats(0.0, 0.05),
            bonus=st.one_of(st.none(), st.floats(0.0, 0.15)),
        ),
        st.builds(
            Staged,
            target_health=st.floats(1.05, 1.5),
            min_interval_steps=st.integers(0, 4),
            euler_discount=st.booleans(),
        ),
        dynamic,
        st.builds(
            lambda d, a: Combined(parts=(d, a)),
            st.builds(DynamicLTV, threshold_path=lt_paths),
            auctions,
        ),
    )


@st.composite
def scenarios(draw):
    path = draw(paths())
    return draw(books()), path, draw(impacts), draw(_policies(len(path)))


def _conserved(res) -> None:
    c = res.conservation
    scale = max(c.collateral_initial, 1.0)
    assert abs(c.collateral_error) <= 1e-9 * scale
    assert abs(c.seized_error) <= 1e-9 * scale
    assert abs(c.debt_error) <= 1e-9 * max(c.debt_initial, 1.0)
    assert c.collateral_left >= 0 and c.debt_outstanding >= -1e-9


@SETTINGS
@given(scenarios())
def test_fast_engine_equals_dense_engine_and_conserves(scenario):
    book, path, impact, policy = scenario
    fast = simulate(book, path, impact, policy)
    dense = simulate_dense(book, path, impact, policy)
    assert fast.steps.equals(dense.steps)
    assert fast.counterfactual_steps.equals(dense.counterfactual_steps)
    assert fast.metrics == dense.metrics
    assert fast.counterfactual == dense.counterfactual
    np.testing.assert_array_equal(fast.position_liquidated_usd, dense.position_liquidated_usd)
    _conserved(fast)
    m = fast.metrics
    assert m.induced_usd >= 0 and m.bad_debt_usd >= 0 and m.max_cascade_depth >= 0
    assert m.induced_usd <= m.liquidated_usd * (1 + 1e-12) + 1e-9
    assert (fast.steps["p_mkt"] <= fast.steps["p_exo"] * (1 + 1e-12)).all()


@SETTINGS
@given(books(), paths(), st.data())
def test_zero_impact_means_zero_induced(book, path, data):
    policy = data.draw(_policies(len(path)))
    for impact in (NoImpact(), LinearImpact(depth_usd=math.inf)):
        res = simulate(book, path, impact, policy)
        assert res.metrics.induced_usd == 0.0
        assert res.metrics.n_induced == 0
        assert res.metrics.amplification == 1.0
        assert res.metrics.peak_price_deviation == 0.0
        assert res.steps.equals(res.counterfactual_steps)


@SETTINGS
@given(books(), paths(), st.floats(1.0, 20.0), st.floats(1.0, 10.0), half_lives)
def test_a_deeper_market_never_liquidates_more(book, path, k, ratio, half_life):
    # Depth at least the book's collateral value at the highest price keeps each sale's
    # impact below one e-fold, the regime where the property holds.
    floor = max(book.total_collateral * float(path.price.max()), 1.0)
    shallow = LinearImpact(depth_usd=k * floor, half_life_steps=half_life)
    deep = LinearImpact(depth_usd=k * ratio * floor, half_life_steps=half_life)
    a = simulate(book, path, shallow, Instant())
    b = simulate(book, path, deep, Instant())
    hit_a = a.position_liquidated_usd > 0
    hit_b = b.position_liquidated_usd > 0
    assert not (hit_b & ~hit_a).any()
    assert b.metrics.liquidated_usd <= a.metrics.liquidated_usd * (1 + 1e-12)


@settings(max_examples=25, deadline=None)
@given(scenarios())
def test_same_inputs_give_byte_identical_steps(scenario):
    book, path, impact, policy = scenario

    def blob(res) -> bytes:
        buf = io.BytesIO()
        res.steps.write_ipc(buf)
        return buf.getvalue()

    assert blob(simulate(book, path, impact, policy)) == blob(simulate(book, path, impact, policy))


def test_fast_equals_dense_on_larger_books_with_re_inserts(monkeypatch):
    # Tiny gather chunks exercise the fast pool's chunked pops; ties, partial liquidations,
    # re-inserts, hole-limited backlogs and breaker gating exercise its side buffers.
    from backtest.pool import FastPool

    monkeypatch.setattr(FastPool, "_CHUNK", 3)
    rng = np.random.default_rng(11)
    for trial in range(3):
        base = synthetic_book(300, price=100.0, seed=trial, total_debt=5e4)
        book = Book(
            position_id=np.arange(600),
            collateral=np.tile(base.collateral, 2),
            debt=np.tile(base.debt, 2),
            liquidation_threshold=np.tile(base.liquidation_threshold, 2),
            bonus=np.tile(base.bonus, 2),
        )
        path = synthetic_crash_path(
            150, seed=trial, start_price=100.0, crash_depth=0.5, crash_steps=30, sigma_day=0.2
        )
        imp = LinearImpact(depth_usd=float(rng.uniform(2e4, 2e5)), half_life_steps=10.0)
        lt = np.linspace(0.83, 0.65, len(path))
        hole = 500.0
        for policy in (
            Instant(close_factor=0.5, full_close_below_hf=0.95),
            DutchAuction(hole_usd=hole, dust_usd=1.0, taker_capacity_usd=200.0),
            Staged(min_interval_steps=0),
            DynamicLTV(threshold_path=lt, base=DutchAuction(hole_usd=hole, dust_usd=0.0)),
            CircuitBreaker(
                base=DynamicLTV(threshold_path=lt, base=Instant(close_factor=0.5)),
                drop_threshold=0.05,
                lookback_steps=5,
                cooldown_steps=5,
            ),
        ):
            fast = simulate(book, path, imp, policy)
            dense = simulate_dense(book, path, imp, policy)
            assert fast.steps.equals(dense.steps), policy.name
            assert fast.metrics == dense.metrics
            _conserved(fast)
