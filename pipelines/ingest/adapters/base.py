"""The contract every source adapter follows.

An adapter turns one registered file into polars frames, one per warehouse table, plus
a list of the explicit cleaning rules it applied (with row counts). Adapters never touch
the database: :mod:`pipelines.warehouse.connection` loads what they return in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from pipelines.catalog.registry import SourceEntry
from pipelines.errors import UnknownNameError


@dataclass(frozen=True)
class RuleApplied:
    """One explicit cleaning rule an adapter applied to a file.

    Attributes
    ----------
    rule : str
        Short machine-friendly id, e.g. ``"drop_exact_duplicates"``.
    rows : int
        Rows affected (dropped, fixed or relabelled).
    detail : str
        One sentence a person can read in the data report.
    dropped : bool
        True when the affected rows were removed from the load.
    """

    rule: str
    rows: int
    detail: str
    dropped: bool = False


@dataclass
class AdapterOutput:
    """What an adapter returns: frames keyed by warehouse table name, and the rules applied."""

    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    rules: list[RuleApplied] = field(default_factory=list)

    def add(self, table: str, frame: pl.DataFrame) -> None:
        """Append ``frame`` to ``table`` (concatenating when the table already has rows)."""
        if table in self.tables:
            self.tables[table] = pl.concat([self.tables[table], frame], how="diagonal_relaxed")
        else:
            self.tables[table] = frame

    def rule(self, rule: str, rows: int, detail: str, *, dropped: bool = False) -> None:
        """Record a rule; rules that touched no row are not recorded."""
        if rows:
            self.rules.append(RuleApplied(rule, int(rows), detail, dropped))


Adapter = Callable[[Path, SourceEntry], AdapterOutput]
_ADAPTERS: dict[str, Adapter] = {}


def register_adapter(name: str) -> Callable[[Adapter], Adapter]:
    """Register an adapter function under ``name`` (the registry's ``adapter`` field)."""

    def decorate(func: Adapter) -> Adapter:
        if name in _ADAPTERS and _ADAPTERS[name] is not func:
            raise ValueError(f"adapter {name!r} registered twice")
        _ADAPTERS[name] = func
        return func

    return decorate


def get_adapter(name: str) -> Adapter:
    """Return the adapter registered as ``name``.

    Every adapter is registered: importing this module first runs the package's
    ``__init__``, which imports each adapter module explicitly.

    Raises
    ------
    UnknownNameError
        When no adapter has that name.
    """
    try:
        return _ADAPTERS[name]
    except KeyError:
        known = ", ".join(sorted(_ADAPTERS))
        raise UnknownNameError(f"unknown adapter {name!r}; known adapters: {known}") from None


def adapter_names() -> list[str]:
    """Names of every registered adapter."""
    return sorted(_ADAPTERS)
