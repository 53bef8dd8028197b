"""Policy-parameter search: a seeded multi-objective search and a leave-one-event-out choice.

Pure (numpy + Optuna): a :class:`Scenario` is one event's book, price path and impact model with
the like-for-like base parameters of each policy family (resolved by the pipeline); the search
varies only the policy, through :func:`backtest.build_policy`, and calls :func:`backtest.simulate`.

**Objectives** (:class:`Objectives`), one simulation each:

* ``capital_recovery`` (maximize) ``= repaid / due`` — the issue's "proceeds / debt
  liquidated": ``repaid = liquidated_usd − bad_debt_usd − in_flight_debt_usd`` is the debt
  actually repaid out of sale proceeds by the window end (liquidator repayments, auction takes,
  band conversions), ``due = liquidated_usd + unhealthy_open_debt_usd`` the debt that fell due
  (taken into liquidation, or still unhealthy in the book at the end); 1 when nothing fell due.
  Deferral is not recovery: debt sitting in an unfinished auction or left unhealthy in the book
  counts as not recovered, whatever the final price (its loss, if any, is in
  ``total_loss_usd`` as well).
* ``peak_price_deviation`` (minimize): ``max_t (1 − p_mkt / p_exo)``.
* ``borrower_loss_usd`` (minimize): penalty plus auction discount paid by borrowers.
* ``total_loss_usd`` (minimize): bad debt plus the losses still open at the end (in-flight
  auction shortfall, underwater positions) — "nothing deferred for free".

**Search** (:func:`search`): Optuna's NSGA-II (seeded; one trial at a time, so the same seed
gives the same trials) over the family's :data:`SPACES`. Durations are searched in seconds and
turned into steps of the event's bar (at least one bar), so a parameter means the same on minute
and hourly paths and transfers between events. A stored study resumes: only the trials missing
to ``n_trials`` are run.

**Front**: :func:`pareto_mask` (non-dominated on the four objectives, values within a relative
:data:`TIE_RTOL` of each other tied); its size is counted in distinct outcomes
(:func:`distinct_points`), not in trials — many parameter sets give the same outcome.

**Robust choice** (:func:`choose_robust`, leave-one-event-out): the candidates are the ``k``
front points nearest the utopia point of each *training* event's front (plus the family's
default parameters); each candidate is evaluated on every event; on the training events the
objectives are min–max normalised per event over the candidates and the rule picks the candidate
with the smallest mean distance to the utopia point (the knee) among those whose mean
borrower-loss ratio (``borrower_loss_usd / liquidated_usd``) stays within the budget (when none
does, the budget is ignored). The choice is then evaluated on the held-out event.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from backtest.book import Book
from backtest.engine import simulate
from backtest.impact import ImpactModel
from backtest.path import PricePath
from backtest.policies.base import Policy
from backtest.policies.factory import PRESETS, build_policy, steps_for_seconds
from backtest.policies.schedule import schedule_impact_params

__all__ = [
    "DIRECTIONS",
    "GAUNTLET",
    "OBJECTIVES",
    "OBJECTIVES_VERSION",
    "SPACES",
    "TIE_RTOL",
    "recovering",
    "Dim",
    "Evaluation",
    "Objectives",
    "RobustChoice",
    "Scenario",
    "base_params",
    "capital_recovery",
    "choose_robust",
    "distinct_points",
    "dominated_by",
    "evaluate",
    "half_sold_seconds",
    "knee_candidates",
    "library_params",
    "objectives_from_metrics",
    "pareto_mask",
    "search",
    "space_id",
]

#: Objective names in study order, and their directions.
OBJECTIVES: tuple[str, ...] = (
    "capital_recovery",
    "peak_price_deviation",
    "borrower_loss_usd",
    "total_loss_usd",
)
DIRECTIONS: tuple[str, ...] = ("maximize", "minimize", "minimize", "minimize")
#: Version of the objectives' definitions, part of a stored study's name: a study whose values
#: were computed under another definition is not resumed. 2: ``capital_recovery`` is repaid /
#: due (:func:`capital_recovery`), no longer ``1 − total_loss / due``.
OBJECTIVES_VERSION = 2
#: The published reference point the fronts are compared with.
GAUNTLET = "dutch_auction@gauntlet"


@dataclass(frozen=True)
class Dim:
    """One searched parameter.

    ``name`` is the stored (human) name; ``steps_field`` turns seconds into that step field.
    ``shift``: the sampler draws ``value − shift`` in ``[low − shift, high − shift]`` (log-uniform
    when ``log``) and the value is ``shift`` plus the draw, so ``target_health`` can be
    log-uniform in its excess over 1 — the region near 1 where partial liquidations are smallest
    gets as many trials as the rest.
    """

    name: str
    low: float
    high: float
    log: bool = False
    steps_field: str | None = None
    shift: float = 0.0

    def suggest(self, trial: Any) -> float:
        """Draw the value from an Optuna ``trial`` (see ``shift``)."""
        return self.shift + trial.suggest_float(
            self.name, self.low - self.shift, self.high - self.shift, log=self.log
        )

    def value(self, drawn: float) -> float:
        """The parameter value of a stored draw."""
        return self.shift + float(drawn)


#: The search space of each family (stored parameter names; see :func:`library_params`).
#: ``batch`` and ``staged`` reach one day of delay (interval, wait between stages): with at most
#: four hours (two for ``staged``) the fronts of the events without losses sat on that bound —
#: an hourly path had only one or two stage waits to choose from — and the longer delays are
#: where deferring starts to cost (docs/optimize.md, "Front sizes"). ``dutch_auction`` searches
#: LIQ 2.0's throughput cap ``hole`` as a share of the book's debt (``hole_share``): with the
#: auction clock alone, an hourly path let the auctions end in few distinct ways (two liquidated
#: volumes on Celsius), while the cap sets how much debt can be in auction at once — the lever
#: LIQ 2.0 added against cascades.
SPACES: Mapping[str, tuple[Dim, ...]] = {
    "batch": (
        Dim("interval_seconds", 60.0, 86_400.0, log=True, steps_field="interval_steps"),
        Dim("sale_share", 0.01, 1.0, log=True),
    ),
    "staged": (
        Dim("target_health", 1.001, 2.0, log=True, shift=1.0),
        Dim("min_interval_seconds", 60.0, 86_400.0, log=True, steps_field="min_interval_steps"),
    ),
    "dutch_auction": (
        Dim("buf", 1.0, 1.5),
        Dim("cut", 0.95, 0.9999),
        Dim("step_seconds", 10.0, 600.0, log=True),
        Dim("tail_seconds", 600.0, 14_400.0, log=True),
        Dim("cusp", 0.2, 0.9),
        Dim("hole_share", 0.005, 1.0, log=True),
    ),
    "circuit_breaker": (
        Dim("drop_threshold", 0.02, 0.30),
        Dim("lookback_seconds", 300.0, 14_400.0, log=True, steps_field="lookback_steps"),
        Dim("cooldown_seconds", 300.0, 14_400.0, log=True, steps_field="cooldown_steps"),
    ),
    "liquidity_buffer": (
        Dim("capacity_share", 0.01, 0.5, log=True),
        Dim("unwind_hours", 0.25, 24.0, log=True),
    ),
    "schedule": (
        Dim("horizon_seconds", 300.0, 14_400.0, log=True, steps_field="horizon_steps"),
        Dim("risk_aversion", 1e-10, 1e-4, log=True),
    ),
    "amm_bands": (
        Dim("A", 20.0, 300.0, log=True),
        Dim("n_bands", 4.0, 50.0, log=True),
        Dim("fee", 0.0, 0.02),
    ),
}
#: Searched parameters that are integers in the library (rounded).
_INTEGER_PARAMS = frozenset({"n_bands"})


def space_id(family: str) -> str:
    """Short hash of ``family``'s search space (bounds, scales, shifts).

    Part of the stored study's name, so a study searched over other bounds is not resumed as if
    it were this one (its stored draws would mean other values).
    """
    dims = [dataclasses.asdict(d) for d in SPACES[family]]
    return hashlib.sha256(json.dumps(dims, sort_keys=True).encode()).hexdigest()[:8]


@dataclass(frozen=True, kw_only=True, eq=False)
class Scenario:
    """One event's inputs: everything but the policy.

    Attributes
    ----------
    event_id : str
    book : Book
    path : PricePath
    impact : ImpactModel
    base : mapping
        ``family → library parameters`` of the like-for-like default policy (the book's real
        mechanism wherever the family has the parameter; see :func:`base_params`).
    """

    event_id: str
    book: Book
    path: PricePath
    impact: ImpactModel
    base: Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True, kw_only=True)
class Objectives:
    """The four objectives of one simulation plus what they are built from."""

    capital_recovery: float
    peak_price_deviation: float
    borrower_loss_usd: float
    total_loss_usd: float
    bad_debt_usd: float
    liquidated_usd: float
    unhealthy_open_debt_usd: float
    in_flight_debt_usd: float = 0.0

    def values(self) -> tuple[float, float, float, float]:
        """The objectives in :data:`OBJECTIVES` order."""
        return (
            self.capital_recovery,
            self.peak_price_deviation,
            self.borrower_loss_usd,
            self.total_loss_usd,
        )

    def minimized(self) -> np.ndarray:
        """The objectives turned into minimisation (``1 − capital_recovery``)."""
        return np.array(
            [
                1.0 - self.capital_recovery,
                self.peak_price_deviation,
                self.borrower_loss_usd,
                self.total_loss_usd,
            ]
        )

    @property
    def borrower_loss_ratio(self) -> float:
        """``borrower_loss_usd / liquidated_usd`` (0 when nothing was liquidated)."""
        return self.borrower_loss_usd / self.liquidated_usd if self.liquidated_usd > 0 else 0.0


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    """One parameter set of a family evaluated on one event."""

    event_id: str
    policy: str
    params: Mapping[str, float]
    objectives: Objectives
    trial: int

    @property
    def params_json(self) -> str:
        """The parameters as sorted JSON."""
        return json.dumps(dict(self.params), sort_keys=True)


def capital_recovery(
    liquidated_usd: float,
    bad_debt_usd: float,
    in_flight_debt_usd: float,
    unhealthy_open_debt_usd: float,
) -> float:
    """Debt repaid out of sale proceeds by the window end over the debt that fell due.

    Parameters
    ----------
    liquidated_usd : float
        Debt taken out of positions by liquidation (repaid, written off or moved into an
        auction); :attr:`backtest.metrics.Metrics.liquidated_usd`.
    bad_debt_usd : float
        Part of it written off.
    in_flight_debt_usd : float
        Part of it still in an unfinished auction at the end (neither repaid nor written off).
    unhealthy_open_debt_usd : float
        Debt still in the book whose health is below 1 at the final price (deferred or never
        reached).

    Returns
    -------
    float
        ``repaid / due`` in ``[0, 1]`` with ``repaid = liquidated − bad − in flight`` (the
        engine's ledger identity: every liquidated dollar is repaid, written off or in flight)
        and ``due = liquidated + unhealthy open``; 1 when nothing fell due.
    """
    due = liquidated_usd + unhealthy_open_debt_usd
    if due <= 0:
        return 1.0
    repaid = liquidated_usd - bad_debt_usd - in_flight_debt_usd
    return min(1.0, max(0.0, repaid / due))


def objectives_from_metrics(m: Mapping[str, Any]) -> Objectives:
    """:class:`Objectives` of a metrics mapping (``Metrics.as_dict()`` or a metrics row).

    ``capital_recovery`` is :func:`capital_recovery` of the metrics' fields (missing
    ``in_flight_debt_usd`` / ``unhealthy_open_debt_usd`` count as 0).
    """
    liquidated = float(m["liquidated_usd"])
    open_debt = float(m.get("unhealthy_open_debt_usd", 0.0) or 0.0)
    in_flight = float(m.get("in_flight_debt_usd", 0.0) or 0.0)
    bad = float(m["bad_debt_usd"])
    return Objectives(
        capital_recovery=capital_recovery(liquidated, bad, in_flight, open_debt),
        peak_price_deviation=float(m["peak_price_deviation"]),
        borrower_loss_usd=float(m["borrower_loss_usd"]),
        total_loss_usd=float(m["total_loss_usd"]),
        bad_debt_usd=bad,
        liquidated_usd=liquidated,
        unhealthy_open_debt_usd=open_debt,
        in_flight_debt_usd=in_flight,
    )


def base_params(policy: Policy) -> dict[str, Any]:
    """The routable library parameters of a built policy (its own fields and its base's).

    Feeding them back to :func:`build_policy` rebuilds the same policy; the search overrides
    only its own dimensions.
    """
    skip = {"base", "threshold_path", "clamped_to_bar", "parts"}
    out: dict[str, Any] = {}
    parts = [policy]
    if getattr(policy, "base", None) is not None:
        parts.append(policy.base)  # type: ignore[attr-defined]
    for part in reversed(parts):
        for f in dataclasses.fields(part):  # type: ignore[arg-type]
            if f.name not in skip:
                out[f.name] = getattr(part, f.name)
    return out


def library_params(
    family: str, params: Mapping[str, float], *, step_seconds: float, total_debt: float
) -> dict[str, Any]:
    """Searched (stored) parameters → :func:`build_policy` parameters for one event."""
    out: dict[str, Any] = {}
    dims = {d.name: d for d in SPACES.get(family, ())}
    for name, value in params.items():
        dim = dims.get(name)
        if dim is not None and dim.steps_field is not None:
            out[dim.steps_field] = steps_for_seconds(float(value), step_seconds)
        elif name == "capacity_share":
            out["capacity_usd"] = float(value) * total_debt
        elif name == "hole_share":
            out["hole_usd"] = max(float(value) * total_debt, 1.0)
        elif name == "unwind_hours":
            continue
        elif name in _INTEGER_PARAMS:
            out[name] = int(round(float(value)))
        else:
            out[name] = value
    if "unwind_hours" in params:
        share = float(params.get("capacity_share", 0.10))
        capacity = max(share * total_debt, 1.0)
        out["unwind_usd_per_step"] = (
            capacity * step_seconds / (float(params["unwind_hours"]) * 3600)
        )
    return out


def build(scenario: Scenario, family: str, params: Mapping[str, float]) -> Policy:
    """The family's policy on ``scenario`` with the searched ``params`` over its base.

    ``family`` may be :data:`GAUNTLET`: the preset's parameters over the ``dutch_auction``
    base (the book's auction parameters), then ``params``. ``schedule`` takes its trajectory's
    cost model from the scenario's impact model
    (:func:`~backtest.policies.schedule.schedule_impact_params`), so the theory's trajectory is
    the optimum under the impact the engine applies.
    """
    name, preset = (
        (PRESETS[family][0], dict(PRESETS[family][1]))
        if family in PRESETS
        else (
            family,
            {},
        )
    )
    step = scenario.path.step_seconds
    total = scenario.book.total_debt
    lib = library_params(name, params, step_seconds=step, total_debt=total)
    matched = schedule_impact_params(scenario.impact) if name == "schedule" else {}
    merged = {**dict(scenario.base.get(name, {})), **matched, **preset, **lib}
    return build_policy(name, merged, step_seconds=step, total_debt=total)


def evaluate(
    scenario: Scenario, family: str, params: Mapping[str, float], *, trial: int = -1
) -> Evaluation:
    """Simulate one parameter set on one event (no step log)."""
    policy = build(scenario, family, params)
    result = simulate(scenario.book, scenario.path, scenario.impact, policy, record_steps=False)
    return Evaluation(
        event_id=scenario.event_id,
        policy=family,
        params=dict(params),
        objectives=objectives_from_metrics(result.metrics.as_dict()),
        trial=trial,
    )


def search(
    scenario: Scenario,
    family: str,
    *,
    n_trials: int,
    seed: int,
    population_size: int = 20,
    storage: Any = None,
    study_name: str | None = None,
    on_trial: Callable[[int], None] | None = None,
) -> list[Evaluation]:
    """NSGA-II search of ``family``'s parameters on one event.

    Parameters
    ----------
    scenario : Scenario
        The event's book, path, impact and base parameters.
    family : str
        A key of :data:`SPACES`.
    n_trials : int
        Completed trials the study should hold (a resumed study runs only the missing ones).
    seed : int
        Sampler seed; the same seed on a fresh study gives the same trials.
    population_size : int
        NSGA-II population (generations = ``n_trials / population_size``).
    storage : optuna storage, optional
        Where the study lives (``None``: in memory).
    study_name : str, optional
        Name of the study in ``storage``.
    on_trial : callable, optional
        Called with the trial number after each trial.

    Returns
    -------
    list of Evaluation
        Every completed trial, in trial order.
    """
    import optuna

    if family not in SPACES:
        raise ValueError(f"no search space for policy {family!r}; known: {', '.join(SPACES)}")
    if n_trials < 1:
        raise ValueError("n_trials must be >= 1")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.NSGAIISampler(
        population_size=max(2, min(population_size, n_trials)), seed=seed
    )
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        directions=list(DIRECTIONS),
        sampler=sampler,
        load_if_exists=storage is not None,
    )
    dims = SPACES[family]

    def objective(trial: optuna.Trial) -> tuple[float, ...]:
        params = {d.name: d.suggest(trial) for d in dims}
        ev = evaluate(scenario, family, params, trial=trial.number)
        o = ev.objectives
        trial.set_user_attr("bad_debt_usd", o.bad_debt_usd)
        trial.set_user_attr("liquidated_usd", o.liquidated_usd)
        trial.set_user_attr("unhealthy_open_debt_usd", o.unhealthy_open_debt_usd)
        trial.set_user_attr("in_flight_debt_usd", o.in_flight_debt_usd)
        if on_trial is not None:
            on_trial(trial.number)
        return o.values()

    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    missing = n_trials - len(done)
    if missing > 0:
        study.optimize(objective, n_trials=missing, n_jobs=1, gc_after_trial=False)
    out = []
    for t in study.trials:
        if t.state != optuna.trial.TrialState.COMPLETE:
            continue
        values = dict(zip(OBJECTIVES, t.values, strict=True))
        out.append(
            Evaluation(
                event_id=scenario.event_id,
                policy=family,
                params={d.name: d.value(t.params[d.name]) for d in dims},
                objectives=Objectives(
                    **values,
                    bad_debt_usd=t.user_attrs["bad_debt_usd"],
                    liquidated_usd=t.user_attrs["liquidated_usd"],
                    unhealthy_open_debt_usd=t.user_attrs["unhealthy_open_debt_usd"],
                    in_flight_debt_usd=t.user_attrs.get("in_flight_debt_usd", 0.0),
                ),
                trial=t.number,
            )
        )
    return out[:n_trials]


#: Relative tolerance under which two objective values count as equal (per objective, relative
#: to the largest magnitude of that objective among the points compared): the engine's sums
#: carry rounding noise of about 1e-16 relative, so two trials with the same outcome can differ
#: in the last bits; compared exactly, the one whose borrower loss is a few ULP lower would
#: survive as a separate front point with no real trade-off behind it.
TIE_RTOL = 1e-9


def _tolerances(pts: np.ndarray, rtol: float) -> np.ndarray:
    if len(pts) == 0:
        return np.zeros(pts.shape[1] if pts.ndim == 2 else 0)
    return rtol * np.abs(pts).max(axis=0)


def pareto_mask(points: np.ndarray, *, rtol: float = TIE_RTOL) -> np.ndarray:
    """Non-dominated rows of ``points`` (every column minimised; ties all kept).

    Row ``a`` dominates row ``b`` when it is no worse on every column and better on one by more
    than the column's tolerance ``rtol × max |column|`` (:data:`TIE_RTOL`): values closer than
    that are ties, and tied rows (duplicates included) are all kept.

    Parameters
    ----------
    points : numpy.ndarray
        Shape ``(n, k)``.
    rtol : float, optional
        Relative tie tolerance (0: exact comparison).

    Returns
    -------
    numpy.ndarray of bool
    """
    pts = np.asarray(points, dtype=np.float64)
    n = len(pts)
    tol = _tolerances(pts, rtol)
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        no_worse = np.all(pts <= pts[i] + tol, axis=1)
        better = np.any(pts < pts[i] - tol, axis=1)
        mask[i] = not (no_worse & better).any()
    return mask


def dominated_by(point: np.ndarray, others: np.ndarray, *, rtol: float = TIE_RTOL) -> bool:
    """Whether some row of ``others`` dominates ``point`` (the rule of :func:`pareto_mask`)."""
    pts = np.asarray(others, dtype=np.float64).reshape(-1, len(point))
    if len(pts) == 0:
        return False
    tol = _tolerances(np.vstack([pts, point]), rtol)
    no_worse = np.all(pts <= point + tol, axis=1)
    better = np.any(pts < point - tol, axis=1)
    return bool((no_worse & better).any())


def distinct_points(points: np.ndarray, *, rtol: float = TIE_RTOL) -> np.ndarray:
    """Label rows of ``points`` by distinct outcome: rows tied on every column share a label.

    Rows are taken in order; a row joins the first earlier label whose representative (first
    row) is within the column tolerances of :func:`pareto_mask` on every column, else it
    starts a new label. ``labels.max() + 1`` is the number of distinct points.

    Parameters
    ----------
    points : numpy.ndarray
        Shape ``(n, k)``.
    rtol : float, optional
        Relative tie tolerance.

    Returns
    -------
    numpy.ndarray of int
        Label of each row, ``0 … m − 1`` in order of first appearance.
    """
    pts = np.asarray(points, dtype=np.float64)
    tol = _tolerances(pts, rtol)
    labels = np.full(len(pts), -1, dtype=np.int64)
    reps = np.empty_like(pts)
    m = 0
    for i, row in enumerate(pts):
        same = np.flatnonzero(np.all(np.abs(reps[:m] - row) <= tol, axis=1))
        if same.size:
            labels[i] = same[0]
        else:
            labels[i] = m
            reps[m] = row
            m += 1
    return labels


def _normalised(points: np.ndarray) -> np.ndarray:
    lo, hi = points.min(axis=0), points.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return (points - lo) / span


def knee_candidates(front: Sequence[Evaluation], k: int) -> list[Evaluation]:
    """The ``k`` front points nearest the utopia point of the front (min–max normalised)."""
    if not front:
        return []
    pts = _normalised(np.array([e.objectives.minimized() for e in front]))
    dist = np.sqrt((pts**2).sum(axis=1))
    order = sorted(range(len(front)), key=lambda i: (round(float(dist[i]), 12), front[i].trial))
    return [front[i] for i in order[:k]]


def recovering(front: Sequence[Evaluation], floor: float) -> list[Evaluation]:
    """The points of ``front`` whose capital recovery is at least ``floor``.

    Ties within :data:`TIE_RTOL` count as equal. The knees offered to the robust choice come
    from these, so they never defer more than the family's default does on that event.
    """
    tol = TIE_RTOL * max(abs(floor), 1.0)
    return [e for e in front if e.objectives.capital_recovery >= floor - tol]


@dataclass(frozen=True, kw_only=True)
class RobustChoice:
    """The leave-one-event-out choice of one family for one held-out event.

    ``candidate`` indexes the candidate list handed to :func:`choose_robust`; ``score`` is the
    mean normalised distance to utopia on the training events; ``within_budget`` says whether
    the borrower-loss budget could be met.
    """

    held_out: str
    candidate: int
    score: float
    within_budget: bool


def choose_robust(
    table: Mapping[tuple[int, str], Objectives],
    candidates: Sequence[int],
    train_events: Sequence[str],
    held_out: str,
    *,
    budget: float,
    reference: int | None = None,
) -> RobustChoice:
    """Pick one candidate on the training events (the knee under a borrower-loss budget).

    With ``reference`` (the family's default), only candidates whose mean capital recovery on
    the training events is at least the reference's are eligible: the choice never recovers
    less, by the window end, than the mechanism it would replace (deferring a sale is not a
    gain). The reference itself is always eligible, so the choice exists.

    Parameters
    ----------
    table : mapping
        ``(candidate index, event_id) → Objectives`` of every candidate on every event.
    candidates : sequence of int
        Candidate indices allowed for this fold (those found on training events, plus defaults).
    train_events : sequence of str
        The events the choice may look at.
    held_out : str
        The held-out event (not looked at; recorded in the result).
    budget : float
        Largest mean ``borrower_loss_usd / liquidated_usd`` over the training events.
    reference : int, optional
        Candidate index whose mean training recovery is the floor (must be in ``candidates``).

    Returns
    -------
    RobustChoice
    """
    cands = list(candidates)
    if reference is not None and reference not in cands:
        raise ValueError(f"reference {reference} is not a candidate")
    if not cands or not train_events:
        raise ValueError("need candidates and training events")
    dist = np.zeros(len(cands))
    ratio = np.zeros(len(cands))
    recovery = np.zeros(len(cands))
    for ev in train_events:
        pts = _normalised(np.array([table[(c, ev)].minimized() for c in cands]))
        dist += np.sqrt((pts**2).sum(axis=1))
        ratio += np.array([table[(c, ev)].borrower_loss_ratio for c in cands])
        recovery += np.array([table[(c, ev)].capital_recovery for c in cands])
    dist /= len(train_events)
    ratio /= len(train_events)
    recovery /= len(train_events)
    eligible = np.ones(len(cands), dtype=bool)
    if reference is not None:
        floor = recovery[cands.index(reference)]
        eligible = recovery >= floor - TIE_RTOL * max(abs(floor), 1.0)
    ok = eligible & (ratio <= budget)
    within = bool(ok.any())
    pool = [i for i in range(len(cands)) if (ok if within else eligible)[i]]
    best = min(pool, key=lambda i: (round(float(dist[i]), 12), cands[i]))
    return RobustChoice(
        held_out=held_out, candidate=cands[best], score=float(dist[best]), within_budget=within
    )


def is_finite(o: Objectives) -> bool:
    """All objectives finite."""
    return all(math.isfinite(v) for v in o.values())


def half_sold_seconds(scenario: Scenario, family: str, params: Mapping[str, float]) -> float:
    """Time for ``family`` with ``params`` to sell half of a tranche on ``scenario``'s bar.

    ``batch``: a TWAP over ``B`` steps, half sold after ``ceil(B/2)`` steps. ``schedule``: the
    first step ``k`` at which the trajectory's holdings are at most one half
    (:func:`~backtest.policies.schedule.schedule_holdings`, for 10 % of the book's debt).
    Times are ``steps × bar``, counted from the step of the liquidation (the first sale is at
    the next step).

    Raises
    ------
    ValueError
        Another family.
    """
    from backtest.policies.schedule import Schedule, schedule_holdings

    step = scenario.path.step_seconds
    policy = build(scenario, family, params)
    if family == "batch":
        return math.ceil(policy.interval_steps / 2) * step  # type: ignore[attr-defined]
    if family == "schedule" and isinstance(policy, Schedule):
        x = schedule_holdings(policy, step, 0.10 * scenario.book.total_debt)
        return float(np.argmax(x <= 0.5 + 1e-12)) * step
    raise ValueError(f"no sale trajectory for {family!r}")
