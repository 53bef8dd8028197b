"""Intervals over stress paths: each scoreboard run replayed on seeded FHS paths around its event.

For every event the asset's hourly returns of the :data:`FIT_DAYS` days *before* the window start
(nothing after it) are fitted with GARCH(1,1)-t (:func:`forecasting.stress.fit_fhs`); N paths
(default :data:`STRESS_PATHS`, seed :data:`STRESS_SEED`) are drawn by filtered historical
simulation and re-anchored to the window's start price, at the run's own bar size
(:func:`forecasting.stress.stress_paths`). Each run is replayed on every path with the same book,
impact model and policy, and each metric gets a median, a 90 % interval and its p95 (Gauntlet-style
VaR for bad debt, LaR for liquidated debt) beside the real-path value.

Forecast-driven runs (``dynamic_ltv``) are left out: their threshold path is the forecast of the
*real* path, so replaying it on another path would measure nothing; their evidence is the
threshold controls (``forecast_value``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Any

import duckdb
import numpy as np
import polars as pl

from backtest import PricePath, simulate
from forecasting import stress
from pipelines.backtests.calibration import hourly_bars
from pipelines.backtests.run import RunConfig
from pipelines.errors import CascadeError

__all__ = [
    "FIT_DAYS",
    "INTERVAL_METRICS",
    "STRESS_PATHS",
    "STRESS_SEED",
    "StressScenario",
    "interval_rows",
    "stress_scenario",
]

#: Paths per event (the issue's default).
STRESS_PATHS = 200
#: Seed of the residual resampling (the same seed gives byte-identical paths).
STRESS_SEED = 20_200_312
#: Days of hourly returns before the window start the GARCH-t is fitted on.
FIT_DAYS = 90
#: Loss-type metrics summarised over the paths.
INTERVAL_METRICS: tuple[str, ...] = (
    "total_loss_usd",
    "bad_debt_usd",
    "liquidated_usd",
    "induced_usd",
    "borrower_loss_usd",
    "peak_price_deviation",
)
#: Coverage of the interval (median and the 5 %–95 % band).
LEVEL = 0.9


@dataclass(frozen=True, eq=False)
class StressScenario:
    """The stress paths of one event (shared by every policy run of the event).

    Attributes
    ----------
    event_id : str or None
        Event of the runs.
    ts : numpy.ndarray
        Step times (the real path's).
    prices : numpy.ndarray
        ``(n_paths, n_steps)`` prices; column 0 is the real path's first price.
    seed : int
        Seed of the paths.
    fit_label : str
        What the GARCH-t was fitted on (asset, series, span, persistence).
    digest : str
        sha256 prefix of the paths (enters the interval rows).
    """

    event_id: str | None
    ts: np.ndarray
    prices: np.ndarray
    seed: int
    fit_label: str
    digest: str

    @property
    def n_paths(self) -> int:
        """Number of stress paths."""
        return int(self.prices.shape[0])


def stress_scenario(
    con: duckdb.DuckDBPyConnection,
    config: RunConfig,
    *,
    n_paths: int = STRESS_PATHS,
    seed: int = STRESS_SEED,
) -> StressScenario:
    """Fit FHS on the returns before the window and draw the event's stress paths.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Warehouse connection.
    config : RunConfig
        Any run of the event (its path gives the start price, times and bar size).
    n_paths : int
        Number of paths.
    seed : int
        Seed.

    Returns
    -------
    StressScenario

    Raises
    ------
    CascadeError
        Too little hourly history before the window, or a bar size FHS cannot produce.
    """
    path = config.path
    start = path.ts[0].astype("datetime64[us]").astype(object).replace(tzinfo=UTC)
    bars, label = hourly_bars(con, config.asset, start - timedelta(days=FIT_DAYS), start)
    if bars.height < 200:
        raise CascadeError(
            f"stress paths for {config.event_id or 'the path'}: only {bars.height} hourly bars "
            f"of {config.asset} in the {FIT_DAYS} days before the window; need 200 "
            "(load more history, or run without --stress-paths)"
        )
    returns = np.diff(np.log(bars["close"].to_numpy()))
    fit = stress.fit_fhs(returns)
    step = round(path.step_seconds)
    prices = stress.stress_paths(
        fit, float(path.price[0]), len(path), n_paths, seed=seed, step_seconds=step
    )
    digest = hashlib.sha256(prices.tobytes()).hexdigest()[:16]
    fit_label = (
        f"GARCH(1,1)-t on {label}, {bars.height} h before the window; "
        f"persistence {fit.persistence:.3f}"
    )
    return StressScenario(config.event_id, path.ts, prices, seed, fit_label, digest)


def _metrics(config: RunConfig, prices: np.ndarray, ts: np.ndarray) -> dict[str, float]:
    result = simulate(
        config.book, PricePath(ts, prices), config.impact, config.policy, record_steps=False
    )
    values = result.metrics.as_dict()
    return {name: float(values[name]) for name in INTERVAL_METRICS if name in values}


def interval_rows(
    config: RunConfig, scenario: StressScenario, real: dict[str, Any]
) -> pl.DataFrame:
    """Replay one run on every stress path; one row per metric with its interval.

    Parameters
    ----------
    config : RunConfig
        A non-forecast run of the scenario's event.
    scenario : StressScenario
        The event's stress paths.
    real : dict
        The run's metrics on the real path.

    Returns
    -------
    polars.DataFrame
        ``run_id, metric, n_paths, seed, paths_digest, real, median, lo, hi, p95``.
    """
    per_path = [_metrics(config, scenario.prices[i], scenario.ts) for i in range(scenario.n_paths)]
    rows = []
    for metric in INTERVAL_METRICS:
        values = np.array([m[metric] for m in per_path if metric in m], dtype=float)
        if values.size == 0:
            continue
        s = stress.interval_summary(values, level=LEVEL)
        rows.append(
            {
                "run_id": config.run_id,
                "metric": metric,
                "n_paths": scenario.n_paths,
                "seed": scenario.seed,
                "paths_digest": scenario.digest,
                "real": float(real[metric]) if real.get(metric) is not None else None,
                "median": s.median,
                "lo": s.lo,
                "hi": s.hi,
                "p95": s.p95,
            }
        )
    return pl.DataFrame(rows)
