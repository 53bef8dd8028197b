"""Avoided cascades: a policy's result against the baseline (``instant``) on the same inputs."""

from __future__ import annotations

from dataclasses import dataclass

from backtest.engine import Result
from backtest.errors import ResultMismatchError

__all__ = ["AvoidedCascades", "compare"]


@dataclass(frozen=True, kw_only=True)
class AvoidedCascades:
    """What a policy avoided relative to the baseline: every field is ``baseline − policy``.

    Positive values are improvements (less induced liquidation, fewer cascade episodes, less
    bad debt, a smaller peak price deviation, a smaller borrower loss).

    Attributes
    ----------
    policy, baseline : str
        Policy names.
    induced_usd : float
        Δ induced liquidated debt (USD).
    cascade_episodes : int
        Δ number of cascade episodes.
    bad_debt_usd : float
        Δ bad debt (USD).
    peak_price_deviation : float
        Δ peak deviation of the market price from the exogenous price (fraction).
    borrower_loss_usd : float
        Δ borrower loss (USD).
    """

    policy: str
    baseline: str
    induced_usd: float
    cascade_episodes: int
    bad_debt_usd: float
    peak_price_deviation: float
    borrower_loss_usd: float


def compare(result: Result, baseline_result: Result) -> AvoidedCascades:
    """Compare a policy's result with the baseline's on the same book, path and impact.

    Parameters
    ----------
    result : Result
        The policy under test.
    baseline_result : Result
        The baseline (normally ``instant``).

    Returns
    -------
    AvoidedCascades
        ``baseline − policy`` for each headline metric.

    Raises
    ------
    ResultMismatchError
        The two results ran on different books, paths or impact models.
    """
    if result.fingerprint != baseline_result.fingerprint:
        raise ResultMismatchError(
            "the results ran on different books or price paths; compare runs of one event and "
            "one book"
        )
    if result.impact != baseline_result.impact:
        raise ResultMismatchError(
            f"the results used different impact models ({result.impact} vs "
            f"{baseline_result.impact}); compare runs with the same impact model"
        )
    m, b = result.metrics, baseline_result.metrics
    return AvoidedCascades(
        policy=str(result.policy.get("policy")),
        baseline=str(baseline_result.policy.get("policy")),
        induced_usd=b.induced_usd - m.induced_usd,
        cascade_episodes=b.cascade_episodes - m.cascade_episodes,
        bad_debt_usd=b.bad_debt_usd - m.bad_debt_usd,
        peak_price_deviation=b.peak_price_deviation - m.peak_price_deviation,
        borrower_loss_usd=b.borrower_loss_usd - m.borrower_loss_usd,
    )
