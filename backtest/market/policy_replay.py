"""The replay of :mod:`backtest.market.replay` under a market-level policy, with DeFi vaults.

:func:`replay_policy` is :func:`backtest.market.replay.replay` (same book, same fundamental path,
same voluntary flows, same impact state) with four additions, each off in the status quo:

* a :class:`~backtest.market.policies.MarketPolicy` decides how crossed cohorts are executed
  (circuit breaker, staged liquidation, insurance fund, per-step maintenance margin);
* **bad debt**: a cohort crossed in the step fills at its liquidation price moved by the round's
  own impact, ``ℓ · exp(−ΔI)`` (a short ``ℓ · exp(+ΔI)`` when the round's net flow buys); a
  cohort that was already past its liquidation price at the end of the previous step (halted, or
  a staged remainder) fills from the round's market price, ``min(ℓ, low) · exp(−ΔI)``. Beyond
  the bankruptcy price ``e·(1 − 1/L)`` (``e·(1 + 1/L)``) the shortfall is bad debt, absorbed by
  the venue's insurance fund. Hourly bars hide the path inside the hour, so a gap within the
  hour is not a source of bad debt here — only the forced flow's own impact and deferral are;
* **deferred flow**: positions past their liquidation price still in the book at the end of a
  step (halted or staged) plus the fund's inventory at market are *deferred*, never dropped —
  they are liquidated, or unwound into the same impact state, later (the voluntary closes of
  the observed run spare them), or survive when the price comes back above their liquidation
  price before they are executed;
* an endogenous DeFi vault book (:class:`VaultBook`, e.g. the rebuilt Maker ETH-B vaults):
  the owners' observed top-ups, withdrawals, draws and repayments are applied when they happened;
  at every step the vaults unsafe at the oracle price (the previous replayed close: Maker's OSM
  delays the price one hour) are liquidated and their collateral is sold into the same impact
  state at the step's market price; the shortfall of debt over the collateral's sale value after
  the sale's impact is the vault's bad debt.

With the status-quo policy and no vaults the result equals :func:`~backtest.market.replay.replay`
(``tests/test_market_policies.py`` checks it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from backtest.impact import SqrtImpact
from backtest.market.cohorts import BookState, CohortParams, CohortRun
from backtest.market.errors import MarketConfigError
from backtest.market.policies import MarketPolicy
from backtest.market.replay import signed_impact

__all__ = ["PolicyReplayResult", "VaultBook", "replay_policy"]

_TOL = 1e-9
#: Debt (USD) and collateral (coins) under which a vault counts as closed (export rounding, as
#: :data:`backtest.maker.MIN_DEBT` and :data:`backtest.maker.MIN_COLLATERAL`).
MIN_VAULT_DEBT, MIN_VAULT_COLLATERAL = 1.0, 1e-6


@dataclass(frozen=True, eq=False)
class VaultBook:
    """Collateralised vaults of one DeFi book and their owners' actions.

    Parameters
    ----------
    collateral : numpy.ndarray
        Collateral (coins) of each vault at the window start.
    debt : numpy.ndarray
        Debt (USD) of each vault at the window start.
    threshold : float
        Liquidation threshold (Maker: ``1 / mat``): unsafe when ``coll · price · threshold <
        debt``.
    event_step, event_vault : numpy.ndarray
        Step and vault index of each owner action, ordered by step.
    event_coll, event_debt : numpy.ndarray
        Collateral and debt change of each action.
    name : str
        Label of the book.
    """

    collateral: np.ndarray
    debt: np.ndarray
    threshold: float
    event_step: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    event_vault: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    event_coll: np.ndarray = field(default_factory=lambda: np.zeros(0))
    event_debt: np.ndarray = field(default_factory=lambda: np.zeros(0))
    name: str = "vaults"

    def __post_init__(self) -> None:
        if len(self.collateral) != len(self.debt):
            raise MarketConfigError(f"{self.name}: collateral and debt differ in length")
        if not 0 < self.threshold <= 1:
            raise MarketConfigError(f"{self.name}: threshold={self.threshold!r} not in (0, 1]")
        n = len(self.event_step)
        if not (len(self.event_vault) == len(self.event_coll) == len(self.event_debt) == n):
            raise MarketConfigError(f"{self.name}: event arrays differ in length")
        if n > 1 and np.any(np.diff(self.event_step) < 0):
            raise MarketConfigError(f"{self.name}: events are not ordered by step")


@dataclass(frozen=True)
class PolicyReplayResult:
    """A replay under a policy (per-step arrays unless said otherwise).

    Attributes
    ----------
    close, low, impact, liq_long_usd, liq_short_usd, rounds
        As :class:`backtest.market.replay.ReplayResult`.
    bad_debt_usd : numpy.ndarray
        Shortfall beyond the bankruptcy price of the cohorts liquidated in the step.
    halted : numpy.ndarray
        Whether the circuit breaker halted liquidations in the step.
    deferred_usd : numpy.ndarray
        At the step's end: notional of positions past their liquidation price still in the book
        plus the fund's inventory at the market close.
    fund_absorbed_usd, fund_unwound_usd : numpy.ndarray
        USD the fund took over (at the liquidation price) and sold into the market.
    fund_absorbed_coins, fund_unwound_coins, fund_held_coins : float
        Totals; ``absorbed = unwound + held``.
    fund_pnl_usd : float
        Proceeds of the unwinding plus the inventory at the last close, minus its cost.
    defi_liq_usd, defi_bad_debt_usd : numpy.ndarray
        Collateral sold by liquidated vaults and their shortfall.
    snapshot : BookState or None
        The unit-scale book after the rounds of ``snapshot_step``.
    """

    close: np.ndarray
    low: np.ndarray
    impact: np.ndarray
    liq_long_usd: np.ndarray
    liq_short_usd: np.ndarray
    rounds: np.ndarray
    bad_debt_usd: np.ndarray
    halted: np.ndarray
    deferred_usd: np.ndarray
    fund_absorbed_usd: np.ndarray
    fund_unwound_usd: np.ndarray
    fund_absorbed_coins: float
    fund_unwound_coins: float
    fund_held_coins: float
    fund_pnl_usd: float
    defi_liq_usd: np.ndarray
    defi_bad_debt_usd: np.ndarray
    snapshot: BookState | None = None


class _Cuts:
    """Crossed cohorts of a book for a price and per-tier liquidation factors."""

    def __init__(self, book: BookState, params: CohortParams) -> None:
        self.g0, self.step, self.n = book.grid.g0, book.grid.step, book.grid.n
        self.prices = book.grid.prices
        self.kidx = np.arange(self.n)[None, :]
        self.inv_lev = 1.0 / np.asarray(params.tiers, dtype=float)

    def long_mask(self, low: float, lfac: np.ndarray) -> np.ndarray:
        x = (math.log(low) - np.log(lfac) - self.g0) / self.step
        cut = np.clip(np.ceil(x - _TOL), 0, self.n).astype(np.int64)
        return self.kidx >= cut[:, None]

    def short_mask(self, high: float, sfac: np.ndarray) -> np.ndarray:
        x = (math.log(high) - np.log(sfac) - self.g0) / self.step
        cut = np.clip(np.floor(x + _TOL) + 1, 0, self.n).astype(np.int64)
        return self.kidx < cut[:, None]


def _factors(policy: MarketPolicy, params: CohortParams, n: int) -> tuple[np.ndarray, np.ndarray]:
    inv = 1.0 / np.asarray(params.tiers, dtype=float)
    if policy.mmr_path is None:
        mmr = np.full((n, len(inv)), params.mmr)
    else:
        mmr = np.asarray(policy.mmr_path, dtype=float)
        if mmr.shape != (n, len(inv)):
            raise MarketConfigError(
                f"market policy {policy.name!r}: mmr_path has shape {mmr.shape}, expected "
                f"({n}, {len(inv)})"
            )
        if np.any(mmr < 0) or np.any(mmr >= inv[None, :]):
            raise MarketConfigError(
                f"market policy {policy.name!r}: every mmr must be in [0, 1/L) of its tier"
            )
    return 1.0 - inv[None, :] + mmr, 1.0 + inv[None, :] - mmr


def replay_policy(
    book: BookState,
    params: CohortParams,
    voluntary: CohortRun,
    f_close: np.ndarray,
    f_low: np.ndarray,
    f_high: np.ndarray,
    impact: SqrtImpact | None,
    policy: MarketPolicy | None = None,
    *,
    exo_flow_usd: np.ndarray | None = None,
    vaults: VaultBook | None = None,
    oracle0: float | None = None,
    snapshot_step: int | None = None,
    max_rounds: int = 200,
) -> PolicyReplayResult:
    """Replay a unit-scale book on a fundamental path under a market-level policy.

    Parameters
    ----------
    book, params, voluntary, f_close, f_low, f_high, impact, exo_flow_usd, max_rounds
        As :func:`backtest.market.replay.replay`.
    policy : MarketPolicy, optional
        The policy (default: the status quo).
    vaults : VaultBook, optional
        An endogenous DeFi book selling into the same market.
    oracle0 : float, optional
        Oracle price of the vaults at step 0 (default ``f_close[0]``).
    snapshot_step : int, optional
        Keep a copy of the book after this step's rounds.

    Returns
    -------
    PolicyReplayResult
    """
    policy = policy or MarketPolicy()
    n = len(f_close)
    if len(voluntary.keep) != n:
        raise MarketConfigError(
            f"the voluntary run has {len(voluntary.keep)} steps, the path {n}; run the cohort "
            "model over the same window"
        )
    grid = book.grid
    cuts = _Cuts(book, params)
    lfac, sfac = _factors(policy, params, n)
    w = params.tier_weights()
    a = params.levered_share
    decay = impact.decay if impact is not None else 1.0
    exo = np.zeros(n) if exo_flow_usd is None else np.asarray(exo_flow_usd, dtype=float)
    b = book.copy()
    e = cuts.prices[None, :]
    bk_long = (1.0 - cuts.inv_lev)[:, None] * e
    bk_short = (1.0 + cuts.inv_lev)[:, None] * e
    z = {k: np.zeros(n) for k in ("c", "l", "i", "ll", "ls", "bd", "def", "fa", "fu", "dl", "dbd")}
    rounds_out = np.zeros(n, dtype=np.int64)
    halted = np.zeros(n, dtype=bool)
    staged = policy.staged_fraction is not None
    fund_on = policy.fund_capacity_usd > 0
    held_coins = held_cost = absorbed_coins = unwound_coins = proceeds = 0.0
    first_absorb: int | None = None
    halt_until, resume = -1, 0
    snapshot = None
    if vaults is not None:
        v_coll = np.asarray(vaults.collateral, dtype=float).copy()
        v_debt = np.asarray(vaults.debt, dtype=float).copy()
        alive = (v_debt > MIN_VAULT_DEBT) & (v_coll > MIN_VAULT_COLLATERAL)
        gone = np.zeros(len(v_debt), dtype=bool)
        ev_pos = 0
        oracle = float(f_close[0]) if oracle0 is None else float(oracle0)

    def imp_of(qq: float) -> float:
        return float(signed_impact(impact, qq)) if impact is not None else 0.0

    q = 0.0
    prev_close = float(f_close[0])
    pend_l = np.zeros(b.long.shape, dtype=bool)
    pend_s = np.zeros(b.short.shape, dtype=bool)
    for i in range(n):
        q = q * decay + float(exo[i])
        # the fund unwinds at the opening price, into the same impact state
        if fund_on and first_absorb is not None and i >= first_absorb + policy.fund_unwind_delay:
            if held_coins > 0 and policy.fund_unwind_usd_per_step > 0:
                sold = min(held_coins, policy.fund_unwind_usd_per_step / prev_close)
                usd = sold * prev_close
                held_cost *= 1.0 - sold / held_coins
                held_coins -= sold
                unwound_coins += sold
                proceeds += usd
                z["fu"][i] = usd
                q += usd
        imp = imp_of(q)
        if vaults is not None:
            while ev_pos < len(vaults.event_step) and vaults.event_step[ev_pos] <= i:
                j = int(vaults.event_vault[ev_pos])
                if not gone[j]:  # a vault the replay liquidated ignores its owner's later actions
                    v_coll[j] = max(v_coll[j] + float(vaults.event_coll[ev_pos]), 0.0)
                    v_debt[j] = max(v_debt[j] + float(vaults.event_debt[ev_pos]), 0.0)
                    alive[j] = v_debt[j] > MIN_VAULT_DEBT and v_coll[j] > MIN_VAULT_COLLATERAL
                ev_pos += 1
            unsafe = alive & (v_coll * oracle * vaults.threshold < v_debt)
            if unsafe.any():
                px = float(f_close[i]) * math.exp(-imp)
                sale = float(v_coll[unsafe].sum()) * px
                q += sale
                imp = imp_of(q)
                post = float(f_close[i]) * math.exp(-imp)
                z["dl"][i] = sale
                z["dbd"][i] = float(np.maximum(v_debt[unsafe] - v_coll[unsafe] * post, 0).sum())
                alive &= ~unsafe
                gone |= unsafe
        done_l = np.zeros(b.long.shape, dtype=bool)
        done_s = np.zeros(b.short.shape, dtype=bool)
        lf, sf = lfac[i], sfac[i]
        lp_long, lp_short = lf[:, None] * e, sf[:, None] * e
        rounds = 0
        while rounds < max_rounds:
            m = math.exp(-imp)
            lo_m, hi_m = float(f_low[i]) * m, float(f_high[i]) * m
            if i < halt_until:
                halted[i] = True
                break
            if policy.breaker_drop is not None:
                start = max(i - policy.breaker_lookback, resume)
                ref = max([prev_close, *z["c"][start:i].tolist()])
                if 1.0 - lo_m / ref >= policy.breaker_drop - _TOL:
                    halt_until, resume = i + policy.breaker_cooldown, i + policy.breaker_cooldown
                    halted[i] = True
                    break
            ml = cuts.long_mask(lo_m, lf) & (b.long > 0) & ~done_l
            ms = cuts.short_mask(hi_m, sf) & (b.short > 0) & ~done_s
            if not (ml.any() or ms.any()):
                break
            ql = np.where(ml, b.long, 0.0)
            qs = np.where(ms, b.short, 0.0)
            if staged:
                for qq, lp in ((ql, lp_long), (qs, lp_short)):
                    notional = qq * lp * a
                    big = notional > policy.staged_min_usd
                    frac = np.maximum(
                        policy.staged_fraction, policy.staged_min_usd / np.where(big, notional, 1)
                    )
                    qq *= np.where(big, np.minimum(frac, 1.0), 1.0)
                done_l |= ml
                done_s |= ms
            b.long -= ql
            b.short -= qs
            ll, ls = float((ql * lp_long).sum()), float((qs * lp_short).sum())
            rounds += 1
            z["ll"][i] += ll * a
            z["ls"][i] += ls * a
            to_market = ll * a
            if fund_on and ll > 0:
                take = min(ll * a, max(policy.fund_capacity_usd - held_cost, 0.0))
                if take > 0:
                    coins = take / (ll * a) * float(ql.sum()) * a
                    held_coins += coins
                    absorbed_coins += coins
                    held_cost += take
                    z["fa"][i] += take
                    to_market -= take
                    first_absorb = i if first_absorb is None else first_absorb
            before = imp
            if impact is not None:
                q += to_market - ls * a
                imp = imp_of(q)
            # fresh cohorts fill at their liquidation price moved by the round's own impact;
            # cohorts left past it by a halt or a stage fill from the round's market price
            base_l = np.where(pend_l, np.minimum(lp_long, lo_m), lp_long)
            base_s = np.where(pend_s, np.maximum(lp_short, hi_m), lp_short)
            ex_l = base_l * math.exp(-max(imp - before, 0.0))
            ex_s = base_s * math.exp(max(before - imp, 0.0))
            z["bd"][i] += a * float(
                (ql * np.maximum(bk_long - ex_l, 0.0)).sum()
                + (qs * np.maximum(ex_s - bk_short, 0.0)).sum()
            )
        m = math.exp(-imp)
        z["i"][i], rounds_out[i] = imp, rounds
        z["c"][i] = float(f_close[i]) * m
        z["l"][i] = min(float(f_low[i]) * m, z["c"][i])
        lo_m, hi_m = float(f_low[i]) * m, float(f_high[i]) * m
        pend_l = cuts.long_mask(lo_m, lf) & (b.long > 0)
        pend_s = cuts.short_mask(hi_m, sf) & (b.short > 0)
        pend = float(
            (np.where(pend_l, b.long, 0.0) * lp_long).sum()
            + (np.where(pend_s, b.short, 0.0) * lp_short).sum()
        )
        z["def"][i] = pend * a + held_coins * z["c"][i]
        if snapshot_step == i:
            snapshot = b.copy()
        # voluntary closes (turnover, the closing rule) spare positions past their liquidation
        # price: they leave the book only through a liquidation, never for free
        keep = voluntary.keep[i][:, None]
        b.long *= np.where(pend_l, 1.0, keep)
        b.short *= np.where(pend_s, 1.0, keep)
        ol, os_ = float(voluntary.open_long[i]), float(voluntary.open_short[i])
        if ol > 0 or os_ > 0:
            k = grid.bin_of(z["c"][i])
            b.long[:, k] += w * ol
            b.short[:, k] += w * os_
        prev_close = z["c"][i]
        if vaults is not None:
            oracle = z["c"][i]
    pnl = proceeds + held_coins * z["c"][-1] - float(z["fa"].sum())
    return PolicyReplayResult(
        close=z["c"],
        low=z["l"],
        impact=z["i"],
        liq_long_usd=z["ll"],
        liq_short_usd=z["ls"],
        rounds=rounds_out,
        bad_debt_usd=z["bd"],
        halted=halted,
        deferred_usd=z["def"],
        fund_absorbed_usd=z["fa"],
        fund_unwound_usd=z["fu"],
        fund_absorbed_coins=absorbed_coins,
        fund_unwound_coins=unwound_coins,
        fund_held_coins=held_coins,
        fund_pnl_usd=pnl,
        defi_liq_usd=z["dl"],
        defi_bad_debt_usd=z["dbd"],
        snapshot=snapshot,
    )
