"""``cascade attribute``: how much of each crash was the liquidation cascade.

Runs the Prefect flow ``attribute`` (or, with ``--no-prefect``, the same computation in
process), then prints ``cascade_attribution`` and the leverage-model check (``--policies``:
also the market-level policy comparison, the ADL rules and the DeFi book), and writes pictures
per event with ``--plots DIR``. Method: docs/market-replay.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from pipelines.cli.registry import command, print_frame, with_args
from pipelines.errors import CascadeError


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    out = [v.strip() for raw in values for v in raw.split(",") if v.strip()]
    return out or None


def _attribute_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--events", action="append", help="comma list of event ids or W1..W7")
    p.add_argument("--assets", action="append", help="comma list (default BTC,ETH)")
    p.add_argument("--plots", type=Path, help="write one PNG per event to this directory")
    p.add_argument(
        "--impact-y", type=float, default=1.0, help="square-root-law prefactor Y (default 1)"
    )
    p.add_argument("--no-prefect", action="store_true", help="compute in process, no Prefect")
    p.add_argument(
        "--policies",
        action="store_true",
        help="also print the market-level policy comparison (impact Y = 1 and 6), ADL and DeFi",
    )
    p.add_argument(
        "--stress-paths",
        type=int,
        default=None,
        help="stress paths per (event, asset) for the policy intervals (default "
        "pipelines.attribution.policy_stress.STRESS_PATHS; 0: none)",
    )
    p.add_argument("--format", default="table", choices=["table", "csv", "json"])


@command("attribute", "cascade share of each crash from a market-wide replay (Prefect flow)")
@with_args(_attribute_args)
def cmd_attribute(args: argparse.Namespace) -> int:
    """Run the replay, print the attribution and the model check."""
    import polars as pl

    from pipelines.attribution.policy_summary import (
        adl_table,
        defi_table,
        interval_overview,
        interval_table,
        policy_overview,
        policy_table,
        write_policy_plots,
    )
    from pipelines.attribution.summary import model_check_summary, write_event_plots
    from pipelines.warehouse import attribution_store as store
    from pipelines.warehouse.connection import connect

    t0 = time.perf_counter()
    if not args.impact_y > 0:
        raise CascadeError(f"--impact-y {args.impact_y!r} must be > 0 (order 1)")
    if args.stress_paths is not None and args.stress_paths < 0:
        raise CascadeError(f"--stress-paths {args.stress_paths!r} must be >= 0 (0: no intervals)")
    if not Path(args.db).exists():
        raise CascadeError(f"database {str(args.db)!r} does not exist; run `cascade ingest` first")
    events, assets = _split(args.events), _split(args.assets)
    if args.no_prefect:
        from pipelines.attribution.flow import run_attribution

        run = run_attribution(
            str(args.db),
            events=events,
            assets=assets,
            impact_y=args.impact_y,
            stress_paths=args.stress_paths,
        )
        run_id = run.run_id
        for note in run.notes:
            print(f"note: {note}")
    else:
        from pipelines.attribution.flow import attribution_flow

        run_id = attribution_flow(
            db_path=str(args.db),
            events=events,
            assets=assets,
            impact_y=args.impact_y,
            stress_paths=args.stress_paths,
        )
    con = connect(args.db, read_only=True)
    try:
        attribution = store.read_attribution(con, run_id)
        check = model_check_summary(store.read_model_check(con, run_id))
        cols = [
            "event_id", "asset", "observed_drawdown", "fundamental_drawdown", "replayed_drawdown",
            "cascade_share", "observed_liq_usd", "replayed_liq_usd", "defi_liq_usd",
            "max_cascade_depth", "drawdown_error", "consistent",
        ]  # fmt: skip
        print_frame(attribution.select(cols), args.format)
        print_frame(check, args.format)
        print_frame(store.read_impact_check(con, run_id), args.format)
        if args.policies:
            results = store.read_policy_results(con, run_id)
            print_frame(policy_overview(results), args.format)
            print_frame(policy_table(results), args.format)
            intervals = store.read_policy_intervals(con, run_id)
            if intervals.height:  # over stress paths: the overview, the cascade share's intervals
                print_frame(interval_overview(intervals), args.format)
                share = pl.col("metric") == "avoided_cascade_share"
                print_frame(interval_table(intervals).filter(share), args.format)
            print_frame(defi_table(results), args.format)
            print_frame(adl_table(store.read_adl(con, run_id)), args.format)
        if args.plots:
            for eid in attribution["event_id"].unique(maintain_order=True):
                paths = store.read_paths(con, run_id, eid)
                out = write_event_plots(paths, eid, args.plots)
                print(f"wrote {out}")
                policy_paths = store.read_policy_paths(con, run_id, eid)
                if policy_paths.height:
                    out = write_policy_plots(paths, policy_paths, eid, args.plots)
                    print(f"wrote {out}")
        n_ok = int(attribution.filter(pl.col("consistent")).height)
        print(f"consistent replays: {n_ok} of {attribution.height}")
    finally:
        con.close()
    print(f"run id: {run_id}  [{time.perf_counter() - t0:.1f} s]")
    return 0
