"""Forecast-vs-realized volatility plot around a crash window (matplotlib, Agg canvas)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from forecasting.errors import InvalidBarsError

__all__ = ["plot_forecast_window"]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def plot_forecast_window(
    forecasts: pl.DataFrame,
    realized: pl.DataFrame,
    path: str | Path,
    *,
    start: datetime,
    end: datetime,
    horizon_hours: float = 1.0,
    models: Sequence[str] | None = None,
    title: str | None = None,
    shade: tuple[datetime, datetime] | None = None,
    shade_label: str = "crash window",
    smooth_bars: int = 6,
) -> Path:
    """Write a PNG of forecast sigma vs realized volatility for several models.

    The realized volatility of each origin is ``sqrt(realized_var)`` over the same horizon
    (shown as grey dots, plus its centred rolling mean over ``smooth_bars`` origins as a guide);
    each model's ``sigma`` is a line. Values are in percent per horizon (not annualized). The
    figure is drawn on a bare Agg canvas, so importing this module never changes the global
    matplotlib backend.

    Parameters
    ----------
    forecasts : polars.DataFrame
        ``model, origin_ts, horizon_hours, sigma``.
    realized : polars.DataFrame
        ``origin_ts, horizon_hours, realized_var`` (from ``realized_targets``).
    path : str or Path
        Output PNG path (parent directories are created).
    start, end : datetime
        Plotted origin range (UTC; naive datetimes are taken as UTC).
    horizon_hours : float
        Horizon to plot.
    models : sequence of str, optional
        Models to draw (all by default).
    title : str, optional
        Figure title.
    shade : tuple of datetime, optional
        A span to shade, e.g. the crash window itself.
    shade_label : str
        Legend entry of the shaded span.
    smooth_bars : int
        Window of the realized-volatility guide line.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    lo, hi = _utc(start), _utc(end)
    fc = forecasts.filter(
        (pl.col("horizon_hours") == horizon_hours)
        & (pl.col("origin_ts") >= lo)
        & (pl.col("origin_ts") < hi)
    )
    if models is not None:
        fc = fc.filter(pl.col("model").is_in(list(models)))
    if fc.height == 0:
        raise InvalidBarsError(
            f"no forecasts with horizon_hours={horizon_hours} between {lo} and {hi}; check the "
            "window and the horizon"
        )
    rz = realized.filter(
        (pl.col("horizon_hours") == horizon_hours)
        & (pl.col("origin_ts") >= lo)
        & (pl.col("origin_ts") < hi)
    ).sort("origin_ts")

    fig = Figure(figsize=(11, 5.5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if rz.height:
        rvol = np.sqrt(rz["realized_var"].to_numpy()) * 100.0
        times = rz["origin_ts"].to_list()
        ax.scatter(times, rvol, s=6, color="0.6", label="realized |vol|", zorder=1)
        guide = (
            rz.select(
                (pl.col("realized_var").sqrt() * 100.0).rolling_mean(
                    smooth_bars, center=True, min_samples=1
                )
            )
            .to_series()
            .to_numpy()
        )
        ax.plot(
            times,
            guide,
            color="0.25",
            lw=1.0,
            ls="--",
            label=f"realized ({smooth_bars}-origin mean)",
            zorder=2,
        )
    order = fc["model"].unique(maintain_order=True).to_list()
    for name in order:
        sub = fc.filter(pl.col("model") == name).sort("origin_ts")
        ax.plot(
            sub["origin_ts"].to_list(),
            (sub["sigma"] * 100.0).to_list(),
            lw=1.3,
            label=name,
            zorder=3,
        )
    if shade is not None:
        ax.axvspan(
            _utc(shade[0]), _utc(shade[1]), color="tab:red", alpha=0.08, zorder=0,
            label=shade_label,
        )  # fmt: skip
    ax.set_ylabel(f"volatility over {horizon_hours:g} h (%)")
    ax.set_xlabel("forecast origin (UTC)")
    ax.set_title(title or f"Forecast vs realized volatility, {horizon_hours:g} h horizon")
    ax.grid(alpha=0.3)
    # Outside the axes, right: a legend never covers the data.
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0.0)
    fig.autofmt_xdate()
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out
