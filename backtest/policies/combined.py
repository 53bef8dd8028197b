"""Combinations of an overlay policy (with a ``base``) and a liquidation mechanism."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from backtest.errors import PolicyConfigError
from backtest.policies.base import Env, Policy, Runtime

__all__ = ["Combined"]


@dataclass(frozen=True, kw_only=True, eq=False)
class Combined(Policy):
    """Stack policies: every part but the last is an overlay whose ``base`` is the next part.

    ``Combined(parts=(DynamicLTV(threshold_path=lt), DutchAuction()))`` is dynamic
    deleveraging on top of Maker auctions (named ``dynamic_ltv+dutch_auction``).

    Parameters
    ----------
    parts : tuple of Policy
        Overlays first (each must have a ``base`` field, e.g. ``DynamicLTV``,
        ``CircuitBreaker``), the mechanism last.
    """

    parts: tuple[Policy, ...]

    def __post_init__(self) -> None:
        parts = tuple(self.parts)
        if len(parts) < 2:
            raise PolicyConfigError("Combined needs at least two parts: overlays, then a base")
        for p in parts[:-1]:
            if not any(f.name == "base" for f in dataclasses.fields(p)):  # type: ignore[arg-type]
                raise PolicyConfigError(
                    f"{p.name!r} cannot wrap another policy (no 'base'); overlays are "
                    "dynamic_ltv and circuit_breaker"
                )
        object.__setattr__(self, "parts", parts)

    @property
    def name(self) -> str:  # type: ignore[override]
        """``"+"``-joined names of the parts, e.g. ``dynamic_ltv+dutch_auction``."""
        return "+".join(p.name for p in self.parts)

    def build(self) -> Policy:
        """The nested policy: ``parts[0](base=parts[1](base=...))``."""
        policy = self.parts[-1]
        for overlay in reversed(self.parts[:-1]):
            policy = dataclasses.replace(overlay, base=policy)  # type: ignore[type-var]
        return policy

    def start(self, env: Env) -> Runtime:
        """Create the run state of the nested policy."""
        return self.build().start(env)

    def params(self) -> dict[str, Any]:
        """JSON-ready parameters of every part."""
        return {"policy": self.name, "parts": [p.params() for p in self.parts]}
