"""The generated reading of the market-policy overview says what the numbers say."""

from __future__ import annotations

import polars as pl

from pipelines.reporting.attribution_reading import policy_reading


def _overview(model: float, lagged: float, breaker_debt: float) -> pl.DataFrame:
    rows = [
        (1.0, "status_quo", 14, 0.02, 0.0, 0, 0.0, 0.0),
        (1.0, "circuit_breaker", 14, 0.01, 0.01, 10, 1.0e9, breaker_debt),
        (1.0, "forecast_mm:model", 7, 0.018, model, 5, -2e8, 0.0),
        (1.0, "forecast_mm:constant", 7, 0.019, 0.0004, 4, -2e8, 0.0),
        (1.0, "forecast_mm:lagged", 7, 0.019, lagged, 5, -3e8, 0.0),
        (1.0, "forecast_mm:shuffled", 7, 0.019, 0.0007, 5, -2e8, 0.0),
        (1.0, "forecast_mm:oracle", 7, 0.017, 0.003, 4, -2e8, 0.0),
    ]
    cols = [
        "Y", "policy", "replays", "mean_cascade_share", "mean_avoided_share", "lower_share",
        "avoided_liq_usd", "avoided_bad_debt_usd",
    ]  # fmt: skip
    return pl.DataFrame(rows, schema=cols, orient="row")


def test_a_forecast_that_beats_every_placebo_is_said_to_with_the_margin() -> None:
    text = "\n".join(policy_reading(_overview(0.0013, 0.0011, -9.4e7)))
    assert "beats every placebo, by 0.02 points over the best one (`lagged`)" in text
    assert "adds $0.09B of bad debt" in text
    assert "largest mean reduction is `circuit_breaker`'s (1.00 points" in text
    assert "1 policy moves it by more than 0.5 points" in text


def test_a_forecast_a_placebo_matches_is_not_called_a_win() -> None:
    text = "\n".join(policy_reading(_overview(0.0010, 0.0011, 5e7)))
    assert "does not beat the `lagged` placebo (-0.01 points)" in text
    assert "beats every placebo" not in text
    assert "avoids $0.05B of bad debt" in text
    assert "hint, not evidence" in text


def test_an_empty_overview_gives_no_reading() -> None:
    assert policy_reading(pl.DataFrame()) == []


def test_with_intervals_the_reading_counts_them_instead_of_the_caveat() -> None:
    rows = [
        (1.0, "forecast_mm:model", f"forecast_mm:{p}", "avoided_cascade_share", 7, 20, a, b)
        for p, a, b in (("constant", 1, 0), ("lagged", 0, 2), ("shuffled", 0, 0))
    ]
    cols = [
        "Y", "policy", "versus", "metric", "intervals", "n_paths", "above_zero", "below_zero",
    ]  # fmt: skip
    intervals = pl.DataFrame(rows, schema=cols, orient="row")
    text = "\n".join(policy_reading(_overview(0.0013, 0.0011, -9.4e7), intervals))
    assert "Over 20 stress paths at Y = 1" in text
    assert "constant above 0 on 1 and below on 0 of 7" in text
    assert "lagged above 0 on 0 and below on 2 of 7" in text
    assert "hint, not evidence" not in text
