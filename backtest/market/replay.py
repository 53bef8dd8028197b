"""One market per asset: decascade an observed path and replay the book on the fundamental path.

**One impact state.** Every venue's forced flow (derivatives liquidations: long liquidations
sell, short liquidations buy; DeFi collateral sales) feeds one decaying cumulative metaorder
``Q̃`` per asset: ``Q̃ ← Q̃ · decay`` per step, ``Q̃ += q`` per round, and the impact is the
square-root law of :class:`backtest.impact.SqrtImpact`, signed:
``I = Y · σ_day · sign(Q̃) · sqrt(|Q̃| / ADV)`` (net forced buying lifts the price).

**Decascade.** With the observed net forced flow ``q_t`` the impact path ``I_obs`` follows; the
*fundamental* path is ``p_f = p_obs · exp(I_obs)`` (close, low and high alike).

**Replay.** The cohort book at the window start is replayed on ``p_f`` with endogenous
liquidations: per step, decay; add the exogenous flow (what no modelled book produces, e.g.
observed DeFi sales); then rounds at the market price ``p_f · exp(−I)`` — liquidate the crossed
cohorts, add their net sales to ``Q̃`` — until a round liquidates nothing; then the voluntary
flows recorded by :func:`backtest.market.cohorts.run_cohorts` on the observed path (keep factor,
coins opened per side, opened at the replayed close).

**Attribution.** Drawdown ``dd(p) = max_t (1 − low_t / max_{s≤t} close_s)``. The cascade
share of the replay is ``1 − dd(p_f) / dd(p_rep)``: the part of the replayed drawdown that the
forced selling added to the fundamental one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from backtest.impact import SqrtImpact
from backtest.market.cohorts import BookState, CohortParams, CohortRun, PriceGrid, _Liquidator
from backtest.market.errors import MarketConfigError

__all__ = [
    "DecascadeResult",
    "ReplayResult",
    "cascade_share",
    "decascade",
    "drawdown",
    "impact_path",
    "replay",
    "signed_impact",
    "spread_totals",
]


def signed_impact(impact: SqrtImpact, q_tilde: float | np.ndarray) -> np.ndarray:
    """``Y · σ_day · sign(Q̃) · sqrt(|Q̃| / ADV)``."""
    q = np.asarray(q_tilde, dtype=float)
    return impact.Y * impact.sigma_day * np.sign(q) * np.sqrt(np.abs(q) / impact.adv_usd)


def impact_path(flow_usd: np.ndarray, impact: SqrtImpact) -> np.ndarray:
    """Impact at the end of each step of a net forced-sell flow (USD per step, buys < 0)."""
    decay = impact.decay
    q = 0.0
    out = np.empty(len(flow_usd))
    for i, f in enumerate(np.asarray(flow_usd, dtype=float).tolist()):
        q = q * decay + f
        out[i] = q
    return signed_impact(impact, out)


def drawdown(close: np.ndarray, low: np.ndarray | None = None) -> float:
    """Peak-to-trough drawdown ``max_t (1 − low_t / max_{s≤t} close_s)`` (fraction)."""
    close = np.asarray(close, dtype=float)
    low = close if low is None else np.minimum(np.asarray(low, dtype=float), close)
    peak = np.maximum.accumulate(close)
    peak = np.maximum(peak, np.concatenate([[close[0]], peak[:-1]]))
    return float(np.max(1.0 - low / peak))


def cascade_share(dd_total: float, dd_fundamental: float) -> float:
    """``1 − dd_fundamental / dd_total`` (0 when there is no drawdown)."""
    return 0.0 if dd_total <= 0 else 1.0 - dd_fundamental / dd_total


@dataclass(frozen=True)
class DecascadeResult:
    """Observed impact and the fundamental path (close, low, high)."""

    impact: np.ndarray
    close: np.ndarray
    low: np.ndarray
    high: np.ndarray


def decascade(
    close: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    flow_usd: np.ndarray,
    impact: SqrtImpact,
) -> DecascadeResult:
    """The fundamental path ``p_f = p_obs · exp(I_obs)`` of an observed net forced flow."""
    i_obs = impact_path(flow_usd, impact)
    g = np.exp(i_obs)
    return DecascadeResult(i_obs, np.asarray(close) * g, np.asarray(low) * g, np.asarray(high) * g)


@dataclass(frozen=True)
class ReplayResult:
    """A replay on a fundamental path.

    Attributes
    ----------
    close, low : numpy.ndarray
        Replayed market prices ``p_f · exp(−I)``.
    impact : numpy.ndarray
        Impact at the end of each step.
    liq_long_usd, liq_short_usd : numpy.ndarray
        Liquidated notional per step.
    rounds : numpy.ndarray
        Liquidating rounds per step (the cascade depth).
    """

    close: np.ndarray
    low: np.ndarray
    impact: np.ndarray
    liq_long_usd: np.ndarray
    liq_short_usd: np.ndarray
    rounds: np.ndarray


def replay(
    book: BookState,
    params: CohortParams,
    voluntary: CohortRun,
    f_close: np.ndarray,
    f_low: np.ndarray,
    f_high: np.ndarray,
    impact: SqrtImpact | None,
    *,
    exo_flow_usd: np.ndarray | None = None,
    max_rounds: int = 200,
) -> ReplayResult:
    """Replay a unit-scale book on a fundamental path with endogenous impact (module docstring).

    Parameters
    ----------
    book : BookState
        Book at the window start (unit scale; scaled by ``params.levered_share``).
    params : CohortParams
        Fitted parameters.
    voluntary : CohortRun
        The run on the observed window whose keep factors and openings are replayed.
    f_close, f_low, f_high : numpy.ndarray
        Fundamental path.
    impact : SqrtImpact or None
        The asset's impact model; ``None`` replays without feedback.
    exo_flow_usd : numpy.ndarray, optional
        Net forced sales not produced by the book (USD per step).
    max_rounds : int
        Safety cap on rounds per step.

    Returns
    -------
    ReplayResult
    """
    n = len(f_close)
    if len(voluntary.keep) != n:
        raise MarketConfigError(
            f"the voluntary run has {len(voluntary.keep)} steps, the path {n}; run the cohort "
            "model over the same window"
        )
    grid: PriceGrid = book.grid
    liq = _Liquidator(params, grid)
    b = book.copy()
    hi, lo = liq.bounds(b)
    w = params.tier_weights()
    a = params.levered_share
    decay = impact.decay if impact is not None else 1.0
    exo = np.zeros(n) if exo_flow_usd is None else np.asarray(exo_flow_usd, dtype=float)
    out_c, out_l, out_i = np.empty(n), np.empty(n), np.empty(n)
    out_ll, out_ls, out_r = np.zeros(n), np.zeros(n), np.zeros(n, dtype=np.int64)
    q = 0.0
    for i in range(n):
        q = q * decay + float(exo[i])
        imp = float(signed_impact(impact, q)) if impact is not None else 0.0
        rounds = 0
        while rounds < max_rounds:
            m = math.exp(-imp)
            ll, ls, _, _ = liq.liquidate(b, float(f_low[i]) * m, float(f_high[i]) * m, hi, lo)
            if ll == 0.0 and ls == 0.0:
                break
            rounds += 1
            out_ll[i] += ll * a
            out_ls[i] += ls * a
            if impact is None:
                continue
            q += (ll - ls) * a
            imp = float(signed_impact(impact, q))
        m = math.exp(-imp)
        out_i[i], out_r[i] = imp, rounds
        out_c[i] = float(f_close[i]) * m
        out_l[i] = min(float(f_low[i]) * m, out_c[i])
        keep = voluntary.keep[i]
        b.long *= keep[:, None]
        b.short *= keep[:, None]
        ol, os_ = float(voluntary.open_long[i]), float(voluntary.open_short[i])
        if ol > 0 or os_ > 0:
            k = grid.bin_of(out_c[i])
            b.long[:, k] += w * ol
            b.short[:, k] += w * os_
            for t in range(len(hi)):
                hi[t] = max(hi[t], k + 1)
                lo[t] = min(lo[t], k)
    return ReplayResult(out_c, out_l, out_i, out_ll, out_ls, out_r)


def spread_totals(totals: np.ndarray, group: np.ndarray, *weights: np.ndarray) -> np.ndarray:
    """Spread per-group totals over the steps of each group, by the first usable weights.

    Parameters
    ----------
    totals : numpy.ndarray
        Total of each group (e.g. a day's reported liquidations).
    group : numpy.ndarray
        Group index (into ``totals``) of every step.
    *weights : numpy.ndarray
        Candidate non-negative weights per step, in order of preference; a group uses the first
        whose sum over the group is positive, else it is spread evenly.

    Returns
    -------
    numpy.ndarray
        Per-step values whose sum over each group is that group's total.
    """
    group = np.asarray(group, dtype=np.int64)
    out = np.zeros(len(group))
    for g, total in enumerate(np.asarray(totals, dtype=float).tolist()):
        idx = np.flatnonzero(group == g)
        if idx.size == 0 or total == 0:
            continue
        share = np.full(idx.size, 1.0 / idx.size)
        for w in weights:
            wg = np.clip(np.asarray(w, dtype=float)[idx], 0.0, None)
            if wg.sum() > 0:
                share = wg / wg.sum()
                break
        out[idx] = total * share
    return out
