"""``amm_bands``: soft liquidation through price bands (crvUSD's LLAMMA, simplified)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from backtest.errors import PolicyConfigError
from backtest.policies.base import (
    BoundRuntime,
    Env,
    Policy,
    Runtime,
    check_bonus,
    check_fraction,
    check_int,
    sell_to_market,
)

__all__ = ["AmmBands", "converted_fraction"]

#: Relative level move below which a conversion is skipped (ends the rounds of a step).
_EPS = 1e-9


def converted_fraction(level: np.ndarray, top: np.ndarray, a: float, n_bands: int) -> np.ndarray:
    """Share of a position's band collateral converted when the market is at ``level``.

    Band ``k = 0..N−1`` spans ``[top·r^(k+1), top·r^k]`` with ``r = (A−1)/A`` and holds ``1/N``
    of the collateral; inside a band the conversion is linear in price. So with ``k`` whole
    bands crossed and ``level`` in band ``k``:
    ``F = (k + (1 − level/(top·r^k)) / (1 − r)) / N``, clipped to ``[0, 1]``.

    Parameters
    ----------
    level, top : numpy.ndarray
        Price level reached and the top of the bands (the position's liquidation price at entry).
    a : float
        Band width parameter ``A`` (band width ``1/A``).
    n_bands : int
        ``N``.

    Returns
    -------
    numpy.ndarray
    """
    r = (a - 1.0) / a
    ratio = np.minimum(level / top, 1.0)
    u = np.log(ratio) / math.log(r)  # bands crossed (continuous, in log price)
    k = np.floor(u + 1e-12)
    inside = (1.0 - ratio / r**k) / (1.0 - r)
    f = (k + np.clip(inside, 0.0, 1.0)) / n_bands
    return np.clip(f, 0.0, 1.0)


@dataclass(frozen=True, kw_only=True)
class AmmBands(Policy):
    """Soft liquidation: the collateral is spread over ``n_bands`` price bands below the position.

    A position whose liquidation price ``L = d/(c·LT)`` is crossed enters soft liquidation with
    its bands fixed: ``N`` bands of width ratio ``r = (A−1)/A`` from ``top = L`` down to
    ``L·r^N``, each holding ``1/N`` of its collateral ``c0`` at entry
    (:func:`converted_fraction`). At every round, with the market at ``p``:

    * **down**: when ``p`` is below the level reached so far, arbitrageurs convert the crossed
      part of the bands (``c0·ΔF`` units) into the debt asset ``x`` held in the bands. They
      pay ``p·(1 − fee)`` per unit — the band price, capped by the market (an arbitrageur pays
      no more than the market) — and sell the units on the market at ``p`` (the round's sales:
      they move the impact model). ``fee·p`` per unit is their edge and the borrower's
      conversion loss.
    * **up** (recovery, first round of a step): when ``p`` is above the level, the converted
      part above ``p`` is converted back with the bands' ``x``: arbitrageurs buy the units on
      the market (not fed to the impact model, which has no buy side) and sell them to the
      bands at ``p·(1 + fee)``. A round trip leaves the borrower with less collateral; the
      debt never grows.
    * **hard liquidation**: when health falls below zero — ``c·p + x < d·(1 + bonus)``, the
      position's collateral and debt asset no longer cover its debt plus the liquidation
      bonus — ``x`` repays debt and the rest is closed as by
      :class:`~backtest.policies.instant.Instant` (whole, the book's bonus, sold at market;
      uncovered debt is bad debt).

    Positions stay in soft liquidation (bands fixed) until hard-liquidated; at the end of the
    path the ``x`` still in the bands repays their debt (the excess is the borrower's), so the
    end-of-window losses see the net debt.

    Parameters
    ----------
    A : float, optional
        Band width parameter: band ``k`` spans prices ``top·r^(k+1)..top·r^k``, ``r = (A−1)/A``
        (crvUSD: ``A = 100``, 1 % bands).
    n_bands : int, optional
        ``N`` (crvUSD lets borrowers choose 4–50; assumption: 10).
    fee : float, optional
        Arbitrageur's edge per conversion (assumption: 0.6 %).
    bonus : float, optional
        Hard-liquidation bonus overriding the book's.
    """

    name: ClassVar[str] = "amm_bands"
    A: float = 100.0
    n_bands: int = 10
    fee: float = 0.006
    bonus: float | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.A, int | float) and self.A > 1.0 and math.isfinite(self.A)):
            raise PolicyConfigError(f"amm_bands.A={self.A!r} must be a finite number > 1")
        check_int("amm_bands", "n_bands", self.n_bands, low=1)
        check_fraction("amm_bands", "fee", self.fee, high=0.5)
        check_bonus("amm_bands", self.bonus)

    def start(self, env: Env) -> Runtime:
        """Create the run state."""
        return _AmmRuntime(self, env)


class _AmmRuntime(BoundRuntime):
    def __init__(self, cfg: AmmBands, env: Env) -> None:
        super().__init__(cfg, env)
        self.idx = np.empty(0, dtype=np.int64)
        self.top = np.empty(0)
        self.c0 = np.empty(0)
        self.level = np.empty(0)
        self.x = np.empty(0)  # debt asset held in the bands (USD)
        self.bottom_ratio = ((cfg.A - 1.0) / cfg.A) ** cfg.n_bands

    def needs_step(self, t: int) -> bool:
        return self.idx.size > 0

    def _enter(self, new: np.ndarray) -> None:
        led = self.ledger
        c, d, lt = led.c[new], led.d[new], led.lt[new]
        with np.errstate(divide="ignore", invalid="ignore"):
            top = np.where(c > 0, d / (c * lt), math.inf)
        self.idx = np.concatenate([self.idx, new])
        self.top = np.concatenate([self.top, top])
        self.c0 = np.concatenate([self.c0, c])
        self.level = np.concatenate([self.level, top])
        self.x = np.concatenate([self.x, np.zeros(new.size)])

    def _keep(self, keep: np.ndarray) -> None:
        self.idx, self.top = self.idx[keep], self.top[keep]
        self.c0, self.level, self.x = self.c0[keep], self.level[keep], self.x[keep]

    def _edge(self, units: np.ndarray, p: float) -> None:
        """The arbitrageurs' edge ``fee·p`` per unit: their profit, the borrowers' loss."""
        edge = self.cfg.fee * p * float(units.sum())
        self.ledger.liquidator_profit_usd += edge
        self.ledger.borrower_loss_usd += edge

    def _convert(self, r: int, p: float) -> tuple[int, float]:
        cfg, led = self.cfg, self.ledger
        finite = np.isfinite(self.top)
        target = np.where(finite, np.clip(p, self.top * self.bottom_ratio, self.top), 0.0)
        acted, sold = 0, 0.0
        down = np.flatnonzero(finite & (target < self.level * (1.0 - _EPS)))
        if down.size:
            f_old = converted_fraction(self.level[down], self.top[down], cfg.A, cfg.n_bands)
            f_new = converted_fraction(target[down], self.top[down], cfg.A, cfg.n_bands)
            ids = self.idx[down]
            units = np.minimum(self.c0[down] * (f_new - f_old), led.c[ids])
            ok = units > 0
            if ok.any():
                sold += led.convert(ids[ok], units[ok], p)
                self.x[down[ok]] += units[ok] * p * (1.0 - cfg.fee)
                self._edge(units[ok], p)
                acted += int(ok.sum())
            self.level[down] = target[down]
        if r == 0:
            up = np.flatnonzero(finite & (target > self.level * (1.0 + _EPS)))
            if up.size:
                f_old = converted_fraction(self.level[up], self.top[up], cfg.A, cfg.n_bands)
                f_new = converted_fraction(target[up], self.top[up], cfg.A, cfg.n_bands)
                price = p * (1.0 + cfg.fee)
                units = np.minimum(self.c0[up] * (f_old - f_new), self.x[up] / price)
                ok = units > 0
                if ok.any():
                    led.convert(self.idx[up[ok]], -units[ok], p)
                    self.x[up[ok]] = np.maximum(self.x[up[ok]] - units[ok] * price, 0.0)
                    self._edge(units[ok], p)
                    acted += int(ok.sum())
                self.level[up] = target[up]
        return acted, sold

    def _hard(self, p: float) -> tuple[int, float]:
        led = self.ledger
        c, d = led.c[self.idx], led.d[self.idx]
        one_b = led.one_b[self.idx] if self.cfg.bonus is None else 1.0 + self.cfg.bonus
        hard = (d > 0.0) & (c * p + self.x < d * one_b)
        if not hard.any():
            return 0, 0.0
        ids = self.idx[hard]
        led.repay_from(ids, self.x[hard])
        rest = ids[led.d[ids] > 0.0]
        sold = 0.0
        if rest.size:
            liq = led.liquidate(rest, p, None, self.cfg.bonus)
            sold = sell_to_market(led, liq, p)
        self._keep(~hard)
        return int(hard.sum()), sold

    def round(self, t: int, r: int, p: float) -> tuple[int, float]:
        new = self.pool.pop(p)
        if new.size:
            self._enter(new)
        if self.idx.size == 0:
            return 0, 0.0
        acted, sold = self._convert(r, p)
        n_hard, sold_hard = self._hard(p)
        return acted + n_hard + int(new.size), sold + sold_hard

    def finish(self, p_final: float) -> tuple[float, float]:
        """Net the debt asset still in the bands against the positions' debt."""
        if self.idx.size:
            self.ledger.repay_from(self.idx, self.x)
        return 0.0, 0.0
