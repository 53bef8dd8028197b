"""Fitting the cohort model to reported liquidations; leave-one-event-out selection.

The simulation does not depend on which days are used for the fit, so :func:`fit_cohorts` runs
the model once per candidate of a parameter grid (at unit ``levered_share``) and keeps every
candidate's predicted daily long / short liquidations. :meth:`CohortFit.select` then picks, for
any set of fit days (all non-event days; or all days but one event's), the candidate, the
*level rule* of the levered share and its scale with the smallest squared error of
``log(x + floor)``.

Level rule. Predictions are proportional to the levered share, so a share that changes over time
is a per-day multiplier of the unit-scale predictions. With a trailing window of ``W`` days the
share on day ``t`` is ``a_t = b · c_t``, ``c_t`` the geometric mean of reported / unit-predicted
liquidations (long + short) over the *calibration days* among the ``W`` days before ``t``
(:func:`trailing_level`: walk-forward, nothing from day ``t`` or later), ``b`` one scale fitted in
closed form (:func:`fit_scale`). ``W = None`` is the constant share ``a_t = b``.

Crowding rule. Optionally the share also responds to crowding observed *before* day ``t``: the
long and short predictions of day ``t`` are multiplied by ``exp(β · x^long_t)`` and
``exp(β · x^short_t)``, ``x_t`` a walk-forward feature (:func:`trailing_mean` of funding or of
open-interest growth over the previous days; :class:`CrowdingRule`), ``β`` chosen from a grid
by the same loss as the rest. The level ``c_t`` is then the geometric mean of reported /
(unit-predicted × multiplier), so the level carries what the crowding term does not explain.

Crash-day level. Optionally a crash-like day is calibrated on the last ``k`` crash-like
non-event days before it instead of on every recent non-event day
(:class:`backtest.market.crash_level.CrashLevelRule`; ``k`` chosen from a grid by the same loss).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np

from backtest.market.cohorts import CohortParams, MarketSeries, PriceGrid, run_cohorts
from backtest.market.crash_level import CrashLevelRule
from backtest.market.errors import MarketConfigError

__all__ = [
    "DEFAULT_CROWDING_BETAS",
    "DEFAULT_CROWDING_DAYS",
    "DEFAULT_GRID",
    "DEFAULT_LEVEL_WINDOWS",
    "CohortFit",
    "CrowdingRule",
    "Selection",
    "fit_cohorts",
    "fit_scale",
    "funding_crowding",
    "oi_growth_crowding",
    "select_pooled",
    "intraday_drop",
    "log_loss",
    "trailing_level",
    "trailing_mean",
]

#: Candidate values per parameter searched by default (the hourly fit: 24 candidates; the
#: intraday re-entry share ``reentry`` was added in session 5 to the 8 before it; its grid
#: brackets the share with the smallest non-event loss, docs).
DEFAULT_GRID: dict[str, tuple[float, ...]] = {
    "lev_median": (10.0, 20.0),
    "lev_spread": (1.5,),
    "funding_k": (0.0,),
    "turnover_per_day": (0.3, 1.0),
    "turnover_lev_exp": (1.0, 2.0),
    "reentry": (0.0, 0.25, 0.5),
}

#: Trailing windows (days) of the level rule searched by default; ``None`` = constant share.
DEFAULT_LEVEL_WINDOWS: tuple[int | None, ...] = (None, 14, 30, 90)

#: Candidate ``β`` of the funding crowding rule (per bp of 8-hour funding; 0 = no crowding).
DEFAULT_CROWDING_BETAS: tuple[float, ...] = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6)

#: Trailing window (days) of the funding crowding rule, chosen on non-event days (docs).
DEFAULT_CROWDING_DAYS = 90

#: Fewest calibration days in a trailing window; below it the level is the all-days one.
MIN_LEVEL_DAYS = 5

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


def intraday_drop(low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """Fall of each day's low below the previous day's close, ``1 − low_t / close_{t−1}``.

    Day 0 (no previous close) and days whose low stays above it give 0.
    """
    lo, c = np.asarray(low, dtype=float), np.asarray(close, dtype=float)
    out = np.zeros(len(lo))
    if len(lo) > 1:
        out[1:] = np.maximum(1.0 - lo[1:] / c[:-1], 0.0)
    return out


def trailing_level(
    unit: np.ndarray,
    reported: np.ndarray,
    calib_mask: np.ndarray,
    window_days: int | None,
    *,
    min_days: int = MIN_LEVEL_DAYS,
) -> np.ndarray:
    """Walk-forward level ``c_t`` of the levered share, for ``t = 0 .. n`` (length ``n + 1``).

    Parameters
    ----------
    unit, reported : numpy.ndarray
        Unit-scale predicted and reported liquidations per day (long + short), length ``n``.
    calib_mask : numpy.ndarray
        Days whose ratio may be used (reported, outside every event).
    window_days : int or None
        ``c_t`` = geometric mean of ``reported / unit`` over the calibration days ``s`` with
        ``t − W ≤ s < t`` and both positive; ``None`` gives ``c_t = 1``.
    min_days : int
        Where the window holds fewer usable days (the start of the data, before any report)
        the level is the one of the first ``min_days`` usable days (a fixed start: later data
        never changes it).

    Returns
    -------
    numpy.ndarray
        ``c_0 .. c_n``; ``c_n`` is the level after the last day.
    """
    n = len(unit)
    if window_days is None:
        return np.ones(n + 1)
    if window_days < 1:
        raise MarketConfigError(f"window_days={window_days!r} must be >= 1")
    u, r = np.asarray(unit, float), np.asarray(reported, float)
    ok = np.asarray(calib_mask, bool) & (u > 0) & (r > 0)
    lr = np.zeros(n)
    lr[ok] = np.log(r[ok]) - np.log(u[ok])
    if not ok.any():
        raise MarketConfigError("no calibration day with both a predicted and a reported figure")
    cs = np.concatenate([[0.0], np.cumsum(lr)])
    cn = np.concatenate([[0], np.cumsum(ok)])
    t = np.arange(n + 1)
    lo = np.maximum(t - window_days, 0)
    cnt = cn[t] - cn[lo]
    start = lr[np.flatnonzero(ok)[:min_days]].mean()
    mean = np.where(cnt >= min_days, (cs[t] - cs[lo]) / np.maximum(cnt, 1), start)
    return np.exp(mean)


def trailing_mean(x: np.ndarray, window_days: int, *, default: float = 0.0) -> np.ndarray:
    """Walk-forward mean of ``x`` over the ``window_days`` days before ``t``, ``t = 0 .. n``.

    Parameters
    ----------
    x : numpy.ndarray
        One value per day (length ``n``); NaN days are skipped.
    window_days : int
        ``out[t]`` = mean of the finite ``x[s]`` with ``t − window_days ≤ s < t``.
    default : float
        Value where the window holds no finite day (``t = 0``, a gap in the data).

    Returns
    -------
    numpy.ndarray
        Length ``n + 1``; ``out[t]`` uses nothing from day ``t`` or later.
    """
    if window_days < 1:
        raise MarketConfigError(f"window_days={window_days!r} must be >= 1")
    v = np.asarray(x, dtype=float)
    ok = np.isfinite(v)
    cs = np.concatenate([[0.0], np.cumsum(np.where(ok, v, 0.0))])
    cn = np.concatenate([[0], np.cumsum(ok)])
    t = np.arange(len(v) + 1)
    lo = np.maximum(t - window_days, 0)
    cnt = cn[t] - cn[lo]
    return np.where(cnt > 0, (cs[t] - cs[lo]) / np.maximum(cnt, 1), default)


@dataclass(frozen=True)
class CrowdingRule:
    """Per-day multipliers ``exp(β · x_t)`` of the long and short predictions (walk-forward).

    Parameters
    ----------
    name : str
        Label of the feature (for tables).
    x_long, x_short : numpy.ndarray
        Feature per step ``t = 0 .. n`` (length ``n + 1``), computed from data before day ``t``
        only (e.g. :func:`trailing_mean`); the same array for both sides makes the multiplier a
        multiplier of the levered share.
    betas : tuple of float
        Candidate values of ``β`` (``0`` = no crowding term).
    """

    name: str
    x_long: np.ndarray
    x_short: np.ndarray
    betas: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.x_long) != len(self.x_short):
            raise MarketConfigError("x_long and x_short must have the same length")
        if not self.betas:
            raise MarketConfigError("a crowding rule needs at least one beta")
        for name in ("x_long", "x_short"):
            if not np.all(np.isfinite(np.asarray(getattr(self, name), dtype=float))):
                raise MarketConfigError(f"{name} of crowding rule {self.name!r} is not finite")

    @property
    def symmetric(self) -> bool:
        """Whether both sides share one multiplier (then it is a multiplier of the share)."""
        return bool(np.array_equal(self.x_long, self.x_short))

    def multipliers(self, beta: float) -> tuple[np.ndarray, np.ndarray]:
        """``exp(β · x_long)`` and ``exp(β · x_short)``, each of length ``n + 1``."""
        xl = np.asarray(self.x_long, dtype=float)
        xs = np.asarray(self.x_short, dtype=float)
        return np.exp(beta * xl), np.exp(beta * xs)


def funding_crowding(
    funding_8h: np.ndarray,
    window_days: int,
    betas: tuple[float, ...] = DEFAULT_CROWDING_BETAS,
    *,
    base_bps: float = 1.0,
    sign_aware: bool = True,
) -> CrowdingRule:
    """The funding crowding rule (sign-aware by default).

    ``F_t`` = mean daily 8-hour funding (bp) over the ``window_days`` days before ``t``
    (:func:`trailing_mean`; the baseline ``base_bps`` where there is none). Sign-aware: funding
    above the baseline (longs pay to hold: longs crowded) multiplies the long predictions by
    ``exp(β · (F_t − f₀)⁺)``, funding below it the short predictions by
    ``exp(β · (f₀ − F_t)⁺)``. Otherwise both sides (the share) by ``exp(β · (F_t − f₀))``.

    Parameters
    ----------
    funding_8h : numpy.ndarray
        Mean 8-hour funding rate (fraction) of each day; NaN where unknown.
    window_days : int
        Trailing window ``k`` of the mean.
    betas : tuple of float
        Candidate ``β`` (per bp of 8-hour funding).
    base_bps : float
        Baseline ``f₀`` (the interest part of the funding rate, bp per 8 h).
    sign_aware : bool
        Per side (default) or one multiplier of the share.

    Returns
    -------
    CrowdingRule
    """
    f_bps = np.asarray(funding_8h, dtype=float) * 1e4
    x = trailing_mean(f_bps, window_days, default=base_bps) - base_bps
    if not sign_aware:
        return CrowdingRule(f"funding {window_days}d, share", x, x, tuple(betas))
    return CrowdingRule(
        f"funding {window_days}d", np.maximum(x, 0.0), np.maximum(-x, 0.0), tuple(betas)
    )


def oi_growth_crowding(
    oi_usd: np.ndarray, window_days: int, betas: tuple[float, ...]
) -> CrowdingRule:
    """Open-interest growth crowding: one multiplier ``exp(β · g_t)`` of the share.

    ``g_t`` is the mean daily log growth of open interest over the ``window_days`` days before
    ``t`` (the last one ending at day ``t − 1``'s close).

    Parameters
    ----------
    oi_usd : numpy.ndarray
        Open interest at each day's close (positive).
    window_days : int
        Trailing window.
    betas : tuple of float
        Candidate ``β`` (per unit of mean daily log growth).

    Returns
    -------
    CrowdingRule
    """
    oi = np.asarray(oi_usd, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.concatenate([[np.nan], np.diff(np.log(oi))])
    g[~np.isfinite(g)] = np.nan
    x = trailing_mean(g, window_days)
    return CrowdingRule(f"open-interest growth {window_days}d", x, x, tuple(betas))


@dataclass(frozen=True)
class Selection:
    """The chosen candidate, level rule and scale for one set of fit days.

    Attributes
    ----------
    params : CohortParams
        The candidate with ``levered_share`` = the share after the last day (``share[-1]``;
        without the crowding multipliers, :meth:`multipliers_at`).
    candidate : int
        Index of the candidate in :attr:`CohortFit.candidates`.
    window_days : int or None
        Trailing window of the level rule (``None``: constant share).
    scale : float
        The fitted ``b`` of ``a_t = b · c_t``.
    share : numpy.ndarray
        Levered share ``a_t`` per day, ``t = 0 .. n`` (the last one after the last day).
    loss : float
        In-sample loss on the fit days.
    n_days : int
        Number of fit days.
    crowding_beta : float
        ``β`` of the crowding rule (0 without one).
    mult_long, mult_short : numpy.ndarray or None
        Crowding multipliers per day ``t = 0 .. n`` (``None`` without a crowding rule).
    crash_k : int
        ``k`` of the crash-day level (0 without one); :attr:`share` then holds the crash-day
        share on crash-like days.
    crash_share : numpy.ndarray or None
        The share a crash-like day ``t`` would get, for every ``t = 0 .. n`` (``None`` without
        a crash-day level; :meth:`crash_params_at`).
    """

    params: CohortParams
    candidate: int
    window_days: int | None
    scale: float
    share: np.ndarray
    loss: float
    n_days: int
    crowding_beta: float = 0.0
    mult_long: np.ndarray | None = None
    mult_short: np.ndarray | None = None
    crash_k: int = 0
    crash_share: np.ndarray | None = None

    def multipliers_at(self, day: int) -> tuple[float, float]:
        """Crowding multipliers ``(m_long, m_short)`` in force on step ``day`` (1 if none).

        The model's book on that step is the unit book of :attr:`params` with its longs times
        ``levered_share · m_long`` and its shorts times ``levered_share · m_short``
        (:meth:`backtest.market.cohorts.BookState.tilted`).
        """
        if self.mult_long is None or self.mult_short is None:
            return 1.0, 1.0
        i = min(max(int(day), 0), len(self.share) - 1)
        return float(self.mult_long[i]), float(self.mult_short[i])

    def params_at(self, day: int) -> CohortParams:
        """The candidate with the levered share ``a_t`` in force on step ``day`` (``0 .. n``).

        The crowding multipliers are not in it (see :meth:`multipliers_at`).
        """
        i = min(max(int(day), 0), len(self.share) - 1)
        return replace(self.params, levered_share=float(self.share[i]))

    def crash_params_at(self, day: int) -> CohortParams:
        """The candidate with the share a crash on step ``day`` would get (the replay's share).

        Without a crash-day level it is :meth:`params_at`.
        """
        if self.crash_share is None:
            return self.params_at(day)
        i = min(max(int(day), 0), len(self.crash_share) - 1)
        return replace(self.params, levered_share=float(self.crash_share[i]))


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
        calib_mask: np.ndarray | None = None,
        windows: tuple[int | None, ...] = (None,),
        floor: float = LOG_FLOOR_USD,
        crowding: CrowdingRule | None = None,
        crash: CrashLevelRule | None = None,
    ) -> Selection:
        """Best candidate, level window, crowding ``β``, crash ``k`` and scale on ``fit_mask``.

        Parameters
        ----------
        rep_long, rep_short : numpy.ndarray
            Reported daily liquidations (0 where there is no report).
        fit_mask : numpy.ndarray
            Days of the loss (long and short together).
        calib_mask : numpy.ndarray, optional
            Days the trailing level may use (default ``fit_mask``).
        windows : tuple
            Level-rule windows to search (:func:`trailing_level`).
        floor : float
            Floor of :func:`log_loss`.
        crowding : CrowdingRule, optional
            Crowding multipliers searched over their ``betas`` (module docstring).
        crash : CrashLevelRule, optional
            Crash-day level searched over its ``ks`` (module docstring).
        """
        m = np.asarray(fit_mask, dtype=bool)
        n = self.pred_long.shape[1]
        if crash is not None and len(crash.crash) != n:
            raise MarketConfigError(f"crash mask has {len(crash.crash)} days; need {n}")
        if crowding is not None and len(crowding.x_long) != n + 1:
            raise MarketConfigError(
                f"crowding feature has {len(crowding.x_long)} values; need {n + 1} (days + 1)"
            )
        betas = (0.0,) if crowding is None else crowding.betas
        if m.sum() < 10:
            raise MarketConfigError(f"only {int(m.sum())} fit days; need at least 10")
        calib = m if calib_mask is None else np.asarray(calib_mask, dtype=bool)
        rep = np.concatenate([rep_long[m], rep_short[m]])
        rep_tot = rep_long + rep_short
        ks = (0,) if crash is None else crash.ks
        best: Selection | None = None
        for j, cand in enumerate(self.candidates):
            for beta in betas:
                if crowding is None:
                    ml = ms = np.ones(n + 1)
                else:
                    ml, ms = crowding.multipliers(beta)
                ul, us = self.pred_long[j] * ml[:-1], self.pred_short[j] * ms[:-1]
                levels = {w: trailing_level(ul + us, rep_tot, calib, w) for w in windows}
                for w, k in itertools.product(windows, ks):
                    c0 = levels[w]
                    c = c0 if crash is None else crash.level(ul + us, rep_tot, calib, c0, k)
                    pu = np.concatenate([ul[m] * c[:-1][m], us[m] * c[:-1][m]])
                    b = fit_scale(pu, rep, floor)
                    loss = log_loss(b * pu, rep, floor)
                    if best is None or loss < best.loss:
                        share = b * c
                        crash_share = None
                        if crash is not None and k > 0:
                            everywhere = crash.level(
                                ul + us, rep_tot, calib, c0, k, everywhere=True
                            )
                            crash_share = b * everywhere
                        best = Selection(
                            params=replace(cand, levered_share=float(share[-1])),
                            candidate=j,
                            window_days=w,
                            scale=b,
                            share=share,
                            loss=loss,
                            n_days=int(m.sum()),
                            crowding_beta=float(beta),
                            mult_long=None if crowding is None else ml,
                            mult_short=None if crowding is None else ms,
                            crash_k=int(k),
                            crash_share=crash_share,
                        )
        assert best is not None
        return best

    def predict(self, sel: Selection) -> tuple[np.ndarray, np.ndarray]:
        """Daily (long, short) predictions: ``a_t`` (× the crowding multipliers) × unit ones."""
        a = sel.share[:-1]
        pl_, ps_ = self.pred_long[sel.candidate] * a, self.pred_short[sel.candidate] * a
        if sel.mult_long is not None and sel.mult_short is not None:
            pl_, ps_ = pl_ * sel.mult_long[:-1], ps_ * sel.mult_short[:-1]
        return pl_, ps_


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


def select_pooled(
    fits: list[CohortFit],
    select_args: list[tuple[np.ndarray, np.ndarray, np.ndarray, dict]],
    *,
    pool_candidate: bool = False,
) -> list[Selection]:
    """One crowding ``β`` (and optionally one candidate) for several assets' fits.

    Every asset keeps its own level window and scale (and candidate unless pooled); ``β`` is the
    one of the common grid with the smallest loss over all assets' fit days together (each
    asset's :meth:`CohortFit.select` loss weighted by its number of fit days).

    Parameters
    ----------
    fits : list of CohortFit
        One per asset, over the same candidate grid.
    select_args : list of tuple
        Per asset ``(rep_long, rep_short, fit_mask, kwargs)`` of :meth:`CohortFit.select`;
        ``kwargs["crowding"]`` must be a :class:`CrowdingRule` with the same ``betas`` for all.
    pool_candidate : bool
        Also one candidate (same index of the grid) for every asset.

    Returns
    -------
    list of Selection
        One per asset, in the order of ``fits``.
    """
    if len(fits) != len(select_args) or not fits:
        raise MarketConfigError("select_pooled needs one set of select arguments per fit")
    rules = [kw.get("crowding") for *_, kw in select_args]
    if any(r is None for r in rules):
        raise MarketConfigError("pooling needs a crowding rule for every asset")
    betas = rules[0].betas  # type: ignore[union-attr]
    if any(r.betas != betas for r in rules):  # type: ignore[union-attr]
        raise MarketConfigError("pooled assets must share the crowding beta grid")
    n_cand = len(fits[0].candidates)
    if pool_candidate and any(f.candidates != fits[0].candidates for f in fits):
        raise MarketConfigError("pooled candidates need the same grid for every asset")
    groups = [None] if not pool_candidate else list(range(n_cand))
    best: tuple[float, list[Selection]] | None = None
    for beta, j in itertools.product(betas, groups):
        sels = []
        for fit, (rl, rs, m, kw) in zip(fits, select_args):
            f = fit if j is None else CohortFit([fit.candidates[j]], fit.pred_long[j : j + 1],
                                                fit.pred_short[j : j + 1])  # fmt: skip
            kw1 = {**kw, "crowding": replace(kw["crowding"], betas=(beta,))}
            s = f.select(rl, rs, m, **kw1)
            sels.append(s if j is None else replace(s, candidate=j))
        loss = sum(s.loss * s.n_days for s in sels) / sum(s.n_days for s in sels)
        if best is None or loss < best[0]:
            best = (loss, sels)
    assert best is not None
    return best[1]
