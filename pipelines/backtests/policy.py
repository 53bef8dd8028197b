"""Policy configurations for pipeline runs: names, parameter routing, time-based defaults.

* Parameters given by the user (CLI flags, ``overrides["policy"]``) go to the part of the policy
  that has them: for ``circuit_breaker`` and ``dynamic_ltv`` the parameters of their ``instant``
  base (``close_factor``, ``bonus``…) are routed to the base; ``dynamic_ltv+dutch_auction``
  routes to its two parts. A parameter no part accepts is an error naming the policy.
* Step-denominated library defaults assume one-minute steps; the pipeline sets them from minutes
  so a policy means the same on hourly and minute paths: circuit-breaker look-back 60 min and
  cool-down 60 min, batch interval 10 min, staged minimum interval 5 min (each at least 1 step),
  and the liquidity buffer unwinds its capacity (10 % of the book's debt) over 2 h.
* On the ``maker-ethb`` book, ``dutch_auction`` starts from ETH-B's parameters in force at the
  book's time (``risk_params``: ``buf, tail, cusp, chip, tip, hole, chop, dust``; ``cut`` 0.99
  every 60 s); elsewhere from the library's ETH-B 2021 defaults.
* ``dynamic_ltv`` gets its threshold path from ``margin_paths``
  (:mod:`pipelines.backtests.margin`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from backtest import (
    POLICIES,
    Batch,
    CircuitBreaker,
    Combined,
    DutchAuction,
    DynamicLTV,
    Instant,
    LiquidityBuffer,
    Policy,
    Staged,
)
from pipelines.backtests.margin import MarginPath
from pipelines.errors import CascadeError, UnknownNameError

__all__ = [
    "DYNAMIC_POLICIES",
    "POLICY_NAMES",
    "build_policy",
    "check_policy_name",
    "policy_param_names",
]

#: Every policy name, in sweep order.
POLICY_NAMES: tuple[str, ...] = tuple(POLICIES)
#: Policies that need a forecast model (a margin path).
DYNAMIC_POLICIES = ("dynamic_ltv", "dynamic_ltv+dutch_auction")

_MINUTE_DEFAULTS = {
    CircuitBreaker: {"lookback_steps": 60.0, "cooldown_steps": 60.0},
    Batch: {"interval_steps": 10.0},
    Staged: {"min_interval_steps": 5.0},
}
_BUFFER_CAPACITY_SHARE = 0.10
_BUFFER_UNWIND_SECONDS = 7_200.0


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)} - {"base", "threshold_path"}


def policy_param_names(name: str) -> set[str]:
    """Parameters a policy accepts (including those routed to its base or parts)."""
    check_policy_name(name)
    if name == "circuit_breaker":
        return _fields(CircuitBreaker) | _fields(Instant)
    if name == "dynamic_ltv":
        return _fields(DynamicLTV) | _fields(Instant)
    if name == "dynamic_ltv+dutch_auction":
        return _fields(DynamicLTV) | _fields(DutchAuction)
    cls = {
        "instant": Instant,
        "dutch_auction": DutchAuction,
        "liquidity_buffer": LiquidityBuffer,
        "batch": Batch,
        "staged": Staged,
    }[name]
    return _fields(cls)


def check_policy_name(name: str) -> str:
    """Return ``name`` if it is a known policy.

    Raises
    ------
    UnknownNameError
        Listing the known policies.
    """
    if name not in POLICY_NAMES:
        raise UnknownNameError(
            f"unknown policy {name!r}; known policies: {', '.join(POLICY_NAMES)}"
        )
    return name


def _steps(minutes: float, step_seconds: float) -> int:
    return max(1, round(minutes * 60.0 / step_seconds))


def _take(params: dict[str, Any], cls: type) -> dict[str, Any]:
    names = _fields(cls)
    return {k: params.pop(k) for k in list(params) if k in names}


def _with_time_defaults(cls: type, kwargs: dict[str, Any], step_seconds: float) -> dict[str, Any]:
    out = {k: _steps(v, step_seconds) for k, v in _MINUTE_DEFAULTS.get(cls, {}).items()}
    out.update(kwargs)
    return out


def build_policy(
    name: str,
    params: Mapping[str, Any] | None = None,
    *,
    step_seconds: float,
    total_debt: float,
    max_threshold: float = 1.0,
    auction_defaults: Mapping[str, Any] | None = None,
    margin: MarginPath | None = None,
) -> Policy:
    """Build the policy ``name`` with user ``params`` over the pipeline's defaults.

    Parameters
    ----------
    name : str
        A name of :data:`POLICY_NAMES`.
    params : mapping, optional
        User parameters (library field names).
    step_seconds : float
        Bar size of the path (for the time-based defaults).
    total_debt : float
        Debt of the book (liquidity-buffer capacity).
    max_threshold : float, optional
        Largest liquidation threshold of the book (scales the dynamic threshold path).
    auction_defaults : mapping, optional
        Dutch-auction defaults (ETH-B parameters in force on the Maker book).
    margin : MarginPath, optional
        Threshold path for the dynamic policies.

    Returns
    -------
    backtest.Policy

    Raises
    ------
    UnknownNameError
        Unknown policy name.
    CascadeError
        A parameter the policy does not take, or a dynamic policy without a margin path.
    """
    check_policy_name(name)
    rest = dict(params or {})
    unknown = set(rest) - policy_param_names(name)
    if unknown:
        flags = ", ".join("--" + k.replace("_", "-") for k in sorted(unknown))
        raise CascadeError(
            f"{flags} does not apply to policy {name!r}; its parameters: "
            f"{', '.join(sorted(policy_param_names(name)))}"
        )
    auction = (
        {**(auction_defaults or {}), **_take(rest, DutchAuction)}
        if ("dutch_auction" in name)
        else {}
    )
    if name in DYNAMIC_POLICIES:
        if margin is None:
            raise CascadeError(f"policy {name!r} needs a forecast model's margin path")
        own = _take(rest, DynamicLTV)
        reference = own.pop("reference_threshold", None) or margin.reference_threshold
        # m(t) = min(1, LT(t) / reference) scales each position's own threshold. DynamicLTV
        # divides its path by the book's largest threshold, so the path handed over is
        # LT(t) / reference × max_threshold (this also avoids passing reference_threshold).
        scaled = np.minimum(margin.thresholds / reference, 1.0) * max_threshold
        dyn = DynamicLTV(threshold_path=scaled, **own)
        if name == "dynamic_ltv":
            return dataclasses.replace(dyn, base=Instant(**_take(rest, Instant)))
        return Combined(parts=(dyn, DutchAuction(**auction)))
    if name == "instant":
        return Instant(**rest)
    if name == "dutch_auction":
        return DutchAuction(**auction)
    if name == "circuit_breaker":
        own = _with_time_defaults(CircuitBreaker, _take(rest, CircuitBreaker), step_seconds)
        return CircuitBreaker(base=Instant(**_take(rest, Instant)), **own)
    if name == "liquidity_buffer":
        capacity = rest.get("capacity_usd", _BUFFER_CAPACITY_SHARE * total_debt)
        rest.setdefault("capacity_usd", capacity)
        rest.setdefault(
            "unwind_usd_per_step", max(capacity, 1.0) * step_seconds / _BUFFER_UNWIND_SECONDS
        )
        return LiquidityBuffer(**rest)
    if name == "batch":
        return Batch(**_with_time_defaults(Batch, rest, step_seconds))
    return Staged(**_with_time_defaults(Staged, rest, step_seconds))
