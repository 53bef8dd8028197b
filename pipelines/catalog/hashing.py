"""Run configurations and their hashes (the hash is the run id, the primary key of results)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from datetime import date, datetime
from pathlib import Path
from typing import Any


def _canonical(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"__type__": type(value).__name__, **fields}
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, float):
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if math.isnan(value):
            return "nan"
        return repr(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return _canonical(value.tolist())
    return value


def canonical_json(config: Any) -> str:
    """Deterministic JSON of a config (dataclasses, dicts, lists, floats, dates, numpy)."""
    return json.dumps(_canonical(config), sort_keys=True, separators=(",", ":"))


def config_hash(config: Any) -> str:
    """16-hex-digit sha256 of :func:`canonical_json` — the run id."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()[:16]


#: The repository root (``pipelines/catalog/hashing.py`` → three levels up).
REPO_ROOT = Path(__file__).resolve().parents[2]


def code_digest(*patterns: str, root: Path | None = None) -> str:
    """16-hex-digit sha256 of the Python files matching ``patterns`` (paths and bytes).

    The code version of a stage: any edit of a matched file changes it, so results computed by
    older code are never mistaken for current ones.

    Parameters
    ----------
    *patterns : str
        Glob patterns relative to ``root`` (e.g. ``"backtest/**/*.py"``).
    root : path, optional
        Repository root (default: the one holding this package).

    Returns
    -------
    str
    """
    base = Path(root) if root is not None else REPO_ROOT
    files = sorted({p for pattern in patterns for p in base.glob(pattern) if p.is_file()})
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(base).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
