"""Benchmark of the first-hour commands (#13): usage errors, a cached backtest, a small forecast.

Run: ``python bench/bench_cli_first_hour.py --db cascade.duckdb`` (a warehouse built by
``cascade run``; it is copied, never written). Every command is a fresh ``cascade`` process, as
a user would type it. The baseline, measured in the same run, is ``python -c pass`` (interpreter
start); each figure is also given as a ratio to it, with the load average, because the shared
2-core machine is rarely idle.

Measured:

1. usage errors: an unknown policy / event / model, exit 2 (names are checked before heavy
   imports; the rest is the parser's imports in ``pipelines.cli.main``), and the cost of the
   name check itself (``import pipelines.cli.names`` + a lookup) in a fresh interpreter;
2. ``cascade backtest --event W4 --policy instant --json`` (stored run: no Prefect at all);
3. ``cascade forecast --assets ETH --models ewma,garch --events W4``, a new config each time
   (``--history-days`` varies), through (a) the reused local Prefect server and (b) Prefect's
   temporary server (``CASCADE_PREFECT=ephemeral``), which every flow command paid before.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "import sys; from pipelines.cli.main import main; sys.exit(main())"]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def _time(cmd: list[str], env: dict[str, str], expect: int = 0) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != expect:
        raise SystemExit(f"{cmd[3:]} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return seconds


def _median(cmd: list[str], env: dict[str, str], repeat: int, expect: int = 0) -> float:
    return statistics.median(_time(cmd, env, expect) for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", type=Path, required=True, help="a warehouse built by cascade run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-forecast", action="store_true")
    parser.add_argument("--skip-ephemeral", action="store_true")
    parser.add_argument("--prefect-only", action="store_true", help="only the Prefect rows")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-first-hour-"))
    db = work / "cascade.duckdb"
    shutil.copy(args.db, db)
    env = _env(CASCADE_HOME=os.environ.get("CASCADE_HOME", str(work / "home")))
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 cores)")

    base = _median([sys.executable, "-c", "pass"], env, args.repeat)
    print(f"baseline python -c pass: {base:.3f} s")

    def row(label: str, seconds: float) -> None:
        print(f"{label:<62} {seconds:7.2f} s  ({seconds / base:6.1f}× baseline)")

    if not args.prefect_only:
        _commands(args, env, db, work, row)
    if not args.skip_forecast:
        _prefect(args, env, db, row)
    load = os.getloadavg()
    print(f"load average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    shutil.rmtree(work, ignore_errors=True)


def _commands(args, env, db, work, row) -> None:  # noqa: ANN001
    names = [
        sys.executable,
        "-c",
        "from pipelines.cli.names import resolve_policy\n"
        "try:\n resolve_policy('dutchy')\nexcept KeyError:\n pass",
    ]
    row("name check alone (import names + unknown policy)", _median(names, env, args.repeat))
    for label, argv in (
        ("usage error: backtest --policy dutchy", ["backtest", "--policy", "dutchy"]),
        ("usage error: backtest --event W9", ["backtest", "--event", "W9"]),
        ("usage error: forecast --models gorch", ["forecast", "--models", "gorch"]),
        ("usage error: run --policy nope", ["run", "--policy", "nope"]),
        ("usage error: report on a missing warehouse", ["report", "--db", str(work / "no.db")]),
    ):
        argv = argv if "--db" in argv else [*argv, "--db", str(db)]
        row(label, _median([*CLI, *argv], env, args.repeat, expect=2))

    # The same usage errors once main.py's parser takes its --db default from the light
    # pipelines.cli.names instead of pipelines.warehouse.connection (DuckDB + polars): the hook
    # the lead wires in main.py, simulated here by standing a light module in for the heavy one.
    hooked = [
        sys.executable,
        "-c",
        "import sys, types\nfrom pipelines.cli import names\n"
        "light = types.ModuleType('pipelines.warehouse.connection')\n"
        "light.default_db_path = names.default_db_path\n"
        "sys.modules['pipelines.warehouse.connection'] = light\n"
        "from pipelines.cli.main import main\nsys.exit(main())",
    ]
    for label, argv in (
        ("usage error, light parser: backtest --policy dutchy", ["backtest", "--policy", "dutchy"]),
        ("usage error, light parser: forecast --models gorch", ["forecast", "--models", "gorch"]),
        ("usage error, light parser: report, missing warehouse", ["report"]),
    ):
        argv = [*argv, "--db", str(work / "no.db")] if argv == ["report"] else argv
        argv = argv if "--db" in argv else [*argv, "--db", str(db)]
        row(label, _median([*hooked, *argv], env, args.repeat, expect=2))

    backtest = [*CLI, "backtest", "--db", str(db), "--event", "W4", "--policy", "instant"]
    _time([*backtest, "--json"], env)  # make sure the run is stored
    row(
        "backtest --event W4 --policy instant --json (stored)",
        _median([*backtest, "--json"], env, args.repeat),
    )


def _prefect(args, env, db, row) -> None:  # noqa: ANN001
    forecast = [*CLI, "forecast", "--db", str(db), "--assets", "ETH", "--models", "ewma,garch"]
    forecast += ["--events", "W4"]
    start = time.perf_counter()
    subprocess.run([*CLI, "server", "start"], env=env, check=True, capture_output=True)
    row("server start (first use only)", time.perf_counter() - start)
    # Prefect's own cost: importing it and running one empty flow, reused server vs temporary.
    state = subprocess.run(
        [sys.executable, "-c", "from pipelines.orchestration.local_server import "
         "server_status; print(server_status()[0].api_url)"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    empty = [
        sys.executable,
        "-c",
        "from prefect import flow\n@flow\ndef empty():\n    return 1\nempty()",
    ]
    quiet = dict(
        env,
        PREFECT_LOGGING_LEVEL="WARNING",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
    )
    row("import prefect alone", _median([sys.executable, "-c", "import prefect"], quiet, 2))
    row(
        "empty Prefect flow, local server (import + run)",
        _median(empty, dict(quiet, PREFECT_API_URL=state), args.repeat),
    )
    if not args.skip_ephemeral:
        row(
            "empty Prefect flow, temporary server (import + run)",
            _median(empty, quiet, args.repeat),
        )
    local = [_time([*forecast, "--history-days", str(60 + i)], env) for i in range(args.repeat)]
    row("forecast ETH ewma,garch W4, local server (median)", statistics.median(local))
    if not args.skip_ephemeral:
        eph_env = dict(env, CASCADE_PREFECT="ephemeral")
        eph = [
            _time([*forecast, "--history-days", str(70 + i)], eph_env) for i in range(args.repeat)
        ]
        row("forecast ETH ewma,garch W4, temporary server (median)", statistics.median(eph))
    if "CASCADE_HOME" not in os.environ:
        subprocess.run([*CLI, "server", "stop"], env=env, check=True, capture_output=True)


if __name__ == "__main__":
    main()
