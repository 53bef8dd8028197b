"""``keeper_dutch_auction``: Maker LIQ 2.0 Dutch auctions taken by keeper agents.

:class:`KeeperDutchAuction` is :class:`~backtest.policies.dutch_auction.DutchAuction` whose
takers are the keepers of a :class:`~backtest.keepers.KeeperMarket` instead of a fixed
``taker_margin`` and ``taker_capacity_usd``. At the first round of every step with auctions
running, each keeper prices one take (gas from the event's series, seeded percentile, its cap;
see :mod:`backtest.keepers`):

* its required discount is ``margin + gas cost / lot_usd`` (the gas spread over a typical
  take of ``lot_usd``), and a take it sends is mined after the congestion delay ``d``, while
  the auction price keeps falling: the price it pays is lower by ``cut^(d / step_seconds)``
  (stair-step) or ``1 − d / tau_seconds`` (linear). Its effective discount is
  ``1 − (1 − margin − gas / lot_usd) · decay(d)``;
* only keepers with free capital take. The step's takers act at the smallest effective
  discount among them, up to their summed free capital (a take is bought and resold within the
  step, so capital is not locked across steps).

With no keeper able to take (no capital, or a discount of 100 %) nothing is taken that step;
takes resume when one can. The time origin of the gas series is the path's start
(``gas_offset_seconds`` shifts it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import ClassVar

from backtest.errors import PolicyConfigError
from backtest.keepers import GasSeries, Keeper, KeeperMarket, KeeperRules
from backtest.policies.base import Env, Runtime
from backtest.policies.dutch_auction import DutchAuction, _AuctionRuntime

__all__ = ["KeeperDutchAuction"]


@dataclass(frozen=True, kw_only=True)
class KeeperDutchAuction(DutchAuction):
    """LIQ 2.0 auctions whose takes come from keeper agents (module docstring).

    Parameters
    ----------
    keepers : tuple of Keeper
        The liquidators.
    gas : GasSeries
        The event's gas percentiles, on the path's clock plus ``gas_offset_seconds``.
    rules : KeeperRules, optional
        Gas units, block time and the congestion delay rule.
    seed : int, optional
        Seed of the keepers' gas-percentile draws.
    lot_usd : float, optional
        Typical take size over which one transaction's gas is spread (assumption: 50,000).
    gas_offset_seconds : float, optional
        Gas-series time of the path's start.
    **kwargs
        Every :class:`DutchAuction` parameter (``taker_margin`` and ``taker_capacity_usd`` are
        replaced by the keepers' at every step; ``taker_capacity_usd`` still caps them).
    """

    name: ClassVar[str] = "keeper_dutch_auction"
    keepers: tuple[Keeper, ...] = ()
    gas: GasSeries | None = None
    rules: KeeperRules = field(default_factory=KeeperRules)
    seed: int = 0
    lot_usd: float = 50_000.0
    gas_offset_seconds: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.keepers or self.gas is None:
            raise PolicyConfigError("keeper_dutch_auction needs keepers and a gas series")
        if not self.lot_usd > 0:
            raise PolicyConfigError(f"keeper_dutch_auction.lot_usd={self.lot_usd} must be > 0")

    def start(self, env: Env) -> Runtime:
        """Create the run state."""
        return _KeeperAuctionRuntime(self, env)


class _KeeperAuctionRuntime(_AuctionRuntime):
    def __init__(self, cfg: KeeperDutchAuction, env: Env) -> None:
        super().__init__(cfg, env)
        self.base = cfg
        assert cfg.gas is not None
        self.market = KeeperMarket(cfg.keepers, cfg.gas, cfg.rules, seed=cfg.seed)
        self.idle_steps = 0  # steps with auctions running and no keeper able to take

    def _decay(self, delay: float) -> float:
        b = self.base
        if b.curve == "stairstep":
            return b.cut ** (delay / b.step_seconds)
        return max(0.0, 1.0 - delay / b.tau_seconds)

    def _takers(self, now: float, p: float) -> tuple[float, float]:
        """Smallest effective discount and summed free capital of the keepers able to take."""
        b = self.base
        best = math.inf
        capital = 0.0
        for k, keeper in enumerate(b.keepers):
            free = float(self.market.free[k])
            if free <= 0:
                continue
            act = self.market.action(k, now + b.gas_offset_seconds, p)
            keep = (1.0 - keeper.margin - act.cost_dai / b.lot_usd) * self._decay(act.delay_seconds)
            if keep <= 0:
                continue
            best = min(best, 1.0 - keep)
            capital += free
        return best, capital

    def round(self, t: int, r: int, p: float) -> tuple[int, float]:
        if r == 0 and self.cohorts:
            disc, capital = self._takers(t * self.dt, p)
            if math.isinf(disc):
                self.cfg = replace(self.base, taker_capacity_usd=0.0)
                self.idle_steps += 1
            else:
                self.cfg = replace(
                    self.base,
                    taker_margin=min(disc, 0.999),
                    taker_capacity_usd=min(capital, self.base.taker_capacity_usd),
                )
        return super().round(t, r, p)
