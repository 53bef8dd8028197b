"""``cascade forecast``: the Prefect flow ``forecast`` from the command line.

Prefect is imported only when there is something to compute: names are validated and an
already-stored run is recognised on a read-only connection first.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from pipelines.cli.names import require_db, resolve_events, resolve_models
from pipelines.cli.quiet import add_verbose_flag, prepare_prefect
from pipelines.cli.registry import command, with_args

_ALL = "all"


def _split(values: list[str] | None) -> list[str] | None:
    """Flatten repeatable, comma-separated options (``--x a,b --x c``)."""
    if not values:
        return None
    out = [v.strip() for raw in values for v in raw.split(",") if v.strip()]
    return None if not out or out == [_ALL] else out


def _forecast_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--assets", action="append", help="comma list (default BTC,ETH,SOL); any asset in prices"
    )
    p.add_argument(
        "--models",
        action="append",
        help="comma list of ewma,garch,gjr,egarch,har,hgb,rf (default all)",
    )
    p.add_argument(
        "--events", action="append", help="comma list of event ids or W1..W7 (default all 7)"
    )
    p.add_argument("--start", help="forecast the range [start, end) instead of events (UTC date)")
    p.add_argument("--end", help="end of the range (default: last bar)")
    p.add_argument(
        "--horizon",
        action="append",
        help="1h or 24h (repeatable or comma list; default both)",
    )
    p.add_argument("--history-days", type=int, default=90, help="history before each window")
    p.add_argument("--refit-every", type=int, default=24, help="re-estimate every N hours")
    p.add_argument(
        "--margin-preset",
        default="aave-v3-weth",
        choices=["aave-v3-weth", "maker-eth-b"],
        help="margin policy of the threshold paths",
    )
    p.add_argument("--plots", type=Path, help="write PNGs and the score tables to this directory")
    add_verbose_flag(p)


@command("forecast", "walk-forward volatility forecasts on the crash windows (Prefect flow)")
@with_args(_forecast_args)
def cmd_forecast(args: argparse.Namespace) -> int:
    """Validate, run the flow unless the run is stored, print the score table and the run id."""
    t0 = time.perf_counter()
    models = resolve_models(args.models)  # names and paths first: a typo costs no import
    events = resolve_events(args.events)
    require_db(args.db, "forecast")
    from pipelines.forecasts.plan import build_config
    from pipelines.reporting.forecast_report import score_table, text_table
    from pipelines.warehouse.connection import connect
    from pipelines.warehouse.forecast_store import run_exists

    params = {
        "assets": _split(args.assets),
        "models": models,
        "events": events,
        "start": args.start,
        "end": args.end,
        "horizons": [int(h) for h in _horizons(args.horizon)],
        "history_days": args.history_days,
        "refit_every": args.refit_every,
        "margin_preset": args.margin_preset,
    }
    con = connect(args.db, read_only=True)
    try:
        config = build_config(con, **params)
        stored = run_exists(con, config.run_id)
    finally:
        con.close()
    run_id = config.run_id
    if stored:
        print(f"forecast run {run_id} already stored (same config and data); not recomputed")
    else:
        prepare_prefect(args)  # a reused server; Prefect's INFO logs only with --verbose
        from pipelines.forecasts.flow import forecast_flow

        run_id = forecast_flow(db_path=str(args.db), **params)
    con = connect(args.db, read_only=True)
    try:
        print(text_table(score_table(con, run_id), run_id))
        if args.plots:
            from pipelines.reporting.forecast_report import write_forecast_plots

            paths = write_forecast_plots(con, run_id, args.plots)
            print(f"{len(paths)} files written to {args.plots}")
    finally:
        con.close()
    print(f"run id: {run_id}  [{time.perf_counter() - t0:.1f} s]")
    return 0


def _horizons(values: list[str] | None) -> list[str]:
    from pipelines.forecasts.plan import resolve_horizons

    return [str(h) for h in resolve_horizons(_split(values))]
