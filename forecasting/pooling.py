"""Scoring across forecast windows and horizon scaling (pure polars, no warehouse).

* :func:`score_frame` scores one set of forecasts (Diebold–Mariano against ``garch`` when it is
  among the models) with integer ``horizon_hours``.
* :func:`score_window` scores one window (scope ``window``) and each of its crash spans
  (scope ``crash``).
* :func:`score_pooled` pools every window of one asset (``event_id = 'all'``): an origin shared
  by two overlapping windows counts once, from the earlier window.
* :func:`nearest_horizon` / :func:`horizon_scale` pick the forecast horizon closest to a target
  (24 h for margin paths) and the square-root-of-time factor that scales its sigma.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from forecasting.scores import score_forecasts

__all__ = [
    "SCORE_COLUMNS",
    "Span",
    "horizon_scale",
    "nearest_horizon",
    "score_frame",
    "score_pooled",
    "score_window",
]

#: Columns of :func:`score_window` and :func:`score_pooled`.
SCORE_COLUMNS = ("event_id", "scope", "model", "horizon_hours", "metric", "value")
#: Model used as the Diebold–Mariano benchmark when present.
BENCHMARK = "garch"


@dataclass(frozen=True, kw_only=True)
class Span:
    """A crash span scored on its own (scope ``crash``): origins in ``[start, end)``.

    Attributes
    ----------
    event_id : str
        Label of the span's rows (the crash event).
    start, end : datetime
        The span (UTC, same time zone as ``origin_ts``).
    window_id : str, optional
        Window the span belongs to (``event_id`` of the forecasts); needed by
        :func:`score_pooled`.
    """

    event_id: str
    start: datetime
    end: datetime
    window_id: str | None = None


def _empty_scores() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "model": pl.String,
            "horizon_hours": pl.Int32,
            "metric": pl.String,
            "value": pl.Float64,
        }
    )


def score_frame(
    forecasts: pl.DataFrame, realized: pl.DataFrame, models: Iterable[str]
) -> pl.DataFrame:
    """Score forecasts against realized values (integer horizons in, integer horizons out).

    Parameters
    ----------
    forecasts : polars.DataFrame
        ``model, origin_ts, horizon_hours, sigma`` and optionally ``var{L}_k`` VaR multipliers
        (:func:`~forecasting.tails.var_multipliers`); other columns are ignored.
    realized : polars.DataFrame
        ``origin_ts, horizon_hours, realized_return, realized_var``.
    models : iterable of str
        Models of the run: ``garch`` among them makes it the Diebold–Mariano benchmark.

    Returns
    -------
    polars.DataFrame
        ``model, horizon_hours (Int32), metric, value`` (see
        :func:`~forecasting.scores.score_forecasts`); empty when either input is.
    """
    if forecasts.height == 0 or realized.height == 0:
        return _empty_scores()
    bench = BENCHMARK if BENCHMARK in set(models) else None
    scores = score_forecasts(
        forecasts.select(
            "model",
            "origin_ts",
            pl.col("horizon_hours").cast(pl.Float64),
            "sigma",
            pl.col("^var\\d+_k$"),  # calibrated VaR multipliers when present
        ),
        realized.with_columns(pl.col("horizon_hours").cast(pl.Float64)),
        benchmark=bench,
    )
    return scores.with_columns(pl.col("horizon_hours").round(0).cast(pl.Int32))


def score_window(
    forecasts: pl.DataFrame,
    realized: pl.DataFrame,
    *,
    window_id: str,
    spans: Sequence[Span] = (),
) -> pl.DataFrame:
    """Scores of one (asset, window): scope ``window`` and scope ``crash`` per span.

    Parameters
    ----------
    forecasts : polars.DataFrame
        Every model's forecasts of the window (``model, origin_ts, horizon_hours, sigma``).
    realized : polars.DataFrame
        Realized values of the window (``origin_ts, horizon_hours, realized_return,
        realized_var``).
    window_id : str
        ``event_id`` of the window's rows.
    spans : sequence of Span
        Crash spans inside the window.

    Returns
    -------
    polars.DataFrame
        :data:`SCORE_COLUMNS`.
    """
    models = forecasts["model"].unique().to_list()
    parts = [
        score_frame(forecasts, realized, models).with_columns(
            event_id=pl.lit(window_id), scope=pl.lit("window")
        )
    ]
    for span in spans:
        inside = pl.col("origin_ts").is_between(span.start, span.end, closed="left")
        parts.append(
            score_frame(forecasts.filter(inside), realized.filter(inside), models).with_columns(
                event_id=pl.lit(span.event_id), scope=pl.lit("crash")
            )
        )
    return pl.concat(parts).select(*SCORE_COLUMNS)


def score_pooled(
    forecasts: pl.DataFrame,
    realized: pl.DataFrame,
    *,
    window_ids: Sequence[str],
    spans: Sequence[Span] = (),
) -> pl.DataFrame:
    """Scores pooled over every window of one asset (``event_id = 'all'``).

    Scope ``crash`` pools the crash spans; scope ``window`` pools every origin, taking an origin
    shared by two overlapping windows once, from the earlier window.

    Parameters
    ----------
    forecasts, realized : polars.DataFrame
        One asset's forecasts and realized values, with ``event_id`` (the window).
    window_ids : sequence of str
        The windows in time order (earlier windows win on shared origins).
    spans : sequence of Span
        Crash spans, each with the ``window_id`` it belongs to.

    Returns
    -------
    polars.DataFrame
        :data:`SCORE_COLUMNS`.
    """
    order = {w: i for i, w in enumerate(window_ids)}
    rank = pl.col("event_id").replace_strict(order, default=len(order))
    key = ["model", "origin_ts", "horizon_hours"]
    fc = forecasts.sort(rank).unique(subset=key, keep="first", maintain_order=True)
    rz = realized.sort(rank).unique(subset=["origin_ts", "horizon_hours"], keep="first")
    models = forecasts["model"].unique().to_list()
    crash = pl.lit(False)
    for span in spans:
        crash = crash | (
            (pl.col("event_id") == span.window_id)
            & pl.col("origin_ts").is_between(span.start, span.end, closed="left")
        )
    fc_crash = forecasts.filter(crash).unique(subset=key, keep="first")
    rz_crash = realized.filter(crash).unique(subset=["origin_ts", "horizon_hours"], keep="first")
    parts = [
        score_frame(fc.drop("event_id"), rz.drop("event_id"), models).with_columns(
            scope=pl.lit("window")
        ),
        score_frame(fc_crash.drop("event_id"), rz_crash.drop("event_id"), models).with_columns(
            scope=pl.lit("crash")
        ),
    ]
    return pl.concat(parts).with_columns(event_id=pl.lit("all")).select(*SCORE_COLUMNS)


def nearest_horizon(horizons: Iterable[int], target: float = 24.0) -> int:
    """The horizon closest to ``target`` hours (the longer one on a tie).

    Parameters
    ----------
    horizons : iterable of int
        Forecast horizons (hours).
    target : float, optional
        Wanted horizon (24 h).

    Returns
    -------
    int
    """
    return min(horizons, key=lambda x: (abs(x - target), -x))


def horizon_scale(horizons: Iterable[int], target: float = 24.0) -> tuple[int, float]:
    """The horizon closest to ``target`` and the factor that scales its sigma to ``target``.

    Square-root-of-time: ``sigma_target = sigma_h · sqrt(target / h)``, exact for uncorrelated
    returns of constant variance, an approximation in a volatility spike.

    Parameters
    ----------
    horizons : iterable of int
        Forecast horizons (hours).
    target : float, optional
        Wanted horizon (24 h).

    Returns
    -------
    (int, float)
        ``(h, sqrt(target / h))``; the factor is 1 when ``target`` is among the horizons.

    Examples
    --------
    >>> horizon_scale([1, 4])
    (4, 2.449489742783178)
    """
    h = nearest_horizon(horizons, target)
    return h, math.sqrt(target / h)
