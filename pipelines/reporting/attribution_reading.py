"""Generated reading of the market-level policy comparison (sentences computed from the tables).

The page ``attribution.md`` states what the overview table says in words, so no figure of the
market replay has to be copied by hand into ``docs/``. Every number in the sentences comes from
:func:`pipelines.attribution.policy_summary.policy_overview` of the run the page shows.
"""

from __future__ import annotations

import polars as pl

__all__ = ["policy_reading"]

#: Placebo controls of the forecast-driven margin (the oracle is a ceiling, not a placebo).
PLACEBOS = ("constant", "lagged", "shuffled")

#: A policy "moves" the cascade share when its mean avoided share exceeds this (points of share).
MATERIAL_POINTS = 0.5


_UNCERTAINTY = (
    "Each figure is a mean over replays on the real path at one impact law, without an interval "
    "over stress paths: a difference of a fraction of a point between a policy and its controls "
    "is a hint, not evidence."
)


def _pts(share: float) -> str:
    return f"{100 * share:.2f} points"


def _usd_b(v: float) -> str:
    return f"${v / 1e9:,.2f}B"


def _row(overview: pl.DataFrame, y: float, policy: str) -> dict | None:
    rows = overview.filter((pl.col("Y") == y) & (pl.col("policy") == policy)).to_dicts()
    return rows[0] if rows else None


def _status_quo_sentence(overview: pl.DataFrame, y: float) -> str:
    sq = _row(overview, y, "status_quo")
    others = overview.filter((pl.col("Y") == y) & (pl.col("policy") != "status_quo"))
    if sq is None or others.height == 0:
        return ""
    best = others.sort(["mean_avoided_share", "policy"], descending=[True, False]).row(
        0, named=True
    )
    material = others.filter(pl.col("mean_avoided_share") > MATERIAL_POINTS / 100).height
    moves = "policy moves" if material == 1 else "policies move"
    return (
        f"At Y = {y:g} the status quo's mean cascade share is "
        f"{100 * sq['mean_cascade_share']:.2f} % over {sq['replays']} replays; the largest mean "
        f"reduction is `{best['policy']}`'s ({_pts(best['mean_avoided_share'])}, lower on "
        f"{best['lower_share']} of {best['replays']} replays); {material} {moves} it by more "
        f"than {MATERIAL_POINTS:g} points."
    )


def _breaker_sentence(overview: pl.DataFrame, y: float) -> str:
    cb = _row(overview, y, "circuit_breaker")
    if cb is None:
        return ""
    debt = cb["avoided_bad_debt_usd"]
    debt_text = (
        f"adds {_usd_b(-debt)} of bad debt" if debt < 0 else f"avoids {_usd_b(debt)} of bad debt"
    )
    return (
        f"Circuit breaker at Y = {y:g}: avoids {_usd_b(cb['avoided_liq_usd'])} of liquidations "
        f"and {debt_text} (summed over the replays); hourly bars make its gain an upper bound."
    )


def _forecast_sentence(overview: pl.DataFrame, y: float) -> str:
    model = _row(overview, y, "forecast_mm:model")
    if model is None:
        return ""
    placebos = {p: _row(overview, y, f"forecast_mm:{p}") for p in PLACEBOS}
    placebos = {p: r for p, r in placebos.items() if r is not None}
    oracle = _row(overview, y, "forecast_mm:oracle")
    parts = [
        f"Forecast-driven margin at Y = {y:g} ({model['replays']} replays): the model avoids "
        f"{_pts(model['mean_avoided_share'])} of cascade share"
    ]
    if placebos:
        listed = ", ".join(f"{p} {_pts(r['mean_avoided_share'])}" for p, r in placebos.items())
        best_p, best_r = max(placebos.items(), key=lambda kv: kv[1]["mean_avoided_share"])
        margin = model["mean_avoided_share"] - best_r["mean_avoided_share"]
        verdict = (
            f"beats every placebo, by {_pts(margin)} over the best one (`{best_p}`)"
            if margin > 0
            else f"does not beat the `{best_p}` placebo ({_pts(margin)})"
        )
        parts.append(f"; placebos: {listed}; so it {verdict}")
    if oracle is not None:
        parts.append(f"; the oracle avoids {_pts(oracle['mean_avoided_share'])}")
    return "".join(parts) + "."


def _interval_sentence(intervals: pl.DataFrame, y: float) -> str:
    gains = intervals.filter(
        (pl.col("Y") == y)
        & (pl.col("policy") == "forecast_mm:model")
        & pl.col("versus").is_in([f"forecast_mm:{p}" for p in PLACEBOS])
        & (pl.col("metric") == "avoided_cascade_share")
    ).sort("versus")
    if gains.height == 0:
        return ""
    listed = ", ".join(
        f"{r['versus'].split(':', 1)[1]} above 0 on {r['above_zero']} and below on "
        f"{r['below_zero']} of {r['intervals']}"
        for r in gains.iter_rows(named=True)
    )
    n = int(gains["n_paths"].max())
    return (
        f"Over {n} stress paths at Y = {y:g}, the 5–95 % interval of the forecast margin's "
        f"cascade-share gain over each placebo lies {listed} replays."
    )


def policy_reading(overview: pl.DataFrame, intervals: pl.DataFrame | None = None) -> list[str]:
    """Sentences, one per finding, read off the policy overview (``policy_overview``).

    Parameters
    ----------
    overview
        Columns ``Y, policy, replays, mean_cascade_share, mean_avoided_share, lower_share,
        avoided_liq_usd, avoided_bad_debt_usd`` (one row per impact Y and policy).
    intervals
        ``market_policy_intervals`` rows of the same run (``Y`` = ``impact_y``), optional: with
        them, one sentence per Y on the forecast margin's gain over each placebo.

    Returns
    -------
    list of str
        Markdown bullet texts (without the bullet), in the order status quo, breaker,
        forecast margin, each per impact Y, then the intervals (or a caveat without them);
        empty when the overview is empty.
    """
    if overview.height == 0:
        return []
    ys = sorted(overview["Y"].unique().to_list())
    sentences = []
    for build in (_status_quo_sentence, _breaker_sentence, _forecast_sentence):
        sentences += [build(overview, y) for y in ys]
    if intervals is not None and intervals.height:
        sentences += [_interval_sentence(intervals, y) for y in ys]
    else:
        sentences.append(_UNCERTAINTY)
    return [s for s in sentences if s]
