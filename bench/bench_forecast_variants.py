"""Speed/QLIKE trade-offs of the tree models (a script, not a test).

Each variant (model, parameters, refit rule) is run walk-forward on the inputs of
``bench/bench_forecast.py`` (BTC/ETH hourly, the 7 crash windows with 90 days before each, 1 h,
first origin after 720 bars). Prints the model time as a ratio to ``garch-wk`` (GARCH, weekly +
drift refits, as the pipeline) **in the same process**, and the QLIKE on the lead-ins (origins
before the crash: where a choice is made) and on the crash spans, each the mean over the 14 runs.

Usage::

    python bench/bench_forecast_variants.py rf-40,rf-20,hgb-60,hgb-30 [--mirror DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

import forecasting as fcst

ROOT = Path(__file__).resolve().parents[1]
FEATHER = "Roshan7869__algotrading/user_data/data/binance/{a}_USDT-1h.feather"
WEEKLY = {"refit_every": 168, "drift_check_every": 24}
VARIANTS: dict[str, tuple[str, dict, dict]] = {
    "garch-wk": ("garch", {}, WEEKLY),
    "rf-40": ("rf", {"n_estimators": 40}, {"refit_every": 24}),
    "rf-20": ("rf", {"n_estimators": 20}, {"refit_every": 24}),
    "rf-40-48h": ("rf", {"n_estimators": 40}, {"refit_every": 48}),
    "rf-40-wk": ("rf", {"n_estimators": 40}, WEEKLY),
    "rf-40-wk-only": ("rf", {"n_estimators": 40}, {"refit_every": 168}),
    "rf-20-ms25": ("rf", {"n_estimators": 20, "max_samples": 0.25}, {"refit_every": 24}),
    "rf-20-leaf60": ("rf", {"n_estimators": 20, "min_samples_leaf": 60}, {"refit_every": 24}),
    "rf-15": ("rf", {"n_estimators": 15}, {"refit_every": 24}),
    "rf-20-ms35": ("rf", {"n_estimators": 20, "max_samples": 0.35}, {"refit_every": 24}),
    "rf-12": ("rf", {"n_estimators": 12}, {"refit_every": 24}),
    "rf-10": ("rf", {"n_estimators": 10}, {"refit_every": 24}),
    "hgb-60": ("hgb", {"max_iter": 60, "learning_rate": 0.05, "max_bins": 64}, {"refit_every": 24}),
    "hgb-30": ("hgb", {"max_iter": 30, "learning_rate": 0.1, "max_bins": 64}, {"refit_every": 24}),
    "hgb-30-bins32": (
        "hgb",
        {"max_iter": 30, "learning_rate": 0.1, "max_bins": 32},
        {"refit_every": 24},
    ),
    "hgb-30-bins16": (
        "hgb",
        {"max_iter": 30, "learning_rate": 0.1, "max_bins": 16},
        {"refit_every": 24},
    ),
    "hgb-20-bins32": (
        "hgb",
        {"max_iter": 20, "learning_rate": 0.15, "max_bins": 32},
        {"refit_every": 24},
    ),
    "hgb-15-bins32": (
        "hgb",
        {"max_iter": 15, "learning_rate": 0.2, "max_bins": 32},
        {"refit_every": 24},
    ),
    "hgb-12-bins32": (
        "hgb",
        {"max_iter": 12, "learning_rate": 0.25, "max_bins": 32},
        {"refit_every": 24},
    ),
    "hgb-10-bins32": (
        "hgb",
        {"max_iter": 10, "learning_rate": 0.3, "max_bins": 32},
        {"refit_every": 24},
    ),
    "hgb-20": ("hgb", {"max_iter": 20, "learning_rate": 0.15, "max_bins": 64}, {"refit_every": 24}),
    "hgb-60-48h": (
        "hgb",
        {"max_iter": 60, "learning_rate": 0.05, "max_bins": 64},
        {"refit_every": 48},
    ),
    "hgb-60-wk": ("hgb", {"max_iter": 60, "learning_rate": 0.05, "max_bins": 64}, WEEKLY),
    "hgb-60-wk-only": (
        "hgb",
        {"max_iter": 60, "learning_rate": 0.05, "max_bins": 64},
        {"refit_every": 168},
    ),
}


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", help=f"comma list of {', '.join(VARIANTS)}")
    parser.add_argument("--mirror", default=os.environ.get("CASCADE_DATA_MIRROR"))
    args = parser.parse_args()
    mirror = Path(args.mirror) if args.mirror else ROOT.parent / "shared" / "data"
    sel = ["garch-wk", *(v for v in args.variants.split(",") if v != "garch-wk")]
    events = json.loads((ROOT / "data" / "events.json").read_text())
    seconds = dict.fromkeys(sel, 0.0)
    losses: dict[str, dict[str, list[float]]] = {v: {"lead": [], "crash": []} for v in sel}
    for asset in ("BTC", "ETH"):
        hourly = pl.read_ipc(mirror / FEATHER.format(a=asset)).rename({"date": "ts"})
        for ev in events:
            start, end = _ts(ev["start_ts"]), _ts(ev["end_ts"])
            bars = hourly.filter(
                (pl.col("ts") >= start - timedelta(days=90)) & (pl.col("ts") < end)
            )
            crash_start = pl.Series([start]).cast(bars["ts"].dtype)[0]
            realized = fcst.realized_targets(bars, 1)
            for v in sel:
                name, params, refit = VARIANTS[v]
                t0 = time.perf_counter()
                fc = fcst.walk_forward(
                    bars, fcst.make_model(name, **params), horizon_bars=1, min_train=720, **refit
                )
                seconds[v] += time.perf_counter() - t0
                j = fc.join(realized, on=["origin_ts", "horizon_hours"])
                for part, keep in (
                    ("lead", j["origin_ts"] < crash_start),
                    ("crash", j["origin_ts"] >= crash_start),
                ):
                    jj = j.filter(keep)
                    losses[v][part].append(fcst.qlike(jj["realized_var"], jj["sigma"] ** 2))
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'variant':15s} {'s':>7s} {'/garch':>7s} {'QLIKE lead-ins':>15s} {'QLIKE crash':>12s}")
    for v in sel:
        print(
            f"{v:15s} {seconds[v]:7.1f} {seconds[v] / seconds['garch-wk']:7.2f} "
            f"{np.mean(losses[v]['lead']):15.4f} {np.mean(losses[v]['crash']):12.4f}"
        )


if __name__ == "__main__":
    main()
