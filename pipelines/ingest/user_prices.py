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
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipelines.catalog.fetch import sha256_of
from pipelines.catalog.names import USER_VENUE_PREFIX, check_name
from pipelines.errors import DataValidationError, ParameterError
from pipelines.ingest.adapters.base import AdapterOutput, SourceEntry
from pipelines.ingest.load import load_source
from pipelines.warehouse.connection import compact, connect, default_db_path

#: Largest bar size accepted (31 days), so a typo cannot become a 95-year bar.
MAX_BAR_SECONDS = 31 * 86_400
DEFAULT_VENUE = "user"


@dataclass(frozen=True)
class UserLoad:
    """What :func:`ingest_user_prices` did."""

    rows: int
    source: str
    venue: str
    replaced: int
    override: bool


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
    return UserLoad(rows, name, venue_stored, int(replaced), override)
