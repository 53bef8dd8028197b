"""Fitting the cohort model to reported liquidations; leave-one-event-out selection.

The simulation does not depend on which days are used for the fit, so :func:`fit_cohorts` runs
the model once per candidate of a parameter grid (at unit ``levered_share``) and keeps every
candidate's predicted daily long / short liquidations. :meth:`CohortFit.select` then picks, for
any set of fit days (all non-event days; or all days but one event's), the candidate and the
scale with the smallest squared error of ``log(x + floor)`` — the scale in closed form
(:func:`fit_scale`), since predictions are proportional to it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np

from backtest.market.cohorts import CohortParams, MarketSeries, PriceGrid, run_cohorts
from backtest.market.errors import MarketConfigError

__all__ = ["DEFAULT_GRID", "CohortFit", "Selection", "fit_cohorts", "fit_scale", "log_loss"]

#: Candidate values per parameter searched by default.
DEFAULT_GRID: dict[str, tuple[float, ...]] = {
    "lev_median": (5.0, 10.0, 20.0),
    "lev_spread": (1.5,),
    "funding_k": (0.0, 0.5),
    "turnover_per_day": (0.1, 0.3, 1.0),
    "turnover_lev_exp": (0.0, 1.0, 2.0),
}

#: Floor (USD) added inside the logs so quiet days (a few $M of noise-dominated liquidations) do
#: not dominate the loss.
LOG_FLOOR_USD = 1e7


def log_loss(pred: np.ndarray, rep: np.ndarray, floor: float = LOG_FLOOR_USD) -> float:
    """Mean squared error of ``log(pred + floor)`` against ``log(rep + floor)``."""
    d = np.log(pred + floor) - np.log(rep + floor)
    return float(np.mean(d * d)) if d.size else float("nan")


def fit_scale(pred_unit: np.ndarray, rep: np.ndarray, floor: float = LOG_FLOOR_USD) -> float:
    """Scale ``a`` minimising :func:`log_loss` of ``a · pred_unit`` (golden-section on ``ln a``).

    Starts from the closed form ``exp(mean(ln rep − ln pred))`` over days where both are
    positive (exact without the floor) and refines it with the floor.
    """
    both = (pred_unit > 0) & (rep > 0)
    if not both.any():
        raise MarketConfigError("no day with both a predicted and a reported liquidation to fit")
    c = float(np.mean(np.log(rep[both]) - np.log(pred_unit[both])))
    lo, hi = c - 4.0, c + 4.0
    g = (np.sqrt(5.0) - 1.0) / 2.0
    f = lambda x: log_loss(np.exp(x) * pred_unit, rep, floor)  # noqa: E731
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = f(a), f(b)
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = f(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = f(b)
    return float(np.exp((lo + hi) / 2.0))


@dataclass(frozen=True)
class Selection:
    """The chosen parameters for one set of fit days and their in-sample loss."""

    params: CohortParams
    loss: float
    n_days: int


@dataclass(frozen=True)
class CohortFit:
    """Every grid candidate's unit-scale daily predictions (see the module docstring).

    Attributes
    ----------
    candidates : list of CohortParams
    pred_long, pred_short : numpy.ndarray
        ``(n_candidates, n_days)`` unit-scale predicted liquidations per day.
    """

    candidates: list[CohortParams]
    pred_long: np.ndarray
    pred_short: np.ndarray

    def select(
        self,
        rep_long: np.ndarray,
        rep_short: np.ndarray,
        fit_mask: np.ndarray,
        *,
        floor: float = LOG_FLOOR_USD,
    ) -> Selection:
        """Best candidate and scale on the days of ``fit_mask`` (long and short together)."""
        m = np.asarray(fit_mask, dtype=bool)
        if m.sum() < 10:
            raise MarketConfigError(f"only {int(m.sum())} fit days; need at least 10")
        rl, rs = rep_long[m], rep_short[m]
        best: Selection | None = None
        for j, cand in enumerate(self.candidates):
            pu = np.concatenate([self.pred_long[j, m], self.pred_short[j, m]])
            rep = np.concatenate([rl, rs])
            a = fit_scale(pu, rep, floor)
            loss = log_loss(a * pu, rep, floor)
            if best is None or loss < best.loss:
                best = Selection(replace(cand, levered_share=a), loss, int(m.sum()))
        assert best is not None
        return best

    def predict(self, params: CohortParams) -> tuple[np.ndarray, np.ndarray]:
        """Daily (long, short) predictions of a selected candidate at its scale."""
        for j, cand in enumerate(self.candidates):
            if replace(cand, levered_share=params.levered_share) == params:
                a = params.levered_share
                return self.pred_long[j] * a, self.pred_short[j] * a
        raise MarketConfigError(f"{params!r} is not a candidate of this fit")


def fit_cohorts(
    series: MarketSeries,
    *,
    grid: dict[str, tuple[float, ...]] | None = None,
    base: CohortParams | None = None,
    price_grid: PriceGrid | None = None,
) -> CohortFit:
    """Run every candidate of ``grid`` over ``series`` (one step = one fit day).

    Parameters
    ----------
    series : MarketSeries
        Daily bars, open interest and funding of one asset.
    grid : dict, optional
        Parameter name → candidate values (default :data:`DEFAULT_GRID`).
    base : CohortParams, optional
        Values of the parameters not in ``grid``.
    price_grid : PriceGrid, optional
        Entry-price grid.

    Returns
    -------
    CohortFit
    """
    grid = DEFAULT_GRID if grid is None else grid
    base = CohortParams() if base is None else replace(base, levered_share=1.0)
    names = list(grid)
    cands = [
        replace(base, **dict(zip(names, values)))
        for values in itertools.product(*(grid[k] for k in names))
    ]
    pl_, ps_ = [], []
    for cand in cands:
        run = run_cohorts(series, cand, grid=price_grid)
        pl_.append(run.liq_long_usd)
        ps_.append(run.liq_short_usd)
    return CohortFit(cands, np.array(pl_), np.array(ps_))
