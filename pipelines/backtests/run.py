"""Backtest runs without Prefect: build a run config, execute it, write its results.

These are the building blocks of ``cascade backtest`` (a single run calls them directly, so it
never starts Prefect), of the Prefect flow ``backtest`` (:mod:`pipelines.backtests.flow`) and of
any other sweep driver (e.g. Dask): :func:`build_run_config` reads the warehouse,
:func:`execute_run` is pure (picklable config in, :class:`backtest.Result` out) and
:func:`write_result` writes one run in one transaction.

The run id is the hash of the run's :class:`~pipelines.backtests.spec.RunSpec`: event, asset,
the book's fingerprint (sha256 of its numeric columns), the path's fingerprint (sha256 of times
and prices), the impact model's parameters, the policy's parameters (a dynamic-LTV threshold
path enters as its length and sha256), the margin run it came from and the hash of the code
that computes it (:data:`~pipelines.backtests.spec.BACKTEST_CODE`).
"""

from __future__ import annotations

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
from backtest.errors import StepTooCoarseError
from backtest.policies.schedule import schedule_impact_params
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
from pipelines.backtests.margin import MarginPath, threshold_path
from pipelines.backtests.policy import (
    DYNAMIC_POLICIES,
    build_policy,
    check_policy_name,
    policy_param_names,
)
from pipelines.backtests.spec import NO_MODEL, BookName, ImpactName, RunRequest, RunSpec
from pipelines.catalog.registry import CrashEvent, get_event
from pipelines.errors import CascadeError
from pipelines.warehouse import backtest_store as store

__all__ = [
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
    spec : RunSpec
        The run's identity; ``run_id = spec.run_id``.
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
    spec: RunSpec
    default_params: bool = True
    notes: tuple[str, ...] = field(default=())

    @property
    def run_id(self) -> str:
        """Hash of the run spec."""
        return self.spec.run_id

    @property
    def scenario_id(self) -> str:
        """Hash of the event, book, path and impact parts (shared by every policy)."""
        return self.spec.scenario_id

    @property
    def threshold_source(self) -> str:
        """``'-'``, ``model`` or the threshold control of a dynamic-LTV run."""
        return self.spec.threshold_source

    @property
    def label(self) -> str:
        """Short human label (task names, logs)."""
        model = "" if self.forecast_model == NO_MODEL else f"[{self.forecast_model}]"
        if self.threshold_source not in (NO_MODEL, "model"):
            model = f"[{self.forecast_model}~{self.threshold_source}]"
        return (
            f"{self.event_id or 'file'} {self.policy_name}{model} {self.book_name} "
            f"{self.impact_name}"
        )


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
    if name == "maker-ethb":  # a replay of the vault history (~2 s): once per window start
        return _cached(cache, ("maker-ethb", at, price), lambda: maker_book(con, at, price=price))
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


@dataclass(frozen=True)
class _Scenario:
    """The resolved event, asset, book name and price path of a request."""

    event: CrashEvent | None
    asset: str
    book_name: str
    file_book: LoadedBook | None
    path: PricePath
    path_spec: dict[str, Any]
    first_price: float
    book_at: datetime


def _resolve_scenario(
    con: duckdb.DuckDBPyConnection, request: RunRequest, cache: dict[Any, Any]
) -> _Scenario:
    """Event, book name (a file book fixes the asset), asset and price path."""
    ev = get_event(request.event) if request.event is not None else None
    if ev is None and request.prices is None:
        from pipelines.catalog.registry import load_events

        known = ", ".join(e.event_id for e in load_events())
        raise CascadeError(f"give an event (known: {known}) or a prices file (--prices FILE)")
    book_name = request.book or (
        _cached(cache, ("default_book", ev.event_id), lambda: default_book(con, ev))
        if ev
        else BookName.SYNTHETIC.value
    )
    resolve_book_name(book_name)
    file_book = None
    if book_name not in tuple(BookName):
        file_book = _cached(cache, ("file", book_name), lambda: read_book_file(book_name))
    asset = (file_book.asset if file_book is not None else request.asset or "ETH").upper()
    if book_name in (BookName.MAKER_ETHB, BookName.AAVE_STETH) and asset != "ETH":
        raise CascadeError(f"book {book_name!r} holds ETH collateral; asset {asset!r} given")
    if request.prices is not None:
        prices = request.prices
        path, path_spec = _cached(cache, ("prices", str(prices)), lambda: read_prices_file(prices))
        p0 = float(path.price[0])
        book_at = _utc(path.ts[0]) - timedelta(seconds=path.step_seconds)
    else:
        assert ev is not None
        path, p0, path_spec = _cached(
            cache, ("path", ev.event_id, asset), lambda: event_path(con, ev, asset)
        )
        book_at = ev.start_ts
    return _Scenario(ev, asset, book_name, file_book, path, path_spec, p0, book_at)


def _resolve_book(
    con: duckdb.DuckDBPyConnection, sc: _Scenario, options: Mapping[str, Any], cache: dict
) -> LoadedBook:
    """The book at the scenario's start (built once per sweep)."""
    if sc.file_book is not None:
        return sc.file_book
    opts_key = tuple(sorted(options.items()))
    return _cached(
        cache,
        ("book", sc.book_name, sc.book_at, sc.first_price, sc.asset, opts_key),
        lambda: _load_book(
            con,
            sc.book_name,
            at=sc.book_at,
            price=sc.first_price,
            asset=sc.asset,
            options=options,
            cache=cache,
        ),
    )


def _resolve_impact(
    con: duckdb.DuckDBPyConnection,
    sc: _Scenario,
    impact: ImpactName,
    options: Mapping[str, Any],
    cache: dict[Any, Any],
) -> tuple[ImpactModel, MarketCalibration | None]:
    """The impact model, calibrated from pre-event market statistics where needed."""
    cal = None
    depth = options.get("depth_usd")
    if impact == ImpactName.SQRT or (
        impact in (ImpactName.LINEAR, ImpactName.CPMM) and depth is None
    ):
        end = sc.event.end_ts if sc.event is not None else _utc(sc.path.ts[-1])
        key = ("cal", sc.asset, sc.book_at, options.get("adv_usd"), options.get("sigma_day"))
        cal = _cached(
            cache,
            key,
            lambda: calibrate_market(
                con,
                sc.asset,
                sc.book_at,
                end=end,
                adv_usd=options.get("adv_usd"),
                sigma_day=options.get("sigma_day"),
            ),
        )
    model = make_impact(
        impact.value,
        cal,
        step_seconds=sc.path.step_seconds,
        half_life_steps=options.get("half_life_steps"),
        depth_usd=depth,
        y=options.get("y", 1.0),
    )
    return model, cal


def _resolve_margin(
    con: duckdb.DuckDBPyConnection, sc: _Scenario, request: RunRequest, cache: dict[Any, Any]
) -> MarginPath | None:
    """The threshold path of a dynamic-LTV policy (``None`` for the others)."""
    if request.policy not in DYNAMIC_POLICIES:
        return None
    model = request.forecast_model
    if not model:
        raise CascadeError(
            f"policy {request.policy!r} needs a forecast model (--forecast-model M); "
            '`cascade sql "SELECT DISTINCT model, asset FROM margin_paths"` lists them'
        )
    path = sc.path
    return _cached(
        cache,
        ("margin", model, sc.asset, sc.book_name, request.threshold, str(path.ts[0]), len(path)),
        lambda: threshold_path(
            con,
            model=model,
            asset=sc.asset,
            step_ts=path.ts,
            book_name=sc.book_name,
            source=request.threshold,
            event_id=sc.event.event_id if sc.event else None,
        ),
    )


#: The Aave-style mechanism every non-Maker book is liquidated by (close factor 0.5, full close
#: below health 0.95, the position's own bonus): the baseline and the base of the alternatives.
AAVE_STYLE = {"close_factor": 0.5, "full_close_below_hf": 0.95}


def mechanism_defaults(book_name: str, policy: str, book: Book) -> dict[str, Any]:
    """Like-for-like defaults: the book's real mechanism wherever a policy has the parameter.

    * Books other than ``maker-ethb`` are Aave-style: :data:`AAVE_STYLE` for every policy that
      liquidates through an ``instant`` part (``instant``, ``circuit_breaker``, ``dynamic_ltv``).
      (On ``maker-ethb`` the real mechanism is the LIQ 2.0 auction, passed as
      ``auction_defaults``.)
    * A dynamic-LTV deleveraging pays the same penalty as the book's liquidation (its bonus or
      Maker's ``chop``), so a forecast-driven policy cannot win by a cheaper penalty alone.

    User parameters override these.
    """
    accepted = policy_param_names(policy)
    out: dict[str, Any] = {}
    if book_name != BookName.MAKER_ETHB:
        out.update({k: v for k, v in AAVE_STYLE.items() if k in accepted})
    if "penalty" in accepted and len(book):
        out["penalty"] = float(np.median(book.bonus))
    return out


def _resolve_policy(
    con: duckdb.DuckDBPyConnection,
    sc: _Scenario,
    loaded: LoadedBook,
    request: RunRequest,
    margin: MarginPath | None,
    cache: dict[Any, Any],
    impact: ImpactModel | None = None,
) -> Policy:
    """The policy object with the book's real mechanism parameters where they exist.

    ``schedule`` takes its trajectory's cost model from the run's ``impact`` model.
    """
    auction_defaults = None
    if sc.book_name == BookName.MAKER_ETHB and "dutch_auction" in request.policy:
        auction_defaults = _cached(
            cache, ("maker", sc.book_at), lambda: maker_params(con, sc.book_at)
        ).auction_kwargs()
    book = loaded.book
    params = {
        **mechanism_defaults(sc.book_name, request.policy, book),
        **(schedule_impact_params(impact) if request.policy == "schedule" else {}),
        **dict(request.policy_params),
    }
    try:
        return build_policy(
            request.policy,
            params,
            step_seconds=sc.path.step_seconds,
            total_debt=book.total_debt,
            max_threshold=float(book.liquidation_threshold.max()) if len(book) else 1.0,
            auction_defaults=auction_defaults,
            margin=margin,
        )
    except StepTooCoarseError as exc:
        where = (
            f"the finest bars covering {sc.event.event_id} for {sc.asset} in the warehouse are "
            f"{sc.path.step_seconds:g} s"
            if sc.event is not None
            else f"the --prices file has {sc.path.step_seconds:g} s steps"
        )
        raise CascadeError(f"{exc}; {where}") from None


def resolve_run(
    con: duckdb.DuckDBPyConnection, request: RunRequest, cache: dict[Any, Any] | None = None
) -> RunConfig:
    """Resolve a :class:`RunRequest` against the warehouse into a runnable :class:`RunConfig`.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Warehouse connection (read-only is enough).
    request : RunRequest
        What to run.
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
    check_policy_name(request.policy)
    sc = _resolve_scenario(con, request, cache)
    loaded = _resolve_book(con, sc, request.book_options, cache)
    impact_model, cal = _resolve_impact(con, sc, request.impact, request.impact_options, cache)
    margin = _resolve_margin(con, sc, request, cache)
    policy_obj = _resolve_policy(con, sc, loaded, request, margin, cache, impact_model)
    model = request.forecast_model if margin is not None and request.forecast_model else NO_MODEL
    spec = RunSpec(
        event_id=sc.event.event_id if sc.event else None,
        asset=sc.asset,
        book=loaded.spec,
        path=sc.path_spec,
        impact=impact_model.params(),
        calibration=_calibration_spec(cal),
        policy=policy_obj.params(),
        forecast_model=model,
        margin_run_id=margin.run_id if margin else None,
        threshold_source=request.threshold if margin else NO_MODEL,
    )
    return RunConfig(
        event_id=spec.event_id,
        asset=sc.asset,
        book_name=loaded.name,
        policy_name=request.policy,
        forecast_model=model,
        impact_name=request.impact.value,
        book=loaded.book,
        path=sc.path,
        impact=impact_model,
        policy=policy_obj,
        spec=spec,
        default_params=not request.policy_params,
        notes=loaded.notes,
    )


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
    threshold: str = "model",
) -> RunConfig:
    """Keyword form of :func:`resolve_run` (``overrides``: ``{"policy", "impact", "book"}``).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Warehouse connection (read-only is enough).
    event, policy, forecast_model, book, impact, prices, asset, threshold
        Fields of :class:`RunRequest`.
    overrides : mapping, optional
        ``{"policy": {...}, "impact": {"depth_usd", "half_life_steps", "adv_usd",
        "sigma_day", "y"}, "book": {"total_debt_usd", "n", "seed"}}``.
    cache : dict, optional
        Shared build cache.

    Returns
    -------
    RunConfig
    """
    request = RunRequest.from_overrides(
        overrides,
        event=event,
        policy=policy,
        forecast_model=forecast_model,
        book=book,
        impact=impact,
        prices=prices,
        asset=asset,
        threshold=threshold,
    )
    return resolve_run(con, request, cache)


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
    """Write one run atomically (:func:`pipelines.warehouse.backtest_store.write_run`).

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
    An existing run with the same id is replaced in the same transaction. A run with the
    pipeline's default parameters becomes the current answer to its question (event, book,
    policy, forecast model, impact) on the scoreboard.
    """
    out = result if isinstance(result, RunOutput) else summarize(result, sim_seconds=sim_seconds)
    run_row = {
        "run_id": run_id,
        "scenario_id": config.scenario_id,
        "event_id": config.event_id,
        "policy": config.policy_name,
        "forecast_model": config.forecast_model,
        "threshold_source": config.threshold_source,
        "book": config.book_name,
        "impact": config.impact_name,
        "asset": config.asset,
        "n_positions": out.n_positions,
        "n_steps": out.n_steps,
        "step_seconds": config.path.step_seconds,
        "start_ts": _utc(config.path.ts[0]),
        "end_ts": _utc(config.path.ts[-1]),
        "default_params": config.default_params,
        "config": config.spec.to_json(),
        "sim_seconds": sim_seconds if sim_seconds is not None else out.sim_seconds,
        "created_at": datetime.now(UTC),
    }
    store.write_run(con, run_row, out.metrics, out.steps, current=config.default_params)


def pending_runs(con: duckdb.DuckDBPyConnection, configs: list[Any]) -> list[Any]:
    """The run configs of ``configs`` whose run id is not yet in ``backtest_runs``, in order.

    The stored ones with default parameters are (re)marked as the current answers to their
    questions when ``con`` is writable, so a sweep that recomputes nothing still decides what the
    scoreboard shows.
    """
    done = store.existing_run_ids(con, [c.run_id for c in configs])
    cached_defaults = [c.run_id for c in configs if c.run_id in done and c.default_params]
    if cached_defaults and not _read_only(con):
        store.mark_current(con, cached_defaults)
    return [c for c in configs if c.run_id not in done]


def _read_only(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(con.execute("SELECT current_setting('access_mode') = 'read_only'").fetchall()[0][0])


existing_run_ids = store.existing_run_ids
read_metrics = store.read_metrics


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
    controls: bool = True,
) -> list[RunConfig]:
    """Every run of a sweep: events × books × impacts × policies (× forecast models).

    Every forecast-driven run comes with its control runs (``controls=True``): the same book,
    path, impact and policy with the threshold path replaced by each of
    :data:`~pipelines.backtests.margin.CONTROL_SOURCES` (``forecast_value`` compares them).

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
    controls : bool
        Add the threshold-control runs of every dynamic-LTV run.

    Returns
    -------
    list of RunConfig
        In sweep order, without duplicates.

    Raises
    ------
    CascadeError
        Unknown names, missing data, or dynamic policies with no margin path at all.
    """
    from pipelines.backtests.margin import (
        CONTROL_SOURCES,
        MissingMarginPathError,
        available_models,
    )
    from pipelines.backtests.policy import SWEEP_POLICIES, policy_param_names
    from pipelines.catalog.registry import load_events

    cache = {} if cache is None else cache
    event_ids = events or [e.event_id for e in load_events()]
    policy_names = [check_policy_name(p) for p in (policies or list(SWEEP_POLICIES))]
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
                    sources = ("model", *CONTROL_SOURCES) if controls else ("model",)
                    for model in models:
                        for source in sources if model is not None else ("model",):
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
                                    threshold=source,
                                )
                            except MissingMarginPathError as exc:
                                if forecast_models and source == "model":  # asked for: strict
                                    raise
                                missing.append(exc)
                                if source == "model":
                                    break  # no model path: no controls either
                                continue
                            built.append(cfg)
                    if missing and not built:
                        raise missing[0]
                    for cfg in built:
                        configs.setdefault(cfg.run_id, cfg)
    return list(configs.values())
