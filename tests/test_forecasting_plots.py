"""The crash-window plot writes a PNG."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import matplotlib
import polars as pl
import pytest

import forecasting as fcst
from forecasting.errors import InvalidBarsError

pytestmark = pytest.mark.integration  # needs the real-data mirror

ETH = "Roshan7869__algotrading/user_data/data/binance/ETH_USDT-1h.feather"
EVENT = datetime(2024, 8, 5, tzinfo=UTC)


def test_plot_forecast_window(mirror_dir: Path, tmp_path: Path) -> None:
    backend = matplotlib.get_backend()
    bars = pl.read_ipc(mirror_dir / ETH).rename({"date": "ts"})
    bars = bars.filter(pl.col("ts") < EVENT + timedelta(days=2)).tail(1100)
    fc = pl.concat([fcst.walk_forward(bars, m, min_train=900) for m in ("ewma", "garch", "har")])
    realized = fcst.realized_targets(bars, 1)
    out = fcst.plot_forecast_window(
        fc,
        realized,
        tmp_path / "sub" / "w6.png",
        start=EVENT - timedelta(days=3),
        end=EVENT + timedelta(days=2),
        shade=(EVENT, EVENT + timedelta(days=1)),
        title="W6 ETH",
    )
    assert out.exists() and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000
    assert matplotlib.get_backend() == backend  # the global backend is left alone
    with pytest.raises(InvalidBarsError, match="no forecasts"):
        fcst.plot_forecast_window(
            fc,
            realized,
            tmp_path / "x.png",
            start=EVENT,
            end=EVENT + timedelta(days=1),
            horizon_hours=24.0,
        )
