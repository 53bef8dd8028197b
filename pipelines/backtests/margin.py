"""Threshold paths for ``dynamic_ltv`` read from ``margin_paths`` (filled by ``cascade forecast``).

Rule: for a model ``M`` and asset ``A``, the margin path of one forecast window (``run_id``,
``event_id``) that covers the backtest — first row at or before the first step, last row no more
than 2 h before the last step — is used: a window of the backtest's own event first (forecast
windows of nearby crashes overlap), then any other covering window (e.g. a ``--start/--end``
run); among those the latest run (``forecast_runs.created_at``, then run id). Each step takes
the last threshold whose ``ts`` is at or before the step time (as-of *backward*: a threshold is
used only once it has been published, never earlier). The path's maximum over the window (its
cap, the governance threshold it tightens from) is the reference: each position's own threshold
is scaled by ``LT(t) / cap``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, timedelta

import duckdb
import numpy as np

from pipelines.errors import CascadeError

__all__ = ["MarginPath", "MissingMarginPathError", "available_models", "margin_threshold_path"]

_TOLERANCE = timedelta(hours=2)


class MissingMarginPathError(CascadeError):
    """No forecast run has a margin path for the model and asset over the backtest window."""


@dataclass(frozen=True, kw_only=True, eq=False)
class MarginPath:
    """A per-step threshold path aligned to a price path.

    Attributes
    ----------
    thresholds : numpy.ndarray
        One threshold per step.
    reference_threshold : float
        Cap of the margin path (maximum over the forecast run).
    run_id, event_id, model, asset : str
        Where it came from (``event_id`` = the forecast window).
    """

    thresholds: np.ndarray
    reference_threshold: float
    run_id: str
    event_id: str | None
    model: str
    asset: str


def available_models(con: duckdb.DuckDBPyConnection, asset: str) -> list[str]:
    """Models with at least one margin path for ``asset``, sorted."""
    rows = con.execute(
        "SELECT DISTINCT model FROM margin_paths WHERE asset = ? ORDER BY model", [asset.upper()]
    ).fetchall()
    return [r[0] for r in rows]


def _missing(model: str, asset: str, label: str, event_id: str | None) -> MissingMarginPathError:
    events = f"--events {event_id} " if event_id else ""
    return MissingMarginPathError(
        f"no margin path for model {model}, asset {asset} over {label}; run "
        f"`cascade forecast {events}--models {model} --assets {asset}` first"
    )


def margin_threshold_path(
    con: duckdb.DuckDBPyConnection,
    *,
    model: str,
    asset: str,
    step_ts: np.ndarray,
    event_id: str | None = None,
) -> MarginPath:
    """Align the latest covering margin path of ``(model, asset)`` to the step times.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Warehouse connection.
    model, asset : str
        Forecast model and asset.
    step_ts : numpy.ndarray
        Step times (``datetime64``, UTC, naive), increasing.
    event_id : str, optional
        Event of the backtest (for the error message).

    Returns
    -------
    MarginPath

    Raises
    ------
    MissingMarginPathError
        When no run covers the window: "no margin path for model M, asset A over event E; run
        `cascade forecast --events E --models M --assets A` first".
    """
    asset = asset.upper()
    ts = np.asarray(step_ts).astype("datetime64[us]")
    first = ts[0].astype(object).replace(tzinfo=UTC)
    last = ts[-1].astype(object).replace(tzinfo=UTC)
    label = f"event {event_id}" if event_id else f"{first:%Y-%m-%d %H:%M}..{last:%Y-%m-%d %H:%M}"
    runs = con.execute(
        "SELECT m.run_id, m.event_id, max(m.liquidation_threshold) AS cap, "
        "any_value(f.created_at) AS created "
        "FROM margin_paths m LEFT JOIN forecast_runs f USING (run_id) "
        "WHERE m.model = ? AND m.asset = ? GROUP BY m.run_id, m.event_id "
        "HAVING min(m.ts) <= ? AND max(m.ts) >= ? "
        "ORDER BY (m.event_id IS NOT DISTINCT FROM ?) DESC, created DESC NULLS LAST, "
        "m.run_id DESC, m.event_id",
        [model, asset, first, last - _TOLERANCE, event_id],
    ).fetchall()
    if not runs:
        raise _missing(model, asset, label, event_id)
    run_id, window, cap, _created = runs[0]
    rows = con.sql(
        "SELECT ts, liquidation_threshold FROM margin_paths WHERE run_id = ? AND model = ? "
        "AND asset = ? AND event_id IS NOT DISTINCT FROM ? ORDER BY ts",
        params=[run_id, model, asset, window],
    ).pl()
    m_ts = rows["ts"].dt.replace_time_zone(None).to_numpy().astype("datetime64[us]")
    idx = np.searchsorted(m_ts, ts, side="right") - 1
    if (idx < 0).any():  # pragma: no cover - excluded by the HAVING clause
        raise _missing(model, asset, label, event_id)
    lt = rows["liquidation_threshold"].to_numpy()[idx]
    return MarginPath(
        thresholds=lt,
        reference_threshold=float(cap),
        run_id=str(run_id),
        event_id=window,
        model=model,
        asset=asset,
    )
