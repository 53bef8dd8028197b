"""The crash-day level of the levered share: calibrated on the last crash-like days before ``t``.

The trailing level of :func:`backtest.market.fit.trailing_level` averages reported / predicted
liquidations over every non-event reported day of a window — mostly quiet days, on which only
the high-leverage tiers are within reach. A crash reaches the deep, low-leverage part of the
book, which quiet days do not test. The crash-day level calibrates a crash-like day ``t`` (its
low at least a threshold below the previous close) on the ``k`` most recent *crash-like
non-event* reported days before ``t`` instead:

* ``mode="excess"``: the share on a crash-like day is ``b · c_t · g_t``, ``g_t`` the geometric
  mean of ``reported / (unit · c_s)`` over those ``k`` days ``s`` (how far the ordinary rule
  missed on the last crash-like days, carried to the next one);
* ``mode="level"``: it is ``b · e_t``, ``e_t`` the geometric mean of ``reported / unit`` over
  those days (the crash-like days' own level replaces the ordinary one).

Walk-forward: only days ``s < t`` enter, never an event day (the calibration mask), and only
days within ``max_lookback_days`` of ``t``; where fewer than ``k`` such days exist the ordinary
level stands (``g_t = 1``). ``k = 0`` switches the rule off. One parameter (``k``) per form;
``max_lookback_days`` is fixed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backtest.market.errors import MarketConfigError

__all__ = [
    "CRASH_LEVEL_KS",
    "CRASH_LEVEL_LOOKBACK_DAYS",
    "CrashLevelRule",
    "trailing_crash_mean",
]

#: Candidate numbers of previous crash-like days (0 = rule off).
CRASH_LEVEL_KS: tuple[int, ...] = (0, 3, 5, 10)

#: Look-back cap (days) of the crash-like days a level may use.
CRASH_LEVEL_LOOKBACK_DAYS = 180


def trailing_crash_mean(
    x: np.ndarray, usable: np.ndarray, k: int, max_lookback_days: int
) -> np.ndarray:
    """Mean of ``x`` over the last ``k`` usable days before ``t``, ``t = 0 .. n``.

    Parameters
    ----------
    x : numpy.ndarray
        One value per day (length ``n``); only usable days are read.
    usable : numpy.ndarray
        Days that may enter (boolean, length ``n``).
    k : int
        Number of days averaged (``>= 1``).
    max_lookback_days : int
        A day ``s`` may enter the value at ``t`` only if ``t − s <= max_lookback_days``.

    Returns
    -------
    numpy.ndarray
        Length ``n + 1``; NaN where fewer than ``k`` usable days lie in
        ``[t − max_lookback_days, t)``. ``out[t]`` uses nothing from day ``t`` on.
    """
    if k < 1:
        raise MarketConfigError(f"k={k!r} must be >= 1")
    if max_lookback_days < 1:
        raise MarketConfigError(f"max_lookback_days={max_lookback_days!r} must be >= 1")
    v = np.asarray(x, dtype=float)
    idx = np.flatnonzero(np.asarray(usable, dtype=bool))
    n = len(v)
    out = np.full(n + 1, np.nan)
    if idx.size < k:
        return out
    cs = np.concatenate([[0.0], np.cumsum(v[idx])])
    t = np.arange(n + 1)
    j = np.searchsorted(idx, t, side="left")  # usable days before t: idx[:j]
    ok = j >= k
    first = np.where(ok, idx[np.clip(j - k, 0, idx.size - 1)], -1)
    ok &= t - first <= max_lookback_days
    out[ok] = (cs[j[ok]] - cs[j[ok] - k]) / k
    return out


@dataclass(frozen=True)
class CrashLevelRule:
    """Crash-day level of the levered share (module docstring).

    Parameters
    ----------
    crash : numpy.ndarray
        Crash-like days (boolean, length ``n``): the days the level applies to and, among the
        calibration days, the days it is calibrated on.
    ks : tuple of int
        Candidate ``k`` (number of previous crash-like days; ``0`` = rule off).
    mode : str
        ``"excess"`` (a multiplier of the ordinary level) or ``"level"`` (replaces it).
    max_lookback_days : int
        Look-back cap.
    """

    crash: np.ndarray
    ks: tuple[int, ...] = CRASH_LEVEL_KS
    mode: str = "excess"
    max_lookback_days: int = CRASH_LEVEL_LOOKBACK_DAYS

    def __post_init__(self) -> None:
        if self.mode not in ("excess", "level"):
            raise MarketConfigError(f"mode={self.mode!r}: use 'excess' or 'level'")
        if not self.ks or min(self.ks) < 0:
            raise MarketConfigError(f"ks={self.ks!r}: need at least one k >= 0")

    def level(
        self,
        unit: np.ndarray,
        reported: np.ndarray,
        calib_mask: np.ndarray,
        base_level: np.ndarray,
        k: int,
        *,
        everywhere: bool = False,
    ) -> np.ndarray:
        """The level ``c'_t`` (length ``n + 1``) with the crash-day rule applied.

        Parameters
        ----------
        unit, reported : numpy.ndarray
            Unit-scale predicted (crowding multipliers included) and reported liquidations
            per day (long + short).
        calib_mask : numpy.ndarray
            Days whose ratio may be used (reported, outside every event).
        base_level : numpy.ndarray
            The ordinary level ``c_t`` (:func:`backtest.market.fit.trailing_level`).
        k : int
            Number of previous crash-like days (``0``: ``base_level`` unchanged).
        everywhere : bool
            Apply the crash-day level on every day (the share a crash on day ``t`` would get;
            the replay of an event uses it), not only on the crash-like days.

        Returns
        -------
        numpy.ndarray
            ``c_t`` on days that are not crash-like or lack ``k`` earlier crash-like days; on
            the others ``c_t · g_t`` (``excess``) or ``e_t`` (``level``). The last value (after
            the last day) is ``c_n``.
        """
        c = np.asarray(base_level, dtype=float)
        if k == 0:
            return c
        u, r = np.asarray(unit, float), np.asarray(reported, float)
        crash = np.asarray(self.crash, dtype=bool)
        if len(crash) != len(u) or len(c) != len(u) + 1:
            raise MarketConfigError(
                f"crash mask has {len(crash)} days, predictions {len(u)}, level {len(c)}"
            )
        usable = np.asarray(calib_mask, bool) & crash & (u > 0) & (r > 0)
        lr = np.zeros(len(u))
        if self.mode == "excess":
            lr[usable] = np.log(r[usable]) - np.log(u[usable] * c[:-1][usable])
        else:
            lr[usable] = np.log(r[usable]) - np.log(u[usable])
        m = trailing_crash_mean(lr, usable, k, self.max_lookback_days)
        applies = np.ones(len(u) + 1, bool) if everywhere else np.concatenate([crash, [False]])
        on = applies & np.isfinite(m)
        out = c.copy()
        if self.mode == "excess":
            out[on] = c[on] * np.exp(m[on])
        else:
            out[on] = np.exp(m[on])
        return out
