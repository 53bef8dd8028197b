"""Sub-commands ``run``, ``serve``, ``export``, ``report``, ``server`` and ``status``.

Registered on import by :mod:`pipelines.cli.main`. Names and paths are checked before any heavy
import (:mod:`pipelines.cli.names`); a Prefect flow runs against a reused server
(:mod:`pipelines.orchestration.local_server`) with Prefect's own logs at WARNING
(:mod:`pipelines.cli.quiet`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.cli.names import require_db, resolve_events, resolve_models, resolve_policies
from pipelines.cli.quiet import add_verbose_flag, prepare_prefect
from pipelines.cli.registry import command, with_args
from pipelines.errors import CascadeError

if TYPE_CHECKING:
    from pipelines.orchestration.pipeline import PipelineSummary

# --- run ----------------------------------------------------------------------------------------


def _run_args(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="run the backtest sweep on a temporary local Dask cluster of N processes",
    )
    where.add_argument(
        "--dask-address",
        default=None,
        metavar="tcp://HOST:PORT",
        help="run the backtest sweep on an existing Dask cluster (`dask scheduler`)",
    )
    p.add_argument(
        "--report-dir",
        type=Path,
        default=None,
        help="report directory (default: reports/ next to --db)",
    )
    p.add_argument(
        "--export", type=Path, default=None, metavar="DIR", help="also export Parquet to DIR"
    )
    p.add_argument("--event", action="append", dest="events", help="only this event (repeatable)")
    p.add_argument(
        "--policy", action="append", dest="policies", help="only this policy (repeatable)"
    )
    p.add_argument(
        "--forecast-model",
        action="append",
        dest="forecast_models",
        help="forecast model driving dynamic_ltv (repeatable; default garch, har, ewma)",
    )
    p.add_argument(
        "--force-flow",
        action="store_true",
        help="run the Prefect flow even when nothing changed (it then skips every stage)",
    )
    p.add_argument(
        "--stress-paths",
        type=int,
        default=None,
        metavar="N",
        help="FHS stress paths per event for the scoreboard's intervals (default 200; 0 = none)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_verbose_flag(p)


def _print_scoreboard(db: Path) -> None:
    from pipelines.reporting.report import scoreboard_text
    from pipelines.warehouse.connection import connect

    con = connect(db, read_only=True)
    try:
        print(scoreboard_text(con, legend=False))
        print()
        print(scoreboard_text(con, column="amplification"))
    finally:
        con.close()


@command("run", "the whole pipeline: ingest → forecast → backtest sweep → report")
@with_args(_run_args)
def cmd_run(args: argparse.Namespace) -> int:
    """Run the ``cascade-pipeline`` flow (or nothing, when every stage is up to date)."""
    start = time.perf_counter()
    if args.workers is not None and args.workers < 1:
        raise CascadeError(f"--workers must be at least 1, got {args.workers}")
    args.events = resolve_events(args.events)
    args.policies, models = resolve_policies(args.policies, resolve_models(args.forecast_models))
    from pipelines.orchestration.plan import (
        DEFAULT_FORECAST_MODELS,
        default_report_dir,
        plan_pipeline,
        resolve_db,
    )

    db = resolve_db(args.db)
    models = models or list(DEFAULT_FORECAST_MODELS)
    if args.stress_paths is None:
        from pipelines.backtests.stress import STRESS_PATHS

        args.stress_paths = STRESS_PATHS
    if args.stress_paths < 0:
        raise CascadeError(f"--stress-paths must be 0 or more, got {args.stress_paths}")
    report_dir = (args.report_dir or default_report_dir(db)).resolve()
    if not args.force_flow:
        plan = plan_pipeline(
            db,
            events=args.events,
            policies=args.policies,
            forecast_models=models,
            report_dir=report_dir,
            export_dir=args.export,
            stress_paths=args.stress_paths,
        )
        if plan.up_to_date:
            _print_scoreboard(db)
            print(
                f"\nnothing changed: {plan.runs_total} backtest runs stored, sources unchanged "
                f"(sha256 verified), report current: {report_dir / 'index.html'} "
                f"[{time.perf_counter() - start:.1f} s]"
            )
            return 0
    summary = _run_flow(args, db, models, report_dir)
    _print_scoreboard(db)
    computed = f"{summary.runs_computed} computed now" if summary.runs_computed else "all stored"
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in summary.seconds.items())
    from pipelines.cli.status import record_pipeline_run

    record_pipeline_run(db, time.perf_counter() - start, dict(summary.seconds))
    print(
        f"\n{len(summary.run_ids)} backtest runs ({computed}); report: {summary.report}"
        f"{' (unchanged)' if not summary.report_written else ''}"
        + (f"; export: {args.export}" if args.export else "")
        + f"\n[{time.perf_counter() - start:.1f} s: {stages}]"
    )
    return 0


def _run_flow(
    args: argparse.Namespace, db: Path, models: list[str], report_dir: Path
) -> PipelineSummary:
    kind = prepare_prefect(args)  # before Prefect is imported: it reads the environment
    if kind == "ephemeral":
        print("starting Prefect's temporary server (CASCADE_PREFECT=ephemeral)", file=sys.stderr)
    from pipelines.orchestration.pipeline import cascade_pipeline

    params = dict(
        db_path=str(db),
        events=args.events,
        policies=args.policies,
        forecast_models=models,
        workers=args.workers,
        dask_address=args.dask_address,
        report_dir=str(report_dir),
        export_dir=str(args.export.resolve()) if args.export else None,
        progress=not args.no_progress and sys.stderr.isatty(),
        stress_paths=args.stress_paths,
    )
    return cascade_pipeline(**params)


# --- serve --------------------------------------------------------------------------------------


def _serve_args(p: argparse.ArgumentParser) -> None:
    from pipelines.orchestration.serve import add_serve_arguments

    add_serve_arguments(p)
    add_verbose_flag(p)


@command("serve", "run the pipeline on a schedule (needs a real Prefect server)")
@with_args(_serve_args)
def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the ``cascade-pipeline`` deployment until interrupted.

    Without ``PREFECT_API_URL`` it serves against the local server (started if needed; it runs
    the scheduler), never against a temporary one.
    """
    prepare_prefect(args)
    from pipelines.orchestration.serve import run_serve

    return run_serve(args)


# --- export -------------------------------------------------------------------------------------


def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("out_dir", type=Path, metavar="DIR", help="output directory")
    p.add_argument("--format", default="parquet", choices=["parquet", "csv"])
    p.add_argument(
        "--table", action="append", dest="tables", help="only this table/view (repeatable)"
    )


@command("export", "write every results table/view and core view as Parquet (read-only)")
@with_args(_export_args)
def cmd_export(args: argparse.Namespace) -> int:
    """Export from a read-only connection; one file per table or view."""
    start = time.perf_counter()
    require_db(args.db, "export")
    from pipelines.warehouse.export import export_warehouse

    files = export_warehouse(args.db, args.out_dir, fmt=args.format, tables=args.tables)
    size = sum(f.stat().st_size for f in files) / 1e6
    hint = (
        f"CASCADE_EXPORT={args.out_dir} or polars.read_parquet"
        if args.format == "parquet"
        else "polars.read_csv or any spreadsheet"
    )
    print(
        f"wrote {len(files)} {args.format} files ({size:,.1f} MB) to {args.out_dir} "
        f"[{time.perf_counter() - start:.1f} s]; read them with e.g. {hint}"
    )
    return 0


# --- report -------------------------------------------------------------------------------------


def _report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out", type=Path, default=None, help="directory (default: reports/ next to --db)"
    )
    p.add_argument("--impact", default="sqrt", help="impact model of the runs shown")
    p.add_argument("--force", action="store_true", help="redraw even when up to date")
    p.add_argument(
        "--markdown",
        type=Path,
        default=None,
        metavar="DIR",
        help="write the Markdown result pages (scoreboard.md, forecast_scores.md, questions.md, "
        "attribution.md) "
        "to DIR instead of the HTML report, e.g. docs/results/",
    )


@command(
    "report", "HTML report (index.html + PNGs), or Markdown result pages, of the stored results"
)
@with_args(_report_args)
def cmd_report(args: argparse.Namespace) -> int:
    """Draw the report (or write the Markdown pages) from a read-only connection."""
    start = time.perf_counter()
    require_db(args.db, "report")
    if args.markdown is not None:
        from pipelines.reporting.markdown import write_markdown

        pages = write_markdown(args.db, args.markdown, impact=args.impact)
        names = ", ".join(p.name for p in pages)
        print(f"wrote {names} to {args.markdown} [{time.perf_counter() - start:.1f} s]")
        return 0

    from pipelines.reporting.report import build_report
    from pipelines.warehouse.stamps import default_report_dir

    out = args.out or default_report_dir(args.db)
    result = build_report(args.db, out, impact=args.impact, force=args.force)
    state = "written" if result.written else "up to date"
    print(f"report {state}: {result.index} [{time.perf_counter() - start:.1f} s]")
    return 0


# --- server -------------------------------------------------------------------------------------


def _server_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["start", "stop", "status"], help="what to do")


@command(
    "server",
    "the local Prefect server reused by every command (loopback; state in the user's data dir)",
)
@with_args(_server_args)
def cmd_server(args: argparse.Namespace) -> int:
    """``start`` (or reuse), ``stop`` or show the local Prefect server; no Prefect import."""
    import os

    from pipelines.cli.quiet import quiet_environment
    from pipelines.orchestration.local_server import (
        server_dir,
        server_status,
        start_server,
        stop_server,
    )

    quiet_environment()
    external = os.environ.get("PREFECT_API_URL")
    if args.action == "start":
        state, started = start_server()
        print(
            f"local Prefect server {'started' if started else 'already running'}: "
            f"{state.api_url} (pid {state.pid}, home {state.home}, log {state.log})"
        )
    elif args.action == "stop":
        stopped = stop_server()
        print(
            f"stopped the local Prefect server at {stopped.api_url} (pid {stopped.pid})"
            if stopped
            else f"no local Prefect server recorded in {server_dir()}"
        )
    else:
        state, healthy = server_status()
        if state is None:
            print(f"no local Prefect server (state dir {server_dir()}); started on first use")
        else:
            print(
                f"local Prefect server {'running' if healthy else 'NOT answering'}: "
                f"{state.api_url} (pid {state.pid}, since {state.started_at}, log {state.log})"
            )
        if external:
            print(f"PREFECT_API_URL={external} is set: commands use that server instead")
        return 0 if healthy or state is None else 1
    return 0


# --- status -------------------------------------------------------------------------------------


@command("status", "what the warehouse holds: sources, assets, events, runs, last pipeline run")
@with_args(lambda p: None)
def cmd_status(args: argparse.Namespace) -> int:
    """Print what the warehouse holds (read-only) and the local Prefect server's state."""
    require_db(args.db, "status")
    from pipelines.cli.status import warehouse_status

    print(warehouse_status(args.db))
    return 0
