"""Policy search (backtest.search): objectives, fronts, seeded NSGA-II, leave-one-event-out."""

from __future__ import annotations

import numpy as np
import pytest

from backtest import LinearImpact, build_policy, synthetic_book, synthetic_crash_path
from backtest.search import (
    GAUNTLET,
    SPACES,
    Objectives,
    Scenario,
    base_params,
    choose_robust,
    evaluate,
    knee_candidates,
    library_params,
    objectives_from_metrics,
    pareto_mask,
    search,
)

pytest.importorskip("optuna")


def _scenario(event_id: str = "synthetic", seed: int = 1, depth: float = 0.35) -> Scenario:
    path = synthetic_crash_path(
        n_steps=600, seed=seed, crash_depth=depth, crash_steps=120, step_seconds=60
    )
    book = synthetic_book(
        300, price=float(path.price[0]), seed=seed, total_debt=2e7, liquidation_threshold=0.83
    )
    impact = LinearImpact(depth_usd=5e7, half_life_steps=30)
    base = {
        fam: base_params(build_policy(fam, step_seconds=60.0, total_debt=book.total_debt))
        for fam in SPACES
    }
    return Scenario(event_id=event_id, book=book, path=path, impact=impact, base=base)


def test_capital_recovery_is_repaid_over_due() -> None:
    m = {
        "liquidated_usd": 100.0,
        "unhealthy_open_debt_usd": 100.0,
        "in_flight_debt_usd": 20.0,
        "total_loss_usd": 50.0,
        "peak_price_deviation": 0.1,
        "borrower_loss_usd": 5.0,
        "bad_debt_usd": 10.0,
    }
    o = objectives_from_metrics(m)
    # repaid 100 − 10 written off − 20 in flight = 70 of 200 due (the loss is not used)
    assert o.capital_recovery == pytest.approx(0.35)
    assert o.in_flight_debt_usd == 20.0
    assert o.borrower_loss_ratio == pytest.approx(0.05)
    nothing = objectives_from_metrics({**m, "liquidated_usd": 0.0, "unhealthy_open_debt_usd": 0.0})
    assert nothing.capital_recovery == 1.0


def test_pareto_mask_by_hand() -> None:
    pts = np.array([[0, 1], [1, 0], [1, 1], [0.5, 0.5], [0, 1]])
    assert pareto_mask(pts).tolist() == [True, True, False, True, True]


def test_seconds_become_steps_of_the_bar() -> None:
    lib = library_params("batch", {"interval_seconds": 1_800.0}, step_seconds=60.0, total_debt=1.0)
    assert lib == {"interval_steps": 30}
    hourly = library_params("batch", {"interval_seconds": 600.0}, step_seconds=3600.0, total_debt=1)
    assert hourly == {"interval_steps": 1}
    buf = library_params(
        "liquidity_buffer",
        {"capacity_share": 0.1, "unwind_hours": 2.0},
        step_seconds=60.0,
        total_debt=1e6,
    )
    assert buf["capacity_usd"] == pytest.approx(1e5)
    assert buf["unwind_usd_per_step"] == pytest.approx(1e5 / 120)
    hole = library_params("dutch_auction", {"hole_share": 0.25}, step_seconds=60.0, total_debt=4e6)
    assert hole == {"hole_usd": pytest.approx(1e6)}


def test_the_auction_cap_limits_what_is_in_auction_at_once() -> None:
    sc = _scenario()
    wide = evaluate(sc, "dutch_auction", {"hole_share": 1.0})
    narrow = evaluate(sc, "dutch_auction", {"hole_share": 0.005})
    assert narrow.objectives.liquidated_usd < wide.objectives.liquidated_usd


def test_base_params_rebuild_the_same_policy() -> None:
    p = build_policy("circuit_breaker", {"close_factor": 0.5}, step_seconds=60.0)
    again = build_policy("circuit_breaker", base_params(p), step_seconds=60.0)
    assert again.params() == p.params()


def test_evaluate_every_family_and_the_gauntlet_preset() -> None:
    sc = _scenario()
    for fam, dims in SPACES.items():
        params = {d.name: (d.low * d.high) ** 0.5 if d.log else (d.low + d.high) / 2 for d in dims}
        ev = evaluate(sc, fam, params)
        assert all(np.isfinite(ev.objectives.values()))
        assert ev.objectives.liquidated_usd > 0
    g = evaluate(sc, GAUNTLET, {})
    assert g.objectives.liquidated_usd > 0


def test_same_seed_same_front_and_other_seed_differs() -> None:
    sc = _scenario()
    a = search(sc, "staged", n_trials=12, seed=7, population_size=4)
    b = search(sc, "staged", n_trials=12, seed=7, population_size=4)
    c = search(sc, "staged", n_trials=12, seed=8, population_size=4)
    assert [(e.params, e.objectives) for e in a] == [(e.params, e.objectives) for e in b]
    assert [e.params for e in a] != [e.params for e in c]
    front = pareto_mask(np.array([e.objectives.minimized() for e in a]))
    assert front.sum() >= 1


def test_a_stored_study_resumes(tmp_path) -> None:  # noqa: ANN001
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    sc = _scenario()
    storage = JournalStorage(JournalFileBackend(str(tmp_path / "s.log")))
    first = search(sc, "batch", n_trials=4, seed=3, storage=storage, study_name="x")
    calls: list[int] = []
    again = search(
        sc, "batch", n_trials=6, seed=3, storage=storage, study_name="x", on_trial=calls.append
    )
    assert calls == [4, 5]  # only the missing trials ran
    assert [e.params for e in again[:4]] == [e.params for e in first]
    assert len(optuna.load_study(study_name="x", storage=storage).trials) == 6


def test_knee_and_robust_choice() -> None:
    def o(rec: float, loss: float, bl: float) -> Objectives:
        return Objectives(
            capital_recovery=rec,
            peak_price_deviation=0.1,
            borrower_loss_usd=bl,
            total_loss_usd=loss,
            bad_debt_usd=loss,
            liquidated_usd=100.0,
            unhealthy_open_debt_usd=0.0,
        )

    table = {
        (0, "a"): o(0.9, 10, 5), (0, "b"): o(0.9, 10, 5), (0, "c"): o(0.1, 90, 5),
        (1, "a"): o(0.99, 1, 6), (1, "b"): o(0.99, 1, 6), (1, "c"): o(0.99, 1, 6),
        (2, "a"): o(0.5, 50, 25), (2, "b"): o(0.5, 50, 25), (2, "c"): o(0.9, 1, 5),
    }  # fmt: skip
    # candidate 1 is the knee but pays borrowers 6 %: over a 5.5 % budget the choice is 0
    ch = choose_robust(table, [0, 1, 2], ["a", "b"], "c", budget=0.5)
    assert ch.candidate == 1
    ch = choose_robust(table, [0, 1, 2], ["a", "b"], "c", budget=0.055)
    assert (ch.candidate, ch.within_budget) == (0, True)
    ch = choose_robust(table, [0, 1, 2], ["a", "b"], "c", budget=0.01)
    assert not ch.within_budget
    sc = _scenario()
    trials = search(sc, "batch", n_trials=6, seed=1, population_size=3)
    assert len(knee_candidates(trials, 2)) == 2


def test_the_robust_choice_never_recovers_less_than_the_default() -> None:
    def o(rec: float, dev: float, bl: float) -> Objectives:
        return Objectives(
            capital_recovery=rec,
            peak_price_deviation=dev,
            borrower_loss_usd=bl,
            total_loss_usd=0.0,
            bad_debt_usd=0.0,
            liquidated_usd=100.0,
            unhealthy_open_debt_usd=0.0,
        )

    # candidate 1 sells nothing by the window end: no deviation, no borrower loss, recovery 0 —
    # the plain knee; candidate 2 recovers what the default (0) does with less deviation
    table = {
        (0, "a"): o(1.0, 0.04, 5), (0, "b"): o(1.0, 0.04, 5),
        (1, "a"): o(0.0, 0.00, 0), (1, "b"): o(0.0, 0.00, 0),
        (2, "a"): o(1.0, 0.02, 5), (2, "b"): o(1.0, 0.02, 5),
    }  # fmt: skip
    assert choose_robust(table, [0, 1, 2], ["a", "b"], "c", budget=1.0).candidate == 1
    ch = choose_robust(table, [0, 1, 2], ["a", "b"], "c", budget=1.0, reference=0)
    assert (ch.candidate, ch.within_budget) == (2, True)
    # over a budget nobody meets, the floor still holds (the default is always eligible)
    ch = choose_robust(table, [0, 1, 2], ["a", "b"], "c", budget=0.0, reference=0)
    assert ch.candidate in (0, 2) and not ch.within_budget
    with pytest.raises(ValueError, match="reference 7"):
        choose_robust(table, [0, 1, 2], ["a", "b"], "c", budget=1.0, reference=7)


def test_knees_are_offered_only_from_points_recovering_what_the_default_does() -> None:
    from backtest.search import Evaluation, recovering

    def ev(trial: int, rec: float) -> Evaluation:
        o = Objectives(
            capital_recovery=rec,
            peak_price_deviation=0.0,
            borrower_loss_usd=0.0,
            total_loss_usd=0.0,
            bad_debt_usd=0.0,
            liquidated_usd=1.0,
            unhealthy_open_debt_usd=0.0,
        )
        return Evaluation(event_id="e", policy="batch", params={}, objectives=o, trial=trial)

    front = [ev(0, 0.0), ev(1, 0.98), ev(2, 1.0 - 1e-12), ev(3, 1.0)]
    assert [e.trial for e in recovering(front, 1.0)] == [2, 3]  # 1e-12 below is a tie
    assert [e.trial for e in recovering(front, 0.5)] == [1, 2, 3]
    assert recovering(front[:2], 1.0) == []
