"""Schedule the cascade pipeline with ``flow.serve`` against a real Prefect server.

``cascade serve --cron "0 2 * * *"`` creates (or updates) the deployment ``cascade-daily`` on the
server named by ``PREFECT_API_URL`` and then keeps polling it for scheduled runs, which it executes
in subprocesses of its own. Schedules are created by the server's scheduler service, which
Prefect's temporary (ephemeral) server does not run: serving against it would silently never run
anything, so :func:`serve_pipeline` refuses unless a real server answers.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import CascadeError

if TYPE_CHECKING:
    from prefect import Flow

DEFAULT_FLOW_REF = "pipelines.orchestration.pipeline:cascade_pipeline"
#: Served instead of :data:`DEFAULT_FLOW_REF` while the pipeline module does not exist yet.
FALLBACK_FLOW_REF = "pipelines.ingest.flow:ingest_flow"
DEFAULT_DEPLOYMENT = "cascade-daily"
DEFAULT_CRON = "0 2 * * *"

NO_SERVER_HINT = (
    "A temporary Prefect server cannot schedule: start one with "
    "`prefect server start --host 127.0.0.1` and "
    "`export PREFECT_API_URL=http://127.0.0.1:4200/api`"
)


class SchedulingUnavailableError(CascadeError):
    """No real Prefect server to register a schedule with (``PREFECT_API_URL`` unset or dead)."""


def _server_answers(api_url: str, timeout: float = 5.0) -> bool:
    """Whether any HTTP server answers ``GET {api_url}/health`` (an auth error counts as one)."""
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True  # a server is there, e.g. Prefect Cloud asking for credentials
    except (urllib.error.URLError, OSError, ValueError):
        return False


def require_prefect_server(timeout: float = 5.0) -> str:
    """The configured Prefect API URL, after checking that a server answers there.

    Parameters
    ----------
    timeout : float
        Seconds to wait for ``/health``.

    Returns
    -------
    str
        The value of the ``PREFECT_API_URL`` setting (environment, profile or
        ``temporary_settings``).

    Raises
    ------
    SchedulingUnavailableError
        When the setting is unset (Prefect would fall back to a temporary server, which has no
        scheduler) or nothing answers at that URL.
    """
    from prefect.settings import get_current_settings

    api_url = get_current_settings().api.url
    if not api_url:
        raise SchedulingUnavailableError(f"PREFECT_API_URL is not set. {NO_SERVER_HINT}")
    if not _server_answers(api_url, timeout=timeout):
        raise SchedulingUnavailableError(
            f"no Prefect server answers at PREFECT_API_URL={api_url}. {NO_SERVER_HINT}"
        )
    return api_url


def load_flow(flow_ref: str) -> Flow[..., Any]:
    """Import a flow from ``"package.module:attribute"``.

    Parameters
    ----------
    flow_ref : str
        Import path of a ``@flow``-decorated function. The default pipeline
        (:data:`DEFAULT_FLOW_REF`) falls back to :data:`FALLBACK_FLOW_REF`, with a note on
        stderr, while its module does not exist.

    Returns
    -------
    prefect.Flow
        The flow object.

    Raises
    ------
    CascadeError
        When the reference is malformed, the attribute is missing or is not a flow.
    """
    from prefect import Flow

    module_name, sep, attr = flow_ref.partition(":")
    if not sep or not module_name or not attr:
        raise CascadeError(f"flow reference {flow_ref!r} must look like 'package.module:flow'")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if flow_ref == DEFAULT_FLOW_REF and exc.name == module_name:
            print(
                f"note: {module_name} does not exist yet; serving {FALLBACK_FLOW_REF} instead",
                file=sys.stderr,
            )
            return load_flow(FALLBACK_FLOW_REF)
        raise
    obj = getattr(module, attr, None)
    if not isinstance(obj, Flow):
        raise CascadeError(f"{flow_ref!r} is not a Prefect flow (got {type(obj).__name__})")
    return obj


def serve_pipeline(
    *,
    cron: str | None,
    interval_seconds: int | None,
    db_path: str | Path | None,
    flow_ref: str = DEFAULT_FLOW_REF,
    parameters: dict[str, Any] | None = None,
    name: str = DEFAULT_DEPLOYMENT,
    timezone: str = "UTC",
    limit: int | None = 1,
) -> None:
    """Register a scheduled deployment of the pipeline and execute its runs until interrupted.

    Blocks (``flow.serve``) until SIGINT/SIGTERM; on shutdown the deployment's schedule is
    paused so no runs pile up while nobody serves them.

    Parameters
    ----------
    cron : str or None
        Cron expression, e.g. ``"0 2 * * *"`` (evaluated in ``timezone``).
    interval_seconds : int or None
        Run every this many seconds instead. Exactly one of ``cron`` and
        ``interval_seconds`` must be given.
    db_path : str, Path or None
        Warehouse passed to the flow as ``db_path`` (made absolute, since runs execute in
        subprocesses); ``None`` leaves the flow's default.
    flow_ref : str
        Import path of the flow, ``"module:attribute"``.
    parameters : dict, optional
        Further default parameters of the deployment's runs.
    name : str
        Deployment name (the deployment is ``<flow name>/<name>``).
    timezone : str
        IANA time zone of the schedule.
    limit : int or None
        Most runs this serve process executes at once; 1 by default, since runs write the
        same DuckDB file and DuckDB admits one writing process. ``None``: no limit.

    Raises
    ------
    ValueError
        When neither or both of ``cron`` and ``interval_seconds`` are given, or the
        interval is not positive.
    SchedulingUnavailableError
        When ``PREFECT_API_URL`` is unset or no server answers there.
    """
    from prefect.schedules import Cron, Interval
    from prefect.types.entrypoint import EntrypointType

    if (cron is None) == (interval_seconds is None):
        raise ValueError("give exactly one of cron and interval_seconds")
    if interval_seconds is not None and interval_seconds <= 0:
        raise ValueError(f"interval_seconds must be positive, got {interval_seconds}")
    require_prefect_server()
    flow = load_flow(flow_ref)
    schedule = (
        Cron(cron, timezone=timezone)
        if cron is not None
        else Interval(int(interval_seconds or 0), timezone=timezone)
    )
    params = dict(parameters or {})
    if db_path is not None:
        params["db_path"] = str(Path(db_path).expanduser().resolve())
    flow.serve(
        name=name,
        schedule=schedule,
        parameters=params,
        limit=limit,
        # The runner imports ``package.module.flow``: works from any working directory
        # because cascade-lab is installed, unlike a file path relative to the cwd.
        entrypoint_type=EntrypointType.MODULE_PATH,
    )


def _positive_int(text: str) -> int:
    """Argparse type: a strictly positive integer."""
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the flags of ``cascade serve`` to ``parser``.

    ``--cron`` and ``--interval`` are mutually exclusive (default: ``--cron "0 2 * * *"``);
    ``--db`` is added only when the parser does not already have it (``cascade``'s common
    options do).

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The sub-command parser.
    """
    when = parser.add_mutually_exclusive_group()
    when.add_argument(
        "--cron", default=None, help=f"cron schedule in UTC (default: {DEFAULT_CRON!r})"
    )
    when.add_argument(
        "--interval",
        type=_positive_int,
        default=None,
        metavar="SECONDS",
        help="run every SECONDS instead",
    )
    parser.add_argument(
        "--name",
        default=DEFAULT_DEPLOYMENT,
        help=f"deployment name (default: {DEFAULT_DEPLOYMENT})",
    )
    parser.add_argument(
        "--flow", default=DEFAULT_FLOW_REF, metavar="MODULE:FLOW",
        help=f"flow to serve (default: {DEFAULT_FLOW_REF})",
    )  # fmt: skip
    if "--db" not in parser._option_string_actions:  # argparse has no public lookup
        parser.add_argument("--db", type=Path, default=None, help="DuckDB warehouse")


def run_serve(args: argparse.Namespace) -> int:
    """Handler of ``cascade serve``: serve the pipeline on its schedule until interrupted.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed flags of :func:`add_serve_arguments` (``cron``, ``interval``, ``name``,
        ``flow``, ``db``).

    Returns
    -------
    int
        Exit code 0 after a clean shutdown (Ctrl-C / SIGTERM).

    Raises
    ------
    SchedulingUnavailableError
        When no real Prefect server is configured (``cascade`` prints it as an error).
    """
    cron = getattr(args, "cron", None)
    interval = getattr(args, "interval", None)
    if cron is None and interval is None:
        cron = DEFAULT_CRON
    serve_pipeline(
        cron=cron,
        interval_seconds=interval,
        db_path=getattr(args, "db", None),
        flow_ref=getattr(args, "flow", DEFAULT_FLOW_REF),
        name=getattr(args, "name", DEFAULT_DEPLOYMENT),
    )
    return 0
