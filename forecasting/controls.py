r"""Control threshold paths for a forecast-driven margin policy, and the captured share.

A forecast-driven run (``dynamic_ltv`` fed by a model's threshold path) is evidence only next to
control runs that share everything but the threshold path (DESIGN, "Evidence"):

* **constant** — one threshold for the whole window with the model's average tightening;
* **lagged realized** — no model: the horizon volatility is the trailing realized volatility;
* **shuffled** — the model's own thresholds, permuted within the window (seeded);
* **oracle** — the volatility that actually followed (perfect foresight, an upper bound).

The lagged-realized and oracle paths use *the same* σ → threshold mapping as the model, i.e.
:func:`forecasting.margin.liquidation_threshold_path` (solvency threshold, band, ramp) and the same
as-of-backward alignment to the step times as the backtest pipeline: each step takes the last
threshold whose ``ts`` is at or before the step.

Timing
------
A return row ``(ts, ret)`` (as from :func:`forecasting.returns.log_returns`) ends at
``e = ts + Δ`` (``Δ`` = return bar length). The forecast made at origin ``o`` may use prices up to
the close of the origin bar, ``c = o + bar_seconds``, and its threshold applies from ``c``.

* trailing (lagged realized), window ``W``: returns with ``c − W < e ≤ c``;
* future (oracle), horizon ``H``: returns with ``c < e ≤ c + H``.

Both are scaled to the horizon from the observed variance rate,

    σ_H² = H / (n·Δ) · Σ r²        (= H/W · Σ r² for a full window of n = W/Δ returns),

so a 24 h window and a 24 h horizon give ``σ_24h = sqrt(Σ_{last 24 h} r²)``. A window covering less
than ``min_coverage`` of its nominal length (gaps, data edges) raises
:class:`~forecasting.errors.NotEnoughHistoryError`.

Walk-forward guarantee: the lagged-realized threshold at a step ``s`` depends only on returns that
end at or before ``s`` (origins with ``o + bar_seconds ≤ s``, windows ending at ``o + bar_seconds``,
a ramp that only looks back). The oracle deliberately looks ahead.

Captured share
--------------
For a loss-type metric (lower is better; bad debt, liquidated debt)

    captured_share = (best_control − model) / (best_control − oracle),

``best_control`` = the lowest control value. For a gain-type metric (``loss=False``) the best
control is the highest one and the same formula applies (numerator and denominator both flip
sign). 1 = the model captures all of the oracle's gain over the best control, 0 = none,
negative = worse than the best control, > 1 = better than the oracle. ``NaN`` when the oracle does
not beat the best control by more than ``atol`` (nothing to capture) or when a value is not
finite; see :func:`captured_share`.

Import path: ``from forecasting.controls import build_control_paths, captured_share``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar, NamedTuple

import numpy as np
import polars as pl
from numpy.typing import ArrayLike

from forecasting.errors import InvalidBarsError, not_enough_history
from forecasting.margin import MarginPolicy, liquidation_threshold_path
from forecasting.returns import infer_bar_seconds

__all__ = [
    "CONTROL_NAMES",
    "CapturedShare",
    "ControlPaths",
    "build_control_paths",
    "captured_share",
    "constant_control",
    "default_origins",
    "future_realized_sigma",
    "lagged_realized_control",
    "oracle_control",
    "shuffled_control",
    "trailing_realized_sigma",
]

#: Names of the controls, in reporting order (the oracle is the upper bound, not a control to beat).
CONTROL_NAMES: tuple[str, ...] = ("constant", "lagged_realized", "shuffled", "oracle")

TimesLike = pl.Series | np.ndarray | Sequence[datetime]
_US = 1_000_000


# -- time helpers ----------
def _epoch_us(ts: TimesLike, what: str) -> np.ndarray:
    """Timestamps → int64 microseconds since the epoch (naive numpy datetimes are UTC)."""
    if isinstance(ts, pl.Series):
        series = ts
    else:
        arr = np.asarray(ts)
        if np.issubdtype(arr.dtype, np.datetime64):
            return arr.astype("datetime64[us]").astype(np.int64)
        series = pl.Series(what, list(arr))
    if not isinstance(series.dtype, pl.Datetime):
        raise InvalidBarsError(
            f"{what} must be datetimes (polars Datetime, numpy datetime64 or datetime objects), "
            f"got {series.dtype}"
        )
    if series.null_count():
        raise InvalidBarsError(f"{what} has null timestamps; drop them first")
    return series.dt.epoch("us").to_numpy().astype(np.int64)


def _check_increasing(us: np.ndarray, what: str) -> None:
    if us.size == 0:
        raise InvalidBarsError(f"{what} is empty; pass at least one timestamp")
    if np.any(np.diff(us) <= 0):
        raise InvalidBarsError(f"{what} must be strictly increasing; sort and deduplicate")


def _origin_frame(origins_us: np.ndarray, sigma: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "origin_ts": pl.Series(origins_us, dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
            "sigma": sigma,
        }
    )


def default_origins(
    step_ts: TimesLike, *, bar_seconds: int = 3600, warmup_hours: float = 48.0
) -> pl.Series:
    """Hourly (``bar_seconds``) forecast origins covering a backtest window plus a warm-up.

    The first origin is ``warmup_hours`` before the first step (so the ramp of the threshold has
    settled when the event starts), the last one is the latest origin whose threshold is
    published (``o + bar_seconds``) at or before the last step. Prefer passing the model's own
    origins (the ``origin_ts`` of its sigma frame) so that controls and model share the ramp's
    starting state.

    Parameters
    ----------
    step_ts : polars.Series or numpy.ndarray or sequence of datetime
        Step times of the price path, increasing.
    bar_seconds : int
        Origin spacing (the forecast bar length).
    warmup_hours : float
        Hours of origins before the first step.

    Returns
    -------
    polars.Series
        ``origin_ts`` (``Datetime("us", "UTC")``).
    """
    steps = _epoch_us(step_ts, "step_ts")
    _check_increasing(steps, "step_ts")
    bar = int(bar_seconds) * _US
    first = ((steps[0] - int(round(warmup_hours * 3600 * _US))) // bar) * bar - bar
    last = (steps[-1] // bar) * bar - bar
    grid = np.arange(first, last + 1, bar, dtype=np.int64)
    return pl.Series("origin_ts", grid, dtype=pl.Int64).cast(pl.Datetime("us", "UTC"))


# -- realized sigma ----------
def _returns_arrays(
    returns: pl.DataFrame, return_seconds: int | None
) -> tuple[np.ndarray, np.ndarray, int]:
    if not {"ts", "ret"} <= set(returns.columns):
        raise InvalidBarsError(
            f"returns need columns ts and ret (log_returns output); columns: {returns.columns}"
        )
    frame = returns.select("ts", pl.col("ret").cast(pl.Float64)).sort("ts")
    ts = _epoch_us(frame["ts"], "returns.ts")
    _check_increasing(ts, "returns.ts")
    r = frame["ret"].to_numpy()
    if not np.all(np.isfinite(r)):
        raise InvalidBarsError("returns have null or non-finite values; drop or repair them")
    step = int(return_seconds) if return_seconds else infer_bar_seconds(frame["ts"])
    ends = ts + step * _US
    csum = np.concatenate(([0.0], np.cumsum(r * r)))
    return ends, csum, step * _US


def _window_sigma(
    returns: pl.DataFrame,
    origins: TimesLike,
    *,
    lo_offset_us: int,
    hi_offset_us: int,
    horizon_hours: float,
    bar_seconds: int,
    return_seconds: int | None,
    min_coverage: float,
    what: str,
) -> pl.DataFrame:
    """σ_H from the returns ending in ``(c + lo_offset, c + hi_offset]``, ``c = o + bar``."""
    if horizon_hours <= 0:
        raise ValueError(f"horizon_hours must be > 0, got {horizon_hours}")
    if not 0.0 <= min_coverage <= 1.0:
        raise ValueError(f"min_coverage must be in [0, 1], got {min_coverage}")
    ends, csum, step_us = _returns_arrays(returns, return_seconds)
    o = _epoch_us(origins, "origins")
    _check_increasing(o, "origins")
    c = o + int(bar_seconds) * _US
    lo = np.searchsorted(ends, c + lo_offset_us, side="right")
    hi = np.searchsorted(ends, c + hi_offset_us, side="right")
    n = hi - lo
    window_us = hi_offset_us - lo_offset_us
    need = max(1, math.ceil(min_coverage * window_us / step_us - 1e-9))
    short = n < need
    if short.any():
        k = int(np.argmax(short))
        when = datetime.fromtimestamp(int(o[k]) // _US, tz=UTC).strftime("%Y-%m-%d %H:%M")
        raise not_enough_history(
            f"{what} at origin {when} UTC",
            int(n[k]),
            need,
            "pass returns that cover the window (for the oracle: up to the last origin + "
            "bar_seconds + horizon), or lower min_coverage",
        )
    var = (csum[hi] - csum[lo]) * (horizon_hours * 3600 * _US) / (n * step_us)
    return _origin_frame(o, np.sqrt(var))


def trailing_realized_sigma(
    returns: pl.DataFrame,
    origins: TimesLike,
    *,
    window_hours: float = 24.0,
    horizon_hours: float = 24.0,
    bar_seconds: int = 3600,
    return_seconds: int | None = None,
    min_coverage: float = 0.5,
) -> pl.DataFrame:
    """Lagged realized volatility at every origin, scaled to the horizon (walk-forward honest).

    ``σ_H(o) = sqrt(H / (n·Δ) · Σ r²)`` over the ``n`` returns ending in ``(c − W, c]``,
    ``c = o + bar_seconds`` (see the module docstring).

    Parameters
    ----------
    returns : polars.DataFrame
        ``ts`` (open time of the bar whose close ends the return) and ``ret`` (log return), e.g.
        :func:`~forecasting.returns.log_returns`; hourly or finer.
    origins : polars.Series or numpy.ndarray or sequence of datetime
        Forecast origins (bar open times), increasing.
    window_hours : float
        Trailing window ``W`` (24 h by default).
    horizon_hours : float
        Liquidation horizon ``H`` of the threshold (24 h, as the model's sigma).
    bar_seconds : int
        Origin bar length.
    return_seconds : int, optional
        Bar length of ``returns``; inferred when omitted.
    min_coverage : float
        Minimum share of the window's nominal returns that must be present.

    Returns
    -------
    polars.DataFrame
        ``origin_ts`` and ``sigma``, the input of
        :func:`~forecasting.margin.liquidation_threshold_path`.

    Raises
    ------
    NotEnoughHistoryError
        If an origin's window is covered less than ``min_coverage``.
    """
    if window_hours <= 0:
        raise ValueError(f"window_hours must be > 0, got {window_hours}")
    return _window_sigma(
        returns,
        origins,
        lo_offset_us=-int(round(window_hours * 3600 * _US)),
        hi_offset_us=0,
        horizon_hours=horizon_hours,
        bar_seconds=bar_seconds,
        return_seconds=return_seconds,
        min_coverage=min_coverage,
        what=f"trailing {window_hours:g} h realized volatility",
    )


def future_realized_sigma(
    returns: pl.DataFrame,
    origins: TimesLike,
    *,
    horizon_hours: float = 24.0,
    bar_seconds: int = 3600,
    return_seconds: int | None = None,
    min_coverage: float = 0.5,
) -> pl.DataFrame:
    """Realized volatility over the *next* horizon at every origin (perfect foresight).

    ``σ_H(o) = sqrt(H / (n·Δ) · Σ r²)`` over the ``n`` returns ending in ``(c, c + H]``,
    ``c = o + bar_seconds``: with full coverage exactly the realized horizon volatility that the
    model's forecast at ``o`` tried to predict (as :func:`~forecasting.returns.realized_targets`).

    Parameters
    ----------
    returns : polars.DataFrame
        ``ts`` and ``ret`` (see :func:`trailing_realized_sigma`).
    origins : polars.Series or numpy.ndarray or sequence of datetime
        Forecast origins, increasing.
    horizon_hours : float
        Horizon ``H``.
    bar_seconds : int
        Origin bar length.
    return_seconds : int, optional
        Bar length of ``returns``; inferred when omitted.
    min_coverage : float
        Minimum share of the horizon's nominal returns that must be present (near the end of the
        data the horizon is truncated and the variance rate of what is left is used).

    Returns
    -------
    polars.DataFrame
        ``origin_ts`` and ``sigma``.

    Raises
    ------
    NotEnoughHistoryError
        If an origin's horizon is covered less than ``min_coverage``.
    """
    return _window_sigma(
        returns,
        origins,
        lo_offset_us=0,
        hi_offset_us=int(round(horizon_hours * 3600 * _US)),
        horizon_hours=horizon_hours,
        bar_seconds=bar_seconds,
        return_seconds=return_seconds,
        min_coverage=min_coverage,
        what=f"future {horizon_hours:g} h realized volatility",
    )


def _thresholds_at_steps(
    sigma: pl.DataFrame,
    step_ts: TimesLike,
    policy: MarginPolicy,
    *,
    bar_seconds: int,
    start_lt: float | None,
) -> np.ndarray:
    """σ frame → margin path → one threshold per step (as-of backward, like the pipeline)."""
    path = liquidation_threshold_path(sigma, policy, bar_seconds=bar_seconds, start_lt=start_lt)
    ts = _epoch_us(path["ts"], "threshold ts")
    lt = path["liquidation_threshold"].to_numpy()
    steps = _epoch_us(step_ts, "step_ts")
    _check_increasing(steps, "step_ts")
    idx = np.searchsorted(ts, steps, side="right") - 1
    before = policy.upper if start_lt is None else float(start_lt)
    return np.where(idx >= 0, lt[np.maximum(idx, 0)], before)


# -- the four controls ----------
def _model_array(model_path: ArrayLike) -> np.ndarray:
    path = np.asarray(model_path, dtype=np.float64)
    if path.ndim != 1 or path.size == 0:
        raise InvalidBarsError("model_path must be a non-empty 1-d array of thresholds")
    if not np.all(np.isfinite(path)):
        raise InvalidBarsError("model_path has non-finite thresholds")
    return path


def constant_control(
    model_path: ArrayLike, *, reference_threshold: float | None = None
) -> np.ndarray:
    """Constant threshold with the model path's average tightening.

    ``LT_const = ref − mean(max(ref − LT_model(t), 0))``. Without a reference this is
    ``mean(LT_model)``; the two agree whenever the model path never exceeds the reference (the
    ``dynamic_ltv`` policy never loosens beyond its reference, hence the clip). No ramp: the
    constant threshold is in force from the first step.

    Parameters
    ----------
    model_path : array_like
        The model's threshold per step.
    reference_threshold : float, optional
        Threshold the tightening is measured from (the policy's cap / governance threshold).

    Returns
    -------
    numpy.ndarray
        Same shape as ``model_path``.
    """
    path = _model_array(model_path)
    if reference_threshold is None:
        value = float(np.mean(path))
    else:
        ref = float(reference_threshold)
        value = ref - float(np.mean(np.maximum(ref - path, 0.0)))
    return np.full_like(path, value)


def shuffled_control(model_path: ArrayLike, seed: int | np.random.Generator = 0) -> np.ndarray:
    """The model's thresholds in a random order within the window (same values, no timing).

    Parameters
    ----------
    model_path : array_like
        The model's threshold per step.
    seed : int or numpy.random.Generator
        Seed of :func:`numpy.random.default_rng`; the same seed gives the same permutation.

    Returns
    -------
    numpy.ndarray
        A permutation of ``model_path``. The ramp limit is *not* re-applied (a shuffled path
        jumps; pass ``max_step_change`` to ``dynamic_ltv`` to ramp it).
    """
    path = _model_array(model_path)
    rng = np.random.default_rng(seed)
    return path[rng.permutation(path.size)]


def lagged_realized_control(
    returns: pl.DataFrame,
    step_ts: TimesLike,
    policy: MarginPolicy,
    *,
    origins: TimesLike | None = None,
    window_hours: float = 24.0,
    horizon_hours: float = 24.0,
    bar_seconds: int = 3600,
    warmup_hours: float = 48.0,
    start_lt: float | None = None,
    return_seconds: int | None = None,
    min_coverage: float = 0.5,
) -> np.ndarray:
    """Threshold path of the trailing-realized-volatility rule (no model), one value per step.

    ``σ_H`` = :func:`trailing_realized_sigma` at each origin, turned into thresholds by
    :func:`~forecasting.margin.liquidation_threshold_path` with ``policy`` and aligned to the
    steps as of backward. Walk-forward: the value at step ``s`` only uses returns ending at or
    before ``s``.

    Parameters
    ----------
    returns : polars.DataFrame
        ``ts`` and ``ret`` (hourly or finer), covering ``window_hours`` before the first origin.
    step_ts : polars.Series or numpy.ndarray or sequence of datetime
        Step times of the price path.
    policy : MarginPolicy
        The model's margin policy (same band, cost, quantile and ramp).
    origins : optional
        Forecast origins; the model's own origins by preference, else :func:`default_origins`.
    window_hours : float
        Trailing window ``W`` (default 24 h).
    horizon_hours : float
        Liquidation horizon ``H`` of the threshold (default 24 h).
    bar_seconds : int
        Origin bar length.
    warmup_hours : float
        Warm-up of the default origins.
    start_lt : float, optional
        Threshold before the first origin (``policy.upper``).
    return_seconds : int, optional
        Bar length of ``returns``.
    min_coverage : float
        See :func:`trailing_realized_sigma`.

    Returns
    -------
    numpy.ndarray
        One threshold per step.
    """
    if origins is None:
        origins = default_origins(step_ts, bar_seconds=bar_seconds, warmup_hours=warmup_hours)
    sigma = trailing_realized_sigma(
        returns,
        origins,
        window_hours=window_hours,
        horizon_hours=horizon_hours,
        bar_seconds=bar_seconds,
        return_seconds=return_seconds,
        min_coverage=min_coverage,
    )
    return _thresholds_at_steps(sigma, step_ts, policy, bar_seconds=bar_seconds, start_lt=start_lt)


def oracle_control(
    returns: pl.DataFrame,
    step_ts: TimesLike,
    policy: MarginPolicy,
    *,
    origins: TimesLike | None = None,
    horizon_hours: float = 24.0,
    bar_seconds: int = 3600,
    warmup_hours: float = 48.0,
    start_lt: float | None = None,
    return_seconds: int | None = None,
    min_coverage: float = 0.5,
) -> np.ndarray:
    """Threshold path computed from the volatility that actually followed (perfect foresight).

    ``σ_H`` = :func:`future_realized_sigma` at each origin, through the same mapping as the model
    (:func:`~forecasting.margin.liquidation_threshold_path`, ramp included), aligned as of
    backward. Deliberately *not* walk-forward: it is the upper bound a forecast can reach.

    Parameters
    ----------
    returns : polars.DataFrame
        ``ts`` and ``ret``, covering ``horizon_hours`` after the last origin's close.
    step_ts : polars.Series or numpy.ndarray or sequence of datetime
        Step times of the price path.
    policy : MarginPolicy
        The model's margin policy.
    origins : optional
        Forecast origins (see :func:`lagged_realized_control`).
    horizon_hours : float
        Horizon ``H`` (default 24 h).
    bar_seconds : int
        Origin bar length.
    warmup_hours : float
        Warm-up of the default origins.
    start_lt : float, optional
        Threshold before the first origin (``policy.upper``).
    return_seconds : int, optional
        Bar length of ``returns``.
    min_coverage : float
        See :func:`future_realized_sigma`.

    Returns
    -------
    numpy.ndarray
        One threshold per step.
    """
    if origins is None:
        origins = default_origins(step_ts, bar_seconds=bar_seconds, warmup_hours=warmup_hours)
    sigma = future_realized_sigma(
        returns,
        origins,
        horizon_hours=horizon_hours,
        bar_seconds=bar_seconds,
        return_seconds=return_seconds,
        min_coverage=min_coverage,
    )
    return _thresholds_at_steps(sigma, step_ts, policy, bar_seconds=bar_seconds, start_lt=start_lt)


@dataclass(frozen=True, kw_only=True, eq=False)
class ControlPaths:
    """The four control threshold paths of one forecast-driven run (read-only arrays).

    Attributes
    ----------
    constant, lagged_realized, shuffled, oracle : numpy.ndarray
        One threshold per step each (see the module docstring).
    seed : int
        Seed of the shuffled control.
    window_hours : float
        Trailing window of the lagged-realized control.
    horizon_hours : float
        Liquidation horizon of the σ → threshold mapping.
    """

    names: ClassVar[tuple[str, ...]] = CONTROL_NAMES
    constant: np.ndarray
    lagged_realized: np.ndarray
    shuffled: np.ndarray
    oracle: np.ndarray
    seed: int = 0
    window_hours: float = 24.0
    horizon_hours: float = 24.0

    def __post_init__(self) -> None:
        sizes = set()
        for name in CONTROL_NAMES:
            arr = np.array(getattr(self, name), dtype=np.float64, copy=True)
            if arr.ndim != 1:
                raise InvalidBarsError(f"control {name!r} must be a 1-d array")
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)
            sizes.add(arr.size)
        if len(sizes) != 1:
            raise InvalidBarsError("control paths must all have one threshold per step")

    @property
    def n_steps(self) -> int:
        """Number of steps of every path."""
        return int(self.constant.size)

    def as_dict(self, *, include_oracle: bool = True) -> dict[str, np.ndarray]:
        """``{name: path}`` in :data:`CONTROL_NAMES` order (the oracle last, if included)."""
        names = CONTROL_NAMES if include_oracle else CONTROL_NAMES[:-1]
        return {name: getattr(self, name) for name in names}


def build_control_paths(
    model_path: ArrayLike,
    step_ts: TimesLike,
    returns: pl.DataFrame,
    policy: MarginPolicy,
    *,
    reference_threshold: float | None = None,
    origins: TimesLike | None = None,
    seed: int = 0,
    window_hours: float = 24.0,
    horizon_hours: float = 24.0,
    bar_seconds: int = 3600,
    warmup_hours: float = 48.0,
    start_lt: float | None = None,
    return_seconds: int | None = None,
    min_coverage: float = 0.5,
) -> ControlPaths:
    """All four controls of a model's threshold path.

    Parameters
    ----------
    model_path : array_like
        The model's threshold per step (as given to ``dynamic_ltv``).
    step_ts : polars.Series or numpy.ndarray or sequence of datetime
        Step times, one per threshold.
    returns : polars.DataFrame
        ``ts`` and ``ret`` of the asset, from ``window_hours`` before the first origin to
        ``horizon_hours`` after the last step.
    policy : MarginPolicy
        The margin policy that produced ``model_path``.
    reference_threshold : float, optional
        Reference of the constant control's tightening (``policy.upper`` by default).
    origins : optional
        The model's forecast origins (recommended), else :func:`default_origins`.
    seed : int
        Seed of the shuffled control.
    window_hours, horizon_hours, bar_seconds, warmup_hours, start_lt, return_seconds, min_coverage
        See :func:`lagged_realized_control` and :func:`oracle_control`.

    Returns
    -------
    ControlPaths
    """
    path = _model_array(model_path)
    steps = _epoch_us(step_ts, "step_ts")
    if steps.size != path.size:
        raise InvalidBarsError(
            f"model_path has {path.size} thresholds but step_ts has {steps.size} times; give one "
            "threshold per step"
        )
    ref = policy.upper if reference_threshold is None else float(reference_threshold)
    if origins is None:
        origins = default_origins(step_ts, bar_seconds=bar_seconds, warmup_hours=warmup_hours)
    common = {
        "origins": origins,
        "horizon_hours": horizon_hours,
        "bar_seconds": bar_seconds,
        "start_lt": start_lt,
        "return_seconds": return_seconds,
        "min_coverage": min_coverage,
    }
    return ControlPaths(
        constant=constant_control(path, reference_threshold=ref),
        lagged_realized=lagged_realized_control(
            returns, step_ts, policy, window_hours=window_hours, **common
        ),
        shuffled=shuffled_control(path, seed),
        oracle=oracle_control(returns, step_ts, policy, **common),
        seed=int(seed),
        window_hours=float(window_hours),
        horizon_hours=float(horizon_hours),
    )


# -- captured share ----------
class CapturedShare(NamedTuple):
    """Result of :func:`captured_share` (unpacks as ``share, best_control``)."""

    share: float
    best_control: str | None


def captured_share(
    model: float,
    controls: Mapping[str, float],
    oracle: float,
    *,
    loss: bool = True,
    atol: float = 1e-12,
) -> CapturedShare:
    """Share of the oracle's gain over the best control that the model captures.

    ``share = (best − model) / (best − oracle)``, ``best`` = the lowest control value for a loss
    (``loss=True``), the highest for a gain (the formula is the same in both cases).

    Rules:

    * non-finite control values are ignored when choosing the best control; if none is finite
      the result is ``(nan, None)``;
    * ties for the best control go to the name that sorts first (deterministic; the share does
      not depend on which tied control is reported);
    * ``nan`` when ``model`` or ``oracle`` is not finite, or when the oracle does not beat the
      best control by more than ``atol`` (zero or wrong-signed denominator: there is no gain to
      capture, so no share is defined);
    * otherwise the share is not clipped: negative = worse than the best control, > 1 = better
      than the oracle.

    Parameters
    ----------
    model : float
        Metric of the forecast-driven run.
    controls : mapping of str to float
        Metric of each control run (``constant``, ``lagged_realized``, ``shuffled``...), the
        oracle excluded.
    oracle : float
        Metric of the oracle run.
    loss : bool
        ``True`` for loss-type metrics (lower is better), ``False`` for gains.
    atol : float
        Smallest oracle improvement over the best control that defines a share.

    Returns
    -------
    CapturedShare
        ``(share, best_control)``.

    Examples
    --------
    >>> captured_share(6.0, {"constant": 10.0, "lagged_realized": 8.0}, 4.0)
    CapturedShare(share=0.5, best_control='lagged_realized')
    """
    if not controls:
        raise ValueError("controls is empty; pass at least one control metric")
    finite = {k: float(v) for k, v in controls.items() if math.isfinite(float(v))}
    if not finite:
        return CapturedShare(math.nan, None)
    sign = 1.0 if loss else -1.0
    best_name = min(sorted(finite), key=lambda k: sign * finite[k])
    best = finite[best_name]
    m, o = float(model), float(oracle)
    if not (math.isfinite(m) and math.isfinite(o)):
        return CapturedShare(math.nan, best_name)
    gain = sign * (best - o)
    if not gain > atol:
        return CapturedShare(math.nan, best_name)
    return CapturedShare(sign * (best - m) / gain, best_name)
