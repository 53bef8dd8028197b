"""Benchmark of the forecasting library (a script, not a test).

All models, BTC and ETH hourly, the 7 crash windows of ``data/events.json`` with 90 days of bars
before each window start (bars = [start - 90 d, end)), 1 h horizon, expanding window, first
origin after ``--min-train`` bars, with the pipeline's refit rule: every 24 h, except the ``arch``
models (garch, gjr, egarch) which refit every 168 h or earlier when the drift test fires
(``walk_forward(drift_check_every=24)``). The (series, model) jobs run on ``--workers``
worker processes (default 2: the target machine's cores). Reports wall and CPU time per model
and the total as a **ratio to the GARCH-only time measured in the same run** (machine load
varies, ratios travel), the script's wall and CPU time, and an **idle estimate**: the makespan
of the same job order on ``--workers`` idle workers, each job taking its measured CPU time and
each worker first paying its measured start-up (imports), plus the main process's CPU time
(data, scoring). ``--compare-daily`` also runs the arch models with the old daily refits and
prints the speed-up and the relative QLIKE change. ``--every-bar`` then measures the
refit-at-every-bar baseline on a subset (one asset, one window, the last ``--subset-hours``
origins) against refit-every-24 (a one-off check of the refit rule, not part of the timing).

Usage::

    python bench/bench_forecast.py [--mirror ../shared/data] [--json out.json] [--workers 2]
        [--compare-daily] [--every-bar] [--profile DIR]

``--profile DIR`` writes a cProfile of every job (CPU-time clock); read one with
``python -m pstats DIR/BTC-W7-rf.prof`` or merge them with :class:`pstats.Stats`.
"""

from __future__ import annotations

import argparse
import cProfile
import heapq
import json
import multiprocessing
import os
import resource
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

import forecasting as fcst

T_START = time.perf_counter()  # after the imports (their CPU time is in the main process's)
ROOT = Path(__file__).resolve().parents[1]
FEATHER = "Roshan7869__algotrading/user_data/data/binance/{asset}_USDT-1h.feather"


def _mirror(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    env = os.environ.get("CASCADE_DATA_MIRROR")
    return Path(env) if env else ROOT.parent / "shared" / "data"


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


#: Slowest first: jobs are handed out longest first, so no worker is left with a long last job.
COST_ORDER = ("hgbch", "hgbc", "hgb", "rf", "egarch", "gjr", "garch", "har", "ewma")

#: Models refit weekly or on drift (as the pipeline's ``arch_refit_every = 168``).
SCHEDULED = ("garch", "gjr", "egarch")


def _refit_kwargs(model: str, daily: bool) -> dict[str, int | None]:
    if daily or model not in SCHEDULED:
        return {"refit_every": 24, "drift_check_every": None}
    return {"refit_every": 168, "drift_check_every": 24}


def _worker_start() -> None:
    """Pay the library imports up front, so a job's time is its own (start-up measured apart)."""
    from forecasting import models, walkforward  # noqa: F401


def _run_job(job: tuple) -> tuple[str, str, float, float, float, int, pl.DataFrame]:
    series, bars, model, min_train, daily, profile_dir = job
    name = model + ("@daily" if daily else "")
    prof = cProfile.Profile(time.process_time) if profile_dir else None
    c0, t0 = time.process_time(), time.perf_counter()
    if prof is not None:
        prof.enable()
    fc = fcst.walk_forward(
        bars, model, horizon_bars=1, min_train=min_train, **_refit_kwargs(model, daily)
    )
    if prof is not None:
        prof.disable()
        prof.dump_stats(Path(profile_dir) / f"{series}-{name}.prof")
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    # process CPU time before this job minus the jobs' own: the worker's start-up
    return series, name, wall, cpu, c0, os.getpid(), fc


def _makespan(cpu: list[float], startup: list[float], workers: int) -> float:
    """Finish time of jobs taken in order by the first free of ``workers`` idle workers."""
    free = sorted(startup)[:workers] + [0.0] * max(0, workers - len(startup))
    heapq.heapify(free)
    for c in cpu:
        heapq.heappush(free, heapq.heappop(free) + c)
    return max(free)


def _every_bar(
    args: argparse.Namespace, events: list[dict], hourly: dict[str, pl.DataFrame], models: list[str]
) -> dict[str, dict[str, float]]:
    """Refit every bar vs every 24 bars on one subset (serial, in this process)."""
    # refit every bar vs every 24 bars on the same subset
    ev = next(e for e in events if e["window"] == args.subset_window)
    end = _ts(ev["end_ts"])
    bars = hourly[args.subset_asset].filter(
        (pl.col("ts") >= _ts(ev["start_ts"]) - timedelta(days=90)) & (pl.col("ts") < end)
    )
    sub_start = bars["ts"][-args.subset_hours]
    print(
        f"\nrefit-every-bar baseline: {args.subset_asset} {args.subset_window}, last "
        f"{args.subset_hours} origins (from {sub_start}), expanding window"
    )
    print(f"{'model':8s} {'every 24 s':>11s} {'every bar s':>12s} {'speed-up':>9s}")
    speedups = {}
    for m in models:
        res = {}
        for k in (24, 1):
            t0 = time.perf_counter()
            fcst.walk_forward(bars, m, horizon_bars=1, refit_every=k, start=sub_start)
            res[k] = time.perf_counter() - t0
        speedups[m] = {"every24_s": res[24], "every1_s": res[1], "ratio": res[1] / res[24]}
        print(f"{m:8s} {res[24]:11.2f} {res[1]:12.2f} {res[1] / res[24]:8.1f}x")
    slow = [m for m in models if m not in ("ewma",)]
    t24 = sum(speedups[m]["every24_s"] for m in slow)
    t1 = sum(speedups[m]["every1_s"] for m in slow)
    print(f"estimated models (all but ewma) together: {t1 / t24:.1f}x")
    return speedups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", default=None)
    parser.add_argument("--assets", default="BTC,ETH")
    parser.add_argument(
        "--models",
        default="ewma,garch,gjr,egarch,har,hgb,rf",
        help="default: the pipeline's default models (hgbc is opt-in)",
    )
    parser.add_argument("--min-train", type=int, default=720)
    parser.add_argument("--subset-asset", default="BTC")
    parser.add_argument("--subset-window", default="W7")
    parser.add_argument("--subset-hours", type=int, default=96)
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="worker processes (default 2: the target is an idle 2-core machine)",
    )
    parser.add_argument(
        "--compare-daily",
        action="store_true",
        help="also run garch/gjr/egarch with daily refits (speed-up and QLIKE change)",
    )
    parser.add_argument(
        "--every-bar",
        action="store_true",
        help="also time refits at every bar against every 24 bars on a subset (serial, slow)",
    )
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    parser.add_argument(
        "--profile",
        default=None,
        metavar="DIR",
        help="cProfile every job (CPU-time clock) into DIR/<series>-<model>.prof (slower)",
    )
    args = parser.parse_args()

    mirror = _mirror(args.mirror)
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    events = json.loads((ROOT / "data" / "events.json").read_text())
    models = args.models.split(",")
    assets = args.assets.split(",")
    hourly = {
        a: pl.read_ipc(mirror / FEATHER.format(asset=a)).rename({"date": "ts"}) for a in assets
    }

    daily_models = [m for m in models if m in SCHEDULED] if args.compare_daily else []
    times: dict[str, list[float]] = {m: [] for m in models}
    times.update({f"{m}@daily": [] for m in daily_models})
    cpus: dict[str, list[float]] = {m: [] for m in times}
    n_bars: list[int] = []
    n_origins = 0
    forecasts: list[pl.DataFrame] = []
    realized: list[pl.DataFrame] = []
    crash_starts: dict[str, datetime] = {}
    jobs = []
    for asset in assets:
        for ev in events:
            start, end = _ts(ev["start_ts"]), _ts(ev["end_ts"])
            bars = hourly[asset].filter(
                (pl.col("ts") >= start - timedelta(days=90)) & (pl.col("ts") < end)
            )
            n_bars.append(bars.height)
            series = f"{asset}-{ev['window']}"
            crash_starts[series] = pl.Series([start]).cast(bars["ts"].dtype)[0]
            realized.append(fcst.realized_targets(bars, 1).with_columns(series=pl.lit(series)))
            jobs += [(series, bars, m, args.min_train, False, args.profile) for m in models]
            jobs += [(series, bars, m, args.min_train, True, args.profile) for m in daily_models]
    jobs.sort(key=lambda j: COST_ORDER.index(j[2]) if j[2] in COST_ORDER else -1)
    wall0 = time.perf_counter()
    # Independent (series, model) runs spread over worker processes: the machine's cores.
    # One thread per worker process (OpenMP, BLAS, polars), or the processes oversubscribe
    # the cores; spawn, not fork: polars and BLAS thread pools do not survive a fork.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "POLARS_MAX_THREADS"):
        os.environ[var] = "1"
    spawn = multiprocessing.get_context("spawn")
    job_cpu: list[float] = []
    seen: dict[int, float] = {}  # worker pid -> its start-up CPU (before its first job)
    with ProcessPoolExecutor(
        max_workers=args.workers, mp_context=spawn, initializer=_worker_start
    ) as pool:
        for series, m, seconds, cpu, cpu_before, pid, fc in pool.map(_run_job, jobs):
            times[m].append(seconds)
            cpus[m].append(cpu)
            job_cpu.append(cpu)
            seen.setdefault(pid, cpu_before)
            forecasts.append(fc.with_columns(series=pl.lit(series), model=pl.lit(m)))
            if m == models[-1]:
                n_origins += fc.height
    wall = time.perf_counter() - wall0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    workers_cpu = children.ru_utime + children.ru_stime

    runs = len(assets) * len(events)
    print(
        f"bars per run: {min(n_bars)}-{max(n_bars)} (median {statistics.median(n_bars):.0f}); "
        f"{runs} runs (assets x windows); origins per model: {n_origins}"
    )
    print(f"{'model':8s} {'wall s':>8s} {'cpu s':>8s} {'per run s':>10s} {'max run s':>10s}")
    per_model = {}
    for m in models:
        total, cpu = sum(times[m]), sum(cpus[m])
        per_model[m] = {
            "total_s": total,
            "cpu_s": cpu,
            "per_run_s": total / runs,
            "max_run_s": max(times[m]),
        }
        print(f"{m:8s} {total:8.2f} {cpu:8.2f} {total / runs:10.2f} {max(times[m]):10.2f}")
    print(f"all models, all runs: {wall:.1f} s wall on {args.workers} worker process(es)")
    garch_only = sum(times["garch"]) if "garch" in times else float("nan")
    garch_cpu = sum(cpus["garch"]) if "garch" in cpus else float("nan")
    total_default = sum(sum(times[m]) for m in models)
    cpu_default = sum(sum(cpus[m]) for m in models)
    print(
        f"total of the default models / GARCH-only (same run): wall "
        f"{total_default / garch_only:.2f} (GARCH-only {garch_only:.1f} s), CPU "
        f"{cpu_default / garch_cpu:.2f} (GARCH-only {garch_cpu:.1f} s); load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    for m in daily_models:
        daily_s = sum(times[f"{m}@daily"])
        print(
            f"{m}: daily refits {daily_s:.1f} s, weekly+drift {sum(times[m]):.1f} s → "
            f"{daily_s / sum(times[m]):.1f}x faster"
        )

    # out-of-sample QLIKE at 1 h, mean over runs, on the lead-ins (origins before the crash:
    # where any design choice is made) and on the whole windows
    fc_all = pl.concat(forecasts).join(
        pl.concat(realized), on=["series", "origin_ts", "horizon_hours"]
    )
    qlikes: dict[str, float] = {}
    qlikes_lead: dict[str, float] = {}
    for m in [*models, *(f"{d}@daily" for d in daily_models)]:
        whole, lead = [], []
        for key, crash_start in crash_starts.items():
            run = fc_all.filter(pl.col("series") == key, pl.col("model") == m)
            before = run.filter(pl.col("origin_ts") < crash_start)
            whole.append(fcst.qlike(run["realized_var"], run["sigma"] ** 2))
            lead.append(fcst.qlike(before["realized_var"], before["sigma"] ** 2))
        qlikes[m], qlikes_lead[m] = statistics.mean(whole), statistics.mean(lead)
    print(
        "mean QLIKE (1 h) over runs, lead-ins | whole windows: "
        + ", ".join(f"{m} {qlikes_lead[m]:.4f} | {qlikes[m]:.4f}" for m in qlikes)
    )
    for m in daily_models:
        change = qlikes_lead[m] / qlikes_lead[f"{m}@daily"] - 1
        print(f"{m}: lead-in QLIKE, scheduled vs daily refits {100 * change:+.2f} %")

    if args.every_bar:
        speedups = _every_bar(args, events, hourly, models)
    else:
        speedups = {}

    own = resource.getrusage(resource.RUSAGE_SELF)
    main_cpu = own.ru_utime + own.ru_stime
    startup = sorted(seen.values())
    idle = main_cpu + _makespan(job_cpu, startup, args.workers)
    script_wall = time.perf_counter() - T_START
    print(
        f"\nscript: {script_wall:.1f} s wall after its imports, CPU {main_cpu:.1f} s main "
        f"process + "
        f"{workers_cpu:.1f} s workers (start-up {', '.join(f'{c:.1f}' for c in startup)} s); "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print(
        f"idle estimate on {args.workers} cores: {idle:.1f} s = main process CPU {main_cpu:.1f} s "
        f"+ makespan of the jobs' CPU times on {args.workers} idle workers after their start-up"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "runs": runs,
                    "bars_per_run": n_bars,
                    "per_model": per_model,
                    "wall_s": wall,
                    "script_wall_s": script_wall,
                    "main_cpu_s": main_cpu,
                    "workers_cpu_s": workers_cpu,
                    "worker_startup_cpu_s": startup,
                    "idle_estimate_s": idle,
                    "load_average": os.getloadavg()[0],
                    "qlike_1h": qlikes,
                    "qlike_1h_lead_in": qlikes_lead,
                    "refit_speedup": speedups,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
