"""Reference material: published crash figures and files with no natural table.

Adapters
--------
``reference_figures``
    ``reference_figures.csv`` (published headline figures) → ``reference_figures``.
``json_document``
    A JSON file → ``source_documents`` (the whole file as one record).
``csv_documents``
    A CSV file → ``source_documents`` (one JSON record per row).

The module also holds the small helpers the market adapters share: resolving a sibling file
of the same origin repository and building ``source_documents`` frames.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

import polars as pl

from pipelines.errors import DataValidationError, SourceIntegrityError
from pipelines.ingest.adapters.base import AdapterOutput, SourceEntry, register_adapter

UTC_US = pl.Datetime("us", "UTC")


# Shared helpers --------------------------------------------------------------------------------


def _registered(file: str) -> SourceEntry | None:
    """The registry entry whose ``file`` is ``file``, if any."""
    from pipelines.catalog.registry import load_registry  # lazy: the registry imports adapters

    return next((e for e in load_registry() if e.file == file), None)


def sibling_file(path: Path, entry: SourceEntry, name: str) -> Path:
    """Return the verified file ``name`` of the same folder of the same origin repository.

    When the sibling is registered it is fetched like any source (mirror first, then origin),
    so its sha256 is checked. An unregistered sibling is looked up next to ``path``.

    Parameters
    ----------
    path : Path
        Local path of the file being adapted.
    entry : SourceEntry
        Registry entry of that file.
    name : str
        File name of the sibling, e.g. ``"tokens.csv"``.

    Raises
    ------
    DataValidationError
        When the sibling fails its hash check or cannot be found.
    """
    from pipelines.catalog.fetch import fetch  # lazy: adapters do not need the fetcher otherwise

    wanted = str(PurePosixPath(entry.file).parent / name)
    other = _registered(wanted)
    if other is not None:
        try:
            return fetch(other)
        except SourceIntegrityError as exc:
            raise DataValidationError(
                entry.name, None, None, f"needs sibling file {name!r}, which failed: {exc}"
            ) from exc
    local = path.parent / name
    if local.is_file():
        return local
    raise DataValidationError(
        entry.name,
        None,
        None,
        f"needs the sibling file {name!r} in {str(path.parent)!r}; register {wanted!r} or "
        "copy it next to the file",
    )


def _json_default(value: Any) -> Any:
    """Serialise the few non-JSON types polars rows carry (dates, times, NaN)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return str(value)


def _clean_json(value: Any) -> Any:
    """Replace NaN/inf floats (not valid JSON) by ``None``, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean_json(v) for v in value]
    return value


def to_json(value: Any) -> str:
    """Deterministic JSON text (sorted keys, no NaN) for a ``source_documents`` payload."""
    return json.dumps(_clean_json(value), sort_keys=True, default=_json_default, ensure_ascii=False)


def documents_frame(records: list[Any], kinds: str | list[str]) -> pl.DataFrame:
    """Build a ``source_documents`` frame: ``record_no`` (1-based), ``kind``, ``payload``.

    Parameters
    ----------
    records : list
        JSON-serialisable records, in file order.
    kinds : str or list of str
        One kind for every record, or one per record.
    """
    kind_list = [kinds] * len(records) if isinstance(kinds, str) else list(kinds)
    return pl.DataFrame(
        {
            "record_no": list(range(1, len(records) + 1)),
            "kind": kind_list,
            "payload": [to_json(r) for r in records],
        },
        schema={"record_no": pl.Int64, "kind": pl.String, "payload": pl.String},
    )


def default_kind(path: Path, entry: SourceEntry) -> str:
    """The ``kind`` of a document: ``params['kind']`` or the file stem."""
    return str(entry.params.get("kind") or path.stem)


def parse_utc(
    frame: pl.DataFrame, column: str, *, file: str, fmt: str | None = None, alias: str = "ts"
) -> pl.DataFrame:
    """Parse a text timestamp column to ``Datetime('us', 'UTC')``; naive text is taken as UTC.

    Raises
    ------
    DataValidationError
        Naming the first row whose timestamp does not parse.
    """
    text = frame[column].cast(pl.String).str.strip_chars().str.replace(r" UTC$", "")
    parsed = text.str.to_datetime(format=fmt, strict=False, time_unit="us")
    if parsed.dtype.time_zone is None:  # type: ignore[union-attr]
        parsed = parsed.dt.replace_time_zone("UTC")
    else:
        parsed = parsed.dt.convert_time_zone("UTC")
    bad = parsed.is_null() & text.is_not_null()
    if bad.any():
        row = int(bad.arg_true()[0]) + 1
        raise DataValidationError(
            file, column, row, f"timestamp {text[row - 1]!r} does not parse; give ISO-8601 UTC"
        )
    return frame.with_columns(parsed.cast(UTC_US).alias(alias))


def epoch_to_utc(values: pl.Expr, unit: str) -> pl.Expr:
    """Epoch numbers (``unit`` = ``"s"`` or ``"ms"``) → ``Datetime('us', 'UTC')``."""
    return pl.from_epoch(values.cast(pl.Int64), time_unit=unit).dt.replace_time_zone("UTC")


def require_columns(frame: pl.DataFrame, columns: list[str], *, file: str) -> None:
    """Raise when any of ``columns`` is missing from ``frame``."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataValidationError(
            file,
            missing[0],
            None,
            f"missing column(s) {missing}; the file has {frame.columns}",
            row_kind="file line",
        )


def check_non_negative(frame: pl.DataFrame, columns: list[str], *, file: str) -> None:
    """Raise on the first negative value in any of ``columns`` (nulls are allowed)."""
    for column in columns:
        negative = frame[column].cast(pl.Float64) < 0
        if negative.any():
            row = int(negative.arg_true()[0]) + 1
            raise DataValidationError(
                file, column, row, f"negative value {frame[column][row - 1]}; must be >= 0"
            )


def strip_bom(frame: pl.DataFrame) -> pl.DataFrame:
    """Remove a UTF-8 byte-order mark and stray spaces from column names."""
    return frame.rename({c: c.replace("\ufeff", "").strip() for c in frame.columns})


def no_data_prefix(values: pl.Expr, group: str | None = None) -> pl.Expr:
    """True on the leading rows (per ``group``) before the first non-zero, non-null value."""
    started = (values.fill_null(0) != 0).cast(pl.Int32)
    cumulative = started.cum_sum()
    if group is not None:
        cumulative = cumulative.over(group)
    return cumulative == 0


# reference_figures.csv ---------------------------------------------------------------------------

_NUMBER = r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
_DATE = re.compile(r"^(\d{4})-(\d{2})(?:-(\d{2}))?")


def _parse_figure(text: str | None) -> tuple[float | None, str | None]:
    """Parse a published value: ``(number, qualifier)``; qualifier explains any loss.

    ``"5.67e6"`` → ``(5.67e6, None)``; ``"~10e9"`` → ``(10e9, "approximate")``;
    ``">1e9"`` → ``(1e9, "lower bound")``; ``"5.511e9 (63,637 events)"`` → number plus
    qualifier; ``"86 lots / 4.3e6"`` or ``"10x lifetime"`` → ``(None, "not a single number")``.
    """
    if text is None or not text.strip():
        return None, "empty"
    raw = text.strip()
    try:
        return float(raw), None
    except ValueError:
        pass
    prefixes = {"~": "approximate", ">": "lower bound", "<": "upper bound"}
    qualifier = prefixes.get(raw[0])
    body = raw[1:].strip() if qualifier else raw
    match = re.fullmatch(rf"({_NUMBER})(\s*\(.*\))?", body)
    if match and "/" not in body:
        detail = "with detail" if match.group(2) else None
        return float(match.group(1)), ", ".join(q for q in (qualifier, detail) if q) or None
    return None, "not a single number"


def _event_for(label: str | None, events: list[Any]) -> tuple[str | None, str]:
    """Map an ``event`` label of reference_figures.csv to an event id of ``data/events.json``.

    A full date maps to the event whose window, widened by one day on each side, holds it; a
    month (``2022-11``) maps to the only event starting in that month.

    Returns
    -------
    tuple
        ``(event_id or None, how)`` with ``how`` one of ``"date"``, ``"month"``, ``"none"``.
    """
    match = _DATE.match(label.strip()) if label else None
    if not match:
        return None, "none"
    year, month, day = match.group(1), match.group(2), match.group(3)
    if day is None:
        hits = [e for e in events if e.start_ts.strftime("%Y-%m") == f"{year}-{month}"]
        return (hits[0].event_id, "month") if len(hits) == 1 else (None, "none")
    when = datetime(int(year), int(month), int(day), tzinfo=UTC)
    one_day = timedelta(days=1)
    hits = [e for e in events if e.start_ts - one_day <= when < e.end_ts + one_day]
    return (hits[0].event_id, "date") if len(hits) == 1 else (None, "none")


@register_adapter("reference_figures")
def adapt_reference_figures(path: Path, entry: SourceEntry) -> AdapterOutput:
    """``reference_figures.csv`` → ``reference_figures`` with ``event_id`` where one fits.

    Values that are not a single number (``"86 lots / 4.3e6"``) load with ``value`` NULL; any
    value that is approximate, a bound, or carried detail keeps its published text in ``note``.
    """
    from pipelines.catalog.registry import load_events

    out = AdapterOutput()
    frame = pl.read_csv(path, infer_schema_length=0)
    require_columns(frame, ["event", "metric", "value"], file=entry.name)
    events = list(load_events())
    values, notes, event_ids, hows = [], [], [], []
    counts = {"not a single number": 0, "qualified": 0}
    for row in frame.iter_rows(named=True):
        number, qualifier = _parse_figure(row["value"])
        note = row.get("note")
        if qualifier is not None:
            counts["not a single number" if number is None else "qualified"] += 1
            published = f"value as published: {row['value']!r} ({qualifier})"
            note = f"{published}; {note}" if note else published
        values.append(number)
        notes.append(note)
        event_id, how = _event_for(row["event"], events)
        event_ids.append(event_id)
        hows.append(how)

    def text(column: str) -> pl.Series:
        if column in frame.columns:
            return frame[column]
        return pl.Series([None] * frame.height, dtype=pl.String)

    table = pl.DataFrame(
        {
            "event": frame["event"],
            "protocol_or_venue": text("protocol_or_venue"),
            "metric": frame["metric"],
            "value": pl.Series(values, dtype=pl.Float64),
            "unit": text("unit"),
            "source_ref": text("source"),
            "url": text("url"),
            "note": pl.Series(notes, dtype=pl.String),
            "event_id": pl.Series(event_ids, dtype=pl.String),
        }
    )
    out.add("reference_figures", table)
    out.rule(
        "value_not_single_number",
        counts["not a single number"],
        "published value lists several numbers or a ratio; value NULL, text kept in note",
    )
    out.rule(
        "value_qualified",
        counts["qualified"],
        "published value is approximate, a bound or carries detail; number kept, text in note",
    )
    out.rule(
        "event_id_by_month",
        hows.count("month"),
        "month-level label (e.g. '2022-11 FTX collapse') mapped to that month's only event",
    )
    out.rule(
        "event_id_unmapped",
        hows.count("none"),
        "event label falls in no crash window of data/events.json (±1 day); event_id NULL",
    )
    return out


# Generic documents -----------------------------------------------------------------------------


@register_adapter("json_document")
def adapt_json_document(path: Path, entry: SourceEntry) -> AdapterOutput:
    """A JSON file (an analysis output) → ``source_documents``, the whole file as one record."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataValidationError(
            entry.name, None, exc.lineno, f"invalid JSON: {exc.msg}", row_kind="file line"
        ) from exc
    out = AdapterOutput()
    out.add("source_documents", documents_frame([data], default_kind(path, entry)))
    return out


@register_adapter("csv_documents")
def adapt_csv_documents(path: Path, entry: SourceEntry) -> AdapterOutput:
    """A CSV file → ``source_documents``, one JSON record per row (values typed by inference)."""
    frame = strip_bom(pl.read_csv(path, infer_schema_length=None))
    records = frame.to_dicts()
    out = AdapterOutput()
    out.add("source_documents", documents_frame(records, default_kind(path, entry)))
    return out


def check_ohlc(frame: pl.DataFrame, *, file: str) -> None:
    """Raise on the first bar whose prices are missing, non-positive or with ``high < low``."""
    for column in ("open", "high", "low", "close"):
        bad = frame[column].is_null() | (frame[column] <= 0)
        if bad.any():
            row = int(bad.arg_true()[0]) + 1
            raise DataValidationError(
                file, column, row, f"price {frame[column][row - 1]} must be a positive number"
            )
    bad = frame["high"] < frame["low"]
    if bad.any():
        row = int(bad.arg_true()[0]) + 1
        raise DataValidationError(file, "high", row, "high is below low; swap or fix the bar")
