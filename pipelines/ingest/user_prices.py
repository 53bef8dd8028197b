"""``cascade ingest-prices``: a user's own OHLCV file, validated strictly, loaded atomically.

User bars never shadow registry bars silently:

* They are stored under a venue of their own: ``user`` (the default ``--venue``) or
  ``user:<venue>`` (``--venue binance`` → ``user:binance``), which no registry source uses.
* Only with ``override=True`` (``--override``) are they stored under the venue as given, where
  they take precedence over the registry's bars of the same asset, market, venue, bar size and
  time. Their source name then starts with ``user-override/``, and that name is what the
  ``prices`` view (column ``source``) and everything computed from it carry.
* One *logical* source per (asset, market, venue, bar size): loading replaces exactly the bars
  that source held before (whatever the file was called or where it lived), and the command
  says how many it replaced.
* A file with no bars is an error; nothing is loaded or removed.
* :func:`remove_user_sources` (``cascade remove-asset``) deletes an asset's user sources, and
  only those (names starting ``user/`` or ``user-override/``), in one transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines.catalog.fetch import sha256_of
from pipelines.catalog.names import USER_VENUE_PREFIX, check_name
from pipelines.errors import DataValidationError, ParameterError, UnknownNameError
from pipelines.ingest.adapters.base import AdapterOutput, SourceEntry
from pipelines.ingest.load import load_source
from pipelines.warehouse.connection import (
    compact,
    connect,
    default_db_path,
    raw_table,
    transaction,
)

#: Largest bar size accepted (31 days), so a typo cannot become a 95-year bar.
MAX_BAR_SECONDS = 31 * 86_400
DEFAULT_VENUE = "user"
#: Source-name roots of user-loaded bars; no registry source starts with them.
USER_SOURCE_ROOTS = ("user/", "user-override/")


@dataclass(frozen=True)
class UserLoad:
    """What :func:`ingest_user_prices` did."""

    rows: int
    source: str
    venue: str
    replaced: int
    override: bool
    bar_seconds: int
    inferred: bool
    """``True`` when the bar size was inferred from the timestamps (no ``bar_seconds`` given)."""


def stored_venue(venue: str, *, override: bool = False) -> str:
    """Venue the bars are stored under: ``user`` / ``user:<venue>``, or ``venue`` on override."""
    venue = check_name("venue", venue).lower()
    if override or venue == DEFAULT_VENUE:
        return venue
    return f"{USER_VENUE_PREFIX}{venue}"


def user_source_name(
    *, asset: str, market: str, venue: str, bar_seconds: int, override: bool = False
) -> str:
    """Name of the logical source: ``user[-override]/<ASSET>/<market>/<venue>/<bar>s``."""
    root = "user-override" if override else "user"
    return f"{root}/{asset.upper()}/{market}/{venue}/{bar_seconds}s"


def check_bar_seconds(bar_seconds: int | None) -> int | None:
    """``bar_seconds`` when it is ``None`` or in ``1 … MAX_BAR_SECONDS``, else an error."""
    if bar_seconds is None:
        return None
    if int(bar_seconds) <= 0:
        raise ParameterError("bar_seconds", f"must be positive, got {bar_seconds}")
    if int(bar_seconds) > MAX_BAR_SECONDS:
        raise ParameterError(
            "bar_seconds", f"must be at most {MAX_BAR_SECONDS} (31 days), got {bar_seconds}"
        )
    return int(bar_seconds)


def ingest_user_prices(
    db_path: Path | str | None,
    file: Path,
    *,
    asset: str,
    market: str = "spot",
    venue: str = DEFAULT_VENUE,
    bar_seconds: int | None = None,
    override: bool = False,
) -> UserLoad:
    """Validate ``file`` and load it into ``prices`` in one transaction.

    Raises
    ------
    InvalidNameError
        ``asset``, ``market`` or ``venue`` outside :data:`pipelines.catalog.names.NAME_RULE`.
    ParameterError
        ``bar_seconds`` outside ``1 … MAX_BAR_SECONDS``.
    DataValidationError
        Bad input, no bars, or no such file (:class:`~pipelines.errors.MissingFileError`);
        the database is left exactly as it was.
    """
    from pipelines.ingest.validate import read_user_ohlcv

    check_name("asset", asset)
    check_name("market", market)
    venue_stored = stored_venue(venue, override=override)
    bar_seconds = check_bar_seconds(bar_seconds)
    inferred = bar_seconds is None
    file = Path(file)
    frame, rules = read_user_ohlcv(
        file, asset=asset, market=market, venue=venue_stored, bar_seconds=bar_seconds
    )
    if frame.height == 0:
        raise DataValidationError(
            str(file), None, None, "holds no bars (a header only?); nothing was loaded or removed"
        )
    bar = int(frame.get_column("bar_seconds")[0])
    name = user_source_name(
        asset=asset, market=market, venue=venue_stored, bar_seconds=bar, override=override
    )
    sha = sha256_of(file)
    entry = SourceEntry(
        name=name,
        file=str(file.resolve()),
        origin_repo=None,
        commit=None,
        path=None,
        url=None,
        sha256=sha,
        bytes=file.stat().st_size,
        format=file.suffix.lstrip("."),
        adapter="user-ohlcv-override" if override else "user-ohlcv",
        params={"asset": asset, "market": market, "venue": venue_stored, "override": override},
        priority=0,
    )
    output = AdapterOutput(tables={"prices": frame}, rules=list(rules))
    con = connect(db_path)
    try:
        replaced = con.execute(
            "SELECT count(*) FROM raw_prices WHERE source = ?", [name]
        ).fetchone()[0]
        rows = load_source(con, entry, output, sha256=sha, adapter_version="user")
    finally:
        con.close()
    if replaced:
        compact(db_path if db_path is not None else default_db_path())
    return UserLoad(rows, name, venue_stored, int(replaced), override, bar, inferred)


# --- removal ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserSourceBars:
    """One user source of an asset and the bars it holds in ``raw_prices``."""

    source: str
    bars: int


def is_user_source(name: str) -> bool:
    """``True`` for a user-loaded source (``user/…`` or ``user-override/…``)."""
    return name.startswith(USER_SOURCE_ROOTS)


def _venues_matching(venue: str) -> set[str]:
    """Stored venues ``--venue`` means: ``binance`` → ``binance`` (override), ``user:binance``."""
    plain = venue.lower().removeprefix(USER_VENUE_PREFIX)
    check_name("venue", plain)
    return {plain, f"{USER_VENUE_PREFIX}{plain}"}


def _user_sources(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
    """``(source, ASSET, venue)`` of every user source registered in the warehouse."""
    rows = con.execute(
        "SELECT source, split_part(source, '/', 2), split_part(source, '/', 4) FROM sources "
        "WHERE starts_with(source, 'user/') OR starts_with(source, 'user-override/') "
        "ORDER BY source"
    ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def plan_remove_asset(
    db_path: Path | str | None, asset: str, *, venue: str | None = None
) -> list[UserSourceBars]:
    """The user sources of ``asset`` (at ``venue``, if given) and their bars; nothing is changed.

    Raises
    ------
    InvalidNameError
        ``asset`` or ``venue`` outside :data:`pipelines.catalog.names.NAME_RULE`.
    UnknownNameError
        No user source of ``asset`` (at ``venue``): the message says whether the asset has only
        registry data (never removed) and lists the user assets (or venues) present.
    """
    asset = check_name("asset", asset).upper()
    venues = _venues_matching(venue) if venue is not None else None
    con = connect(db_path, read_only=True)
    try:
        everything = _user_sources(con)
        mine = [s for s, a, _ in everything if a == asset]
        chosen = [s for s, a, v in everything if a == asset and (venues is None or v in venues)]
        if not chosen:
            raise _nothing_to_remove(con, asset, venue, everything, mine)
        counts = dict(
            con.execute(
                "SELECT source, count(*) FROM raw_prices WHERE list_contains(?, source) "
                "GROUP BY source",
                [chosen],
            ).fetchall()
        )
    finally:
        con.close()
    return [UserSourceBars(s, int(counts.get(s, 0))) for s in chosen]


def _nothing_to_remove(
    con: duckdb.DuckDBPyConnection,
    asset: str,
    venue: str | None,
    everything: list[tuple[str, str, str]],
    mine: list[str],
) -> UnknownNameError:
    if mine:  # the asset has user sources, just not at that venue
        venues = sorted({v for s, a, v in everything if a == asset})
        return UnknownNameError(
            f"asset {asset!r} has no user-loaded bars at venue {venue!r}; its user venues: "
            f"{', '.join(venues)} (or omit --venue to remove all of them)"
        )
    registry = con.execute(
        "SELECT count(*) FROM raw_prices WHERE asset = ? "
        "AND NOT (starts_with(source, 'user/') OR starts_with(source, 'user-override/'))",
        [asset],
    ).fetchone()[0]
    assets = sorted({a for _, a, _ in everything})
    present = f"user assets present: {', '.join(assets)}" if assets else "no user assets loaded"
    if registry:
        return UnknownNameError(
            f"asset {asset!r} has only registry data ({registry:,} bars), which remove-asset "
            f"never removes; it removes bars loaded with `cascade ingest-prices` ({present})"
        )
    return UnknownNameError(f"unknown asset {asset!r}; {present}")


def _delete_source(con: duckdb.DuckDBPyConnection, name: str) -> int:
    """Delete one source's rows (every table its ingest_log names) and its catalogue rows."""
    logged = con.execute("SELECT rows_by_table FROM ingest_log WHERE source = ?", [name]).fetchone()
    tables = set(json.loads(logged[0])) if logged is not None else set()
    tables.add("prices")
    bars = con.execute("SELECT count(*) FROM raw_prices WHERE source = ?", [name]).fetchone()[0]
    for table in sorted(tables):
        con.execute(f"DELETE FROM {raw_table(table)} WHERE source = ?", [name])
    con.execute("DELETE FROM ingest_log WHERE source = ?", [name])
    con.execute("DELETE FROM sources WHERE source = ?", [name])
    return int(bars)


def remove_user_sources(db_path: Path | str | None, sources: list[str]) -> list[UserSourceBars]:
    """Delete the given user sources in one transaction; the bars each one held.

    On any error the database is left exactly as it was. The file is compacted afterwards when
    the deletes left it bloated (:func:`pipelines.warehouse.connection.compact`).

    Raises
    ------
    ParameterError
        A name that is not a user source (registry data is never removed).
    """
    foreign = [s for s in sources if not is_user_source(s)]
    if foreign:
        raise ParameterError(
            "sources",
            f"must be user sources (user/… or user-override/…); refusing {', '.join(foreign)}",
        )
    con = connect(db_path)
    try:
        with transaction(con):
            removed = [UserSourceBars(s, _delete_source(con, s)) for s in sources]
    finally:
        con.close()
    if removed:
        compact(db_path if db_path is not None else default_db_path())
    return removed
