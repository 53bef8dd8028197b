"""The policy interface shared by every liquidation mechanism.

A :class:`Policy` is a frozen, keyword-only configuration. ``policy.start(env)`` returns a
:class:`Runtime` holding the mutable state of one run. The engine drives the runtime:

* every step it asks ``needs_step(t)`` (scheduled work such as auction takes or unwinds) and
  ``threshold(t, p)`` (the lowest liquidation price the policy will act on at price ``p``); a
  step with no scheduled work and no position above the threshold is skipped;
* otherwise it calls ``round(t, r, p)`` for rounds ``r = 0, 1, ...`` at the round's market price
  ``p`` until a round neither acts nor sells. ``round`` pops the liquidatable positions it takes
  from ``env.pool``, records the money flows in ``env.ledger`` and returns ``(acted, sold_usd)``:
  the number of liquidation actions (seizures, barks, takes, deleverages…) and the notional sold
  to the market in the round, which moves the impact once;
* ``end_step`` (only when ``wants_end_step``) after every step, and ``finish`` after the last,
  then ``in_flight_shortfall`` (the loss still open in the policy's liquidation processes).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np

from backtest.errors import PolicyConfigError
from backtest.ledger import Ledger, Liquidation

__all__ = [
    "CLAMPED_FIELD",
    "BoundRuntime",
    "Env",
    "Policy",
    "Pool",
    "Runtime",
    "clamped_field",
    "sell_to_market",
]

#: Name of the field in which the factory records time defaults clamped to one bar.
CLAMPED_FIELD = "clamped_to_bar"


def clamped_field() -> Any:
    """The ``clamped_to_bar`` dataclass field of the policies with time-based defaults.

    It holds the names of step parameters whose time-based default was shorter than one bar and
    was clamped to one step (set by :func:`backtest.build_policy`). It does not change the
    simulation and is not part of :meth:`Policy.params` (parameters and run ids stay as before).
    """
    return dataclasses.field(default=(), compare=False, metadata={"omit_from_params": True})


class Pool(Protocol):
    """Interface of the liquidatable-position pools (see :mod:`backtest.pool`)."""

    def top(self) -> float:  # pragma: no cover - protocol
        """Highest liquidation price in the pool."""
        ...

    def pop(self, thr: float, max_debt: float = math.inf) -> np.ndarray:  # pragma: no cover
        """Remove and return positions with ``L > thr``."""
        ...

    def pop_range(self, lo: float, hi: float) -> np.ndarray:  # pragma: no cover
        """Remove and return positions with ``lo < L <= hi``."""
        ...

    def push(self, idx: np.ndarray) -> None:  # pragma: no cover
        """(Re)insert positions."""
        ...


@dataclass(frozen=True)
class Env:
    """What a runtime gets from the engine.

    Attributes
    ----------
    ledger : Ledger
        Positions and money flows.
    pool : Pool
        Liquidatable positions.
    n_steps : int
        Length of the price path.
    step_seconds : float
        Duration of one step.
    total_debt : float
        Debt of the book at the start (USD).
    max_threshold : float
        Largest liquidation threshold in the book.
    """

    ledger: Ledger
    pool: Pool
    n_steps: int
    step_seconds: float
    total_debt: float
    max_threshold: float


class Runtime:
    """Mutable state of one policy during one run; subclasses override what they need."""

    wants_end_step: bool = False

    def threshold(self, t: int, p: float) -> float:
        """Lowest liquidation price the policy acts on at price ``p`` (``inf``: none)."""
        return p

    def needs_step(self, t: int) -> bool:
        """True when the policy has scheduled work at step ``t``."""
        return False

    def round(self, t: int, r: int, p: float) -> tuple[int, float]:  # pragma: no cover
        """Run round ``r`` of step ``t`` at market price ``p``; return ``(acted, sold_usd)``."""
        raise NotImplementedError

    def end_step(self, t: int, p_open: float, p_end: float) -> None:
        """Observe the step's opening and closing market prices."""

    def finish(self, p_final: float) -> tuple[float, float]:
        """End of the path: settle marks; return in-flight ``(collateral units, debt USD)``."""
        return 0.0, 0.0

    def in_flight_shortfall(self, p_final: float) -> float:
        """Open loss of the policy's unfinished liquidation processes at ``p_final``.

        ``Σ max(0, debt − units · p_final)`` per process; called after :meth:`finish`.
        """
        return 0.0


class BoundRuntime(Runtime):
    """A runtime bound to its policy configuration, the run's ledger and pool.

    The start-up shared by the policies' runtimes: ``cfg`` (the frozen policy), ``ledger`` and
    ``pool`` (from the :class:`Env`) are set; subclasses add their own state after calling
    ``super().__init__(cfg, env)``.

    Parameters
    ----------
    cfg : Policy
        The policy configuration of the run.
    env : Env
        What the engine provides.
    """

    def __init__(self, cfg: Any, env: Env) -> None:
        self.cfg = cfg
        self.ledger = env.ledger
        self.pool = env.pool


def _jsonable(value: Any) -> Any:
    if isinstance(value, Policy):
        return value.params()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        arr = np.ascontiguousarray(value, dtype=np.float64)
        return {"n": int(arr.size), "sha256": hashlib.sha256(arr.tobytes()).hexdigest()}
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class Policy(ABC):
    """Base class of the frozen policy configurations."""

    name: ClassVar[str] = ""

    @abstractmethod
    def start(self, env: Env) -> Runtime:
        """Create the runtime state of one run."""

    def params(self) -> dict[str, Any]:
        """JSON-ready parameters with the policy name (arrays as length + sha256)."""
        out: dict[str, Any] = {"policy": self.name}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.metadata.get("omit_from_params"):
                continue
            out[f.name] = _jsonable(value)
        return out


def check_fraction(
    owner: str, name: str, value: float, *, low: float = 0.0, high: float = 1.0
) -> None:
    """Raise :class:`PolicyConfigError` unless ``low <= value <= high`` (wording: fractions)."""
    from backtest.fractions import fraction_problem

    problem = fraction_problem(value, low=low, high=high)
    if problem is not None:
        raise PolicyConfigError(f"{owner}.{name} {problem}")


def check_bonus(owner: str, bonus: float | None) -> None:
    """Raise :class:`PolicyConfigError` unless ``bonus`` is ``None`` or in ``[0, 0.999]``.

    The check of the optional fixed ``bonus`` that overrides the book's bonus.
    """
    if bonus is not None:
        check_fraction(owner, "bonus", bonus, high=0.999)


def check_positive(owner: str, name: str, value: float, *, allow_zero: bool = False) -> None:
    """Raise :class:`PolicyConfigError` unless ``value > 0`` (or ``>= 0``)."""
    ok = value >= 0 if allow_zero else value > 0
    if not ok or math.isnan(value):
        raise PolicyConfigError(f"{owner}.{name}={value!r} must be {'>=' if allow_zero else '>'} 0")


def check_int(owner: str, name: str, value: int, *, low: int) -> None:
    """Raise :class:`PolicyConfigError` unless ``value`` is an integer ``>= low``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise PolicyConfigError(f"{owner}.{name}={value!r} must be an integer >= {low}")


def sell_to_market(ledger: Ledger, liq: Liquidation, p: float, protocol_fee: float = 0.0) -> float:
    """Liquidators sell the seized collateral at ``p``; they keep the bonus minus the fee.

    Returns the notional sold (USD).
    """
    usd = ledger.sell(liq.seized_total, p)
    bonus_value = usd - liq.repaid_total
    fee = protocol_fee * bonus_value
    ledger.liquidator_profit_usd += bonus_value - fee
    ledger.protocol_revenue_usd += fee
    return usd
