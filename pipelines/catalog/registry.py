"""The source registry: every real file cascade-lab reads, with its origin and sha256.

The registry lives in ``data/registry/*.json`` (one JSON list per family of sources). The
crash-event catalog lives in ``data/events.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from pipelines.errors import UnknownNameError

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
REGISTRY_DIR = DATA_DIR / "registry"
EVENTS_FILE = DATA_DIR / "events.json"


@dataclass(frozen=True, kw_only=True)
class SourceEntry:
    """One registered source file (a row of ``data/registry/*.json``)."""

    name: str
    file: str
    origin_repo: str | None
    commit: str | None
    path: str | None
    url: str | None
    sha256: str
    bytes: int | None
    format: str
    adapter: str
    params: dict[str, Any] = field(default_factory=dict)
    priority: int = 50
    note: str = ""


@cache
def load_registry() -> tuple[SourceEntry, ...]:
    """Every registered source, sorted by name.

    Returns
    -------
    tuple of SourceEntry
        Entries of all ``data/registry/*.json`` files.

    Raises
    ------
    ValueError
        When an entry lacks an adapter or two entries share a name.
    """
    entries: dict[str, SourceEntry] = {}
    for path in sorted(REGISTRY_DIR.glob("*.json")):
        for raw in json.loads(path.read_text()):
            if not raw.get("adapter"):
                raise ValueError(f"{path.name}: source {raw.get('name')!r} has no adapter")
            entry = SourceEntry(
                name=raw["name"],
                file=raw["file"],
                origin_repo=raw.get("origin_repo"),
                commit=raw.get("commit"),
                path=raw.get("path"),
                url=raw.get("url"),
                sha256=raw["sha256"],
                bytes=raw.get("bytes"),
                format=raw.get("format") or "",
                adapter=raw["adapter"],
                params=dict(raw.get("params") or {}),
                priority=int(raw.get("priority", 50)),
                note=raw.get("note", ""),
            )
            if entry.name in entries:
                raise ValueError(f"{path.name}: source {entry.name!r} registered twice")
            entries[entry.name] = entry
    return tuple(sorted(entries.values(), key=lambda e: e.name))


def get_source(name: str) -> SourceEntry:
    """Return the registered source called ``name``.

    Raises
    ------
    UnknownNameError
        When no source has that name; the message lists close matches.
    """
    for entry in load_registry():
        if entry.name == name:
            return entry
    close = [e.name for e in load_registry() if name.lower() in e.name.lower()][:5]
    hint = (
        f"; did you mean one of {close}?" if close else "; `cascade sql 'FROM sources'` lists them"
    )
    raise UnknownNameError(f"unknown source {name!r}{hint}")


@dataclass(frozen=True, kw_only=True)
class CrashEvent:
    """One crash window of the catalog (UTC, end exclusive)."""

    event_id: str
    window: str
    name: str
    start_ts: datetime
    end_ts: datetime
    description: str


@cache
def load_events() -> tuple[CrashEvent, ...]:
    """The crash-event catalog (``data/events.json``), in time order."""
    events = []
    for raw in json.loads(EVENTS_FILE.read_text()):
        events.append(
            CrashEvent(
                event_id=raw["event_id"],
                window=raw["window"],
                name=raw["name"],
                start_ts=datetime.fromisoformat(raw["start_ts"].replace("Z", "+00:00")),
                end_ts=datetime.fromisoformat(raw["end_ts"].replace("Z", "+00:00")),
                description=raw["description"],
            )
        )
    return tuple(sorted(events, key=lambda e: e.start_ts))


def get_event(event_id: str) -> CrashEvent:
    """Return the crash event ``event_id`` (also accepts its window label, e.g. ``W4``).

    Raises
    ------
    UnknownNameError
        When the id is not in the catalog; the message lists the known ids.
    """
    for event in load_events():
        if event_id in (event.event_id, event.window):
            return event
    known = ", ".join(e.event_id for e in load_events())
    raise UnknownNameError(f"unknown event {event_id!r}; known events: {known}")
