"""Policy configurations for pipeline runs: a thin adapter over :func:`backtest.build_policy`.

The library does the work (names, parameter routing, time-based defaults, dynamic-threshold
scaling; see :mod:`backtest.policies.factory`). This module converts the pipeline's types and
errors:

* A parameter given by the user (CLI flags, ``overrides["policy"]``) that no part of the policy
  accepts is a :class:`~pipelines.errors.CascadeError` naming the flags and the policy.
* On the ``maker-ethb`` book, ``dutch_auction`` starts from ETH-B's parameters in force at the
  book's time (``risk_params``: ``buf, tail, cusp, chip, tip, hole, chop, dust``; ``cut`` 0.99
  every 60 s), handed over as ``auction_defaults``; elsewhere from the library's ETH-B 2021
  defaults.
* ``dynamic_ltv`` gets its threshold path from ``margin_paths``
  (:class:`~pipelines.backtests.margin.MarginPath` → a plain array and its reference threshold).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import backtest
from backtest import DYNAMIC_POLICIES, POLICY_NAMES, Policy
from backtest.policies.factory import ON_REQUEST_POLICIES
from pipelines.backtests.margin import MarginPath
from pipelines.errors import CascadeError, UnknownNameError

__all__ = [
    "DYNAMIC_POLICIES",
    "POLICY_NAMES",
    "SWEEP_POLICIES",
    "build_policy",
    "check_policy_name",
    "policy_param_names",
]


#: The default sweep: every policy, plus the field's reference presets that need no input of
#: their own — Gauntlet's published LIQ 2.0 optimum (``dutch_auction@gauntlet``: buf 1.10, cusp
#: 0.60, tail 5,200 s, step 30 s, cut 0.997) beside the book's own auction parameters.
#: (``backtest.ON_REQUEST_POLICIES`` — ``schedule``, ``amm_bands`` — run only when asked for.)
SWEEP_POLICIES: tuple[str, ...] = (
    *(n for n in POLICY_NAMES if n not in ON_REQUEST_POLICIES),
    "dutch_auction@gauntlet",
)


def policy_param_names(name: str) -> set[str]:
    """Parameters a policy accepts (including those routed to its base or parts).

    Raises
    ------
    UnknownNameError
        Unknown policy name.
    """
    check_policy_name(name)
    return set(backtest.policy_param_names(name))


def check_policy_name(name: str) -> str:
    """Return ``name`` if it is a known policy.

    Raises
    ------
    UnknownNameError
        Listing the known policies.
    """
    try:
        return backtest.check_policy_name(name)
    except backtest.UnknownPolicyError as exc:
        raise UnknownNameError(str(exc)) from None


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
    """Build the policy ``name`` with user ``params`` (see :func:`backtest.build_policy`).

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
    try:
        return backtest.build_policy(
            name,
            params,
            step_seconds=step_seconds,
            total_debt=total_debt,
            max_threshold=max_threshold,
            auction_defaults=auction_defaults,
            threshold_path=None if margin is None else margin.thresholds,
            reference_threshold=None if margin is None else margin.reference_threshold,
        )
    except backtest.PolicyParameterError as exc:
        flags = ", ".join("--" + k.replace("_", "-") for k in exc.parameters)
        raise CascadeError(
            f"{flags} does not apply to policy {name!r}; its parameters: {', '.join(exc.accepted)}"
        ) from None
    except backtest.MissingThresholdPathError:
        raise CascadeError(f"policy {name!r} needs a forecast model's margin path") from None
