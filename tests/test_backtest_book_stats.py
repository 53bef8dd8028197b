"""Book and path statistics (:mod:`backtest.book_stats`) and impact from market statistics.

Synthetic data only. Fingerprints enter run ids: they must stay byte-identical to the values the
pipeline computed before they moved into the library (``tests/fixtures/refactor_reference.json``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import refactor_cases as cases

from backtest import (
    IMPACT_NAMES,
    Book,
    CpmmImpact,
    ImpactConfigError,
    LinearImpact,
    ShapeFitError,
    SqrtImpact,
    SyntheticShape,
    book_fingerprint,
    fit_shape,
    half_life_steps_for,
    hill_tail_index,
    impact_from_market,
    path_fingerprint,
    synthetic_book,
)
from backtest.impact import ADV_REF_USD, REF_SALE_USD, REF_SLIPPAGE, depth_point

REFERENCE = json.loads((Path(__file__).parent / "fixtures" / "refactor_reference.json").read_text())


@pytest.mark.parametrize(("bid", "book", "price"), cases.book_cases(), ids=lambda x: str(x)[:20])
def test_book_fingerprint_and_shape_match_captured(bid, book, price):
    ref = {b["id"]: b for b in REFERENCE["books"]}[bid]
    assert book_fingerprint(book) == ref["fingerprint"]
    if "shape_error" in ref:
        with pytest.raises(ShapeFitError, match="need at least 10") as info:
            fit_shape(book, price)
        assert str(info.value) == ref["shape_error"]
        return
    shape = fit_shape(book, price)
    assert shape == SyntheticShape(**ref["shape"])


@pytest.mark.parametrize(("pid", "path"), cases.path_cases(), ids=lambda x: str(x)[:12])
def test_path_fingerprint_matches_captured(pid, path):
    ref = {p["id"]: p for p in REFERENCE["paths"]}[pid]
    assert path_fingerprint(path) == ref["fingerprint"]


def test_fingerprints_see_every_number():
    book = synthetic_book(50, price=1_000.0, seed=1)
    base = book_fingerprint(book)
    for col in ("collateral", "debt", "liquidation_threshold", "bonus"):
        arr = np.array(getattr(book, col), copy=True)
        arr[7] = arr[7] * 0.999
        other = Book(
            **{
                c: (arr if c == col else getattr(book, c))
                for c in ("position_id", "collateral", "debt", "liquidation_threshold", "bonus")
            }
        )
        assert book_fingerprint(other) != base
    path = cases.path_cases()[0][1]
    assert len(path_fingerprint(path)) == 64


def test_hill_estimator_recovers_a_pareto_tail():
    rng = np.random.default_rng(0)
    alpha = 1.5
    x = (1.0 - rng.uniform(size=200_000)) ** (-1.0 / alpha)
    assert hill_tail_index(x, 2_000) == pytest.approx(alpha, rel=0.05)
    with pytest.raises(ShapeFitError):
        hill_tail_index(x[:5], 5)


def test_fit_shape_recovers_synthetic_parameters():
    from backtest import LognormalExcessHF

    book = synthetic_book(
        20_000,
        price=1.0,
        seed=2,
        hf_distribution=LognormalExcessHF(mu=-1.0, sigma=0.6),
        size_alpha=1.4,
    )
    shape = fit_shape(book, 1.0)
    assert shape.mu == pytest.approx(-1.0, abs=0.05)
    assert shape.sigma == pytest.approx(0.6, abs=0.05)
    assert shape.size_alpha == pytest.approx(1.4, rel=0.2)
    assert shape.source == "fit"


# --- impact from market statistics --------------------------------------------------------------


@pytest.mark.parametrize("case", cases.impact_cases(), ids=lambda c: c["id"])
def test_impact_from_market_matches_captured(case):
    ref = {r["id"]: r for r in REFERENCE["impacts"]}[case["id"]]
    cal = case["cal"] or {}
    kwargs = dict(
        adv_usd=cal.get("adv_usd"),
        sigma_day=cal.get("sigma_day"),
        depth_1pct_usd=cal.get("depth_1pct_usd"),
        depth_usd=case["depth_usd"],
        step_seconds=case["step_seconds"],
        half_life_steps=case["half_life_steps"],
        y=case["y"],
    )
    if "error" in ref:
        with pytest.raises(ImpactConfigError):
            impact_from_market(case["name"], **kwargs)
        return
    model = impact_from_market(case["name"], **kwargs)
    assert type(model).__name__ == ref["type"]
    assert json.loads(json.dumps(model.params())) == ref["params"]


def test_from_market_classmethods():
    sq = SqrtImpact.from_market(adv_usd=3e9, sigma_day=0.05, step_seconds=3_600.0, y=0.8)
    assert (sq.adv_usd, sq.sigma_day, sq.Y, sq.half_life_steps) == (3e9, 0.05, 0.8, 0.5)
    lin = LinearImpact.from_market(adv_usd=ADV_REF_USD, step_seconds=60.0)
    assert lin.half_life_steps == 30.0
    # at the reference ADV, selling $35M moves the price by 4 %
    assert math.exp(-REF_SALE_USD / lin.depth_usd) == pytest.approx(1.0 - REF_SLIPPAGE)
    lin1 = LinearImpact.from_market(adv_usd=1e9, depth_1pct_usd=2e7, half_life_steps=math.inf)
    assert math.exp(-2e7 / lin1.depth_usd) == pytest.approx(0.99)
    pool = CpmmImpact.from_market(depth_1pct_usd=2e7, half_life_steps=5.0)
    assert (1.0 + 2e7 / pool.pool_depth_usd) ** -2 == pytest.approx(0.99)
    assert depth_point(adv_usd=2 * ADV_REF_USD) == (2 * REF_SALE_USD, REF_SLIPPAGE)
    assert half_life_steps_for(1_800.0) == 1.0 and half_life_steps_for(0.0) == 1_800.0 / 1e-9
    with pytest.raises(ImpactConfigError, match="half_life_steps"):
        SqrtImpact.from_market(adv_usd=1.0, sigma_day=0.1)
    with pytest.raises(ImpactConfigError, match="depth_1pct_usd or adv_usd"):
        LinearImpact.from_market(step_seconds=60.0)
    with pytest.raises(ImpactConfigError, match="unknown impact"):
        impact_from_market("quadratic", step_seconds=60.0)
    assert IMPACT_NAMES == ("sqrt", "linear", "cpmm", "none")
