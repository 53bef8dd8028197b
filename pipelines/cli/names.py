"""Names typed on the command line → canonical names, checked before any heavy import.

Every command that takes an event, policy or forecast model resolves it here first, so a typo
exits 2 in a fraction of a second with the known names, aliases included:

* events: the catalog id (``2020-03-12-black-thursday``) or its window label (``W1``…``W7``,
  any case);
* policies: the library name (``dutch_auction``) or the scoreboard's short label (``dutch``,
  ``breaker``, ``buffer``, ``dynLTV``, ``dynLTV+dutch``), any case; a scoreboard column such as
  ``dynLTV:garch`` also names the forecast model; combinations (``a+b``) and presets
  (``name@preset``) are passed on to the library, which checks them;
* forecast models: ``ewma``, ``garch``, ``gjr``, ``egarch``, ``har``, ``hgb``, ``rf``, ``hgbc``,
  ``hgbch``.

The tables are static (importing the policy or model registries costs seconds on a loaded
machine); ``tests/test_first_hour_names.py`` checks they match the registries.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from pipelines.errors import CascadeError, UnknownNameError
from pipelines.reporting.labels import SHORT_LABELS

#: ``backtest.POLICY_NAMES`` (checked by a test).
POLICY_NAMES: tuple[str, ...] = (
    "instant",
    "dutch_auction",
    "circuit_breaker",
    "liquidity_buffer",
    "batch",
    "staged",
    "dynamic_ltv",
    "dynamic_ltv+dutch_auction",
    "schedule",
    "amm_bands",
)
#: ``backtest.PRESETS`` (checked by a test).
POLICY_PRESETS: tuple[str, ...] = ("dutch_auction@gauntlet", "smart_ltv")
#: ``forecasting.models.MODELS`` (checked by a test).
MODEL_NAMES: tuple[str, ...] = (
    "ewma",
    "garch",
    "gjr",
    "egarch",
    "har",
    "hgb",
    "rf",
    "hgbc",
    "hgbch",
)

_POLICY_ALIASES: dict[str, str] = {
    label.lower(): name for name, label in SHORT_LABELS.items() if label != name
} | {
    "dynltv+dutch_auction": "dynamic_ltv+dutch_auction",
    "dynamic_ltv+dutch": ("dynamic_ltv+dutch_auction"),
}


def split_values(values: Iterable[str] | None) -> list[str]:
    """Flatten repeatable, comma-separated options (``--x a,b --x c``)."""
    return [v.strip() for raw in values or () for v in str(raw).split(",") if v.strip()]


def _known_policies() -> str:
    aliases = ", ".join(
        f"{label} = {name}" for name, label in SHORT_LABELS.items() if label != name
    )
    return (
        f"known policies: {', '.join(POLICY_NAMES)}; presets: {', '.join(POLICY_PRESETS)}; "
        f"scoreboard labels: {aliases}"
    )


def resolve_policy(name: str) -> tuple[str, str | None]:
    """``(policy name, forecast model or None)`` for a typed policy name or scoreboard label.

    Raises
    ------
    UnknownNameError
        Listing the policies, presets and labels.
    """
    text = name.strip()
    model = None
    if ":" in text:  # a scoreboard column: ``dynLTV:garch``
        text, model = (part.strip() for part in text.split(":", 1))
        model = resolve_model(model)
    if text in POLICY_NAMES or text in POLICY_PRESETS:
        return text, model
    canonical = _POLICY_ALIASES.get(text.lower())
    if canonical is None and text.lower() in POLICY_NAMES:
        canonical = text.lower()
    if canonical is not None:
        return canonical, model
    if "+" in text or "@" in text:  # a combination or a preset: the library checks each part
        parts = [
            _POLICY_ALIASES.get(p.strip().lower(), p.strip()) if "@" not in p else p.strip()
            for p in text.split("+")
        ]
        return "+".join(parts), model
    raise UnknownNameError(f"unknown policy {name!r}; {_known_policies()}")


def resolve_model(name: str) -> str:
    """The forecast model ``name`` (any case).

    Raises
    ------
    UnknownNameError
        Listing the models.
    """
    text = name.strip().lower()
    if text in MODEL_NAMES:
        return text
    raise UnknownNameError(
        f"unknown forecast model {name!r}; known models: {', '.join(MODEL_NAMES)}"
    )


def resolve_event(name: str) -> str:
    """The catalog id of an event id or window label (``W4``, ``w4``).

    Raises
    ------
    UnknownNameError
        Listing every event as ``W1 = id``.
    """
    from pipelines.catalog.registry import load_events  # JSON only: cheap

    text = name.strip()
    for event in load_events():
        if text == event.event_id or text.upper() == event.window.upper():
            return event.event_id
    known = ", ".join(f"{e.window} = {e.event_id}" for e in load_events())
    raise UnknownNameError(f"unknown event {name!r}; known events: {known}")


def resolve_events(values: Iterable[str] | None) -> list[str] | None:
    """Canonical event ids of a (comma-separated, repeatable) option; ``None`` when absent."""
    names = split_values(values)
    if not names or names == ["all"]:
        return None
    return [resolve_event(n) for n in names]


def resolve_models(values: Iterable[str] | None) -> list[str] | None:
    """Canonical model names of a (comma-separated, repeatable) option; ``None`` when absent."""
    names = split_values(values)
    if not names or names == ["all"]:
        return None
    return [resolve_model(n) for n in names]


def resolve_policies(
    values: Iterable[str] | None, models: list[str] | None = None
) -> tuple[list[str] | None, list[str] | None]:
    """Canonical policies of an option, and the models it adds (``dynLTV:garch`` adds ``garch``)."""
    names = split_values(values)
    if not names or names == ["all"]:
        return None, models
    policies: list[str] = []
    extra = list(models or [])
    for typed in names:
        policy, model = resolve_policy(typed)
        if policy not in policies:
            policies.append(policy)
        if model is not None and model not in extra:
            extra.append(model)
    return policies, extra or models


def default_db_path() -> Path:
    """``CASCADE_DB`` when set, else ``./cascade.duckdb``.

    The same as :func:`pipelines.warehouse.connection.default_db_path`, without importing DuckDB
    and polars: the parser of :mod:`pipelines.cli.main` needs only this.
    """
    return Path(os.environ.get("CASCADE_DB", "cascade.duckdb"))


def require_db(db: Path | str, command: str) -> Path:
    """The warehouse path of a command that reads it; it must exist (never create it here).

    Raises
    ------
    CascadeError
        Naming the path and the command that creates the warehouse.
    """
    path = Path(db)
    if not path.exists():
        raise CascadeError(
            f"warehouse {str(path)!r} does not exist (`cascade {command}` reads one and never "
            "creates it); build it with `cascade run` (everything) or `cascade ingest` (the data "
            "only), or point --db / $CASCADE_DB at an existing one"
        )
    return path
