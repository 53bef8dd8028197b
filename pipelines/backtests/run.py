"""Backtest runs without Prefect: build a run config, execute it, write its results.

These are the building blocks of ``cascade backtest`` (a single run calls them directly, so it
never starts Prefect), of the Prefect flow ``backtest`` (:mod:`pipelines.backtests.flow`) and of
any other sweep driver (e.g. Dask): :func:`build_run_config` reads the warehouse,
:func:`execute_run` is pure (picklable config in, :class:`backtest.Result` out) and
:func:`write_result` writes one run in one transaction.

The run id is :func:`pipelines.catalog.hashing.config_hash` of the full config: event, asset,
the book's
fingerprint (sha256 of its numeric columns), the path's fingerprint (sha256 of times and
prices), the impact model's parameters, the policy's parameters (a dynamic-LTV threshold path
enters as its length and sha256) and the margin run it came from.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl

from backtest import Book, ImpactModel, Policy, PricePath, Result, simulate
from pipelines.backtests.books import (
    LoadedBook,
    aave_steth_book,
    maker_book,
    maker_params,
    read_book_file,
    resolve_book_name,
    synthetic_event_book,
    synthetic_shape,
)
from pipelines.backtests.calibration import (
    MarketCalibration,
    calibrate_market,
    event_path,
    make_impact,
    read_prices_file,
)
from pipelines.backtests.margin import MarginPath, margin_threshold_path
from pipelines.backtests.policy import DYNAMIC_POLICIES, build_policy, check_policy_name
from pipelines.catalog.hashing import config_hash
from pipelines.catalog.registry import CrashEvent, get_event
from pipelines.errors import CascadeError
from pipelines.warehouse.connection import insert_frame, transaction

__all__ = [
    "CONFIG_VERSION",
    "RunConfig",
    "RunOutput",
    "build_run_config",
    "default_book",
    "execute_run",
    "existing_run_ids",
    "pending_runs",
    "metrics_row",
    "plan_sweep",
    "read_metrics",
    "run_output",
    "summarize",
    "write_result",
]

#: Bumped when the meaning of a config changes (invalidates every cached run id).
CONFIG_VERSION = 1
_NO_MODEL = "-"


@dataclass(frozen=True, kw_only=True, eq=False)
class RunConfig:
    """Everything one backtest run needs, plus its JSON description.

    Attributes
    ----------
    event_id : str or None
        Crash event (``None`` for a user's path without ``--event``).
    asset, book_name, policy_name, forecast_model, impact_name : str
        Labels written to ``backtest_runs`` (``forecast_model`` is ``'-'`` for policies that
        do not use one).
    book : backtest.Book
    path : backtest.PricePath
    impact : backtest.ImpactModel
    policy : backtest.Policy
    spec : dict
        The full JSON-ready config; ``run_id = config_hash(spec)`` (treat as read-only).
    default_params : bool
        True when the policy runs with the pipeline's defaults (no user overrides).
    notes : tuple of str
        Assumptions and dropped rows, for display.
    """

    event_id: str | None
    asset: str
    book_name: str
    policy_name: str
    forecast_model: str
    impact_name: str
    book: Book
    path: PricePath
    impact: ImpactModel
    policy: Policy
    spec: dict[str, Any]
    default_params: bool = True
    notes: tuple[str, ...] = field(default=())

    @property
    def run_id(self) -> str:
        """Hash of the full config."""
        return config_hash(dict(self.spec))

    @property
    def scenario_id(self) -> str:
        """Hash of the event, book, path and impact parts (shared by every policy)."""
        keys = ("version", "event_id", "asset", "book", "path", "impact")
        return config_hash({k: self.spec[k] for k in keys})

    @property
    def label(self) -> str:
        """Short human label (task names, logs)."""
        model = "" if self.forecast_model == _NO_MODEL else f"[{self.forecast_model}]"
        return (
            f"{self.event_id or 'file'} {self.policy_name}{model} {self.book_name} "
            f"{self.impact_name}"
        )


def _plain(value: Any) -> Any:
    """JSON-ready copy: datetimes as ISO text, numpy as Python, non-finite floats as text."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _utc(ts: np.datetime64) -> datetime:
    return ts.astype("datetime64[us]").astype(object).replace(tzinfo=UTC)


def default_book(con: duckdb.DuckDBPyConnection, event: CrashEvent) -> str:
    """``maker-ethb`` when the ETH-B vault history covers the event start, else ``synthetic``."""
    rows = con.execute(
        "SELECT min(ts), max(ts) FROM vault_events WHERE protocol = 'maker' AND ilk = 'ETH-B'"
    ).fetchall()
    first, last = rows[0]
    if first is not None and first < event.start_ts <= last:
        return "maker-ethb"
    return "synthetic"


def _cached(cache: dict[Any, Any], key: tuple[Any, ...], build: Any) -> Any:
    if key not in cache:
        cache[key] = build()
    return cache[key]


def _load_book(
    con: duckdb.DuckDBPyConnection,
    name: str,
    *,
    at: datetime,
    price: float,
    asset: str,
    options: Mapping[str, Any],
    cache: dict[Any, Any],
) -> LoadedBook:
    resolve_book_name(name)
    if name == "maker-ethb":
        return maker_book(con, at, price=price)
    if name == "aave-steth":
        return aave_steth_book(con, price=price, total_debt_usd=options.get("total_debt_usd"))
    if name == "synthetic":
        shape = _cached(cache, ("shape",), lambda: synthetic_shape(con))
        kwargs = {k: options[k] for k in ("n", "total_debt_usd", "seed") if k in options}
        return synthetic_event_book(shape, price=price, asset=asset, **kwargs)
    return read_book_file(name)


def _calibration_spec(cal: MarketCalibration | None) -> dict[str, Any] | None:
    if cal is None:
        return None
    return {
        "adv_usd": cal.adv_usd,
        "sigma_day": cal.sigma_day,
        "depth_1pct_usd": cal.depth_1pct_usd,
        "depth_rule": cal.depth_rule,
        "source": cal.source,
    }


def build_run_config(
    con: duckdb.DuckDBPyConnection,
    *,
    event: str | None = None,
    policy: str = "instant",
    forecast_model: str | None = None,
    book: str | None = None,
    impact: str = "sqrt",
    prices: str | Path | None = None,
    asset: str | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    cache: dict[Any, Any] | None = None,
) -> RunConfig:
    """Assemble one run from the warehouse (books, path, calibration, margin path).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Warehouse connection (read-only is enough).
    event : str, optional
        Event id or window label (``W4``); needed unless ``prices`` is given.
    policy : str
        Policy name.
    forecast_model : str, optional
        Forecast model whose margin path drives ``dynamic_ltv`` policies (ignored, recorded
        as ``'-'``, for the others).
    book : str, optional
        ``maker-ethb``, ``aave-steth``, ``synthetic`` or a file; default :func:`default_book`
        for an event, ``synthetic`` for a user's path.
    impact : str
        ``sqrt`` (default), ``linear``, ``cpmm`` or ``none``.
    prices : path, optional
        ``ts, price`` file replacing the event's path.
    asset : str, optional
        Asset of a synthetic book and of the event path (default ``ETH``; a file book's own
        asset wins).
    overrides : mapping, optional
        ``{"policy": {...}, "impact": {"depth_usd", "half_life_steps", "adv_usd",
        "sigma_day", "y"}, "book": {"total_debt_usd", "n", "seed"}}``.
    cache : dict, optional
        Shared between calls of one sweep (books, paths and calibrations are built once).

    Returns
    -------
    RunConfig

    Raises
    ------
    CascadeError
        Unknown names, missing data (with the command that provides it), or bad parameters.
    """
    cache = {} if cache is None else cache
    overrides = overrides or {}
    policy_params = dict(overrides.get("policy") or {})
    impact_opts = dict(overrides.get("impact") or {})
    book_opts = dict(overrides.get("book") or {})
    check_policy_name(policy)
    ev = get_event(event) if event is not None else None
    if ev is None and prices is None:
        from pipelines.catalog.registry import load_events

        known = ", ".join(e.event_id for e in load_events())
        raise CascadeError(f"give an event (known: {known}) or a prices file (--prices FILE)")

    # book file first: it fixes the asset
    book_name = book or (
        _cached(cache, ("default_book", ev.event_id), lambda: default_book(con, ev))
        if ev
        else "synthetic"
    )
    resolve_book_name(book_name)
    file_book = None
    if book_name not in ("maker-ethb", "aave-steth", "synthetic"):
        file_book = _cached(cache, ("file", book_name), lambda: read_book_file(book_name))
    if file_book is not None:
        asset = file_book.asset
    asset = (asset or "ETH").upper()
    if book_name in ("maker-ethb", "aave-steth") and asset != "ETH":
        raise CascadeError(f"book {book_name!r} holds ETH collateral; asset {asset!r} given")

    # path
    if prices is not None:
        path, path_spec = _cached(cache, ("prices", str(prices)), lambda: read_prices_file(prices))
        p0 = float(path.price[0])
        first_ts = _utc(path.ts[0]) - timedelta(seconds=path.step_seconds)
    else:
        assert ev is not None
        path, p0, path_spec = _cached(
            cache, ("path", ev.event_id, asset), lambda: event_path(con, ev, asset)
        )
        first_ts = ev.start_ts
    book_at = ev.start_ts if ev is not None else first_ts

    # book
    opts_key = tuple(sorted(book_opts.items()))
    loaded = file_book or _cached(
        cache,
        ("book", book_name, book_at, p0, asset, opts_key),
        lambda: _load_book(
            con, book_name, at=book_at, price=p0, asset=asset, options=book_opts, cache=cache
        ),
    )

    # impact
    cal = None
    depth = impact_opts.get("depth_usd")
    if impact == "sqrt" or (impact in ("linear", "cpmm") and depth is None):
        end = ev.end_ts if ev is not None else _utc(path.ts[-1])
        cal_key = ("cal", asset, book_at, impact_opts.get("adv_usd"), impact_opts.get("sigma_day"))
        cal = _cached(
            cache,
            cal_key,
            lambda: calibrate_market(
                con,
                asset,
                book_at,
                end=end,
                adv_usd=impact_opts.get("adv_usd"),
                sigma_day=impact_opts.get("sigma_day"),
            ),
        )
    impact_model = make_impact(
        impact,
        cal,
        step_seconds=path.step_seconds,
        half_life_steps=impact_opts.get("half_life_steps"),
        depth_usd=depth,
        y=impact_opts.get("y", 1.0),
    )

    # policy
    margin: MarginPath | None = None
    model = _NO_MODEL
    if policy in DYNAMIC_POLICIES:
        if not forecast_model:
            raise CascadeError(
                f"policy {policy!r} needs a forecast model (--forecast-model M); "
                '`cascade sql "SELECT DISTINCT model, asset FROM margin_paths"` lists them'
            )
        model = forecast_model
        margin = _cached(
            cache,
            ("margin", model, asset, str(path.ts[0]), str(path.ts[-1]), len(path)),
            lambda: margin_threshold_path(
                con, model=model, asset=asset, step_ts=path.ts, event_id=ev.event_id if ev else None
            ),
        )
    auction_defaults = None
    if book_name == "maker-ethb" and "dutch_auction" in policy:
        auction_defaults = _cached(
            cache, ("maker", book_at), lambda: maker_params(con, book_at)
        ).auction_kwargs()
    policy_obj = build_policy(
        policy,
        policy_params,
        step_seconds=path.step_seconds,
        total_debt=loaded.book.total_debt,
        max_threshold=float(loaded.book.liquidation_threshold.max()) if len(loaded.book) else 1.0,
        auction_defaults=auction_defaults,
        margin=margin,
    )
    spec = {
        "version": CONFIG_VERSION,
        "event_id": ev.event_id if ev else None,
        "asset": asset,
        "book": dict(loaded.spec),
        "path": path_spec,
        "impact": impact_model.params(),
        "calibration": _calibration_spec(cal),
        "policy": policy_obj.params(),
        "forecast_model": model,
        "margin_run_id": margin.run_id if margin else None,
    }
    spec = _plain(spec)
    return RunConfig(
        event_id=ev.event_id if ev else None,
        asset=asset,
        book_name=loaded.name,
        policy_name=policy,
        forecast_model=model,
        impact_name=impact,
        book=loaded.book,
        path=path,
        impact=impact_model,
        policy=policy_obj,
        spec=spec,
        default_params=not policy_params,
        notes=loaded.notes,
    )


def execute_run(config: RunConfig) -> Result:
    """Simulate one run (pure: no database, no Prefect).

    Parameters
    ----------
    config : RunConfig
        A config from :func:`build_run_config`.

    Returns
    -------
    backtest.Result
        With the step log recorded.
    """
    return simulate(config.book, config.path, config.impact, config.policy, record_steps=True)


def metrics_row(result: Result) -> dict[str, Any]:
    """The ``backtest_metrics`` columns of a result (without ``run_id``)."""
    row: dict[str, Any] = dict(result.metrics.as_dict())
    cf = result.counterfactual
    row.update(
        cf_n_liquidations=cf.n_liquidations,
        cf_liquidated_usd=cf.liquidated_usd,
        cf_bad_debt_usd=cf.bad_debt_usd,
        cf_sold_usd=cf.sold_usd,
        cf_final_price=cf.final_price,
    )
    return row


@dataclass(frozen=True, kw_only=True, eq=False)
class RunOutput:
    """What :func:`write_result` stores of a run; picklable (unlike :class:`backtest.Result`).

    Attributes
    ----------
    metrics : dict
        :func:`metrics_row` of the result.
    steps : polars.DataFrame
        The step log with the counterfactual's ``cf_n_liquidations``, ``cf_liquidated_usd``.
    n_positions, n_steps : int
        Sizes of the inputs.
    sim_seconds : float or None
        Wall time of the simulation.
    """

    metrics: dict[str, Any]
    steps: pl.DataFrame
    n_positions: int
    n_steps: int
    sim_seconds: float | None = None


def summarize(result: Result, *, sim_seconds: float | None = None) -> RunOutput:
    """The storable, picklable part of a result (its metrics and step log)."""
    steps = result.steps
    cf = result.counterfactual_steps
    assert steps is not None and cf is not None
    frame = steps.with_columns(
        pl.col("ts").dt.replace_time_zone("UTC"),
        cf["n_liquidations"].alias("cf_n_liquidations"),
        cf["liquidated_usd"].alias("cf_liquidated_usd"),
    )
    return RunOutput(
        metrics=metrics_row(result),
        steps=frame,
        n_positions=result.n_positions,
        n_steps=result.n_steps,
        sim_seconds=sim_seconds,
    )


def run_output(config: RunConfig) -> RunOutput:
    """:func:`execute_run` then :func:`summarize`, timed (what a sweep task returns).

    Parameters
    ----------
    config : RunConfig
        A config from :func:`build_run_config`.

    Returns
    -------
    RunOutput
    """
    start = time.perf_counter()
    result = execute_run(config)
    return summarize(result, sim_seconds=time.perf_counter() - start)


def write_result(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    config: RunConfig,
    result: Result | RunOutput,
    *,
    sim_seconds: float | None = None,
) -> None:
    """Write one run (``backtest_runs``, ``backtest_metrics``, ``backtest_steps``) atomically.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Writable warehouse connection.
    run_id : str
        ``config.run_id``.
    config : RunConfig
        The run's config.
    result : backtest.Result or RunOutput
        What :func:`execute_run` (or :func:`run_output`) returned.
    sim_seconds : float, optional
        Simulation wall time (default: the one in a :class:`RunOutput`).

    Notes
    -----
    An existing run with the same id is replaced in the same transaction.
    """
    out = result if isinstance(result, RunOutput) else summarize(result, sim_seconds=sim_seconds)
    metrics = out.metrics
    run_row = {
        "run_id": run_id,
        "scenario_id": config.scenario_id,
        "event_id": config.event_id,
        "policy": config.policy_name,
        "forecast_model": config.forecast_model,
        "book": config.book_name,
        "impact": config.impact_name,
        "asset": config.asset,
        "n_positions": out.n_positions,
        "n_steps": out.n_steps,
        "step_seconds": config.path.step_seconds,
        "start_ts": _utc(config.path.ts[0]),
        "end_ts": _utc(config.path.ts[-1]),
        "default_params": config.default_params,
        "config": json.dumps(_plain(config.spec), sort_keys=True),
        "sim_seconds": sim_seconds if sim_seconds is not None else out.sim_seconds,
        "created_at": datetime.now(UTC),
    }
    with transaction(con):
        for table in ("backtest_steps", "backtest_metrics", "backtest_runs"):
            con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
        cols = ", ".join(run_row)
        marks = ", ".join("?" for _ in run_row)
        con.execute(f"INSERT INTO backtest_runs ({cols}) VALUES ({marks})", list(run_row.values()))
        cols = ", ".join(["run_id", *metrics])
        marks = ", ".join("?" for _ in range(len(metrics) + 1))
        con.execute(
            f"INSERT INTO backtest_metrics ({cols}) VALUES ({marks})",
            [run_id, *metrics.values()],
        )
        insert_frame(con, "backtest_steps", out.steps.with_columns(pl.lit(run_id).alias("run_id")))


def existing_run_ids(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> set[str]:
    """The subset of ``run_ids`` already in ``backtest_runs``."""
    if not run_ids:
        return set()
    rows = con.execute(
        "SELECT run_id FROM backtest_runs WHERE list_contains(?, run_id)", [run_ids]
    ).fetchall()
    return {r[0] for r in rows}


def pending_runs(con: duckdb.DuckDBPyConnection, configs: list[Any]) -> list[Any]:
    """The run configs of ``configs`` whose run id is not yet in ``backtest_runs``, in order."""
    done = existing_run_ids(con, [c.run_id for c in configs])
    return [c for c in configs if c.run_id not in done]


def read_metrics(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any]:
    """Stored metrics of a run, with its labels (from ``policy_scoreboard``).

    Non-finite floats (an amplification with no counterfactual liquidation) become ``None``.
    """
    frame = con.sql("SELECT * FROM policy_scoreboard WHERE run_id = ?", params=[run_id]).pl()
    if frame.height == 0:
        raise CascadeError(f"run {run_id!r} is not in backtest_runs")
    row = frame.row(0, named=True)
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()
    }


def plan_sweep(
    con: duckdb.DuckDBPyConnection,
    *,
    events: list[str] | None = None,
    policies: list[str] | None = None,
    forecast_models: list[str] | None = None,
    books: list[str] | None = None,
    impacts: list[str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    cache: dict[Any, Any] | None = None,
) -> list[RunConfig]:
    """Every run of a sweep: events × books × impacts × policies (× forecast models).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Warehouse connection.
    events : list of str, optional
        Default: all 7 crash events.
    policies : list of str, optional
        Default: all 8 policy names.
    forecast_models : list of str, optional
        Models for the dynamic-LTV policies (the others run once, model ``'-'``); a model given
        here must have a margin path over every event. Default: every model with a margin path
        for the book's asset, each on the events its paths cover (an event none covers is an
        error).
    books : list of str, optional
        Default: :func:`default_book` of each event.
    impacts : list of str, optional
        Default: ``["sqrt"]`` (calibrated).
    overrides : mapping, optional
        As for :func:`build_run_config`; each policy receives only the policy parameters it
        accepts (a parameter no swept policy accepts is an error).
    cache : dict, optional
        Shared build cache.

    Returns
    -------
    list of RunConfig
        In sweep order, without duplicates.

    Raises
    ------
    CascadeError
        Unknown names, missing data, or dynamic policies with no margin path at all.
    """
    from pipelines.backtests.margin import MissingMarginPathError, available_models
    from pipelines.backtests.policy import POLICY_NAMES, policy_param_names
    from pipelines.catalog.registry import load_events

    cache = {} if cache is None else cache
    event_ids = events or [e.event_id for e in load_events()]
    policy_names = [check_policy_name(p) for p in (policies or list(POLICY_NAMES))]
    overrides = dict(overrides or {})
    user_params = dict(overrides.get("policy") or {})
    accepted = set().union(*(policy_param_names(p) for p in policy_names))
    if set(user_params) - accepted:
        flags = ", ".join(sorted(set(user_params) - accepted))
        raise CascadeError(f"{flags}: no policy of the sweep takes these parameters")
    configs: dict[str, RunConfig] = {}
    for event_id in event_ids:
        ev = get_event(event_id)
        for book_name in books or [default_book(con, ev)]:
            for impact_name in impacts or ["sqrt"]:
                for policy_name in policy_names:
                    models: list[str | None] = [None]
                    if policy_name in DYNAMIC_POLICIES:
                        asset = "ETH"
                        if book_name not in ("maker-ethb", "aave-steth", "synthetic"):
                            asset = read_book_file(book_name).asset
                        models = list(forecast_models or available_models(con, asset))
                        if not models:
                            raise MissingMarginPathError(
                                f"no margin path for any forecast model, asset {asset}; run "
                                f"`cascade forecast --assets {asset}` first, or sweep without "
                                "the dynamic_ltv policies"
                            )
                    names = policy_param_names(policy_name)
                    mine = {k: v for k, v in user_params.items() if k in names}
                    run_overrides = {**overrides, "policy": mine}
                    built, missing = [], []
                    for model in models:
                        try:
                            cfg = build_run_config(
                                con,
                                event=ev.event_id,
                                policy=policy_name,
                                forecast_model=model,
                                book=book_name,
                                impact=impact_name,
                                overrides=run_overrides,
                                cache=cache,
                            )
                        except MissingMarginPathError as exc:
                            if forecast_models:  # asked for explicitly: strict
                                raise
                            missing.append(exc)
                            continue
                        built.append(cfg)
                    if missing and not built:
                        raise missing[0]
                    for cfg in built:
                        configs.setdefault(cfg.run_id, cfg)
    return list(configs.values())
