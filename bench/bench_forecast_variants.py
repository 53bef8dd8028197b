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
DAILY = {"refit_every": 24}
WEEKLY = {"refit_every": 168, "drift_check_every": 24}
#: Refit rules other than daily, tried on the original ensembles (name suffix -> rule).
REFITS = {"48h": {"refit_every": 48}, "wk": WEEKLY, "wk-only": {"refit_every": 168}}
#: rf variants, refit daily: name suffix -> parameters.
RF = {
    "40": {"n_estimators": 40},
    "20": {"n_estimators": 20},
    "15": {"n_estimators": 15},
    "12": {"n_estimators": 12},
    "10": {"n_estimators": 10},
    "20-ms25": {"n_estimators": 20, "max_samples": 0.25},
    "20-ms35": {"n_estimators": 20, "max_samples": 0.35},
    "20-leaf60": {"n_estimators": 20, "min_samples_leaf": 60},
}
#: hgb variants, refit daily: name suffix -> (iterations, learning rate, bins).
HGB = {
    "60": (60, 0.05, 64),
    "30": (30, 0.1, 64),
    "20": (20, 0.15, 64),
    "30-bins32": (30, 0.1, 32),
    "30-bins16": (30, 0.1, 16),
    "20-bins32": (20, 0.15, 32),
    "15-bins32": (15, 0.2, 32),
    "12-bins32": (12, 0.25, 32),
    "10-bins32": (10, 0.3, 32),
}
#: The ensembles the refit rules were tried on.
REFIT_BASES = (("rf", "40"), ("hgb", "60"))


def _variants() -> dict[str, tuple[str, dict, dict]]:
    """Variant name -> (model, parameters, refit rule), from the tables above."""
    tables: dict[str, dict[str, dict]] = {
        "rf": RF,
        "hgb": {
            k: {"max_iter": it, "learning_rate": lr, "max_bins": bins}
            for k, (it, lr, bins) in HGB.items()
        },
    }
    out: dict[str, tuple[str, dict, dict]] = {"garch-wk": ("garch", {}, WEEKLY)}
    for model, table in tables.items():
        out |= {f"{model}-{k}": (model, params, DAILY) for k, params in table.items()}
    for model, k in REFIT_BASES:
        out |= {f"{model}-{k}-{s}": (model, tables[model][k], r) for s, r in REFITS.items()}
    return out


VARIANTS = _variants()


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
