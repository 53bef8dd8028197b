"""Intervals over stress paths for the market-level policy replays (DESIGN, "Uncertainty").

For every replayed (event, asset), a GARCH(1,1)-t is fitted on the asset's hourly log returns of
the :data:`FIT_DAYS` days before the window start (nothing of the window enters the fit) and
``N`` paths of hourly deviations are drawn by filtered historical simulation
(:func:`forecasting.stress.fit_fhs`, :func:`forecasting.stress.stress_paths`: the generator of the
backtests' intervals, same seed). Each path moves the event's fundamental bars
(:func:`backtest.market.policy_stress.overlay_bars`); the status quo and every policy are
replayed on it (:func:`backtest.market.policy_stress.avoided_on_paths`) and each avoided figure
gets its 5th, 50th and 95th percentile over the paths, beside the real-path value, and whether
the 90 % interval excludes 0 (beyond :data:`ZERO_TOL`). The same paths serve every policy and
both impact laws (common random numbers: the differences are not blurred by path-to-path noise).

``N`` is ``AttributionConfig.stress_paths`` (default :data:`STRESS_PATHS`; ``cascade attribute
--stress-paths N``; 0 = no intervals), so it is part of the attribution run id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from backtest.market.policies import MarketPolicy
from backtest.market.policy_stress import AVOIDED_FIGURES, Replayer, avoided_on_paths
from forecasting import stress

__all__ = [
    "FIT_DAYS",
    "INTERVAL_METRICS",
    "STRESS_PATHS",
    "STRESS_SEED",
    "ZERO_TOL",
    "StressDeviations",
    "check_stress_paths",
    "interval_rows",
    "stress_deviations",
]

#: Default number of stress paths per (event, asset) (keeps ``cascade attribute`` short).
STRESS_PATHS = 5
#: Seed of the residual resampling (the backtests' intervals use the same).
STRESS_SEED = 20_200_312
#: Days of hourly returns before the window the GARCH-t is fitted on.
FIT_DAYS = 90
#: Fewest hourly returns the fit accepts.
MIN_FIT_HOURS = 200
#: The interval rows' metrics: the ``market_policy_results`` columns of the avoided figures, in
#: the order of :data:`backtest.market.policy_stress.AVOIDED_FIGURES`.
INTERVAL_METRICS: tuple[str, ...] = (
    "avoided_cascade_share",
    "avoided_liq_usd",
    "avoided_bad_debt_usd",
)
assert len(INTERVAL_METRICS) == len(AVOIDED_FIGURES)
#: Numerical zero of each metric: an interval excludes 0 only beyond it (a share of 1e-9, one
#: dollar), so rounding noise of identical replays never counts as a difference.
ZERO_TOL = {"avoided_cascade_share": 1e-9, "avoided_liq_usd": 1.0, "avoided_bad_debt_usd": 1.0}


def check_stress_paths(n_paths: int) -> int:
    """``n_paths`` if it is an integer ``>= 0`` (stress paths per event and asset; 0: none).

    Raises
    ------
    ValueError
        For anything else (a bool, a float, a negative number).
    """
    if isinstance(n_paths, bool) or not isinstance(n_paths, int) or n_paths < 0:
        raise ValueError(f"stress paths must be an integer >= 0, got {n_paths!r}")
    return n_paths


@dataclass(frozen=True, eq=False)
class StressDeviations:
    """Log deviations of the stress paths of one (event, asset).

    Attributes
    ----------
    deviations : numpy.ndarray
        ``(n_paths, n_steps)``, column 0 is 0 (the window start is kept).
    seed : int
        Seed of the draws.
    fit_label : str
        What the GARCH-t was fitted on.
    digest : str
        sha256 prefix of the deviations.
    """

    deviations: np.ndarray
    seed: int
    fit_label: str
    digest: str

    @property
    def n_paths(self) -> int:
        """Number of paths."""
        return int(self.deviations.shape[0])


def stress_deviations(
    full_close: np.ndarray, i0: int, n_steps: int, n_paths: int, *, seed: int = STRESS_SEED
) -> StressDeviations | str:
    """Fit FHS on the hourly closes before the window and draw the paths' deviations.

    Parameters
    ----------
    full_close : numpy.ndarray
        Hourly closes from the burn-in to the window end.
    i0 : int
        Index of the window's first bar (only ``full_close[:i0]`` is read).
    n_steps : int
        Bars of the window.
    n_paths : int
        Number of paths (>= 1).
    seed : int, optional
        Seed; the same seed gives byte-identical deviations.

    Returns
    -------
    StressDeviations or str
        The deviations, or the reason there are none (too little history before the window).
    """
    before = np.asarray(full_close[:i0], dtype=float)[-(FIT_DAYS * 24 + 1) :]
    returns = np.diff(np.log(before))
    returns = returns[np.isfinite(returns)]
    if returns.size < MIN_FIT_HOURS:
        return (
            f"only {returns.size} hourly returns in the {FIT_DAYS} days before the window; "
            f"need {MIN_FIT_HOURS}"
        )
    fit = stress.fit_fhs(returns)
    prices = stress.stress_paths(fit, 1.0, n_steps, n_paths, seed=seed, step_seconds=3600)
    dev = np.log(prices)
    dev[:, 0] = 0.0
    label = (
        f"GARCH(1,1)-t on {returns.size} hourly returns before the window; "
        f"persistence {fit.persistence:.3f}"
    )
    return StressDeviations(dev, seed, label, hashlib.sha256(dev.tobytes()).hexdigest()[:16])


#: The forecast-driven margin whose gain over each of its controls gets its own interval.
MODEL_POLICY = "forecast_mm:model"
#: Prefix of the forecast-driven margin and its controls.
MARGIN_PREFIX = "forecast_mm:"


def _comparisons(names: Sequence[str]) -> list[tuple[int, int | None]]:
    """``(policy, versus)`` indices into ``names[1:]``; ``None``: versus the status quo."""
    out: list[tuple[int, int | None]] = [(j, None) for j in range(len(names) - 1)]
    rest = list(names[1:])
    if MODEL_POLICY in rest:
        m = rest.index(MODEL_POLICY)
        out += [(m, j) for j, n in enumerate(rest) if n.startswith(MARGIN_PREFIX) and j != m]
    return out


def interval_rows(
    key: dict[str, object],
    replayer: Replayer,
    policies: Sequence[MarketPolicy],
    bars: tuple[np.ndarray, np.ndarray, np.ndarray],
    paths: StressDeviations,
    real_rows: Sequence[dict],
) -> list[dict]:
    """Rows of ``market_policy_intervals``: real value and p5 / p50 / p95 per comparison.

    One row per policy after the status quo and metric (``versus = "status_quo"``: the avoided
    figure), and, when the forecast-driven margin ``forecast_mm:model`` is replayed, one per
    control of it (``versus`` = the control): the model's avoided figure minus the control's on
    each path (positive = the forecast did better than the control).

    Parameters
    ----------
    key : dict
        ``event_id``, ``asset`` and ``impact_y`` of the rows.
    replayer : callable
        The replay with everything but the policy and the bars fixed.
    policies : sequence of MarketPolicy
        The status quo first.
    bars : tuple of numpy.ndarray
        The fundamental close, low and high.
    paths : StressDeviations
        The stress paths.
    real_rows : sequence of dict
        The real-path ``market_policy_results`` rows of the same policies (same order).

    Returns
    -------
    list of dict
    """
    avoided = avoided_on_paths(replayer, policies, *bars, paths.deviations)
    names = [p.name for p in policies]
    rows = []
    for j, v in _comparisons(names):
        for f, metric in enumerate(INTERVAL_METRICS):
            values = avoided[j, :, f] if v is None else avoided[j, :, f] - avoided[v, :, f]
            real = float(real_rows[j + 1][metric])
            if v is not None:
                real -= float(real_rows[v + 1][metric])
            s = stress.interval_summary(values, level=0.9)
            rows.append(
                {
                    **key,
                    "policy": names[j + 1],
                    "versus": names[0] if v is None else names[v + 1],
                    "metric": metric,
                    "n_paths": paths.n_paths,
                    "seed": paths.seed,
                    "paths_digest": paths.digest,
                    "fit_label": paths.fit_label,
                    "real": real,
                    "p5": s.lo,
                    "p50": s.median,
                    "p95": s.hi,
                    "excludes_zero": bool(s.lo > ZERO_TOL[metric] or s.hi < -ZERO_TOL[metric]),
                }
            )
    return rows
