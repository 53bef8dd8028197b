"""Synthetic inputs whose outputs were captured from the pre-library pipeline code.

``tests/fixtures/refactor_reference.json`` holds what the pipeline's old ``build_policy``,
``make_impact``, ``book_fingerprint``, ``fit_shape``, ``path_fingerprint``, ``score_pooled``,
``score_window`` and ``margin_frame`` returned for these inputs (captured before the domain logic
moved into :mod:`backtest` and :mod:`forecasting`). The tests rebuild the same inputs and compare.
Do not change an input without recapturing from the old code.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from backtest import Book, PricePath, synthetic_book

POLICY_NAMES = (
    "instant",
    "dutch_auction",
    "circuit_breaker",
    "liquidity_buffer",
    "batch",
    "staged",
    "dynamic_ltv",
    "dynamic_ltv+dutch_auction",
)

#: Maker ETH-B-like auction defaults (what ``maker_params`` hands over on the Maker book).
AUCTION_DEFAULTS = {
    "buf": 1.3,
    "tail_seconds": 8_400.0,
    "cusp": 0.35,
    "chip": 0.0005,
    "tip_usd": 250.0,
    "hole_usd": 20e6,
    "chop": 0.13,
    "dust_usd": 20_000.0,
    "cut": 0.99,
    "step_seconds": 60.0,
}

OVERRIDES: dict[str, list[dict[str, Any]]] = {
    "instant": [{"close_factor": 0.5, "bonus": 0.08}, {"protocol_fee": 0.1}],
    "dutch_auction": [{"buf": 1.1, "cusp": 0.5}, {"taker_capacity_usd": 5e6}],
    "circuit_breaker": [
        {"close_factor": 0.5, "drop_threshold": 0.05},
        {"lookback_steps": 7, "bonus": 0.1},
        {"cooldown_steps": 3},
    ],
    "liquidity_buffer": [{"capacity_usd": 1e6}, {"discount": 0.02, "unwind_usd_per_step": 5e3}],
    "batch": [{"interval_steps": 3}, {"bonus": 0.07}],
    "staged": [{"target_health": 1.3, "min_interval_steps": 2}, {"euler_discount": True}],
    "dynamic_ltv": [
        {"penalty": 0.02, "close_factor": 0.5},
        {"reference_threshold": 0.9, "bonus": 0.06},
        {"max_step_change": 0.001},
    ],
    "dynamic_ltv+dutch_auction": [
        {"penalty": 0.02, "buf": 1.1},
        {"reference_threshold": 0.88, "cusp": 0.3, "target_health": 1.1},
    ],
}

#: Parameters added to a policy after the reference was captured (issue #15: batch's sale rate);
#: the captured "accepted parameters" lists do not have them.
ADDED_AFTER_CAPTURE: frozenset[str] = frozenset({"sale_share"})


def without_added(message: str) -> str:
    """``message`` with the parameters of :data:`ADDED_AFTER_CAPTURE` dropped from its lists."""
    for name in ADDED_AFTER_CAPTURE:
        message = message.replace(f", {name}", "").replace(f"--{name.replace('_', '-')}, ", "")
    return message


#: Parameters no part of the policy accepts (must raise, naming the policy and the parameter).
BAD_OVERRIDES: dict[str, dict[str, Any]] = {
    "instant": {"buf": 1.1},
    "dutch_auction": {"close_factor": 0.5},
    "circuit_breaker": {"penalty": 0.01},
    "liquidity_buffer": {"bonus": 0.05},
    "batch": {"lookback_steps": 3},
    "staged": {"capacity_usd": 1.0},
    "dynamic_ltv": {"buf": 1.1, "nonsense": 1},
    "dynamic_ltv+dutch_auction": {"close_factor": 0.5},
}


def margin_thresholds(n: int) -> tuple[np.ndarray, float]:
    """A deterministic threshold path (tightening then relaxing) and its reference."""
    t = np.linspace(0.0, 1.0, n)
    th = 0.86 - 0.06 * np.sin(np.pi * t)
    return th, 0.86


def policy_cases() -> list[dict[str, Any]]:
    """Every policy name × step size × (defaults, overrides, bad overrides) × auction defaults."""
    cases = []
    for name in POLICY_NAMES:
        for step_seconds in (60.0, 3_600.0, 300.0, 7.0):
            sets = [{}, *OVERRIDES[name], BAD_OVERRIDES[name]]
            for k, params in enumerate(sets):
                for auction in (None, AUCTION_DEFAULTS):
                    if auction is not None and "dutch_auction" not in name:
                        continue
                    for with_margin in (True, False) if name.startswith("dynamic") else (False,):
                        n = 40
                        margin = margin_thresholds(n) if with_margin else None
                        cases.append(
                            {
                                "id": f"{name}|{step_seconds}|{k}|{auction is not None}|"
                                f"{with_margin}",
                                "name": name,
                                "params": dict(params),
                                "step_seconds": step_seconds,
                                "total_debt": 250e6 if k % 2 == 0 else 1234.5,
                                "max_threshold": 0.83,
                                "auction_defaults": auction,
                                "margin": margin,
                            }
                        )
    return cases


def impact_cases() -> list[dict[str, Any]]:
    """Impact names × calibrations (with and without order-book depth) × overrides."""
    cals = [
        None,
        {"adv_usd": 3.1e9, "sigma_day": 0.052, "depth_1pct_usd": None},
        {"adv_usd": 7.7e8, "sigma_day": 0.11, "depth_1pct_usd": 4.2e7},
    ]
    cases = []
    for name in ("sqrt", "linear", "cpmm", "none"):
        for ci, cal in enumerate(cals):
            for step_seconds in (60.0, 3_600.0, 1.0):
                for h in (None, math.inf, 12.5):
                    for depth in (None, 5e7):
                        for y in (1.0, 0.7):
                            cases.append(
                                {
                                    "id": f"{name}|{ci}|{step_seconds}|{h}|{depth}|{y}",
                                    "name": name,
                                    "cal": cal,
                                    "step_seconds": step_seconds,
                                    "half_life_steps": h,
                                    "depth_usd": depth,
                                    "y": y,
                                }
                            )
    return cases


def book_cases() -> list[tuple[str, Book, float]]:
    """Synthetic books (seeded) and a tiny one the shape fit must reject."""
    out = []
    for seed, n in ((0, 500), (1, 2_000), (7, 97)):
        out.append((f"synthetic-{seed}-{n}", synthetic_book(n, price=2_000.0, seed=seed), 2_000.0))
    tiny = Book(
        position_id=np.arange(5),
        collateral=np.array([1.0, 2.0, 3.0, 4.0, 5.0]),
        debt=np.array([100.0, 300.0, 200.0, 400.0, 50.0]),
        liquidation_threshold=np.full(5, 0.8),
        bonus=np.full(5, 0.05),
    )
    out.append(("tiny", tiny, 1_000.0))
    return out


def path_cases() -> list[tuple[str, PricePath]]:
    """Minute and hourly paths."""
    out = []
    for step in (60, 3_600):
        n = 120
        ts = np.datetime64("2021-05-19T00:00:00", "ms") + np.arange(1, n + 1) * np.timedelta64(
            step, "s"
        )
        price = 3_000.0 * np.exp(np.cumsum(np.sin(np.arange(n) / 7.0) * 0.01))
        out.append((f"path-{step}", PricePath(ts=ts, price=price)))
    return out


def forecast_case() -> tuple[pl.DataFrame, pl.DataFrame, list[dict[str, Any]]]:
    """Two overlapping windows of hourly forecasts (garch, ewma) at horizons 1, 4 and 24 h."""
    rng = np.random.default_rng(42)
    t0 = datetime(2022, 6, 1, tzinfo=UTC)
    wins = [
        {
            "window_id": "w1",
            "start": t0,
            "n": 240,
            "focus": [("e1", t0 + timedelta(hours=100), t0 + timedelta(hours=160))],
        },
        {
            "window_id": "w2",
            "start": t0 + timedelta(hours=180),
            "n": 200,
            "focus": [
                ("e2", t0 + timedelta(hours=200), t0 + timedelta(hours=230)),
                ("e3", t0 + timedelta(hours=300), t0 + timedelta(hours=330)),
            ],
        },
    ]
    fc_rows: dict[str, list[Any]] = {
        "event_id": [],
        "model": [],
        "origin_ts": [],
        "horizon_hours": [],
        "sigma": [],
    }
    rz_rows: dict[str, list[Any]] = {
        "event_id": [],
        "origin_ts": [],
        "horizon_hours": [],
        "realized_return": [],
        "realized_var": [],
    }
    for w in wins:
        for i in range(w["n"]):
            origin = w["start"] + timedelta(hours=i)
            for h in (1, 4, 24):
                base = 0.01 * math.sqrt(h) * (1.0 + 0.5 * math.sin(i / 20.0))
                r = float(rng.normal(0.0, base))
                rz_rows["event_id"].append(w["window_id"])
                rz_rows["origin_ts"].append(origin)
                rz_rows["horizon_hours"].append(h)
                rz_rows["realized_return"].append(r)
                rz_rows["realized_var"].append(r * r + float(rng.uniform(0.0, base**2)))
                for model, bias in (("garch", 1.0), ("ewma", 1.2)):
                    fc_rows["event_id"].append(w["window_id"])
                    fc_rows["model"].append(model)
                    fc_rows["origin_ts"].append(origin)
                    fc_rows["horizon_hours"].append(h)
                    fc_rows["sigma"].append(base * bias * float(rng.uniform(0.8, 1.25)))
    fc = pl.DataFrame(fc_rows).with_columns(pl.col("horizon_hours").cast(pl.Int32))
    rz = pl.DataFrame(rz_rows).with_columns(pl.col("horizon_hours").cast(pl.Int32))
    return fc, rz, wins


def margin_horizon_cases() -> list[tuple[int, ...]]:
    """Horizon sets for the 24 h margin sigma (exact, scaled from 4 h, ties)."""
    return [(1, 4, 24), (1, 4), (1,), (4, 24)]
