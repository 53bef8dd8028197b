"""Front sizes (issue #15): ties within rounding noise, distinct points, the searched ranges."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from backtest import LinearImpact, build_policy, synthetic_book, synthetic_crash_path
from backtest.policies.factory import steps_for_seconds
from backtest.search import (
    SPACES,
    Dim,
    Scenario,
    base_params,
    distinct_points,
    dominated_by,
    evaluate,
    pareto_mask,
    search,
    space_id,
)
from pipelines.cli.optimize import front_sizes, small_front_points, small_fronts

# Two trials with the same outcome up to the engine's summation noise (values seen on FTX).
BL, BL_NOISY = 161748.91960312118, 161748.9196031213


def test_rounding_noise_is_a_tie_not_a_trade_off() -> None:
    # b has the lower deviation and a borrower loss a few ULP higher: the same outcome level
    pts = np.array([[0.0, 0.000251, BL, 0.0], [0.0, 0.000224, BL_NOISY, 0.0]])
    assert pareto_mask(pts, rtol=0.0).tolist() == [True, True]  # exact: a spurious trade-off
    assert pareto_mask(pts).tolist() == [False, True]
    assert dominated_by(pts[0], pts[1:]) and not dominated_by(pts[1], pts[:1])
    # a real difference (1e-6 relative) is still a trade-off
    real = np.array([[0.0, 0.000251, BL, 0.0], [0.0, 0.000224, BL * (1 + 1e-6), 0.0]])
    assert pareto_mask(real).tolist() == [True, True]


def test_duplicates_stay_on_the_front_and_count_once() -> None:
    pts = np.array([[0, 1.0], [1, 0.0], [0, 1.0 + 1e-15], [1, 1.0], [0, 1.0]])
    assert pareto_mask(pts).tolist() == [True, True, True, False, True]
    assert distinct_points(pts).tolist() == [0, 1, 0, 2, 0]
    assert distinct_points(np.empty((0, 4))).tolist() == []


def test_target_health_is_log_uniform_in_its_excess_and_params_replay() -> None:
    dim = next(d for d in SPACES["staged"] if d.name == "target_health")
    assert (dim.low, dim.high, dim.shift, dim.log) == (1.001, 2.0, 1.0, True)
    sc = _scenario()
    trials = search(sc, "staged", n_trials=16, seed=5, population_size=8)
    th = np.array([e.params["target_health"] for e in trials])
    assert ((th >= 1.001) & (th <= 2.0)).all()
    # log-uniform excess: the 8 random first-generation draws put about half below 1.03
    assert (th[:8] < 1.0316).sum() >= 2
    for e in trials[:4]:  # the stored parameters reproduce the trial
        assert evaluate(sc, "staged", e.params).objectives == e.objectives


def test_shifted_dim_draws_and_values() -> None:
    class FakeTrial:
        def suggest_float(self, name: str, low: float, high: float, *, log: bool) -> float:
            self.seen = (name, low, high, log)
            return 0.25

    d = Dim("x", 1.01, 2.0, log=True, shift=1.0)
    t = FakeTrial()
    assert d.suggest(t) == 1.25 and d.value(0.25) == 1.25
    assert t.seen == ("x", pytest.approx(0.01), 1.0, True)


def test_delays_reach_half_a_day_on_an_hourly_path() -> None:
    for fam, name in (("batch", "interval_seconds"), ("staged", "min_interval_seconds")):
        dim = next(d for d in SPACES[fam] if d.name == name)
        choices = {steps_for_seconds(s, 3600.0) for s in np.geomspace(dim.low, dim.high, 400)}
        assert len(choices) >= 12, (fam, sorted(choices))


def _frame(rows: list[tuple]) -> pl.DataFrame:
    keys = ("event_id", "policy", "trial", "on_front", "capital_recovery")
    keys += ("peak_price_deviation", "borrower_loss_usd", "total_loss_usd", "liquidated_usd")
    out = [dict(zip(keys, r, strict=True)) for r in rows]
    for r in out:
        r["params"] = json.dumps({"trial": r["trial"] % 3})
        r["held_out"] = False
    return pl.DataFrame(out)


def test_front_sizes_count_distinct_points_and_explain_small_fronts() -> None:
    rows = [
        # event a: one outcome level dominates; trials 0 and 1 tie up to noise
        ("a", "batch", 0, True, 1.0, 0.000224, BL, 0.0, 1.2e6),
        ("a", "batch", 1, True, 1.0, 0.000224, BL_NOISY, 0.0, 1.2e6),
        ("a", "batch", 2, False, 1.0, 0.000300, 2 * BL, 0.0, 2.4e6),
        ("a", "batch", 3, False, 1.0, 0.000400, 3 * BL, 0.0, 3.6e6),
        ("a", "batch", -1, False, 1.0, 0.000500, 4 * BL, 0.0, 4.8e6),  # reference row
        # event b: five real trade-off points
        *[("b", "batch", i, True, 1 - i / 100, 1e-3 * (5 - i), 10.0 * i, i, 1e6) for i in range(5)],
    ]  # fmt: skip
    f = _frame(rows)
    sizes = front_sizes(f)
    a = sizes.filter(pl.col("event_id") == "a").row(0, named=True)
    assert (a["trials"], a["front_trials"], a["front_points"], a["distinct_outcomes"]) == (
        4,
        2,
        1,
        3,
    )
    assert sizes.filter(pl.col("event_id") == "b")["front_points"].item() == 5
    small = small_fronts(f)
    assert small["event_id"].to_list() == ["a"]
    row = small.row(0, named=True)
    assert row["liquidated_levels"] == 3 and row["max_total_loss_usd"] == 0.0
    # ranks of borrower loss 1, 2, 3, 4 (the noise orders the tie) vs deviation 1.5, 1.5, 3, 4
    assert row["rank_corr_borrower_loss_deviation"] == pytest.approx(3 / np.sqrt(10))
    pts = small_front_points(f)
    assert pts.height == 1 and pts["trials"].item() == 2


def _scenario() -> Scenario:
    path = synthetic_crash_path(
        n_steps=400, seed=2, crash_depth=0.3, crash_steps=80, step_seconds=60
    )
    book = synthetic_book(
        200, price=float(path.price[0]), seed=2, total_debt=1e7, liquidation_threshold=0.83
    )
    base = {
        fam: base_params(build_policy(fam, step_seconds=60.0, total_debt=book.total_debt))
        for fam in SPACES
    }
    impact = LinearImpact(depth_usd=5e7, half_life_steps=30)
    return Scenario(event_id="synthetic", book=book, path=path, impact=impact, base=base)


def test_space_id_changes_with_the_bounds(monkeypatch) -> None:  # noqa: ANN001
    import backtest.search as mod

    before = space_id("batch")
    assert space_id("batch") == before and space_id("staged") != before
    narrow = (Dim("interval_seconds", 60.0, 14_400.0, log=True, steps_field="interval_steps"),)
    monkeypatch.setitem(mod.SPACES, "batch", narrow + SPACES["batch"][1:])  # type: ignore[arg-type]
    assert space_id("batch") != before
