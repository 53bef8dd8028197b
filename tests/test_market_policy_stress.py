"""Fast tier: intervals of the market-level policies over stress paths, on synthetic books."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_market_policies import _cascade_setup

from backtest.market.errors import MarketConfigError
from backtest.market.policies import MarketPolicy
from backtest.market.policy_replay import replay_policy
from backtest.market.policy_stress import avoided_on_paths, overlay_bars, replay_figures
from backtest.market.replay import drawdown
from pipelines.attribution.policy_stress import (
    INTERVAL_METRICS,
    interval_rows,
    stress_deviations,
)

N = 24  # steps of the cascade setup of test_market_policies


def _setup():
    """10x/20x longs entered at 100 under a 12 % fundamental decline, with strong impact."""
    book, p, vol, f_close, f_low, f_high, imp = _cascade_setup()
    assert len(f_close) == N

    def replayer(pol, c, lo, hi):
        return replay_policy(book, p, vol, c, lo, hi, imp, pol)

    return replayer, (f_close, f_low, f_high)


def _backstop(name: str) -> MarketPolicy:
    """A fund that takes every forced sale off the market and never unwinds in the window."""
    return MarketPolicy(
        name=name, fund_capacity_usd=1e15, fund_unwind_usd_per_step=0.0, fund_unwind_delay=10_000
    )


FUND = _backstop("insurance_fund")
#: Differs from the status quo only in its name: nothing can be avoided.
PLACEBO = MarketPolicy(name="placebo")
POLICIES = [MarketPolicy(), FUND, PLACEBO]


def _noise(n_paths: int, seed: int, sigma: float = 0.004) -> np.ndarray:
    """Random-walk log deviations, 0 at the window start."""
    z = np.random.default_rng(seed).normal(0.0, sigma, size=(n_paths, N))
    z[:, 0] = 0.0
    return np.cumsum(z, axis=1)


def test_overlay_keeps_the_bars_at_zero_deviation_and_checks_lengths():
    c, lo, hi = np.array([100.0, 90.0]), np.array([99.0, 85.0]), np.array([101.0, 95.0])
    got = overlay_bars(c, lo, hi, np.zeros(2))
    for a, b in zip(got, (c, lo, hi), strict=True):
        np.testing.assert_array_equal(a, b)
    moved = overlay_bars(c, lo, hi, np.array([0.0, math.log(2.0)]))
    np.testing.assert_allclose(moved[1], [99.0, 170.0])
    with pytest.raises(MarketConfigError, match="3 steps, the bars 2"):
        overlay_bars(c, lo, hi, np.zeros(3))
    with pytest.raises(MarketConfigError, match="NaN"):
        overlay_bars(c, lo, hi, np.array([0.0, np.nan]))


def test_zero_deviation_path_gives_the_real_path_figures():
    replayer, bars = _setup()
    dd_f = drawdown(bars[0], bars[1])
    base = replay_figures(replayer(MarketPolicy(), *bars), dd_f)
    fund = replay_figures(replayer(FUND, *bars), dd_f)
    got = avoided_on_paths(replayer, POLICIES, *bars, np.zeros((1, N)))
    np.testing.assert_array_equal(got[0, 0], base - fund)
    np.testing.assert_array_equal(got[1, 0], np.zeros(3))


def test_known_answer_interval_has_the_real_path_sign():
    # The status quo cascades: its own forced sales move the price through further cohorts and
    # fill below bankruptcy prices. A fund that absorbs every forced sale and never unwinds in
    # the window keeps the impact at 0 (no shorts are liquidated on this declining path), so
    # its replay IS the fundamental path: cascade share 0 and bad debt 0 on every path. Its
    # avoided share and bad debt are therefore the status quo's own, > 0 on every path: the
    # interval lies above 0 and has the real-path figure's sign. The placebo avoids exactly
    # nothing on every path.
    replayer, bars = _setup()
    dd_f = drawdown(bars[0], bars[1])
    fund_real = replay_figures(replayer(FUND, *bars), dd_f)
    assert fund_real[0] == 0 and fund_real[2] == 0
    real = replay_figures(replayer(MarketPolicy(), *bars), dd_f) - fund_real
    assert real[0] > 0.1 and real[2] > 1e6
    got = avoided_on_paths(replayer, POLICIES, *bars, _noise(40, seed=3))
    fund, placebo = got[0], got[1]
    for f in (0, 2):  # cascade share, bad debt
        p5, p95 = np.quantile(fund[:, f], [0.05, 0.95])
        assert np.all(fund[:, f] > 0)
        assert np.sign(p5) == np.sign(real[f]) == 1
        assert p5 <= real[f] <= p95  # the real path sits inside the band (this seed)
    np.testing.assert_array_equal(placebo, np.zeros_like(placebo))


def _closes(seed: int, n: int = 2_500) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100 * np.exp(np.cumsum(rng.standard_t(5, n) * 0.004))


def test_stress_deviations_are_seeded_and_walk_forward():
    full = _closes(1)
    i0 = 2_400
    a = stress_deviations(full, i0, N, 8, seed=11)
    b = stress_deviations(full, i0, N, 8, seed=11)
    assert not isinstance(a, str) and not isinstance(b, str)
    assert a.deviations.tobytes() == b.deviations.tobytes() and a.digest == b.digest
    assert a.deviations.shape == (8, N) and np.all(a.deviations[:, 0] == 0)
    c = stress_deviations(full, i0, N, 8, seed=12)
    assert not isinstance(c, str) and c.digest != a.digest
    # nothing at or after the window start is read: change and cut it, same paths
    later = full.copy()
    later[i0:] *= 0.5
    d = stress_deviations(later[: i0 + 3], i0, N, 8, seed=11)
    assert not isinstance(d, str) and d.deviations.tobytes() == a.deviations.tobytes()
    short = stress_deviations(full[:150], 150, N, 8)
    assert isinstance(short, str) and "need 200" in short


def test_interval_rows_are_deterministic_and_say_whether_they_exclude_zero():
    replayer, bars = _setup()
    paths = stress_deviations(_closes(2), 2_400, N, 12, seed=5)
    assert not isinstance(paths, str)
    real = [{m: 0.0 for m in INTERVAL_METRICS} for _ in POLICIES]
    key = {"event_id": "E", "asset": "BTC", "impact_y": 1.0}
    rows = interval_rows(key, replayer, POLICIES, bars, paths, real)
    again = interval_rows(key, replayer, POLICIES, bars, paths, real)
    assert rows == again
    assert [(r["policy"], r["metric"]) for r in rows] == [
        (p.name, m) for p in POLICIES[1:] for m in INTERVAL_METRICS
    ]
    by = {(r["policy"], r["metric"]): r for r in rows}
    share = by[("insurance_fund", "avoided_cascade_share")]
    assert share["p5"] <= share["p50"] <= share["p95"]
    assert share["excludes_zero"] and share["p5"] > 0 and share["n_paths"] == 12
    assert not by[("placebo", "avoided_cascade_share")]["excludes_zero"]


def test_forecast_margin_gets_an_interval_against_each_control():
    # the "model" here is the fund and its "control" the placebo: model − control on each path is
    # the fund's avoided figure itself, so both rows have the same interval and real value
    replayer, bars = _setup()
    paths = stress_deviations(_closes(2), 2_400, N, 12, seed=5)
    assert not isinstance(paths, str)
    model = _backstop("forecast_mm:model")
    control = MarketPolicy(name="forecast_mm:constant")
    pols = [MarketPolicy(), model, control]
    real = [{m: float(k) for m in INTERVAL_METRICS} for k in (0, 5, 2)]
    key = {"event_id": "E", "asset": "ETH", "impact_y": 6.0}
    rows = interval_rows(key, replayer, pols, bars, paths, real)
    pairs = [(r["policy"], r["versus"]) for r in rows[::3]]
    assert pairs == [
        ("forecast_mm:model", "status_quo"),
        ("forecast_mm:constant", "status_quo"),
        ("forecast_mm:model", "forecast_mm:constant"),
    ]
    vs_sq = [r for r in rows if r["versus"] == "status_quo" and r["policy"] == model.name]
    vs_ctl = [r for r in rows if r["versus"] == control.name]
    for a, b in zip(vs_sq, vs_ctl, strict=True):
        assert (a["p5"], a["p50"], a["p95"]) == (b["p5"], b["p50"], b["p95"])
        assert a["real"] == 5.0 and b["real"] == 3.0  # real: model 5 minus control 2


def test_summaries_of_the_intervals():
    import polars as pl

    from pipelines.attribution.policy_summary import (
        forecast_gain_table,
        interval_overview,
        interval_table,
    )
    from pipelines.reporting.attribution_section import _interval_section
    from pipelines.reporting.markdown import markdown_table

    base = {"event_id": "E", "asset": "ETH", "impact_y": 1.0, "n_paths": 10, "seed": 1}
    rows = [
        {**base, "policy": "forecast_mm:model", "versus": "status_quo", "metric": m,
         "real": 0.01, "p5": 0.002, "p50": 0.01, "p95": 0.02, "excludes_zero": True}
        for m in INTERVAL_METRICS
    ] + [
        {**base, "policy": "forecast_mm:model", "versus": "forecast_mm:lagged", "metric": m,
         "real": 0.001, "p5": -0.003, "p50": 0.0, "p95": 0.004, "excludes_zero": False}
        for m in INTERVAL_METRICS
    ]  # fmt: skip
    iv = pl.DataFrame(rows)
    assert interval_table(iv).height == 6
    ov = interval_overview(iv)
    assert ov.select("versus", "above_zero", "below_zero").rows()[::3] == [
        ("status_quo", 1, 0),
        ("forecast_mm:lagged", 0, 0),
    ]
    gain = forecast_gain_table(iv)
    assert gain["versus"].to_list() == ["forecast_mm:lagged"]
    assert gain["p95_share"].to_list() == [0.004]
    text = "\n".join(_interval_section(iv, markdown_table))
    assert "Over 10 seeded stress paths" in text and "0.40 %" in text
    assert _interval_section(iv.head(0), markdown_table) == []


def test_the_number_of_stress_paths_is_part_of_the_attribution_run_id() -> None:
    from pipelines.attribution.compute import AttributionConfig
    from pipelines.attribution.policy_stress import STRESS_PATHS, check_stress_paths

    assert AttributionConfig().stress_paths == STRESS_PATHS
    ids = {AttributionConfig(stress_paths=n).run_id for n in (0, 5, 10)}
    assert len(ids) == 3
    assert check_stress_paths(0) == 0
    for bad in (-1, 2.0, True):
        with pytest.raises(ValueError, match="stress paths"):
            check_stress_paths(bad)  # type: ignore[arg-type]
