"""Liquidation policies: frozen configurations plus a name registry."""

from backtest.policies.base import Env, Policy, Runtime
from backtest.policies.batch import Batch
from backtest.policies.circuit_breaker import CircuitBreaker
from backtest.policies.combined import Combined
from backtest.policies.dutch_auction import DutchAuction
from backtest.policies.dynamic_ltv import SMART_LTV_DEFAULTS, DynamicLTV, smart_ltv_thresholds
from backtest.policies.factory import (
    BUFFER_CAPACITY_SHARE,
    BUFFER_UNWIND_SECONDS,
    DYNAMIC_POLICIES,
    POLICY_NAMES,
    PRESETS,
    SECONDS_PARAMS,
    TIME_DEFAULTS_SECONDS,
    build_policy,
    check_policy_name,
    policy_param_names,
    scale_threshold_path,
    steps_for_seconds,
)
from backtest.policies.instant import Instant
from backtest.policies.liquidity_buffer import LiquidityBuffer
from backtest.policies.registry import POLICIES, make_policy
from backtest.policies.staged import Staged

__all__ = [
    "BUFFER_CAPACITY_SHARE",
    "BUFFER_UNWIND_SECONDS",
    "DYNAMIC_POLICIES",
    "POLICIES",
    "POLICY_NAMES",
    "PRESETS",
    "SECONDS_PARAMS",
    "SMART_LTV_DEFAULTS",
    "TIME_DEFAULTS_SECONDS",
    "Batch",
    "CircuitBreaker",
    "Combined",
    "DutchAuction",
    "DynamicLTV",
    "Env",
    "Instant",
    "LiquidityBuffer",
    "Policy",
    "Runtime",
    "Staged",
    "build_policy",
    "check_policy_name",
    "make_policy",
    "policy_param_names",
    "scale_threshold_path",
    "smart_ltv_thresholds",
    "steps_for_seconds",
]
