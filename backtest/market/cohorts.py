"""A leverage-book estimator for derivatives venues: cohorts opened from open interest.

The book of one asset on a set of venues is a grid of *cohorts*: levered longs and shorts by
entry price (a log-price grid of width ``grid_step``) and leverage tier ``L``. Per step (a bar
with ``low``, ``high``, ``close``, the venues' open interest ``OI`` in coins and the 8-hour
funding rate):

1. **Liquidation.** A long of leverage ``L`` entered at ``e`` is liquidated when the bar's low
   reaches ``e · (1 − 1/L + mmr)``; a short when the high reaches ``e · (1 + 1/L − mmr)``
   (REFERENCES: "Derivatives venues liquidate when the mark price crosses ..."). The reported
   liquidation notional is the cohort's size times its liquidation price.
2. **Turnover.** A fraction ``1 − exp(−τ_L · dt)`` of every cohort of tier ``L`` closes (positions
   closed voluntarily and re-opened in step 4 at the prevailing price), with
   ``τ_L = turnover_per_day · (L / 10) ** turnover_lev_exp``: high leverage is short-lived.
3. **Closing rule.** The levered book is held at ``2 · levered_share · OI · m(f)`` (both sides,
   ``m(f) = exp(funding_lev_k · clip(f − f₀, −5, 20))``, more leverage when funding is high):
   when the book after steps 1–2 is larger, every cohort is closed *pro rata*.
4. **Opening rule.** When it is smaller, the difference is opened at the bar's close, split
   long / short by the funding rule ``long_share = 0.5 + 0.45 · tanh(funding_k · (f − f₀))``
   (``f`` the 8-hour funding rate in basis points, ``f₀`` = 1 bp, the rate's interest part: longs
   crowd in when they pay to hold), and over the tiers by a log-normal leverage mixture
   (median ``lev_median``, log-spread ``lev_spread``).
5. **Intraday re-entry** (``reentry`` = ρ, 0 by default). A share ρ of the coins liquidated in
   step 1 re-opens at once at the bar's close on the same side (over the tiers by the mixture),
   on top of the open-interest target: the target of step 3 is ``2 · levered_share · OI``
   plus the re-entered coins still standing, which relax back with a one-day time constant
   (daily open interest cannot show positions liquidated and re-opened within the day).

Every flow is homogeneous of degree one in the book, so predicted liquidations are exactly
proportional to ``levered_share``: :func:`fit_scale` solves it in closed form for any other
parameters, and :func:`backtest.market.fit.fit_cohorts` runs at unit share and scales.

The voluntary flows applied (step 2–4: a keep factor and the quantities opened per side) are
recorded, so :mod:`backtest.market.replay` can replay the book on another price path with the
same voluntary behaviour and endogenous liquidations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from backtest.market.errors import MarketConfigError, MarketInputError

__all__ = [
    "DEFAULT_TIERS",
    "BookState",
    "CohortParams",
    "CohortRun",
    "MarketSeries",
    "PriceGrid",
    "run_cohorts",
]

#: Leverage tiers offered by the large venues (isolated/cross, retail to professional).
DEFAULT_TIERS: tuple[float, ...] = (2.0, 3.0, 5.0, 10.0, 20.0, 25.0, 50.0, 100.0)


@dataclass(frozen=True, kw_only=True)
class CohortParams:
    """Parameters of the cohort model (module docstring).

    Parameters
    ----------
    levered_share : float
        Levered notional per side as a fraction of open interest (scale; see :func:`fit_scale`).
    lev_median : float
        Median leverage of newly opened positions.
    lev_spread : float
        Standard deviation of ``ln L`` of the leverage mixture over ``tiers``.
    funding_k : float
        Sensitivity of the long share to funding (per basis point of 8-hour funding).
    funding_base_bps : float
        Funding rate (bp per 8 h) at which new positions split evenly.
    turnover_per_day : float
        Rate at which positions of leverage 10 are closed and re-opened at the prevailing price
        (per day).
    turnover_lev_exp : float
        Tier ``L`` turns over at ``turnover_per_day · (L / 10) ** turnover_lev_exp``: with a
        positive exponent high-leverage positions are short-lived and low-leverage ones stay.
    funding_lev_k : float
        Levered share grows with funding: the book is held at
        ``2 · levered_share · OI · exp(funding_lev_k · clip(f − f₀, −5, 20))`` (``f`` in bp per
        8 h): when longs pay a lot to hold, more of the open interest is levered.
    mmr : float
        Maintenance-margin rate (fraction of notional).
    reentry : float
        Share ρ of liquidated coins re-opened at once on the same side (module docstring,
        step 5; 0 = none).
    tiers : tuple of float
        Leverage tiers (each > 1).
    """

    levered_share: float = 1.0
    lev_median: float = 10.0
    lev_spread: float = 0.7
    funding_k: float = 0.3
    funding_base_bps: float = 1.0
    turnover_per_day: float = 0.1
    turnover_lev_exp: float = 0.0
    funding_lev_k: float = 0.0
    mmr: float = 0.005
    reentry: float = 0.0
    tiers: tuple[float, ...] = DEFAULT_TIERS

    def __post_init__(self) -> None:
        checks = {
            "levered_share": self.levered_share > 0,
            "lev_median": self.lev_median > 1,
            "lev_spread": self.lev_spread > 0,
            "turnover_per_day": self.turnover_per_day >= 0,
            "mmr": 0 <= self.mmr < 0.5,
            "reentry": 0 <= self.reentry <= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise MarketConfigError(f"{name}={getattr(self, name)!r} is out of range")
        if not self.tiers or min(self.tiers) <= 1:
            raise MarketConfigError(f"tiers={self.tiers!r}: every leverage tier must be > 1")
        if any(1.0 / t <= self.mmr for t in self.tiers):
            raise MarketConfigError(
                f"mmr={self.mmr!r} is not below 1/L for every tier {self.tiers!r}"
            )

    def tier_weights(self) -> np.ndarray:
        """Share of new notional per tier (log-normal mixture, sums to 1)."""
        z = (np.log(np.asarray(self.tiers)) - math.log(self.lev_median)) / self.lev_spread
        w = np.exp(-0.5 * z * z)
        return w / w.sum()

    def turnover_rates(self) -> np.ndarray:
        """Turnover rate per tier (per day)."""
        return self.turnover_per_day * (np.asarray(self.tiers) / 10.0) ** self.turnover_lev_exp

    def long_share(self, funding_8h: np.ndarray | float) -> np.ndarray:
        """Long share of newly opened levered notional for an 8-hour funding rate (fraction)."""
        f_bps = np.asarray(funding_8h, dtype=float) * 1e4
        return 0.5 + 0.45 * np.tanh(self.funding_k * (f_bps - self.funding_base_bps))

    def long_factor(self) -> np.ndarray:
        """Liquidation price of a long over its entry, per tier: ``1 − 1/L + mmr``."""
        return 1.0 - 1.0 / np.asarray(self.tiers) + self.mmr

    def short_factor(self) -> np.ndarray:
        """Liquidation price of a short over its entry, per tier: ``1 + 1/L − mmr``."""
        return 1.0 + 1.0 / np.asarray(self.tiers) - self.mmr


@dataclass(frozen=True)
class PriceGrid:
    """Log-spaced entry prices ``exp(g0 + i · step)``, ``i = 0 .. n − 1``."""

    g0: float
    step: float
    n: int

    @classmethod
    def covering(cls, low: float, high: float, *, step: float = 0.005, margin: float = 0.7):
        """A grid covering ``[low · e^-margin, high · e^margin]``.

        The bins sit at fixed log prices, whole multiples of ``step`` (``g0 = k0 · step``), so
        the range only decides how far the grid reaches, never where its bins are: a series
        extended by later prices gets the same bins for the earlier ones (walk-forward: what the
        book holds at ``t`` does not depend on prices after ``t``).
        """
        if not (low > 0 and high >= low):
            raise MarketConfigError(f"price range [{low!r}, {high!r}] must be positive")
        k0 = math.floor((math.log(low) - margin) / step)
        g0 = k0 * step
        n = int(math.ceil((math.log(high) + margin - g0) / step)) + 1
        return cls(g0=g0, step=step, n=n)

    @property
    def prices(self) -> np.ndarray:
        """Entry price of every bin."""
        return np.exp(self.g0 + self.step * np.arange(self.n))

    def bin_of(self, price: float) -> int:
        """Nearest bin of a price (clipped to the grid)."""
        i = int(round((math.log(price) - self.g0) / self.step))
        return min(max(i, 0), self.n - 1)


@dataclass(frozen=True)
class MarketSeries:
    """Per-step inputs of one asset: bars, open interest (USD) and funding.

    Parameters
    ----------
    asset : str
        Asset name (for error messages).
    ts : numpy.ndarray
        Step times (``datetime64`` or numbers), strictly increasing, evenly spaced.
    low, high, close : numpy.ndarray
        Bar prices (USD), positive and finite, ``low <= close <= high``.
    oi_usd : numpy.ndarray
        Open interest of the venue set at the bar's close (USD), finite and ``>= 0``.
    funding_8h : numpy.ndarray
        8-hour funding rate (fraction) in force; NaN is read as the baseline.
    step_days : float
        Bar size in days.
    """

    asset: str
    ts: np.ndarray
    low: np.ndarray
    high: np.ndarray
    close: np.ndarray
    oi_usd: np.ndarray
    funding_8h: np.ndarray
    step_days: float

    def __post_init__(self) -> None:
        n = len(self.close)
        for name in ("ts", "low", "high", "oi_usd", "funding_8h"):
            if len(getattr(self, name)) != n:
                raise MarketInputError(
                    name, self.asset, f"has {len(getattr(self, name))} values, prices have {n}"
                )
        if n == 0:
            raise MarketInputError("prices", self.asset, "the series is empty")
        if not self.step_days > 0:
            raise MarketConfigError(f"step_days={self.step_days!r} must be > 0")
        ts = np.asarray(self.ts)
        if n > 1:
            d = np.diff(ts)
            bad = np.flatnonzero((d != d[0]) | (d <= d[0] * 0))
            if bad.size:
                i = int(bad[0]) + 1
                raise MarketInputError(
                    "prices",
                    self.asset,
                    "steps are not evenly spaced (a gap or a duplicate)",
                    index=i,
                    ts=ts[i],
                )
        for name in ("low", "high", "close"):
            v = np.asarray(getattr(self, name), dtype=float)
            bad = np.flatnonzero(~(np.isfinite(v) & (v > 0)))
            if bad.size:
                i = int(bad[0])
                raise MarketInputError(
                    "prices",
                    self.asset,
                    f"{name} price is missing or not positive",
                    index=i,
                    ts=ts[i],
                )
        oi = np.asarray(self.oi_usd, dtype=float)
        bad = np.flatnonzero(~np.isfinite(oi))
        if bad.size:
            i = int(bad[0])
            raise MarketInputError(
                "open_interest",
                self.asset,
                "open interest is missing (fill or shorten the range)",
                index=i,
                ts=ts[i],
            )
        bad = np.flatnonzero(oi < 0)
        if bad.size:
            i = int(bad[0])
            raise MarketInputError(
                "open_interest", self.asset, f"negative open interest {oi[i]!r}", index=i, ts=ts[i]
            )

    def __len__(self) -> int:
        return len(self.close)

    def slice(self, start: int, stop: int) -> MarketSeries:
        """Steps ``[start, stop)``."""
        s = slice(start, stop)
        return replace(
            self,
            ts=self.ts[s],
            low=self.low[s],
            high=self.high[s],
            close=self.close[s],
            oi_usd=self.oi_usd[s],
            funding_8h=self.funding_8h[s],
        )


@dataclass
class BookState:
    """Levered coin quantities per (tier, entry bin): ``long`` and ``short`` (unit scale)."""

    grid: PriceGrid
    long: np.ndarray
    short: np.ndarray

    @classmethod
    def empty(cls, grid: PriceGrid, n_tiers: int) -> BookState:
        """A book with no position."""
        return cls(grid, np.zeros((n_tiers, grid.n)), np.zeros((n_tiers, grid.n)))

    def copy(self) -> BookState:
        """An independent copy."""
        return BookState(self.grid, self.long.copy(), self.short.copy())

    def tilted(self, long_mult: float, short_mult: float) -> BookState:
        """A copy with every long times ``long_mult`` and every short times ``short_mult``."""
        if not (long_mult > 0 and short_mult > 0):
            raise MarketConfigError(f"side multipliers {long_mult!r}, {short_mult!r} must be > 0")
        return BookState(self.grid, self.long * long_mult, self.short * short_mult)

    def notional(self, price: float) -> tuple[float, float]:
        """Levered long and short notional (USD, unit scale) at ``price``."""
        return float(self.long.sum() * price), float(self.short.sum() * price)


@dataclass(frozen=True)
class CohortRun:
    """What a run of the cohort model produced (scaled by ``params.levered_share``).

    Attributes
    ----------
    params : CohortParams
    liq_long_usd, liq_short_usd : numpy.ndarray
        Predicted liquidation notional per step.
    long_usd, short_usd : numpy.ndarray
        Levered notional at each step's close.
    keep : numpy.ndarray
        Voluntary keep factor per step and tier, ``(n_steps, n_tiers)`` (turnover × pro-rata
        closing).
    open_long, open_short : numpy.ndarray
        Coins opened per step and side (unit scale).
    snapshots : dict
        Step index → :class:`BookState` *before* that step (unit scale), as requested.
    final : BookState
        The book after the last step (unit scale).
    """

    params: CohortParams
    liq_long_usd: np.ndarray
    liq_short_usd: np.ndarray
    long_usd: np.ndarray
    short_usd: np.ndarray
    keep: np.ndarray
    open_long: np.ndarray
    open_short: np.ndarray
    snapshots: dict[int, BookState] = field(default_factory=dict)
    final: BookState | None = None


class _Liquidator:
    """Liquidation of a :class:`BookState` at a bar's low/high, per tier as a contiguous slice.

    The book's arrays are raw quantities times a lazy ``scale`` (a keep factor multiplies the
    scale, not the arrays); ``hi_long[t]`` is one past the highest bin holding a long of tier
    ``t`` and ``lo_short[t]`` the lowest bin holding a short, so a quiet bar costs O(tiers).
    """

    def __init__(self, params: CohortParams, grid: PriceGrid) -> None:
        self.grid = grid
        self.lf = np.log(params.long_factor())
        self.sf = np.log(params.short_factor())
        px = grid.prices
        self.lp_long = np.outer(params.long_factor(), px)
        self.lp_short = np.outer(params.short_factor(), px)
        self.n_tiers = len(params.tiers)

    def long_cut(self, low: float | np.ndarray) -> np.ndarray:
        """First liquidated bin per tier for a low price (per step and tier for an array)."""
        lg = np.log(np.asarray(low, dtype=float))[..., None]
        x = (lg - self.lf - self.grid.g0) / self.grid.step
        out = np.clip(np.ceil(x - 1e-9), 0, self.grid.n).astype(np.int64)
        return out

    def short_cut(self, high: float | np.ndarray) -> np.ndarray:
        """One past the last liquidated bin per tier for a high price (per step for an array)."""
        lg = np.log(np.asarray(high, dtype=float))[..., None]
        x = (lg - self.sf - self.grid.g0) / self.grid.step
        out = np.clip(np.floor(x + 1e-9) + 1, 0, self.grid.n).astype(np.int64)
        return out

    def bounds(self, book: BookState) -> tuple[list[int], list[int]]:
        """``hi_long`` and ``lo_short`` of a book (see the class docstring)."""
        hi, lo = [], []
        for t in range(self.n_tiers):
            nz = np.flatnonzero(book.long[t])
            hi.append(int(nz[-1]) + 1 if nz.size else 0)
            nz = np.flatnonzero(book.short[t])
            lo.append(int(nz[0]) if nz.size else self.grid.n)
        return hi, lo

    def liquidate(
        self,
        book: BookState,
        low: float,
        high: float,
        hi: list[int],
        lo: list[int],
        scale: list[float] | None = None,
        cuts: tuple[list[int], list[int]] | None = None,
    ) -> tuple[float, float, list[float], list[float]]:
        """Remove the crossed cohorts.

        Parameters
        ----------
        book : BookState
            Raw quantities (times ``scale[t]`` per tier; 1 by default).
        low, high : float
            The bar's extremes.
        hi, lo : list of int
            Occupied-bin bounds; updated in place.
        scale : list of float, optional
            Lazy per-tier multipliers of the raw arrays.
        cuts : tuple of list of int, optional
            :meth:`long_cut` of ``low`` and :meth:`short_cut` of ``high``, precomputed.

        Returns
        -------
        (float, float, list of float, list of float)
            Liquidated long and short notional (scaled) and raw coins per tier and side.
        """
        ll = ls = 0.0
        ql = [0.0] * self.n_tiers
        qs = [0.0] * self.n_tiers
        cut = self.long_cut(low).tolist() if cuts is None else cuts[0]
        for t in range(self.n_tiers):
            k = cut[t]
            if k < hi[t]:
                seg = book.long[t, k : hi[t]]
                ql[t] = float(seg.sum())
                ll += float(seg @ self.lp_long[t, k : hi[t]]) * (scale[t] if scale else 1.0)
                seg[:] = 0.0
                hi[t] = k
        cut = self.short_cut(high).tolist() if cuts is None else cuts[1]
        for t in range(self.n_tiers):
            k = cut[t]
            if k > lo[t]:
                seg = book.short[t, lo[t] : k]
                qs[t] = float(seg.sum())
                ls += float(seg @ self.lp_short[t, lo[t] : k]) * (scale[t] if scale else 1.0)
                seg[:] = 0.0
                lo[t] = k
        return ll, ls, ql, qs


def _scaled(book: BookState, scale: np.ndarray) -> BookState:
    out = book.copy()
    out.long *= scale[:, None]
    out.short *= scale[:, None]
    return out


def run_cohorts(
    series: MarketSeries,
    params: CohortParams,
    *,
    grid: PriceGrid | None = None,
    snapshot_at: tuple[int, ...] = (),
    initial: BookState | None = None,
) -> CohortRun:
    """Run the cohort model over a series (module docstring).

    Parameters
    ----------
    series : MarketSeries
        Bars, open interest and funding of one asset.
    params : CohortParams
        Model parameters.
    grid : PriceGrid, optional
        Entry-price grid; by default one covering the series with a factor-2 margin.
    snapshot_at : tuple of int
        Steps before which to keep a copy of the book (for replays and Greeks).
    initial : BookState, optional
        Book at the start (unit scale); by default the first step's open interest, opened at
        the first close.

    Returns
    -------
    CohortRun
    """
    n = len(series)
    if grid is None:
        grid = PriceGrid.covering(float(np.min(series.low)), float(np.max(series.high)))
    liq = _Liquidator(params, grid)
    w = params.tier_weights()
    share = params.long_share(np.nan_to_num(series.funding_8h, nan=params.funding_base_bps / 1e4))
    oi_coin = np.asarray(series.oi_usd, dtype=float) / np.asarray(series.close, dtype=float)
    tiers = np.asarray(params.tiers)
    turn_keep = np.exp(-params.turnover_rates() * series.step_days)
    book = initial.copy() if initial is not None else BookState.empty(grid, len(tiers))
    if initial is None:
        b = grid.bin_of(float(series.close[0]))
        book.long[:, b] += w * oi_coin[0]
        book.short[:, b] += w * oi_coin[0]
    out = {k: np.zeros(n) for k in ("ll", "ls", "lu", "su", "keep", "ol", "os")}
    keeps = np.ones((n, len(tiers)))
    want = set(snapshot_at)
    snaps: dict[int, BookState] = {}
    low, high, close = series.low.tolist(), series.high.tolist(), series.close.tolist()
    rho, relax = params.reentry, math.exp(-series.step_days)
    extra = 0.0  # re-entered coins still counted on top of the target (step 5)
    hi, lo = liq.bounds(book)
    scale = np.ones(len(tiers))  # book = scale[t] · raw arrays of tier t
    tot_l, tot_s = book.long.sum(axis=1), book.short.sum(axis=1)  # raw, per tier
    f_bps = np.nan_to_num(series.funding_8h, nan=params.funding_base_bps / 1e4) * 1e4
    lev_mult = np.exp(params.funding_lev_k * np.clip(f_bps - params.funding_base_bps, -5, 20))
    oi_list, share_list = (oi_coin * lev_mult).tolist(), share.tolist()
    long_cuts = liq.long_cut(np.asarray(series.low, dtype=float)).tolist()
    short_cuts = liq.short_cut(np.asarray(series.high, dtype=float)).tolist()
    bins = (
        np.clip(
            np.rint((np.log(np.asarray(series.close, dtype=float)) - grid.g0) / grid.step),
            0,
            grid.n - 1,
        )
        .astype(np.int64)
        .tolist()
    )
    for i in range(n):
        if i in want:
            snaps[i] = _scaled(book, scale)
        ll, ls, ql, qs = liq.liquidate(
            book, low[i], high[i], hi, lo, scale.tolist(), (long_cuts[i], short_cuts[i])
        )
        out["ll"][i], out["ls"][i] = ll, ls
        tot_l = np.maximum(tot_l - ql, 0.0)
        tot_s = np.maximum(tot_s - qs, 0.0)
        target = 2.0 * oi_list[i]
        re_l = re_s = 0.0
        if rho > 0:
            re_l = rho * float(np.asarray(ql) @ scale)
            re_s = rho * float(np.asarray(qs) @ scale)
            extra = extra * relax + re_l + re_s
            target += extra
            if re_l + re_s > 0:
                b = bins[i]
                add_l, add_s = w * re_l / scale, w * re_s / scale
                book.long[:, b] += add_l
                book.short[:, b] += add_s
                tot_l, tot_s = tot_l + add_l, tot_s + add_s
                for t in range(len(hi)):
                    hi[t], lo[t] = max(hi[t], b + 1), min(lo[t], b)
        per_tier = (tot_l + tot_s) * scale
        kept = float(per_tier @ turn_keep)
        keep = turn_keep
        if kept > target:
            keep = turn_keep * (target / kept)
        scale = scale * keep
        keeps[i] = keep
        gap = target - float((tot_l + tot_s) @ scale)
        c = close[i]
        if gap > 0:
            b = bins[i]
            sh = share_list[i]
            add_l, add_s = w * (gap * sh) / scale, w * (gap * (1.0 - sh)) / scale
            book.long[:, b] += add_l
            book.short[:, b] += add_s
            tot_l = tot_l + add_l
            tot_s = tot_s + add_s
            for t in range(len(hi)):
                if b + 1 > hi[t]:
                    hi[t] = b + 1
                if b < lo[t]:
                    lo[t] = b
            out["ol"][i], out["os"][i] = gap * sh, gap * (1.0 - sh)
        out["ol"][i] += re_l
        out["os"][i] += re_s
        if scale.min() < 1e-150:
            book = _scaled(book, scale)
            tot_l, tot_s, scale = tot_l * scale, tot_s * scale, np.ones(len(tiers))
        out["lu"][i] = float(tot_l @ scale) * c
        out["su"][i] = float(tot_s @ scale) * c
    book = _scaled(book, scale)
    a = params.levered_share
    return CohortRun(
        params=params,
        liq_long_usd=out["ll"] * a,
        liq_short_usd=out["ls"] * a,
        long_usd=out["lu"] * a,
        short_usd=out["su"] * a,
        keep=keeps,
        open_long=out["ol"],
        open_short=out["os"],
        snapshots=snaps,
        final=book,
    )
