"""``circuit_breaker``: pause new liquidations after a fast price drop (Maker ``stopped``)."""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from backtest.policies.base import (
    Env,
    Policy,
    Pool,
    Runtime,
    check_fraction,
    check_int,
    clamped_field,
)
from backtest.policies.instant import Instant

__all__ = ["CircuitBreaker"]

_EMPTY = np.empty(0, dtype=np.int64)


@dataclass(frozen=True, kw_only=True)
class CircuitBreaker(Policy):
    """Halt new liquidations of a base policy when the price falls too fast.

    At every round (and at the end of every step) the breaker compares the market price with the
    reference ``ref = max(closing market prices of the previous lookback_steps steps since the
    last resume, this step's opening price)``. When ``1 − p / ref > drop_threshold`` it halts
    for ``cooldown_steps`` steps (the current one included): the base policy receives no new
    liquidatable positions, but what it already started (auction takes and resets, unwinds,
    scheduled sales) continues — Maker's ``stopped = 1``. On resume the look-back window restarts,
    so a persistent crash does not halt liquidations forever.

    Parameters
    ----------
    base : Policy, optional
        Mechanism that liquidates when not halted (default :class:`Instant`).
    drop_threshold : float, optional
        Drop that trips the breaker (assumption: 10 %).
    lookback_steps : int, optional
        Look-back window in steps (assumption: 60, one hour of one-minute steps).
    cooldown_steps : int, optional
        Length of the halt in steps (assumption: 60).
    clamped_to_bar : tuple of str, optional
        Set by :func:`~backtest.build_policy` (see :func:`~backtest.policies.base.clamped_field`).
    """

    name: ClassVar[str] = "circuit_breaker"
    base: Policy = field(default_factory=Instant)
    drop_threshold: float = 0.10
    lookback_steps: int = 60
    cooldown_steps: int = 60
    clamped_to_bar: tuple[str, ...] = clamped_field()

    def __post_init__(self) -> None:
        check_fraction("circuit_breaker", "drop_threshold", self.drop_threshold, low=1e-12)
        check_int("circuit_breaker", "lookback_steps", self.lookback_steps, low=1)
        check_int("circuit_breaker", "cooldown_steps", self.cooldown_steps, low=1)

    def start(self, env: Env) -> Runtime:
        """Create the run state."""
        return _BreakerRuntime(self, env)


class _GatedPool:
    """A pool view whose pops return nothing while the gate is shut."""

    def __init__(self, inner: Pool) -> None:
        self.inner = inner
        self.open = True

    def top(self) -> float:
        return self.inner.top()

    def pop(self, thr: float, max_debt: float = math.inf) -> np.ndarray:
        return self.inner.pop(thr, max_debt) if self.open else _EMPTY

    def pop_range(self, lo: float, hi: float) -> np.ndarray:
        return self.inner.pop_range(lo, hi) if self.open else _EMPTY

    def push(self, idx: np.ndarray) -> None:
        self.inner.push(idx)


class _BreakerRuntime(Runtime):
    wants_end_step = True

    def __init__(self, cfg: CircuitBreaker, env: Env) -> None:
        self.cfg = cfg
        self.gate = _GatedPool(env.pool)
        self.base = cfg.base.start(dataclasses.replace(env, pool=self.gate))
        self.window: deque[tuple[int, float]] = deque()  # decreasing prices
        self.halted_until = -1
        self.p_open = math.nan
        self.open_step = -1

    def _halted(self, t: int) -> bool:
        return t < self.halted_until

    def _check(self, t: int, p: float) -> None:
        if self.halted_until >= 0 and t >= self.halted_until and not self.gate.open:
            self.gate.open = True
            self.window.clear()
        if self._halted(t):
            return
        w = self.window
        while w and w[0][0] < t - self.cfg.lookback_steps:
            w.popleft()
        ref = max(w[0][1], self.p_open) if w else self.p_open
        if p < ref * (1.0 - self.cfg.drop_threshold):
            self.halted_until = t + self.cfg.cooldown_steps
            self.gate.open = False

    def threshold(self, t: int, p: float) -> float:
        if self._halted(t):
            return math.inf
        return self.base.threshold(t, p)

    def needs_step(self, t: int) -> bool:
        return self.base.needs_step(t)

    def round(self, t: int, r: int, p: float) -> tuple[int, float]:
        if r == 0:
            self.p_open = p
            self.open_step = t
        self._check(t, p)
        return self.base.round(t, r, p)

    def end_step(self, t: int, p_open: float, p_end: float) -> None:
        if self.open_step != t:
            self.p_open = p_open
            self.open_step = t
        self._check(t, p_end)
        w = self.window
        while w and w[-1][1] <= p_end:
            w.pop()
        w.append((t, p_end))
        if self.base.wants_end_step:
            self.base.end_step(t, p_open, p_end)

    def finish(self, p_final: float) -> tuple[float, float]:
        return self.base.finish(p_final)

    def in_flight_shortfall(self, p_final: float) -> float:
        return self.base.in_flight_shortfall(p_final)
