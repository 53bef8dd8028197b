"""Evidence through the real CLI on a user's own book and path (no data mirror needed).

* the same path on minute and hourly bars gives the same Dutch-auction answer (step-size
  invariance, issue #9 acceptance);
* a crash in the last 5 % of the window under ``circuit_breaker`` shows the open unhealthy debt
  in the JSON, and the total loss that ``avoided_*`` uses includes it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pipelines.cli.main import main


def _book(path: Path, *, n: int = 200, debt_usd: float = 50e6, seed: int = 3) -> Path:
    rng = np.random.default_rng(seed)
    debt = rng.lognormal(0.0, 1.0, n)
    debt *= debt_usd / debt.sum()
    health = 1.05 + rng.gamma(2.0, 0.12, n)  # health factors from 1.05 up, at price 2,000
    lt = 0.77
    collateral = health * debt / (2_000.0 * lt)
    pl.DataFrame(
        {
            "position_id": np.arange(n),
            "collateral_asset": ["ETH"] * n,
            "collateral": collateral,
            "debt": debt,
            "liquidation_threshold": [lt] * n,
            "bonus": [0.05] * n,
        }
    ).write_csv(path)
    return path


def _minute_crash(n_minutes: int, *, drop: float, seed: int) -> np.ndarray:
    """2,000 → 2,000·(1 − drop) over the window, with noise (seeded)."""
    rng = np.random.default_rng(seed)
    trend = np.log1p(-drop) * np.linspace(0.0, 1.0, n_minutes)
    noise = np.cumsum(rng.normal(0.0, 0.0015, n_minutes))
    noise -= np.linspace(0.0, 1.0, n_minutes) * noise[-1]  # pinned at both ends
    return 2_000.0 * np.exp(trend + noise)


def _prices(path: Path, price: np.ndarray, step_seconds: int) -> Path:
    ts = np.datetime64("2024-03-01T00:00", "ms") + np.arange(price.size) * np.timedelta64(
        step_seconds * 1000, "ms"
    )
    pl.DataFrame({"ts": ts, "price": price}).write_csv(path)
    return path


def _run(capsys, *args: str) -> dict:
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("seed", [7, 11])
def test_dutch_auction_on_minute_and_hourly_bars_agrees(tmp_path: Path, capsys, seed: int) -> None:
    book = _book(tmp_path / "book.csv")
    minute = _minute_crash(6 * 60 + 1, drop=0.35, seed=seed)
    hourly = minute[::60]
    common = ["backtest", "--db", str(tmp_path / "w.duckdb"), "--book", str(book)]
    common += ["--policy", "dutch_auction", "--impact", "none"]
    fine = _run(capsys, *common, "--prices", str(_prices(tmp_path / "m.csv", minute, 60)))
    coarse = _run(capsys, *common, "--prices", str(_prices(tmp_path / "h.csv", hourly, 3600)))
    assert fine["n_liquidations"] > 0
    for metric in ("bad_debt_usd", "borrower_loss_usd", "total_loss_usd"):
        tolerance = max(0.10 * abs(fine[metric]), 50_000.0)
        assert abs(coarse[metric] - fine[metric]) <= tolerance, (metric, fine, coarse)


def test_breaker_halted_at_the_end_shows_the_open_unhealthy_debt(tmp_path: Path, capsys) -> None:
    book = _book(tmp_path / "book.csv")
    n = 400
    price = np.full(n, 2_000.0)
    last = int(n * 0.95)
    price[last:] = np.linspace(2_000.0, 1_300.0, n - last)  # the crash: last 5 % of the steps
    prices = _prices(tmp_path / "p.csv", price, 60)
    common = ["backtest", "--db", str(tmp_path / "w.duckdb"), "--book", str(book)]
    common += ["--prices", str(prices), "--impact", "none"]
    breaker = _run(capsys, *common, "--policy", "circuit_breaker", "--drop-threshold", "0.05")
    assert breaker["unhealthy_open_debt_usd"] > 0
    deferred = breaker["in_flight_shortfall_usd"] + breaker["underwater_shortfall_usd"]
    assert breaker["total_loss_usd"] == pytest.approx(breaker["bad_debt_usd"] + deferred)
    instant = _run(capsys, *common, "--policy", "instant")
    assert instant["unhealthy_open_debt_usd"] == 0
