"""Fetch registered source files from a local mirror or their origin, verifying sha256.

Resolution order for the local mirror: ``CASCADE_DATA_MIRROR``, else ``../shared/data`` next to
the repository when it exists. Without a mirror, files are downloaded from their pinned origin
URL into ``CASCADE_CACHE`` (default ``~/.cache/cascade-lab``) with :mod:`pooch`, which checks
the hash. A hash mismatch is always an error, never a silent fallback.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from pipelines.catalog.registry import SourceEntry
from pipelines.errors import SourceIntegrityError

REPO_ROOT = Path(__file__).resolve().parents[2]


def mirror_dir() -> Path | None:
    """The local mirror directory in force, or ``None`` when there is none."""
    env = os.environ.get("CASCADE_DATA_MIRROR")
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise SourceIntegrityError(
                f"CASCADE_DATA_MIRROR={env!r} is not a directory; fix the path or unset it"
            )
        return path
    default = REPO_ROOT.parent / "shared" / "data"
    return default if default.is_dir() else None


def cache_dir() -> Path:
    """Download cache (``CASCADE_CACHE`` or ``~/.cache/cascade-lab``)."""
    return Path(os.environ.get("CASCADE_CACHE", "~/.cache/cascade-lab")).expanduser()


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, entry: SourceEntry) -> Path:
    """Check that ``path`` exists and has the registered sha256.

    Raises
    ------
    SourceIntegrityError
        When the file is missing or its hash differs from the registry's.
    """
    if not path.is_file():
        raise SourceIntegrityError(
            f"source {entry.name!r}: file {str(path)!r} is missing; restore the mirror or "
            "unset CASCADE_DATA_MIRROR to download it from its origin"
        )
    actual = sha256_of(path)
    if actual != entry.sha256:
        raise SourceIntegrityError(
            f"source {entry.name!r}: sha256 of {str(path)!r} is {actual}, registry says "
            f"{entry.sha256}; the file changed — restore the original, never edit the registry "
            "to match"
        )
    return path


def fetch(entry: SourceEntry) -> Path:
    """Return a verified local path for ``entry`` (mirror first, then origin download).

    Raises
    ------
    SourceIntegrityError
        Missing file, hash mismatch, or no mirror and no origin URL.
    """
    mirror = mirror_dir()
    if mirror is not None:
        return verify(mirror / entry.file, entry)
    if not entry.url:
        raise SourceIntegrityError(
            f"source {entry.name!r} has no origin URL and no local mirror is configured; "
            "set CASCADE_DATA_MIRROR to a copy of the data"
        )
    import pooch  # imported lazily: only needed without a mirror

    target = cache_dir() / entry.file
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        downloaded = pooch.retrieve(
            entry.url,
            known_hash=f"sha256:{entry.sha256}",
            fname=target.name,
            path=target.parent,
            progressbar=False,
        )
    except ValueError as exc:  # pooch raises ValueError on hash mismatch
        raise SourceIntegrityError(f"source {entry.name!r}: {exc}") from exc
    return Path(downloaded)
