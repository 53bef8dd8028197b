"""Defect 4 of issue #14: ``kill -9`` of a Prefect command left its temporary server running.

The CLI wraps the temporary server in :mod:`pipelines.orchestration.server_guard`, which stops
it as soon as its parent is gone. The test starts ``cascade ingest`` on a fresh warehouse,
waits until the server of *that* command is up, ``kill -9``s the command and checks that no
process of its own survives 10 s later.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from hardening_faults import flush, record

pytestmark = pytest.mark.integration  # ingests a real source from the mirror

SOURCE = "lukmol__gamlss-btc-VaR/data/funding_rates.csv"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def _fault_table():
    yield
    flush()


def _children(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def test_kill_9_of_a_prefect_command_leaves_no_server(tmp_path: Path, mirror_dir: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "CASCADE_DATA_MIRROR": str(mirror_dir),
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)
    code = "import sys; from pipelines.cli.main import main; sys.exit(main(sys.argv[1:]))"
    argv = ["ingest", "--db", str(tmp_path / "w.duckdb"), "--source", SOURCE]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    servers: list[psutil.Process] = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        servers = [p for p in _children(proc.pid) if "uvicorn" in " ".join(p.cmdline())]
        if servers:
            break
        time.sleep(0.2)
    assert servers, "the command never started a temporary Prefect server"
    assert proc.poll() is None, "the command ended before it could be killed"
    family = [psutil.Process(proc.pid), *_children(proc.pid)]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(10)
    alive = [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    for p in alive:  # never leave them behind, whatever the outcome
        p.kill()
    record(
        "kill -9 of `cascade ingest` while its temporary Prefect server runs",
        "cascade ingest --db W --source S; kill -9 after the server started",
        -9,
        f"{len(alive)} of its processes alive 10 s later",
    )
    assert alive == [], [" ".join(p.cmdline()) for p in alive]
