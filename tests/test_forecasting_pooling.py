"""Pooled scoring across windows and horizon scaling (:mod:`forecasting.pooling`), synthetic data.

The reference values in ``tests/fixtures/refactor_reference.json`` were produced by the pipeline
code (``pipelines/forecasts/compute.py``) before this logic moved into the library.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl
import pytest
import refactor_cases as cases
from polars.testing import assert_frame_equal

import forecasting as fcst
from forecasting.pooling import SCORE_COLUMNS, Span

REFERENCE = json.loads((Path(__file__).parent / "fixtures" / "refactor_reference.json").read_text())


def _spans(win: dict) -> list[Span]:
    return [
        Span(event_id=e, start=s, end=t, window_id=win["window_id"]) for e, s, t in win["focus"]
    ]


def _reference(name: str, like: pl.DataFrame) -> pl.DataFrame:
    return pl.DataFrame(REFERENCE[name], schema=like.schema)


@pytest.fixture(scope="module")
def case():
    return cases.forecast_case()


def test_score_pooled_matches_captured_pipeline_output(case):
    fc, rz, wins = case
    got = fcst.score_pooled(
        fc,
        rz,
        window_ids=[w["window_id"] for w in wins],
        spans=[s for w in wins for s in _spans(w)],
    )
    assert got.columns == list(SCORE_COLUMNS)
    assert_frame_equal(got, _reference("pooled", got), check_exact=True)
    assert set(got["scope"]) == {"window", "crash"} and set(got["event_id"]) == {"all"}


def test_score_window_matches_captured_pipeline_output(case):
    fc, rz, wins = case
    parts = []
    for w in wins:
        inside = pl.col("event_id") == w["window_id"]
        parts.append(
            fcst.score_window(
                fc.filter(inside).drop("event_id"),
                rz.filter(inside).drop("event_id"),
                window_id=w["window_id"],
                spans=_spans(w),
            )
        )
    got = pl.concat(parts)
    assert_frame_equal(got, _reference("per_window", got), check_exact=True)


def test_pooling_takes_shared_origins_once_from_the_earlier_window(case):
    fc, rz, wins = case
    ids = [w["window_id"] for w in wins]
    n = fcst.score_pooled(fc, rz, window_ids=ids).filter(
        (pl.col("metric") == "n") & (pl.col("scope") == "window")
    )
    distinct = (
        fc.unique(subset=["model", "origin_ts", "horizon_hours"])
        .group_by("model", "horizon_hours")
        .len()
    )
    joined = n.join(distinct, on=["model", "horizon_hours"])
    assert joined.height == n.height
    # realized rows are one per origin inside the data; every distinct forecast origin has one
    assert (joined["value"] == joined["len"].cast(pl.Float64)).all()
    # doubling a window's rows with another label changes nothing: the earlier window wins
    dup = fc.filter(pl.col("event_id") == "w1").with_columns(event_id=pl.lit("w0"))
    dup_rz = rz.filter(pl.col("event_id") == "w1").with_columns(event_id=pl.lit("w0"))
    again = fcst.score_pooled(
        pl.concat([fc, dup]), pl.concat([rz, dup_rz]), window_ids=["w0", *ids]
    ).filter(pl.col("scope") == "window")
    base = fcst.score_pooled(fc, rz, window_ids=ids).filter(pl.col("scope") == "window")
    assert_frame_equal(
        again.sort("model", "horizon_hours", "metric"),
        base.sort("model", "horizon_hours", "metric"),
    )


def test_score_frame_empty_inputs():
    empty = fcst.score_frame(pl.DataFrame(), pl.DataFrame(), ["garch"])
    assert empty.height == 0 and empty.schema["horizon_hours"] == pl.Int32


@pytest.mark.parametrize(
    ("horizons", "h", "scale"),
    [
        ((1, 4, 24), 24, 1.0),
        ((1, 4), 4, math.sqrt(6.0)),
        ((1,), 1, math.sqrt(24.0)),
        ((12, 36), 36, math.sqrt(24.0 / 36.0)),
        ((4, 24), 24, 1.0),
    ],
)
def test_horizon_scale(horizons, h, scale):
    assert fcst.horizon_scale(horizons) == (h, scale)
    assert fcst.nearest_horizon(horizons) == h


@pytest.mark.parametrize("horizons", cases.margin_horizon_cases())
def test_margin_sigma_scaling_matches_captured_pipeline_output(case, horizons):
    """The 24 h sigma of the margin path: the captured pipeline values, from the library."""
    fc, _rz, _wins = case
    ref = REFERENCE["margins"][",".join(map(str, horizons))]
    h, scale = fcst.horizon_scale(horizons)
    parts = []
    for (model,), grp in fc.filter(
        (pl.col("event_id") == "w1") & (pl.col("horizon_hours") == h)
    ).group_by(["model"], maintain_order=True):
        sig = grp.select("origin_ts", (pl.col("sigma") * scale).alias("sigma")).sort("origin_ts")
        path = fcst.liquidation_threshold_path(
            sig, fcst.AAVE_V3_WETH, bar_seconds=3600, details=True
        )
        parts.append(path.select(pl.lit(model).alias("model"), "liquidation_threshold", "sigma"))
    got = pl.concat(parts)
    assert got["model"].to_list() == ref["model"]
    assert got["sigma"].to_list() == ref["sigma_24h"]
    assert got["liquidation_threshold"].to_list() == ref["liquidation_threshold"]
