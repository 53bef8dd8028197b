"""``cascade ingest-prices``: a user's own OHLCV file, validated strictly, loaded atomically."""

from __future__ import annotations

from pathlib import Path

from pipelines.catalog.fetch import sha256_of
from pipelines.ingest.adapters.base import AdapterOutput, SourceEntry
from pipelines.ingest.load import load_source
from pipelines.warehouse.connection import connect


def user_source_name(file: Path, *, asset: str, market: str, venue: str) -> str:
    """Registry-style name of a user file: ``user/<ASSET>/<market>/<venue>/<file name>``."""
    return f"user/{asset.upper()}/{market}/{venue.lower()}/{file.name}"


def ingest_user_prices(
    db_path: Path | str | None,
    file: Path,
    *,
    asset: str,
    market: str = "spot",
    venue: str = "user",
    bar_seconds: int | None = None,
) -> tuple[int, str]:
    """Validate ``file`` and load it into ``prices`` in one transaction.

    Loading the same file again (same asset, market, venue, file name) replaces its bars.

    Returns
    -------
    (int, str)
        Rows loaded and the source name they carry.

    Raises
    ------
    DataValidationError
        Bad input, or no such file (:class:`~pipelines.errors.MissingFileError`); the database
        is left exactly as it was.
    """
    from pipelines.ingest.validate import read_user_ohlcv

    file = Path(file)
    frame, rules = read_user_ohlcv(
        file, asset=asset, market=market, venue=venue, bar_seconds=bar_seconds
    )
    name = user_source_name(file, asset=asset, market=market, venue=venue)
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
        adapter="user-ohlcv",
        params={"asset": asset, "market": market, "venue": venue},
        priority=0,
    )
    output = AdapterOutput(tables={"prices": frame}, rules=list(rules))
    con = connect(db_path)
    try:
        rows = load_source(con, entry, output, sha256=sha, adapter_version="user")
    finally:
        con.close()
    return rows, name
