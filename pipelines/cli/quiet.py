"""The command line's environment: quiet Prefect, no telemetry, one reused Prefect server.

:func:`quiet_environment` runs before Prefect is imported (Prefect reads its settings from the
environment at import): telemetry and analytics off, Prefect's own loggers at ``WARNING``
unless ``--verbose``. :func:`prepare_prefect` then points Prefect at a running server
(:func:`pipelines.orchestration.local_server.ensure_prefect_api`). :func:`add_global_flags`
adds ``--version`` and ``--verbose`` to a parser.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import MutableMapping

#: Always set (telemetry and analytics off; a slow 2-core machine needs a long start-up wait).
QUIET_ALWAYS: dict[str, str] = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}
#: Set unless ``--verbose``: Prefect's INFO lines (flow/task states) stay out of the terminal.
QUIET_LOGS: dict[str, str] = {
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_LOGGING_LOGGERS_PREFECT_LEVEL": "WARNING",
    "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
}


def quiet_environment(verbose: bool = False, env: MutableMapping[str, str] | None = None) -> None:
    """Set the CLI's Prefect environment (a user's explicit setting wins, except telemetry)."""
    env = os.environ if env is None else env
    for key, value in QUIET_ALWAYS.items():
        if key in ("DO_NOT_TRACK", "PREFECT_SERVER_ANALYTICS_ENABLED"):
            env[key] = value
        else:
            env.setdefault(key, value)
    if verbose:
        for key in QUIET_LOGS:
            env[key] = "INFO"
    else:
        for key, value in QUIET_LOGS.items():
            env.setdefault(key, value)
    level = logging.INFO if verbose else logging.WARNING
    for name in ("prefect", "distributed", "httpx"):  # if already imported (tests, notebooks)
        logging.getLogger(name).setLevel(level)


def prepare_prefect(args: argparse.Namespace) -> str:
    """Quiet environment, then a running Prefect server; the kind of server.

    ``"external"``, ``"local"`` or ``"ephemeral"`` (see
    :func:`~pipelines.orchestration.local_server.ensure_prefect_api`).
    """
    from pipelines.orchestration.local_server import ensure_prefect_api

    quiet_environment(bool(getattr(args, "verbose", False)))
    kind, _url = ensure_prefect_api()
    return kind


def version() -> str:
    """The installed cascade-lab version (``0+unknown`` when not installed)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("cascade-lab")
    except PackageNotFoundError:
        return "0+unknown"


def add_global_flags(parser: argparse.ArgumentParser) -> None:
    """``cascade --version`` and ``cascade --verbose`` (call on the top-level parser)."""
    parser.add_argument("--version", action="version", version=f"cascade {version()}")
    parser.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="show Prefect's own INFO logs (flow and task states)",
    )


def add_verbose_flag(parser: argparse.ArgumentParser) -> None:
    """``--verbose`` on a sub-command (``cascade run --verbose``)."""
    parser.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show Prefect's own INFO logs (flow and task states)",
    )
