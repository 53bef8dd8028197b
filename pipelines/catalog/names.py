"""The one rule for names that reach the warehouse or a file name, and the one safe path join.

A name of an asset, venue, market or source is 1 to 32 characters of ``A-Z a-z 0-9 . _ -``
and does not start with a dot (:data:`NAME_PATTERN`). Anything else — empty, blank, a newline,
``/``, ``..``, a space — is refused with :class:`~pipelines.errors.InvalidNameError` (exit 2 on
the command line). User venues carry the prefix ``user:`` (:data:`USER_VENUE_PREFIX`), added by
the loader, never typed.

Every output file whose name is built from data goes through :func:`safe_join`, which refuses
any result outside its directory even if a name slipped past validation.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipelines.errors import InvalidNameError, UnsafePathError

__all__ = ["NAME_PATTERN", "NAME_RULE", "USER_VENUE_PREFIX", "check_name", "safe_join"]

NAME_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,31}")
NAME_RULE = "1-32 characters of A-Z a-z 0-9 . _ -, not starting with a dot"
USER_VENUE_PREFIX = "user:"


def check_name(kind: str, value: object) -> str:
    """``value`` when it is a valid ``kind`` name (asset, venue, market, source), else an error.

    Raises
    ------
    InvalidNameError
        With the offending value (``repr``, so a newline or a blank shows) and the rule.
    """
    if not isinstance(value, str) or NAME_PATTERN.fullmatch(value) is None:
        raise InvalidNameError(f"invalid {kind} name {value!r}: use {NAME_RULE}")
    return value


def safe_join(directory: str | Path, *parts: str) -> Path:
    """``directory / parts…``, refusing a result that is not inside ``directory``.

    Raises
    ------
    UnsafePathError
        When a part is absolute, holds ``..`` or a separator that leads out, or is empty.
    """
    base = Path(directory).resolve()
    target = base.joinpath(*parts).resolve()
    if (
        not parts
        or any(not p or p in (".", "..") for p in parts)
        or not target.is_relative_to(base)
    ):
        raise UnsafePathError(
            f"refusing to write {'/'.join(parts)!r} outside {str(directory)!r}: "
            f"file names may use {NAME_RULE}"
        )
    return Path(directory).joinpath(*parts)
