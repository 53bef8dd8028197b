"""A real, throw-away Prefect server on loopback (``prefect server start``) for tests and demos.

Prefect's *temporary* server (what a flow call starts when ``PREFECT_API_URL`` is unset) runs
without the scheduler service, so deployments served against it never get scheduled runs.
:func:`running_prefect_server` starts the real thing in a subprocess, with its own
``PREFECT_HOME`` (and so its own SQLite database), the scheduler on and the services that a
schedule does not need switched off so it starts and idles cheaply.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipelines.errors import CascadeError

HOST = "127.0.0.1"

#: Settings of the server subprocess (Prefect 3.9 names; each also has a ``PREFECT_API_*`` alias).
SERVER_SETTINGS: dict[str, str] = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_UI_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "true",
    # A short main loop; newly created deployments are also picked up within
    # ``recent_deployments_loop_seconds`` (5 s) by the scheduler's second loop.
    "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "10",
    # The task-run recorder turns task-run events into rows: keep it so the UI/API shows tasks.
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED": "true",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED": "true",
    # Not needed to create and run scheduled flow runs on a local process runner.
    "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_FOREMAN_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_CANCELLATION_CLEANUP_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_PAUSE_EXPIRATIONS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_REPOSSESSOR_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_CLEANUP_RECONCILER_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_EVENT_LOGGER_ENABLED": "false",
    "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
}

# Inherited variables that would point the server (or its clients) somewhere else.
_DROPPED_ENV = (
    "PREFECT_API_URL",
    "PREFECT_API_KEY",
    "PREFECT_PROFILE",
    "PREFECT_API_DATABASE_",
    "PREFECT_SERVER_DATABASE_",
)


def free_port(host: str = HOST) -> int:
    """A TCP port that is free on ``host`` right now.

    Parameters
    ----------
    host : str
        Interface to probe (loopback by default).

    Returns
    -------
    int
        The port number the kernel handed out for an ephemeral bind.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def server_environment(home: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment of the server subprocess: ``base`` minus API pointers, plus its own home.

    Parameters
    ----------
    home : Path
        ``PREFECT_HOME`` of the server (holds its SQLite database ``prefect.db``).
    base : mapping, optional
        Environment to start from; defaults to :data:`os.environ`.

    Returns
    -------
    dict of str to str
        The environment to pass to :class:`subprocess.Popen`.
    """
    env = {
        key: value
        for key, value in (os.environ if base is None else base).items()
        if not key.startswith(_DROPPED_ENV)
    }
    env.update(SERVER_SETTINGS)
    env["PREFECT_HOME"] = str(home)
    return env


def api_is_healthy(api_url: str, timeout: float = 2.0) -> bool:
    """Whether a Prefect API answers ``GET {api_url}/health`` with ``true``.

    Parameters
    ----------
    api_url : str
        Base URL of the API, e.g. ``http://127.0.0.1:4200/api``.
    timeout : float
        Seconds to wait for the answer.

    Returns
    -------
    bool
        ``True`` when the server is up and healthy.
    """
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=timeout) as resp:
            return resp.status == 200 and resp.read().strip() == b"true"
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop_process_tree(proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """Stop a subprocess started with ``start_new_session=True`` and everything it spawned.

    SIGTERM goes to its process group first (so Prefect runners can shut down their flow
    runs), then SIGKILL to the group and to any descendant that moved to a session of its
    own (Prefect starts flow-run processes in new sessions).

    Parameters
    ----------
    proc : subprocess.Popen
        The process; must lead its own process group.
    grace : float
        Seconds to wait after SIGTERM before killing.
    """
    if proc.poll() is not None:
        return
    descendants = _descendants(proc.pid)
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    try:  # children may outlive the leader: sweep the group either way
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for child in descendants:
        try:
            child.kill()
        except Exception:  # noqa: BLE001 - already gone or not ours any more
            pass
    proc.wait(timeout=grace)


def _descendants(pid: int) -> list[Any]:
    """Every live descendant of ``pid`` as :class:`psutil.Process` (empty without psutil)."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil ships with dask.distributed
        return []
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


@contextmanager
def running_prefect_server(
    home: Path,
    port: int | None = None,
    timeout: float = 90,
    *,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """Run ``prefect server start`` on loopback for the duration of a ``with`` block.

    Parameters
    ----------
    home : Path
        Directory used as the server's ``PREFECT_HOME`` (created if missing); its SQLite
        database and the server log ``server.log`` live there.
    port : int, optional
        Port to listen on; a free one is picked when omitted.
    timeout : float
        Seconds to wait for ``/api/health`` before giving up.
    extra_env : mapping, optional
        Further environment variables for the server (override the defaults).

    Yields
    ------
    str
        The API URL, e.g. ``http://127.0.0.1:54321/api``; point ``PREFECT_API_URL`` at it.

    Raises
    ------
    CascadeError
        When the server exits early or is not healthy within ``timeout`` (the message
        carries the tail of its log).

    Notes
    -----
    The server runs in its own session/process group, which is terminated (SIGTERM, then
    SIGKILL) when the block exits, whether normally or by an exception.
    """
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    api_url = f"http://{HOST}:{port}/api"
    env = server_environment(home)
    env.update(extra_env or {})
    log_path = home / "server.log"
    cmd = [
        sys.executable, "-m", "prefect", "server", "start",
        "--host", HOST, "--port", str(port), "--no-ui", "--analytics-off", "--scheduler",
    ]  # fmt: skip
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=home,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout
        while not api_is_healthy(api_url):
            if proc.poll() is not None:
                raise CascadeError(
                    f"prefect server exited with code {proc.returncode} before becoming "
                    f"healthy; log {log_path}:\n{_tail(log_path)}"
                )
            if time.monotonic() > deadline:
                raise CascadeError(
                    f"prefect server at {api_url} not healthy after {timeout:.0f} s; "
                    f"log {log_path}:\n{_tail(log_path)}"
                )
            time.sleep(0.25)
        yield api_url
    finally:
        stop_process_tree(proc)


# --- temporary servers die with the command that started them ------------------------------------

_GUARD_MODULE = "pipelines.orchestration.server_guard"
_SERVER_MODULE = "prefect.server.api.server"


def guard_temporary_servers() -> None:
    """Make every temporary Prefect server this process starts exit when this process dies.

    Prefect 3.9 starts its temporary server (``SubprocessASGIServer``) as a plain child
    ``python -m uvicorn …``; a ``kill -9`` (or an OOM kill) of the command leaves it running,
    re-parented to PID 1. This wraps that command in :mod:`pipelines.orchestration.server_guard`,
    which watches its parent and stops the server as soon as the parent is gone. Cheap: until
    a flow first needs the server, only an import hook is installed.
    """
    module = sys.modules.get(_SERVER_MODULE)
    if module is not None:
        _patch_server_class(module)
        return
    if not any(isinstance(f, _PatchOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())


def _patch_server_class(module: Any) -> None:
    cls = module.SubprocessASGIServer
    if getattr(cls, "_cascade_guarded", False):
        return
    original = cls._run_uvicorn_command
    parent = os.getpid()

    def run_guarded(self: Any) -> subprocess.Popen[Any]:
        real_popen = module.subprocess.Popen

        def popen(args: list[str], *rest: Any, **kwargs: Any) -> subprocess.Popen[Any]:
            if list(args[1:3]) == ["-m", "uvicorn"]:
                args = [args[0], "-m", _GUARD_MODULE, str(parent), *args[1:]]
            return real_popen(args, *rest, **kwargs)

        shim = _SubprocessShim(popen)
        module.subprocess = shim
        try:
            return original(self)
        finally:
            module.subprocess = shim.real

    cls._run_uvicorn_command = run_guarded
    cls._cascade_guarded = True


class _SubprocessShim:
    """:mod:`subprocess` with ``Popen`` replaced, seen only by Prefect's server module."""

    def __init__(self, popen: Any) -> None:
        self.real = subprocess
        self.Popen = popen  # noqa: N815 - mirrors subprocess.Popen

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class _PatchOnImport:
    """``sys.meta_path`` finder that patches Prefect's server module right after it loads."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != _SERVER_MODULE:
            return None
        import importlib.machinery

        sys.meta_path.remove(self)
        try:
            spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return None
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_and_patch(module: Any) -> None:
            exec_module(module)
            _patch_server_class(module)

        loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return spec
