"""The policy-search stage: resolve each event once, search, choose out of sample, store.

``cascade optimize`` calls :func:`run_optimize`. Per event the book, price path and impact model
are resolved once through :func:`pipelines.backtests.run.build_run_config` (the same ones
``cascade backtest`` uses, with the like-for-like defaults of
:func:`~pipelines.backtests.run.mechanism_defaults`); the search itself is the pure
:mod:`backtest.search`. Studies live in an Optuna journal file beside the warehouse
(``<db>.optuna.journal``), one study per event, family, seed and scenario, so an interrupted
search resumes with only its missing trials. Results go to ``policy_frontier``,
``policy_robust`` and ``optimize_searches`` (:mod:`pipelines.warehouse.frontier_store`).
Method: docs/optimize.md.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl

from backtest.search import (
    GAUNTLET,
    OBJECTIVES_VERSION,
    SPACES,
    Evaluation,
    Scenario,
    base_params,
    build,
    choose_robust,
    distinct_points,
    dominated_by,
    evaluate,
    half_sold_seconds,
    knee_candidates,
    pareto_mask,
    recovering,
    search,
    space_id,
)
from pipelines.backtests.run import build_run_config
from pipelines.backtests.spec import backtest_code_version
from pipelines.catalog.registry import get_event, load_events
from pipelines.errors import CascadeError
from pipelines.warehouse import frontier_store as store

__all__ = [
    "DEFAULT_FAMILIES",
    "OptimizeRequest",
    "OptimizeResult",
    "load_scenarios",
    "run_optimize",
    "schedule_comparison",
    "study_storage_path",
]

#: Families searched by default (the issue's acceptance set).
DEFAULT_FAMILIES: tuple[str, ...] = ("batch", "dutch_auction", "staged")
#: Stated rule of the leave-one-event-out choice.
RULE = (
    "knee (min mean min-max-normalised distance to utopia) s.t. mean capital recovery >= the "
    "default's and mean borrower loss <= {:.0%}"
)


@dataclass(frozen=True, kw_only=True)
class OptimizeRequest:
    """What one ``cascade optimize`` searches.

    Attributes
    ----------
    events : tuple of str
        Event ids (default: every catalogued event).
    families : tuple of str
        Keys of :data:`backtest.search.SPACES`.
    n_trials, seed, population_size : int
        NSGA-II trials per event and family, sampler seed, population.
    knees : int
        Front points per event offered to the leave-one-event-out choice.
    budget : float
        Borrower-loss budget of the choice (mean ``borrower_loss / liquidated`` on the training
        events).
    """

    events: tuple[str, ...] = ()
    families: tuple[str, ...] = DEFAULT_FAMILIES
    n_trials: int = 200
    seed: int = 0
    population_size: int = 20
    knees: int = 4
    budget: float = 0.15

    def config(self, scenario_ids: dict[str, str]) -> dict[str, Any]:
        """JSON description (hashed into the search id)."""
        return {
            "events": list(self.events),
            "families": list(self.families),
            "n_trials": self.n_trials,
            "seed": self.seed,
            "population_size": self.population_size,
            "knees": self.knees,
            "budget": self.budget,
            "scenarios": scenario_ids,
            "code": backtest_code_version(),
        }


@dataclass(frozen=True, kw_only=True, eq=False)
class OptimizeResult:
    """A finished search: its id and the frames written."""

    search_id: str
    config: dict[str, Any]
    frontier: pl.DataFrame
    robust: pl.DataFrame
    seconds: float
    notes: tuple[str, ...] = field(default=())


def study_storage_path(db_path: str | Path) -> Path:
    """The Optuna journal file beside the warehouse."""
    return Path(f"{db_path}.optuna.journal")


def _check(request: OptimizeRequest) -> None:
    unknown = [f for f in request.families if f not in SPACES]
    if unknown:
        raise CascadeError(
            f"no search space for {', '.join(unknown)}; searchable: {', '.join(SPACES)}"
        )
    if request.n_trials < 1:
        raise CascadeError(f"--trials {request.n_trials} must be >= 1")
    if request.knees < 1:
        raise CascadeError(f"--knees {request.knees} must be >= 1")
    if not 0 < request.budget:
        raise CascadeError(f"--budget {request.budget} must be > 0")


def load_scenarios(
    con: duckdb.DuckDBPyConnection, events: Sequence[str], families: Sequence[str]
) -> tuple[list[Scenario], dict[str, str]]:
    """One :class:`~backtest.search.Scenario` per event (book, path, impact resolved once).

    Returns the scenarios and ``event_id → scenario_id`` (hash of event, book, path, impact).
    """
    cache: dict[Any, Any] = {}
    scenarios, ids = [], {}
    for event_id in events:
        base: dict[str, dict[str, Any]] = {}
        cfg = None
        for fam in dict.fromkeys([*families, "dutch_auction"]):
            cfg = build_run_config(con, event=event_id, policy=fam, cache=cache)
            base[fam] = base_params(cfg.policy)
        assert cfg is not None
        scenarios.append(
            Scenario(event_id=event_id, book=cfg.book, path=cfg.path, impact=cfg.impact, base=base)
        )
        ids[event_id] = cfg.scenario_id
    return scenarios, ids


def _row(ev: Evaluation, *, on_front: bool, held_out: bool, seed: int, trial: int) -> dict:
    o = ev.objectives
    return {
        "event_id": ev.event_id,
        "policy": ev.policy,
        "params": ev.params_json,
        "capital_recovery": o.capital_recovery,
        "peak_price_deviation": o.peak_price_deviation,
        "borrower_loss_usd": o.borrower_loss_usd,
        "bad_debt_usd": o.bad_debt_usd,
        "total_loss_usd": o.total_loss_usd,
        "liquidated_usd": o.liquidated_usd,
        "on_front": on_front,
        "held_out": held_out,
        "seed": seed,
        "trial": trial,
    }


def _dominated(point: np.ndarray, others: np.ndarray) -> bool:
    return dominated_by(point, others)


def _mean(evs: Sequence[Evaluation], name: str) -> float:
    return float(np.mean([getattr(e.objectives, name) for e in evs]))


def run_optimize(
    con: duckdb.DuckDBPyConnection,
    request: OptimizeRequest,
    *,
    db_path: str | Path | None = None,
    log: Callable[[str], None] = lambda msg: None,
    write: bool = True,
) -> OptimizeResult:
    """Search every family on every event, choose leave-one-event-out, store the results.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Warehouse connection (writable when ``write``).
    request : OptimizeRequest
        Events, families, trials, seed and the choice's rule parameters.
    db_path : path, optional
        The warehouse file; the study journal is kept beside it (``None``: studies in memory,
        no resume).
    log : callable
        Progress lines.
    write : bool
        Store the results (``policy_frontier``, ``policy_robust``, ``optimize_searches``).

    Returns
    -------
    OptimizeResult
    """
    _check(request)
    t0 = time.perf_counter()
    events = [get_event(e).event_id for e in request.events] or [e.event_id for e in load_events()]
    events = list(dict.fromkeys(events))
    request = OptimizeRequest(**{**request.__dict__, "events": tuple(events)})
    scenarios, scenario_ids = load_scenarios(con, events, request.families)
    config = request.config(scenario_ids)
    search_id = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
    storage, storage_path = None, None
    if db_path is not None:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        storage_path = study_storage_path(db_path)
        storage = JournalStorage(JournalFileBackend(str(storage_path)))
    seed = request.seed
    rows: list[dict[str, Any]] = []
    fronts: dict[tuple[str, str], list[Evaluation]] = {}
    for sc in scenarios:
        for fam in request.families:
            t1 = time.perf_counter()
            name = (
                f"{sc.event_id}|{fam}|seed={seed}|pop={request.population_size}|"
                f"{scenario_ids[sc.event_id][:16]}|space={space_id(fam)}"
                f"|obj={OBJECTIVES_VERSION}"
            )
            trials = search(
                sc,
                fam,
                n_trials=request.n_trials,
                seed=seed,
                population_size=request.population_size,
                storage=storage,
                study_name=name if storage is not None else None,
            )
            pts = np.array([e.objectives.minimized() for e in trials])
            mask = pareto_mask(pts)
            fronts[(sc.event_id, fam)] = [e for e, m in zip(trials, mask, strict=True) if m]
            rows += [
                _row(e, on_front=bool(m), held_out=False, seed=seed, trial=e.trial)
                for e, m in zip(trials, mask, strict=True)
            ]
            default = evaluate(sc, fam, {})
            rows.append(
                _row(
                    default,
                    on_front=not _dominated(default.objectives.minimized(), pts),
                    held_out=False,
                    seed=seed,
                    trial=-1,
                )
            )
            points = len(set(distinct_points(pts)[mask].tolist()))
            log(
                f"{sc.event_id} {fam}: {len(trials)} trials, front {points} points "
                f"({int(mask.sum())} trials; {time.perf_counter() - t1:.1f} s)"
            )
        gauntlet = evaluate(sc, GAUNTLET, {})
        da = [r for r in rows if r["event_id"] == sc.event_id and r["policy"] == "dutch_auction"]
        da_pts = np.array(
            [
                [
                    1 - r["capital_recovery"],
                    r["peak_price_deviation"],
                    r["borrower_loss_usd"],
                    r["total_loss_usd"],
                ]
                for r in da
                if r["trial"] >= 0
            ]  # fmt: skip
        ).reshape(-1, 4)
        rows.append(
            _row(
                gauntlet,
                on_front=not _dominated(gauntlet.objectives.minimized(), da_pts),
                held_out=False,
                seed=seed,
                trial=-1,
            )
        )
    robust_rows: list[dict[str, Any]] = []
    notes: list[str] = []
    if len(events) >= 2:
        for fam in request.families:
            r_rows, c_rows = _leave_one_out(scenarios, fam, fronts, request)
            robust_rows += r_rows
            rows += c_rows
    else:
        notes.append("one event: no leave-one-event-out choice")
    frontier = pl.DataFrame(rows, infer_schema_length=None).with_columns(
        pl.col("seed").cast(pl.Int32), pl.col("trial").cast(pl.Int32)
    )
    robust = pl.DataFrame(robust_rows, infer_schema_length=None)
    seconds = time.perf_counter() - t0
    if write:
        store.write_search(
            con,
            search_id,
            config=config,
            frontier=frontier,
            robust=robust,
            study_storage=str(storage_path) if storage_path else None,
            seconds=seconds,
        )
    return OptimizeResult(
        search_id=search_id,
        config=config,
        frontier=frontier,
        robust=robust,
        seconds=seconds,
        notes=tuple(notes),
    )


def _leave_one_out(
    scenarios: Sequence[Scenario],
    fam: str,
    fronts: dict[tuple[str, str], list[Evaluation]],
    request: OptimizeRequest,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The robust choice of ``fam`` for every held-out event, and the candidate rows."""
    events = [sc.event_id for sc in scenarios]
    # candidates: the default parameters (index 0) and the knees of each event's front among
    # the front points that recover at least what the default recovers on that event
    default_recovery = {
        sc.event_id: evaluate(sc, fam, {}, trial=-2).objectives.capital_recovery for sc in scenarios
    }
    params: list[dict[str, float]] = [{}]
    origins: list[set[str]] = [set(events)]
    index: dict[str, int] = {json.dumps({}, sort_keys=True): 0}
    for ev in events:
        offered = recovering(fronts[(ev, fam)], default_recovery[ev]) or fronts[(ev, fam)]
        for cand in knee_candidates(offered, request.knees):
            key = cand.params_json
            if key not in index:
                index[key] = len(params)
                params.append(dict(cand.params))
                origins.append(set())
            origins[index[key]].add(ev)
    table: dict[tuple[int, str], Any] = {}
    evals: dict[tuple[int, str], Evaluation] = {}
    for sc in scenarios:
        for i, p in enumerate(params):
            e = evaluate(sc, fam, p, trial=-2)
            evals[(i, sc.event_id)] = e
            table[(i, sc.event_id)] = e.objectives
    cand_rows = [
        _row(e, on_front=False, held_out=False, seed=request.seed, trial=-2)
        for (i, _), e in sorted(evals.items(), key=lambda kv: (kv[0][1], kv[0][0]))
        if i > 0
    ]
    robust_rows = []
    for held in events:
        train = [e for e in events if e != held]
        allowed = [i for i in range(len(params)) if i == 0 or origins[i] - {held}]
        choice = choose_robust(table, allowed, train, held, budget=request.budget, reference=0)
        i = choice.candidate
        chosen_in = [evals[(i, e)] for e in train]
        default_in = [evals[(0, e)] for e in train]
        out, d_out = evals[(i, held)].objectives, evals[(0, held)].objectives
        cand_rows.append(
            _row(evals[(i, held)], on_front=False, held_out=True, seed=request.seed, trial=-2)
        )
        robust_rows.append(
            {
                "policy": fam,
                "held_out_event": held,
                "params": json.dumps(params[i], sort_keys=True),
                "rule": RULE.format(request.budget),
                "within_budget": choice.within_budget,
                "in_capital_recovery": _mean(chosen_in, "capital_recovery"),
                "in_total_loss_usd": _mean(chosen_in, "total_loss_usd"),
                "in_borrower_loss_usd": _mean(chosen_in, "borrower_loss_usd"),
                "in_peak_price_deviation": _mean(chosen_in, "peak_price_deviation"),
                "out_capital_recovery": out.capital_recovery,
                "out_total_loss_usd": out.total_loss_usd,
                "out_borrower_loss_usd": out.borrower_loss_usd,
                "out_peak_price_deviation": out.peak_price_deviation,
                "default_in_total_loss_usd": _mean(default_in, "total_loss_usd"),
                "default_out_capital_recovery": d_out.capital_recovery,
                "default_out_total_loss_usd": d_out.total_loss_usd,
                "default_out_borrower_loss_usd": d_out.borrower_loss_usd,
                "default_out_peak_price_deviation": d_out.peak_price_deviation,
            }
        )
    return robust_rows, cand_rows


def _knee_row(rows: pl.DataFrame) -> dict[str, Any] | None:
    """The front point nearest the utopia point (min–max normalised; ties: lowest trial)."""
    if rows.height == 0:
        return None
    pts = np.column_stack(
        [
            1.0 - rows["capital_recovery"].to_numpy(),
            rows["peak_price_deviation"].to_numpy(),
            rows["borrower_loss_usd"].to_numpy(),
            rows["total_loss_usd"].to_numpy(),
        ]
    )
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    norm = (pts - lo) / np.where(hi > lo, hi - lo, 1.0)
    dist = np.round(np.sqrt((norm**2).sum(axis=1)), 12)
    order = np.lexsort((rows["trial"].to_numpy(), dist))
    return rows.row(int(order[0]), named=True)


def schedule_comparison(
    con: duckdb.DuckDBPyConnection, frontier: pl.DataFrame
) -> pl.DataFrame | None:
    """Per event: the knee of the searched ``batch`` front beside that of ``schedule``.

    For each the time to sell half a tranche (:func:`backtest.search.half_sold_seconds`), the
    schedule's trajectory beside the TWAP of the same horizon, and the knees' objectives.
    ``None`` unless the search has both families.
    """
    fams = set(frontier["policy"].unique().to_list()) if frontier.height else set()
    if not {"batch", "schedule"} <= fams:
        return None
    events = frontier["event_id"].unique(maintain_order=True).to_list()
    scenarios, _ = load_scenarios(con, events, ["batch", "schedule"])
    out = []
    for sc in scenarios:
        front = frontier.filter(
            (pl.col("event_id") == sc.event_id) & pl.col("on_front") & (pl.col("trial") >= 0)
        )
        kb = _knee_row(front.filter(pl.col("policy") == "batch"))
        ks = _knee_row(front.filter(pl.col("policy") == "schedule"))
        if kb is None or ks is None:
            continue
        pb, ps = json.loads(kb["params"]), json.loads(ks["params"])
        sched = build(sc, "schedule", ps)
        step = sc.path.step_seconds
        out.append(
            {
                "event_id": sc.event_id,
                "bar_seconds": step,
                "batch_interval_s": pb["interval_seconds"],
                "batch_sale_share": pb.get("sale_share"),
                "batch_half_sold_s": half_sold_seconds(sc, "batch", pb),
                "schedule_horizon_s": ps["horizon_seconds"],
                "schedule_risk_aversion": ps["risk_aversion"],
                "schedule_impact": sched.impact_model,  # type: ignore[attr-defined]
                "schedule_half_sold_s": half_sold_seconds(sc, "schedule", ps),
                "twap_half_sold_s": float(np.ceil(sched.horizon_steps / 2)) * step,  # type: ignore[attr-defined]
                "batch_total_loss_usd": kb["total_loss_usd"],
                "schedule_total_loss_usd": ks["total_loss_usd"],
                "batch_peak_deviation": kb["peak_price_deviation"],
                "schedule_peak_deviation": ks["peak_price_deviation"],
                "batch_borrower_loss_usd": kb["borrower_loss_usd"],
                "schedule_borrower_loss_usd": ks["borrower_loss_usd"],
            }
        )
    return pl.DataFrame(out, infer_schema_length=None)
