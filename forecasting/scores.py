"""Forecast evaluation: QLIKE, MSE, Mincer–Zarnowitz, Diebold–Mariano and VaR backtests.

Conventions
-----------
* ``F = sigma**2`` is the forecast variance of the horizon log return; ``RV`` the realized variance
  over the same horizon (:func:`~forecasting.returns.realized_targets`).
* QLIKE (Patton 2011) is ``RV/F - log(RV/F) - 1``: zero for a perfect forecast, robust to noise
  in the variance proxy. Rows with ``RV = 0`` (flat price over the horizon) are left out of QLIKE
  and Diebold–Mariano, as the loss is undefined there.
* VaR is the **left-tail** loss of a long position. ``VaR_a = k * sigma``. When the forecasts
  carry a column ``var{L}_k`` (e.g. ``var99_k``, from :func:`forecasting.tails.var_multipliers`:
  Student-t, filtered historical simulation or EVT quantiles of the model's own past
  standardized residuals) that per-origin ``k`` is used; otherwise ``k = -q_{1-a}`` with ``q``
  the **standard normal** quantile (``var_dist="normal"``), or the *unit-variance* Student-t
  quantile ``t_nu^{-1}(1-a) * sqrt((nu-2)/nu)`` with ``var_dist="t"``. Mean return is
  taken as 0. A hit is ``realized_return < -VaR``; expected hit rate ``1 - a``. For horizons
  longer than one bar the hit sequence is thinned to non-overlapping windows (every ``h``-th
  origin) so the independence test is meaningful.
* Kupiec (1995) proportion-of-failures and Christoffersen (1998) independence and conditional
  coverage likelihood-ratio tests, chi-square with 1, 1 and 2 degrees of freedom.
* Diebold–Mariano (1995): loss differential ``d = QLIKE(model) - QLIKE(benchmark)``, long-run
  variance with the rectangular kernel and ``h - 1`` lags, the Harvey–Leybourne–Newbold (1997)
  correction and Student-t(n−1) p-values; not reported when ``n / h < 10``. A negative statistic
  means the model beats the benchmark.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
from numpy.typing import ArrayLike
from scipy import stats
from scipy.special import xlogy

from forecasting.errors import InvalidBarsError

__all__ = [
    "qlike",
    "mse",
    "MincerZarnowitz",
    "mincer_zarnowitz",
    "DieboldMariano",
    "diebold_mariano",
    "DM_MIN_N_PER_H",
    "CoverageTest",
    "kupiec_pof",
    "christoffersen",
    "var_hits",
    "score_forecasts",
]


def _pair(realized: ArrayLike, forecast: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    rv = np.asarray(realized, dtype=np.float64)
    f = np.asarray(forecast, dtype=np.float64)
    if rv.shape != f.shape:
        raise ValueError(f"realized {rv.shape} and forecast {f.shape} differ in shape")
    if np.any(f <= 0) or not np.all(np.isfinite(f)):
        raise ValueError("forecast variances must be finite and > 0")
    return rv, f


def qlike_losses(realized_var: ArrayLike, forecast_var: ArrayLike) -> np.ndarray:
    """Per-observation QLIKE ``RV/F - log(RV/F) - 1`` (NaN where ``RV <= 0``)."""
    rv, f = _pair(realized_var, forecast_var)
    ratio = rv / f
    with np.errstate(divide="ignore", invalid="ignore"):
        loss = ratio - np.log(ratio) - 1.0
    return np.where(rv > 0, loss, np.nan)


def qlike(realized_var: ArrayLike, forecast_var: ArrayLike) -> float:
    """Mean QLIKE loss (zero at a perfect forecast), over rows with ``RV > 0``.

    Parameters
    ----------
    realized_var, forecast_var : array_like
        Realized and forecast variances of the same horizon.

    Returns
    -------
    float
        Mean of ``RV/F - log(RV/F) - 1``.
    """
    loss = qlike_losses(realized_var, forecast_var)
    return float(np.nanmean(loss)) if np.any(np.isfinite(loss)) else math.nan


def mse(realized_var: ArrayLike, forecast_var: ArrayLike) -> float:
    """Mean squared error of the variance forecast, ``mean((RV - F)**2)``.

    Parameters
    ----------
    realized_var, forecast_var : array_like
        Realized and forecast variances.

    Returns
    -------
    float
        The MSE.
    """
    rv, f = _pair(realized_var, forecast_var)
    return float(np.mean((rv - f) ** 2))


@dataclass(frozen=True, kw_only=True, slots=True)
class MincerZarnowitz:
    """Mincer–Zarnowitz regression ``RV = alpha + beta * F + e`` (unbiased: 0 and 1)."""

    alpha: float
    beta: float
    r2: float
    n: int


def mincer_zarnowitz(realized_var: ArrayLike, forecast_var: ArrayLike) -> MincerZarnowitz:
    """Regress realized variance on forecast variance by OLS.

    Parameters
    ----------
    realized_var, forecast_var : array_like
        Realized and forecast variances.

    Returns
    -------
    MincerZarnowitz
        Intercept, slope, R² and number of observations.
    """
    rv, f = _pair(realized_var, forecast_var)
    n = rv.shape[0]
    if n < 3 or np.ptp(f) == 0:
        return MincerZarnowitz(alpha=math.nan, beta=math.nan, r2=math.nan, n=n)
    x = np.column_stack([np.ones(n), f])
    coef, *_ = np.linalg.lstsq(x, rv, rcond=None)
    resid = rv - x @ coef
    tss = float(np.sum((rv - rv.mean()) ** 2))
    r2 = 1.0 - float(np.sum(resid**2)) / tss if tss > 0 else math.nan
    return MincerZarnowitz(alpha=float(coef[0]), beta=float(coef[1]), r2=r2, n=n)


@dataclass(frozen=True, kw_only=True, slots=True)
class DieboldMariano:
    """Diebold–Mariano test of equal predictive accuracy (negative stat: first forecast better)."""

    stat: float
    pvalue: float
    mean_loss_diff: float
    n: int
    lags: int


#: No Diebold–Mariano test is reported when fewer than this many horizons fit into the sample.
DM_MIN_N_PER_H = 10


def diebold_mariano(
    loss_a: ArrayLike,
    loss_b: ArrayLike,
    *,
    horizon_bars: int = 1,
    lags: int | None = None,
    kernel: Literal["rectangular", "bartlett"] = "rectangular",
    hln: bool = True,
    min_n_per_h: float = DM_MIN_N_PER_H,
) -> DieboldMariano:
    """Diebold–Mariano test of equal accuracy, with the Harvey–Leybourne–Newbold correction.

    For an ``h``-step forecast the loss differential ``d`` of overlapping targets is MA(h−1), so
    its long-run variance is ``γ0 + 2 Σ_{k=1}^{h−1} γk`` — the **rectangular** (truncated) kernel
    with ``h − 1`` lags, as in Diebold & Mariano (1995). Harvey, Leybourne & Newbold (1997)
    multiply the statistic by ``sqrt((n + 1 − 2h + h(h−1)/n) / n)`` and compare it with Student-t
    with ``n − 1`` degrees of freedom; together they bring the size close to nominal where the
    Bartlett (Newey–West) kernel with ``h − 1`` lags is badly oversized at ``h = 24``
    (``tests/test_forecasting_scores.py`` simulates both). If the rectangular variance is not
    positive (possible in small samples), the Bartlett estimate with the same lags is used.

    Parameters
    ----------
    loss_a, loss_b : array_like
        Per-origin losses of the candidate and of the benchmark (same origins, same order).
    horizon_bars : int
        Forecast horizon ``h`` in bars.
    lags : int, optional
        Autocovariance lags; default ``h − 1``.
    kernel : {"rectangular", "bartlett"}
        Weights of the autocovariances: 1 (rectangular) or ``1 − k/(lags+1)`` (Bartlett).
    hln : bool
        Apply the HLN small-sample correction and the t(n−1) reference distribution; with
        ``False`` the plain statistic is compared with the standard normal.
    min_n_per_h : float
        No test (NaN statistic and p-value) when ``n / h`` is below this (default 10): with
        fewer than ~10 independent horizons the variance estimate is meaningless.

    Returns
    -------
    DieboldMariano
        Statistic (negative: ``loss_a`` smaller), two-sided p-value, mean loss difference.
    """
    a = np.asarray(loss_a, dtype=np.float64)
    b = np.asarray(loss_b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"loss series differ in shape: {a.shape} vs {b.shape}")
    if kernel not in ("rectangular", "bartlett"):
        raise ValueError(f"kernel={kernel!r}; use 'rectangular' or 'bartlett'")
    h = max(1, int(horizon_bars))
    d = a - b
    d = d[np.isfinite(d)]
    n = d.shape[0]
    lags = h - 1 if lags is None else int(lags)
    lags = max(0, min(lags, n - 1)) if n > 1 else 0
    dbar = float(d.mean()) if n else math.nan
    if n < 2 or n < min_n_per_h * h:
        return DieboldMariano(stat=math.nan, pvalue=math.nan, mean_loss_diff=dbar, n=n, lags=lags)
    dc = d - dbar
    gamma = [float(dc @ dc) / n] + [float(dc[k:] @ dc[:-k]) / n for k in range(1, lags + 1)]

    def _lrv(weights: str) -> float:
        out = gamma[0]
        for k in range(1, lags + 1):
            w = 1.0 if weights == "rectangular" else 1.0 - k / (lags + 1.0)
            out += 2.0 * w * gamma[k]
        return out

    var = _lrv(kernel)
    if var <= 0:
        var = _lrv("bartlett")
    if var <= 0:
        var = gamma[0]
    if var <= 0:
        return DieboldMariano(stat=math.nan, pvalue=math.nan, mean_loss_diff=dbar, n=n, lags=lags)
    stat = dbar / math.sqrt(var / n)
    if hln:
        stat *= math.sqrt(max(n + 1.0 - 2.0 * h + h * (h - 1.0) / n, 0.0) / n)
        pvalue = float(2.0 * stats.t.sf(abs(stat), n - 1))
    else:
        pvalue = float(2.0 * stats.norm.sf(abs(stat)))
    return DieboldMariano(stat=float(stat), pvalue=pvalue, mean_loss_diff=dbar, n=n, lags=lags)


@dataclass(frozen=True, kw_only=True, slots=True)
class CoverageTest:
    """VaR backtest at one confidence level: hit rate, Kupiec and Christoffersen tests."""

    level: float
    n: int
    hits: int
    hit_rate: float
    expected_rate: float
    kupiec_lr: float
    kupiec_pvalue: float
    independence_lr: float
    independence_pvalue: float
    cc_lr: float
    cc_pvalue: float


def _kupiec_lr(n: int, x: int, p: float) -> float:
    if n == 0:
        return math.nan
    pi = x / n
    ll0 = xlogy(n - x, 1.0 - p) + xlogy(x, p)
    ll1 = xlogy(n - x, 1.0 - pi) + xlogy(x, pi)
    return float(max(0.0, -2.0 * (ll0 - ll1)))


def kupiec_pof(hits: ArrayLike, expected_rate: float) -> tuple[float, float]:
    """Kupiec proportion-of-failures likelihood-ratio test.

    Parameters
    ----------
    hits : array_like of bool
        VaR exceedances.
    expected_rate : float
        Expected exceedance probability (0.05 for a 95 % VaR).

    Returns
    -------
    tuple of float
        ``(LR, p-value)``, LR ~ chi2(1) under correct coverage.
    """
    h = np.asarray(hits, dtype=bool)
    lr = _kupiec_lr(h.shape[0], int(h.sum()), float(expected_rate))
    return lr, float(stats.chi2.sf(lr, 1)) if math.isfinite(lr) else math.nan


def _independence_lr(h: np.ndarray) -> float:
    if h.shape[0] < 2:
        return math.nan
    prev, cur = h[:-1], h[1:]
    n00 = int(np.sum(~prev & ~cur))
    n01 = int(np.sum(~prev & cur))
    n10 = int(np.sum(prev & ~cur))
    n11 = int(np.sum(prev & cur))
    pi01 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi11 = n11 / (n10 + n11) if n10 + n11 else 0.0
    pi = (n01 + n11) / (n00 + n01 + n10 + n11)
    ll0 = xlogy(n00 + n10, 1.0 - pi) + xlogy(n01 + n11, pi)
    ll1 = xlogy(n00, 1.0 - pi01) + xlogy(n01, pi01) + xlogy(n10, 1.0 - pi11) + xlogy(n11, pi11)
    return float(max(0.0, -2.0 * (ll0 - ll1)))


def christoffersen(
    hits: ArrayLike, expected_rate: float, *, level: float | None = None
) -> CoverageTest:
    """Kupiec and Christoffersen independence / conditional-coverage tests.

    Parameters
    ----------
    hits : array_like of bool
        VaR exceedances in time order.
    expected_rate : float
        Expected exceedance probability ``1 - level``.
    level : float, optional
        VaR confidence level, stored in the result (default ``1 - expected_rate``).

    Returns
    -------
    CoverageTest
        Hit rate and the three likelihood-ratio tests with their chi-square p-values.
    """
    h = np.asarray(hits, dtype=bool)
    n, x = h.shape[0], int(h.sum())
    lr_pof = _kupiec_lr(n, x, float(expected_rate))
    lr_ind = _independence_lr(h)
    lr_cc = lr_pof + lr_ind

    def _p(lr: float, df: int) -> float:
        return float(stats.chi2.sf(lr, df)) if math.isfinite(lr) else math.nan

    return CoverageTest(
        level=float(1.0 - expected_rate if level is None else level),
        n=n,
        hits=x,
        hit_rate=x / n if n else math.nan,
        expected_rate=float(expected_rate),
        kupiec_lr=lr_pof,
        kupiec_pvalue=_p(lr_pof, 1),
        independence_lr=lr_ind,
        independence_pvalue=_p(lr_ind, 1),
        cc_lr=lr_cc,
        cc_pvalue=_p(lr_cc, 2),
    )


def var_quantile(
    level: float, *, var_dist: Literal["normal", "t"] = "normal", t_df: float = 5.0
) -> float:
    """Positive multiplier ``k`` with ``VaR_level = k * sigma`` (left tail, unit variance)."""
    if var_dist == "normal":
        return float(-stats.norm.ppf(1.0 - level))
    if var_dist == "t":
        if t_df <= 2:
            raise ValueError(f"t_df must be > 2 for a finite variance, got {t_df}")
        return float(-stats.t.ppf(1.0 - level, t_df) * math.sqrt((t_df - 2.0) / t_df))
    raise ValueError(f"var_dist={var_dist!r}; use 'normal' or 't'")


def var_hits(
    realized_return: ArrayLike,
    sigma: ArrayLike,
    level: float,
    *,
    var_dist: Literal["normal", "t"] = "normal",
    t_df: float = 5.0,
) -> np.ndarray:
    """VaR exceedances ``realized_return < -k * sigma`` (see the module notes for ``k``).

    Parameters
    ----------
    realized_return, sigma : array_like
        Realized horizon log returns and forecast sigmas.
    level : float
        VaR confidence level, e.g. 0.95 or 0.99.
    var_dist : {"normal", "t"}
        Quantile family.
    t_df : float
        Degrees of freedom for ``var_dist="t"``.

    Returns
    -------
    numpy.ndarray of bool
        Exceedance indicators.
    """
    r = np.asarray(realized_return, dtype=np.float64)
    s = np.asarray(sigma, dtype=np.float64)
    return r < -var_quantile(level, var_dist=var_dist, t_df=t_df) * s


def score_forecasts(
    forecasts: pl.DataFrame,
    realized: pl.DataFrame,
    *,
    benchmark: str | None = "garch",
    var_levels: Sequence[float] = (0.95, 0.99),
    var_dist: Literal["normal", "t"] = "normal",
    t_df: float = 5.0,
    bar_hours: float = 1.0,
) -> pl.DataFrame:
    """Score walk-forward forecasts against realized outcomes.

    Parameters
    ----------
    forecasts : polars.DataFrame
        ``model, origin_ts, horizon_hours, sigma`` (one or many models, from
        :func:`~forecasting.walkforward.walk_forward`).
    realized : polars.DataFrame
        ``origin_ts, horizon_hours, realized_return, realized_var`` from
        :func:`~forecasting.returns.realized_targets` (several horizons may be stacked).
    benchmark : str, optional
        Model for the Diebold–Mariano comparison (QLIKE loss); skipped if absent.
    var_levels : sequence of float
        VaR confidence levels.
    var_dist : {"normal", "t"}
        Quantile family for VaR (normal by default).
    t_df : float
        Student-t degrees of freedom for ``var_dist="t"``.
    bar_hours : float
        Bar length in hours, to turn ``horizon_hours`` into bars.

    Returns
    -------
    polars.DataFrame
        Long frame ``model, horizon_hours, metric, value``. Metrics: ``n``, ``qlike``, ``mse``,
        ``mz_alpha``, ``mz_beta``, ``mz_r2``, ``dm_stat``, ``dm_pvalue`` (vs ``benchmark``), and
        per VaR level ``L`` (e.g. ``var95``): ``{L}_n``, ``{L}_hit_rate``, ``{L}_kupiec_lr``,
        ``{L}_kupiec_p``, ``{L}_ind_lr``, ``{L}_ind_p``, ``{L}_cc_lr``, ``{L}_cc_p``.
    """
    need_f = {"model", "origin_ts", "horizon_hours", "sigma"}
    need_r = {"origin_ts", "horizon_hours", "realized_return", "realized_var"}
    for frame, need, what in ((forecasts, need_f, "forecasts"), (realized, need_r, "realized")):
        if not need <= set(frame.columns):
            raise InvalidBarsError(
                f"{what} lack columns {sorted(need - set(frame.columns))}; build them with "
                "walk_forward(...) and realized_targets(...)"
            )
    k_cols = [c for c in forecasts.columns if c.startswith("var") and c.endswith("_k")]
    joined = (
        forecasts.select([*sorted(need_f), *k_cols])
        .join(
            realized.select(sorted(need_r)).cast({"origin_ts": forecasts.schema["origin_ts"]}),
            on=["origin_ts", "horizon_hours"],
            how="inner",
        )
        .drop_nulls()
        .filter(pl.col("sigma") > 0)
        .sort("model", "horizon_hours", "origin_ts")
    )
    rows: list[tuple[str, float, str, float]] = []
    for (model, hours), grp in joined.group_by(["model", "horizon_hours"], maintain_order=True):
        model, hours = str(model), float(hours)  # type: ignore[arg-type]
        h = max(1, int(round(hours / bar_hours)))
        f = grp["sigma"].to_numpy() ** 2
        rv = grp["realized_var"].to_numpy()
        mz = mincer_zarnowitz(rv, f)
        out = {
            "n": float(grp.height),
            "qlike": qlike(rv, f),
            "mse": mse(rv, f),
            "mz_alpha": mz.alpha,
            "mz_beta": mz.beta,
            "mz_r2": mz.r2,
        }
        if benchmark is not None and model != benchmark:
            bench = joined.filter(
                (pl.col("model") == benchmark) & (pl.col("horizon_hours") == hours)
            )
            if bench.height:
                pair = grp.join(
                    bench.select("origin_ts", pl.col("sigma").alias("sigma_b")),
                    on="origin_ts",
                    how="inner",
                )
                la = qlike_losses(pair["realized_var"].to_numpy(), pair["sigma"].to_numpy() ** 2)
                lb = qlike_losses(pair["realized_var"].to_numpy(), pair["sigma_b"].to_numpy() ** 2)
                dm = diebold_mariano(la, lb, horizon_bars=h)
                out["dm_stat"], out["dm_pvalue"] = dm.stat, dm.pvalue
        thin = grp.gather_every(h) if h > 1 else grp
        for level in var_levels:
            tag = f"var{round(level * 100):d}"
            if f"{tag}_k" in thin.columns:  # calibrated per-origin multiplier (forecasting.tails)
                hits = thin["realized_return"].to_numpy() < -(
                    thin[f"{tag}_k"].to_numpy() * thin["sigma"].to_numpy()
                )
            else:
                hits = var_hits(
                    thin["realized_return"].to_numpy(),
                    thin["sigma"].to_numpy(),
                    level,
                    var_dist=var_dist,
                    t_df=t_df,
                )
            ct = christoffersen(hits, 1.0 - level, level=level)
            out.update(
                {
                    f"{tag}_n": float(ct.n),
                    f"{tag}_hit_rate": ct.hit_rate,
                    f"{tag}_kupiec_lr": ct.kupiec_lr,
                    f"{tag}_kupiec_p": ct.kupiec_pvalue,
                    f"{tag}_ind_lr": ct.independence_lr,
                    f"{tag}_ind_p": ct.independence_pvalue,
                    f"{tag}_cc_lr": ct.cc_lr,
                    f"{tag}_cc_p": ct.cc_pvalue,
                }
            )
        rows.extend((model, hours, k, float(v)) for k, v in out.items())
    return pl.DataFrame(
        rows,
        schema={
            "model": pl.String,
            "horizon_hours": pl.Float64,
            "metric": pl.String,
            "value": pl.Float64,
        },
        orient="row",
    )
