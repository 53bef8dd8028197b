"""Readable pictures (#13), fast tier: synthetic frames through the real drawing functions.

The heatmap's colours are normalised per crash (a crash with $10k figures keeps its contrast next
to one with $9M), each cell prints its amount, and the event figure draws the price deviation.
The PNGs of a real report are checked in ``tests/test_first_hour_run.py`` (integration).
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from pipelines.reporting.report import plot_event
from pipelines.reporting.scoreboard_plot import _short_column, _usd, normalise_rows, plot_scoreboard


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_rows_are_normalised_per_crash() -> None:
    data = np.array([[9e6, -3e6, np.nan], [1e4, -2e4, 0.0]])
    out = normalise_rows(data)
    assert np.nanmax(np.abs(out), axis=1).tolist() == [1.0, 1.0]
    assert out[1, 1] == -1.0 and out[1, 0] == 0.5 and np.isnan(out[0, 2])
    flat = normalise_rows(np.array([[1.0, 1.0]]), center=1.0)
    assert flat.tolist() == [[0.0, 0.0]]


def test_cell_labels() -> None:
    assert _usd(3_880_000) == "$3.88M"
    assert _usd(-12_400_000) == "-$12.4M"
    assert _usd(-93_000) == "-$93k"
    assert _usd(652) == "$652"
    assert _short_column("dynamic_ltv [garch]") == "dynLTV:garch"
    assert _short_column("circuit_breaker") == "breaker"


def _frame() -> pl.DataFrame:
    rows = []
    for w, scale in (("W1", 1e7), ("W2", 1e4)):
        for k, policy in enumerate(("instant", "dutch_auction", "dynamic_ltv [ewma]")):
            rows.append(
                {
                    "window_label": w,
                    "event_id": f"event-{w}",
                    "book": "synthetic",
                    "policy_label": policy,
                    "avoided_induced_usd": scale * (k - 1),
                    "amplification": 1.0 + 0.01 * k,
                }
            )
    return pl.DataFrame(rows)


def test_scoreboard_png(tmp_path: Path) -> None:
    png = plot_scoreboard(_frame(), tmp_path / "scoreboard.png")
    width, height = _png_size(png)
    assert 800 <= width <= 3000 and 400 <= height <= 3000


def test_event_figure_png(tmp_path: Path) -> None:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    steps = []
    for run_id, impact in (("a", 0.01), ("b", 0.02)):
        for i in range(48):
            p = 2000.0 - 5 * i
            steps.append(
                {
                    "run_id": run_id,
                    "ts": t0 + timedelta(hours=i),
                    "p_exo": p,
                    "p_mkt": p * (1 - impact * np.sin(i / 8) ** 2),
                    "liquidated_usd": 1e5 * (i % 7 == 0),
                    "cf_liquidated_usd": 8e4 * (i % 7 == 0),
                }
            )
    png = plot_event(
        pl.DataFrame(steps), {"a": "instant", "b": "dutch"}, tmp_path / "e.png", title="t"
    )
    width, height = _png_size(png)
    assert 800 <= width <= 2000 and 600 <= height <= 2000
