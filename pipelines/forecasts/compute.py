"""Thin calls into :mod:`forecasting` for one forecast run (no Prefect here).

``prepare_inputs`` reads the warehouse (bars, stress features) for every (asset, window);
``run_model`` is the unit of work of one Prefect task (one asset × model × window);
``assemble_run`` scores the forecasts, builds the realized volatility and the margin paths.
``compute_forecast_run`` does all of it sequentially, for callers without Prefect.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from time import perf_counter

import duckdb
import polars as pl

import forecasting as fcst
from pipelines.forecasts.data import (
    HOUR,
    load_hourly_bars,
    load_intraday_rv,
    load_stress_features,
)
from pipelines.forecasts.plan import SCHEDULED_REFIT_MODELS, ForecastConfig, ForecastWindow

__all__ = [
    "WindowInput",
    "ForecastRun",
    "prepare_window",
    "prepare_inputs",
    "run_model",
    "realized_frame",
    "score_window",
    "score_pooled",
    "margin_frame",
    "assemble_run",
    "compute_forecast_run",
    "MODEL_COST_ORDER",
]

#: Models from the slowest to the fastest (submit the slow ones first).
#: Models fed the intraday realized variance (HAR features); the GARCH family and EWMA use
#: the hourly returns only.
RV_MODELS = ("har", "hgb", "rf", "hgbc", "hgbch")
MODEL_COST_ORDER = ("rf", "hgb", "hgbc", "hgbch", "egarch", "gjr", "garch", "har", "ewma")
DRAWDOWN = "drawdown_24"
CALENDAR = "next_hour"


@dataclass(frozen=True, kw_only=True, eq=False)
class WindowInput:
    """Everything one (asset, window) needs: regular hourly bars with their features.

    Attributes
    ----------
    asset : str
        Asset symbol.
    window : ForecastWindow
        The forecast window.
    bars : polars.DataFrame
        Gap-free hourly bars (``ts, open, high, low, close, volume``) plus feature columns.
    exog_cols : tuple of str
        Feature columns for the machine-learning models.
    source : str
        Price series used (``spot/binance/3600s``).
    filled : int
        Missing hours filled with a flat bar.
    feature_notes : tuple of str
        Why stress features were left out.
    rv_col : str, optional
        Column of ``bars`` with the hourly realized variance from sub-hour bars (``rv``), when a
        complete 5-minute/1-minute series exists; else ``None`` (squared hourly returns).
    rv_source : str, optional
        Series the realized variance comes from.
    """

    asset: str
    window: ForecastWindow
    bars: pl.DataFrame
    exog_cols: tuple[str, ...]
    source: str
    filled: int
    feature_notes: tuple[str, ...] = ()
    rv_col: str | None = None
    rv_source: str | None = None


@dataclass(frozen=True, kw_only=True, eq=False)
class ForecastRun:
    """The rows of one forecast run, ready for :func:`~.store.write_forecast_run`.

    Attributes
    ----------
    config : ForecastConfig
        The run's config (``config.run_id`` is the key).
    forecasts, realized, scores, margins : polars.DataFrame
        Rows of ``forecasts``, ``realized_vol``, ``forecast_scores`` and ``margin_paths``
        (without ``run_id``).
    notes : tuple of str
        Skipped (asset, window) pairs, price series and features used.
    seconds : float
        Wall time of the computation.
    """

    config: ForecastConfig
    forecasts: pl.DataFrame
    realized: pl.DataFrame
    scores: pl.DataFrame
    margins: pl.DataFrame
    notes: tuple[str, ...]
    seconds: float

    @property
    def run_id(self) -> str:
        """The run id (hash of the config)."""
        return self.config.run_id


def _first_origin_guess(window: ForecastWindow, min_train: int) -> datetime:
    """The first forecast origin when the data is complete (the series is chosen before it)."""
    return window.forecast_start or window.load_start + timedelta(hours=min_train)


def prepare_window(
    con: duckdb.DuckDBPyConnection,
    asset: str,
    window: ForecastWindow,
    config: ForecastConfig,
) -> WindowInput | str:
    """Load and align the inputs of one (asset, window).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Warehouse connection.
    asset : str
        Asset symbol.
    window : ForecastWindow
        The window.
    config : ForecastConfig
        The run config (horizons, ``min_train``, models).

    Returns
    -------
    WindowInput or str
        The inputs, or a note saying why the pair is skipped (no data, too little history).
    """
    where = f"{asset} {window.window_id}"
    end_load = (
        window.forecast_end + timedelta(hours=max(config.horizons))
        if window.forecast_end is not None
        else None
    )
    hb = load_hourly_bars(
        con,
        asset,
        window.load_start,
        end_load,
        select_until=_first_origin_guess(window, config.min_train),
    )
    if hb is None or hb.bars.height < 2:
        return f"{where}: skipped, no {asset} prices from {window.load_start:%Y-%m-%d} on"
    bars = fcst.regularize_bars(hb.bars, bar_seconds=HOUR)
    filled = int(bars["filled"].sum())
    bars = bars.drop("filled")
    ts = bars["ts"]
    end = window.forecast_end
    usable = ts.filter(ts < end) if end is not None else ts
    if window.forecast_start is not None:
        before = int((ts < window.forecast_start).sum())
        ok = before >= config.min_train and usable.len() > before
    else:
        before = usable.len() - 1
        ok = before > config.min_train
    if not ok:
        return (
            f"{where}: skipped, only {max(before, 0)} hourly {asset} bars before the forecast "
            f"origins ({hb.label}, from {ts[0]:%Y-%m-%d %H:%M}); min_train needs "
            f"{config.min_train} — the data does not cover this window"
        )
    rv_col = rv_source = None
    if config.intraday_rv:
        irv = load_intraday_rv(
            con,
            asset,
            window.load_start,
            end_load,
            hb.bars,
            select_until=_first_origin_guess(window, config.min_train),
        )
        if irv is not None:
            r2 = (pl.col("close").log().diff() ** 2).fill_null(0.0)
            bars = bars.join(
                irv.rv.select("ts", "rv").cast({"ts": bars.schema["ts"]}), on="ts", how="left"
            ).with_columns(pl.coalesce("rv", r2).alias("rv"))
            rv_col, rv_source = "rv", irv.label
    exog: tuple[str, ...] = ()
    feature_notes: tuple[str, ...] = ()
    if any(fcst.MODELS[m].uses_exog for m in config.models):
        bars = fcst.recent_drawdown(bars, window_bars=24, name=DRAWDOWN)
        # coverage is judged on data known at the first forecast origin only (causal)
        stress = load_stress_features(
            con, asset, window.load_start, _first_origin_guess(window, config.min_train)
        )
        bars = stress.attach(bars)
        exog = (DRAWDOWN, *stress.columns)
        feature_notes = stress.notes
    return WindowInput(
        asset=asset,
        window=window,
        bars=bars,
        exog_cols=exog,
        source=hb.label,
        filled=filled,
        feature_notes=feature_notes,
        rv_col=rv_col,
        rv_source=rv_source,
    )


def prepare_inputs(
    con: duckdb.DuckDBPyConnection, config: ForecastConfig
) -> tuple[list[WindowInput], list[str]]:
    """:func:`prepare_window` for every (asset, window) of the run.

    Returns
    -------
    (list of WindowInput, list of str)
        The inputs, and notes (skips, price series, features) for the run log.
    """
    inputs: list[WindowInput] = []
    notes: list[str] = []
    for window in config.windows:
        for asset in config.assets:
            got = prepare_window(con, asset, window, config)
            if isinstance(got, str):
                notes.append(got)
                continue
            inputs.append(got)
            where = f"{asset} {window.window_id}"
            filled = f", {got.filled} missing hours filled flat" if got.filled else ""
            notes.append(f"{where}: {got.source}, {got.bars.height} bars{filled}")
            notes.append(
                f"{where}: realized variance from {got.rv_source} bars"
                if got.rv_source
                else f"{where}: realized variance from squared hourly returns (no complete "
                "5-minute/1-minute series)"
            )
            if got.exog_cols:
                dropped = (
                    f" (left out: {'; '.join(got.feature_notes)})" if got.feature_notes else ""
                )
                notes.append(f"{where}: hgb/rf features HAR + {', '.join(got.exog_cols)}{dropped}")
    return inputs, notes


def run_model(inp: WindowInput, model: str, config: ForecastConfig) -> pl.DataFrame:
    """Walk-forward forecasts of one model on one (asset, window).

    Returns
    -------
    polars.DataFrame
        ``event_id, model, asset, origin_ts, horizon_hours (int), sigma``; non-finite sigmas
        (too short a history for a model's features) are dropped.
    """
    uses_exog = fcst.MODELS[model].uses_exog
    exog_cols = inp.exog_cols if uses_exog else ()
    bars = inp.bars
    if fcst.MODELS[model].uses_calendar:  # hour of day of the target bar (no data)
        bars = fcst.next_bar_hour(bars, name=CALENDAR, bar_seconds=HOUR)
        exog_cols = (*exog_cols, CALENDAR)
    scheduled = model in SCHEDULED_REFIT_MODELS and config.arch_refit_every > config.refit_every
    out = fcst.walk_forward(
        bars,
        model,
        horizon_bars=list(config.horizons),
        refit_every=config.arch_refit_every if scheduled else config.refit_every,
        drift_check_every=config.refit_every if scheduled else None,
        min_train=config.min_train,
        start=inp.window.forecast_start,
        end=inp.window.forecast_end,
        exog_cols=exog_cols,
        rv_col=inp.rv_col if model in RV_MODELS else None,
        bar_seconds=HOUR,
    )
    return out.filter(pl.col("sigma").is_finite() & (pl.col("sigma") > 0)).select(
        pl.lit(inp.window.window_id).alias("event_id"),
        "model",
        pl.lit(inp.asset).alias("asset"),
        "origin_ts",
        pl.col("horizon_hours").round(0).cast(pl.Int32),
        "sigma",
    )


def realized_frame(inp: WindowInput, horizons: Sequence[int], origins: pl.Series) -> pl.DataFrame:
    """Realized return and variance after each origin, for every horizon.

    Returns
    -------
    polars.DataFrame
        ``origin_ts, horizon_hours (int), realized_return, realized_var`` for the given origins
        whose horizon lies inside the data.
    """
    keep = pl.DataFrame({"origin_ts": origins.unique().sort()})
    frames = [
        fcst.realized_targets(
            inp.bars.select("ts", "close", *([inp.rv_col] if inp.rv_col else [])),
            h,
            rv_col=inp.rv_col,
            bar_seconds=HOUR,
        ).with_columns(pl.lit(h, dtype=pl.Int32).alias("horizon_hours"))
        for h in horizons
    ]
    return pl.concat(frames).join(keep, on="origin_ts", how="semi")


def _spans(window: ForecastWindow) -> list[fcst.Span]:
    return [
        fcst.Span(event_id=f.event_id, start=f.start, end=f.end, window_id=window.window_id)
        for f in window.focus
    ]


def score_window(
    forecasts: pl.DataFrame, realized: pl.DataFrame, window: ForecastWindow
) -> pl.DataFrame:
    """Scores of one (asset, window): :func:`forecasting.score_window` over its focus spans.

    Returns
    -------
    polars.DataFrame
        ``event_id, scope, model, horizon_hours, metric, value``.
    """
    return fcst.score_window(forecasts, realized, window_id=window.window_id, spans=_spans(window))


def score_pooled(
    forecasts: pl.DataFrame, realized: pl.DataFrame, windows: Sequence[ForecastWindow]
) -> pl.DataFrame:
    """Scores pooled over every window of one asset: :func:`forecasting.score_pooled`.

    Returns
    -------
    polars.DataFrame
        ``event_id, scope, model, horizon_hours, metric, value`` with ``event_id = 'all'``.
    """
    return fcst.score_pooled(
        forecasts,
        realized,
        window_ids=[w.window_id for w in windows],
        spans=[s for w in windows for s in _spans(w)],
    )


def margin_frame(
    forecasts: pl.DataFrame,
    policy: fcst.MarginPolicy,
    horizons: Sequence[int],
    *,
    realized: pl.DataFrame | None = None,
    z_method: str = "normal",
    first_passage: bool = False,
) -> pl.DataFrame:
    """Dynamic liquidation-threshold path per model from the 24 h sigma.

    The 24 h forecast is used when it was requested; otherwise the horizon closest to 24 h,
    scaled by ``sqrt(24 / h)`` (:func:`forecasting.horizon_scale`).

    Parameters
    ----------
    forecasts : polars.DataFrame
        One (asset, window)'s forecasts (``run_model`` output, any models).
    policy : MarginPolicy
        Threshold band, liquidation cost, quantile and ramp.
    horizons : sequence of int
        Horizons of the run.
    realized : polars.DataFrame, optional
        ``origin_ts, horizon_hours, realized_return`` of the window; needed when ``z_method``
        is not ``normal``.
    z_method : str
        ``normal``: the policy's fixed ``z`` (default). Otherwise a tail method of
        :func:`forecasting.tail_quantile` estimated walk-forward on the model's own past
        standardized residuals at the horizon (99 %).
    first_passage : bool
        Quantile of the minimum within the horizon (reflection approximation).

    Returns
    -------
    polars.DataFrame
        ``event_id, model, asset, ts, liquidation_threshold, sigma_24h``.
    """
    h, scale = fcst.horizon_scale(horizons, 24.0)
    at_h = forecasts.filter(pl.col("horizon_hours") == h)
    per_origin_z = z_method != "normal" or first_passage
    if per_origin_z and at_h.height:
        level = 1.0 - float(_tail_prob(policy.z))
        rz = realized if realized is not None else _no_realized(at_h)
        at_h = fcst.var_multipliers(
            at_h,
            rz,
            method=z_method,  # type: ignore[arg-type]
            levels=(level,),
            first_passage=first_passage,
        ).rename({fcst.var_column(level): "z"})
    parts = []
    for (event_id, model, asset), grp in at_h.group_by(
        ["event_id", "model", "asset"], maintain_order=True
    ):
        sig = grp.select(
            "origin_ts",
            (pl.col("sigma") * scale).alias("sigma"),
            *(["z"] if per_origin_z else []),
        ).sort("origin_ts")
        path = fcst.liquidation_threshold_path(sig, policy, bar_seconds=HOUR, details=True)
        parts.append(
            path.select(
                pl.lit(event_id).alias("event_id"),
                pl.lit(model).alias("model"),
                pl.lit(asset).alias("asset"),
                "ts",
                "liquidation_threshold",
                pl.col("sigma").alias("sigma_24h"),
            )
        )
    if not parts:
        return pl.DataFrame(
            schema={
                "event_id": pl.String,
                "model": pl.String,
                "asset": pl.String,
                "ts": pl.Datetime("us", "UTC"),
                "liquidation_threshold": pl.Float64,
                "sigma_24h": pl.Float64,
            }
        )
    return pl.concat(parts)


def _tail_prob(z: float) -> float:
    """Tail probability ``1 − Φ(z)`` of the policy's normal quantile (0.01 for 2.326)."""
    return round(0.5 * math.erfc(z / math.sqrt(2.0)), 4)


def _no_realized(forecasts: pl.DataFrame) -> pl.DataFrame:
    return forecasts.select("origin_ts", "horizon_hours").with_columns(
        realized_return=pl.lit(None, dtype=pl.Float64)
    )


def assemble_run(
    config: ForecastConfig,
    inputs: Sequence[WindowInput],
    forecasts: Sequence[pl.DataFrame],
    notes: Sequence[str],
    seconds: float,
) -> ForecastRun:
    """Realized volatility, scores and margin paths for the forecasts of a run.

    Parameters
    ----------
    config : ForecastConfig
        The run config.
    inputs : sequence of WindowInput
        The prepared (asset, window) inputs.
    forecasts : sequence of polars.DataFrame
        ``run_model`` outputs (any order).
    notes : sequence of str
        Run notes.
    seconds : float
        Wall time spent so far.

    Returns
    -------
    ForecastRun
    """
    t0 = perf_counter()
    fc_all = pl.concat(forecasts) if forecasts else pl.DataFrame()
    realized_parts, score_parts, margin_parts, scored_parts = [], [], [], []
    for inp in inputs:
        fc = fc_all.filter(
            (pl.col("asset") == inp.asset) & (pl.col("event_id") == inp.window.window_id)
        )
        if fc.height == 0:
            continue
        rz = realized_frame(inp, config.horizons, fc["origin_ts"]).with_columns(
            event_id=pl.lit(inp.window.window_id), asset=pl.lit(inp.asset)
        )
        realized_parts.append(rz)
        # calibrated VaR multipliers from each model's own past residuals (walk-forward)
        fc_k = fcst.var_multipliers(fc, rz, method=config.var_method)  # type: ignore[arg-type]
        scored_parts.append(fc_k)
        score_parts.append(score_window(fc_k, rz, inp.window).with_columns(asset=pl.lit(inp.asset)))
        margin_parts.append(
            margin_frame(
                fc,
                config.margin_policy,
                config.horizons,
                realized=rz,
                z_method=config.margin_z,
                first_passage=config.margin_first_passage,
            )
        )
    realized = pl.concat(realized_parts) if realized_parts else _empty_realized()
    fc_scored = pl.concat(scored_parts) if scored_parts else fc_all
    for asset in config.assets:
        fc = fc_scored.filter(pl.col("asset") == asset) if fc_scored.height else fc_scored
        if fc.height == 0:
            continue
        rz = realized.filter(pl.col("asset") == asset).drop("asset")
        score_parts.append(
            score_pooled(fc.drop("asset"), rz, config.windows).with_columns(asset=pl.lit(asset))
        )
    scores = (
        pl.concat(score_parts).select(
            "model",
            "asset",
            "event_id",
            "horizon_hours",
            "scope",
            "metric",
            pl.col("value").fill_nan(None),
        )
        if score_parts
        else pl.DataFrame()
    )
    return ForecastRun(
        config=config,
        forecasts=fc_all,
        realized=realized.select(
            "event_id",
            "asset",
            "origin_ts",
            "horizon_hours",
            pl.col("realized_var").sqrt().alias("realized_sigma"),
            "realized_return",
        ),
        scores=scores,
        margins=pl.concat(margin_parts) if margin_parts else pl.DataFrame(),
        notes=tuple(notes),
        seconds=seconds + perf_counter() - t0,
    )


def _empty_realized() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "origin_ts": pl.Datetime("us", "UTC"),
            "realized_return": pl.Float64,
            "realized_var": pl.Float64,
            "horizon_hours": pl.Int32,
            "event_id": pl.String,
            "asset": pl.String,
        }
    )


def compute_forecast_run(con: duckdb.DuckDBPyConnection, config: ForecastConfig) -> ForecastRun:
    """The whole run, sequentially and without Prefect (for notebooks and other pipelines).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Warehouse connection (read-only is enough).
    config : ForecastConfig
        From :func:`~pipelines.forecasts.plan.build_config`.

    Returns
    -------
    ForecastRun
        Write it with :func:`~pipelines.warehouse.forecast_store.write_forecast_run`.
    """
    t0 = perf_counter()
    inputs, notes = prepare_inputs(con, config)
    forecasts = [run_model(inp, m, config) for inp in inputs for m in config.models]
    return assemble_run(config, inputs, forecasts, notes, perf_counter() - t0)
