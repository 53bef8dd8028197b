"""The pipeline's thin adapters still give what the pipeline gave before the move to the libraries.

``pipelines.backtests.policy.build_policy``, ``pipelines.backtests.calibration.make_impact`` and
the book/path/pooling wrappers are compared, errors included, with the outputs captured from the
old pipeline code (``tests/fixtures/refactor_reference.json``). Synthetic inputs; no warehouse is
opened.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import refactor_cases as cases
from polars.testing import assert_frame_equal

from pipelines.backtests import books, calibration, policy
from pipelines.backtests.margin import MarginPath
from pipelines.errors import CascadeError, UnknownNameError
from pipelines.forecasts import compute
from pipelines.forecasts.plan import FocusSpan, ForecastWindow

REFERENCE = json.loads((Path(__file__).parent / "fixtures" / "refactor_reference.json").read_text())


@pytest.mark.parametrize("case", cases.policy_cases(), ids=lambda c: c["id"])
def test_build_policy_adapter_matches_captured(case):
    ref = {r["id"]: r for r in REFERENCE["policies"]}[case["id"]]
    margin = None
    if case["margin"] is not None:
        th, cap = case["margin"]
        margin = MarginPath(
            thresholds=th,
            reference_threshold=cap,
            run_id="r",
            event_id=None,
            model="m",
            asset="ETH",
        )

    def build():
        return policy.build_policy(
            case["name"],
            case["params"],
            step_seconds=case["step_seconds"],
            total_debt=case["total_debt"],
            max_threshold=case["max_threshold"],
            auction_defaults=case["auction_defaults"],
            margin=margin,
        )

    if "error" in ref:
        with pytest.raises(CascadeError) as info:
            build()
        assert type(info.value).__name__ == ref["error"]
        assert cases.without_added(str(info.value)) == ref["message"]
        return
    got = build()
    assert type(got).__name__ == ref["type"]
    assert json.loads(json.dumps(got.params())) == ref["params"]


def test_policy_names_and_params_adapter():
    from backtest.policies.factory import ON_REQUEST_POLICIES

    assert policy.POLICY_NAMES == (*cases.POLICY_NAMES, *ON_REQUEST_POLICIES)
    assert not set(ON_REQUEST_POLICIES) & set(policy.SWEEP_POLICIES)
    assert policy.DYNAMIC_POLICIES == ("dynamic_ltv", "dynamic_ltv+dutch_auction")
    assert "close_factor" in policy.policy_param_names("circuit_breaker")
    with pytest.raises(UnknownNameError, match="unknown policy 'nope'; known policies: instant"):
        policy.check_policy_name("nope")


@pytest.mark.parametrize("case", cases.impact_cases(), ids=lambda c: c["id"])
def test_make_impact_adapter_matches_captured(case):
    ref = {r["id"]: r for r in REFERENCE["impacts"]}[case["id"]]
    cal = None
    if case["cal"] is not None:
        cal = calibration.MarketCalibration(
            asset="ETH", start=None, end=None, depth_rule="x", source="x", **case["cal"]
        )

    def build():
        return calibration.make_impact(
            case["name"],
            cal,
            step_seconds=case["step_seconds"],
            half_life_steps=case["half_life_steps"],
            depth_usd=case["depth_usd"],
            y=case["y"],
        )

    if "error" in ref:
        with pytest.raises(CascadeError) as info:  # the old code's bare assert is now a message
            build()
        if ref["error"] == "CascadeError":
            assert str(info.value) == ref["message"]
        return
    got = build()
    assert json.loads(json.dumps(got.params())) == ref["params"]


def test_unknown_impact_name():
    with pytest.raises(UnknownNameError, match="unknown impact model"):
        calibration.make_impact("quadratic", None, step_seconds=60.0)


def test_book_and_path_wrappers():
    for bid, book, price in cases.book_cases():
        ref = {b["id"]: b for b in REFERENCE["books"]}[bid]
        assert books.book_fingerprint(book) == ref["fingerprint"]
        if "shape_error" in ref:
            with pytest.raises(CascadeError, match="need at least 10"):
                books.fit_shape(book, price)
        else:
            assert books.fit_shape(book, price) == books.SyntheticShape(**ref["shape"])
    for pid, path in cases.path_cases():
        ref = {p["id"]: p for p in REFERENCE["paths"]}[pid]
        assert calibration.path_fingerprint(path) == ref["fingerprint"]


def test_forecast_pooling_wrappers():
    fc, rz, wins = cases.forecast_case()
    windows = [
        ForecastWindow(
            window_id=w["window_id"],
            name=w["window_id"],
            load_start=w["start"],
            forecast_start=None,
            forecast_end=None,
            focus=tuple(FocusSpan(event_id=e, start=s, end=t) for e, s, t in w["focus"]),
        )
        for w in wins
    ]
    pooled = compute.score_pooled(fc, rz, windows)
    assert_frame_equal(pooled, pl.DataFrame(REFERENCE["pooled"], schema=pooled.schema))
    per_window = pl.concat(
        [
            compute.score_window(
                fc.filter(pl.col("event_id") == w.window_id).drop("event_id"),
                rz.filter(pl.col("event_id") == w.window_id).drop("event_id"),
                w,
            )
            for w in windows
        ]
    )
    assert_frame_equal(per_window, pl.DataFrame(REFERENCE["per_window"], schema=per_window.schema))
    for hs in cases.margin_horizon_cases():
        mf = compute.margin_frame(
            fc.with_columns(asset=pl.lit("ETH")).filter(pl.col("event_id") == "w1"),
            compute.fcst.AAVE_V3_WETH,
            hs,
        )
        got = mf.with_columns(pl.col("ts").cast(pl.String)).drop("asset").to_dict(as_series=False)
        assert got == REFERENCE["margins"][",".join(map(str, hs))]
