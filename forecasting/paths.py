r"""Simulated price paths from the walk-forward GARCH fit at an origin (the stress-path API).

:func:`fit_at_origin` fits the project's :class:`~forecasting.models.GARCH` (Student-t errors,
as in :func:`~forecasting.walk_forward`) on the hourly log returns up to the close of the origin
bar — nothing later — and turns it into an :class:`~forecasting.stress.FHSFit`: the parameters,
the standardized residuals ``ẑ_t = ε_t / σ_t`` of the fit and the state ``σ²_{T+1}``, which is
exactly the model's one-step forecast at the origin. :func:`simulate_paths` then draws price
paths ``P_k = P_0 · exp(Σ_{j≤k} r*_j)`` with ``r*_k = σ*_k z*_k`` and the GARCH recursion
``σ*²_{k+1} = ω + α (σ*_k z*_k)² + β σ*²_k`` from ``σ*²_1 = σ²_{T+1}``:

* ``method="bootstrap"`` — filtered historical simulation: ``z*`` resampled from the ẑ,
  rescaled to unit mean square so the simulated one-step variance is the forecast variance;
* ``method="t"`` — Student-t innovations with the fitted ``ν``, scaled to unit variance.

The recursion is :func:`forecasting.stress.simulate_fhs_returns`, the one behind the
backtester's stress intervals (:func:`forecasting.stress.stress_paths`). Every draw takes a seed:
the same inputs and seed give byte-identical paths.
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import polars as pl

from forecasting.errors import InvalidBarsError, not_enough_history
from forecasting.models._arch import arch_backcast
from forecasting.models.garch import GARCH, garch_variance
from forecasting.returns import TS, check_bars
from forecasting.stress import MIN_FIT_RETURNS, FHSFit, simulate_fhs_returns

__all__ = ["fhs_from_garch", "fit_at_origin", "simulate_paths"]


def fhs_from_garch(model: GARCH, *, last_price: float = math.nan) -> FHSFit:
    """Turn a fitted :class:`~forecasting.models.GARCH` into an :class:`FHSFit`.

    Parameters
    ----------
    model : GARCH
        A fitted GARCH(1,1) (not GJR or EGARCH: the simulation recursion is GARCH(1,1)).
    last_price : float
        Price at the end of the fitted sample (the paths' start).

    Returns
    -------
    FHSFit
        Parameters in the model's scaled units; ``sigma2_next`` is the model's one-step forecast
        after its last fitted return, ``std_resid`` the standardized residuals of the fit.
    """
    if type(model) is not GARCH:
        raise TypeError(f"fhs_from_garch needs a fitted GARCH, got {type(model).__name__}")
    model._check_fitted()
    r = model._train[0]
    eps = r * model.scale_ - model.params_[0]
    omega, alpha, _, beta = model._gjr_params()
    s2 = garch_variance(eps, omega, alpha, 0.0, beta, arch_backcast(eps))
    z = eps / np.sqrt(s2[:-1])
    return FHSFit(
        mu=float(model.params_[0]),
        omega=omega,
        alpha=alpha,
        beta=beta,
        dist=model._arch_dist(),
        dist_params=tuple(float(v) for v in model.dist_params_),
        scale=float(model.scale_),
        std_resid=z[np.isfinite(z)],
        sigma2_next=float(s2[-1]),
        n_obs=int(r.shape[0]),
        converged=bool(model.converged_),
        loglikelihood=float(model.loglikelihood_),
        last_price=float(last_price),
    )


def fit_at_origin(
    bars: pl.DataFrame,
    origin_ts: datetime,
    *,
    dist: str = "t",
    window_bars: int | None = None,
) -> FHSFit:
    """The walk-forward GARCH fit at one origin, ready for :func:`simulate_paths`.

    Parameters
    ----------
    bars : polars.DataFrame
        Bars with ``ts`` (bar open) and ``close`` on a regular grid.
    origin_ts : datetime
        Open time of the origin bar: the fit uses the closes up to and including that bar's close
        and nothing after it (as :func:`~forecasting.walk_forward`'s forecast at that origin).
    dist : {"t", "skewt", "normal"}
        Error distribution of the fit (Student-t by default, as the ``garch`` model).
    window_bars : int, optional
        Use only the last ``window_bars`` returns (a rolling window); all of them by default.

    Returns
    -------
    FHSFit
        With ``last_price`` = the origin bar's close.

    Raises
    ------
    InvalidBarsError
        If ``origin_ts`` is not a bar of ``bars``.
    NotEnoughHistoryError
        If fewer than 100 returns precede the origin.
    """
    bars = check_bars(bars)
    ts = bars[TS]
    origin = pl.Series([origin_ts]).cast(ts.dtype)[0]
    i = int(ts.search_sorted(origin, side="left"))
    if i >= bars.height or ts[i] != origin:
        raise InvalidBarsError(f"origin_ts {origin_ts} is not a bar of the series (column 'ts')")
    close = bars["close"].cast(pl.Float64).to_numpy()[: i + 1]
    returns = np.diff(np.log(close))
    if window_bars is not None:
        returns = returns[-int(window_bars) :]
    if returns.shape[0] < MIN_FIT_RETURNS:
        raise not_enough_history(
            "fit_at_origin", returns.shape[0], MIN_FIT_RETURNS, "pick a later origin"
        )
    model = GARCH(dist=dist).fit(returns)
    return fhs_from_garch(model, last_price=float(close[-1]))


def simulate_paths(
    fitted: FHSFit | GARCH,
    n_paths: int,
    horizon: int,
    method: str = "bootstrap",
    seed: int | np.random.Generator = 0,
    *,
    start_price: float | None = None,
    drift: bool = False,
) -> np.ndarray:
    """Price paths over the next ``horizon`` hours from a fit at an origin.

    Parameters
    ----------
    fitted : FHSFit or GARCH
        :func:`fit_at_origin`'s output, :func:`~forecasting.stress.fit_fhs`'s, or a fitted
        :class:`~forecasting.models.GARCH`.
    n_paths : int
        Number of paths.
    horizon : int
        Number of simulated hours.
    method : {"bootstrap", "t"}
        Filtered historical simulation (resampled standardized residuals, rescaled to unit mean
        square) or Student-t innovations with the fitted ``ν``.
    seed : int or numpy.random.Generator
        Seed; the same seed gives byte-identical paths.
    start_price : float, optional
        First price of every path; the fit's ``last_price`` (the origin close) by default.
    drift : bool
        Add the fitted mean to the hourly returns (off: a mean fitted on calm data is noise).

    Returns
    -------
    numpy.ndarray
        ``(n_paths, horizon + 1)`` prices; column 0 is the start price, column ``k`` the price
        ``k`` hours after the origin.

    Raises
    ------
    ValueError
        For an unknown method, ``method="t"`` on a non-t fit, a bad start price or sizes.
    """
    fit = fhs_from_garch(fitted) if isinstance(fitted, GARCH) else fitted
    if not isinstance(fit, FHSFit):
        raise TypeError(f"fitted must be an FHSFit or a fitted GARCH, got {type(fitted).__name__}")
    p0 = fit.last_price if start_price is None else float(start_price)
    if not (math.isfinite(p0) and p0 > 0):
        raise ValueError(
            f"start price must be finite and > 0, got {p0}; pass start_price= (fits from "
            "returns alone do not know the price)"
        )
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1 hour, got {horizon}")
    r = simulate_fhs_returns(
        fit,
        int(horizon),
        n_paths=int(n_paths),
        seed=seed,
        drift=drift,
        method=method,
        standardize=True,
    )
    log_path = np.zeros((r.shape[0], r.shape[1] + 1), dtype=np.float64)
    np.cumsum(r, axis=1, out=log_path[:, 1:])
    return p0 * np.exp(log_path)
