"""Data assembly of the market-wide replay: warehouse frames → :mod:`backtest.market` → frames.

No Prefect here (the flow in :mod:`pipelines.attribution.flow` wraps :func:`compute_attribution`).
The method and every rule below are described in ``docs/market-replay.md``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta

import duckdb
import numpy as np
import polars as pl

from backtest.impact import SqrtImpact
from backtest.market.check import impact_slope, predicted_returns
from backtest.market.cohorts import CohortParams, MarketSeries, PriceGrid, run_cohorts
from backtest.market.crash_level import CrashLevelRule
from backtest.market.fit import (
    DEFAULT_CROWDING_BETAS,
    DEFAULT_CROWDING_DAYS,
    DEFAULT_GRID,
    DEFAULT_LEVEL_WINDOWS,
    CohortFit,
    CrowdingRule,
    Selection,
    fit_cohorts,
    funding_crowding,
    intraday_drop,
    oi_growth_crowding,
    select_pooled,
)
from backtest.market.greeks import book_greeks, default_shocks
from backtest.market.replay import (
    cascade_share,
    decascade,
    drawdown,
    replay,
    spread_totals,
)
from pipelines.attribution.policies import EventReplayInputs, policy_frames
from pipelines.attribution.policy_stress import STRESS_PATHS
from pipelines.catalog.hashing import code_digest, config_hash
from pipelines.errors import CascadeError
from pipelines.warehouse import attribution_store as store

__all__ = ["AttributionConfig", "AttributionRun", "build_config", "compute_attribution"]

DEFAULT_ASSETS = ("BTC", "ETH")
#: Days around an event excluded from the non-event fit (before start, after end).
EVENT_PAD_DAYS = 1
#: A replay is consistent when its drawdown is within this fraction of the observed one.
CONSISTENCY_TOL = 0.20
_HOUR = timedelta(hours=1)
#: Hours of lead-in before an event with hourly book Greeks.
GREEKS_LEAD_HOURS = 7 * 24


@dataclass(frozen=True, kw_only=True)
class AttributionConfig:
    """What a run computes; its hash (with the code version) is the run id."""

    assets: tuple[str, ...] = DEFAULT_ASSETS
    events: tuple[str, ...] = ()
    burn_in_days: int = 120
    impact_y: float = 1.0
    half_life_seconds: float = 1800.0
    adv_days: int = 30
    grid: dict[str, tuple[float, ...]] = field(default_factory=lambda: dict(DEFAULT_GRID))
    level_windows: tuple[int | None, ...] = DEFAULT_LEVEL_WINDOWS
    #: Bar of the fit run: 1 = hourly bars summed per day (the intraday rule), 24 = daily bars.
    fit_bar_hours: int = 1
    #: The fit's loss uses the non-event days whose low fell at least this far below the
    #: previous close (the crash-like days; 0 = every non-event day); the level rule still uses
    #: every non-event reported day.
    fit_min_drop: float = 0.05
    #: Trailing window (days) of the sign-aware funding crowding rule (``None``: no rule).
    crowding_days: int | None = DEFAULT_CROWDING_DAYS
    #: Candidate ``β`` of the crowding rule (per bp of 8-hour funding).
    crowding_betas: tuple[float, ...] = DEFAULT_CROWDING_BETAS
    #: Feature of the crowding rule: ``funding`` per side (sign-aware), ``funding_share`` (one
    #: multiplier of the share) or ``oi_growth`` (share; the forms compared in the docs).
    crowding_feature: str = "funding"
    #: Candidate ``k`` of the crash-day level (previous crash-like non-event days a crash-like
    #: day is calibrated on; ``(0,)``: no crash-day level; docs, section 1).
    crash_level_ks: tuple[int, ...] = (0,)
    #: Form of the crash-day level: ``excess`` (multiplies the trailing level) or ``level``.
    crash_level_mode: str = "excess"
    #: Pool the crowding response across the assets: ``""`` (each asset its own ``β``),
    #: ``"beta"`` (one ``β`` for all, per fit set) or ``"beta_candidate"`` (one ``β`` and one
    #: candidate); the level window and scale stay per asset (docs, section 1).
    pool_assets: str = ""
    #: Stress paths per (event, asset) of the market-policy intervals (0: none).
    stress_paths: int = STRESS_PATHS

    @property
    def run_id(self) -> str:
        """Hash of the config and of the code of the stage and the library."""
        code = code_digest("backtest/market/*.py", "pipelines/attribution/*.py")
        return config_hash({"config": asdict(self), "code": code})


@dataclass(frozen=True)
class AttributionRun:
    """Result frames of one run (keyed by table) and notes."""

    run_id: str
    config: AttributionConfig
    frames: dict[str, pl.DataFrame]
    notes: tuple[str, ...]


def build_config(
    con: duckdb.DuckDBPyConnection,
    *,
    events: list[str] | None = None,
    assets: list[str] | None = None,
    **kwargs: object,
) -> AttributionConfig:
    """Resolve event ids (``W1``..``W7`` or ids) and assets into a config."""
    ev = store.event_windows(con)
    by_label = dict(zip(ev["window_label"], ev["event_id"]))
    ids = list(ev["event_id"])
    chosen: list[str] = []
    for e in events or ids:
        eid = by_label.get(e, e)
        if eid not in ids:
            raise CascadeError(f"unknown event {e!r}; known: {', '.join(ids)} or W1..W7")
        chosen.append(eid)
    return AttributionConfig(
        assets=tuple(a.upper() for a in (assets or DEFAULT_ASSETS)),
        events=tuple(chosen),
        **kwargs,  # type: ignore[arg-type]
    )


def _np_ts(col: pl.Series) -> np.ndarray:
    return col.dt.replace_time_zone(None).to_numpy()


def _daily_series(daily: pl.DataFrame, asset: str) -> tuple[MarketSeries, pl.DataFrame]:
    d = daily.filter(pl.col("close").is_not_null())
    if d.height < 60:
        raise CascadeError(f"open_interest/prices: fewer than 60 days of daily data for {asset}")
    gaps = d["day"].diff().dt.total_days().fill_null(1)
    bad = d.filter(gaps != 1)
    if bad.height:
        raise CascadeError(
            f"open_interest: asset {asset} has a gap before {bad['day'][0]} in the daily "
            f"{store.VENUE_SET} series; nothing was written"
        )
    s = MarketSeries(
        asset=asset,
        ts=_np_ts(d["day"]),
        low=d["low"].to_numpy(),
        high=d["high"].to_numpy(),
        close=d["close"].to_numpy(),
        oi_usd=d["oi_usd"].to_numpy(),
        funding_8h=d["funding_8h"].fill_null(float("nan")).to_numpy(),
        step_days=1.0,
    )
    return s, d


def _event_mask(days: pl.Series, start: datetime, end: datetime, pad: int) -> np.ndarray:
    lo, hi = start - timedelta(days=pad), end + timedelta(days=pad)
    return ((days >= lo) & (days < hi)).to_numpy()


def _crowding(d: pl.DataFrame, config: AttributionConfig) -> CrowdingRule | None:
    """The funding crowding rule of the daily series ``d`` (``None`` when switched off)."""
    if config.crowding_days is None:
        return None
    k, betas = config.crowding_days, config.crowding_betas
    if config.crowding_feature == "oi_growth":
        return oi_growth_crowding(d["oi_usd"].to_numpy(), k, betas)
    if config.crowding_feature not in ("funding", "funding_share"):
        raise CascadeError(f"crowding_feature={config.crowding_feature!r}: unknown")
    f = d["funding_8h"].fill_null(float("nan")).to_numpy()
    return funding_crowding(f, k, betas, sign_aware=config.crowding_feature == "funding")


def _crash_level(moved: np.ndarray, config: AttributionConfig) -> CrashLevelRule | None:
    """The crash-day level rule on the crash-like days ``moved`` (``None`` when off)."""
    if tuple(config.crash_level_ks) in ((), (0,)):
        return None
    return CrashLevelRule(moved, tuple(config.crash_level_ks), mode=config.crash_level_mode)


def _param_row(sel: Selection, held_out: str | None, share: float, day: int) -> dict:
    p = sel.params
    m_long, m_short = sel.multipliers_at(day)
    return {
        "held_out_event": held_out,
        "levered_share": share,
        "lev_median": p.lev_median,
        "lev_spread": p.lev_spread,
        "funding_k": p.funding_k,
        "turnover_per_day": p.turnover_per_day,
        "turnover_lev_exp": p.turnover_lev_exp,
        "mmr": p.mmr,
        "fit_loss": sel.loss,
        "fit_days": sel.n_days,
        "level_window_days": sel.window_days,
        "share_scale": sel.scale,
        "crowding_beta": sel.crowding_beta,
        "crowding_long_mult": m_long,
        "crowding_short_mult": m_short,
        "reentry": p.reentry,
    }


@dataclass(frozen=True)
class EventBooks:
    """Cohort parameters per event (levered share in force at its start) and how they were fit.

    ``params[event_id]`` comes from the fit with that event left out when the event has reported
    liquidations, else from the base fit (``held_out`` says which); ``params[None]`` is the base
    fit with the share after the last fitted day. ``mults`` holds the crowding multipliers
    ``(long, short)`` in force at the same step (``(1, 1)`` without a crowding rule).
    """

    params: dict[str | None, CohortParams]
    held_out: frozenset[str]
    mults: dict[str | None, tuple[float, float]] = field(default_factory=dict)

    def for_event(self, event_id: str) -> CohortParams:
        """The parameters the replay of ``event_id`` uses."""
        return self.params.get(event_id, self.params[None])

    def mults_for(self, event_id: str) -> tuple[float, float]:
        """Crowding multipliers ``(long, short)`` of the book the replay of ``event_id`` uses."""
        return self.mults.get(event_id, self.mults.get(None, (1.0, 1.0)))

    def note(self, event_id: str) -> str:
        """``leave-one-event-out fit`` or ``base fit``."""
        return "leave-one-event-out fit" if event_id in self.held_out else "base fit"


def _day_index(days: pl.Series, when: datetime) -> int:
    """Index of the daily step starting at ``when`` (``len(days)`` when after the last day)."""
    return int(np.searchsorted(_np_ts(days), np.datetime64(when.replace(tzinfo=None)), "left"))


def _check_frame(d: pl.DataFrame, pred: tuple, rl, rs, keep, held_out):  # noqa: ANN001, ANN202
    return pl.DataFrame(
        {
            "day": d["day"].dt.date(),
            "predicted_long_usd": pred[0],
            "reported_long_usd": rl,
            "predicted_short_usd": pred[1],
            "reported_short_usd": rs,
            "held_out_event": pl.Series([held_out] * d.height, dtype=pl.String),
        }
    ).filter(pl.Series(keep))


def _hourly_fit_series(con, asset: str, d: pl.DataFrame) -> MarketSeries:  # noqa: ANN001
    """Hourly bars over the days of ``d``: OI linear between daily closes, 8-hour funding.

    An hour without a bar (exchange maintenance) carries the previous close; the fit's
    predictions are the sums of each day's 24 hours.
    """
    first, last = d["day"][0], d["day"][-1] + timedelta(days=1)
    hours = pl.DataFrame(
        {"ts": pl.datetime_range(first, last - _HOUR, interval="1h", eager=True, time_zone="UTC")}
    )
    bars = store.hourly_bars(con, asset, first, last)
    full = hours.join(bars.with_columns(pl.col("ts").dt.convert_time_zone("UTC")), on="ts",
                      how="left")  # fmt: skip
    close = full["close"].fill_null(strategy="forward").fill_null(strategy="backward")
    full = full.with_columns(
        close=close, low=pl.coalesce("low", close), high=pl.coalesce("high", close)
    )
    ts = _np_ts(full["ts"])
    t_daily = _np_ts(d["day"]) + np.timedelta64(1, "D")
    oi = np.interp(
        (ts + np.timedelta64(1, "h")).astype("datetime64[us]").astype("int64"),
        t_daily.astype("datetime64[us]").astype("int64"),
        d["oi_usd"].to_numpy(),
    )
    fund = store.hourly_funding(con, asset, first - timedelta(hours=8), last)
    f = np.full(len(ts), np.nan)
    if fund.height:
        fi = np.searchsorted(_np_ts(fund["ts"]), ts, side="right") - 1
        f = np.where(fi >= 0, fund["rate"].to_numpy()[np.clip(fi, 0, None)], np.nan)
    low, high = full["low"].to_numpy(), full["high"].to_numpy()
    return MarketSeries(
        asset=asset, ts=ts, low=np.minimum(low, full["close"].to_numpy()),
        high=np.maximum(high, full["close"].to_numpy()), close=full["close"].to_numpy(),
        oi_usd=oi, funding_8h=f, step_days=1.0 / 24.0,
    )  # fmt: skip


def _fit_runs(con, asset, series, d, config):  # noqa: ANN001, ANN202
    """Every grid candidate's daily unit-scale predictions, from daily or hourly bars."""
    if config.fit_bar_hours == 24:
        return fit_cohorts(series, grid=config.grid)
    if config.fit_bar_hours != 1:
        raise CascadeError(f"fit_bar_hours={config.fit_bar_hours}: use 1 (hourly) or 24 (daily)")
    hourly = fit_cohorts(_hourly_fit_series(con, asset, d), grid=config.grid)
    k = len(hourly.candidates)
    return CohortFit(
        hourly.candidates,
        hourly.pred_long.reshape(k, d.height, 24).sum(axis=2),
        hourly.pred_short.reshape(k, d.height, 24).sum(axis=2),
    )


@dataclass(frozen=True)
class FitDays:
    """The day sets one asset's fits use (the base fit and every leave-one-event-out fit).

    Attributes
    ----------
    long, short : numpy.ndarray
        Reported daily long / short liquidations (0 where nothing is reported).
    reported : numpy.ndarray
        Days with reported liquidations.
    masks : dict
        ``event_id →`` the event's days (padded by :data:`EVENT_PAD_DAYS`).
    starts : dict
        ``event_id →`` index of the event's first day.
    calib : numpy.ndarray
        Reported non-event days (the level rule's days).
    moved : numpy.ndarray
        Crash-like days: low at least ``config.fit_min_drop`` below the previous close.
    select_kw : dict
        The keyword arguments of :meth:`backtest.market.fit.CohortFit.select`.
    """

    long: np.ndarray
    short: np.ndarray
    reported: np.ndarray
    masks: dict[str, np.ndarray]
    starts: dict[str, int]
    calib: np.ndarray
    moved: np.ndarray
    select_kw: dict[str, object]

    @classmethod
    def of(cls, d: pl.DataFrame, events: pl.DataFrame, config: AttributionConfig) -> FitDays:
        """The day sets of the daily frame ``d`` (from ``_daily_series``) and the events."""
        has = d["reported_long_usd"].is_not_null().to_numpy()
        rows = list(events.iter_rows(named=True))
        masks = {r["event_id"]: _event_mask(d["day"], r["start_ts"], r["end_ts"], EVENT_PAD_DAYS)
                 for r in rows}  # fmt: skip
        any_event = np.zeros(d.height, bool)
        for m in masks.values():
            any_event |= m
        calib = has & ~any_event
        moved = intraday_drop(d["low"].to_numpy(), d["close"].to_numpy()) >= config.fit_min_drop
        return cls(
            long=d["reported_long_usd"].fill_null(0.0).to_numpy(),
            short=d["reported_short_usd"].fill_null(0.0).to_numpy(),
            reported=has,
            masks=masks,
            starts={r["event_id"]: _day_index(d["day"], r["start_ts"]) for r in rows},
            calib=calib,
            moved=moved,
            select_kw={
                "calib_mask": calib,
                "windows": tuple(config.level_windows),
                "crowding": _crowding(d, config),
                "crash": _crash_level(moved, config),
            },
        )

    def fit_mask(self, event_id: str | None = None) -> np.ndarray:
        """Days of a fit, crash-like and reported.

        ``None``: the base fit's (outside every event); an event id: its held-out fit's
        (outside that event's window).
        """
        if event_id is None:
            return self.calib & self.moved
        return self.reported & ~self.masks[event_id] & self.moved

    def select_base(self, fit: CohortFit) -> Selection:
        """The base fit (:meth:`fit_mask` with no event)."""
        return fit.select(self.long, self.short, self.fit_mask(), **self.select_kw)

    def select_without(self, fit: CohortFit, event_id: str) -> Selection:
        """The fit with ``event_id``'s days left out (:meth:`fit_mask`)."""
        return fit.select(self.long, self.short, self.fit_mask(event_id), **self.select_kw)


def _pooled_selections(con, assets, events, config, fits=None):  # noqa: ANN001, ANN202
    """Per asset ``(fit, {fit set: Selection})`` with the crowding response pooled.

    A fit set is the base fit (key ``None``) or the fit without one event (its id); an event
    without reports for an asset leaves that asset's fit set out of the pool.
    """
    if config.pool_assets not in ("beta", "beta_candidate"):
        raise CascadeError(
            f"pool_assets={config.pool_assets!r}: use '', 'beta' or 'beta_candidate'"
        )
    prep = {}
    for asset in assets:
        series, d = _daily_series(store.daily_inputs(con, asset), asset)
        fit = (fits or {}).get(asset) or _fit_runs(con, asset, series, d, config)
        prep[asset] = (fit, FitDays.of(d, events, config))
    keys: list[str | None] = [None, *prep[assets[0]][1].masks]
    out: dict[str, tuple[CohortFit, dict]] = {a: (prep[a][0], {}) for a in assets}
    for key in keys:
        args, members = [], []
        for a in assets:
            days = prep[a][1]
            if key is not None and not (days.reported & days.masks[key]).any():
                continue
            args.append((days.long, days.short, days.fit_mask(key), days.select_kw))
            members.append(a)
        if not members:
            continue
        sels = select_pooled([prep[a][0] for a in members], args,
                             pool_candidate=config.pool_assets == "beta_candidate")  # fmt: skip
        for a, sel in zip(members, sels):
            out[a][1][key] = sel
    return out


def _fit_asset(con, asset, events, config, notes, fit=None, pooled=None):  # noqa: ANN001, ANN202
    """Fit on non-event days and leave-one-event-out; the model-check rows.

    The trailing level of the levered share (``backtest.market.fit``) only ever uses non-event
    reported days, for the base and for every held-out fit. ``fit`` (the candidates' runs of
    this asset and config) is computed when not given; ``pooled`` (fit set → selection, from
    :func:`_pooled_selections`) replaces the asset's own selections.
    """
    daily = store.daily_inputs(con, asset)
    series, d = _daily_series(daily, asset)
    if fit is None:
        fit = _fit_runs(con, asset, series, d, config)
    days = FitDays.of(d, events, config)
    rl, rs, has, calib = days.long, days.short, days.reported, days.calib
    base = days.select_base(fit) if pooled is None else pooled[None]
    n = d.height
    params: dict[str | None, CohortParams] = {None: base.params}
    mults: dict[str | None, tuple[float, float]] = {None: base.multipliers_at(n)}
    held: set[str] = set()
    books = [_param_row(base, None, base.params.levered_share, n)]
    checks = [_check_frame(d, fit.predict(base), rl, rs, calib, None)]
    for eid, m in days.masks.items():
        start = days.starts[eid]
        if not (has & m).any():
            notes.append(f"{asset} {eid}: no reported daily liquidations; base fit used")
            params[eid] = base.crash_params_at(start)
            mults[eid] = base.multipliers_at(start)
            continue
        sel = days.select_without(fit, eid) if pooled is None else pooled[eid]
        params[eid] = sel.crash_params_at(start)
        mults[eid] = sel.multipliers_at(start)
        held.add(eid)
        books.append(_param_row(sel, eid, params[eid].levered_share, start))
        checks.append(_check_frame(d, fit.predict(sel), rl, rs, has & m, eid))
    check = pl.concat(
        [c.with_columns(pl.lit(asset).alias("asset")) for c in checks], how="diagonal_relaxed"
    )
    book_frame = pl.DataFrame(books).with_columns(pl.lit(asset).alias("asset"))
    return EventBooks(params, frozenset(held), mults), check, book_frame, d


def _hourly_oi(con, asset, d: pl.DataFrame, closes: np.ndarray):  # noqa: ANN001, ANN202
    """Open interest of the venue set at each hourly close (linear between samples)."""
    t_daily = _np_ts(d["day"]) + np.timedelta64(1, "D")
    v_daily = d["oi_usd"].to_numpy()
    source = store.VENUE_SET + " daily"
    if closes[-1] > t_daily[-1]:
        all4 = store.oi_4h_all(con, asset)
        if all4.height == 0:
            raise CascadeError(
                f"open_interest: asset {asset} has no data after {t_daily[-1]}; nothing written"
            )
        t4 = _np_ts(all4["ts"]) + np.timedelta64(4, "h")
        v4 = all4["oi_usd"].to_numpy()
        at = np.interp(t_daily.astype("int64"), t4.astype("int64"), v4, left=np.nan, right=np.nan)
        ok = np.isfinite(at)
        if not ok.any():
            raise CascadeError(f"open_interest: asset {asset}: no overlap to scale 4h all-venue OI")
        ratio = float(np.median(v_daily[ok] / at[ok]))
        after = t4 > t_daily[-1]
        t_daily = np.concatenate([t_daily, t4[after]])
        v_daily = np.concatenate([v_daily, v4[after] * ratio])
        source += f" + all-venue 4h x {ratio:.3f}"
    if closes[0] < t_daily[0]:
        raise CascadeError(
            f"open_interest: asset {asset} starts at {t_daily[0]}, after the window start "
            f"{closes[0]}; shorten --burn-in-days"
        )
    oi = np.interp(closes.astype("int64"), t_daily.astype("int64"), v_daily)
    return oi, source


def _impact(con, asset, start: datetime, config: AttributionConfig) -> SqrtImpact:  # noqa: ANN001
    bars = store.hourly_bars(con, asset, start - timedelta(days=config.adv_days), start)
    if bars.height < 24 * config.adv_days * 0.9:
        raise CascadeError(
            f"prices: asset {asset} has {bars.height} hourly bars in the {config.adv_days} days "
            f"before {start}; impact calibration needs 90 %"
        )
    r = np.diff(np.log(bars["close"].to_numpy()))
    sigma = float(np.std(r, ddof=1) * math.sqrt(24))
    adv = float((bars["volume"] * bars["close"]).sum()) / config.adv_days
    return SqrtImpact.from_market(
        adv_usd=adv, sigma_day=sigma, step_seconds=3600.0,
        half_life_steps=config.half_life_seconds / 3600.0, y=config.impact_y,
    )  # fmt: skip


def _observed_flow(con, asset, d, ts, model_long, model_short, low, high, close):  # noqa: ANN001, ANN202
    """Reported liquidations of the window spread to hours; the rule used."""
    day_idx = ((ts - ts[0].astype("datetime64[D]")).astype("timedelta64[h]").astype(int)) // 24
    days = np.unique(ts.astype("datetime64[D]"))
    dmap = dict(zip(_np_ts(d["day"]).astype("datetime64[D]"), range(d.height)))
    rl = d["reported_long_usd"].to_numpy()
    rs = d["reported_short_usd"].to_numpy()
    prev = np.concatenate([[close[0]], close[:-1]])
    down = np.maximum(np.log(prev / low), 0.0)
    up = np.maximum(np.log(high / prev), 0.0)
    if all(day in dmap and np.isfinite(rl[dmap[day]]) for day in days):
        tl = np.array([rl[dmap[day]] for day in days])
        ts_ = np.array([rs[dmap[day]] for day in days])
        long_ = spread_totals(tl, day_idx, model_long, down)
        short_ = spread_totals(ts_, day_idx, model_short, up)
        return long_, short_, f"{store.VENUE_SET} daily, spread by the model's hourly timing"
    b4 = store.cex_liquidations_4h(con, asset)
    bd = store.binance_daily_liquidations(con, asset)
    if b4.height:
        t4 = _np_ts(b4["ts"])
        g = np.searchsorted(t4, ts, side="right") - 1
        covered = (g >= 0) & (ts < t4[np.clip(g, 0, None)] + np.timedelta64(4, "h"))
        if covered.all():
            j = d.join(bd, on="day", how="inner")
            ok = (j["long_usd"] > 0) & (j["reported_long_usd"] > 0)
            ratio = float(
                (j.filter(ok)["reported_long_usd"] / j.filter(ok)["long_usd"]).median() or 1.0
            )
            uniq, grp = np.unique(g, return_inverse=True)
            tl = b4["long_usd"].to_numpy()[uniq] * ratio
            ts_ = b4["short_usd"].to_numpy()[uniq] * ratio
            long_ = spread_totals(tl, grp, model_long, down)
            short_ = spread_totals(ts_, grp, model_short, up)
            return long_, short_, f"binance 4h x {ratio:.2f} (venue-set ratio), model timing"
    return model_long.copy(), model_short.copy(), "model estimate (no reported liquidations)"


def _complete_hours(bars, burn, end, start, asset, ev):  # noqa: ANN001, ANN202
    """Every hour of ``[burn, end)``; a burn-in gap carries the last close, an event gap fails.

    A bar missing in the burn-in carries the previous close (volume 0); a bar missing inside
    the event window is an error.
    """
    hours = pl.DataFrame(
        {"ts": pl.datetime_range(burn, end - _HOUR, interval="1h", eager=True, time_zone="UTC")}
    )
    full = hours.join(bars, on="ts", how="left")
    missing = full.filter(pl.col("close").is_null() & (pl.col("ts") >= start))
    if missing.height:
        raise CascadeError(
            f"prices: asset {asset} misses the hourly bar at {missing['ts'][0]} inside the event "
            f"window of {ev['event_id']}; nothing was written"
        )
    if full["close"][0] is None:
        full = full.filter(pl.col("ts") >= full.filter(pl.col("close").is_not_null())["ts"][0])
    close = full["close"].fill_null(strategy="forward")
    return full.with_columns(
        close=close,
        low=pl.coalesce("low", close),
        high=pl.coalesce("high", close),
        volume=pl.col("volume").fill_null(0.0),
    )


def _event_asset(con, asset, ev, params, d, config, notes):  # noqa: ANN001, ANN202
    start, end = ev["start_ts"], ev["end_ts"]
    first_oi = d["day"][0] + timedelta(days=1)
    burn = max(start - timedelta(days=config.burn_in_days), first_oi)
    if burn > start - timedelta(days=7):
        notes.append(f"{asset} {ev['event_id']}: only {(start - burn).days} days of burn-in")
    bars = _complete_hours(store.hourly_bars(con, asset, burn, end), burn, end, start, asset, ev)
    ts = _np_ts(bars["ts"])
    closes = ts + np.timedelta64(1, "h")
    oi, oi_source = _hourly_oi(con, asset, d, closes)
    fund = store.hourly_funding(con, asset, burn - timedelta(hours=8), end)
    if fund.height:
        fi = np.searchsorted(_np_ts(fund["ts"]), ts, side="right") - 1
        f = np.where(fi >= 0, fund["rate"].to_numpy()[np.clip(fi, 0, None)], np.nan)
    else:
        f = np.full(len(ts), np.nan)
    low, high, close = (bars[c].to_numpy() for c in ("low", "high", "close"))
    full = MarketSeries(
        asset=asset, ts=ts, low=low, high=high, close=close, oi_usd=oi, funding_8h=f,
        step_days=1.0 / 24.0,
    )  # fmt: skip
    i0 = int(np.searchsorted(ts, np.datetime64(start.replace(tzinfo=None))))
    grid = PriceGrid.covering(float(low.min()), float(high.max()))
    p = params.for_event(ev["event_id"])
    m_long, m_short = params.mults_for(ev["event_id"])
    lead = max(i0 - GREEKS_LEAD_HOURS, 1)
    pre = run_cohorts(full, p, grid=grid, snapshot_at=tuple(range(lead, len(full))) + (i0,))
    # the window's voluntary flows (keep factors, openings) are those of the untilted book; the
    # book the replay, the Greeks and the policies start from carries the crowding tilt in
    # force at the event's start (longs x m_long, shorts x m_short; docs, section 1)
    vol = run_cohorts(full.slice(i0, len(full)), p, grid=grid, initial=pre.snapshots[i0])
    if (m_long, m_short) != (1.0, 1.0):
        pre = replace(
            pre, snapshots={k: b.tilted(m_long, m_short) for k, b in pre.snapshots.items()}
        )
    book = pre.snapshots[i0]
    win = full.slice(i0, len(full))
    wl, wh, wc, wts = win.low, win.high, win.close, win.ts
    obs_l, obs_s, flow_source = _observed_flow(
        con, asset, d, wts, vol.liq_long_usd, vol.liq_short_usd, wl, wh, wc
    )
    defi = store.defi_flow_hourly(con, asset, start, end)
    defi_flow = np.zeros(len(wts))
    if defi.height:
        k = np.searchsorted(wts, _np_ts(defi["ts"]))
        np.add.at(defi_flow, np.clip(k, 0, len(wts) - 1), defi["defi_usd"].to_numpy())
    other = store.other_venue_flow_hourly(con, asset, start, end)
    other_flow = np.zeros(len(wts))
    if other.height:
        k = np.searchsorted(wts, _np_ts(other["ts"]))
        np.add.at(other_flow, np.clip(k, 0, len(wts) - 1), other["usd"].to_numpy())
    imp = _impact(con, asset, start, config)
    exo = defi_flow + other_flow
    net = obs_l - obs_s + exo
    dc = decascade(wc, wl, wh, net, imp)
    rep = replay(book, p, vol, dc.close, dc.low, dc.high, imp, exo_flow_usd=exo)
    greeks, x24, l24 = _greeks(pre, full, i0, p, imp, ev, asset)
    dd_obs, dd_f = drawdown(wc, wl), drawdown(dc.close, dc.low)
    dd_rep = drawdown(rep.close, rep.low)
    err = (dd_rep - dd_obs) / dd_obs if dd_obs > 0 else 0.0
    row = {
        "event_id": ev["event_id"],
        "asset": asset,
        "observed_drawdown": dd_obs,
        "fundamental_drawdown": dd_f,
        "replayed_drawdown": dd_rep,
        "replayed_fundamental_drawdown": dd_f,
        "cascade_share": cascade_share(dd_rep, dd_f),
        "observed_cascade_share": cascade_share(dd_obs, dd_f),
        "observed_liq_usd": float(obs_l.sum() + obs_s.sum()),
        "replayed_liq_usd": float(rep.liq_long_usd.sum() + rep.liq_short_usd.sum()),
        "defi_liq_usd": float(defi_flow.sum()),
        "other_venue_liq_usd": float(other_flow.sum()),
        "critical_shock_24h_before": x24,
        "liq_10pct_24h_before_usd": l24,
        "max_cascade_depth": int(rep.rounds.max()),
        "drawdown_error": err,
        "consistent": bool(abs(err) <= CONSISTENCY_TOL),
        "sigma_day": imp.sigma_day,
        "adv_usd": imp.adv_usd,
        "oi_source": oi_source,
        "flow_source": flow_source,
        "note": params.note(ev["event_id"]),
    }
    paths = pl.DataFrame(
        {
            "ts": pl.Series(wts + np.timedelta64(1, "h")).dt.replace_time_zone("UTC"),
            "observed": wc,
            "fundamental": dc.close,
            "replayed": rep.close,
            "observed_flow_usd": obs_l - obs_s,
            "replayed_flow_usd": rep.liq_long_usd - rep.liq_short_usd,
            "defi_flow_usd": defi_flow,
            "other_venue_flow_usd": other_flow,
        }
    ).with_columns(pl.lit(ev["event_id"]).alias("event_id"), pl.lit(asset).alias("asset"))
    inputs = EventReplayInputs(
        event_id=ev["event_id"], asset=asset, start=start, end=end, book=book, params=p,
        voluntary=vol, ts=wts, close=wc, low=wl, high=wh, observed_net_flow=net,
        defi_flow=defi_flow, other_flow=other_flow, sigma_day=imp.sigma_day,
        adv_usd=imp.adv_usd, half_life_steps=config.half_life_seconds / 3600.0,
        full_ts=full.ts, full_close=full.close, i0=i0,
    )  # fmt: skip
    return row, paths, greeks, inputs


def _greeks(pre, full, i0, p, imp, ev, asset):  # noqa: ANN001, ANN202
    """Hourly book Greeks from the lead-in to the window end; x* and L(10 %) 24 h before."""
    idx = sorted(pre.snapshots)
    books = [pre.snapshots[i] for i in idx]
    prices = full.close[np.array(idx) - 1]  # the book before step i sits at the previous close
    shocks = default_shocks(100)
    g = book_greeks(
        books, prices, p, lambda usd: imp.Y * imp.sigma_day * np.sqrt(usd / imp.adv_usd), shocks
    )
    j5, j10, j20 = (int(np.argmin(np.abs(shocks - x))) for x in (0.05, 0.10, 0.20))
    ts = pl.Series(full.ts[np.array(idx)]).dt.replace_time_zone("UTC")
    frame = pl.DataFrame(
        {
            "ts": ts,
            "price": prices,
            "liq_5pct_usd": g.curve[:, j5],
            "liq_10pct_usd": g.curve[:, j10],
            "liq_20pct_usd": g.curve[:, j20],
            "liq_10pct_feedback_usd": g.curve_feedback[:, j10],
            "delta_10pct": g.delta[:, j10],
            "critical_shock": g.critical_shock,
        }
    ).with_columns(pl.lit(ev["event_id"]).alias("event_id"), pl.lit(asset).alias("asset"))
    k = idx.index(i0 - 24) if (i0 - 24) in idx else 0
    x24 = float(g.critical_shock[k])
    return frame, (None if np.isnan(x24) else x24), float(g.curve[k, j10])


def _impact_check(con, asset, d, events, config):  # noqa: ANN001, ANN202
    """Observed vs predicted returns of liquidation flow outside the windows (daily and 4h)."""
    h = store.hourly_closes(con, asset).with_columns(
        r=pl.col("close").log().diff(), usd=pl.col("volume") * pl.col("close")
    )
    day = (
        h.group_by(pl.col("ts").dt.truncate("1d").alias("day"))
        .agg(
            adv=pl.col("usd").sum(),
            sigma=pl.col("r").std() * math.sqrt(24),
            close=pl.col("close").last(),
        )
        .sort("day")
        .with_columns(
            adv=pl.col("adv").rolling_mean(config.adv_days).shift(1),
            sigma=pl.col("sigma").rolling_mean(config.adv_days).shift(1),
            ret=pl.col("close").log().diff(),
        )
    )
    outside = pl.lit(True)
    for r in events.iter_rows(named=True):
        lo = r["start_ts"] - timedelta(days=EVENT_PAD_DAYS)
        hi = r["end_ts"] + timedelta(days=EVENT_PAD_DAYS)
        outside = outside & ~pl.col("day").is_between(lo, hi, closed="left")
    rows = []
    daily = (
        d.select("day", "reported_long_usd", "reported_short_usd")
        .join(day, on="day")
        .filter(outside & pl.col("reported_long_usd").is_not_null())
        .drop_nulls(["adv", "sigma", "ret"])
    )
    flow = (daily["reported_long_usd"] - daily["reported_short_usd"]).to_numpy()
    pred = predicted_returns(
        flow, daily["sigma"].to_numpy(), daily["adv"].to_numpy(), config.impact_y
    )
    rows.append(("1d " + store.VENUE_SET, impact_slope(daily["ret"].to_numpy(), pred)))
    b4 = store.cex_liquidations_4h(con, asset)
    if b4.height > 10:
        bd = store.binance_daily_liquidations(con, asset)
        j = d.join(bd, on="day", how="inner").filter(
            (pl.col("long_usd") > 0) & (pl.col("reported_long_usd") > 0)
        )
        ratio = float((j["reported_long_usd"] / j["long_usd"]).median() or 1.0)
        c4 = h.select("ts", "close").with_columns(ts=pl.col("ts") - pl.duration(hours=3))
        c0 = h.select("ts", pl.col("close").alias("c0")).with_columns(
            ts=pl.col("ts") + pl.duration(hours=1)
        )
        four = (
            b4.join(c4, on="ts")
            .join(c0, on="ts")
            .with_columns(day=pl.col("ts").dt.truncate("1d"))
            .join(day.select("day", "adv", "sigma"), on="day")
            .filter(outside)
            .drop_nulls()
        )
        flow4 = ((four["long_usd"] - four["short_usd"]) * ratio).to_numpy()
        sig4 = four["sigma"].to_numpy()
        pred4 = predicted_returns(flow4, sig4, four["adv"].to_numpy(), config.impact_y)
        ret4 = np.log(four["close"].to_numpy() / four["c0"].to_numpy())
        rows.append((f"4h binance x {ratio:.2f}", impact_slope(ret4, pred4)))
    return [
        {
            "asset": asset,
            "interval": name,
            "n": s.n,
            "slope": s.slope,
            "slope_lo": s.slope_lo,
            "slope_hi": s.slope_hi,
            "intercept": s.intercept,
            "r2": s.r2,
            "verdict": s.verdict,
        }
        for name, s in rows
    ]


def compute_attribution(
    con: duckdb.DuckDBPyConnection, config: AttributionConfig
) -> AttributionRun:
    """Fit, check and replay every (event, asset) of the config; nothing is written here."""
    events = store.event_windows(con)
    notes: list[str] = []
    checks, books, rows, paths, greeks, impact_rows = [], [], [], [], [], []
    replays: list[EventReplayInputs] = []
    pooled = {}
    if config.pool_assets:
        pooled = _pooled_selections(con, config.assets, events, config)
    for asset in config.assets:
        fit, sels = pooled.get(asset, (None, None))
        params, check, book_frame, d = _fit_asset(con, asset, events, config, notes, fit, sels)
        checks.append(check)
        books.append(book_frame)
        impact_rows.extend(_impact_check(con, asset, d, events, config))
        for ev in events.filter(pl.col("event_id").is_in(list(config.events))).iter_rows(
            named=True
        ):
            if d["day"][0] + timedelta(days=1) > ev["start_ts"]:
                notes.append(f"{asset} {ev['event_id']}: no open interest before the event")
                continue
            row, path, greek, inputs = _event_asset(con, asset, ev, params, d, config, notes)
            replays.append(inputs)
            rows.append(row)
            paths.append(path)
            greeks.append(greek)
    frames = {
        "market_books": pl.concat(books, how="diagonal_relaxed"),
        "liquidation_model_check": pl.concat(checks, how="diagonal_relaxed"),
        "cascade_attribution": pl.DataFrame(rows) if rows else pl.DataFrame(),
        "market_paths": pl.concat(paths) if paths else pl.DataFrame(),
        "book_greeks": pl.concat(greeks) if greeks else pl.DataFrame(),
        "impact_check": pl.DataFrame(impact_rows),
        **policy_frames(con, replays, notes, stress_paths=config.stress_paths),
    }
    return AttributionRun(config.run_id, config, frames, tuple(notes))
