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
from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import polars as pl

import forecasting as fcst
from pipelines.errors import CascadeError

__all__ = [
    "CONTROL_SOURCES",
    "THRESHOLD_SOURCES",
    "MarginPath",
    "MissingMarginPathError",
    "available_models",
    "book_margin_policy",
    "margin_threshold_path",
    "threshold_path",
]

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
    run_id, window, cap = _covering_run(con, model=model, asset=asset, ts=ts, event_id=event_id)
    rows = con.sql(
        "SELECT ts, liquidation_threshold FROM margin_paths WHERE run_id = ? AND model = ? "
        "AND asset = ? AND event_id IS NOT DISTINCT FROM ? ORDER BY ts",
        params=[run_id, model, asset, window],
    ).pl()
    lt = _as_of(ts, rows)
    if np.isnan(lt).any():  # pragma: no cover - excluded by the covering rule
        raise _missing(model, asset, f"event {event_id}", event_id)
    return MarginPath(
        thresholds=lt,
        reference_threshold=cap,
        run_id=run_id,
        event_id=window,
        model=model,
        asset=asset,
    )


def _covering_run(
    con: duckdb.DuckDBPyConnection,
    *,
    model: str,
    asset: str,
    ts: np.ndarray,
    event_id: str | None,
) -> tuple[str, str | None, float]:
    """``(run_id, forecast window, cap)`` of the margin path that covers the steps (module rule)."""
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
    return str(run_id), window, float(cap)


# --- threshold sources: the model's path with the book's margin preset, and its controls --------

#: Threshold sources of a dynamic-LTV run: the model's forecast and the four controls that share
#: everything but the threshold path (DESIGN, "Evidence").
THRESHOLD_SOURCES: tuple[str, ...] = ("model", "constant", "lagged", "shuffled", "oracle")
#: Controls (every source but the model).
CONTROL_SOURCES: tuple[str, ...] = THRESHOLD_SOURCES[1:]
#: Seed of the shuffled control.
SHUFFLE_SEED = 20_211_119


def book_margin_policy(book_name: str) -> fcst.MarginPolicy:
    """The margin preset that matches a book's protocol.

    ``maker-ethb`` → :data:`forecasting.MAKER_ETH_B` (threshold 1/1.3, auction slippage);
    every other book (Aave-style, synthetic, files) → :data:`forecasting.AAVE_V3_WETH`.
    """
    return fcst.MAKER_ETH_B if book_name == "maker-ethb" else fcst.AAVE_V3_WETH


def _sigma_24h(
    con: duckdb.DuckDBPyConnection, run_id: str, model: str, asset: str, window: str | None
) -> pl.DataFrame:
    """The model's 24 h sigma per forecast origin (``origin_ts = ts − 1 h``)."""
    rows = con.sql(
        "SELECT ts - INTERVAL 1 HOUR AS origin_ts, sigma_24h AS sigma FROM margin_paths "
        "WHERE run_id = ? AND model = ? AND asset = ? AND event_id IS NOT DISTINCT FROM ? "
        "AND sigma_24h IS NOT NULL ORDER BY ts",
        params=[run_id, model, asset, window],
    ).pl()
    return rows.with_columns(pl.col("origin_ts").dt.replace_time_zone("UTC"))


def _as_of(ts: np.ndarray, path: pl.DataFrame) -> np.ndarray:
    """Per step, the last threshold whose ``ts`` is at or before the step (backward as-of)."""
    m_ts = path["ts"].dt.replace_time_zone(None).to_numpy().astype("datetime64[us]")
    idx = np.searchsorted(m_ts, ts, side="right") - 1
    lt = path["liquidation_threshold"].to_numpy()
    out = np.where(idx >= 0, lt[np.clip(idx, 0, None)], np.nan)
    return out


def _hourly_returns(
    con: duckdb.DuckDBPyConnection, asset: str, start: datetime, end: datetime
) -> pl.DataFrame:
    """Hourly log returns ``ts, ret`` of ``asset`` over ``[start, end)`` (preferred series)."""
    from pipelines.backtests.calibration import hourly_bars

    bars, _label = hourly_bars(con, asset.upper(), start, end)
    if bars.height < 2:
        raise MissingMarginPathError(
            f"no hourly prices of {asset} between {start:%Y-%m-%d %H:%M} and "
            f"{end:%Y-%m-%d %H:%M} for the threshold-path controls; load them with "
            "`cascade ingest` or `cascade ingest-prices`"
        )
    return fcst.log_returns(bars.select("ts", "close"))


def threshold_path(
    con: duckdb.DuckDBPyConnection,
    *,
    model: str,
    asset: str,
    step_ts: np.ndarray,
    book_name: str,
    source: str = "model",
    event_id: str | None = None,
) -> MarginPath:
    """A dynamic-LTV threshold path from the model's forecast or one of its controls.

    The model's 24 h sigma (stored with its margin path) is turned into thresholds with the
    *book's* margin preset (:func:`book_margin_policy`), so a Maker book tightens from 1/1.3 and
    an Aave-style book from 0.83. The controls share everything but the path
    (:mod:`forecasting.controls`): ``constant`` (the model's average tightening), ``lagged``
    (trailing 24 h realized volatility, no model), ``shuffled`` (the model's thresholds permuted,
    seed :data:`SHUFFLE_SEED`) and ``oracle`` (the realized volatility of the next 24 h).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Warehouse connection.
    model, asset : str
        Forecast model and asset.
    step_ts : numpy.ndarray
        Step times (``datetime64``, UTC, naive), increasing.
    book_name : str
        The book (chooses the margin preset).
    source : str
        One of :data:`THRESHOLD_SOURCES`.
    event_id : str, optional
        Event of the backtest.

    Returns
    -------
    MarginPath
        ``reference_threshold`` is the preset's cap (the same for the model and every control).
    """
    from forecasting import controls

    if source not in THRESHOLD_SOURCES:
        raise CascadeError(
            f"unknown threshold source {source!r}; known: {', '.join(THRESHOLD_SOURCES)}"
        )
    policy = book_margin_policy(book_name)
    ts = np.asarray(step_ts).astype("datetime64[us]")
    run_id, window, _cap = _covering_run(
        con, model=model, asset=asset.upper(), ts=ts, event_id=event_id
    )
    sigma = _sigma_24h(con, run_id, model, asset.upper(), window)
    model_path = fcst.liquidation_threshold_path(sigma, policy, bar_seconds=3600)
    thresholds = _as_of(ts, model_path)
    thresholds = np.where(np.isnan(thresholds), policy.upper, thresholds)
    if source != "model":
        first = ts[0].astype(object).replace(tzinfo=UTC)
        last = ts[-1].astype(object).replace(tzinfo=UTC)
        returns = _hourly_returns(con, asset, first - timedelta(days=4), last + timedelta(days=2))
        origins = sigma.filter(
            (pl.col("origin_ts") <= last) & (pl.col("origin_ts") >= first - timedelta(days=2))
        )["origin_ts"]
        try:
            paths = controls.build_control_paths(
                thresholds,
                ts,
                returns,
                policy,
                reference_threshold=policy.upper,
                origins=origins,
                seed=SHUFFLE_SEED,
            )
        except fcst.ForecastingError as exc:
            raise MissingMarginPathError(
                f"threshold control {source!r} for {asset} over event {event_id}: {exc}"
            ) from exc
        thresholds = np.asarray(paths.as_dict()[_CONTROL_FIELD[source]], dtype=float)
    return MarginPath(
        thresholds=thresholds,
        reference_threshold=float(policy.upper),
        run_id=run_id,
        event_id=window,
        model=model,
        asset=asset.upper(),
    )


_CONTROL_FIELD = {
    "constant": "constant",
    "lagged": "lagged_realized",
    "shuffled": "shuffled",
    "oracle": "oracle",
}
