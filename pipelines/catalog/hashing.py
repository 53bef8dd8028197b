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
