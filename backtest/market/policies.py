"""Market-level policies of the market-wide replay, and the auto-deleveraging (ADL) rules.

A :class:`MarketPolicy` changes how :func:`backtest.market.policy_replay.replay_policy` executes
the forced flow of the cohort book on a fundamental path; everything else (the path, the book,
the voluntary flows, the impact model) is the status quo's. One policy switches one mechanism on:

* **circuit breaker** (``breaker_drop``): at every round the market price is compared with the
  reference ``max(replayed closes of the previous breaker_lookback steps since the last resume,
  the step's opening price)``; when ``1 − p / ref ≥ breaker_drop`` liquidations halt for
  ``breaker_cooldown`` steps (the current one included). Halted positions stay in the book,
  past their liquidation price, and are liquidated after the halt at the then market price.
* **staged liquidation** (``staged_fraction``): a crossed cohort (all positions of one leverage
  tier entered in one 0.5 % price bin — the book has no account sizes) whose notional exceeds
  ``staged_min_usd`` is liquidated by ``max(staged_fraction · notional, staged_min_usd)`` per
  step; the rest waits in the book for the next step.
* **insurance fund / backstop** (``fund_capacity_usd``): the fund takes over the long
  liquidations of a round at the round's market price, up to ``fund_capacity_usd`` of inventory
  (valued at cost), instead of selling them into the market; from ``fund_unwind_delay`` steps
  after it first absorbs, it sells ``fund_unwind_usd_per_step`` of inventory per step into the
  same impact state. Conservation (coins): absorbed = unwound + held.
* **forecast-driven maintenance margin** (``mmr_path``): the maintenance-margin rate of every
  tier per step (:func:`forecast_mmr`), raising the liquidation price of longs (and lowering
  that of shorts) when the forecast volatility rises.

The ADL rules (:func:`adl`) decide which profitable opposing positions absorb a deficit:
``queue`` ranks by profit × effective leverage (the venues' ADL ranking) and closes from the top,
``pro_rata`` closes every profitable position by the same fraction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backtest.market.cohorts import BookState, CohortParams
from backtest.market.errors import MarketConfigError

__all__ = [
    "ADL_RULES",
    "AdlResult",
    "MarketPolicy",
    "adl",
    "forecast_mmr",
    "realized_sigma",
    "sigma_ratio",
]

#: ADL rules of :func:`adl`.
ADL_RULES: tuple[str, ...] = ("queue", "pro_rata")


@dataclass(frozen=True, kw_only=True, eq=False)
class MarketPolicy:
    """One market-level policy (module docstring); the default is the status quo.

    Parameters
    ----------
    name : str
        Label stored with the results.
    breaker_drop : float, optional
        Drop from the reference price that trips the circuit breaker (fraction); ``None`` = off.
    breaker_lookback, breaker_cooldown : int
        Look-back window and halt length, in steps.
    staged_fraction : float, optional
        Fraction of a large crossed cohort liquidated per step; ``None`` = off.
    staged_min_usd : float
        Notional (USD) up to which a crossed cohort is liquidated at once.
    fund_capacity_usd : float
        Inventory (USD at cost) the insurance fund / backstop can hold; 0 = off.
    fund_unwind_usd_per_step : float
        USD of inventory the fund sells per step once unwinding.
    fund_unwind_delay : int
        Steps after the first absorption before the fund starts unwinding.
    mmr_path : numpy.ndarray, optional
        Maintenance-margin rate per step and tier ``(n_steps, n_tiers)``; ``None`` = the book's.
    """

    name: str = "status_quo"
    breaker_drop: float | None = None
    breaker_lookback: int = 1
    breaker_cooldown: int = 1
    staged_fraction: float | None = None
    staged_min_usd: float = 0.0
    fund_capacity_usd: float = 0.0
    fund_unwind_usd_per_step: float = 0.0
    fund_unwind_delay: int = 0
    mmr_path: np.ndarray | None = None

    def __post_init__(self) -> None:
        bad = []
        if self.breaker_drop is not None and not 0 < self.breaker_drop < 1:
            bad.append(f"breaker_drop={self.breaker_drop!r} must be in (0, 1)")
        if self.breaker_lookback < 1 or self.breaker_cooldown < 1:
            bad.append("breaker_lookback and breaker_cooldown must be >= 1 step")
        if self.staged_fraction is not None and not 0 < self.staged_fraction <= 1:
            bad.append(f"staged_fraction={self.staged_fraction!r} must be in (0, 1]")
        if self.staged_min_usd < 0 or self.fund_capacity_usd < 0:
            bad.append("staged_min_usd and fund_capacity_usd must be >= 0")
        if self.fund_unwind_usd_per_step < 0 or self.fund_unwind_delay < 0:
            bad.append("fund_unwind_usd_per_step and fund_unwind_delay must be >= 0")
        if bad:
            raise MarketConfigError(f"market policy {self.name!r}: " + "; ".join(bad))

    def params(self) -> dict[str, object]:
        """The switched-on parameters (JSON-ready; the MMR path is summarised)."""
        out: dict[str, object] = {}
        if self.breaker_drop is not None:
            out |= {
                "drop": self.breaker_drop,
                "lookback_steps": self.breaker_lookback,
                "cooldown_steps": self.breaker_cooldown,
            }
        if self.staged_fraction is not None:
            out |= {"fraction_per_step": self.staged_fraction, "min_usd": self.staged_min_usd}
        if self.fund_capacity_usd > 0:
            out |= {
                "capacity_usd": self.fund_capacity_usd,
                "unwind_usd_per_step": self.fund_unwind_usd_per_step,
                "unwind_delay_steps": self.fund_unwind_delay,
            }
        if self.mmr_path is not None:
            m = np.asarray(self.mmr_path)
            out |= {"mmr_min": float(m.min()), "mmr_max": float(m.max())}
        return out


def realized_sigma(close: np.ndarray, window: int, *, future: bool = False) -> np.ndarray:
    """Realized volatility of the log returns over ``window`` steps, per step.

    ``future=False`` (lagged): at step ``i`` the returns ending at closes ``i − window .. i − 1``
    (nothing at or after step ``i``); ``future=True`` (oracle): the returns of steps
    ``i .. i + window − 1``. NaN where the window is incomplete.
    """
    c = np.asarray(close, dtype=float)
    r = np.diff(np.log(c), prepend=np.nan)  # r[i] ends at close i
    r2 = np.where(np.isfinite(r), r * r, np.nan)
    n = len(c)
    out = np.full(n, np.nan)
    for i in range(n):
        lo, hi = (i, i + window) if future else (i - window, i)
        if lo < 1 or hi > n:
            continue
        out[i] = float(np.sqrt(np.sum(r2[lo:hi])))
    return out


def sigma_ratio(sigma: np.ndarray, lead_in: np.ndarray) -> np.ndarray:
    """``σ_t / median(σ over the lead-in)`` (NaN-robust; 1 where σ is missing)."""
    ref = float(np.nanmedian(np.asarray(lead_in, dtype=float)))
    if not np.isfinite(ref) or ref <= 0:
        raise MarketConfigError("the lead-in has no finite positive volatility to scale by")
    r = np.asarray(sigma, dtype=float) / ref
    return np.where(np.isfinite(r), r, 1.0)


def forecast_mmr(ratio: np.ndarray, params: CohortParams, *, cap_share: float = 0.5) -> np.ndarray:
    """Maintenance margin per step and tier, raised with a volatility ratio.

    ``mmr_t,L = min(mmr · max(1, ratio_t), cap_share / L)``: the book's rate whenever the
    forecast volatility is at or below its lead-in median, proportional to it above, and never
    more than ``cap_share`` of a tier's initial margin (so no position is liquidated at entry).

    Parameters
    ----------
    ratio : numpy.ndarray
        Volatility over its reference, per step (:func:`sigma_ratio`).
    params : CohortParams
        The book's parameters (``mmr``, ``tiers``).
    cap_share : float
        Largest rate as a share of ``1 / L``.

    Returns
    -------
    numpy.ndarray
        ``(n_steps, n_tiers)``.
    """
    if not 0 < cap_share < 1:
        raise MarketConfigError(f"cap_share={cap_share!r} must be in (0, 1)")
    r = np.maximum(np.asarray(ratio, dtype=float), 1.0)
    cap = np.maximum(cap_share / np.asarray(params.tiers), params.mmr)
    return np.minimum(params.mmr * r[:, None], cap[None, :])


@dataclass(frozen=True)
class AdlResult:
    """Who an ADL rule deleverages.

    Attributes
    ----------
    rule : str
        ``queue`` or ``pro_rata``.
    amount_usd : float
        Notional deleveraged (at the ADL price), at most the eligible notional.
    eligible_usd : float
        Notional of the profitable opposing positions.
    closed : numpy.ndarray
        Notional closed per (tier, entry bin), USD.
    cohorts_hit : int
        Cohorts with anything closed.
    high_lev_share : float
        Share of the amount closed on tiers ``>= 20``.
    mean_leverage : float
        Notional-weighted leverage tier of what is closed.
    max_cohort_fraction : float
        Largest fraction of one cohort closed.
    mean_profit : float
        Notional-weighted profit on margin of what is closed.
    """

    rule: str
    amount_usd: float
    eligible_usd: float
    closed: np.ndarray
    cohorts_hit: int
    high_lev_share: float
    mean_leverage: float
    max_cohort_fraction: float
    mean_profit: float


def adl(
    book: BookState,
    params: CohortParams,
    price: float,
    amount_usd: float,
    rule: str,
    *,
    side: str = "short",
) -> AdlResult:
    """Deleverage ``amount_usd`` of profitable ``side`` positions at ``price`` by an ADL rule.

    A short of tier ``L`` entered at ``e`` is profitable when ``price < e``; its profit on margin
    is ``(e − p) / (e / L)`` and its effective leverage ``p / (e / L + e − p)`` (a long
    mirrors it). ``queue`` closes cohorts in decreasing order of profit × effective leverage
    until the amount is reached (the last one partly); ``pro_rata`` closes the same fraction of
    every profitable cohort. Notional is coins × ``price`` × ``levered_share``.

    Parameters
    ----------
    book : BookState
        Unit-scale book at the ADL time.
    params : CohortParams
        Its parameters.
    price : float
        ADL (mark) price.
    amount_usd : float
        Notional to deleverage.
    rule : str
        One of :data:`ADL_RULES`.
    side : str
        ``short`` (a long squeeze's deficit) or ``long``.

    Returns
    -------
    AdlResult
    """
    if rule not in ADL_RULES:
        raise MarketConfigError(f"unknown ADL rule {rule!r}; known: {', '.join(ADL_RULES)}")
    if side not in ("short", "long"):
        raise MarketConfigError(f"side={side!r} must be 'short' or 'long'")
    if not (price > 0 and amount_usd >= 0):
        raise MarketConfigError(f"price={price!r} must be > 0 and amount_usd={amount_usd!r} >= 0")
    e = book.grid.prices[None, :]
    lev = np.asarray(params.tiers, dtype=float)[:, None]
    coins = book.short if side == "short" else book.long
    gain = (e - price) if side == "short" else (price - e)
    margin = e / lev
    profit = gain / margin
    eff_lev = price / (margin + gain)
    notional = coins * price * params.levered_share
    ok = (gain > 0) & (notional > 0)
    eligible = float(notional[ok].sum())
    amount = min(amount_usd, eligible)
    closed = np.zeros_like(notional)
    if amount > 0:
        if rule == "pro_rata":
            closed[ok] = notional[ok] * (amount / eligible)
        else:
            rank = np.where(ok, profit * eff_lev, -np.inf).ravel()
            order = np.argsort(-rank, kind="stable")
            flat = notional.ravel()
            left = amount
            out = closed.ravel()
            for j in order:
                if left <= 0 or not np.isfinite(rank[j]):
                    break
                take = min(flat[j], left)
                out[j] = take
                left -= take
            closed = out.reshape(notional.shape)
    hit = closed > 0
    total = float(closed.sum())
    lev_b = np.broadcast_to(lev, closed.shape)
    return AdlResult(
        rule=rule,
        amount_usd=total,
        eligible_usd=eligible,
        closed=closed,
        cohorts_hit=int(hit.sum()),
        high_lev_share=float(closed[lev_b >= 20].sum() / total) if total else 0.0,
        mean_leverage=float((closed * lev_b).sum() / total) if total else 0.0,
        max_cohort_fraction=float(np.max(closed[hit] / notional[hit])) if hit.any() else 0.0,
        mean_profit=float((closed * np.where(ok, profit, 0.0)).sum() / total) if total else 0.0,
    )
