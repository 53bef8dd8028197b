"""Market-level policies on stress paths: the avoided figures of each path, for intervals.

A stress path of a replayed (event, asset) is the event's fundamental bars moved by a simulated
log deviation ``δ_k(t)`` (``δ_k(0) = 0``): every bar's close, low and high are multiplied by
``exp(δ_k(t))`` (:func:`overlay_bars`). The crash of the fundamental path stays in every stress
path; the deviations (drawn by the pipeline from filtered historical simulation fitted before the
window) move it by what the market's pre-event volatility allows. With ``δ ≡ 0`` the stress path
is the fundamental path itself, so the real-path figure is the figure of the zero-deviation path.

On each path the status quo and every policy are replayed with the same book, voluntary flows,
exogenous flow and impact law (:func:`avoided_on_paths`); a policy's figure on the path is
*status quo − policy* (positive = avoided) for the cascade share, the liquidated USD and the bad
debt (CEX cohorts + endogenous DeFi vaults), as on the real path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from backtest.market.errors import MarketConfigError
from backtest.market.policies import MarketPolicy
from backtest.market.policy_replay import PolicyReplayResult
from backtest.market.replay import cascade_share, drawdown

__all__ = ["AVOIDED_FIGURES", "Replayer", "avoided_on_paths", "overlay_bars", "replay_figures"]

#: The avoided figures, in the order of the last axis of :func:`avoided_on_paths`.
AVOIDED_FIGURES: tuple[str, ...] = ("cascade_share", "liquidated_usd", "bad_debt_usd")

#: ``replayer(policy, close, low, high) -> result``: one replay on given fundamental bars.
Replayer = Callable[[MarketPolicy, np.ndarray, np.ndarray, np.ndarray], PolicyReplayResult]


def overlay_bars(
    f_close: np.ndarray, f_low: np.ndarray, f_high: np.ndarray, deviation: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fundamental bars moved by a log deviation per bar.

    Parameters
    ----------
    f_close, f_low, f_high : numpy.ndarray
        The fundamental bars (``n`` steps).
    deviation : numpy.ndarray
        ``δ(t)``, ``n`` log deviations at the bars' closes (``δ(0) = 0`` keeps the window
        start).

    Returns
    -------
    tuple of numpy.ndarray
        ``close · e^δ``, ``low · e^δ``, ``high · e^δ``.

    Raises
    ------
    MarketConfigError
        If the lengths differ or a deviation is not finite.
    """
    d = np.asarray(deviation, dtype=float)
    if not (len(f_close) == len(f_low) == len(f_high) == d.size):
        raise MarketConfigError(
            f"stress deviation has {d.size} steps, the bars {len(f_close)}; draw one per bar"
        )
    if not np.all(np.isfinite(d)):
        raise MarketConfigError("stress deviation has NaN or infinite entries")
    m = np.exp(d)
    return (
        np.asarray(f_close, dtype=float) * m,
        np.asarray(f_low, dtype=float) * m,
        np.asarray(f_high, dtype=float) * m,
    )


def replay_figures(res: PolicyReplayResult, fundamental_drawdown: float) -> np.ndarray:
    """Cascade share, liquidated USD and bad debt (CEX + DeFi) of one replay.

    Parameters
    ----------
    res : PolicyReplayResult
        The replay.
    fundamental_drawdown : float
        Drawdown of the fundamental bars it was replayed on.

    Returns
    -------
    numpy.ndarray
        The three figures of :data:`AVOIDED_FIGURES`.
    """
    share = cascade_share(drawdown(res.close, res.low), fundamental_drawdown)
    liq = float(res.liq_long_usd.sum() + res.liq_short_usd.sum())
    bad = float(res.bad_debt_usd.sum()) + float(res.defi_bad_debt_usd.sum())
    return np.array([share, liq, bad])


def avoided_on_paths(
    replayer: Replayer,
    policies: Sequence[MarketPolicy],
    f_close: np.ndarray,
    f_low: np.ndarray,
    f_high: np.ndarray,
    deviations: np.ndarray,
) -> np.ndarray:
    """Status quo minus each policy, per stress path and figure.

    Parameters
    ----------
    replayer : callable
        ``replayer(policy, close, low, high)``: the replay with everything else fixed.
    policies : sequence of MarketPolicy
        The status quo first, then the policies compared with it.
    f_close, f_low, f_high : numpy.ndarray
        The fundamental bars.
    deviations : numpy.ndarray
        ``(n_paths, n)`` log deviations (:func:`overlay_bars`).

    Returns
    -------
    numpy.ndarray
        ``(len(policies) − 1, n_paths, 3)``: for ``policies[1:]``, the avoided figures of
        :data:`AVOIDED_FIGURES` on each path (positive = avoided).
    """
    dev = np.asarray(deviations, dtype=float)
    if dev.ndim != 2 or dev.shape[0] < 1:
        raise MarketConfigError("deviations must be (n_paths >= 1, n_steps)")
    if len(policies) < 2:
        raise MarketConfigError("need the status quo and at least one policy")
    out = np.empty((len(policies) - 1, dev.shape[0], len(AVOIDED_FIGURES)))
    for k in range(dev.shape[0]):
        close, low, high = overlay_bars(f_close, f_low, f_high, dev[k])
        dd_f = drawdown(close, low)
        base = replay_figures(replayer(policies[0], close, low, high), dd_f)
        for j, pol in enumerate(policies[1:]):
            out[j, k] = base - replay_figures(replayer(pol, close, low, high), dd_f)
    return out
