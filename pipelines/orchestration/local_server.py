"""One local Prefect server per machine, started on first use and reused by every command.

Without ``PREFECT_API_URL`` every Prefect flow call starts a *temporary* server inside its own
process (10–80 s on a loaded 2-core machine) and throws it away at exit. ``cascade`` instead:

1. uses ``PREFECT_API_URL`` when it is set and a server answers there;
2. otherwise starts ``prefect server start`` once, on loopback (``127.0.0.1``) and a free port,
   detached from the command, with its own ``PREFECT_HOME`` under the user's data directory,
   and records it in ``server.json``; every later command finds it healthy and reuses it.

``cascade server start|stop|status`` manage it explicitly. ``CASCADE_PREFECT=ephemeral`` keeps
Prefect's own temporary server (the old behaviour). This module imports neither Prefect nor
DuckDB: it costs nothing when the server is already up.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipelines.errors import CascadeError
from pipelines.orchestration.prefect_server import (
    HOST,
    api_is_healthy,
    free_port,
    server_environment,
)

__all__ = [
    "ServerState",
    "ensure_prefect_api",
    "server_dir",
    "server_status",
    "start_server",
    "stop_server",
]

#: Environment variable choosing how flows reach Prefect: ``local`` (default) or ``ephemeral``.
MODE_ENV = "CASCADE_PREFECT"
#: Seconds a fresh server gets to answer ``/api/health`` (a loaded 2-core machine is slow).
START_TIMEOUT = 180.0


@dataclass(frozen=True)
class ServerState:
    """What ``server.json`` records about the local server."""

    pid: int
    port: int
    api_url: str
    home: str
    log: str
    started_at: str


def server_dir() -> Path:
    """Where the local server lives (its ``server.json``, ``server.log`` and ``home/``).

    ``$CASCADE_HOME/prefect-server``, else under the user's data directory
    (``$XDG_DATA_HOME/cascade-lab`` or ``~/.local/share/cascade-lab``).
    """
    root = os.environ.get("CASCADE_HOME")
    if not root:
        data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        root = str(Path(data) / "cascade-lab")
    return Path(root).expanduser() / "prefect-server"


def _state_path() -> Path:
    return server_dir() / "server.json"


def _read_state() -> ServerState | None:
    try:
        return ServerState(**json.loads(_state_path().read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process reuses the pid
        return False
    return True


@contextmanager
def _locked() -> Iterator[None]:
    """One command at a time starts or stops the server (an ``flock`` on ``server.lock``)."""
    folder = server_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "server.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def server_status() -> tuple[ServerState | None, bool]:
    """The recorded local server (or ``None``) and whether it answers now."""
    state = _read_state()
    if state is None:
        return None, False
    return state, _alive(state.pid) and api_is_healthy(state.api_url, timeout=1.0)


def start_server(timeout: float = START_TIMEOUT) -> tuple[ServerState, bool]:
    """Start the local server unless it already runs; ``(state, started_now)``.

    Raises
    ------
    CascadeError
        When the server exits early or is not healthy within ``timeout`` (with its log tail).
    """
    with _locked():
        state, healthy = server_status()
        if state is not None and healthy:
            return state, False
        if state is not None and _alive(state.pid):  # recorded but not answering: replace it
            _terminate(state.pid)
        folder = server_dir()
        home = folder / "home"
        home.mkdir(parents=True, exist_ok=True)
        port = free_port()
        api_url = f"http://{HOST}:{port}/api"
        log_path = folder / "server.log"
        cmd = [
            sys.executable, "-m", "prefect", "server", "start",
            "--host", HOST, "--port", str(port), "--no-ui", "--analytics-off",
        ]  # fmt: skip
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                cmd,
                env=server_environment(home),
                cwd=home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives the command; never gets its Ctrl-C
            )
        deadline = time.monotonic() + timeout
        while not api_is_healthy(api_url, timeout=1.0):
            if proc.poll() is not None or time.monotonic() > deadline:
                _terminate(proc.pid)
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
                raise CascadeError(
                    f"the local Prefect server did not start (log {log_path}):\n{tail}"
                )
            time.sleep(0.25)
        state = ServerState(
            pid=proc.pid,
            port=port,
            api_url=api_url,
            home=str(home),
            log=str(log_path),
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        tmp = _state_path().with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(state), indent=1))
        tmp.replace(_state_path())
        return state, True


def _terminate(pid: int, grace: float = 15.0) -> None:
    """SIGTERM the server's process group, then SIGKILL what is left after ``grace`` s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + grace
        while _alive(pid) and time.monotonic() < deadline:
            try:  # reap it when it is our child (``start_server`` in this process)
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.1)
        if not _alive(pid):
            return


def stop_server() -> ServerState | None:
    """Stop the local server (if one is recorded); the state it had, else ``None``."""
    with _locked():
        state = _read_state()
        if state is None:
            return None
        if _alive(state.pid):
            _terminate(state.pid)
        _state_path().unlink(missing_ok=True)
        return state


def profile_api_url(env: Mapping[str, str] | None = None) -> str:
    """``PREFECT_API_URL`` of the active Prefect profile (``prefect config set``), or ``""``.

    Read from ``profiles.toml`` without importing Prefect.
    """
    env = os.environ if env is None else env
    home = Path(env.get("PREFECT_HOME") or "~/.prefect").expanduser()
    path = Path(env.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, ValueError):
        return ""
    active = env.get("PREFECT_PROFILE") or data.get("active") or ""
    profile = data.get("profiles", {}).get(active, {})
    return str(profile.get("PREFECT_API_URL", "") or "").strip()


def ensure_prefect_api(env: MutableMapping[str, str] | None = None) -> tuple[str, str]:
    """Point Prefect at a running server before it is imported; ``(kind, api_url)``.

    ``kind`` is ``"external"`` (``PREFECT_API_URL``, from the environment or the active
    Prefect profile, answered), ``"local"`` (the local server,
    started now or reused) or ``"ephemeral"`` (``CASCADE_PREFECT=ephemeral``: Prefect's own
    temporary server, ``api_url`` empty).

    Raises
    ------
    CascadeError
        ``PREFECT_API_URL`` is set but nothing healthy answers there, or the local server
        cannot start.
    """
    env = os.environ if env is None else env
    url = env.get("PREFECT_API_URL", "").strip()
    where = "" if url else " (active Prefect profile)"
    url = url or profile_api_url(env)
    if url:
        if api_is_healthy(url):
            return "external", url
        raise CascadeError(
            f"PREFECT_API_URL={url}{where} does not answer; start that server, or unset "
            "PREFECT_API_URL to use cascade's local server (`cascade server start`)"
        )
    mode = env.get(MODE_ENV, "local").strip().lower()
    if mode == "ephemeral":
        return "ephemeral", ""
    if mode != "local":
        raise CascadeError(f"{MODE_ENV}={mode!r}: give 'local' (default) or 'ephemeral'")
    state, started = start_server()
    if started:
        print(
            f"started the local Prefect server at {state.api_url} (kept for later commands; "
            "`cascade server stop` ends it)",
            file=sys.stderr,
        )
    env["PREFECT_API_URL"] = state.api_url
    return "local", state.api_url
