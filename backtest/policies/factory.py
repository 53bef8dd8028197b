"""Policy names → configured policy objects: parameter routing and time-based defaults.

:func:`build_policy` is the one place that turns a policy name plus user parameters into a
frozen :class:`~backtest.policies.base.Policy`:

* **Routing.** A parameter goes to the part of the policy that has it: for ``circuit_breaker``
  and ``dynamic_ltv`` the parameters of their :class:`~backtest.Instant` base (``close_factor``,
  ``bonus``…) go to the base; ``dynamic_ltv+dutch_auction`` routes to its
  :class:`~backtest.DynamicLTV` and :class:`~backtest.DutchAuction` parts. A parameter that no
  part accepts raises :class:`~backtest.errors.PolicyParameterError` naming the policy and the
  parameter.
* **Time-based defaults.** The step-denominated library defaults assume one-minute steps;
  the factory sets them from durations so a policy means the same on hourly and minute paths
  (:data:`TIME_DEFAULTS_SECONDS`: circuit-breaker look-back and cool-down 1 h, batch interval
  10 min, staged minimum interval 5 min). The liquidity buffer's capacity is
  :data:`BUFFER_CAPACITY_SHARE` of the book's debt, unwound over :data:`BUFFER_UNWIND_SECONDS`.
* **Time scales shorter than a bar** (issue #9). The same time scales can be given in seconds
  (:data:`SECONDS_PARAMS`: ``lookback_seconds``, ``cooldown_seconds``, ``interval_seconds``,
  ``min_interval_seconds``); a user-given duration shorter than one bar of the path raises
  :class:`~backtest.errors.StepTooCoarseError` instead of silently collapsing to one step. A
  *default* shorter than one bar (e.g. the 10-minute batch interval on hourly bars) is clamped
  to one step and recorded in the policy's ``clamped_to_bar`` field, so the pipeline's defaults
  keep working on hourly event paths. (``clamped_to_bar`` is not part of ``params()``: the
  parameters and run ids of existing configurations stay as they were.) The ``*_seconds``
  names are accepted by :func:`build_policy` but not listed by :func:`policy_param_names`
  (:func:`seconds_param_names` lists them). Step-denominated parameters given by
  the user (``lookback_steps``…) are at least one bar by construction and are taken as given.
  The Dutch auction's own ``step_seconds`` is never refused: its takes are priced inside the
  step (:class:`~backtest.DutchAuction`).
* **Presets** (:data:`PRESETS`): named reference configurations built on a policy of
  :data:`POLICY_NAMES` — ``dutch_auction@gauntlet`` (Gauntlet's recommended LIQ 2.0 region)
  and ``smart_ltv`` (B.Protocol's SmartLTV threshold path on ``dynamic_ltv``; build the path
  with :func:`~backtest.policies.dynamic_ltv.smart_ltv_thresholds`). They are not in
  :data:`POLICY_NAMES`, so the default sweep keeps its size; user parameters override the
  preset's, which override ``auction_defaults``.
* **Dynamic thresholds.** For ``dynamic_ltv`` the forecast threshold path ``LT(t)`` is turned
  into the path :class:`~backtest.DynamicLTV` expects by :func:`scale_threshold_path`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from backtest.errors import (
    MissingThresholdPathError,
    PolicyConfigError,
    PolicyParameterError,
    StepTooCoarseError,
    UnknownPolicyError,
)
from backtest.policies.amm_bands import AmmBands
from backtest.policies.base import Policy
from backtest.policies.batch import Batch
from backtest.policies.circuit_breaker import CircuitBreaker
from backtest.policies.combined import Combined
from backtest.policies.dutch_auction import DutchAuction
from backtest.policies.dynamic_ltv import DynamicLTV
from backtest.policies.instant import Instant
from backtest.policies.liquidity_buffer import LiquidityBuffer
from backtest.policies.registry import POLICIES
from backtest.policies.schedule import Schedule
from backtest.policies.staged import Staged

__all__ = [
    "BUFFER_CAPACITY_SHARE",
    "BUFFER_UNWIND_SECONDS",
    "DYNAMIC_POLICIES",
    "ON_REQUEST_POLICIES",
    "POLICY_NAMES",
    "PRESETS",
    "SECONDS_PARAMS",
    "TIME_DEFAULTS_SECONDS",
    "build_policy",
    "check_policy_name",
    "policy_param_names",
    "scale_threshold_path",
    "seconds_param_names",
    "steps_for_seconds",
]

#: Every policy name, in sweep order (the order of :data:`backtest.POLICIES`).
POLICY_NAMES: tuple[str, ...] = tuple(POLICIES)
#: Policies built on request only: not in the pipeline's default sweep (issue #15).
ON_REQUEST_POLICIES: tuple[str, ...] = ("schedule", "amm_bands")
#: Policies that need a threshold path (a volatility forecast's margin path).
DYNAMIC_POLICIES: tuple[str, ...] = ("dynamic_ltv", "dynamic_ltv+dutch_auction")
#: Step-denominated parameters set from a duration (seconds) unless the user gives them.
TIME_DEFAULTS_SECONDS: Mapping[type, Mapping[str, float]] = {
    CircuitBreaker: {"lookback_steps": 3_600.0, "cooldown_steps": 3_600.0},
    Batch: {"interval_steps": 600.0},
    Staged: {"min_interval_steps": 300.0},
    Schedule: {"horizon_steps": 3_600.0},
}
#: Time scales accepted in seconds: ``{class: {seconds parameter: step parameter}}``.
SECONDS_PARAMS: Mapping[type, Mapping[str, str]] = {
    CircuitBreaker: {"lookback_seconds": "lookback_steps", "cooldown_seconds": "cooldown_steps"},
    Batch: {"interval_seconds": "interval_steps"},
    Staged: {"min_interval_seconds": "min_interval_steps"},
    Schedule: {"horizon_seconds": "horizon_steps"},
}
#: Named reference configurations: ``preset name → (policy name, parameters)``.
#:
#: * ``dutch_auction@gauntlet``: Gauntlet's LIQ 2.0 assessment for Maker (2021), recommended
#:   region ``buf 1.10, cusp 0.60, tail 5,200 s, step 30 s, cut 0.997`` (REFERENCES.md).
#: * ``smart_ltv``: ``dynamic_ltv`` whose threshold path is B.Protocol's SmartLTV closed form
#:   (:func:`~backtest.policies.dynamic_ltv.smart_ltv_thresholds`); its reference threshold
#:   defaults to the book's largest threshold, since SmartLTV is an absolute LTV.
PRESETS: Mapping[str, tuple[str, Mapping[str, Any]]] = {
    "dutch_auction@gauntlet": (
        "dutch_auction",
        {"buf": 1.10, "cusp": 0.60, "tail_seconds": 5_200.0, "step_seconds": 30.0, "cut": 0.997},
    ),
    "smart_ltv": ("dynamic_ltv", {}),
}
#: Default liquidity-buffer capacity as a share of the book's debt.
BUFFER_CAPACITY_SHARE = 0.10
#: Default time over which the liquidity buffer unwinds its capacity (seconds).
BUFFER_UNWIND_SECONDS = 7_200.0

#: The classes whose fields each policy name accepts, in routing order.
_PARTS: Mapping[str, tuple[type, ...]] = {
    "instant": (Instant,),
    "dutch_auction": (DutchAuction,),
    "circuit_breaker": (CircuitBreaker, Instant),
    "liquidity_buffer": (LiquidityBuffer,),
    "batch": (Batch,),
    "staged": (Staged,),
    "dynamic_ltv": (DynamicLTV, Instant),
    "dynamic_ltv+dutch_auction": (DynamicLTV, DutchAuction),
    "schedule": (Schedule,),
    "amm_bands": (AmmBands,),
}


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)} - {"base", "threshold_path", "clamped_to_bar"}


def _routable(cls: type) -> set[str]:
    """Fields of ``cls`` plus its ``*_seconds`` time scales (what :func:`_take` routes)."""
    return _fields(cls) | set(SECONDS_PARAMS.get(cls, {}))


def seconds_param_names(name: str) -> frozenset[str]:
    """The ``*_seconds`` time scales a policy (or preset) accepts besides its fields.

    They are accepted by :func:`build_policy` but not listed by :func:`policy_param_names`
    (whose list is the pipeline's flag set and stays as it was).

    Parameters
    ----------
    name : str
        A name of :data:`POLICY_NAMES` or :data:`PRESETS`.

    Returns
    -------
    frozenset of str
    """
    check_policy_name(name)
    name = PRESETS[name][0] if name in PRESETS else name
    out: set[str] = set()
    for cls in _PARTS[name]:
        out |= set(SECONDS_PARAMS.get(cls, {}))
    return frozenset(out)


def check_policy_name(name: str) -> str:
    """Return ``name`` if it is a known policy or preset.

    Parameters
    ----------
    name : str
        Policy name (:data:`POLICY_NAMES`) or preset name (:data:`PRESETS`).

    Returns
    -------
    str
        ``name``.

    Raises
    ------
    UnknownPolicyError
        Listing the known policies.
    """
    if name not in POLICY_NAMES and name not in PRESETS:
        raise UnknownPolicyError(
            f"unknown policy {name!r}; known policies: {', '.join(POLICY_NAMES)}; "
            f"presets: {', '.join(PRESETS)}"
        )
    return name


def policy_param_names(name: str) -> frozenset[str]:
    """Parameters a policy accepts, including those routed to its base or parts.

    Parameters
    ----------
    name : str
        A name of :data:`POLICY_NAMES`.

    Returns
    -------
    frozenset of str
        Library field names (``threshold_path`` and ``base`` are set by the factory).

    Raises
    ------
    UnknownPolicyError
        Unknown policy name.
    """
    check_policy_name(name)
    name = PRESETS[name][0] if name in PRESETS else name
    out: set[str] = set()
    for cls in _PARTS[name]:
        out |= _fields(cls)
    return frozenset(out)


def steps_for_seconds(seconds: float, step_seconds: float) -> int:
    """Number of steps of ``step_seconds`` closest to ``seconds``, at least 1.

    Parameters
    ----------
    seconds : float
        Duration.
    step_seconds : float
        Bar size of the path.

    Returns
    -------
    int
        ``max(1, round(seconds / step_seconds))``.
    """
    return max(1, round(seconds / step_seconds))


def scale_threshold_path(
    thresholds: ArrayLike, reference_threshold: float, max_threshold: float
) -> np.ndarray:
    """The threshold path handed to :class:`~backtest.DynamicLTV` for a forecast path ``LT(t)``.

    The dynamic policy scales each position's own threshold by ``m(t) = min(1, LT(t) / ref)``.
    :class:`~backtest.DynamicLTV` divides its path by the book's largest threshold, so the path
    handed over is ``min(1, LT(t) / ref) × max_threshold``.

    Parameters
    ----------
    thresholds : array_like
        Forecast threshold path ``LT(t)``, one fraction per step.
    reference_threshold : float
        The threshold ``LT(t)`` tightens from (the cap of the margin path).
    max_threshold : float
        Largest liquidation threshold of the book.

    Returns
    -------
    numpy.ndarray
        The scaled path.
    """
    lt = np.asarray(thresholds, dtype=np.float64)
    return np.minimum(lt / reference_threshold, 1.0) * max_threshold


def _take(params: dict[str, Any], cls: type) -> dict[str, Any]:
    names = _routable(cls)
    return {k: params.pop(k) for k in list(params) if k in names}


def _with_time_defaults(
    cls: type, kwargs: dict[str, Any], step_seconds: float, policy: str
) -> dict[str, Any]:
    """Step parameters from user seconds (refused below one bar) and clamped defaults."""
    kwargs = dict(kwargs)
    for sec_name, field in SECONDS_PARAMS.get(cls, {}).items():
        if sec_name not in kwargs:
            continue
        seconds = kwargs.pop(sec_name)
        if field in kwargs:
            raise PolicyConfigError(f"policy {policy!r}: give {sec_name} or {field}, not both")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
            raise PolicyConfigError(f"policy {policy!r}: {sec_name}={seconds!r} must be > 0")
        if seconds < step_seconds:
            raise StepTooCoarseError(policy, sec_name, seconds, step_seconds)
        kwargs[field] = steps_for_seconds(seconds, step_seconds)
    out: dict[str, Any] = {}
    clamped: list[str] = []
    for field, seconds in TIME_DEFAULTS_SECONDS.get(cls, {}).items():
        if field in kwargs:
            continue
        out[field] = steps_for_seconds(seconds, step_seconds)
        if seconds < step_seconds:
            clamped.append(field)
    out.update(kwargs)
    if clamped:
        out["clamped_to_bar"] = tuple(clamped)
    return out


def build_policy(
    name: str,
    params: Mapping[str, Any] | None = None,
    *,
    step_seconds: float,
    total_debt: float | None = None,
    max_threshold: float = 1.0,
    auction_defaults: Mapping[str, Any] | None = None,
    threshold_path: ArrayLike | None = None,
    reference_threshold: float | None = None,
) -> Policy:
    """Build the policy ``name`` with user ``params`` over the time-based defaults.

    Parameters
    ----------
    name : str
        A name of :data:`POLICY_NAMES` or :data:`PRESETS`.
    params : mapping, optional
        User parameters (library field names, or the ``*_seconds`` time scales of
        :data:`SECONDS_PARAMS`), routed to the part of the policy that has them.
    step_seconds : float
        Bar size of the price path (for the time-based defaults and the bar check).
    total_debt : float, optional
        Debt of the book (USD): the default liquidity-buffer capacity is
        :data:`BUFFER_CAPACITY_SHARE` of it. Needed by ``liquidity_buffer`` unless
        ``capacity_usd`` is given.
    max_threshold : float, optional
        Largest liquidation threshold of the book (scales the dynamic threshold path).
    auction_defaults : mapping, optional
        :class:`~backtest.DutchAuction` parameters the user's parameters override (e.g. the
        Maker ETH-B parameters in force at the book's time); the library defaults otherwise.
    threshold_path : array_like, optional
        Forecast threshold path ``LT(t)`` (one per step); needed by :data:`DYNAMIC_POLICIES`.
    reference_threshold : float, optional
        The threshold ``LT(t)`` tightens from; a ``reference_threshold`` in ``params`` wins.
        Defaults to the maximum of ``threshold_path``.

    Returns
    -------
    Policy
        The configured policy (for ``dynamic_ltv+dutch_auction`` a :class:`~backtest.Combined`).

    Raises
    ------
    UnknownPolicyError
        Unknown policy name.
    PolicyParameterError
        A parameter no part of the policy accepts (names the policy and the parameters).
    MissingThresholdPathError
        A dynamic policy without ``threshold_path``.
    StepTooCoarseError
        A user-given ``*_seconds`` time scale shorter than one bar (defaults are clamped to one
        bar instead and listed in the policy's ``clamped_to_bar``).
    PolicyConfigError
        A parameter with an impossible value.

    Examples
    --------
    >>> p = build_policy("circuit_breaker", {"close_factor": 0.5}, step_seconds=3600.0)
    >>> p.lookback_steps, p.base.close_factor
    (1, 0.5)
    >>> build_policy("batch", step_seconds=3600.0).clamped_to_bar
    ('interval_steps',)
    """
    check_policy_name(name)
    rest = dict(params or {})
    accepted = policy_param_names(name)
    unknown = set(rest) - accepted - seconds_param_names(name)
    if unknown:
        raise PolicyParameterError(name, tuple(sorted(unknown)), tuple(sorted(accepted)))
    if name in PRESETS:
        preset = name
        name, preset_params = PRESETS[preset]
        rest = {**preset_params, **rest}
        if preset == "smart_ltv" and reference_threshold is None:
            reference_threshold = max_threshold
    auction = (
        {**(auction_defaults or {}), **_take(rest, DutchAuction)} if "dutch_auction" in name else {}
    )
    if name in DYNAMIC_POLICIES:
        if threshold_path is None:
            raise MissingThresholdPathError(
                f"policy {name!r} needs a threshold path (a volatility forecast's margin path); "
                "give threshold_path"
            )
        own = _take(rest, DynamicLTV)
        ref = own.pop("reference_threshold", None) or reference_threshold
        if ref is None:
            ref = float(np.max(np.asarray(threshold_path, dtype=np.float64)))
        scaled = scale_threshold_path(threshold_path, ref, max_threshold)
        dyn = DynamicLTV(threshold_path=scaled, **own)
        if name == "dynamic_ltv":
            return dataclasses.replace(dyn, base=Instant(**_take(rest, Instant)))
        return Combined(parts=(dyn, DutchAuction(**auction)))
    if name == "instant":
        return Instant(**rest)
    if name == "dutch_auction":
        return DutchAuction(**auction)
    if name == "circuit_breaker":
        own = _with_time_defaults(CircuitBreaker, _take(rest, CircuitBreaker), step_seconds, name)
        return CircuitBreaker(base=Instant(**_take(rest, Instant)), **own)
    if name == "liquidity_buffer":
        return LiquidityBuffer(**_buffer_params(rest, step_seconds, total_debt))
    if name == "batch":
        return Batch(**_with_time_defaults(Batch, rest, step_seconds, name))
    if name == "schedule":
        return Schedule(**_with_time_defaults(Schedule, rest, step_seconds, name))
    if name == "amm_bands":
        return AmmBands(**rest)
    return Staged(**_with_time_defaults(Staged, rest, step_seconds, name))


def _buffer_params(
    rest: dict[str, Any], step_seconds: float, total_debt: float | None
) -> dict[str, Any]:
    if "capacity_usd" in rest:
        capacity = rest["capacity_usd"]
    else:
        if total_debt is None:
            raise PolicyConfigError(
                "liquidity_buffer needs total_debt (its default capacity is "
                f"{BUFFER_CAPACITY_SHARE:.0%} of the book's debt) or a capacity_usd parameter"
            )
        capacity = BUFFER_CAPACITY_SHARE * total_debt
        rest["capacity_usd"] = capacity
    unwind = max(capacity, 1.0) * step_seconds / BUFFER_UNWIND_SECONDS
    rest.setdefault("unwind_usd_per_step", unwind)
    return rest
