"""Shared fixtures: the real data mirror, temporary warehouses, one Prefect test harness.

Two tiers (docs/testing.md). A test that needs the real-data mirror, or a warehouse built from it,
carries the ``integration`` marker (``pytestmark = pytest.mark.integration`` at the top of its
module); ``pytest -m "not integration"`` runs everything else with no mirror at all. A test that
requests a mirror fixture without the marker is a collection error, so the fast tier can never
silently start depending on the data.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

REPO_ROOT = Path(__file__).resolve().parents[1]


def _mirror_dir() -> Path:
    env = os.environ.get("CASCADE_DATA_MIRROR")
    if env:
        return Path(env)
    return REPO_ROOT.parent / "shared" / "data"


# Hypothesis: the same code gives the same result on every run (CI, both tiers). To search for new
# counterexamples with fresh random examples, run with HYPOTHESIS_PROFILE=explore.
settings.register_profile("deterministic", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))

#: Fixtures that need the real-data mirror; only ``integration`` tests may request them.
MIRROR_FIXTURES = frozenset({"mirror_dir", "ingested_db"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse a test that uses the mirror but is not marked ``integration``."""
    wrong = [
        item.nodeid
        for item in items
        if MIRROR_FIXTURES & set(getattr(item, "fixturenames", ()))
        and item.get_closest_marker("integration") is None
    ]
    if wrong:
        raise pytest.UsageError(
            "these tests use the real-data mirror but are not marked integration "
            "(add `pytestmark = pytest.mark.integration` to the module): " + ", ".join(wrong)
        )


@pytest.fixture(scope="session")
def mirror_dir() -> Path:
    """The read-only mirror of the real data (``CASCADE_DATA_MIRROR`` or ``../shared/data``)."""
    path = _mirror_dir()
    if not (path / "MANIFEST.json").exists():
        pytest.fail(
            f"real-data mirror not found at {path}; set CASCADE_DATA_MIRROR, or run only the "
            'fast tier: pytest -m "not integration"'
        )
    return path


# Prefect must see these before it is first imported anywhere in the test session.
_PREFECT_HOME = (
    Path(os.environ.get("CASCADE_TEST_PREFECT_HOME", "/tmp")) / f"cascade-prefect-{os.getpid()}"
)
os.environ["PREFECT_HOME"] = str(_PREFECT_HOME)
# The CLI's reusable local Prefect server (pipelines.orchestration.local_server) keeps its state
# under CASCADE_HOME: tests use a folder of their own, never the user's data directory, and the
# session stops any server started there (see `pytest_sessionfinish`).
os.environ["CASCADE_HOME"] = str(_PREFECT_HOME / "cascade-home")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.pop("PREFECT_API_URL", None)


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect test harness for the whole session (temporary server, no heartbeat wait)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            yield


@pytest.fixture(scope="session")
def ingested_db(tmp_path_factory, mirror_dir, prefect_harness) -> Path:
    """A warehouse built once per session by the real ``ingest`` flow from the real mirror.

    Tests must treat it as read-only (copy it first to modify it).
    """
    from pipelines.ingest.flow import ingest_flow

    db = tmp_path_factory.mktemp("warehouse") / "cascade.duckdb"
    os.environ.setdefault("CASCADE_DATA_MIRROR", str(mirror_dir))
    ingest_flow(db_path=str(db))
    return db


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop a local Prefect server a CLI command of the tests started under ``CASCADE_HOME``."""
    from pipelines.orchestration.local_server import stop_server

    stop_server()
