"""Liquidators as agents: keepers with capital, a required margin and gas costs.

A :class:`KeeperMarket` holds a finite set of :class:`Keeper` s and the event's gas series
(:class:`GasSeries`, percentiles of the gas price per 10-minute window). Any auction mechanism
asks it, for one keeper at one time, what an action costs and how long it takes to be mined
(:meth:`KeeperMarket.action`); the keeper acts only when its expected profit covers the gas
(:meth:`KeeperMarket.worth_acting`) and it has the capital.

Gas price of an action
    The keeper prices gas from the **previous** 10-minute window (it cannot see the window it is
    in): it draws a percentile ``q ~ U(q_low, q_high)`` (seeded) and pays the gas price of that
    percentile, capped at its own ``gas_cap_gwei``. The cost in DAI is
    ``gas_units × gwei × 1e-9 × ETH price``.

Congestion delay (inclusion rule)
    The paid price is ranked in the **current** window's distribution (linear interpolation
    between the points ``(0, 0), (0.3, p30), (0.6, p60), (0.9, p90), (1, p100)``); with rank
    ``ρ`` the transaction is mined after ``block_seconds · (1 − ρ) / max(ρ, rho_floor)``
    seconds. A transaction priced at the median waits one block; one priced at the 1st
    percentile waits 99 blocks (≈ 21 min). The delay grows with congestion in two ways: when
    the gas distribution rises within the hour the lagged price falls behind it, and when it
    rises above a keeper's cap the keeper's rank collapses. A keeper's transactions are mined in
    the order it sent them (account nonces): one stuck transaction holds back its later ones.

Everything random takes a seed: the same keepers, gas series and seed give the same actions.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "GAS_LEVELS",
    "Action",
    "GasSeries",
    "Keeper",
    "KeeperMarket",
    "KeeperRules",
    "draw_keepers",
]

#: Quantile of each gas column of :class:`GasSeries` (p30, p60, p90, p100).
GAS_LEVELS = (0.3, 0.6, 0.9, 1.0)
_QS = (0.0, *GAS_LEVELS)
_DRAWS = 4096  # uniforms drawn per refill


@dataclass(frozen=True)
class GasSeries:
    """Gas-price percentiles per window.

    Parameters
    ----------
    t : numpy.ndarray
        Window start, seconds (any origin shared with the auction clock), increasing.
    gwei : numpy.ndarray
        Shape ``(len(t), 4)``: the p30, p60, p90 and p100 gas prices (gwei) of each window.
    window_seconds : float, optional
        Window length (600 s for the mirror's 10-minute series).

    Notes
    -----
    Before the first window the first applies; after the last window the last one is carried
    forward (the mirror's Black Thursday series covers 2020-03-12 only).
    """

    t: np.ndarray
    gwei: np.ndarray
    window_seconds: float = 600.0

    def __post_init__(self) -> None:
        t = np.asarray(self.t, dtype=np.float64)
        g = np.asarray(self.gwei, dtype=np.float64)
        if t.ndim != 1 or t.size == 0:
            raise ValueError("GasSeries.t must be a non-empty 1-D array")
        if g.shape != (t.size, len(GAS_LEVELS)):
            raise ValueError(f"GasSeries.gwei must have shape ({t.size}, {len(GAS_LEVELS)})")
        if np.any(np.diff(t) <= 0):
            raise ValueError("GasSeries.t must be strictly increasing")
        if not np.all(np.isfinite(g)) or np.any(g < 0) or np.any(np.diff(g, axis=1) < 0):
            raise ValueError("GasSeries.gwei must be finite, >= 0 and increasing along percentiles")
        object.__setattr__(self, "t", t)
        object.__setattr__(self, "gwei", g)
        object.__setattr__(self, "_t", t.tolist())
        object.__setattr__(self, "_rows", [(0.0, *map(float, r)) for r in g])

    def _xs(self, t: float) -> tuple[float, ...]:
        i = bisect.bisect_right(self._t, t) - 1
        return self._rows[min(max(i, 0), len(self._rows) - 1)]

    def row(self, t: float) -> np.ndarray:
        """Percentiles of the window containing ``t`` (clamped to the series)."""
        return np.array(self._xs(t)[1:])

    def price(self, t: float, q: float) -> float:
        """Gas price (gwei) at quantile ``q`` of the window containing ``t``."""
        xs = self._xs(t)
        q = min(max(q, 0.0), 1.0)
        j = max(1, bisect.bisect_left(_QS, q))  # _QS[j-1] < q <= _QS[j]
        w = (q - _QS[j - 1]) / (_QS[j] - _QS[j - 1])
        return xs[j - 1] + w * (xs[j] - xs[j - 1])

    def rank(self, t: float, gwei: float) -> float:
        """Quantile of ``gwei`` in the window containing ``t`` (0..1).

        Where several percentiles share a price, the highest quantile at that price is used.
        """
        xs = self._xs(t)
        if gwei >= xs[-1]:
            return 1.0
        j = bisect.bisect_right(xs, gwei)  # xs[j-1] <= gwei < xs[j]
        lo, hi = xs[j - 1], xs[j]
        w = (gwei - lo) / (hi - lo)
        return _QS[j - 1] + w * (_QS[j] - _QS[j - 1])


@dataclass(frozen=True)
class Keeper:
    """One liquidator.

    Parameters
    ----------
    name : str
        Label.
    capital_dai : float
        DAI it can commit to bids at the start (locked while it is the high bidder, returned
        when outbid, replaced by the resale of the lot when it wins).
    margin : float
        Required profit as a fraction of the lot's market value (resale slippage, price risk).
    gas_cap_gwei : float
        Highest gas price it pays (``inf``: no cap).
    poll_seconds : float
        Seconds between two looks at an auction (reaction time).
    """

    name: str
    capital_dai: float
    margin: float
    gas_cap_gwei: float = math.inf
    poll_seconds: float = 60.0

    def __post_init__(self) -> None:
        if not self.capital_dai >= 0:
            raise ValueError(f"keeper {self.name}: capital_dai={self.capital_dai} must be >= 0")
        if not 0 <= self.margin < 1:
            raise ValueError(f"keeper {self.name}: margin={self.margin} must be in [0, 1)")
        if not self.gas_cap_gwei > 0:
            raise ValueError(f"keeper {self.name}: gas_cap_gwei must be > 0")
        if not self.poll_seconds > 0:
            raise ValueError(f"keeper {self.name}: poll_seconds must be > 0")


@dataclass(frozen=True)
class KeeperRules:
    """Rules shared by all keepers (see the module docstring).

    Parameters
    ----------
    gas_units : float
        Gas of one bid transaction (assumption: 150,000, the order of a flip ``tend``/``dent``
        or a clip ``take``).
    block_seconds : float
        Mean block time (≈ 13 s in 2020).
    rho_floor : float
        Smallest rank used in the delay rule (caps the delay at ``block_seconds / rho_floor``).
    q_low, q_high : float
        Range of the percentile a keeper targets for each action (uniform, seeded).
    nonce_order : bool
        Mine each keeper's transactions in the order it sent them (Ethereum account nonces):
        a transaction is never mined before the keeper's previous one, so one stuck,
        underpriced transaction holds back every later one (default). ``False``: independent
        delays.
    """

    gas_units: float = 150_000.0
    block_seconds: float = 13.0
    rho_floor: float = 0.01
    q_low: float = 0.3
    q_high: float = 0.9
    nonce_order: bool = True

    def __post_init__(self) -> None:
        if not (0 <= self.q_low <= self.q_high <= 1):
            raise ValueError("KeeperRules: need 0 <= q_low <= q_high <= 1")
        if not (self.gas_units >= 0 and self.block_seconds > 0 and 0 < self.rho_floor <= 1):
            raise ValueError("KeeperRules: gas_units >= 0, block_seconds > 0, rho_floor in (0, 1]")

    def delay(self, rho: float) -> float:
        """Inclusion delay (seconds) of a transaction of rank ``rho`` in its window."""
        return self.block_seconds * (1.0 - rho) / max(rho, self.rho_floor)


@dataclass(frozen=True)
class Action:
    """What one keeper's transaction costs and when it is mined."""

    gwei: float
    cost_dai: float
    delay_seconds: float
    rank: float


@dataclass
class KeeperMarket:
    """Keepers, the gas series and the seeded draws of their actions.

    Parameters
    ----------
    keepers : sequence of Keeper
        The liquidators (order matters for ties: earlier keepers act first).
    gas : GasSeries
        The event's gas percentiles.
    rules : KeeperRules, optional
        Gas units, block time and the delay rule.
    seed : int, optional
        Seed of the per-action percentile draws.
    """

    keepers: tuple[Keeper, ...]
    gas: GasSeries
    rules: KeeperRules = field(default_factory=KeeperRules)
    seed: int = 0

    def __post_init__(self) -> None:
        self.keepers = tuple(self.keepers)
        if not self.keepers:
            raise ValueError("KeeperMarket needs at least one keeper")
        self._rng = np.random.default_rng(self.seed)
        self._u: list[float] = []
        self.free = np.array([k.capital_dai for k in self.keepers], dtype=np.float64)
        self.gas_spent = np.zeros(len(self.keepers))
        self.txs = np.zeros(len(self.keepers), dtype=np.int64)
        self.reverted = np.zeros(len(self.keepers), dtype=np.int64)
        self.submitted_delays: list[float] = []
        self.last_mined = np.full(len(self.keepers), -np.inf)

    def action(self, k: int, t: float, eth_price: float) -> Action:
        """Gas price, cost (DAI) and inclusion delay of keeper ``k`` acting at ``t``."""
        r = self.rules
        if not self._u:
            self._u = self._rng.uniform(r.q_low, r.q_high, size=_DRAWS).tolist()[::-1]
        q = self._u.pop()
        seen = self.gas.price(t - self.gas.window_seconds, q)  # the previous window
        gwei = min(seen, self.keepers[k].gas_cap_gwei)
        rho = self.gas.rank(t, gwei)
        cost = r.gas_units * gwei * 1e-9 * eth_price
        return Action(gwei=gwei, cost_dai=cost, delay_seconds=r.delay(rho), rank=rho)

    @staticmethod
    def worth_acting(value_dai: float, pay_dai: float, margin: float, cost_dai: float) -> bool:
        """Whether buying something worth ``value_dai`` for ``pay_dai`` covers margin and gas.

        The keeper requires ``value · (1 − margin) − pay ≥ gas cost`` (up to rounding) and a
        strictly positive gain.
        """
        gain = value_dai * (1.0 - margin) - pay_dai
        return gain >= cost_dai - 1e-9 * max(1.0, abs(value_dai)) and gain > 0

    def submit(self, k: int, t: float, action: Action) -> float:
        """Keeper ``k`` sends the transaction priced by ``action`` at ``t``; when it is mined.

        ``t + delay``, or with :attr:`KeeperRules.nonce_order` no earlier than the keeper's
        previous transaction.
        """
        mined = t + action.delay_seconds
        if self.rules.nonce_order:
            mined = max(mined, float(self.last_mined[k]))
            self.last_mined[k] = mined
        self.submitted_delays.append(mined - t)
        return mined

    def pay_gas(self, k: int, cost_dai: float, *, reverted: bool = False) -> None:
        """Book a mined transaction's gas (paid whether or not it reverted)."""
        self.gas_spent[k] += cost_dai
        self.txs[k] += 1
        if reverted:
            self.reverted[k] += 1


def draw_keepers(
    n: int,
    *,
    seed: int,
    capital_dai: tuple[float, float] = (250_000.0, 4_000_000.0),
    margin: tuple[float, float] = (0.02, 0.06),
    gas_cap_gwei: tuple[float, float] = (30.0, 300.0),
    poll_seconds: tuple[float, float] = (15.0, 120.0),
) -> tuple[Keeper, ...]:
    """Draw ``n`` keepers (seeded): capital and gas cap log-uniform, margin and poll uniform.

    Parameters
    ----------
    n : int
        Number of keepers.
    seed : int
        Seed of the draws.
    capital_dai, margin, gas_cap_gwei, poll_seconds : (low, high)
        Ranges; where each default comes from is in docs/keepers.md.

    Returns
    -------
    tuple of Keeper
    """
    if n < 1:
        raise ValueError(f"n={n} keepers; need at least 1")
    rng = np.random.default_rng(seed)

    def loguni(lo: float, hi: float) -> np.ndarray:
        if math.isinf(hi):
            return np.full(n, math.inf)
        return np.exp(rng.uniform(math.log(lo), math.log(hi), size=n))

    cap = loguni(*capital_dai)
    mar = rng.uniform(*margin, size=n)
    gas = loguni(*gas_cap_gwei)
    poll = rng.uniform(*poll_seconds, size=n)
    return tuple(
        Keeper(
            name=f"k{i}",
            capital_dai=float(cap[i]),
            margin=float(mar[i]),
            gas_cap_gwei=float(gas[i]),
            poll_seconds=float(poll[i]),
        )
        for i in range(n)
    )
