"""The simulation engine: book × price path × impact model × policy → step log + metrics.

Round semantics (shared by :func:`simulate` and :func:`simulate_dense`)
-----------------------------------------------------------------------
The engine carries the impact model's state ``s`` across steps (``I`` itself for linear and
cpmm, the decaying cumulative metaorder ``Q̃`` for sqrt; see :mod:`backtest.impact`). For every
step ``t``:

1. decay: ``s0 = s · decay`` with ``decay = 0.5^(1/half_life_steps)`` (no decay for an infinite
   half-life), ``I0 = impact_of(s0)``;
2. rounds ``r = 0, 1, …`` at market price ``p = p_exo(t) · exp(−I)``: the policy is handed the
   positions with ``c·p·LT < d`` (evaluated as ``p < L = d/(c·LT)``), acts on them and sells
   some notional ``q``; the round's sales move the state once (``s = impact.apply(s, q)``,
   ``I = impact_of(s)``; linear: ``I += q / depth_usd``). Rounds repeat until one neither
   liquidates nor sells (a fixed point).
3. depth: the step's *cascade depth* is the number of its rounds in which at least one position
   was liquidated for the first time in this step; rounds that liquidated only positions
   already liquidated earlier in the step (partial repeats under a close factor, stages) are
   counted in ``repeat_rounds``. Rounds with only auction takes or scheduled sales count in
   ``rounds`` alone.

At the end of the path the policy settles (``finish``) and the engine records the losses still
open: unhealthy and underwater debt of the positions left in the book at the final market
price, and the shortfall of debt in unfinished liquidation processes
(:class:`~backtest.metrics.Metrics`, ``total_loss_usd``).

Every call also runs the same book, path and policy with no impact (the counterfactual).

The fast engine sorts positions once by liquidation price (descending, ties by book row) and
walks a pointer with ``np.searchsorted``; partially liquidated positions are re-inserted into
small sorted buffers. Steps where nothing can happen cost a few Python float operations. The
dense engine re-evaluates every position every step (reference and benchmark baseline).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from backtest.book import Book, liquidation_price
from backtest.errors import CascadeDidNotSettleError
from backtest.impact import ImpactModel, NoImpact
from backtest.ledger import STEP_FIELDS, Ledger
from backtest.metrics import Conservation, Metrics, compute_metrics
from backtest.path import PricePath
from backtest.policies.base import Env, Policy
from backtest.pool import DensePool, FastPool

__all__ = ["MAX_ROUNDS_PER_STEP", "FrozenParams", "Result", "simulate", "simulate_dense"]

#: Safety limit on the rounds of one step.
MAX_ROUNDS_PER_STEP = 1_000_000

_INT_FIELDS = ("rounds", "cascade_depth", "repeat_rounds", "n_liquidations")


class FrozenParams(Mapping[str, Any]):
    """A read-only, picklable mapping (the parameters stored in a :class:`Result`).

    Behaves like :class:`types.MappingProxyType` over a private copy of ``data`` (no item
    assignment or deletion), but pickles, so results can cross process boundaries.

    Parameters
    ----------
    data : mapping
        The parameters (copied, shallowly).
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] = ()) -> None:  # type: ignore[assignment]
        object.__setattr__(self, "_data", dict(data))

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("FrozenParams is read-only")

    def __reduce__(self) -> tuple[type, tuple[dict[str, Any]]]:
        return (FrozenParams, (dict(self._data),))

    def __repr__(self) -> str:
        return f"FrozenParams({self._data!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self._data) == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, kw_only=True, eq=False)
class Result:
    """Read-only outcome of :func:`simulate`.

    Attributes
    ----------
    metrics : Metrics
        Metrics of the run with impact.
    counterfactual : Metrics
        Metrics of the same run without impact.
    steps : polars.DataFrame or None
        One row per step (``record_steps=True``): ``step, ts, p_exo, p_open, p_mkt, impact,
        rounds, cascade_depth, repeat_rounds, n_liquidations, liquidated_usd, seized_usd, sold_usd,
        repaid_usd, bad_debt_usd, borrower_loss_usd, liquidator_profit_usd,
        protocol_revenue_usd``. ``p_open``/``p_mkt`` are the market prices at the first round
        and after the last round; ``impact`` is ``I`` after the step; ``rounds`` counts rounds
        that liquidated or sold; ``cascade_depth`` those that liquidated a position for the
        first time in the step, ``repeat_rounds`` those that only liquidated positions again.
    counterfactual_steps : polars.DataFrame or None
        The same for the counterfactual.
    conservation : Conservation
        Collateral and debt accounting of the run with impact.
    position_liquidated_usd : numpy.ndarray
        Liquidated debt per position, in the book's row order.
    position_induced_usd : numpy.ndarray
        ``max(0, liq_i − liq_i^cf)`` per position, in the book's row order.
    policy : FrozenParams
        The policy's parameters (``policy.params()``, read-only).
    impact : FrozenParams
        The impact model's parameters (read-only).
    engine : str
        ``"fast"`` or ``"dense"``.
    n_positions, n_steps : int
        Sizes of the inputs.
    fingerprint : tuple
        Cheap identity of the book and path (sizes and sums), checked by
        :func:`backtest.compare.compare`.
    """

    metrics: Metrics
    counterfactual: Metrics
    steps: pl.DataFrame | None
    counterfactual_steps: pl.DataFrame | None
    conservation: Conservation
    position_liquidated_usd: np.ndarray
    position_induced_usd: np.ndarray
    policy: Mapping[str, Any]
    impact: Mapping[str, Any]
    engine: str
    n_positions: int
    n_steps: int
    fingerprint: tuple[float, ...]


@dataclass(frozen=True)
class _Prepared:
    """The book in canonical order (computed once per book and cached on it)."""

    order: np.ndarray
    neg_keys: np.ndarray
    c: np.ndarray
    d: np.ndarray
    lt: np.ndarray
    one_b: np.ndarray
    arange: np.ndarray


@dataclass
class _Run:
    steps: dict[str, np.ndarray]
    ledger: Ledger
    in_flight: tuple[float, float]
    final_price: float
    end: dict[str, float]


_CACHE_ATTR = "_backtest_canonical"


def prepare(book: Book) -> _Prepared:
    """Sort the book once into canonical order (liquidation price descending, ties by row).

    The result is cached on the (immutable) book, so every later simulation of the same book —
    other policies, impact models, the counterfactual — reuses it.
    """
    cached = book.__dict__.get(_CACHE_ATTR)
    if cached is not None:
        return cached
    keys = liquidation_price(book.collateral, book.debt, book.liquidation_threshold)
    neg = -keys
    order = np.argsort(neg)  # introsort is fast; fall back to a stable sort only on ties
    sk = neg[order]
    if sk.size > 1 and (sk[1:] == sk[:-1]).any():
        order = np.argsort(neg, kind="stable")
        sk = neg[order]
    arrays = [sk, book.collateral[order], book.debt[order], book.liquidation_threshold[order]]
    one_b = book.bonus[order]
    one_b += 1.0
    arrays.append(one_b)
    for a in (order, *arrays):
        a.flags.writeable = False
    arange = np.arange(len(book), dtype=np.int64)
    arange.flags.writeable = False
    prep = _Prepared(order, *arrays, arange)
    object.__setattr__(book, _CACHE_ATTR, prep)
    return prep


def _run(
    prep: _Prepared, path: PricePath, impact: ImpactModel, policy: Policy, *, dense: bool
) -> _Run:
    ledger = Ledger(prep.c, prep.d, prep.lt, prep.one_b, prep.arange)
    pool = DensePool(ledger) if dense else FastPool(ledger, prep.neg_keys)
    n_steps = len(path)
    env = Env(
        ledger=ledger,
        pool=pool,
        n_steps=n_steps,
        step_seconds=path.step_seconds,
        total_debt=ledger.d0_total,
        max_threshold=float(prep.lt.max()) if prep.lt.size else 1.0,
    )
    rt = policy.start(env)
    p_exo = path.price.tolist()
    decay = impact.decay
    apply = impact.apply
    direct = impact.state_is_impact
    impact_of = impact.impact_of
    exp = math.exp
    needs, thr_of, rnd, top = rt.needs_step, rt.threshold, rt.round, pool.top
    end_step = rt.end_step if rt.wants_end_step else None

    p_open = [0.0] * n_steps
    i_end = [0.0] * n_steps
    p_end = [0.0] * n_steps
    active: list[int] = []
    records: list[tuple[Any, ...]] = []
    s_cur = 0.0  # the impact model's state (``I`` itself for linear/cpmm, ``Q̃`` for sqrt)
    for t in range(n_steps):
        s0 = s_cur * decay
        i0 = s0 if direct else impact_of(s0)
        px = p_exo[t]
        p = px * exp(-i0) if i0 else px
        p_open[t] = p
        if not needs(t) and top() <= thr_of(t, p):
            s_cur = s0
            i_end[t] = i0
            p_end[t] = p
            if end_step is not None:
                end_step(t, p, p)
            continue
        ledger.reset_step()
        s_cur = s0
        i_cur = i0
        r = 0
        depth = 0
        repeat = 0
        rounds = 0
        while True:
            n_liq0 = ledger.n_liquidations
            n_new0 = ledger.new_liquidations
            acted, sold = rnd(t, r, p)
            if not acted and not sold:
                break
            rounds += 1
            if acted:
                if ledger.new_liquidations > n_new0:
                    depth += 1
                elif ledger.n_liquidations > n_liq0:
                    repeat += 1
            if sold:
                s_cur = apply(s_cur, sold)
                i_cur = s_cur if direct else impact_of(s_cur)
                p = px * exp(-i_cur)
            r += 1
            if r >= MAX_ROUNDS_PER_STEP:
                raise CascadeDidNotSettleError(
                    f"step {t}: no fixed point after {r} rounds; check the policy parameters "
                    "(e.g. a close factor that never restores health)"
                )
        i_end[t] = i_cur
        p_end[t] = p
        if end_step is not None:
            end_step(t, p_open[t], p)
        active.append(t)
        records.append((rounds, depth, repeat, *ledger.step_values()))

    final_price = p_end[-1]
    ledger.reset_step()
    in_flight = rt.finish(final_price)
    finish_vals = ledger.step_values()
    steps = _assemble(n_steps, p_exo, p_open, p_end, i_end, active, records, finish_vals)
    end = _end_state(ledger, final_price, rt.in_flight_shortfall(final_price))
    return _Run(steps=steps, ledger=ledger, in_flight=in_flight, final_price=final_price, end=end)


def _end_state(ledger: Ledger, p_final: float, in_flight_shortfall: float) -> dict[str, float]:
    """Losses still open at the end of the window (see :class:`~backtest.metrics.Metrics`)."""
    d = ledger.d
    value = ledger.c * p_final
    open_ = d > 0.0
    unhealthy = open_ & (value * ledger.lt < d)
    under = open_ & (value < d)
    return {
        "unhealthy_open_debt_usd": float(d[unhealthy].sum()),
        "underwater_debt_usd": float(d[under].sum()),
        "underwater_shortfall_usd": float((d[under] - value[under]).sum()),
        "in_flight_shortfall_usd": float(in_flight_shortfall),
    }


def _assemble(
    n_steps: int,
    p_exo: list[float],
    p_open: list[float],
    p_end: list[float],
    i_end: list[float],
    active: list[int],
    records: list[tuple[Any, ...]],
    finish_vals: tuple[float, ...],
) -> dict[str, np.ndarray]:
    cols: dict[str, np.ndarray] = {
        "p_exo": np.array(p_exo),
        "p_open": np.array(p_open),
        "p_mkt": np.array(p_end),
        "impact": np.array(i_end),
    }
    names = ("rounds", "cascade_depth", "repeat_rounds", *STEP_FIELDS)
    idx = np.array(active, dtype=np.int64)
    data = np.array(records, dtype=np.float64).reshape(len(records), len(names))
    for j, name in enumerate(names):
        dtype = np.int64 if name in _INT_FIELDS else np.float64
        col = np.zeros(n_steps, dtype=dtype)
        col[idx] = data[:, j]
        cols[name] = col
    # settlement at the end of the path (marks of inventories) goes into the last step
    for name, v in zip(STEP_FIELDS, finish_vals):
        if v:
            cols[name][-1] += v
    return cols


def _frame(path: PricePath, cols: dict[str, np.ndarray]) -> pl.DataFrame:
    data: dict[str, Any] = {
        "step": np.arange(len(path), dtype=np.int64),
        "ts": path.ts,
    }
    for name in (
        "p_exo",
        "p_open",
        "p_mkt",
        "impact",
        "rounds",
        "cascade_depth",
        "repeat_rounds",
        *STEP_FIELDS,
    ):
        data[name] = cols[name]
    return pl.DataFrame(data)


def _conservation(run: _Run) -> Conservation:
    led = run.ledger
    coll_if, debt_if = run.in_flight
    return Conservation(
        collateral_initial=led.c0_total,
        collateral_left=float(led.c.sum()),
        collateral_seized=led.coll_removed,
        collateral_sold=led.coll_sold,
        collateral_returned=led.coll_returned,
        collateral_in_flight=float(coll_if),
        debt_initial=led.d0_total,
        debt_outstanding=float(led.d.sum()),
        debt_repaid=led.repaid_total,
        debt_bad=led.bad_total,
        debt_in_flight=float(debt_if),
    )


def _unsort(prep: _Prepared, values: np.ndarray) -> np.ndarray:
    out = np.empty_like(values)
    out[prep.order] = values
    out.flags.writeable = False
    return out


def _simulate(
    book: Book,
    path: PricePath,
    impact: ImpactModel,
    policy: Policy,
    *,
    record_steps: bool,
    dense: bool,
) -> Result:
    prep = prepare(book)
    run = _run(prep, path, impact, policy, dense=dense)
    if impact.is_zero:
        cf = run
    else:
        cf = _run(prep, path, NoImpact(), policy, dense=dense)
    liq = run.ledger.liq_debt
    liq_cf = cf.ledger.liq_debt
    cf_liquidated = float(cf.steps["liquidated_usd"].sum())
    metrics = compute_metrics(
        run.steps,
        liq,
        liq_cf,
        in_flight=run.in_flight,
        final_price=run.final_price,
        liquidated_cf_usd=cf_liquidated,
        end_state=run.end,
    )
    cf_metrics = compute_metrics(
        cf.steps,
        liq_cf,
        liq_cf,
        in_flight=cf.in_flight,
        final_price=cf.final_price,
        liquidated_cf_usd=cf_liquidated,
        end_state=cf.end,
    )
    induced = np.maximum(liq - liq_cf, 0.0)
    return Result(
        metrics=metrics,
        counterfactual=cf_metrics,
        steps=_frame(path, run.steps) if record_steps else None,
        counterfactual_steps=_frame(path, cf.steps) if record_steps else None,
        conservation=_conservation(run),
        position_liquidated_usd=_unsort(prep, liq),
        position_induced_usd=_unsort(prep, induced),
        policy=FrozenParams(policy.params()),
        impact=FrozenParams(impact.params()),
        engine="dense" if dense else "fast",
        n_positions=len(book),
        n_steps=len(path),
        fingerprint=(
            float(len(book)),
            book.total_collateral,
            book.total_debt,
            float(len(path)),
            float(path.price.sum()),
        ),
    )


def simulate(
    book: Book,
    path: PricePath,
    impact: ImpactModel,
    policy: Policy,
    *,
    record_steps: bool = True,
) -> Result:
    """Simulate a liquidation policy on a book along a price path, with and without impact.

    Parameters
    ----------
    book : Book
        Positions (one collateral asset).
    path : PricePath
        Exogenous price path, one step per element.
    impact : ImpactModel
        :class:`~backtest.impact.LinearImpact`, :class:`~backtest.impact.SqrtImpact`,
        :class:`~backtest.impact.CpmmImpact` or :class:`~backtest.impact.NoImpact`.
    policy : Policy
        A policy configuration (see :data:`backtest.policies.POLICIES`).
    record_steps : bool, optional
        Build the per-step frames (metrics are computed either way).

    Returns
    -------
    Result
        Metrics of the run and of its zero-impact counterfactual, the step log, conservation
        totals and per-position liquidated debt.

    Notes
    -----
    Cost is ``O(N log N)`` for one sort plus the positions actually liquidated plus ``O(1)``
    Python work per quiet step; see the module docstring for the exact round semantics.
    """
    return _simulate(book, path, impact, policy, record_steps=record_steps, dense=False)


def simulate_dense(
    book: Book,
    path: PricePath,
    impact: ImpactModel,
    policy: Policy,
    *,
    record_steps: bool = True,
) -> Result:
    """Reference engine: same semantics as :func:`simulate`, every position every step.

    Every step (and every round) recomputes the liquidation price of all positions, so the cost
    is ``O(N × steps)``. It exists to check the fast engine (identical results) and as the
    benchmark baseline. Parameters and result as :func:`simulate`.
    """
    return _simulate(book, path, impact, policy, record_steps=record_steps, dense=True)
