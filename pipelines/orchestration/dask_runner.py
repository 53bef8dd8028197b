"""Where the backtest sweep's tasks run: local threads, a local Dask cluster or an existing one.

``--workers N`` starts a temporary :class:`distributed.LocalCluster` of ``N`` worker processes
with one thread each (the simulations are pure Python/numpy and hold the GIL, so processes are
what scales); ``--dask-address tcp://host:8786`` connects to a running scheduler (``dask
scheduler`` + ``dask worker tcp://…`` on hosts where cascade-lab is installed). Without either,
the tasks run on a small thread pool in the flow's process.

The tasks report their state to the Prefect API from the Dask workers, so the workers must know
its URL. A flow called without ``PREFECT_API_URL`` runs against a *temporary* server whose URL
lives only in the calling process; :func:`api_url_for_workers` publishes that URL in the settings
that Prefect serializes with every task, which is enough for workers on the same host. Workers
on other hosts need a server they can reach (``prefect server start --host 0.0.0.0`` and
``PREFECT_API_URL`` set before ``cascade run``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlparse

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from pipelines.errors import CascadeError

__all__ = [
    "DEFAULT_THREADS",
    "api_url_for_workers",
    "build_task_runner",
    "describe_runner",
    "quiet_distributed_logs",
]

#: Threads of the default (non-Dask) runner.
DEFAULT_THREADS = max(1, min(4, os.cpu_count() or 1))
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _check_choice(workers: int | None, dask_address: str | None) -> None:
    if workers is not None and dask_address:
        raise CascadeError("give either --workers or --dask-address, not both")
    if workers is not None and workers < 1:
        raise CascadeError(f"--workers must be at least 1, got {workers}")
    if dask_address and "://" not in dask_address:
        raise CascadeError(
            f"--dask-address {dask_address!r} must look like tcp://host:8786 (the address "
            "`dask scheduler` prints)"
        )


def build_task_runner(workers: int | None = None, dask_address: str | None = None) -> TaskRunner:
    """The task runner of the backtest sweep.

    Parameters
    ----------
    workers : int, optional
        Start a temporary local Dask cluster of this many worker processes (one thread each).
    dask_address : str, optional
        Address of a running Dask scheduler, e.g. ``tcp://10.0.0.5:8786``.

    Returns
    -------
    prefect.task_runners.TaskRunner
        A :class:`prefect_dask.DaskTaskRunner`, or a :class:`ThreadPoolTaskRunner` of
        :data:`DEFAULT_THREADS` threads when neither argument is given. The Dask cluster is
        started lazily, at the first submitted task, so a sweep with nothing to compute never
        starts one.

    Raises
    ------
    CascadeError
        When both arguments are given, ``workers < 1`` or the address has no scheme.
    """
    _check_choice(workers, dask_address)
    if workers is None and not dask_address:
        return ThreadPoolTaskRunner(max_workers=DEFAULT_THREADS)
    from prefect_dask import DaskTaskRunner

    if dask_address:
        return DaskTaskRunner(address=dask_address)
    _tolerate_a_busy_machine()
    cluster_kwargs: dict[str, Any] = {
        "n_workers": workers,
        "threads_per_worker": 1,
        "processes": True,
        "dashboard_address": ":0",  # a free port: never collide with another cluster
        "silence_logs": logging.WARNING,
    }
    return DaskTaskRunner(cluster_kwargs=cluster_kwargs)


def _tolerate_a_busy_machine() -> None:
    """Longer Dask timeouts for the local cluster, so a loaded machine slows it down, not hangs it.

    On a 2-core machine under heavy load, worker processes can miss the default 30 s connect
    timeout or the scheduler's heartbeat TTL; the scheduler then drops them and the sweep waits
    for workers that never re-register. The nannies pass this configuration to their workers.
    """
    import dask

    dask.config.set(
        {
            "distributed.comm.timeouts.connect": "300s",
            "distributed.comm.timeouts.tcp": "300s",
            "distributed.scheduler.worker-ttl": None,
        }
    )


def describe_runner(workers: int | None = None, dask_address: str | None = None) -> str:
    """One line saying where the sweep runs (for logs)."""
    if dask_address:
        return f"Dask cluster at {dask_address}"
    if workers is not None:
        return f"local Dask cluster, {workers} worker process(es) x 1 thread"
    return f"{DEFAULT_THREADS} thread(s) in the flow process"


@contextmanager
def api_url_for_workers(dask_address: str | None = None) -> Iterator[str]:
    """Make the Prefect API URL part of the settings that travel with each task.

    When ``PREFECT_API_URL`` is set nothing changes. Otherwise the process's temporary server
    (started by the first flow call, or here) is looked up and its URL set with
    ``temporary_settings`` for the duration of the block.

    Parameters
    ----------
    dask_address : str, optional
        Scheduler address; when it is not on loopback and the API URL is, a warning is logged
        (workers on other hosts cannot reach a loopback server).

    Yields
    ------
    str
        The API URL the workers will use.
    """
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    url = get_current_settings().api.url
    if url:
        _warn_if_unreachable(url, dask_address)
        yield url
        return
    server = SubprocessASGIServer()  # the process-wide temporary server (a singleton)
    server.start()
    _warn_if_unreachable(server.api_url, dask_address)
    with temporary_settings({PREFECT_API_URL: server.api_url}):
        yield server.api_url


def _warn_if_unreachable(api_url: str, dask_address: str | None) -> None:
    if not dask_address:
        return
    api_host = urlparse(api_url).hostname or ""
    dask_host = urlparse(dask_address).hostname or ""
    if api_host in _LOOPBACK and dask_host not in _LOOPBACK:
        logging.getLogger("cascade.dask").warning(
            "the Prefect API is on loopback (%s) but the Dask scheduler is at %s: workers on "
            "other hosts cannot report to it; start `prefect server start --host 0.0.0.0` and "
            "set PREFECT_API_URL to an address they can reach",
            api_url,
            dask_address,
        )


def quiet_distributed_logs(level: int = logging.WARNING) -> None:
    """Raise the level of ``distributed``'s loggers (its INFO lines drown the sweep's progress)."""
    for name in ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.core"):
        logging.getLogger(name).setLevel(level)
