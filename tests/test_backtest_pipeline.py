"""Pipeline side of the backtester: books, calibration, run configs, CLI, the Prefect sweep."""

from __future__ import annotations

import json
import math
import pickle
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from pipelines.backtests.books import (
    aave_steth_book,
    fit_shape,
    maker_book,
    maker_params,
    read_book_file,
    synthetic_shape,
)
from pipelines.backtests.calibration import (
    ADV_REF_USD,
    calibrate_market,
    choose_bars,
    read_prices_file,
)
from pipelines.backtests.margin import MissingMarginPathError, margin_threshold_path
from pipelines.backtests.run import (
    build_run_config,
    execute_run,
    metrics_row,
    plan_sweep,
    run_output,
)
from pipelines.cli.main import main
from pipelines.errors import CascadeError, DataValidationError
from pipelines.warehouse.connection import apply_schema, connect, insert_frame, transaction

pytestmark = pytest.mark.integration  # needs the real-data mirror

W4 = "2022-06-13-celsius-3ac"
REAL_W4_VAULTS = {"28438", "24188", "28313", "27404", "27396", "28215", "26266"}
JSON_KEYS = {
    "n_liquidations",
    "liquidated_usd",
    "induced_usd",
    "bad_debt_usd",
    "max_cascade_depth",
    "final_price",
    "run_id",
}


@pytest.fixture()
def db_copy(ingested_db: Path, tmp_path: Path) -> Path:
    """A writable copy of the session warehouse."""
    target = tmp_path / "copy.duckdb"
    shutil.copy(ingested_db, target)
    return target


@pytest.fixture()
def ro(ingested_db: Path):
    con = connect(ingested_db, read_only=True)
    yield con
    con.close()


def write_margin_paths(con, *, model: str = "ewma", asset: str = "ETH", run_id: str = "t-ewma"):
    """Margin paths for every event from the forecasting library (EWMA, 24 h, Aave v3 WETH)."""
    from forecasting import AAVE_V3_WETH, liquidation_threshold_path, walk_forward
    from pipelines.catalog.registry import load_events

    frames = []
    for ev in load_events():
        bars = con.sql(
            "SELECT ts, close FROM prices WHERE asset = ? AND market = 'spot' "
            "AND venue = 'binance' AND bar_seconds = 3600 AND ts >= ? AND ts < ? ORDER BY ts",
            params=[asset, ev.start_ts - timedelta(days=45), ev.end_ts],
        ).pl()
        fc = walk_forward(
            bars,
            model,
            horizon_bars=24,
            min_train=720,
            start=ev.start_ts - timedelta(days=1),
            end=ev.end_ts,
        )
        lt = liquidation_threshold_path(fc, AAVE_V3_WETH, details=True)
        frames.append(
            lt.select("ts", "liquidation_threshold", sigma_24h="sigma").with_columns(
                event_id=pl.lit(ev.event_id)
            )
        )
    out = pl.concat(frames).with_columns(
        run_id=pl.lit(run_id), model=pl.lit(model), asset=pl.lit(asset)
    )
    with transaction(con):
        con.execute(
            "INSERT INTO forecast_runs (run_id, config, created_at) VALUES (?, ?, ?)",
            [run_id, "{}", datetime.now(UTC)],
        )
        insert_frame(con, "margin_paths", out)
    return out


def _counts(db: Path) -> tuple[int, int, int]:
    con = connect(db, read_only=True)
    try:
        return tuple(  # type: ignore[return-value]
            con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
            for t in ("backtest_runs", "backtest_metrics", "backtest_steps")
        )
    finally:
        con.close()


# --- books ---------------------------------------------------------------------------------------


def test_maker_book_on_2022_06_13(ro) -> None:
    at = datetime(2022, 6, 13, tzinfo=UTC)
    loaded = maker_book(ro, at)
    book = loaded.book
    assert 60 <= len(book) <= 120  # 84 indebted ETH-B vaults that morning
    assert 80e6 < book.total_debt < 110e6
    assert REAL_W4_VAULTS <= set(book.position_id.tolist())
    assert np.allclose(book.liquidation_threshold, 1 / 1.3)
    assert np.allclose(book.bonus, 0.13)
    # deterministic: same rows, same sums, same fingerprint
    assert maker_book(ro, at).spec["sha256"] == loaded.spec["sha256"]
    # vault 28438: 2,400 ETH against 2.5M DAI drawn, liquidated at 07:00 that day: its debt
    # with the stability fee accrued to midnight is the debt its bark took (2,504,704 DAI at
    # 07:00) less seven hours of fee
    i = int(np.flatnonzero(book.position_id == "28438")[0])
    assert book.collateral[i] == pytest.approx(2400.0)
    assert book.debt[i] == pytest.approx(2_504_704.18, rel=1e-4)
    assert book.debt[i] > 2.5e6 * 1.0015


def test_maker_book_outside_history(ro) -> None:
    with pytest.raises(CascadeError, match="vault history covers 2020-10-19"):
        maker_book(ro, datetime(2020, 3, 12, tzinfo=UTC))


def test_maker_params_in_force(ro) -> None:
    p21 = maker_params(ro, datetime(2021, 5, 19, tzinfo=UTC))
    # same-block 0→1.0 (constructor) and 1.0→1.3 (spell): 1.3 wins
    assert p21.buf == 1.3 and p21.hole_usd == 8e6 and p21.tail_seconds == 8400
    assert p21.dust == 15_000 and p21.chop == 0.13 and p21.liquidation_threshold == 1 / 1.3
    p22 = maker_params(ro, datetime(2022, 11, 8, tzinfo=UTC))
    assert (p22.buf, p22.tail_seconds, p22.cusp, p22.tip_usd) == (1.1, 4800, 0.45, 250)
    assert p22.auction_kwargs()["hole_usd"] == 15e6


def test_aave_book_and_synthetic_shape(ro) -> None:
    aave = aave_steth_book(ro, price=2_000.0, total_debt_usd=1e9)
    assert aave.book.total_debt == pytest.approx(1e9)
    hf = aave.book.health_factor(2_000.0)
    assert hf.min() > 1.0 and 1.7 < np.median(hf) < 2.1
    shape = synthetic_shape(ro)
    assert shape.source.startswith("aave-steth")
    assert 1.0 < shape.size_alpha < 1.8
    refit = fit_shape(aave.book, 2_000.0)  # rescaling keeps every health factor
    assert refit.mu == pytest.approx(shape.mu) and refit.sigma == pytest.approx(shape.sigma)


def test_user_book_file(tmp_path: Path) -> None:
    f = tmp_path / "book.csv"
    f.write_text(
        "position_id,collateral_asset,collateral,debt,liquidation_threshold\n"
        "a,ETH,10,10000,0.8\nb,ETH,5,2000,0.8\n"
    )
    loaded = read_book_file(f)
    assert loaded.asset == "ETH" and len(loaded.book) == 2
    assert loaded.book.bonus.tolist() == [0.05, 0.05]
    f.write_text(
        "position_id,collateral_asset,collateral,debt,liquidation_threshold\n"
        "a,ETH,10,10000,0.8\nb,BTC,5,2000,0.8\n"
    )
    with pytest.raises(DataValidationError, match="collateral_asset.*data row 2"):
        read_book_file(f)


def test_percent_threshold_file_is_rejected_and_db_unchanged(db_copy: Path, tmp_path, capsys):
    f = tmp_path / "my_book.csv"
    f.write_text(
        "position_id,collateral_asset,collateral,debt,liquidation_threshold,bonus\n"
        "1,ETH,10,10000,0.83,0.05\n2,ETH,20,15000,0.83,0.05\n3,ETH,5,2000,83,0.05\n"
    )
    before = _counts(db_copy)
    code = main(["backtest", "--db", str(db_copy), "--event", "W4", "--book", str(f), "--json"])
    err = capsys.readouterr().err
    assert code == 2
    assert str(f) in err and "'liquidation_threshold'" in err and "data row 3" in err
    assert "percent" in err and "0.83" in err
    assert _counts(db_copy) == before


# --- calibration and paths -----------------------------------------------------------------------


def test_calibration_rules(ro) -> None:
    w2 = calibrate_market(ro, "ETH", datetime(2021, 5, 19, tzinfo=UTC))
    assert w2.adv_usd == pytest.approx(ADV_REF_USD, rel=1e-3)  # the documented reference
    assert 0.03 < w2.sigma_day < 0.12 and w2.depth_rule == "adv"
    lin = w2.linear(math.inf)
    assert lin.depth_usd == pytest.approx(35e6 / -math.log(0.96), rel=1e-3)  # $35M → 4 %
    w7 = calibrate_market(
        ro, "BTC", datetime(2025, 10, 10, tzinfo=UTC), end=datetime(2025, 10, 12, tzinfo=UTC)
    )
    assert w7.depth_rule.startswith("orderbook_depth binance")
    assert w7.depth_1pct_usd and w7.depth_1pct_usd > 1e7
    with pytest.raises(CascadeError, match="--adv-usd"):
        calibrate_market(ro, "ETH", datetime(2015, 1, 1, tzinfo=UTC))


def test_event_path_choice(ro) -> None:
    w2 = choose_bars(
        ro, "ETH", datetime(2021, 5, 19, tzinfo=UTC), datetime(2021, 5, 20, tzinfo=UTC)
    )
    assert (w2.market, w2.venue, w2.bar_seconds) == ("spot", "binance", 60)
    w4 = choose_bars(
        ro, "ETH", datetime(2022, 6, 13, tzinfo=UTC), datetime(2022, 6, 14, tzinfo=UTC)
    )
    assert (w4.market, w4.bar_seconds) == ("spot", 3600)


def test_prices_file_errors(tmp_path: Path) -> None:
    f = tmp_path / "p.csv"
    f.write_text("ts,price\n2022-01-01T00:00:00Z,100\n2022-01-01T00:01:00Z,-5\n")
    with pytest.raises(DataValidationError, match="'price'.*data row 2"):
        read_prices_file(f)
    f.write_text("ts,price\n2022-01-01T00:00:00Z,100\nyesterday,101\n")
    with pytest.raises(DataValidationError, match="'ts'.*data row 2"):
        read_prices_file(f)


# --- margin paths --------------------------------------------------------------------------------


def test_margin_path_as_of_backward() -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    apply_schema(con)
    t0 = datetime(2022, 1, 1, tzinfo=UTC)
    rows = [("r1", "ewma", "ETH", t0 + timedelta(hours=h), 0.83 - 0.01 * h) for h in range(6)]
    con.executemany(
        "INSERT INTO margin_paths (run_id, event_id, model, asset, ts, liquidation_threshold, "
        "sigma_24h) VALUES (?, 'range', ?, ?, ?, ?, 0.05)",
        rows,
    )
    steps = np.array(["2022-01-01T00:30", "2022-01-01T01:00", "2022-01-01T03:59"], "datetime64[ms]")
    mp = margin_threshold_path(con, model="ewma", asset="ETH", step_ts=steps)
    # 00:30 uses 00:00's value (never 01:00's), 01:00 its own, 03:59 the 03:00 value
    assert mp.thresholds.tolist() == pytest.approx([0.83, 0.82, 0.80])
    assert mp.reference_threshold == pytest.approx(0.83) and mp.run_id == "r1"
    assert mp.event_id == "range"
    late = np.array(["2022-01-02T00:00"], "datetime64[ms]")
    with pytest.raises(MissingMarginPathError, match="no margin path for model ewma, asset ETH"):
        margin_threshold_path(con, model="ewma", asset="ETH", step_ts=late)
    con.close()


def test_dynamic_ltv_without_margin_path(ro, capsys, db_copy: Path) -> None:
    expected = (
        f"no margin path for model garch, asset ETH over event {W4}; run "
        f"`cascade forecast --events {W4} --models garch --assets ETH` first"
    )
    with pytest.raises(MissingMarginPathError) as info:
        build_run_config(ro, event="W4", policy="dynamic_ltv", forecast_model="garch")
    assert str(info.value) == expected
    code = main(
        ["backtest", "--db", str(db_copy), "--event", "W4", "--policy", "dynamic_ltv",
         "--forecast-model", "garch"]
    )  # fmt: skip
    assert code == 2 and expected in capsys.readouterr().err


# --- runs, CLI -----------------------------------------------------------------------------------


def test_determinism(ingested_db: Path) -> None:
    ids, dumps, steps = [], [], []
    for _ in range(2):
        con = connect(ingested_db, read_only=True)
        try:
            cfg = build_run_config(con, event="W2", policy="dutch_auction")
        finally:
            con.close()
        result = execute_run(cfg)
        ids.append(cfg.run_id)
        dumps.append(json.dumps(metrics_row(result), sort_keys=True).encode())
        steps.append(result.steps)
    assert ids[0] == ids[1]
    assert dumps[0] == dumps[1]
    # configs and task outputs pickle (process-based task runners such as Dask need it)
    clone = pickle.loads(pickle.dumps(cfg))
    assert clone.run_id == cfg.run_id
    out = pickle.loads(pickle.dumps(run_output(clone)))
    assert json.dumps(out.metrics, sort_keys=True).encode() == dumps[0]
    assert steps[0].equals(steps[1])
    assert cfg.book_name == "maker-ethb" and cfg.spec.path["step_seconds"] == 60.0


def test_cli_backtest_json(db_copy: Path, capsys) -> None:
    args = ["backtest", "--db", str(db_copy), "--event", "W4", "--policy", "dutch_auction"]
    assert main([*args, "--json"]) == 0
    first = capsys.readouterr().out
    row = json.loads(first)
    assert JSON_KEYS <= set(row)
    assert row["event_id"] == W4 and row["book"] == "maker-ethb"
    assert row["n_liquidations"] > 0 and 1000 < row["final_price"] < 1400
    assert main([*args, "--json", "--force"]) == 0  # recomputed: byte-identical output
    assert capsys.readouterr().out == first
    assert main(args) == 0
    assert f"run {row['run_id']} (cached)" in capsys.readouterr().out
    con = connect(db_copy, read_only=True)
    try:
        n = con.execute(
            "SELECT count(*) FROM backtest_steps WHERE run_id = ?", [row["run_id"]]
        ).fetchall()[0][0]
    finally:
        con.close()
    assert n == 24


def test_cli_user_files_without_warehouse_data(tmp_path: Path, capsys) -> None:
    book = tmp_path / "b.parquet"
    pl.DataFrame(
        {
            "position_id": np.arange(500),
            "collateral_asset": ["ETH"] * 500,
            "collateral": np.linspace(1, 10, 500),
            "debt": np.linspace(1_000, 15_000, 500),
            "liquidation_threshold": [0.8] * 500,
        }
    ).write_parquet(book)
    ts = np.datetime64("2024-01-01T00:00", "ms") + np.arange(300) * np.timedelta64(60_000, "ms")
    prices = tmp_path / "p.csv"
    pl.DataFrame({"ts": ts, "price": np.linspace(2_000, 1_500, 300)}).write_csv(prices)
    db = tmp_path / "empty.duckdb"
    base = ["backtest", "--db", str(db), "--book", str(book), "--prices", str(prices), "--json"]
    assert main(base) == 2
    assert "--adv-usd" in capsys.readouterr().err
    assert main([*base, "--adv-usd", "1e9", "--sigma-day", "0.05"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["event_id"] is None and row["book"] == "b.parquet" and row["n_liquidations"] > 0
    assert main([*base, "--impact", "linear", "--depth-usd", "5e8"]) == 0
    assert json.loads(capsys.readouterr().out)["impact"] == "linear"


# --- the Prefect sweep ---------------------------------------------------------------------------


@pytest.mark.slow
def test_sweep_flow_fills_scoreboard(prefect_harness, db_copy: Path, tmp_path: Path) -> None:
    from pipelines.backtests.flow import backtest_flow
    from pipelines.reporting.scoreboard_plot import (
        plot_scoreboard,
        scoreboard_frame,
        scoreboard_markdown,
    )

    con = connect(db_copy)
    try:
        write_margin_paths(con)
        # a second model whose margin path covers W4 only
        hours = [datetime(2022, 6, 12, tzinfo=UTC) + timedelta(hours=h) for h in range(49)]
        con.executemany(
            "INSERT INTO margin_paths (run_id, event_id, model, asset, ts, liquidation_threshold, "
            "sigma_24h) VALUES ('t-part', ?, 'partial', 'ETH', ?, 0.8, 0.05)",
            [[W4, h] for h in hours],
        )
        plan = plan_sweep(con, events=["W4", "W5"], policies=["dynamic_ltv"], controls=False)
        assert sorted((c.event_id[:7], c.forecast_model) for c in plan) == [
            ("2022-06", "ewma"),
            ("2022-06", "partial"),
            ("2022-11", "ewma"),
        ]
        with pytest.raises(MissingMarginPathError, match="model partial, asset ETH over event"):
            plan_sweep(con, events=["W5"], policies=["dynamic_ltv"], forecast_models=["partial"])
        con.execute("DELETE FROM margin_paths WHERE model = 'partial'")
    finally:
        con.close()
    run_ids, computed = backtest_flow(db_path=str(db_copy), forecast_models=["ewma"])
    # 7 events x (8 policies + the Gauntlet preset), + 4 threshold controls of each of the 2
    # dynamic policies
    assert len(run_ids) == len(set(run_ids)) == 7 * 9 + 7 * 2 * 4
    con = connect(db_copy, read_only=True)
    try:
        board = con.sql("SELECT * FROM policy_scoreboard").pl()
        avoided = con.sql("SELECT * FROM avoided_cascades").pl()
        frame = scoreboard_frame(con)
    finally:
        con.close()
    assert board["event_id"].n_unique() == 7 and board["policy"].n_unique() == 9
    assert board.group_by("event_id").len()["len"].to_list() == [9] * 7
    assert set(board.filter(pl.col("policy").str.starts_with("dynamic"))["forecast_model"]) == {
        "ewma"
    }
    assert avoided.height == 63
    zero = avoided.filter(pl.col("policy") == pl.col("baseline_policy"))["avoided_induced_usd"]
    assert zero.to_list() == [0.0] * 7
    books = dict(board.select("event_id", "book").unique().iter_rows())
    assert books[W4] == "maker-ethb" and books["2020-03-12-black-thursday"] == "synthetic"
    # a second sweep (default forecast models: the ones with margin paths) finds every run cached
    before = _counts(db_copy)
    assert backtest_flow(db_path=str(db_copy)) == (run_ids, 0)
    assert _counts(db_copy) == before
    png = plot_scoreboard(frame, tmp_path / "scoreboard.png")
    assert png.stat().st_size > 10_000
    assert scoreboard_markdown(frame).count("\n") == 2 + 63 - 1


def test_flow_module_has_building_blocks() -> None:
    import subprocess
    import sys

    import pipelines.backtests.flow as flow_module
    import pipelines.backtests.run as run_module

    for name in ("backtest_flow", "run_backtest_task", "run_backtest_batch"):
        assert hasattr(flow_module, name)
    for name in ("build_run_config", "resolve_run", "execute_run", "write_result", "plan_sweep"):
        assert hasattr(run_module, name)
    code = (
        "import sys; import pipelines.cli.main, pipelines.cli.backtest, pipelines.backtests.run; "
        "print(any(m.split('.')[0] == 'prefect' for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # a single `cascade backtest` never loads Prefect
