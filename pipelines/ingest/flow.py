"""Prefect flow ``ingest``: fetch → validate → load; a task per source, a transaction per source.

Unchanged sources (same sha256 and same adapter code as the row in ``ingest_log``) are skipped;
:func:`plan_ingest` tells which sources need work without starting Prefect at all, so a re-run
with nothing changed costs only the hash checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.states import State

from pipelines.catalog import fetch as fetcher
from pipelines.errors import (
    DataValidationError,
    IngestFailedError,
    SourceIntegrityError,
    UnknownNameError,
)
from pipelines.ingest.adapters.base import AdapterOutput, SourceEntry, get_adapter
from pipelines.ingest.load import load_source
from pipelines.ingest.plan import adapter_version, plan_ingest
from pipelines.warehouse.connection import compact, connect


def _retry_only_io_errors(task: object, task_run: object, state: State) -> bool:
    """Retry a failed extract only when the failure may be transient (I/O, network).

    Bad data and hash mismatches are final: retrying would only repeat the same error.
    """
    exc = state.result(raise_on_failure=False)
    return not isinstance(exc, DataValidationError | SourceIntegrityError | UnknownNameError)


@task(
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=_retry_only_io_errors,
    cache_policy=NO_CACHE,
    task_run_name="extract {entry.name}",
)
def extract_source(entry: SourceEntry) -> AdapterOutput:
    """Fetch one source (mirror or origin, sha256 verified) and parse + validate it."""
    path = fetcher.fetch(entry)
    return get_adapter(entry.adapter)(path, entry)


@dataclass
class IngestSummary:
    """Outcome of one ingest run."""

    loaded: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def raise_for_failures(self) -> None:
        """Raise one error naming every source that failed (the others stay loaded)."""
        if self.failed:
            items = "; ".join(
                f"{name}: {' '.join(msg.split())}" for name, msg in sorted(self.failed.items())
            )
            raise IngestFailedError(
                f"{len(self.failed)} source(s) failed to ingest, the others are loaded: {items}"
            )


@flow(name="ingest", log_prints=True)
def ingest_flow(
    db_path: str | None = None,
    sources: list[str] | None = None,
    force: bool = False,
) -> IngestSummary:
    """Load every registered source that changed into the warehouse.

    Extraction (fetch + parse) runs concurrently in threads; loads run one at a time on the single
    writer connection, each in its own transaction, so a failure or a kill leaves every
    source either fully loaded or exactly as before.
    """
    logger = get_run_logger()
    plan = plan_ingest(db_path, sources=sources, force=force, verify_unchanged=False)
    summary = IngestSummary(skipped=[e.name for e in plan.unchanged])
    logger.info("%d sources to load, %d unchanged", len(plan.todo), len(plan.unchanged))
    futures = {extract_source.submit(entry): entry for entry in plan.todo}
    con = connect(db_path)
    # One checkpoint at the end instead of one per few sources; the WAL keeps every committed
    # source safe in between (a kill replays it on the next open).
    con.execute("SET checkpoint_threshold = '2GB'")
    try:
        # Load in completion order: a slow file never holds up the ones already parsed.
        for i, future in enumerate(as_completed(list(futures)), start=1):
            entry = futures[future]
            try:
                output = future.result()
                rows = load_source(
                    con, entry, output, sha256=entry.sha256, adapter_version=adapter_version(entry)
                )
            except Exception as exc:  # noqa: BLE001 - reported per source, flow fails at the end
                summary.failed[entry.name] = f"{type(exc).__name__}: {exc}"
                logger.error("[%d/%d] %s failed: %s", i, len(futures), entry.name, exc)
                continue
            summary.loaded[entry.name] = rows
            rules = ", ".join(f"{r.rule}×{r.rows}" for r in output.rules) or "no rules"
            logger.info("[%d/%d] %s: %d rows (%s)", i, len(futures), entry.name, rows, rules)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    if summary.loaded and db_path is not None and compact(db_path):
        logger.info("warehouse rebuilt compact (space of replaced rows returned)")
    summary.raise_for_failures()
    return summary
