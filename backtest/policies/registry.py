"""Policy names → factories."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from backtest.errors import UnknownPolicyError
from backtest.policies.amm_bands import AmmBands
from backtest.policies.base import Policy
from backtest.policies.batch import Batch
from backtest.policies.circuit_breaker import CircuitBreaker
from backtest.policies.combined import Combined
from backtest.policies.dutch_auction import DutchAuction
from backtest.policies.dynamic_ltv import DynamicLTV
from backtest.policies.instant import Instant
from backtest.policies.liquidity_buffer import LiquidityBuffer
from backtest.policies.schedule import Schedule
from backtest.policies.staged import Staged

__all__ = ["POLICIES", "make_policy"]


def _field_names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _dynamic_ltv_dutch_auction(**params: Any) -> Combined:
    """``dynamic_ltv+dutch_auction``: keyword arguments are routed to the part that has them."""
    dyn_fields = _field_names(DynamicLTV) - {"base"}
    auc_fields = _field_names(DutchAuction)
    unknown = set(params) - dyn_fields - auc_fields
    if unknown:
        raise TypeError(
            f"dynamic_ltv+dutch_auction got unknown parameters {sorted(unknown)}; known: "
            f"{sorted(dyn_fields | auc_fields)}"
        )
    dyn = DynamicLTV(**{k: v for k, v in params.items() if k in dyn_fields})
    auc = DutchAuction(**{k: v for k, v in params.items() if k in auc_fields})
    return Combined(parts=(dyn, auc))


class _Registry(Mapping[str, Callable[..., Policy]]):
    def __init__(self, entries: dict[str, Callable[..., Policy]]) -> None:
        self._entries = entries

    def __getitem__(self, name: str) -> Callable[..., Policy]:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownPolicyError(
                f"unknown policy {name!r}; known policies: {', '.join(self._entries)}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


#: Policy name → factory (keyword parameters → frozen config).
POLICIES: Mapping[str, Callable[..., Policy]] = _Registry(
    {
        "instant": Instant,
        "dutch_auction": DutchAuction,
        "circuit_breaker": CircuitBreaker,
        "liquidity_buffer": LiquidityBuffer,
        "batch": Batch,
        "staged": Staged,
        "dynamic_ltv": DynamicLTV,
        "dynamic_ltv+dutch_auction": _dynamic_ltv_dutch_auction,
        "schedule": Schedule,
        "amm_bands": AmmBands,
    }
)


def make_policy(name: str, **params: Any) -> Policy:
    """Build the policy registered as ``name`` with keyword ``params``.

    Raises
    ------
    UnknownPolicyError
        ``name`` is not in :data:`POLICIES` (the message lists the known names).
    """
    return POLICIES[name](**params)
