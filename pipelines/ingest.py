"""Prefect flow ``ingest``: fetch → validate → load; a task per source, a transaction per source.

Unchanged sources (same sha256 and same adapter code as the row in ``ingest_log``) are skipped;
:func:`plan_ingest` tells which sources need work without starting Prefect at all, so a re-run
with nothing changed costs only the hash checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from pipelines import fetch as fetcher
from pipelines.adapters.base import AdapterOutput, SourceEntry, get_adapter
from pipelines.ingest_plan import adapter_version, plan_ingest
from pipelines.warehouse import connect, load_source


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE, task_run_name="fetch {entry.name}")
def fetch_source(entry: SourceEntry) -> Path:
    """Fetch one source (mirror or origin) and verify its sha256."""
    return fetcher.fetch(entry)


@task(cache_policy=NO_CACHE, task_run_name="adapt {entry.name}")
def adapt_source(entry: SourceEntry, path: Path) -> AdapterOutput:
    """Parse and validate one source file with its registered adapter."""
    return get_adapter(entry.adapter)(path, entry)


@dataclass
class IngestSummary:
    """Outcome of one ingest run."""

    loaded: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def raise_for_failures(self) -> None:
        """Raise one error listing every source that failed (the others stay loaded)."""
        if self.failed:
            lines = "\n".join(f"  {name}: {msg}" for name, msg in sorted(self.failed.items()))
            raise RuntimeError(f"{len(self.failed)} source(s) failed to ingest:\n{lines}")


@flow(name="ingest", log_prints=True)
def ingest_flow(
    db_path: str | None = None,
    sources: list[str] | None = None,
    force: bool = False,
) -> IngestSummary:
    """Load every registered source that changed into the warehouse.

    Fetch and parse run concurrently (threads); loads run one at a time on the single
    writer connection, each in its own transaction, so a failure or a kill leaves every
    source either fully loaded or exactly as before.
    """
    logger = get_run_logger()
    plan = plan_ingest(db_path, sources=sources, force=force, verify_unchanged=False)
    summary = IngestSummary(skipped=[e.name for e in plan.unchanged])
    logger.info("%d sources to load, %d unchanged", len(plan.todo), len(plan.unchanged))
    futures = []
    for entry in plan.todo:
        path_future = fetch_source.submit(entry)
        futures.append((entry, adapt_source.submit(entry, path_future)))
    con = connect(db_path)
    # One checkpoint at the end instead of one per few sources; the WAL keeps every committed
    # source safe in between (a kill replays it on the next open).
    con.execute("SET checkpoint_threshold = '2GB'")
    try:
        for i, (entry, future) in enumerate(futures, start=1):
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
    summary.raise_for_failures()
    return summary
