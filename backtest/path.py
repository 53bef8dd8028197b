"""Exogenous price paths: one simulation step per row."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from backtest.errors import PathValidationError

__all__ = ["PricePath", "synthetic_crash_path"]


@dataclass(frozen=True, eq=False)
class PricePath:
    """The exogenous (historical) price path ``p_exo(t)``, one engine step per element.

    Parameters
    ----------
    ts : numpy.ndarray
        Strictly increasing timestamps (``datetime64`` of any unit, or integer epoch seconds).
        Stored as ``datetime64[ms]``.
    price : numpy.ndarray
        Positive, finite prices of the collateral asset in USD.
    """

    ts: np.ndarray
    price: np.ndarray

    def __post_init__(self) -> None:
        ts = np.asarray(self.ts)
        if np.issubdtype(ts.dtype, np.integer):
            ts = ts.astype("datetime64[s]")
        if not np.issubdtype(ts.dtype, np.datetime64):
            raise PathValidationError(
                f"ts has dtype {ts.dtype}; give datetime64 values or integer epoch seconds"
            )
        ts = ts.astype("datetime64[ms]").copy()
        price = np.array(self.price, dtype=np.float64, copy=True)
        if ts.ndim != 1 or price.ndim != 1 or ts.shape != price.shape:
            raise PathValidationError(
                f"ts ({ts.shape}) and price ({price.shape}) must be 1-d arrays of equal length"
            )
        if price.size == 0:
            raise PathValidationError("the path is empty; give at least one step")
        bad = ~(np.isfinite(price) & (price > 0))
        if bad.any():
            i = int(np.argmax(bad))
            raise PathValidationError(
                f"price at step {i} (row {i + 1}) is {price[i]!r}; prices must be finite and > 0"
            )
        if ts.size > 1:
            dt = np.diff(ts.astype(np.int64))
            if (dt <= 0).any():
                i = int(np.argmax(dt <= 0)) + 1
                raise PathValidationError(
                    f"ts is not strictly increasing at step {i} (row {i + 1}); sort and "
                    "de-duplicate the path"
                )
        ts.flags.writeable = False
        price.flags.writeable = False
        object.__setattr__(self, "ts", ts)
        object.__setattr__(self, "price", price)

    @classmethod
    def from_frame(cls, frame: pl.DataFrame, *, ts: str = "ts", price: str = "price") -> PricePath:
        """Build a path from a polars frame with a datetime column and a price column.

        Parameters
        ----------
        frame : polars.DataFrame
            One row per step.
        ts, price : str, optional
            Column names.

        Returns
        -------
        PricePath
        """
        for col in (ts, price):
            if col not in frame.columns:
                raise PathValidationError(f"column {col!r} missing; columns are {frame.columns}")
        return cls(
            ts=frame.get_column(ts).to_numpy(),
            price=frame.get_column(price).cast(pl.Float64).to_numpy(),
        )

    def __len__(self) -> int:
        return int(self.price.size)

    @property
    def step_seconds(self) -> float:
        """Median spacing of ``ts`` in seconds (60.0 for a one-minute path; 60.0 if one step)."""
        if self.ts.size < 2:
            return 60.0
        return float(np.median(np.diff(self.ts.astype(np.int64)))) / 1000.0

    def to_frame(self) -> pl.DataFrame:
        """Return ``ts, price`` as a polars frame."""
        return pl.DataFrame({"ts": self.ts, "price": self.price})


def synthetic_crash_path(
    n_steps: int = 10_080,
    *,
    seed: int,
    start_price: float = 2_000.0,
    sigma_day: float = 0.04,
    crash_depth: float = 0.35,
    crash_start: float = 0.3,
    crash_steps: int = 720,
    recovery: float = 0.4,
    step_seconds: int = 60,
    start: str = "2021-05-17T00:00:00",
) -> PricePath:
    """A seeded synthetic crash: Brownian noise around a drop-and-partial-recovery trend.

    The log-price trend is flat until ``crash_start · n_steps``, falls by ``-ln(1 - crash_depth)``
    over ``crash_steps`` steps along a smooth (cosine) profile, then recovers ``recovery`` of the
    fall linearly until the end. Gaussian log-returns with daily volatility ``sigma_day`` are
    added.

    Parameters
    ----------
    n_steps : int, optional
        Number of steps (10,080 one-minute steps = 7 days).
    seed : int
        Seed of the ``numpy.random.Generator``.
    start_price, sigma_day, crash_depth, crash_start, crash_steps, recovery : float, optional
        Shape of the path (see above).
    step_seconds : int, optional
        Spacing of ``ts``.
    start : str, optional
        ISO timestamp of the first step.

    Returns
    -------
    PricePath
    """
    if n_steps < 1:
        raise PathValidationError(f"n_steps={n_steps} must be >= 1")
    if not 0 <= crash_depth < 1:
        raise PathValidationError(f"crash_depth={crash_depth} must be in [0, 1)")
    rng = np.random.default_rng(seed)
    t = np.arange(n_steps, dtype=np.float64)
    t0 = crash_start * n_steps
    drop = -np.log1p(-crash_depth)
    phase = np.clip((t - t0) / max(crash_steps, 1), 0.0, 1.0)
    trend = -drop * 0.5 * (1.0 - np.cos(np.pi * phase))
    t1 = t0 + crash_steps
    rec = np.clip((t - t1) / max(n_steps - t1, 1.0), 0.0, 1.0)
    trend += recovery * drop * rec
    sigma_step = sigma_day * np.sqrt(step_seconds / 86_400.0)
    noise = np.cumsum(rng.normal(0.0, sigma_step, size=n_steps))
    noise -= noise[0]
    price = start_price * np.exp(trend + noise)
    ts = np.datetime64(start, "s") + np.arange(n_steps) * np.timedelta64(step_seconds, "s")
    return PricePath(ts=ts, price=price)
