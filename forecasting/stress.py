r"""Stress price paths by filtered historical simulation (FHS) and interval summaries.

Every figure of an event gets an interval over stress paths around the event as well as the value
on the real path (DESIGN, "Evidence"). The paths come from filtered historical simulation
(Barone-Adesi et al. 1999) of a GARCH(1,1) fitted on the hourly log returns *before* the window
start (walk-forward: nothing of the event enters the fit):

1. :func:`fit_fhs` — ``r_t = μ + ε_t``, ``ε_t = σ_t z_t``,
   ``σ²_t = ω + α ε²_{t−1} + β σ²_{t−1}``, Student-t ``z`` by default, estimated with
   :func:`arch.arch_model` on returns rescaled to unit variance (as
   :mod:`forecasting.models._arch`). It keeps the standardized residuals
   ``ẑ_t = ε̂_t / σ̂_t`` and the window-start state ``σ²_{T+1} = ω + α ε̂²_T + β σ̂²_T``.
2. :func:`stress_paths` — for every path and hour ``k = 1..K``: draw ``z*_k`` from the ẑ with
   replacement (``numpy.random.Generator`` seeded), ``ε*_k = σ*_k z*_k``,
   ``σ*²_{k+1} = ω + α ε*²_k + β σ*²_k`` from ``σ*²_1 = σ²_{T+1}``; the hourly log return is
   ``ε*_k`` (plus ``μ`` only with ``drift=True``: a mean fitted on calm data is noise that a
   multi-day path would compound). Prices ``P_0 · exp(Σ r)`` start exactly at the window-start
   price ``P_0``.

The model is hourly. Other step lengths:

* ``step_seconds`` a divisor of 3600 (e.g. 300 for 5-minute bars): each simulated hourly log
  return is spread evenly over the ``m = 3600 / step_seconds`` sub-steps (``r/m`` each, i.e. the
  log price is interpolated linearly inside the hour). The hourly distribution and the GARCH
  dynamics are exactly those of the hourly simulation; no intra-hour noise is added, so a stress
  path has no intra-hour wicks (the real path, which has them, is always reported beside);
* ``step_seconds`` a multiple of 3600: consecutive hourly returns are summed.

Intervals: :func:`interval_summary` gives the median, the central ``level`` interval (5 %–95 % by
default) and the 95th percentile (``p95``: VaR of bad debt, LaR of liquidated debt when the values
are those losses over the paths); :func:`intervals_overlap` says whether two intervals overlap
(then a ranking of the two is not supported by the paths); :func:`rank_with_overlaps` ranks
policies by their median and lists, for each, the policies whose intervals overlap its own.

Import path: ``from forecasting.stress import fit_fhs, stress_paths, interval_summary``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from arch import arch_model
from numpy.typing import ArrayLike

from forecasting.errors import InvalidBarsError, ModelConvergenceWarning, not_enough_history

__all__ = [
    "FHSFit",
    "IntervalSummary",
    "RankedEntry",
    "fit_fhs",
    "interval_summary",
    "intervals_overlap",
    "rank_with_overlaps",
    "simulate_fhs_returns",
    "stress_paths",
]

_DISTS = {"normal": "normal", "t": "t", "studentst": "t", "skewt": "skewt", "skewstudent": "skewt"}
#: Fewest returns :func:`fit_fhs` accepts (about four days of hourly bars).
MIN_FIT_RETURNS = 100


@dataclass(frozen=True, kw_only=True, eq=False)
class FHSFit:
    """A GARCH(1,1) fit ready for filtered historical simulation (read-only).

    Parameters and state are in *scaled* units (returns times ``scale``); the properties convert
    to return units.

    Attributes
    ----------
    mu, omega, alpha, beta : float
        Mean and GARCH(1,1) parameters (scaled units).
    dist : str
        Error distribution used for estimation (``t``, ``skewt`` or ``normal``).
    dist_params : tuple of float
        Its shape parameters (``nu``; ``eta, lambda`` for skew-t).
    scale : float
        ``1 / std(returns)``, the factor applied before estimation.
    std_resid : numpy.ndarray
        Standardized residuals ``ẑ`` that the simulation resamples.
    sigma2_next : float
        Variance of the first simulated hour (the window-start state), scaled units.
    n_obs : int
        Number of returns fitted.
    converged : bool
        Whether the optimizer converged.
    loglikelihood : float
        Log-likelihood at the estimates (scaled data).
    last_price : float
        Close at the origin (the first price of simulated paths); NaN when unknown
        (:func:`fit_fhs` sees returns only, :func:`forecasting.paths.fit_at_origin` sets it).
    """

    mu: float
    omega: float
    alpha: float
    beta: float
    dist: str
    dist_params: tuple[float, ...]
    scale: float
    std_resid: np.ndarray
    sigma2_next: float
    n_obs: int
    converged: bool
    loglikelihood: float
    last_price: float = math.nan

    def __post_init__(self) -> None:
        z = np.array(self.std_resid, dtype=np.float64, copy=True)
        if z.ndim != 1 or z.size == 0 or not np.all(np.isfinite(z)):
            raise InvalidBarsError("std_resid must be a non-empty 1-d array of finite values")
        z.flags.writeable = False
        object.__setattr__(self, "std_resid", z)

    @property
    def persistence(self) -> float:
        """``α + β``."""
        return self.alpha + self.beta

    @property
    def unconditional_vol(self) -> float:
        """Hourly unconditional volatility ``sqrt(ω / (1 − α − β)) / scale`` (NaN if α + β ≥ 1)."""
        if self.persistence >= 1.0:
            return math.nan
        return math.sqrt(self.omega / (1.0 - self.persistence)) / self.scale

    @property
    def next_vol(self) -> float:
        """Hourly volatility of the first simulated hour, in return units."""
        return math.sqrt(self.sigma2_next) / self.scale


def fit_fhs(returns: ArrayLike, *, dist: str = "t", max_iter: int = 500) -> FHSFit:
    """Fit GARCH(1,1) on hourly log returns up to the window start, for FHS.

    Parameters
    ----------
    returns : array_like
        Hourly log returns, oldest first, ending with the return of the last bar before the
        window start (at least :data:`MIN_FIT_RETURNS`).
    dist : {"t", "skewt", "normal"}
        Error distribution of the estimation (Student-t by default). The simulation resamples
        the empirical standardized residuals whatever the distribution.
    max_iter : int
        Maximum optimizer iterations.

    Returns
    -------
    FHSFit

    Raises
    ------
    InvalidBarsError
        If the returns are not finite or have zero variance.
    NotEnoughHistoryError
        If fewer than :data:`MIN_FIT_RETURNS` returns are given.

    Warns
    -----
    ModelConvergenceWarning
        If the optimizer did not converge (the estimates are kept).
    """
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1:
        raise InvalidBarsError(f"returns must be 1-d, got shape {r.shape}")
    if not np.all(np.isfinite(r)):
        raise InvalidBarsError("returns have NaN or infinite values; drop or repair them")
    if r.shape[0] < MIN_FIT_RETURNS:
        raise not_enough_history(
            "fit_fhs", r.shape[0], MIN_FIT_RETURNS, "pass a longer pre-event history"
        )
    try:
        arch_dist = _DISTS[str(dist).lower()]
    except KeyError:
        raise ValueError(f"dist={dist!r} is not supported; use 't', 'skewt' or 'normal'") from None
    sd = float(np.std(r))
    if not sd > 0.0:
        raise InvalidBarsError(
            "returns have zero variance (a flat price); use a history that contains price moves"
        )
    scale = 1.0 / sd
    y = r * scale
    model = arch_model(y, mean="Constant", vol="GARCH", p=1, q=1, dist=arch_dist, rescale=False)
    res = model.fit(disp="off", show_warning=False, options={"maxiter": int(max_iter)})
    converged = res.convergence_flag == 0
    if not converged:
        warnings.warn(
            ModelConvergenceWarning(
                f"fit_fhs (dist={dist!r}) did not converge on {r.shape[0]} returns "
                f"({res.optimization_result.message}); the estimates were kept. Fix: use a "
                "longer history, dist='normal', or a larger max_iter."
            ),
            stacklevel=2,
        )
    p = np.asarray(res.params, dtype=np.float64)
    mu, omega, alpha, beta = (float(v) for v in p[:4])
    resid = np.asarray(res.resid, dtype=np.float64)
    cond_vol = np.asarray(res.conditional_volatility, dtype=np.float64)
    z = np.asarray(res.std_resid, dtype=np.float64)
    sigma2_next = omega + alpha * resid[-1] ** 2 + beta * cond_vol[-1] ** 2
    return FHSFit(
        mu=mu,
        omega=omega,
        alpha=alpha,
        beta=beta,
        dist=arch_dist,
        dist_params=tuple(float(v) for v in p[4:]),
        scale=scale,
        std_resid=z[np.isfinite(z)],
        sigma2_next=float(sigma2_next),
        n_obs=int(r.shape[0]),
        converged=bool(converged),
        loglikelihood=float(res.loglikelihood),
    )


def simulate_fhs_returns(
    fit: FHSFit,
    n_hours: int,
    *,
    n_paths: int = 200,
    seed: int | np.random.Generator = 0,
    drift: bool = False,
    method: str = "bootstrap",
    standardize: bool = False,
) -> np.ndarray:
    """Hourly log returns by filtered historical simulation (see the module docstring).

    Parameters
    ----------
    fit : FHSFit
        Output of :func:`fit_fhs` (or :func:`forecasting.paths.fit_at_origin`).
    n_hours : int
        Number of simulated hours ``K``.
    n_paths : int
        Number of paths.
    seed : int or numpy.random.Generator
        Seed of :func:`numpy.random.default_rng`; the same seed gives byte-identical output.
    drift : bool
        Add the fitted mean ``μ`` to every hourly return.
    method : {"bootstrap", "t"}
        Innovations ``z*``: resampled standardized residuals ẑ (filtered historical simulation)
        or Student-t draws with the fitted ``ν``, scaled to unit variance (needs ``dist="t"``).
    standardize : bool
        Rescale the resampled ẑ to unit mean square, so the simulated one-step variance equals
        the model's forecast ``σ²_{T+1}`` (the raw ẑ of a fit have a mean square near, not at, 1).

    Returns
    -------
    numpy.ndarray
        ``(n_paths, n_hours)`` hourly log returns.
    """
    if n_hours < 0 or n_paths < 1:
        raise ValueError(f"need n_hours >= 0 and n_paths >= 1, got {n_hours}, {n_paths}")
    rng = np.random.default_rng(seed)
    if method == "bootstrap":
        pool = fit.std_resid
        if standardize:
            pool = pool / math.sqrt(float(np.mean(pool * pool)))
        z = pool[rng.integers(0, pool.size, size=(n_paths, n_hours))]
    elif method == "t":
        if fit.dist != "t" or not fit.dist_params:
            raise ValueError(
                f"method='t' needs a Student-t fit (dist='t'), this one has dist={fit.dist!r}"
            )
        nu = float(fit.dist_params[0])
        if not nu > 2.0:
            raise ValueError(f"method='t' needs the fitted nu > 2 (finite variance), got {nu}")
        z = rng.standard_t(nu, size=(n_paths, n_hours)) * math.sqrt((nu - 2.0) / nu)
    else:
        raise ValueError(f"method={method!r} is not supported; use 'bootstrap' or 't'")
    out = np.empty((n_paths, n_hours), dtype=np.float64)
    s2 = np.full(n_paths, fit.sigma2_next, dtype=np.float64)
    for k in range(n_hours):
        eps = np.sqrt(s2) * z[:, k]
        out[:, k] = eps
        s2 = fit.omega + fit.alpha * eps * eps + fit.beta * s2
    if drift:
        out += fit.mu
    return out / fit.scale


def stress_paths(
    fit: FHSFit,
    start_price: float,
    n_steps: int,
    n_paths: int = 200,
    *,
    seed: int | np.random.Generator = 0,
    step_seconds: int = 3600,
    drift: bool = False,
) -> np.ndarray:
    """Price paths by filtered historical simulation, anchored at the window-start price.

    Parameters
    ----------
    fit : FHSFit
        GARCH fit on the returns before the window (:func:`fit_fhs`).
    start_price : float
        Price at the window start; every path's first price.
    n_steps : int
        Number of prices per path, the start included (``n_steps - 1`` simulated steps), as the
        real price path of the backtest.
    n_paths : int
        Number of paths (200 by default).
    seed : int or numpy.random.Generator
        Seed; the same seed gives byte-identical paths.
    step_seconds : int
        Step length: 3600, a divisor of 3600 (each hourly return spread evenly over the
        sub-steps) or a multiple of 3600 (hourly returns summed).
    drift : bool
        Add the fitted mean to the hourly returns.

    Returns
    -------
    numpy.ndarray
        ``(n_paths, n_steps)`` prices; column 0 equals ``start_price``.

    Raises
    ------
    ValueError
        If ``start_price`` is not positive, ``n_steps < 1`` or ``step_seconds`` neither divides
        nor is a multiple of 3600.
    """
    if not (math.isfinite(start_price) and start_price > 0):
        raise ValueError(f"start_price must be finite and > 0, got {start_price}")
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    step = int(step_seconds)
    n_moves = n_steps - 1
    if step > 0 and 3600 % step == 0:
        m = 3600 // step
        n_hours = -(-n_moves // m)
        hourly = simulate_fhs_returns(fit, n_hours, n_paths=n_paths, seed=seed, drift=drift)
        moves = np.repeat(hourly / m, m, axis=1)[:, :n_moves]
    elif step > 0 and step % 3600 == 0:
        k = step // 3600
        hourly = simulate_fhs_returns(fit, n_moves * k, n_paths=n_paths, seed=seed, drift=drift)
        moves = hourly.reshape(n_paths, n_moves, k).sum(axis=2)
    else:
        raise ValueError(
            f"step_seconds={step_seconds} must divide 3600 (e.g. 60, 300) or be a multiple of "
            "3600; resample the price path to such a step"
        )
    log_path = np.zeros((n_paths, n_steps), dtype=np.float64)
    np.cumsum(moves, axis=1, out=log_path[:, 1:])
    return float(start_price) * np.exp(log_path)


class IntervalSummary(NamedTuple):
    """Median, central interval and 95th percentile of a figure over stress paths."""

    median: float
    lo: float
    hi: float
    p95: float
    level: float
    n: int


def interval_summary(values: ArrayLike, level: float = 0.9) -> IntervalSummary:
    """Summarize a figure over stress paths.

    ``lo``/``hi`` are the ``(1 − level)/2`` and ``(1 + level)/2`` quantiles (5 % and 95 % for
    the default 90 % interval), ``p95`` the 95 % quantile (VaR / LaR for loss figures); quantiles
    use numpy's default linear interpolation.

    Parameters
    ----------
    values : array_like
        One value per path (1-d, finite).
    level : float
        Coverage of the central interval, in (0, 1).

    Returns
    -------
    IntervalSummary
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise ValueError("values must be a non-empty 1-d array (one value per path)")
    if not np.all(np.isfinite(v)):
        raise ValueError("values have NaN or infinite entries; drop the failed paths first")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    a = (1.0 - level) / 2.0
    med, lo, hi, p95 = np.quantile(v, [0.5, a, 1.0 - a, 0.95])
    return IntervalSummary(float(med), float(lo), float(hi), float(p95), float(level), int(v.size))


def intervals_overlap(a: IntervalSummary, b: IntervalSummary) -> bool:
    """Whether the intervals ``[a.lo, a.hi]`` and ``[b.lo, b.hi]`` intersect (closed bounds)."""
    return bool(a.lo <= b.hi and b.lo <= a.hi)


class RankedEntry(NamedTuple):
    """One row of :func:`rank_with_overlaps`."""

    rank: int
    name: str
    summary: IntervalSummary
    overlaps: tuple[str, ...]


def rank_with_overlaps(
    summaries: Mapping[str, IntervalSummary], *, lower_is_better: bool = True
) -> list[RankedEntry]:
    """Rank figures by their median and state where the intervals overlap.

    Parameters
    ----------
    summaries : mapping of str to IntervalSummary
        One summary per policy (or run).
    lower_is_better : bool
        ``True`` for losses (bad debt, liquidated debt).

    Returns
    -------
    list of RankedEntry
        Best first (ties broken by name); ``overlaps`` names the other entries whose intervals
        intersect this one's, in rank order: a rank difference to any of them is not supported
        by the stress paths.
    """
    sign = 1.0 if lower_is_better else -1.0
    order = sorted(summaries, key=lambda k: (sign * summaries[k].median, k))
    return [
        RankedEntry(
            rank=i + 1,
            name=name,
            summary=summaries[name],
            overlaps=tuple(
                o for o in order if o != name and intervals_overlap(summaries[name], summaries[o])
            ),
        )
        for i, name in enumerate(order)
    ]
