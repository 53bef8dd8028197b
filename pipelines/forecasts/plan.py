"""What a forecast run does: validated names, forecast windows, the run config and its id.

A *window* is one independent walk-forward run per asset and model. For a crash event it loads
``history_days`` of hourly bars before the crash start, forecasts at every origin after the first
``min_train`` hours (the tail of the lead-in, then the crash itself) and scores the crash window
on its own (scope ``crash``) and the whole window (scope ``window``). A ``--start/--end`` run is a
single window ``range`` that forecasts exactly ``[start, end)`` after ``history_days`` of history.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

import forecasting as fcst
from pipelines.catalog.hashing import code_digest, config_hash
from pipelines.catalog.registry import load_events
from pipelines.errors import CascadeError, UnknownNameError

__all__ = [
    "MARGIN_PRESETS",
    "FocusSpan",
    "ForecastWindow",
    "ForecastConfig",
    "forecast_windows",
    "resolve_assets",
    "resolve_models",
    "resolve_horizons",
    "build_config",
    "code_version",
    "data_version",
]

#: ``--margin-preset`` name → margin policy of :mod:`forecasting.margin`.
MARGIN_PRESETS: dict[str, fcst.MarginPolicy] = {
    "aave-v3-weth": fcst.AAVE_V3_WETH,
    "maker-eth-b": fcst.MAKER_ETH_B,
}

RANGE_ID = "range"
_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, kw_only=True)
class FocusSpan:
    """A crash window scored on its own (scope ``crash``): ``[start, end)`` in UTC."""

    event_id: str
    start: datetime
    end: datetime


@dataclass(frozen=True, kw_only=True)
class ForecastWindow:
    """One forecast window (see the module docstring).

    Attributes
    ----------
    window_id : str
        Crash event id, or ``"range"``; stored as ``event_id`` in the result tables.
    name : str
        Human-readable name.
    load_start : datetime
        First bar loaded (``history_days`` before the crash or range start).
    forecast_start : datetime or None
        First origin; ``None`` = the first origin after ``min_train`` hours of bars.
    forecast_end : datetime or None
        Origins are ``< forecast_end``; ``None`` = up to the last bar in the warehouse.
    focus : tuple of FocusSpan
        Crash windows inside this window, scored on their own.
    """

    window_id: str
    name: str
    load_start: datetime
    forecast_start: datetime | None
    forecast_end: datetime | None
    focus: tuple[FocusSpan, ...]


#: Models whose parameters are refit on a longer schedule plus a drift test (``arch`` fits are
#: 98 % of their time; the state still updates every hour).
SCHEDULED_REFIT_MODELS = ("garch", "gjr", "egarch")
#: Longest time between two refits of those models, hours.
ARCH_REFIT_EVERY = 168

#: Tail quantile of the VaR scores by default (the best calm-period coverage on the lead-ins,
#: see docs/forecasting.md).
DEFAULT_VAR_METHOD = "evt"


@dataclass(frozen=True, kw_only=True)
class ForecastConfig:
    """The full, hashable configuration of a forecast run (its hash is the run id)."""

    assets: tuple[str, ...]
    models: tuple[str, ...]
    windows: tuple[ForecastWindow, ...]
    horizons: tuple[int, ...]
    refit_every: int
    arch_refit_every: int
    intraday_rv: bool
    history_days: int
    min_train: int
    margin_preset: str
    margin_policy: fcst.MarginPolicy
    var_method: str
    margin_z: str
    margin_first_passage: bool
    model_params: dict[str, dict[str, object]]
    code_version: str
    data_version: str

    @property
    def run_id(self) -> str:
        """``config_hash`` of the config: the primary key of every result row."""
        return config_hash(self)


def _utc(value: str | datetime) -> datetime:
    """Parse an ISO date/datetime (naive = UTC)."""
    if isinstance(value, datetime):
        out = value
    else:
        try:
            out = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError as exc:
            raise CascadeError(
                f"cannot read {value!r} as a date; use ISO format, e.g. 2024-08-01 or "
                "2024-08-01T12:00"
            ) from exc
    return out.replace(tzinfo=UTC) if out.tzinfo is None else out.astimezone(UTC)


def forecast_windows(
    events: Sequence[str] | None = None,
    start: str | datetime | None = None,
    end: str | datetime | None = None,
    *,
    history_days: int = 90,
    min_train: int = 720,
) -> tuple[ForecastWindow, ...]:
    """The forecast windows of a run.

    Parameters
    ----------
    events : sequence of str, optional
        Crash event ids (or window labels such as ``W4``); all catalog events when neither
        ``events`` nor ``start`` is given.
    start, end : str or datetime, optional
        Forecast the range ``[start, end)`` instead (``end`` omitted: up to the last bar).
    history_days : int
        Days of bars loaded before the crash (or range) start.
    min_train : int
        Hours of returns before the first origin (must fit into ``history_days``).

    Returns
    -------
    tuple of ForecastWindow
        In time order.

    Raises
    ------
    UnknownNameError
        For an unknown event; the message lists the known ones.
    CascadeError
        For inconsistent arguments, or when ``min_train`` does not fit into ``history_days``.
    """
    if history_days < 1 or min_train < 1:
        raise CascadeError("history_days and min_train must be positive")
    if history_days * 24 < min_train:
        need = -(-min_train // 24)
        raise CascadeError(
            f"history_days={history_days} gives {history_days * 24} hourly bars before the window, "
            f"fewer than min_train={min_train}: the first forecast would fall after the window "
            f"start. Use --history-days {need} or more (or a smaller min_train)."
        )
    history = timedelta(days=history_days)
    catalog = load_events()
    if start is not None or end is not None:
        if events:
            raise CascadeError("give either events or a --start/--end range, not both")
        if start is None:
            raise CascadeError("--end needs --start")
        lo = _utc(start)
        hi = _utc(end) if end is not None else None
        if hi is not None and hi <= lo:
            raise CascadeError(f"--end ({hi:%Y-%m-%d %H:%M}) must be after --start ({lo})")
        focus = tuple(
            FocusSpan(
                event_id=e.event_id, start=max(e.start_ts, lo), end=min(e.end_ts, hi or e.end_ts)
            )
            for e in catalog
            if e.end_ts > lo and (hi is None or e.start_ts < hi)
        )
        name = f"{lo:%Y-%m-%d %H:%M}..{hi:%Y-%m-%d %H:%M}" if hi else f"{lo:%Y-%m-%d %H:%M}.."
        return (
            ForecastWindow(
                window_id=RANGE_ID,
                name=name,
                load_start=lo - history,
                forecast_start=lo,
                forecast_end=hi,
                focus=focus,
            ),
        )
    wanted = _resolve_events(events) if events else [e.event_id for e in catalog]
    return tuple(
        ForecastWindow(
            window_id=e.event_id,
            name=f"{e.window} {e.name}",
            load_start=e.start_ts - history,
            forecast_start=None,
            forecast_end=e.end_ts,
            focus=(FocusSpan(event_id=e.event_id, start=e.start_ts, end=e.end_ts),),
        )
        for e in catalog
        if e.event_id in wanted
    )


def _resolve_events(events: Sequence[str]) -> list[str]:
    catalog = load_events()
    out = []
    for raw in events:
        match = [e.event_id for e in catalog if raw in (e.event_id, e.window)]
        if not match:
            known = ", ".join(f"{e.event_id} ({e.window})" for e in catalog)
            raise UnknownNameError(f"unknown event {raw!r}; known events: {known}")
        out.append(match[0])
    return out


def resolve_assets(con: duckdb.DuckDBPyConnection, assets: Sequence[str]) -> tuple[str, ...]:
    """Upper-case, de-duplicated, sorted asset symbols that exist in ``prices``.

    Raises
    ------
    UnknownNameError
        For an asset with no prices; the message lists the known assets.
    """
    known = [
        r[0] for r in con.execute("SELECT DISTINCT asset FROM raw_prices ORDER BY 1").fetchall()
    ]
    wanted = sorted({a.strip().upper() for a in assets if a.strip()})
    if not wanted:
        raise CascadeError("no asset given")
    missing = [a for a in wanted if a not in known]
    if missing:
        hint = ", ".join(known) if known else "none (run `cascade ingest` first)"
        raise UnknownNameError(
            f"unknown asset(s) {', '.join(missing)}: no prices in the warehouse. Known assets: "
            f"{hint}. Load your own bars with `cascade ingest-prices --file F --asset A`."
        )
    return tuple(wanted)


#: Models of a run without ``--models``: every registered model except ``hgbc`` and ``hgbch``
#: (opt-in: they did not beat GARCH on the whole windows, see docs/forecasting.md, and would slow
#: the default run).
DEFAULT_MODELS = ("ewma", "garch", "gjr", "egarch", "har", "hgb", "rf")


def resolve_models(models: Sequence[str] | None) -> tuple[str, ...]:
    """Registry names in :data:`forecasting.MODELS` order (:data:`DEFAULT_MODELS` by default).

    Raises
    ------
    UnknownNameError
        For a name that is not a registered model; the message lists them.
    """
    if not models:
        return tuple(m for m in fcst.MODELS if m in DEFAULT_MODELS)
    wanted = {m.strip().lower() for m in models if m.strip()}
    missing = sorted(wanted - set(fcst.MODELS))
    if missing:
        raise UnknownNameError(
            f"unknown model(s) {', '.join(missing)}; known models: {', '.join(fcst.MODELS)}"
        )
    return tuple(m for m in fcst.MODELS if m in wanted)


def resolve_horizons(horizons: Sequence[int | str] | None) -> tuple[int, ...]:
    """Sorted, de-duplicated horizons in hours (``"24h"``, ``"24"`` and ``24`` are accepted)."""
    if not horizons:
        return (1, 24)
    out = set()
    for raw in horizons:
        text = str(raw).strip().lower().removesuffix("h")
        if not text.isdigit() or not 1 <= int(text) <= 24 * 7:
            raise CascadeError(
                f"horizon {raw!r} is not a whole number of hours between 1 and 168; use e.g. "
                "--horizon 1h --horizon 24h"
            )
        out.add(int(text))
    return tuple(sorted(out))


#: The code that shapes a forecast run's rows: the library and this stage.
FORECAST_CODE = ("forecasting/**/*.py", "pipelines/forecasts/*.py")
#: Tables a forecast reads, per asset (bars and the stress features).
_FORECAST_INPUTS = ("prices", "funding", "open_interest", "cex_liquidations")


def code_version() -> str:
    """sha256 prefix of the forecasting library and of the forecast pipeline modules."""
    return code_digest(*FORECAST_CODE)


def data_version(con: duckdb.DuckDBPyConnection, assets: Sequence[str]) -> str:
    """sha256 prefix of the rows a forecast of ``assets`` reads, and of nothing else.

    Per asset and input table (``prices``, ``funding``, ``open_interest``,
    ``cex_liquidations``): the row count and an order-free sum of row hashes. Loading another
    asset (``cascade ingest-prices --asset ZZZ``) or any unrelated source leaves it unchanged,
    so the forecast run id — and every backtest run driven by it — stays the same.
    """
    parts = []
    for asset in sorted({a.upper() for a in assets}):
        for table in _FORECAST_INPUTS:
            row = con.execute(
                f"SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0)::VARCHAR "
                f"FROM (SELECT * FROM {table} WHERE asset = ?) t",
                [asset],
            ).fetchall()[0]
            parts.append(f"{asset}:{table}:{row[0]}:{row[1]}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def build_config(
    con: duckdb.DuckDBPyConnection,
    *,
    assets: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
    events: Sequence[str] | None = None,
    start: str | datetime | None = None,
    end: str | datetime | None = None,
    horizons: Sequence[int | str] | None = None,
    history_days: int = 90,
    refit_every: int = 24,
    min_train: int = 720,
    margin_preset: str = "aave-v3-weth",
    arch_refit_every: int = ARCH_REFIT_EVERY,
    intraday_rv: bool = True,
    var_method: str = DEFAULT_VAR_METHOD,
    margin_z: str = "normal",
    margin_first_passage: bool = False,
) -> ForecastConfig:
    """Validate every name and build the run config (its ``run_id`` is the hash).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Warehouse connection (read-only is enough).
    assets : sequence of str, optional
        Assets with prices in the warehouse (default BTC, ETH, SOL).
    models : sequence of str, optional
        Model names (default: all of :data:`forecasting.MODELS`).
    events, start, end, history_days, min_train
        See :func:`forecast_windows`.
    horizons : sequence of int or str, optional
        Horizons in hours (default 1 and 24).
    refit_every : int
        Re-estimate the parameters every ``refit_every`` hours.
    margin_preset : str
        A key of :data:`MARGIN_PRESETS`.
    arch_refit_every : int
        The ``arch`` models (:data:`SCHEDULED_REFIT_MODELS`) are re-estimated every
        ``arch_refit_every`` hours **or** earlier when the drift test fires (checked every
        ``refit_every`` hours, see :func:`forecasting.walk_forward`); ``arch_refit_every <=
        refit_every`` restores a refit every ``refit_every`` hours.
    intraday_rv : bool
        Realized variance (HAR features and the scoring target) from 5-minute/1-minute bars
        where a complete series exists (judged before the first origin); squared hourly
        returns otherwise or with ``False``.
    var_method : str
        Tail quantile of the VaR scores (:data:`forecasting.TAIL_METHODS`: ``normal``, ``t``,
        ``fhs``, ``evt``), estimated walk-forward on each model's own past residuals.
    margin_z : str
        Quantile of the margin paths: ``normal`` (the preset's fixed ``z`` = 2.326, the
        default, unchanged) or a tail method estimated like ``var_method`` at 99 %.
    margin_first_passage : bool
        Use the quantile of the *minimum* price within the liquidation horizon (reflection
        approximation: tail probability halved) instead of the price at its end.

    Returns
    -------
    ForecastConfig
    """
    if refit_every < 1:
        raise CascadeError(f"refit_every must be >= 1 hour, got {refit_every}")
    preset = margin_preset.strip().lower()
    if preset not in MARGIN_PRESETS:
        raise UnknownNameError(
            f"unknown margin preset {margin_preset!r}; known: {', '.join(MARGIN_PRESETS)}"
        )
    for what, value in (("var method", var_method), ("margin z", margin_z)):
        if value not in fcst.TAIL_METHODS:
            raise UnknownNameError(
                f"unknown {what} {value!r}; known: {', '.join(fcst.TAIL_METHODS)}"
            )
    model_names = resolve_models(models)
    hs = resolve_horizons(horizons)
    windows = forecast_windows(events, start, end, history_days=history_days, min_train=min_train)
    resolved_assets = resolve_assets(con, assets or ("BTC", "ETH", "SOL"))
    return ForecastConfig(
        assets=resolved_assets,
        models=model_names,
        windows=windows,
        horizons=hs,
        refit_every=int(refit_every),
        arch_refit_every=int(arch_refit_every),
        intraday_rv=bool(intraday_rv),
        history_days=int(history_days),
        min_train=int(min_train),
        margin_preset=preset,
        margin_policy=MARGIN_PRESETS[preset],
        var_method=var_method,
        margin_z=margin_z,
        margin_first_passage=bool(margin_first_passage),
        model_params={m: _params(m, hs) for m in model_names},
        code_version=code_version(),
        data_version=data_version(con, resolved_assets),
    )


def _params(model: str, horizons: tuple[int, ...]) -> dict[str, object]:
    est = fcst.make_model(model)
    if "horizons" in est.get_params():
        est.set_params(horizons=horizons)
    return {k: v for k, v in sorted(est.get_params().items())}
