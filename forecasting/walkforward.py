"""Walk-forward (out-of-sample) volatility forecasts.

At each origin bar ``i`` (open time ``origin_ts``) the forecast uses the closes up to and including
bar ``i``'s close — nothing later — and targets the log return over the next ``h`` bars, i.e. from
``close_i`` to ``close_{i+h}``. Parameters are re-estimated every ``refit_every`` bars on an
expanding or rolling window ending at the refit origin; between refits the fitted model's state
(conditional variance, HAR features) is updated with the new bars while its parameters stay fixed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

import numpy as np
import polars as pl
from sklearn.base import clone

from forecasting.errors import InvalidBarsError, not_enough_history
from forecasting.models import MODELS, VolatilityModel, make_model
from forecasting.returns import TS, check_bars, infer_bar_seconds, regularize_bars

__all__ = ["walk_forward", "FORECAST_SCHEMA", "DRIFT_THRESHOLD"]

#: Critical value of the drift test that triggers an early refit (``drift_check_every``).
DRIFT_THRESHOLD = 3.0

#: Schema of the frame returned by :func:`walk_forward`.
FORECAST_SCHEMA = {
    "model": pl.String,
    "origin_ts": None,  # same Datetime dtype as the input ``ts``
    "horizon_hours": pl.Float64,
    "sigma": pl.Float64,
}


def _model_name(model: VolatilityModel) -> str:
    for key, factory in MODELS.items():
        if type(model) is factory:
            return key
    return getattr(model, "name", type(model).__name__.lower())


def walk_forward(
    bars: pl.DataFrame,
    model: VolatilityModel | str,
    *,
    horizon_bars: int | Sequence[int] = 1,
    refit_every: int = 24,
    window: Literal["expanding", "rolling"] = "expanding",
    window_bars: int | None = None,
    min_train: int = 720,
    start: datetime | None = None,
    end: datetime | None = None,
    exog_cols: Sequence[str] = (),
    rv_col: str | None = None,
    model_name: str | None = None,
    bar_seconds: int | None = None,
    fill_gaps: bool = True,
    drift_check_every: int | None = None,
    drift_threshold: float = DRIFT_THRESHOLD,
) -> pl.DataFrame:
    """Walk-forward sigma forecasts of one model.

    Parameters
    ----------
    bars : polars.DataFrame
        Bars with ``ts`` (bar open, UTC) and ``close``; extra columns may hold per-bar realized
        variance (``rv_col``) and exogenous features (``exog_cols``, aligned as of each bar's
        close with :func:`~forecasting.features.align_features`).
    model : VolatilityModel or str
        An estimator or a name of :data:`~forecasting.models.MODELS`. It is cloned, never mutated.
    horizon_bars : int or sequence of int
        Forecast horizon(s) in bars (1 and 24 on hourly bars for 1 h and 24 h).
    refit_every : int
        Re-estimate the parameters every ``refit_every`` origins (1 = at every bar).
    window : {"expanding", "rolling"}
        Estimation window: all returns since the first bar, or the last ``window_bars``.
    window_bars : int, optional
        Length of the rolling window in returns (required for ``window="rolling"``).
    min_train : int
        Minimum number of returns before the first origin.
    start, end : datetime, optional
        Forecast only at origins with ``start <= origin_ts < end``; earlier bars are still used
        for estimation.
    exog_cols : sequence of str
        Exogenous feature columns (used by the machine-learning models; nulls become NaN).
    rv_col : str, optional
        Per-bar realized variance column (from finer bars); squared returns by default.
    model_name : str, optional
        Value of the ``model`` column; the registry name by default.
    bar_seconds : int, optional
        Bar length; inferred when omitted.
    fill_gaps : bool
        Insert flat bars for missing timestamps (causal forward fill) instead of raising.
    drift_check_every : int, optional
        Refit on a schedule **and** on drift: every ``drift_check_every`` origins (e.g. 24) the
        one-step standardized residuals ``z = r / σ`` of the returns since the last refit are
        tested, and the model is refit early when ``|mean(z²) − 1| > drift_threshold ·
        std(z²) / sqrt(n)`` (a variance-ratio z-test: the fitted model no longer matches the
        current volatility level). ``refit_every`` is then the longest time between refits
        (e.g. 168). The test uses only returns known at the check origin.
    drift_threshold : float
        Critical value of the drift test (3: a false alarm rate well under 1 % per check for
        a correct model).

    Returns
    -------
    polars.DataFrame
        ``model``, ``origin_ts``, ``horizon_hours``, ``sigma`` (standard deviation of the log
        return over the horizon, as a fraction), sorted by horizon then origin.

    Raises
    ------
    NotEnoughHistoryError
        If fewer than ``min_train`` (or the model's minimum) returns precede the first origin.
    InvalidBarsError
        If the bars are malformed, or irregular with ``fill_gaps=False``.
    """
    est = make_model(model) if isinstance(model, str) else clone(model)
    name = model_name or _model_name(est)
    horizons = sorted(
        {int(h) for h in ([horizon_bars] if np.isscalar(horizon_bars) else horizon_bars)}
    )
    if not horizons or horizons[0] < 1:
        raise ValueError(f"horizon_bars must be positive integers, got {horizon_bars!r}")
    if refit_every < 1:
        raise ValueError(f"refit_every must be >= 1, got {refit_every}")
    if window not in ("expanding", "rolling"):
        raise ValueError(f"window must be 'expanding' or 'rolling', got {window!r}")
    if "horizons" in est.get_params():
        est.set_params(horizons=tuple(horizons))

    bars = check_bars(bars)
    step = bar_seconds or infer_bar_seconds(bars[TS])
    gaps = bars[TS].diff().drop_nulls().dt.total_seconds() != step
    if gaps.any():
        if not fill_gaps:
            raise InvalidBarsError(
                f"bars are not on a regular {step}s grid ({int(gaps.sum())} gaps); call "
                "forecasting.regularize_bars(bars) or pass fill_gaps=True"
            )
        bars = regularize_bars(bars, bar_seconds=step)
    missing = [c for c in (*exog_cols, *([rv_col] if rv_col else [])) if c not in bars.columns]
    if missing:
        raise InvalidBarsError(f"columns {missing} are not in bars; columns: {bars.columns}")

    ts = bars[TS]
    returns = np.diff(np.log(bars["close"].cast(pl.Float64).to_numpy()))
    exog = None
    if exog_cols:
        exog = bars.select(pl.col(c).cast(pl.Float64) for c in exog_cols).to_numpy()[1:]
        exog = np.where(np.isnan(exog), np.nan, exog)
    rv = None
    if rv_col:
        rv = bars[rv_col].cast(pl.Float64).to_numpy()[1:]
        if np.isnan(rv).any():
            raise InvalidBarsError(
                f"column {rv_col!r} has nulls; fill them (e.g. with squared returns) first"
            )

    n_bars = bars.height
    need = max(int(min_train), est.min_train_bars)
    if start is not None:
        first = int(ts.search_sorted(_as_ts(start, ts.dtype), side="left"))
        if first < need:
            raise not_enough_history(
                f"walk_forward from start={start}",
                first,
                need,
                "Load more bars before `start`, lower min_train, or start later.",
            )
    else:
        first = need
        if first > n_bars - 1:
            raise not_enough_history(
                "walk_forward",
                n_bars - 1,
                need,
                "Load more bars or lower min_train (it counts returns before the first origin).",
            )
    stop = n_bars
    if end is not None:
        stop = min(stop, int(ts.search_sorted(_as_ts(end, ts.dtype), side="left")))
    if window == "rolling":
        if window_bars is None or window_bars < est.min_train_bars:
            raise ValueError(
                f"window='rolling' needs window_bars >= {est.min_train_bars} (the model's "
                f"minimum), got {window_bars}"
            )
    if first >= stop:
        return _empty(ts.dtype)

    origin_idx: list[np.ndarray] = []
    sigmas: dict[int, list[np.ndarray]] = {h: [] for h in horizons}
    block = int(refit_every) if drift_check_every is None else int(drift_check_every)
    if block < 1:
        raise ValueError(f"drift_check_every must be >= 1, got {drift_check_every}")
    last_fit, lo = -1, 0
    for refit in range(first, stop, block):
        due = last_fit < 0 or refit - last_fit >= int(refit_every)
        if not due and drift_check_every is not None:
            due = _drift(est, returns, lo, last_fit, refit, drift_threshold)
        if due:
            lo = 0 if window == "expanding" else max(0, refit - int(window_bars))  # type: ignore[arg-type]
            est.fit(returns[lo:refit], _rows(exog, lo, refit), rv=_rows(rv, lo, refit))
            last_fit = refit
        block_end = min(refit + block, stop)
        k = block_end - refit
        seg = slice(lo, block_end - 1)
        for h in horizons:
            sigmas[h].append(
                est.predict_path(
                    returns[seg],
                    _rows(exog, lo, block_end - 1),
                    rv=_rows(rv, lo, block_end - 1),
                    horizon_bars=h,
                    n_last=k,
                )
            )
        origin_idx.append(np.arange(refit, block_end))
    idx = np.concatenate(origin_idx)
    origin_ts = ts.gather(idx)
    frames = [
        pl.DataFrame(
            {
                "model": pl.Series([name] * idx.shape[0], dtype=pl.String),
                "origin_ts": origin_ts,
                "horizon_hours": pl.Series([h * step / 3600.0] * idx.shape[0], dtype=pl.Float64),
                "sigma": pl.Series(np.concatenate(sigmas[h]), dtype=pl.Float64),
            }
        )
        for h in horizons
    ]
    return pl.concat(frames)


def _drift(
    est: VolatilityModel,
    returns: np.ndarray,
    lo: int,
    last_fit: int,
    now: int,
    threshold: float,
) -> bool:
    """Variance-ratio test on the one-step residuals of ``returns[last_fit:now]`` (known now)."""
    n = now - last_fit
    if n < 2 or last_fit - 1 < lo:
        return False
    # sigma at origin m forecasts returns[m + 1]: origins last_fit-1 .. now-2
    sig = est.predict_path(returns[lo : now - 1], horizon_bars=1, n_last=n)
    ok = np.isfinite(sig) & (sig > 0)
    if ok.sum() < 2:
        return False
    z2 = (returns[last_fit:now][ok] / sig[ok]) ** 2
    sd = float(z2.std())
    if sd == 0:
        return False
    return bool(abs(float(z2.mean()) - 1.0) > threshold * sd / np.sqrt(z2.shape[0]))


def _rows(arr: np.ndarray | None, lo: int, hi: int) -> np.ndarray | None:
    return None if arr is None else arr[lo:hi]


def _as_ts(value: datetime, dtype: pl.DataType) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return pl.Series([value]).cast(dtype)[0]


def _empty(ts_dtype: pl.DataType) -> pl.DataFrame:
    schema = dict(FORECAST_SCHEMA)
    schema["origin_ts"] = ts_dtype
    return pl.DataFrame(schema=schema)
