"""Which registered sources an ingest must (re)load — decided without importing Prefect.

A source is unchanged when ``ingest_log`` holds the registry's sha256 for it and the same
adapter version (a hash of the adapter code and the registry entry). ``cascade ingest`` asks
this first, so a re-run with nothing changed never starts Prefect's server.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pipelines.catalog import fetch as fetcher
from pipelines.catalog.registry import load_registry
from pipelines.errors import SourceIntegrityError, UnknownNameError
from pipelines.ingest.adapters.base import SourceEntry, get_adapter
from pipelines.ingest.load import loaded_versions
from pipelines.warehouse.connection import connect

_SHARED_CODE = (
    "pipelines/ingest/adapters/base.py",
    "pipelines/ingest/adapters/ohlcv_common.py",
    "pipelines/ingest/adapters/reference.py",
    "pipelines/ingest/validate.py",
    "pipelines/ingest/validate_params.py",
)


@cache
def _file_digest(path: str) -> str:
    file = Path(path)
    return hashlib.sha256(file.read_bytes()).hexdigest() if file.exists() else ""


def adapter_version(entry: SourceEntry) -> str:
    """Hash of everything that shapes a source's rows besides its bytes.

    The adapter's module source, the shared validation code and the entry's registry fields;
    any change forces a reload of that source on the next ingest.
    """
    root = Path(__file__).resolve().parents[2]
    module_file = inspect.getsourcefile(get_adapter(entry.adapter)) or ""
    parts = [_file_digest(module_file)] + [_file_digest(str(root / p)) for p in _SHARED_CODE]
    parts.append(
        json.dumps(
            {
                "adapter": entry.adapter,
                "params": entry.params,
                "priority": entry.priority,
                "format": entry.format,
            },
            sort_keys=True,
        )
    )
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class IngestPlan:
    """Which registered sources must be (re)loaded and which are unchanged."""

    todo: tuple[SourceEntry, ...]
    unchanged: tuple[SourceEntry, ...]


def plan_ingest(
    db_path: Path | str | None,
    *,
    sources: list[str] | None = None,
    force: bool = False,
    verify_unchanged: bool = True,
) -> IngestPlan:
    """Compare the registry with ``ingest_log``.

    Parameters
    ----------
    db_path : path or None
        Warehouse file (created with the schema when missing).
    sources : list of str, optional
        Restrict to these registry names.
    force : bool
        Reload every selected source.
    verify_unchanged : bool
        Re-hash the files of unchanged sources so a corrupted mirror is still caught.
    """
    registry = load_registry()
    if sources is not None:
        unknown = sorted(set(sources) - {e.name for e in registry})
        if unknown:
            raise UnknownNameError(
                f"unknown source {', '.join(map(repr, unknown))}; "
                'list the registered ones with `cascade sql "SELECT source FROM sources"` '
                "or see data/registry/*.json"
            )
    entries = [e for e in registry if sources is None or e.name in set(sources)]
    con = connect(db_path)
    try:
        done = loaded_versions(con)
    finally:
        con.close()
    todo, unchanged = [], []
    bad: list[str] = []
    for entry in entries:
        if not force and done.get(entry.name) == (entry.sha256, adapter_version(entry)):
            if verify_unchanged:
                try:
                    fetcher.fetch(entry)
                except SourceIntegrityError as exc:  # keep going: name every bad file at once
                    bad.append(" ".join(str(exc).split()))
            unchanged.append(entry)
        else:
            todo.append(entry)
    if bad:
        raise SourceIntegrityError(
            f"{len(bad)} source file(s) failed verification: " + "; ".join(bad)
        )
    return IngestPlan(tuple(todo), tuple(unchanged))
