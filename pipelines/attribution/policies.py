"""Market-level policies and DeFi books on the market-wide replay: data assembly and frames.

For every replayed (event, asset) of :func:`pipelines.attribution.compute.compute_attribution`,
and for each square-root-law prefactor in :data:`IMPACT_YS` (1 = the calibrated law, 6 = the
order of the impact-check slope), the observed path is decascaded with that law and the book is
replayed under the status quo and each policy of :func:`policy_set`
(:func:`backtest.market.policy_replay.replay_policy`). On ETH windows covered by the Maker
ETH-B vault history the rebuilt vault book is an *endogenous* book of the replay (its observed
liquidations are taken out of the exogenous flow; Aave v2 and Compound v2 stay observed flow).
Method and assumptions: ``docs/market-replay.md#market-level-policies``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import partial

import duckdb
import numpy as np
import polars as pl

from backtest.impact import SqrtImpact
from backtest.market.cohorts import BookState, CohortParams, CohortRun
from backtest.market.policies import (
    ADL_RULES,
    MarketPolicy,
    adl,
    forecast_mmr,
    realized_sigma,
    sigma_ratio,
)
from backtest.market.policy_replay import PolicyReplayResult, VaultBook, replay_policy
from backtest.market.replay import cascade_share, decascade, drawdown
from pipelines.attribution.policy_stress import (
    STRESS_PATHS,
    StressDeviations,
    interval_rows,
    stress_deviations,
)
from pipelines.errors import CascadeError
from pipelines.warehouse import attribution_store as store

__all__ = [
    "IMPACT_YS",
    "MM_SOURCES",
    "EventReplayInputs",
    "asof_ratio",
    "policy_frames",
    "policy_set",
]

#: Square-root-law prefactors of the policy replays (the impact check finds slopes of 5.5-6.9).
IMPACT_YS: tuple[float, ...] = (1.0, 6.0)
#: Circuit breaker (assumption): a 5 % drop from the last 4 hours' closes halts for 1 hour.
BREAKER = {"drop": 0.05, "lookback": 4, "cooldown": 1}
#: Staged liquidation (assumption): a cohort above $10M is liquidated 25 % per hour.
STAGED = {"fraction": 0.25, "min_usd": 10e6}
#: Insurance fund / backstop (assumption): $500M of inventory, unwound $25M/hour after 6 hours.
FUND = {"capacity_usd": 500e6, "unwind_usd_per_step": 25e6, "delay": 6}
#: Forecast behind the forecast-driven maintenance margin, and its reference period.
MM_MODEL, MM_HORIZON, MM_REF_DAYS = "garch", 24, 30
#: Maintenance-margin sources: the model's forecast and the controls of the backtest.
MM_SOURCES: tuple[str, ...] = ("model", "constant", "lagged", "shuffled", "oracle")
#: Seed of the shuffled control (the backtest's, pipelines.backtests.margin.SHUFFLE_SEED).
SHUFFLE_SEED = 20_211_119
#: Hyperliquid auto-deleveraged $2.10B on 2025-10-10 21:15-21:27 UTC (REFERENCES.md).
ADL_REFERENCE_USD = 2.10e9


@dataclass(frozen=True)
class EventReplayInputs:
    """What the replay of one (event, asset) used, for the policy replays.

    Attributes
    ----------
    event_id, asset : str
    start, end : datetime
        The event window.
    book : BookState
        Unit-scale book at the window start.
    params : CohortParams
    voluntary : CohortRun
        Voluntary flows of the window.
    ts : numpy.ndarray
        Bar open times of the window (naive UTC ``datetime64``).
    close, low, high : numpy.ndarray
        Observed bars of the window.
    observed_net_flow : numpy.ndarray
        Net forced sales the decascade removes (CEX + DeFi + other venues).
    defi_flow, other_flow : numpy.ndarray
        Observed DeFi collateral sales and other venues' liquidations per hour.
    sigma_day, adv_usd, half_life_steps : float
        Impact calibration (pre-event only).
    full_ts, full_close : numpy.ndarray
        Bar opens and closes from the burn-in to the window end; ``i0`` = the window's first.
    i0 : int
    """

    event_id: str
    asset: str
    start: datetime
    end: datetime
    book: BookState
    params: CohortParams
    voluntary: CohortRun
    ts: np.ndarray
    close: np.ndarray
    low: np.ndarray
    high: np.ndarray
    observed_net_flow: np.ndarray
    defi_flow: np.ndarray
    other_flow: np.ndarray
    sigma_day: float
    adv_usd: float
    half_life_steps: float
    full_ts: np.ndarray
    full_close: np.ndarray
    i0: int


def _naive(col: pl.Series) -> np.ndarray:
    return col.dt.replace_time_zone(None).to_numpy().astype("datetime64[us]")


def asof_ratio(
    origin_ts: np.ndarray, sigma: np.ndarray, step_ts: np.ndarray, start: np.datetime64
) -> np.ndarray:
    """Forecast volatility over its lead-in median, per step (walk-forward).

    Step ``i`` (a bar opening at ``step_ts[i]``) uses the last forecast whose origin bar closed
    before it opened (``origin_ts <= step_ts[i] − 1 h``); the reference is the median of the
    forecasts with origins in ``[start − 30 days, start − 1 h]``. Later forecasts are never read.
    """
    o = np.asarray(origin_ts).astype("datetime64[us]")
    s = np.asarray(sigma, dtype=float)
    t = np.asarray(step_ts).astype("datetime64[us]") - np.timedelta64(1, "h")
    idx = np.searchsorted(o, t, side="right") - 1
    at = np.where(idx >= 0, s[np.clip(idx, 0, None)], np.nan)
    st = np.datetime64(start, "us")
    lead = s[(o >= st - np.timedelta64(MM_REF_DAYS, "D")) & (o <= st - np.timedelta64(1, "h"))]
    return sigma_ratio(at, lead)


def _mm_ratios(con, x: EventReplayInputs, notes: list[str]) -> dict[str, np.ndarray]:  # noqa: ANN001
    """Volatility ratio per window step for the model and each control."""
    run_id, fc = store.forecast_sigma(con, x.asset, x.event_id, MM_MODEL, MM_HORIZON)
    n = len(x.ts)
    if run_id is None or fc.height == 0:
        notes.append(
            f"{x.asset} {x.event_id}: no {MM_MODEL} {MM_HORIZON} h forecasts in the warehouse; "
            "forecast-driven maintenance margin not replayed (run `cascade forecast`)"
        )
        return {}
    sig = fc["sigma"].to_numpy()
    bad = np.flatnonzero(~(np.isfinite(sig) & (sig > 0)))
    if bad.size:
        at = fc["origin_ts"][int(bad[0])]
        raise CascadeError(
            f"forecasts: asset {x.asset}, event {x.event_id}, model {MM_MODEL} {MM_HORIZON} h, "
            f"run {run_id}: sigma {float(sig[bad[0]])!r} at {at} is not a positive number; "
            "re-run `cascade forecast`; nothing was written"
        )
    start = np.datetime64(x.start.replace(tzinfo=None), "us")
    model = asof_ratio(_naive(fc["origin_ts"]), fc["sigma"].to_numpy(), x.ts, start)
    ref = slice(max(x.i0 - 24 * MM_REF_DAYS, 0), x.i0)
    win = slice(x.i0, x.i0 + n)
    lag = realized_sigma(x.full_close, 24)
    fut = realized_sigma(x.full_close, 24, future=True)
    clipped = np.maximum(model, 1.0)
    rng = np.random.default_rng(SHUFFLE_SEED)
    return {
        "model": model,
        "constant": np.full(n, float(clipped.mean())),
        "lagged": sigma_ratio(lag[win], lag[ref]),
        "shuffled": rng.permutation(model),
        "oracle": sigma_ratio(fut[win], fut[ref]),
    }


def policy_set(params: CohortParams, mm: dict[str, np.ndarray]) -> list[MarketPolicy]:
    """The status quo, then each policy (constants above; one forecast margin per source)."""
    out = [
        MarketPolicy(),
        MarketPolicy(
            name="circuit_breaker",
            breaker_drop=BREAKER["drop"],
            breaker_lookback=BREAKER["lookback"],
            breaker_cooldown=BREAKER["cooldown"],
        ),
        MarketPolicy(
            name="staged", staged_fraction=STAGED["fraction"], staged_min_usd=STAGED["min_usd"]
        ),
        MarketPolicy(
            name="insurance_fund",
            fund_capacity_usd=FUND["capacity_usd"],
            fund_unwind_usd_per_step=FUND["unwind_usd_per_step"],
            fund_unwind_delay=FUND["delay"],
        ),
    ]
    for source in MM_SOURCES:
        if source in mm:
            out.append(
                MarketPolicy(
                    name=f"forecast_mm:{source}", mmr_path=forecast_mmr(mm[source], params)
                )
            )
    return out


def _vault_book(con, x: EventReplayInputs):  # noqa: ANN001, ANN202
    """The endogenous Maker ETH-B book of an ETH window, and its observed hourly flow."""
    if x.asset != "ETH":
        return None, np.zeros(len(x.ts))
    vaults, events, mat = store.maker_ethb_vaults(con, x.start, x.end)
    if mat is None or vaults.height == 0:
        return None, np.zeros(len(x.ts))
    ids = vaults["vault_id"].to_list()
    new = [v for v in events["vault_id"].unique(maintain_order=True).to_list() if v not in set(ids)]
    ids += new
    index = {v: i for i, v in enumerate(ids)}
    coll = np.r_[vaults["collateral"].to_numpy(), np.zeros(len(new))]
    debt = np.r_[vaults["debt"].to_numpy(), np.zeros(len(new))]
    step = np.searchsorted(x.ts, _naive(events["ts"]), side="right") - 1
    book = VaultBook(
        collateral=coll,
        debt=debt,
        threshold=1.0 / mat,
        event_step=np.clip(step, 0, None).astype(np.int64),
        event_vault=np.array([index[v] for v in events["vault_id"].to_list()], dtype=np.int64),
        event_coll=events["collateral_delta"].to_numpy(),
        event_debt=events["debt_delta"].to_numpy(),
        name="maker-ethb",
    )
    obs = store.maker_flow_hourly(con, x.start, x.end)
    flow = np.zeros(len(x.ts))
    if obs.height:
        k = np.searchsorted(x.ts, _naive(obs["ts"]))
        np.add.at(flow, np.clip(k, 0, len(x.ts) - 1), obs["defi_usd"].to_numpy())
    return book, flow


def _replayer(x: EventReplayInputs, imp: SqrtImpact, exo, vaults, oracle0: float):  # noqa: ANN001, ANN202
    """``replayer(policy, close, low, high)``: the replay of ``x`` on other fundamental bars."""

    def replayer(pol: MarketPolicy, c: np.ndarray, lo: np.ndarray, hi: np.ndarray):  # noqa: ANN202
        return replay_policy(
            x.book, x.params, x.voluntary, c, lo, hi, imp, pol,
            exo_flow_usd=exo, vaults=vaults, oracle0=oracle0,
        )  # fmt: skip

    return replayer


def _row(x, y, seq, pol, res, dd_f, defi_label, maker_obs) -> dict:  # noqa: ANN001
    dd = drawdown(res.close, res.low)
    return {
        "event_id": x.event_id,
        "asset": x.asset,
        "impact_y": y,
        "seq": seq,
        "policy": pol.name,
        "params": json.dumps(pol.params(), sort_keys=True),
        "defi_book": defi_label,
        "fundamental_drawdown": dd_f,
        "replayed_drawdown": dd,
        "cascade_share": cascade_share(dd, dd_f),
        "liquidated_usd": float(res.liq_long_usd.sum() + res.liq_short_usd.sum()),
        "bad_debt_usd": float(res.bad_debt_usd.sum()),
        "deferred_usd": float(res.deferred_usd[-1]),
        "peak_deferred_usd": float(res.deferred_usd.max()),
        "halted_hours": int(res.halted.sum()),
        "fund_absorbed_usd": float(res.fund_absorbed_usd.sum()),
        "fund_unwound_usd": float(res.fund_unwound_usd.sum()),
        "fund_pnl_usd": res.fund_pnl_usd,
        "defi_liq_usd": float(res.defi_liq_usd.sum()),
        "defi_observed_usd": float(maker_obs.sum()),
        "defi_bad_debt_usd": float(res.defi_bad_debt_usd.sum()),
        "max_cascade_depth": int(res.rounds.max()),
    }


def _adl_rows(con, x, y, run, sq: PolicyReplayResult, notes) -> list[dict]:  # noqa: ANN001
    """ADL rules on the status-quo book at its largest long-liquidation hour (venues with ADL)."""
    other = float(x.other_flow.sum())
    hl = store.hyperliquid_liquidations_usd(con)
    if other <= 0 or not hl:
        return []
    k = int(np.argmax(sq.liq_long_usd))
    res = run(MarketPolicy(), snapshot_step=k)
    target = ADL_REFERENCE_USD * other / hl
    price = float(res.low[k])
    rows = []
    for rule in ADL_RULES:
        a = adl(res.snapshot, x.params, price, target, rule)
        rows.append(
            {
                "event_id": x.event_id,
                "asset": x.asset,
                "impact_y": y,
                "rule": rule,
                "ts": x.ts[k].astype("datetime64[us]").item(),
                "price": price,
                "target_usd": target,
                "adl_usd": a.amount_usd,
                "eligible_usd": a.eligible_usd,
                "cohorts_hit": a.cohorts_hit,
                "high_lev_share": a.high_lev_share,
                "mean_leverage": a.mean_leverage,
                "max_cohort_fraction": a.max_cohort_fraction,
                "mean_profit": a.mean_profit,
                "note": (
                    f"Hyperliquid ADL ${ADL_REFERENCE_USD / 1e9:.2f}B x this asset's share of its "
                    f"liquidations (${other / 1e9:.2f}B of ${hl / 1e9:.2f}B), on the fitted "
                    f"{store.VENUE_SET} book (Hyperliquid's own book is not in the warehouse)"
                ),
            }
        )
    return rows


def policy_frames(
    con: duckdb.DuckDBPyConnection,
    inputs: list[EventReplayInputs],
    notes: list[str],
    *,
    stress_paths: int = STRESS_PATHS,
) -> dict[str, pl.DataFrame]:
    """Replay every (event, asset) under every policy and prefactor; the four result frames.

    ``market_policy_intervals``: the avoided figures over stress paths
    (:mod:`pipelines.attribution.policy_stress`; none when ``stress_paths`` is 0).
    """
    rows, paths, adls, intervals = [], [], [], []
    n_stress = stress_paths
    for x in inputs:
        vaults, maker_obs = _vault_book(con, x)
        defi_label = (
            "maker-ethb endogenous; aave-v2, compound-v2 observed" if vaults else ("observed flow")
        )
        exo = x.defi_flow - maker_obs + x.other_flow
        mm = _mm_ratios(con, x, notes)
        policies = policy_set(x.params, mm)
        oracle0 = float(x.full_close[x.i0 - 1]) if x.i0 > 0 else float(x.close[0])
        stress: StressDeviations | str | None = None
        if n_stress > 0:
            stress = stress_deviations(x.full_close, x.i0, len(x.ts), n_stress)
            if isinstance(stress, str):
                notes.append(f"{x.asset} {x.event_id}: no policy intervals: {stress}")
        for y in IMPACT_YS:
            imp = SqrtImpact.from_market(
                adv_usd=x.adv_usd, sigma_day=x.sigma_day, step_seconds=3600.0,
                half_life_steps=x.half_life_steps, y=y,
            )  # fmt: skip
            dc = decascade(x.close, x.low, x.high, x.observed_net_flow, imp)
            dd_f = drawdown(dc.close, dc.low)

            run = partial(
                replay_policy, x.book, x.params, x.voluntary, dc.close, dc.low, dc.high, imp,
                exo_flow_usd=exo, vaults=vaults, oracle0=oracle0,
            )  # fmt: skip

            base = None
            for seq, pol in enumerate(policies):
                res = run(pol)
                row = _row(x, y, seq, pol, res, dd_f, defi_label, maker_obs)
                if base is None:
                    base, sq = row, res
                row["avoided_cascade_share"] = base["cascade_share"] - row["cascade_share"]
                row["avoided_liq_usd"] = base["liquidated_usd"] - row["liquidated_usd"]
                row["avoided_bad_debt_usd"] = (base["bad_debt_usd"] - row["bad_debt_usd"]) + (
                    base["defi_bad_debt_usd"] - row["defi_bad_debt_usd"]
                )
                row["note"] = "" if pol.name == "status_quo" else "vs status_quo, same impact_y"
                rows.append(row)
                paths.append(
                    pl.DataFrame(
                        {
                            "ts": (x.ts + np.timedelta64(1, "h")),
                            "fundamental": dc.close,
                            "replayed": res.close,
                            "liquidated_usd": res.liq_long_usd + res.liq_short_usd,
                            "defi_liq_usd": res.defi_liq_usd,
                        }
                    ).with_columns(
                        pl.col("ts").dt.replace_time_zone("UTC"),
                        event_id=pl.lit(x.event_id),
                        asset=pl.lit(x.asset),
                        impact_y=pl.lit(y),
                        policy=pl.lit(pol.name),
                    )
                )
            adls.extend(_adl_rows(con, x, y, run, sq, notes))
            if isinstance(stress, StressDeviations):
                key = {"event_id": x.event_id, "asset": x.asset, "impact_y": y}
                bars = (dc.close, dc.low, dc.high)
                real = rows[-len(policies) :]
                replayer = _replayer(x, imp, exo, vaults, oracle0)
                intervals.extend(interval_rows(key, replayer, policies, bars, stress, real))
    adl_frame = pl.DataFrame(adls) if adls else pl.DataFrame()
    if adl_frame.height:
        adl_frame = adl_frame.with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
    return {
        "market_policy_results": pl.DataFrame(rows) if rows else pl.DataFrame(),
        "market_policy_paths": pl.concat(paths) if paths else pl.DataFrame(),
        "market_adl": adl_frame,
        "market_policy_intervals": pl.DataFrame(intervals) if intervals else pl.DataFrame(),
    }
